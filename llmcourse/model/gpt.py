"""The GPT language model, plus parameter, FLOP and MFU arithmetic.

Architecture (pre-norm GPT-2): token embedding ``wte`` (+ learned position embedding ``wpe``
unless RoPE is used), dropout, ``n_layer`` blocks (:class:`~llmcourse.model.layers.Block`), a
final norm ``ln_f`` and a linear ``lm_head`` whose weight is, by default, the same tensor as
``wte``'s.

Example:
    >>> import math, torch
    >>> cfg = GPTConfig(vocab_size=65, block_size=32, n_layer=2, n_head=2, n_embd=16)
    >>> model = GPT(cfg)
    >>> x, y = torch.randint(0, 65, (2, 3, 32))  # inputs and (here random) next tokens
    >>> logits, loss = model(x, targets=y)
    >>> tuple(logits.shape), abs(loss.item() - math.log(65)) < 0.1  # ~ln(V) at initialisation
    ((3, 32, 65), True)
    >>> model.num_params() == count_params_formula(cfg)
    True
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmcourse.device import peak_flops

from .config import GPTConfig
from .kv_cache import KVCache
from .layers import Block, RMSNorm, RotaryEmbedding, make_norm

# Datasheet peaks (dense, FLOP/s) for estimate_mfu(peak_flops=...), named by GPU and precision;
# the numbers come from the one table in llmcourse.device.
PEAK_FLOPS = {
    "A100-bf16": peak_flops("A100", "bfloat16"),
    "H100-SXM-bf16": peak_flops("H100", "bfloat16"),
    "T4-fp16": peak_flops("T4", "float16"),
    "V100-fp16": peak_flops("V100", "float16"),
}


class GPT(nn.Module):
    """A decoder-only Transformer language model with GPT-2 parameter names.

    Args:
        config: a :class:`GPTConfig`.

    Attributes:
        config: the configuration (``block_size`` changes with :meth:`crop_block_size`).
        transformer: ``ModuleDict`` with ``wte``, ``wpe`` (learned positions only), ``drop``,
            ``h`` (the blocks) and ``ln_f``.
        lm_head: ``Linear(n_embd, vocab_size, bias=False)``.

    Attention maps: :meth:`attention_maps` returns the softmax weights of every layer (it runs
    the explicit attention path); :meth:`set_attention_impl` switches every layer between the
    fused ``"sdpa"`` kernel and the ``"manual"`` computation.
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise TypeError(
                f"GPT expects a GPTConfig, got {type(config).__name__}; "
                f"for a dict use GPT(GPTConfig.from_dict(d))"
            )
        self.config = config
        modules: dict[str, nn.Module] = {"wte": nn.Embedding(config.vocab_size, config.n_embd)}
        if config.pos == "learned":
            modules["wpe"] = nn.Embedding(config.block_size, config.n_embd)
        modules["drop"] = nn.Dropout(config.dropout)
        modules["h"] = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        modules["ln_f"] = make_norm(config)
        self.transformer = nn.ModuleDict(modules)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_weights:
            self.lm_head.weight = self.transformer.wte.weight
        self.rotary = (
            RotaryEmbedding(config.head_size, config.block_size, config.rope_theta)
            if config.pos == "rope" else None
        )
        self.reset_parameters()

    # ------------------------------------------------------------------ initialisation
    def reset_parameters(self) -> None:
        """GPT-2 initialisation.

        Linear and embedding weights ~ N(0, init_std), biases 0, norm weights 1. The output
        projections that write into the residual stream (``attn.c_proj`` and ``mlp.c_proj``)
        use ``init_std / sqrt(2 * n_layer)``: each block adds two such contributions, so this
        keeps the residual stream's variance from growing with depth (GPT-2 paper, section 2.3).
        """
        std = self.config.init_std
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=std)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, (nn.LayerNorm, RMSNorm)):
                nn.init.ones_(module.weight)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)
        resid_std = std / math.sqrt(2 * self.config.n_layer)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=resid_std)

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        *,
        kv_cache: KVCache | None = None,
        only_last: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Next-token logits (and the loss when ``targets`` are given).

        Args:
            idx: ``(B, T)`` integer token ids, ``T <= block_size``.
            targets: ``(B, T)`` the next token at every position; ``-1`` marks positions to
                ignore in the loss.
            kv_cache: a cache from :meth:`new_kv_cache`. ``idx`` is then run at positions
                ``cache.pos .. cache.pos + T - 1``, its keys/values are appended and
                ``cache.pos`` advances by ``T``.
            only_last: return only the last position's logits, ``(B, 1, vocab_size)``, which
                saves the output projection for the other positions while sampling. Not allowed
                together with ``targets``.

        Returns:
            ``(logits, loss)``: logits ``(B, T, vocab_size)`` (``(B, 1, V)`` with
            ``only_last``); loss the mean cross-entropy, or ``None`` without targets.
        """
        _check_input(idx, targets, kv_cache, only_last, self.config.block_size)
        x, _ = self._trunk(idx, kv_cache, need_weights=False)  # (B, T, C)
        if targets is None:
            return self.lm_head(x[:, -1:, :] if only_last else x), None  # (B, T or 1, V)
        logits = self.lm_head(x)  # (B, T, V)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)).float(), targets.reshape(-1).long(),
                               ignore_index=-1)
        return logits, loss

    def _trunk(self, idx: torch.Tensor, kv_cache: KVCache | None,
               need_weights: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Embeddings, blocks and the final norm: ``(B, T, C)`` and the attention maps."""
        T = idx.shape[1]
        start = 0 if kv_cache is None else kv_cache.pos  # the position of idx[:, 0]
        x = self.transformer.wte(idx)  # (B, T, C)
        if self.rotary is None:  # learned positions, (T, C) broadcast over B
            x = x + self.transformer.wpe(torch.arange(start, start + T, device=idx.device))
        rope = None if self.rotary is None else self.rotary(start, T, idx.device)
        x = self.transformer.drop(x)
        maps = []
        for i, block in enumerate(self.transformer.h):
            x, att = block(x, rope=rope, kv_cache=kv_cache, layer_idx=i, need_weights=need_weights)
            maps.append(att)
        if kv_cache is not None:
            kv_cache.advance(T)
        return self.transformer.ln_f(x), maps

    def attention_maps(
        self, idx: torch.Tensor, *, kv_cache: KVCache | None = None
    ) -> list[torch.Tensor]:
        """The attention weights of every layer for ``idx`` ``(B, T)``.

        Runs the explicit attention path. Returns a list of ``n_layer`` tensors
        ``(B, n_head, T, L)`` (``L = T`` without a cache), each row a probability distribution
        over the key positions (before attention dropout). Wrap the call in ``torch.no_grad()``
        for plotting.

        >>> cfg = GPTConfig(vocab_size=10, block_size=8, n_layer=2, n_head=2, n_embd=8)
        >>> maps = GPT(cfg).attention_maps(torch.zeros(1, 5, dtype=torch.long))
        >>> len(maps), tuple(maps[0].shape), bool(maps[0][0, 0, 0, 1] == 0)  # causal
        (2, (1, 2, 5, 5), True)
        """
        _check_input(idx, None, kv_cache, False, self.config.block_size)
        return self._trunk(idx, kv_cache, need_weights=True)[1]

    def set_attention_impl(self, impl: str) -> None:
        """Use ``"sdpa"`` (fused kernel, default) or ``"manual"`` attention in every layer."""
        if impl not in ("sdpa", "manual"):
            raise ValueError(f"attention impl must be 'sdpa' or 'manual', got {impl!r}")
        for block in self.transformer.h:
            block.attn.impl = impl

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, **sampling: Any) -> torch.Tensor:
        """Continue ``idx`` ``(B, T)`` by ``max_new_tokens`` tokens; see :func:`llmcourse.generate.generate`."""
        from llmcourse.generate import generate as _gen

        return _gen(self, idx, max_new_tokens, **sampling)

    def new_kv_cache(
        self,
        batch_size: int,
        max_len: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> KVCache:
        """An empty :class:`KVCache` for this model.

        Args:
            batch_size: rows decoded together.
            max_len: capacity in positions, at most (and by default) ``block_size``.
            device, dtype: default to those of the model's parameters.
        """
        if max_len is None:
            max_len = self.config.block_size
        if not (1 <= max_len <= self.config.block_size):
            raise ValueError(
                f"max_len must be in [1, block_size={self.config.block_size}], got {max_len}: "
                f"the model cannot attend over more positions than block_size"
            )
        weight = self.transformer.wte.weight
        return KVCache(
            self.config.n_layer, batch_size, self.config.kv_heads, max_len, self.config.head_size,
            device=weight.device if device is None else device,
            dtype=weight.dtype if dtype is None else dtype,
        )

    # ------------------------------------------------------------------ sizes and surgery
    def num_params(self, non_embedding: bool = True) -> int:
        """Number of parameters (a tied matrix counted once).

        With ``non_embedding=True`` the lookup tables are left out: the position table ``wpe``
        and, when the weights are not tied, the token table ``wte``. A tied ``wte`` is kept,
        because it is also the output layer's weight (and costs compute there), as in nanoGPT
        and as Kaplan et al. (2020) count ``N``.
        """
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            if "wpe" in self.transformer:
                n -= self.transformer.wpe.weight.numel()
            if not self.config.tie_weights:
                n -= self.transformer.wte.weight.numel()
        return n

    def crop_block_size(self, block_size: int) -> None:
        """Shrink the maximum context to ``block_size`` (e.g. to fine-tune GPT-2 at 256).

        Cuts the position table (learned positions) or recomputes the rotary tables. Caches
        made before the call must not be used afterwards.
        """
        if not (1 <= block_size <= self.config.block_size):
            raise ValueError(
                f"crop_block_size can only shrink the context: got {block_size}, current "
                f"block_size is {self.config.block_size}"
            )
        self.config.block_size = block_size
        if "wpe" in self.transformer:
            wpe = self.transformer.wpe
            wpe.weight = nn.Parameter(wpe.weight.detach()[:block_size].clone())
            wpe.num_embeddings = block_size
        if self.rotary is not None:
            self.rotary.resize(block_size)

    def flops_per_token(self, seq_len: int | None = None, training: bool = True) -> float:
        """See :func:`flops_per_token`."""
        return flops_per_token(self.config, seq_len=seq_len, training=training)

    def estimate_mfu(self, tokens_per_second: float, peak_flops: float = PEAK_FLOPS["A100-bf16"],
                     seq_len: int | None = None) -> float:
        """See :func:`estimate_mfu`."""
        return estimate_mfu(self.config, tokens_per_second, peak_flops=peak_flops, seq_len=seq_len)

    # ------------------------------------------------------------------ GPT-2 weights
    @classmethod
    def from_hf_state_dict(cls, sd: dict[str, torch.Tensor], config: GPTConfig | None = None) -> "GPT":
        """Build a GPT from a Hugging Face GPT-2 state dict; see :func:`llmcourse.model.from_hf_state_dict`."""
        from .hf import from_hf_state_dict

        return from_hf_state_dict(sd, config=config)

    @classmethod
    def from_pretrained(cls, model_type: str = "gpt2", path: str | Path | None = None,
                        **kwargs: Any) -> "GPT":
        """GPT-2 from a local weights file; see :func:`llmcourse.model.hf.from_pretrained`."""
        from .hf import from_pretrained

        return from_pretrained(model_type, path=path, **kwargs)


def _check_input(idx: torch.Tensor, targets: torch.Tensor | None, kv_cache: KVCache | None,
                 only_last: bool, block_size: int) -> None:
    """The checks of GPT's public entry (``forward``, ``attention_maps``); the layers trust it."""
    if not isinstance(idx, torch.Tensor) or idx.ndim != 2:
        shape = tuple(idx.shape) if isinstance(idx, torch.Tensor) else type(idx).__name__
        raise ValueError(f"idx must be a (batch, time) tensor of token ids, got {shape}; "
                         f"for one sequence use idx[None] (or idx.unsqueeze(0))")
    if idx.dtype.is_floating_point or idx.dtype == torch.bool or idx.dtype.is_complex:
        raise TypeError(f"idx must hold integer token ids (torch.long), got dtype {idx.dtype}")
    B, T = idx.shape
    if T == 0:
        raise ValueError("idx has no positions (T == 0); pass at least one token")
    start = 0
    if kv_cache is not None:
        kv_cache.check_room(B, T)
        start = kv_cache.pos
    if start + T > block_size:
        where = f"positions {start}..{start + T - 1}" if kv_cache is not None else f"{T} tokens"
        raise ValueError(f"cannot run {where}: the model's block_size is {block_size}. Crop the "
                         f"context to its last {block_size} tokens (idx[:, -block_size:]), "
                         f"resetting and re-filling the KV cache if you use one")
    if targets is not None:
        if only_last:
            raise ValueError("only_last=True drops positions the loss needs; pass targets=None")
        if targets.shape != idx.shape:
            raise ValueError(f"targets must have the shape of idx {tuple(idx.shape)}, got "
                             f"{tuple(targets.shape)}")


# ---------------------------------------------------------------------------- arithmetic
def count_params_formula(config: GPTConfig, non_embedding: bool = True) -> int:
    """The parameter count of ``GPT(config)``, worked out on paper.

    With ``C = n_embd``, ``H`` the MLP hidden size, ``K = n_kv_head * head_size``:

    - per block: two norms (``C`` each, ``2C`` for LayerNorm with bias); attention
      ``C(C + 2K)`` for ``c_attn`` plus ``C^2`` for ``c_proj`` (+ biases ``C + 2K`` and ``C``);
      MLP ``2CH`` for GELU or ``3CH`` for SwiGLU (+ biases ``H + C`` or ``2H + C``);
    - once: ``ln_f``, ``wte`` (``V C``), ``wpe`` (``block_size C``, learned positions only),
      and ``lm_head`` (``V C``) unless tied.

    ``non_embedding`` follows :meth:`GPT.num_params`. For GPT-2 small (V = 50257, 12 layers,
    768 wide) this gives 124,439,808 parameters, 123,653,376 of them non-embedding.

    >>> count_params_formula(GPTConfig(vocab_size=50257), non_embedding=False)
    124439808
    """
    C, H, L = config.n_embd, config.mlp_hidden_size, config.n_layer
    K = config.kv_heads * config.head_size
    b = 1 if config.bias else 0
    norm = C + (b * C if config.norm == "layernorm" else 0)
    attn = C * (C + 2 * K) + b * (C + 2 * K) + C * C + b * C
    if config.mlp == "gelu":
        mlp = 2 * C * H + b * (H + C)
    else:
        mlp = 3 * C * H + b * (2 * H + C)
    block = 2 * norm + attn + mlp
    wte = config.vocab_size * C
    wpe = config.block_size * C if config.pos == "learned" else 0
    head = 0 if config.tie_weights else config.vocab_size * C
    total = L * block + norm + wte + wpe + head
    if non_embedding:
        total -= wpe
        if not config.tie_weights:
            total -= wte
    return total


def flops_per_token(config: GPTConfig, seq_len: int | None = None, training: bool = True) -> float:
    """Floating-point operations per token for a forward (+ backward) pass.

    The estimate of Kaplan et al. (2020, "Scaling Laws for Neural Language Models", Table 1)
    as written in the PaLM paper (Chowdhery et al. 2022, Appendix B): a training step costs
    ``6N + 12 * n_layer * n_head * head_size * T`` FLOPs per token, where ``N`` is the
    non-embedding parameter count (every weight does one multiply-add, 2 FLOPs, forward and
    twice that backward) and the second term is the attention score and weighted-sum matmuls
    ``QK^T`` and ``AV`` over a context of ``T`` tokens (no discount for the causal mask). A
    forward pass alone costs a third of that: ``2N + 4 * n_layer * n_head * head_size * T``.

    Args:
        seq_len: context length ``T`` (defaults to ``block_size``).
        training: forward + backward (True) or forward only.

    >>> cfg = GPTConfig(vocab_size=50257)
    >>> round(flops_per_token(cfg) / 1e6)  # 6 * 123.65M + 12 * 12 * 12 * 64 * 1024, in MFLOPs
    855
    """
    T = config.block_size if seq_len is None else seq_len
    N = count_params_formula(config, non_embedding=True)
    attn = config.n_layer * config.n_head * config.head_size * T
    return float(6 * N + 12 * attn) if training else float(2 * N + 4 * attn)


def mfu(flops_per_tok: float | None, tokens_per_s: float, peak: float | None) -> float | None:
    """Model FLOPs utilisation: achieved FLOP/s over the hardware's peak (``None`` if unknown).

    ``flops_per_tok * tokens_per_s / peak`` (PaLM, Appendix B). The one MFU of the package:
    the Trainer's log, the benchmarks and :func:`estimate_mfu` all use it.

    >>> mfu(6e6, 1e6, 12e12)
    0.5
    >>> mfu(None, 1e6, 12e12) is None
    True
    """
    if not flops_per_tok or not peak or tokens_per_s <= 0:
        return None
    return flops_per_tok * tokens_per_s / peak


def estimate_mfu(config: GPTConfig, tokens_per_second: float,
                 peak_flops: float = PEAK_FLOPS["A100-bf16"], seq_len: int | None = None) -> float:
    """The MFU of a training run of ``GPT(config)``: :func:`mfu` of :func:`flops_per_token`.

    Pass the peak of your device and precision (see ``PEAK_FLOPS`` and
    :func:`llmcourse.device.peak_flops` for datasheet values); for a multi-GPU run use the
    total throughput and the summed peak.

    >>> cfg = GPTConfig(vocab_size=50257)
    >>> round(estimate_mfu(cfg, tokens_per_second=150_000, peak_flops=312e12), 3)
    0.411
    """
    if peak_flops <= 0:
        raise ValueError(f"peak_flops must be positive, got {peak_flops}")
    return mfu(flops_per_token(config, seq_len=seq_len, training=True), tokens_per_second,
               peak_flops) or 0.0
