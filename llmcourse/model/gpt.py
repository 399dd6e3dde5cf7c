"""The GPT language model.

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

# The parameter, FLOP and MFU arithmetic lives in llmcourse.flops (it needs no model); it is
# imported here for the methods below and so that ``from llmcourse.model.gpt import mfu`` works.
from llmcourse.flops import PEAK_FLOPS, count_params_formula, estimate_mfu, flops_per_token, mfu

from .config import GPTConfig
from .hf import infer_gpt2_config, load_gpt2_weights, pretrained_weights
from .kv_cache import KVCache
from .layers import Block, RMSNorm, RotaryEmbedding, make_norm

__all__ = ["GPT", "PEAK_FLOPS", "count_params_formula", "estimate_mfu", "flops_per_token", "mfu"]


class GPT(nn.Module):
    """A decoder-only Transformer language model with GPT-2 parameter names.

    Args:
        config: a :class:`GPTConfig`.

    Attributes:
        config: the configuration.
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
        T = idx.shape[1]
        start = 0 if kv_cache is None else kv_cache.pos  # the position of idx[:, 0]
        x = self.transformer.wte(idx)  # (B, T, C)
        rope = None
        if self.rotary is None:  # learned positions: (T, C), broadcast over B
            x = x + self.transformer.wpe(torch.arange(start, start + T, device=idx.device))
        else:  # rotary positions: applied to q and k inside every attention layer
            rope = self.rotary(start, T)  # (T, hs/2) cos and sin
        x = self.transformer.drop(x)
        for i, block in enumerate(self.transformer.h):
            x, _ = block(x, rope=rope, kv_cache=kv_cache, layer_idx=i)  # (B, T, C)
        if kv_cache is not None:
            kv_cache.advance(T)  # every layer has stored the chunk's keys and values
        x = self.transformer.ln_f(x)  # (B, T, C)
        if targets is None:
            return self.lm_head(x[:, -1:, :] if only_last else x), None  # (B, T or 1, V)
        logits = self.lm_head(x)  # (B, T, V)
        # (B*T, V) logits in float32 even under autocast, (B*T,) targets; -1 = ignored
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)).float(), targets.reshape(-1).long(),
                               ignore_index=-1)
        return logits, loss

    def attention_maps(
        self, idx: torch.Tensor, *, kv_cache: KVCache | None = None
    ) -> list[torch.Tensor]:
        """The attention weights of every layer for ``idx`` ``(B, T)``.

        The embeddings and blocks of :meth:`forward` again, with ``need_weights=True`` (the
        explicit attention path); ``ln_f`` and ``lm_head`` are not needed. Returns a list of
        ``n_layer`` tensors ``(B, n_head, T, L)`` (``L = T`` without a cache), each row a
        probability distribution over the key positions (before attention dropout). Wrap the
        call in ``torch.no_grad()`` for plotting.

        >>> cfg = GPTConfig(vocab_size=10, block_size=8, n_layer=2, n_head=2, n_embd=8)
        >>> maps = GPT(cfg).attention_maps(torch.zeros(1, 5, dtype=torch.long))
        >>> len(maps), tuple(maps[0].shape), bool(maps[0][0, 0, 0, 1] == 0)  # causal
        (2, (1, 2, 5, 5), True)
        """
        _check_input(idx, None, kv_cache, False, self.config.block_size)
        T = idx.shape[1]
        start = 0 if kv_cache is None else kv_cache.pos
        x = self.transformer.wte(idx)  # (B, T, C)
        rope = None
        if self.rotary is None:
            x = x + self.transformer.wpe(torch.arange(start, start + T, device=idx.device))
        else:
            rope = self.rotary(start, T)
        x = self.transformer.drop(x)
        maps = []
        for i, block in enumerate(self.transformer.h):
            x, att = block(x, rope=rope, kv_cache=kv_cache, layer_idx=i, need_weights=True)
            maps.append(att)  # (B, nh, T, L)
        if kv_cache is not None:
            kv_cache.advance(T)
        return maps

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

    # ------------------------------------------------------------------ sizes and cost
    def num_params(self, non_embedding: bool = True) -> int:
        """Number of parameters (a tied matrix counted once).

        With ``non_embedding=True`` the lookup tables are left out: the position table ``wpe``
        and, when the weights are not tied, the token table ``wte``. A tied ``wte`` is kept,
        because it is also the output layer's weight (and costs compute there), as in nanoGPT.
        (Kaplan et al. (2020) leave out the token table as well; Hoffmann et al. (2022) count
        every parameter: day 30.)
        """
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            if "wpe" in self.transformer:
                n -= self.transformer.wpe.weight.numel()
            if not self.config.tie_weights:
                n -= self.transformer.wte.weight.numel()
        return n

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
        """A new GPT holding the weights of a Hugging Face GPT-2 state dict.

        ``config`` defaults to the one :func:`~llmcourse.model.hf.infer_gpt2_config` reads from
        the weights' shapes. Example (needs ``transformers``; any GPT-2 sized the same way works)::

            from transformers import GPT2LMHeadModel
            hf = GPT2LMHeadModel.from_pretrained("gpt2")
            model = GPT.from_hf_state_dict(hf.state_dict())
        """
        return load_gpt2_weights(cls(config or infer_gpt2_config(sd)), sd)

    @classmethod
    def from_pretrained(cls, model_type: str = "gpt2", path: str | Path | None = None, *,
                        dropout: float = 0.0, allow_download: bool = False) -> "GPT":
        """A released GPT-2 (``"gpt2"``, ...); see :func:`llmcourse.model.hf.pretrained_weights`
        for where the weights are read from."""
        config, sd = pretrained_weights(model_type, path, dropout=dropout,
                                        allow_download=allow_download)
        return load_gpt2_weights(cls(config), sd)


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
