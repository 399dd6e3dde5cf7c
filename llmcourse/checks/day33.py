"""Checks for day 33, "Modern architecture upgrades": RMSNorm, RoPE, SwiGLU and repeat_kv.

Each ``check_*`` compares the learner's function with a reference on a small seeded battery
(sizes unlike the notebook's ``hs = 8`` and ``n_embd = 384``, float32 and float64, non-default
``eps``, positions that do not start at 0, one kv head and ``n_rep = 1``): the outputs AND the
gradients with respect to every input and weight. It prints one line - a pass, a hint from the
exercise's table of typical mistakes, or "not done yet" - and never raises. The references are
the package's :func:`~llmcourse.model.layers.apply_rotary` and
:func:`~llmcourse.model.layers.repeat_kv`, and :func:`reference_rms_norm`,
:func:`reference_swiglu` (the package's RMSNorm and SwiGLU as functions).

Example::

    >>> import torch
    >>> from llmcourse.checks import day33
    >>> ok = day33.check_repeat_kv(lambda x, n_rep: x.repeat_interleave(n_rep, dim=1))
    ✅ repeat_kv: passed
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F

from llmcourse.checks._core import Case, Mistake, check, compare, outputs_and_grads
from llmcourse.model.layers import RotaryEmbedding, apply_rotary
from llmcourse.model.layers import repeat_kv as reference_repeat_kv

__all__ = ["reference_rms_norm", "reference_apply_rope", "reference_swiglu", "reference_repeat_kv",
           "check_rms_norm", "check_apply_rope", "check_swiglu", "check_repeat_kv"]


def reference_rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """RMSNorm over the last dimension: ``x / sqrt(mean(x^2) + eps) * weight``."""
    return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps) * weight


def reference_apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding, half-split pairing (the package's :func:`apply_rotary`)."""
    return apply_rotary(x, cos, sin)


def reference_swiglu(x: torch.Tensor, w_gate: torch.Tensor, w_up: torch.Tensor,
                     w_down: torch.Tensor) -> torch.Tensor:
    """``(silu(x @ w_gate) * (x @ w_up)) @ w_down``."""
    return (F.silu(x @ w_gate) * (x @ w_up)) @ w_down


def _grads(*names: str) -> Callable[[Any, Case], Any]:
    """A ``run`` that makes the first ``len(names)`` arguments require grad and observes the output
    and their gradients."""

    def run(impl: Any, case: Case) -> Any:
        args, kwargs = case.fresh()
        args = [a.requires_grad_(True) if i < len(names) else a for i, a in enumerate(args)]
        return outputs_and_grads(impl(*args, **kwargs), dict(zip(names, args)))

    return run


# ---- exercise 1: rms_norm ----------------------------------------------------------------------


def _rms(x, w, eps=1e-5, *, stat=lambda x: x.pow(2).mean(-1, keepdim=True), inside=True, fixed=None,
         weight=True, detach=False):
    e = eps if fixed is None else fixed
    s = stat(x)
    d = torch.sqrt(s + e) if inside else torch.sqrt(s) + e
    return x / (d.detach() if detach else d) * (w if weight else 1)


