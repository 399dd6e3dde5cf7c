"""Checks for day 33, "Modern architecture upgrades": RMSNorm, RoPE, SwiGLU and repeat_kv.

Each ``check_*`` runs the learner's function on sizes unlike the notebook's and compares it with
the package's module (:class:`~llmcourse.model.layers.RMSNorm`,
:func:`~llmcourse.model.layers.apply_rotary`, :class:`~llmcourse.model.layers.SwiGLU`,
:func:`~llmcourse.model.layers.repeat_kv`); it prints one line and never raises.

Example::

    >>> import torch
    >>> from llmcourse.checks import day33
    >>> ok = day33.check_repeat_kv(day33.reference_repeat_kv)
    ✅ repeat_kv: passed
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F

from llmcourse.checks._core import CheckFailed, as_tensor, assert_close, call, check
from llmcourse.model import GPTConfig
from llmcourse.model.layers import RMSNorm, RotaryEmbedding, SwiGLU, apply_rotary
from llmcourse.model.layers import repeat_kv as reference_repeat_kv

__all__ = ["reference_rms_norm", "reference_apply_rope", "reference_swiglu", "reference_repeat_kv",
           "check_rms_norm", "check_apply_rope", "check_swiglu", "check_repeat_kv"]


def reference_rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """RMSNorm over the last dimension, as the package's :class:`RMSNorm` computes it."""
    norm = RMSNorm(x.shape[-1], eps=eps)
    with torch.no_grad():
        norm.weight.copy_(weight)
        return norm(x)


def reference_apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding, half-split pairing (the package's :func:`apply_rotary`)."""
    return apply_rotary(x, cos, sin)


def reference_swiglu(x: torch.Tensor, w_gate: torch.Tensor, w_up: torch.Tensor,
                     w_down: torch.Tensor) -> torch.Tensor:
    """``(silu(x @ w_gate) * (x @ w_up)) @ w_down``."""
    return (F.silu(x @ w_gate) * (x @ w_up)) @ w_down


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, atol=1e-4, rtol=1e-4)


@check("rms_norm")
def check_rms_norm(rms_norm: Callable[..., Any]) -> None:
    """Exercise 1: ``x / sqrt(mean(x^2) + eps) * weight`` over the last dimension."""
    g = torch.Generator().manual_seed(33)
    x = torch.randn(3, 5, 12, generator=g) + 1.5          # a mean far from 0: LayerNorm differs
    weight = torch.rand(12, generator=g) + 0.5
    eps = 0.3                                              # large enough to matter
    shown = "rms_norm(x, weight, eps=0.3) with x of shape (3, 5, 12)"
    got = as_tensor(call(rms_norm, x, weight, eps, shown=shown), "rms_norm(x, weight, eps)",
                    shape=(3, 5, 12))
    want = reference_rms_norm(x, weight, eps)
    if _close(got, want):
        return
    ms = x.pow(2).mean(-1, keepdim=True)
    centred = x - x.mean(-1, keepdim=True)
    if _close(got, centred / torch.sqrt(centred.pow(2).mean(-1, keepdim=True) + eps) * weight) or \
            _close(got, F.layer_norm(x, (12,), weight, eps=eps)):
        raise CheckFailed("that is LayerNorm: RMSNorm does not subtract the mean; divide x itself "
                          "by sqrt(mean(x**2) + eps)")
    if _close(got, x / (ms.sqrt() + eps) * weight):
        raise CheckFailed("eps goes inside the square root: x / sqrt(mean(x**2) + eps)")
    if _close(got, x * torch.rsqrt(ms + eps)):
        raise CheckFailed("the result is not scaled by weight: multiply by weight at the end")
    if _close(got, x * torch.rsqrt(ms + 1e-5) * weight) or _close(got, x * torch.rsqrt(ms) * weight):
        raise CheckFailed("use the eps argument (the check passes eps=0.3), not a fixed value")
    if _close(got, x / torch.sqrt(x.pow(2).sum(-1, keepdim=True) + eps) * weight) or \
            _close(got, x / (x.norm(dim=-1, keepdim=True) + eps) * weight):
        raise CheckFailed("divide by the root of the MEAN of the squares, not of their sum "
                          "(x.norm is the root of the sum): x.pow(2).mean(dim=-1, keepdim=True)")
    if _close(got, x * torch.rsqrt(x.pow(2).mean(0, keepdim=True) + eps) * weight):
        raise CheckFailed("the mean is over the last dimension (the features of one token): "
                          "mean(dim=-1, keepdim=True)")
    assert_close(got, want, "rms_norm(x, weight, eps)", atol=1e-4)


