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

from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import functional
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

    The tables ``cos`` and ``sin``, ``(max_len, hs / 2)``, are plain attributes, not buffers:
    they are not in the state dict, and ``model.half()`` or ``model.to(torch.bfloat16)`` leaves
    them in float32 (half-precision angles lose accuracy at large positions). They move with the
    module (``model.to(device)``, ``model.cuda()``), never inside :meth:`forward`: a move there,
    in the first compiled call, would change an attribute the compiled code depends on and cost
    a second compilation.

    >>> cos, sin = RotaryEmbedding(4, max_len=8)(0, 3)
    >>> tuple(cos.shape), cos.dtype, cos[0].tolist()   # position 0: no rotation
    ((3, 2), torch.float32, [1.0, 1.0])
    """

    def __init__(self, head_size: int, max_len: int, theta: float = 10000.0) -> None:
        super().__init__()
        self.head_size, self.theta = head_size, theta
        half = self.head_size // 2
        inv_freq = self.theta ** (-torch.arange(half, dtype=torch.float64) / half)  # (hs/2,)
        angles = torch.outer(torch.arange(max_len, dtype=torch.float64), inv_freq)  # exact angles
        self.max_len = max_len
        self.cos, self.sin = angles.cos().float(), angles.sin().float()  # (max_len, hs/2)

    def _apply(self, fn: Any, recurse: bool = True) -> "RotaryEmbedding":
        # nn.Module moves and casts parameters and buffers here; the tables take the move only.
        super()._apply(fn, recurse)
        device = fn(self.cos[:1]).device
        self.cos, self.sin = self.cos.to(device), self.sin.to(device)
        return self

    def forward(self, start: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(cos, sin)`` for positions ``start .. start + length - 1``, each ``(length, hs/2)``."""
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
    x1, x2 = xf[..., :half], xf[..., half:]  # (B, heads, T, hs/2) each
    out = torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    return out.to(x.dtype)


# ---------------------------------------------------------------------------- positions
def sinusoidal_table(T: int, C: int, base: float = 10000.0) -> torch.Tensor:
    """The fixed position table of Vaswani et al. (2017), ``(T, C)`` float32.

    ``PE[p, 2i] = sin(p / base**(2i/C))`` and ``PE[p, 2i+1] = cos(p / base**(2i/C))`` for
    positions ``p = 0 .. T-1`` and column pairs ``i = 0 .. C/2 - 1``; ``C`` must be even.

    >>> pe = sinusoidal_table(3, 4)
    >>> [round(v, 4) for v in pe[1].tolist()]   # sin(1), cos(1), sin(0.01), cos(0.01)
    [0.8415, 0.5403, 0.01, 0.9999]
    """
    if T < 1 or C < 1 or C % 2:
        raise ValueError(f"T and C must be positive and C even (columns come in sin/cos pairs), "
                         f"got T={T}, C={C}")
    pos = torch.arange(T, dtype=torch.float64)[:, None]  # (T, 1)
    freq = base ** (-torch.arange(0, C, 2, dtype=torch.float64) / C)  # (C/2,)
    pe = torch.empty(T, C, dtype=torch.float64)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)  # (T, C/2) each
    return pe.float()