RMS = [
    Mistake("LayerNorm", lambda x, w, eps=1e-5: F.layer_norm(x, x.shape[-1:], w, eps=eps),
            hint="that is LayerNorm: RMSNorm does not subtract the mean; divide x itself by "
            "sqrt(mean(x**2) + eps)"),
    Mistake("centred", lambda x, w, eps=1e-5: _rms(x - x.mean(-1, keepdim=True), w, eps),
            expect="that is LayerNorm"),
    Mistake("eps outside", lambda x, w, eps=1e-5: _rms(x, w, eps, inside=False), hint="eps goes "
            "inside the square root: x / sqrt(mean(x**2) + eps)"),
    Mistake("no weight", lambda x, w, eps=1e-5: _rms(x, w, eps, weight=False), hint="the result is "
            "not scaled by weight: multiply by weight at the end"),
    Mistake("fixed eps", lambda x, w, eps=1e-5: _rms(x, w, eps, fixed=1e-5), hint="the eps argument "
            "was not used (left out, or a fixed 1e-5 written in; the check passes other values): "
            "x / sqrt(mean(x**2) + eps)"),
    Mistake("no eps", lambda x, w, eps=1e-5: x / x.pow(2).mean(-1, keepdim=True).sqrt() * w,
            expect="the eps argument was not used"),
    Mistake("sum", lambda x, w, eps=1e-5: _rms(x, w, eps, stat=lambda x: x.pow(2).sum(-1, keepdim=True)),
            hint="divide by the root of the MEAN of the squares, not of their sum (x.norm is the "
            "root of the sum): x.pow(2).mean(dim=-1, keepdim=True)"),
    Mistake("mean over dim 0",
            lambda x, w, eps=1e-5: _rms(x, w, eps, stat=lambda x: x.pow(2).mean(0, keepdim=True)),
            hint="the mean is over the last dimension (the features of one token): "
            "mean(dim=-1, keepdim=True)"),
    Mistake("mean over dim 1",
            lambda x, w, eps=1e-5: _rms(x, w, eps, stat=lambda x: x.pow(2).mean(1, keepdim=True)),
            hint="the mean is over the last dimension (the features of one token), not dim 1: "
            "mean(dim=-1, keepdim=True)"),
    Mistake("mean of everything", lambda x, w, eps=1e-5: x / torch.sqrt(x.pow(2).mean() + eps) * w,
            hint="x.pow(2).mean() without dim averages the whole tensor; each token needs its own "
            "root-mean-square: x.pow(2).mean(dim=-1, keepdim=True)"),
    Mistake("no keepdim", lambda x, w, eps=1e-5: x / torch.sqrt(x.pow(2).mean(-1) + eps) * w,
            hint="the mean needs keepdim=True: without it mean(x**2, dim=-1) has shape (B, T) and "
            "does not line up with x (B, T, C); x.pow(2).mean(dim=-1, keepdim=True)"),
    Mistake("no square root", lambda x, w, eps=1e-5: x / (x.pow(2).mean(-1, keepdim=True) + eps) * w,
            hint="divide by the square ROOT of mean(x**2) + eps: torch.sqrt(...) or multiply by "
            "torch.rsqrt(...)"),
    Mistake("variance", lambda x, w, eps=1e-5: _rms(x, w, eps, stat=lambda x: x.var(-1, keepdim=True)),
            hint="x.var subtracts the mean (and divides by C - 1): RMSNorm divides by "
            "sqrt(mean(x**2) + eps), x.pow(2).mean(dim=-1, keepdim=True)"),
    Mistake("weight added", lambda x, w, eps=1e-5: x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps) + w,
            hint="the weight is added; multiply by it: x / sqrt(mean(x**2) + eps) * weight"),
    Mistake("in place", lambda x, w, eps=1e-5: x.mul_(torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)).mul_(w),
            hint="rms_norm changed x in place (x.mul_, x /= ...), which autograd refuses and which "
            "would change the caller's x: return a new tensor, x / sqrt(mean(x**2) + eps) * weight"),
    Mistake("rms detached", lambda x, w, eps=1e-5: _rms(x, w, eps, detach=True), hint="the "
            "output is right but the gradient of x is not: the root-mean-square is detached (or "
            "computed under torch.no_grad()); the gradient must flow through it too"),
]