@check("apply_rope")
def check_apply_rope(apply_rope: Callable[..., Any]) -> None:
    """Exercise 2: rotate pairs (i, i + hs/2) by the angles of cos and sin."""
    g = torch.Generator().manual_seed(7)
    B, h, T, hs = 2, 3, 7, 10                               # hs 10: not a power of two
    x = torch.randn(B, h, T, hs, generator=g)
    cos, sin = RotaryEmbedding(hs, max_len=32)(4, T)        # positions 4..10, not 0..6
    shown = "apply_rope(x, cos, sin) with x of shape (2, 3, 7, 10), cos and sin of shape (7, 5)"
    got = as_tensor(call(apply_rope, x, cos, sin, shown=shown), "apply_rope(x, cos, sin)",
                    shape=(B, h, T, hs))
    want = reference_apply_rope(x, cos, sin)
    if _close(got, want):
        return
    x1, x2 = x[..., : hs // 2], x[..., hs // 2:]
    if _close(got, torch.cat((x1 * cos + x2 * sin, -x1 * sin + x2 * cos), dim=-1)):
        raise CheckFailed("the rotation goes the wrong way (by minus the angle): the first half is "
                          "x1*cos - x2*sin, the second x1*sin + x2*cos")
    ev, od = x[..., 0::2], x[..., 1::2]
    inter = torch.stack((ev * cos - od * sin, ev * sin + od * cos), dim=-1).flatten(-2)
    if _close(got, inter):
        raise CheckFailed("you paired neighbours (2i, 2i+1); the package pairs dimension i with "
                          "i + hs/2: x1, x2 = x[..., :hs//2], x[..., hs//2:]")
    if _close(got, torch.cat((x1 * cos - x2 * sin, x1 * sin - x2 * cos), dim=-1)) or \
            _close(got, torch.cat((x1 * cos, x2 * cos), dim=-1)):
        raise CheckFailed("the second half should be x1*sin + x2*cos (a rotation mixes both halves "
                          "in both outputs)")
    if _close(got, x):
        raise CheckFailed("x came back unchanged: rotate it by the angles in cos and sin")
    assert_close(got, want, "apply_rope(x, cos, sin)", atol=1e-4)


@check("swiglu")
def check_swiglu(swiglu: Callable[..., Any]) -> None:
    """Exercise 3: ``(silu(x @ w_gate) * (x @ w_up)) @ w_down``, against the package's SwiGLU."""
    g = torch.Generator().manual_seed(3)
    C, H = 12, 20
    x = torch.randn(2, 5, C, generator=g)
    w_gate, w_up = torch.randn(C, H, generator=g) * 0.5, torch.randn(C, H, generator=g) * 0.5
    w_down = torch.randn(H, C, generator=g) * 0.5
    shown = "swiglu(x, w_gate, w_up, w_down) with x (2, 5, 12), w_gate and w_up (12, 20), w_down (20, 12)"
    got = as_tensor(call(swiglu, x, w_gate, w_up, w_down, shown=shown),
                    "swiglu(x, w_gate, w_up, w_down)", shape=(2, 5, C))
    # The package's module with these weights (nn.Linear stores the transpose, gate first).
    mlp = SwiGLU(GPTConfig(vocab_size=8, block_size=8, n_layer=1, n_head=1, n_embd=C,
                           mlp="swiglu", mlp_hidden=H, bias=False))
    with torch.no_grad():
        mlp.c_fc.weight.copy_(torch.cat((w_gate.T, w_up.T)))
        mlp.c_proj.weight.copy_(w_down.T)
        want = mlp(x)
    if _close(got, want):
        return
    a, b = x @ w_gate, x @ w_up
    if _close(got, (a * F.silu(b)) @ w_down):
        raise CheckFailed("the SiLU is on the wrong branch: silu(x @ w_gate) * (x @ w_up); the gate "
                          "is the one that goes through the activation")
    if _close(got, (F.gelu(a) * b) @ w_down) or _close(got, (F.gelu(a, approximate="tanh") * b) @ w_down):
        raise CheckFailed("that is GeGLU (GELU): SwiGLU uses SiLU, x * sigmoid(x) (F.silu)")
    if _close(got, (torch.sigmoid(a) * b) @ w_down):
        raise CheckFailed("sigmoid(x @ w_gate) is the original GLU; SwiGLU uses silu = x * sigmoid(x)")
    if _close(got, (a * b) @ w_down):
        raise CheckFailed("no activation: apply F.silu to x @ w_gate before multiplying")
    if _close(got, F.silu(a * b) @ w_down):
        raise CheckFailed("the SiLU goes on the gate alone, before the product: "
                          "silu(x @ w_gate) * (x @ w_up)")
    assert_close(got, want, "swiglu(x, w_gate, w_up, w_down)", atol=1e-4)


@check("repeat_kv")
def check_repeat_kv(repeat_kv: Callable[..., Any]) -> None:
    """Exercise 4: ``(B, nkv, L, hs) -> (B, nkv * n_rep, L, hs)``, each head for consecutive queries."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 3, 5, 4, generator=g)               # 3 kv heads, 5 positions, head size 4
    got = as_tensor(call(repeat_kv, x, 2, shown="repeat_kv(x, 2) with x of shape (2, 3, 5, 4)"),
                    "repeat_kv(x, 2)", shape=(2, 6, 5, 4))
    want = reference_repeat_kv(x, 2)
    if not torch.equal(got, want):
        if torch.equal(got, x.repeat(1, 2, 1, 1)):
            raise CheckFailed("x.repeat tiles the heads as 0, 1, 2, 0, 1, 2; query heads 0 and 1 "
                              "share kv head 0, so the order must be 0, 0, 1, 1, 2, 2 "
                              "(x.repeat_interleave(n_rep, dim=1), or expand and reshape)")
        raise CheckFailed("repeat_kv(x, 2)[:, j] should be kv head j // 2 of x, for j = 0..5")
    got = as_tensor(call(repeat_kv, x, 1, shown="repeat_kv(x, 1)"), "repeat_kv(x, 1)",
                    shape=(2, 3, 5, 4))
    if not torch.equal(got, x):
        raise CheckFailed("with n_rep = 1 (ordinary multi-head attention) x should come back as it is")
    x1 = torch.randn(1, 1, 3, 2, generator=g)
    got = as_tensor(call(repeat_kv, x1, 4, shown="repeat_kv(x, 4) with x of shape (1, 1, 3, 2)"),
                    "repeat_kv(x, 4)", shape=(1, 4, 3, 2))
    if not torch.equal(got, reference_repeat_kv(x1, 4)):
        raise CheckFailed("with one kv head (multi-query attention) every query head gets the same "
                          "keys: repeat_kv(x, 4)[:, j] == x[:, 0] for every j")