# ---------------------------------------------------------------------------- attention
def split_heads(x: torch.Tensor, n_head: int) -> torch.Tensor:
    """``(B, T, C)`` -> ``(B, n_head, T, C // n_head)``: head ``h`` holds channels ``h*hs .. (h+1)*hs - 1``.

    >>> x = torch.arange(12.0).view(1, 2, 6)     # B=1, T=2, C=6
    >>> split_heads(x, 3)[0, 1].tolist()         # head 1: channels 2, 3 of both positions
    [[2.0, 3.0], [8.0, 9.0]]
    >>> torch.equal(merge_heads(split_heads(x, 3)), x)
    True
    """
    B, T, C = x.shape
    return x.view(B, T, n_head, C // n_head).transpose(1, 2)


def merge_heads(y: torch.Tensor) -> torch.Tensor:
    """``(B, nh, T, hs)`` -> ``(B, T, nh * hs)``, the inverse of :func:`split_heads`."""
    B, nh, T, hs = y.shape
    return y.transpose(1, 2).contiguous().view(B, T, nh * hs)


def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """Grouped-query attention: ``(B, nkv, L, hs)`` -> ``(B, nkv * n_rep, L, hs)``.

    Every key/value head is repeated for the ``n_rep`` consecutive query heads it serves.

    >>> repeat_kv(torch.tensor([[[[1.0]], [[2.0]]]]), 2).flatten().tolist()
    [1.0, 1.0, 2.0, 2.0]
    """
    if n_rep == 1:
        return x
    B, nkv, L, hs = x.shape
    return x[:, :, None].expand(B, nkv, n_rep, L, hs).reshape(B, nkv * n_rep, L, hs)


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
    head serves ``n_head / n_kv_head`` consecutive query heads (:func:`repeat_kv`).

    Two interchangeable computations of ``softmax(q k^T / sqrt(hs) + mask) v``, chosen by the
    attribute ``self.impl`` (set for every layer with :meth:`GPT.set_attention_impl
    <llmcourse.model.GPT.set_attention_impl>`):

    - ``"sdpa"`` (default): :func:`torch.nn.functional.scaled_dot_product_attention`, which
      picks a fused kernel (Flash / memory-efficient) where one is available;
    - ``"manual"``: the from-scratch
      :func:`llmcourse.model.functional.scaled_dot_product_attention`, which can also return
      the attention weights (for plots). Used automatically when weights are requested.

    This class carries the later days' features (grouped-query heads, RoPE, the KV cache);
    day 10's attention alone, in the nanoGPT form, is
    :class:`~llmcourse.model.PlainCausalSelfAttention`.
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_head, self.n_kv_head, self.head_size = config.n_head, config.kv_heads, config.head_size
        self.n_rep = config.n_head // config.kv_heads  # query heads per K/V head
        self.kv_dim = config.kv_heads * config.head_size
        self.c_attn = nn.Linear(config.n_embd, config.n_embd + 2 * self.kv_dim, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = config.dropout  # p of the dropout on the attention weights (inside SDPA)
        self.resid_dropout = nn.Dropout(config.dropout)
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
        # q (B, T, C); k and v (B, T, nkv*hs) each
        q, k, v = self.c_attn(x).split([C, self.kv_dim, self.kv_dim], dim=-1)
        q = split_heads(q, self.n_head)  # (B, nh, T, hs)
        k = split_heads(k, self.n_kv_head)  # (B, nkv, T, hs)
        v = split_heads(v, self.n_kv_head)  # (B, nkv, T, hs)
        if rope is not None:
            q, k = apply_rotary(q, *rope), apply_rotary(k, *rope)
        if kv_cache is not None:
            k, v = kv_cache.update(layer_idx, k, v)  # (B, nkv, L, hs), L = cached + T
        k, v = repeat_kv(k, self.n_rep), repeat_kv(v, self.n_rep)  # (B, nh, L, hs)
        L = k.shape[2]
        # No cached past: plain causal. After a cached past: query i sees keys 0 .. L - T + i
        # (an explicit mask; a single new token sees every key, so it needs none).
        is_causal = T > 1 and L == T
        mask = None if is_causal or T == 1 else causal_mask(T, L, device=x.device)
        dropout_p = self.dropout if self.training else 0.0
        att = None
        if self.impl == "sdpa" and not need_weights:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p,
                                               is_causal=is_causal)  # (B, nh, T, hs)
        else:  # y (B, nh, T, hs), att (B, nh, T, L)
            y, att = functional.scaled_dot_product_attention(
                q, k, v, mask, is_causal, dropout_p=dropout_p, return_weights=True)
        y = self.resid_dropout(self.c_proj(merge_heads(y)))  # (B, T, C)
        return y, att


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
