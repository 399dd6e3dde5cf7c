"""The building blocks of the GPT: norms, MLPs, rotary embeddings, attention, the block.

Module and parameter names follow GPT-2 (``ln_1``, ``attn.c_attn``, ``attn.c_proj``, ``ln_2``,
``mlp.c_fc``, ``mlp.c_proj``) so that GPT-2's weights load by name. Hugging Face stores GPT-2's
projections as ``Conv1D`` with the weight transposed; :mod:`llmcourse.model.hf` does the
transposition when importing, here everything is a plain :class:`torch.nn.Linear`.

Tensor shape names used in comments: ``B`` batch, ``T`` new positions (queries), ``L`` key
positions (``T`` without a cache, ``pos + T`` with one), ``C`` ``n_embd``, ``nh`` query heads,
``nkv`` key/value heads, ``hs`` head size.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import GPTConfig

if TYPE_CHECKING:
    from .kv_cache import KVCache


# ---------------------------------------------------------------------------- norms
class RMSNorm(nn.Module):
    """Root-mean-square norm: ``x / sqrt(mean(x^2) + eps) * weight``.

    Unlike LayerNorm it neither subtracts the mean nor adds a bias: cheaper, and in practice as
    good (Zhang & Sennrich, 2019). The statistic is computed in float32 for stability under
    half precision; the result has the input's dtype.

    >>> norm = RMSNorm(4)
    >>> y = norm(torch.tensor([[1.0, -1.0, 1.0, -1.0]]) * 3)
    >>> torch.allclose(y, torch.tensor([[1.0, -1.0, 1.0, -1.0]]), atol=1e-4)
    True
    """

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return xf.to(x.dtype) * self.weight

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"


def make_norm(config: GPTConfig) -> nn.Module:
    """The norm layer ``config`` asks for (LayerNorm with/without bias, or RMSNorm)."""
    if config.norm == "rmsnorm":
        return RMSNorm(config.n_embd, eps=config.norm_eps)
    return nn.LayerNorm(config.n_embd, eps=config.norm_eps, bias=config.bias)


# ---------------------------------------------------------------------------- MLPs
class MLP(nn.Module):
    """GPT-2's feed-forward block: Linear(C, H), GELU, Linear(H, C), dropout.

    ``H = config.mlp_hidden_size`` (``4 * C`` by default). The GELU uses the tanh
    approximation by default because GPT-2 was trained with it (``config.gelu_approximate``).
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        hidden = config.mlp_hidden_size
        self.c_fc = nn.Linear(config.n_embd, hidden, bias=config.bias)
        self.c_proj = nn.Linear(hidden, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)
        self.approximate = config.gelu_approximate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.gelu(self.c_fc(x), approximate=self.approximate)  # (B, T, H)
        return self.dropout(self.c_proj(h))  # (B, T, C)


