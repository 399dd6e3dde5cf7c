"""Language models: the GPT with its modern variants, its KV cache, and pre-attention baselines.

- :class:`GPTConfig`, :class:`GPT` - GPT-2 architecture with one-switch variants (RMSNorm,
  RoPE, SwiGLU, grouped-query attention, no bias); GPT-2 parameter names.
- :func:`split_heads`, :func:`merge_heads`, :func:`repeat_kv`, :func:`causal_mask`,
  :func:`sinusoidal_table` - the pieces of attention and positions, as the lessons write them;
  :mod:`llmcourse.model.functional` - softmax, cross-entropy, GELU and attention from scratch.
- :class:`PlainCausalSelfAttention` - day 10's attention alone, in the nanoGPT form (the model's
  :class:`CausalSelfAttention` adds grouped-query heads, RoPE and the KV cache).
- :class:`KVCache` - preallocated keys/values for fast decoding (``GPT.new_kv_cache``).
- :func:`count_params_formula`, :func:`flops_per_token`, :func:`mfu`, :func:`estimate_mfu` - the arithmetic
  of model size and training cost (defined in :mod:`llmcourse.flops`, re-exported here).
- :class:`BigramLM`, :class:`MLPLM`, :class:`WaveNetLM` - baselines with the same interface.
- :func:`load_gpt2_weights`, :meth:`GPT.from_hf_state_dict`, :meth:`GPT.from_pretrained` -
  OpenAI's GPT-2 weights in our model.

Every model: ``forward(idx, targets=None, *, kv_cache=None) -> (logits, loss)`` with ``idx``
``(B, T)`` and ``logits`` ``(B, T, vocab_size)``, ``generate(idx, max_new_tokens, **sampling)``
and a ``config`` with ``vocab_size`` and ``block_size``.
"""

from llmcourse.flops import PEAK_FLOPS, count_params_formula, estimate_mfu, flops_per_token, mfu

from .attention_reference import PlainCausalSelfAttention
from .baselines import BigramConfig, BigramLM, MLPConfig, MLPLM, WaveNetConfig, WaveNetLM
from .config import GPTConfig
from .gpt import GPT
from .hf import gpt2_config, load_gpt2_weights
from .kv_cache import KVCache
from .layers import (
    MLP,
    Block,
    CausalSelfAttention,
    RMSNorm,
    RotaryEmbedding,
    SwiGLU,
    apply_rotary,
    causal_mask,
    merge_heads,
    repeat_kv,
    sinusoidal_table,
    split_heads,
)

#: A new GPT holding the weights of a Hugging Face GPT-2 state dict (:meth:`GPT.from_hf_state_dict`).
from_hf_state_dict = GPT.from_hf_state_dict

__all__ = [
    "GPT",
    "GPTConfig",
    "KVCache",
    "BigramLM",
    "BigramConfig",
    "MLPLM",
    "MLPConfig",
    "WaveNetLM",
    "WaveNetConfig",
    "count_params_formula",
    "flops_per_token",
    "estimate_mfu",
    "mfu",
    "PEAK_FLOPS",
    "load_gpt2_weights",
    "from_hf_state_dict",
    "gpt2_config",
    "Block",
    "CausalSelfAttention",
    "PlainCausalSelfAttention",
    "MLP",
    "SwiGLU",
    "RMSNorm",
    "RotaryEmbedding",
    "apply_rotary",
    "causal_mask",
    "split_heads",
    "merge_heads",
    "repeat_kv",
    "sinusoidal_table",
]