def _rms_cases() -> list[Case]:
    g = torch.Generator().manual_seed(33)
    return [
        Case("rms_norm(x (3, 5, 12) with mean 1.5, weight (12,), eps=0.3)",
             torch.randn(3, 5, 12, generator=g) + 1.5, torch.rand(12, generator=g) + 0.5, 0.3),
        Case("rms_norm(x (4, 7) float64, weight (7,) float64, eps=0.01)",
             torch.randn(4, 7, generator=g, dtype=torch.float64),
             torch.rand(7, generator=g, dtype=torch.float64) + 0.5, 0.01),
        Case("rms_norm(x (2, 3, 20) of size 1e-3, weight (20,)) with the default eps",
             torch.randn(2, 3, 20, generator=g) * 1e-3, torch.rand(20, generator=g) + 0.5),
        Case("rms_norm(x (1, 6) constant, weight (6,), eps=1e-6)", torch.full((1, 6), 2.0),
             torch.rand(6, generator=g), 1e-6),
    ]


@check("rms_norm", mistakes=RMS)
def check_rms_norm(rms_norm: Callable[..., Any]) -> None:
    """Exercise 1: ``x / sqrt(mean(x^2) + eps) * weight`` over the last dimension, with gradients."""
    compare(rms_norm, reference_rms_norm, _rms_cases(), name="rms_norm(x, weight, eps)",
            run=_grads("x", "weight"), mistakes=RMS, atol=1e-4)


# ---- exercise 2: apply_rope --------------------------------------------------------------------


def _halves(x, half=None):
    h = x.shape[-1] // 2 if half is None else half
    return x[..., :h], x[..., h:]


def _interleaved(x, cos, sin):
    ev, od = x[..., 0::2], x[..., 1::2]
    return torch.stack((ev * cos - od * sin, ev * sin + od * cos), dim=-1).flatten(-2)


def _rope(sign=1.0, second=lambda x1, x2, c, s: x1 * s + x2 * c):
    def apply_rope(x, cos, sin):
        x1, x2 = _halves(x)
        return torch.cat((x1 * cos - sign * x2 * sin, second(x1, x2, cos, sign * sin)), dim=-1)
    return apply_rope