class SwiGLU(nn.Module):
    """A SiLU-gated MLP (Shazeer, 2020): ``c_proj(silu(x W_gate) * (x W_up))``.

    The gate and up projections are fused into one ``c_fc`` of output size ``2 * H`` (gate
    first, then up), which keeps GPT-2's module names and needs one matrix multiply instead of
    two. ``H = config.mlp_hidden_size`` (about ``8/3 * C``).
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        hidden = config.mlp_hidden_size
        self.hidden = hidden
        self.c_fc = nn.Linear(config.n_embd, 2 * hidden, bias=config.bias)
        self.c_proj = nn.Linear(hidden, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.c_fc(x).split(self.hidden, dim=-1)  # 2 x (B, T, H)
        return self.dropout(self.c_proj(F.silu(gate) * up))  # (B, T, C)


def make_mlp(config: GPTConfig) -> nn.Module:
    """The feed-forward block ``config`` asks for."""
    return SwiGLU(config) if config.mlp == "swiglu" else MLP(config)


# ---------------------------------------------------------------------------- RoPE
class RotaryEmbedding(nn.Module):
    """Precomputed cos/sin tables for rotary position embeddings (Su et al., 2021).

    Dimension pair ``(i, i + hs/2)`` of a query or key at position ``p`` is rotated by the angle
    ``p * theta ** (-2i / hs)``. The dot product of a rotated query at ``p`` and a rotated key
    at ``q`` then depends on the positions only through ``p - q``. This uses the "half split"
    pairing (as GPT-NeoX and Hugging Face's LLaMA do), not the interleaved ``(2i, 2i+1)`` one;
    both are equivalent up to a fixed permutation of the head dimensions.

    The tables are non-persistent buffers (not in the state dict) of shape
    ``(max_len, hs / 2)`` and are always kept in float32, even after ``model.half()``, because
    half-precision angles lose accuracy at large positions.
    """

    cos: torch.Tensor
    sin: torch.Tensor

    def __init__(self, head_size: int, max_len: int, theta: float = 10000.0) -> None:
        super().__init__()
        if head_size % 2:
            raise ValueError(f"rotary embeddings need an even head size, got {head_size}")
        self.head_size = head_size
        self.max_len = max_len
        self.theta = theta
        self.register_buffer("cos", torch.empty(0), persistent=False)
        self.register_buffer("sin", torch.empty(0), persistent=False)
        self._build(torch.device("cpu"))

    def _build(self, device: torch.device) -> None:
        half = self.head_size // 2
        inv_freq = self.theta ** (-torch.arange(half, device=device, dtype=torch.float64) / half)
        t = torch.arange(self.max_len, device=device, dtype=torch.float64)
        angles = torch.outer(t, inv_freq)  # (max_len, hs/2), float64 for exact angles
        self.cos = angles.cos().float()
        self.sin = angles.sin().float()

    def _apply(self, fn, *args, **kwargs):  # type: ignore[override]
        # .to(device)/.half()/... : follow the device but rebuild the tables in float32.
        super()._apply(fn, *args, **kwargs)
        if self.cos.dtype != torch.float32 and self.cos.device.type != "meta":
            self._build(self.cos.device)
        return self

    def resize(self, max_len: int) -> None:
        """Recompute the tables for a new maximum length (used by ``crop_block_size``)."""
        self.max_len = max_len
        self._build(self.cos.device)

    def forward(self, start: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(cos, sin)`` for positions ``start .. start + length - 1``, each ``(length, hs/2)``."""
        if start + length > self.max_len:
            raise ValueError(
                f"positions up to {start + length - 1} requested but the rotary tables stop at "
                f"{self.max_len - 1}"
            )
        return self.cos[start:start + length], self.sin[start:start + length]

    def extra_repr(self) -> str:
        return f"head_size={self.head_size}, max_len={self.max_len}, theta={self.theta}"


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` ``(B, heads, T, hs)`` by the angles whose ``cos``/``sin`` are ``(T, hs/2)``.

    Computed in float32 and returned in ``x``'s dtype.

    >>> x = torch.randn(1, 1, 3, 4)
    >>> rope = RotaryEmbedding(4, max_len=8)
    >>> cos, sin = rope(0, 3)
    >>> y = apply_rotary(x, cos, sin)
    >>> torch.allclose(y[..., 0, :], x[..., 0, :])  # position 0 is not rotated
    True
    >>> torch.allclose(y.norm(dim=-1), x.norm(dim=-1), atol=1e-6)  # rotations keep the length
    True
    """
    half = x.shape[-1] // 2
    xf = x.float()
    x1, x2 = xf[..., :half], xf[..., half:]  # (B, h, T, hs/2) each
    out = torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    return out.to(x.dtype)


# ---------------------------------------------------------------------------- attention
def causal_mask(n_query: int, n_key: int, device: torch.device | None = None) -> torch.Tensor:
    """Boolean ``(n_query, n_key)`` mask, ``True`` where attention is allowed.

    The queries are the last ``n_query`` of the ``n_key`` positions (a chunk appended after
    ``n_key - n_query`` cached ones), so query ``i`` may see keys ``0 .. n_key - n_query + i``.

    >>> causal_mask(2, 4).int()
    tensor([[1, 1, 1, 0],
            [1, 1, 1, 1]], dtype=torch.int32)
    """
    offset = n_key - n_query
    return torch.ones(n_query, n_key, dtype=torch.bool, device=device).tril(diagonal=offset)


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with optional grouped-query K/V heads and RoPE.

    ``c_attn`` projects the input to queries (``C``), keys and values (``nkv * hs`` each) in one
    matrix multiply; with ``n_kv_head == n_head`` that is GPT-2's ``(3C, C)`` weight. Each K/V
    head serves ``n_head / n_kv_head`` consecutive query heads.

    Two interchangeable computations:

    - ``impl="sdpa"`` (default): :func:`torch.nn.functional.scaled_dot_product_attention`, which
      picks a fused kernel (Flash / memory-efficient) where one is available;
    - ``impl="manual"``: the explicit ``softmax(q k^T / sqrt(hs) + mask) v``, which can also
      return the attention weights (for plots). Used automatically when weights are requested.
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.n_kv_head = config.kv_heads
        self.head_size = config.head_size
        self.n_embd = config.n_embd
        kv_dim = self.n_kv_head * self.head_size
        self.c_attn = nn.Linear(config.n_embd, config.n_embd + 2 * kv_dim, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.dropout = config.dropout
        self.impl = "sdpa"

    def forward(
        self,
        x: torch.Tensor,
        *,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
        kv_cache: KVCache | None = None,
        layer_idx: int = 0,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attend ``x`` ``(B, T, C)`` over itself (and the cached past).

        Args:
            rope: ``(cos, sin)`` tables for the chunk's positions, or ``None`` (learned
                positions are added before the first block instead).
            kv_cache: when given, the chunk's keys/values are stored in layer ``layer_idx`` of
                the cache and the queries attend over every filled position.
            need_weights: also return the attention weights (forces the manual path).

        Returns:
            ``(y, att)``: ``y`` ``(B, T, C)``; ``att`` ``(B, nh, T, L)`` or ``None``.
        """
        B, T, C = x.shape
        hs, nh, nkv = self.head_size, self.n_head, self.n_kv_head
        q, k, v = self.c_attn(x).split([C, nkv * hs, nkv * hs], dim=-1)
        q = q.view(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, nkv, hs).transpose(1, 2)  # (B, nkv, T, hs)
        v = v.view(B, T, nkv, hs).transpose(1, 2)  # (B, nkv, T, hs)
        if rope is not None:
            cos, sin = rope
            q = apply_rotary(q, cos, sin)
            k = apply_rotary(k, cos, sin)
        if kv_cache is not None:
            k, v = kv_cache.update(layer_idx, k, v)  # (B, nkv, L, hs), L = pos + T
            if k.dtype != q.dtype:  # e.g. an fp32 cache under autocast
                k, v = k.to(q.dtype), v.to(q.dtype)
        L = k.shape[2]
        if nkv != nh:  # grouped-query: every K/V head serves nh // nkv query heads
            rep = nh // nkv
            k = k[:, :, None].expand(B, nkv, rep, L, hs).reshape(B, nh, L, hs)
            v = v[:, :, None].expand(B, nkv, rep, L, hs).reshape(B, nh, L, hs)

        att = None
        if self.impl == "sdpa" and not need_weights:
            dropout_p = self.dropout if self.training else 0.0
            if T == L:  # no cached past: plain causal attention
                y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
            elif T == 1:  # one new token sees everything cached
                y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
            else:  # a chunk after a cached past: causal inside the chunk
                mask = causal_mask(T, L, device=q.device)
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
        else:
            scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))  # (B, nh, T, L)
            scores = scores.masked_fill(~causal_mask(T, L, device=q.device), float("-inf"))
            att = F.softmax(scores.float(), dim=-1).to(q.dtype)
            y = self.attn_dropout(att) @ v  # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # re-assemble the heads
        y = self.resid_dropout(self.c_proj(y))
        return y, (att if need_weights else None)


class Block(nn.Module):
    """A pre-norm Transformer block: ``x + attn(ln_1(x))``, then ``x + mlp(ln_2(x))``."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = make_norm(config)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = make_norm(config)
        self.mlp = make_mlp(config)

    def forward(
        self,
        x: torch.Tensor,
        *,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
        kv_cache: KVCache | None = None,
        layer_idx: int = 0,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        a, att = self.attn(self.ln_1(x), rope=rope, kv_cache=kv_cache, layer_idx=layer_idx,
                           need_weights=need_weights)
        x = x + a
        x = x + self.mlp(self.ln_2(x))
        return x, att