def _rope_in_place(x, cos, sin):
    x1, x2 = _halves(x)
    x1, x2 = x1 * cos - x2 * sin, x1 * sin + x2 * cos
    x[..., :x.shape[-1] // 2] = x1
    x[..., x.shape[-1] // 2:] = x2
    return x


def _hs8(x, cos, sin):  # the notebook's global hs = 8 instead of x's own size
    x1, x2 = x[..., :4], x[..., 4:]
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


ROPE = [
    Mistake("wrong way", _rope(sign=-1.0), hint="the rotation goes the wrong way (by minus the "
            "angle): the first half is x1*cos - x2*sin, the second x1*sin + x2*cos"),
    Mistake("interleaved", _interleaved, hint="you paired neighbours (2i, 2i+1); the package pairs "
            "dimension i with i + hs/2: x1, x2 = x[..., :hs//2], x[..., hs//2:]"),
    Mistake("neighbours, concatenated", lambda x, c, s: torch.cat(
        (x[..., 0::2] * c - x[..., 1::2] * s, x[..., 0::2] * s + x[..., 1::2] * c), dim=-1),
            hint="you paired neighbours (2i, 2i+1); the package pairs dimension i with i + hs/2: "
            "x1, x2 = x[..., :hs//2], x[..., hs//2:]"),
    Mistake("stacked", lambda x, c, s: torch.stack(
        (_halves(x)[0] * c - _halves(x)[1] * s, _halves(x)[0] * s + _halves(x)[1] * c), dim=-1).flatten(-2),
            hint="torch.stack(..., dim=-1) interleaves the two rotated halves; put them one after "
            "the other: torch.cat((x1*cos - x2*sin, x1*sin + x2*cos), dim=-1)"),
    Mistake("halves swapped", lambda x, c, s: _rope()(torch.cat(_halves(x)[::-1], dim=-1), c, s),
            hint="the halves are swapped: x1 is the FIRST half, x[..., :hs//2], and x2 the second"),
    Mistake("in place", _rope_in_place, hint="apply_rope wrote into x in place (x[..., :half] = "
            "...), which autograd refuses and which would change the caller's x: build the result "
            "with torch.cat((x1*cos - x2*sin, x1*sin + x2*cos), dim=-1) and return it"),
    Mistake("second half", _rope(second=lambda x1, x2, c, s: x1 * s - x2 * c), hint="the second "
            "half should be x1*sin + x2*cos (a rotation mixes both halves in both outputs)"),
    Mistake("second half minus x1*sin", _rope(second=lambda x1, x2, c, s: x2 * c - x1 * s),
            hint="the second half is x1*sin + x2*cos, with a plus (only the first half has a "
            "minus, x1*cos - x2*sin)"),
    Mistake("second half cos and sin swapped", _rope(second=lambda x1, x2, c, s: x1 * c + x2 * s),
            hint="the second half should be x1*sin + x2*cos (a rotation mixes both halves in both "
            "outputs)"),
    Mistake("first half plus", lambda x, c, s: torch.cat((_halves(x)[0] * c + _halves(x)[1] * s,
                                                         _halves(x)[0] * s + _halves(x)[1] * c), dim=-1),
            hint="the first half is x1*cos MINUS x2*sin (the second is x1*sin + x2*cos)"),
    Mistake("outputs swapped", lambda x, c, s: torch.cat(_halves(_rope()(x, c, s))[::-1], dim=-1),
            hint="the two rotated halves are in the wrong order: first x1*cos - x2*sin, then "
            "x1*sin + x2*cos"),
    Mistake("cat along dim 0", lambda x, c, s: torch.cat(
        (_halves(x)[0] * c - _halves(x)[1] * s, _halves(x)[0] * s + _halves(x)[1] * c)),
            hint="torch.cat without dim joins the halves along dim 0 (the batch): put them back "
            "side by side along the last dimension, torch.cat((...), dim=-1)"),
    Mistake("cat along dim 1", lambda x, c, s: torch.cat(
        (_halves(x)[0] * c - _halves(x)[1] * s, _halves(x)[0] * s + _halves(x)[1] * c), dim=1),
            hint="the rotated halves were joined along dim 1 (the heads): put them back side by "
            "side along the last dimension, torch.cat((...), dim=-1)"),
    Mistake("cos only", lambda x, c, s: torch.cat((_halves(x)[0] * c, _halves(x)[1] * c), dim=-1),
            hint="the second half should be x1*sin + x2*cos (a rotation mixes both halves in both "
            "outputs)"),
    Mistake("cos and sin swapped", lambda x, c, s: _rope()(x, s, c), hint="cos and sin are swapped: "
            "the first half is x1*cos - x2*sin"),
    Mistake("global hs", _hs8, hint="the halves are x.shape[-1] // 2 of x itself: a size taken "
            "from the notebook (hs = 8) breaks on other head sizes"),
    Mistake("unchanged", lambda x, c, s: x, hint="x came back unchanged: rotate it by the angles "
            "in cos and sin"),
]


def _rope_cases() -> list[Case]:
    g = torch.Generator().manual_seed(7)

    def case(B, h, T, hs, start, dtype=torch.float32):
        cos, sin = RotaryEmbedding(hs, max_len=64)(start, T)
        return Case(f"apply_rope(x ({B}, {h}, {T}, {hs}) {str(dtype)[6:]}, cos/sin of positions "
                    f"{start}..{start + T - 1})", torch.randn(B, h, T, hs, generator=g, dtype=dtype),
                    cos, sin)

    return [case(2, 3, 7, 10, 4), case(1, 2, 5, 16, 0), case(3, 1, 4, 6, 20, torch.float64),
            case(1, 4, 1, 8, 9)]


@check("apply_rope", mistakes=ROPE)
def check_apply_rope(apply_rope: Callable[..., Any]) -> None:
    """Exercise 2: rotate pairs (i, i + hs/2) by the angles of cos and sin, with gradients."""
    compare(apply_rope, reference_apply_rope, _rope_cases(), name="apply_rope(x, cos, sin)",
            run=_grads("x"), mistakes=ROPE, atol=1e-5)


# ---- exercise 3: swiglu ------------------------------------------------------------------------


def _glu(act, where="gate"):
    def swiglu(x, w_gate, w_up, w_down):
        a, b = x @ w_gate, x @ w_up
        if where == "up":
            return (a * act(b)) @ w_down
        if where == "product":
            return act(a * b) @ w_down
        return (act(a) * b) @ w_down
    return swiglu


SWIGLU = [
    Mistake("SiLU on the up branch", _glu(F.silu, "up"), hint="the SiLU is on the wrong branch: "
            "silu(x @ w_gate) * (x @ w_up); the gate is the one that goes through the activation"),
    Mistake("GELU", _glu(F.gelu), hint="that is GeGLU (GELU): SwiGLU uses SiLU, x * sigmoid(x) (F.silu)"),
    Mistake("sigmoid", _glu(torch.sigmoid), hint="sigmoid(x @ w_gate) is the original GLU; SwiGLU "
            "uses silu = x * sigmoid(x)"),
    Mistake("ReLU", _glu(F.relu), hint="that is ReGLU (ReLU): SwiGLU uses SiLU, x * sigmoid(x) (F.silu)"),
    Mistake("weights transposed", lambda x, g, u, d: (F.silu(F.linear(x, g)) * F.linear(x, u)) @ d.T,
            hint="the weights are (C, hidden) matrices used as x @ w_gate, not nn.Linear weights "
            "(out, in): F.linear(x, w) and w.T multiply by the transpose; write x @ w_gate, "
            "x @ w_up and (...) @ w_down"),
    Mistake("SiLU on both branches", lambda x, g, u, d: (F.silu(x @ g) * F.silu(x @ u)) @ d,
            hint="only the gate goes through the SiLU: silu(x @ w_gate) * (x @ w_up), the up "
            "branch stays linear"),
    Mistake("no activation", _glu(lambda t: t), hint="no activation: apply F.silu to x @ w_gate "
            "before multiplying"),
    Mistake("branches added", lambda x, g, u, d: (F.silu(x @ g) + x @ u) @ d, hint="the two "
            "branches are multiplied, not added: silu(x @ w_gate) * (x @ w_up)"),
    Mistake("no up branch", lambda x, g, u, d: F.silu(x @ g) @ d, hint="w_up is not used: the gate "
            "multiplies a second projection, silu(x @ w_gate) * (x @ w_up), before w_down"),
    Mistake("precedence", lambda x, g, u, d: F.silu(x @ g) * x @ u @ d, hint="* and @ bind "
            "equally, left to right, so silu(x @ w_gate) * x came first: bracket the product, "
            "(silu(x @ w_gate) * (x @ w_up)) @ w_down"),
    Mistake("SiLU of x", lambda x, g, u, d: ((F.silu(x) @ g) * (x @ u)) @ d, hint="the SiLU goes "
            "on the gate's projection, silu(x @ w_gate), not on x before it"),
    Mistake("gate detached", lambda x, g, u, d: (F.silu(x @ g).detach() * (x @ u)) @ d,
            hint="the output is right but not the gradients: the gate is detached (.detach() or "
            "torch.no_grad()); the gradient must flow through silu(x @ w_gate) too"),
    Mistake("SiLU on the output", lambda x, g, u, d: F.silu(((x @ g) * (x @ u)) @ d),
            hint="the SiLU goes on the gate's projection alone, silu(x @ w_gate), not on the "
            "result after w_down"),
    Mistake("SiLU of the product", _glu(F.silu, "product"), hint="the SiLU goes on the gate alone, "
            "before the product: silu(x @ w_gate) * (x @ w_up)"),
]


def _swiglu_cases() -> list[Case]:
    g = torch.Generator().manual_seed(3)

    def case(lead, C, H, dtype=torch.float32):
        w = [torch.randn(*s, generator=g, dtype=dtype) * 0.5 for s in ((C, H), (C, H), (H, C))]
        return Case(f"swiglu(x {(*lead, C)} {str(dtype)[6:]}, w_gate and w_up ({C}, {H}), "
                    f"w_down ({H}, {C}))", torch.randn(*lead, C, generator=g, dtype=dtype), *w)

    # x is (B, T, C), as the exercise says: a learner may unpack B, T, C = x.shape
    return [case((2, 5), 12, 20), case((1, 7), 3, 5), case((3, 2), 8, 16, torch.float64)]


@check("swiglu", mistakes=SWIGLU)
def check_swiglu(swiglu: Callable[..., Any]) -> None:
    """Exercise 3: ``(silu(x @ w_gate) * (x @ w_up)) @ w_down``, with the gradients of x and all weights."""
    compare(swiglu, reference_swiglu, _swiglu_cases(), name="swiglu(x, w_gate, w_up, w_down)",
            run=_grads("x", "w_gate", "w_up", "w_down"), mistakes=SWIGLU, atol=1e-4)


# ---- exercise 4: repeat_kv -----------------------------------------------------------------------


_TILED = ("the heads come out tiled, 0, 1, 2, 0, 1, 2 (what x.repeat(1, n_rep, 1, 1) and "
          "torch.cat([x] * n_rep, dim=1) give); query heads 0 and 1 share kv head 0, so the order "
          "must be 0, 0, 1, 1, 2, 2 (x.repeat_interleave(n_rep, dim=1), or expand and reshape)")

REPEAT = [
    Mistake("tiled", lambda x, n: x.repeat(1, n, 1, 1), hint=_TILED),
    Mistake("wrong dim", lambda x, n: x.repeat_interleave(n, dim=2), hint="the heads are dim 1 of "
            "(B, n_kv, T, hs): repeat along dim=1, not along the positions"),
    Mistake("n_rep 2", lambda x, n: x.repeat_interleave(2, dim=1), hint="use the n_rep argument, "
            "not a fixed number of repeats"),
    Mistake("cat tiles", lambda x, n: torch.cat([x] * n, dim=1), hint=_TILED),
    Mistake("no dim", lambda x, n: torch.repeat_interleave(x, n), hint="without dim, "
            "repeat_interleave flattens x first: repeat along the heads, dim=1"),
    Mistake("copies along the positions", lambda x, n: x.unsqueeze(3).expand(
        *x.shape[:3], n, x.shape[3]).reshape(x.shape[0], x.shape[1] * n, *x.shape[2:]),
            hint="the copies were made next to each position (dim 2, or a new dim after it) and "
            "then reshaped; put the new dim right after the heads: x[:, :, None].expand(B, n_kv, "
            "n_rep, T, hs).reshape(B, n_kv * n_rep, T, hs), or x.repeat_interleave(n_rep, dim=1)"),
    Mistake("detached", lambda x, n: x.detach().repeat_interleave(n, dim=1), expect="does not carry "
            "gradients"),
]


def _repeat_cases() -> list[Case]:
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 3, 5, 4, generator=g)
    return [Case("repeat_kv(x (2, 3, 5, 4), 2)", x, 2),
            Case("repeat_kv(x (1, 1, 3, 2), 4) (one kv head)", torch.randn(1, 1, 3, 2, generator=g), 4),
            Case("repeat_kv(x (2, 3, 5, 4), 1)", x, 1),
            Case("repeat_kv(x (1, 2, 6, 8) float64, 3)",
                 torch.randn(1, 2, 6, 8, generator=g, dtype=torch.float64), 3)]


@check("repeat_kv", mistakes=REPEAT)
def check_repeat_kv(repeat_kv: Callable[..., Any]) -> None:
    """Exercise 4: ``(B, nkv, L, hs) -> (B, nkv * n_rep, L, hs)``, each head for consecutive queries."""
    compare(repeat_kv, reference_repeat_kv, _repeat_cases(), name="repeat_kv(x, n_rep)",
            run=_grads("x"), mistakes=REPEAT)
