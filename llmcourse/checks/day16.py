"""Checks for day 16, "Optimizers".

The checks run the learner's Adam and AdamW steps over several steps, their parameter groups on a
small model with every kind of parameter (tied, frozen, biases, norms), and their gradient clipping
on gradients above and below the limit. Before a generic comparison each looks for the usual
mistakes: Adam's bias correction forgotten, ``eps`` inside the square root, weight decay coupled
into the gradient (L2) instead of decoupled, decay applied to biases and norms, a clip that returns
the norm after clipping or clips each tensor on its own. Each prints one line and never raises.

Example::

    >>> from llmcourse.checks import day16
    >>> ok = day16.check_adam_step(day16.reference_adam_step)
    ✅ adam_step: passed
    >>> bool(ok)
    True
"""

from __future__ import annotations

import traceback
from typing import Any, Callable

import torch
from torch import nn

from llmcourse.checks._core import CheckFailed, assert_shape, check

__all__ = [
    "check_adam_step",
    "check_adamw_step",
    "check_param_groups",
    "check_clip_grad_norm",
    "reference_adam_step",
    "reference_adamw_step",
]

Tensor = torch.Tensor


def reference_adam_step(p: Tensor, g: Tensor, m: Tensor, v: Tensor, t: int, lr: float,
                        beta1: float, beta2: float, eps: float) -> tuple[Tensor, Tensor, Tensor]:
    """One Adam step at step number ``t`` (1, 2, ...); returns new ``(p, m, v)``."""
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    return p - lr * m_hat / (v_hat.sqrt() + eps), m, v


def reference_adamw_step(p: Tensor, g: Tensor, m: Tensor, v: Tensor, t: int, lr: float,
                         beta1: float, beta2: float, eps: float,
                         weight_decay: float) -> tuple[Tensor, Tensor, Tensor]:
    """One AdamW step: decoupled decay of the old weights, then the Adam step."""
    p = p * (1 - lr * weight_decay)
    return reference_adam_step(p, g, m, v, t, lr, beta1, beta2, eps)


def _unpack(out: Any, name: str) -> tuple[Tensor, Tensor, Tensor]:
    if out is None:
        raise CheckFailed(f"{name} returned None; return the new (p, m, v)")
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        raise CheckFailed(f"{name} should return a tuple (p, m, v) of three tensors, got "
                          f"{type(out).__name__}")
    for what, x in zip("pmv", out):
        if not isinstance(x, torch.Tensor):
            raise CheckFailed(f"{name}: the returned {what} should be a tensor, got "
                              f"{type(x).__name__}")
    return out[0], out[1], out[2]


def _trajectory(step: Callable[..., Any], name: str, steps: int, lr: float, betas: tuple,
                eps: float, extra: tuple = (), seed: int = 0) -> list[Tensor]:
    """Run ``step`` on a (3, 4) weight with random gradients; return p after each step."""
    g = torch.Generator().manual_seed(seed)
    p = torch.randn(3, 4, generator=g)
    m, v = torch.zeros_like(p), torch.zeros_like(p)
    grads = [torch.randn(3, 4, generator=g) * 0.01 for _ in range(steps)]
    out = []
    for t in range(1, steps + 1):
        try:
            out_t = step(p.clone(), grads[t - 1].clone(), m.clone(), v.clone(), t, lr, *betas,
                         eps, *extra)
        except NotImplementedError as exc:
            frames = traceback.extract_tb(exc.__traceback__)
            if frames and frames[-1].name == "adam_step" and name != "adam_step":
                raise CheckFailed(f"your {name} calls your adam_step, which is still a stub: "
                                  "finish exercise 1 first") from None
            raise
        p, m, v = _unpack(out_t, name)
        assert_shape(p, (3, 4), f"the p returned by {name}")
        out.append(p.detach().clone())
    return out


def _adam_variant(kind: str) -> Callable[..., Any]:
    def step(p, g, m, v, t, lr, beta1, beta2, eps, *rest):
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        c1 = 1 - beta1**t
        c2 = 1 - beta2**t
        if kind == "no correction":
            return p - lr * m / (v.sqrt() + eps), m, v
        if kind == "only m corrected":
            return p - lr * (m / c1) / (v.sqrt() + eps), m, v
        if kind == "only v corrected":
            return p - lr * m / ((v / c2).sqrt() + eps), m, v
        if kind == "eps inside sqrt":
            return p - lr * (m / c1) / ((v / c2 + eps).sqrt()), m, v
        if kind == "no sqrt":
            return p - lr * (m / c1) / (v / c2 + eps), m, v
        if kind == "t + 1":
            return p - lr * (m / (1 - beta1 ** (t + 1))) / ((v / (1 - beta2 ** (t + 1))).sqrt()
                                                            + eps), m, v
        if kind == "sign":
            return p + lr * (m / c1) / ((v / c2).sqrt() + eps), m, v
        raise ValueError(kind)
    return step


_ADAM_HINTS = {
    "no correction": "the bias correction is missing: divide m by (1 - beta1**t) and v by "
                     "(1 - beta2**t) before the update (both start at zero, so early steps are "
                     "far too small otherwise)",
    "only m corrected": "only m is bias-corrected; v needs its own correction, v / (1 - beta2**t)",
    "only v corrected": "only v is bias-corrected; m needs its own correction, m / (1 - beta1**t)",
    "eps inside sqrt": "eps goes outside the square root: sqrt(v_hat) + eps",
    "no sqrt": "divide by the square root of v_hat (the gradient's root-mean-square), not by "
               "v_hat itself",
    "t + 1": "the bias correction uses the step number t as given (1 on the first step), not t + 1",
    "sign": "the update has the wrong sign: subtract lr * m_hat / (sqrt(v_hat) + eps)",
}


def _close(a: list[Tensor], b: list[Tensor], atol: float = 1e-6) -> bool:
    return all(torch.allclose(x, y, atol=atol, rtol=1e-5) for x, y in zip(a, b))


# ---- exercise 1 ------------------------------------------------------------------------------


@check("adam_step")
def check_adam_step(adam_step: Callable[..., Any]) -> None:
    """Exercise 1: ``adam_step(p, g, m, v, t, lr, beta1, beta2, eps) -> (p, m, v)``."""
    args = dict(steps=6, lr=0.05, betas=(0.8, 0.95), eps=1e-3)
    got = _trajectory(adam_step, "adam_step", **args)
    want = _trajectory(reference_adam_step, "reference", **args)
    if _close(got, want):
        return
    if not all(torch.isfinite(x).all() for x in got):
        raise CheckFailed("your weights are not finite after the first step: at t = 1 the bias "
                          "correction 1 - beta**t is 1 - beta, never 0; use t as given")
    for kind, hint in _ADAM_HINTS.items():
        if _close(got, _trajectory(_adam_variant(kind), "variant", **args)):
            raise CheckFailed(hint)
    for t, (a, b) in enumerate(zip(got, want), start=1):
        if not torch.allclose(a, b, atol=1e-6, rtol=1e-5):
            diff = (a - b).abs().max().item()
            raise CheckFailed(f"after step t = {t} the weights differ from Adam's by up to "
                              f"{diff:.3g}; m = beta1 m + (1 - beta1) g, v = beta2 v + (1 - beta2) "
                              "g², then p - lr m_hat / (sqrt(v_hat) + eps)")


# ---- exercise 2 ------------------------------------------------------------------------------


def _adamw_variant(kind: str) -> Callable[..., Any]:
    def step(p, g, m, v, t, lr, beta1, beta2, eps, wd):
        if kind == "L2":
            return reference_adam_step(p, g + wd * p, m, v, t, lr, beta1, beta2, eps)
        if kind == "no lr":
            return reference_adam_step(p * (1 - wd), g, m, v, t, lr, beta1, beta2, eps)
        if kind == "after":
            p2, m2, v2 = reference_adam_step(p, g, m, v, t, lr, beta1, beta2, eps)
            return p2 * (1 - lr * wd), m2, v2
        if kind == "none":
            return reference_adam_step(p, g, m, v, t, lr, beta1, beta2, eps)
        if kind == "grad":
            return reference_adam_step(p, g, m, v, t, lr, beta1, beta2, eps)[0] - lr * wd * g, \
                *reference_adam_step(p, g, m, v, t, lr, beta1, beta2, eps)[1:]
        raise ValueError(kind)
    return step


_ADAMW_HINTS = {
    "L2": "that is Adam with an L2 penalty (weight_decay * p added to the gradient), which Adam's "
          "division by sqrt(v_hat) distorts; AdamW shrinks the weights directly: "
          "p = p * (1 - lr * weight_decay), and the Adam step uses the raw gradient",
    "no lr": "the decay is not scaled by the learning rate: PyTorch's AdamW (and the package's) "
             "uses p * (1 - lr * weight_decay)",
    "after": "the decay is applied to the weights after the Adam step; shrink the weights from "
             "before the step (the old p), then take the Adam step, as PyTorch's AdamW does",
    "none": "the weights are not decayed at all: multiply p by (1 - lr * weight_decay)",
    "grad": "the decay should shrink the weights themselves (p * (1 - lr * weight_decay)), not be "
            "proportional to the gradient",
}


@check("adamw_step")
def check_adamw_step(adamw_step: Callable[..., Any]) -> None:
    """Exercise 2: ``adamw_step(p, g, m, v, t, lr, beta1, beta2, eps, weight_decay)``."""
    args = dict(steps=5, lr=0.05, betas=(0.9, 0.95), eps=1e-8, extra=(0.5,))
    got = _trajectory(adamw_step, "adamw_step", **args)
    want = _trajectory(reference_adamw_step, "reference", **args)
    if _close(got, want):
        plain = _trajectory(adamw_step, "adamw_step", steps=3, lr=0.05, betas=(0.9, 0.95),
                            eps=1e-8, extra=(0.0,))
        ref = _trajectory(reference_adam_step, "reference", steps=3, lr=0.05, betas=(0.9, 0.95),
                          eps=1e-8)
        if not _close(plain, ref):
            raise CheckFailed("with weight_decay=0 AdamW should be exactly Adam (exercise 1)")
        return
    for kind, hint in _ADAMW_HINTS.items():
        if _close(got, _trajectory(_adamw_variant(kind), "variant", **args)):
            raise CheckFailed(hint)
    adam_ok = _close(_trajectory(_adamw_variant("none"), "variant", **args),
                     _trajectory(lambda p, g, m, v, t, lr, b1, b2, eps, wd:
                                 adamw_step(p, g, m, v, t, lr, b1, b2, eps, 0.0),
                                 "adamw_step", **args))
    if not adam_ok:
        raise CheckFailed("with weight_decay=0 your step should be exactly Adam's; check the Adam "
                          "part first (exercise 1)")
    raise CheckFailed("the weights differ from AdamW's: decay first, p = p * (1 - lr * "
                      "weight_decay), then the Adam step with the raw gradient")


# ---- exercise 3 ------------------------------------------------------------------------------


class _Probe(nn.Module):
    """Every kind of parameter: an embedding tied to the output layer, a LayerNorm, a Linear with
    a bias, a learned 1-D gain, and a frozen layer."""

    def __init__(self) -> None:
        super().__init__()
        self.wte = nn.Embedding(11, 6)
        self.ln = nn.LayerNorm(6)
        self.fc = nn.Linear(6, 9)
        self.gain = nn.Parameter(torch.ones(9))
        self.head = nn.Linear(9, 11, bias=False)
        self.frozen = nn.Linear(6, 6)
        self.frozen.requires_grad_(False)
        self.tied = nn.Linear(6, 11, bias=False)
        self.tied.weight = self.wte.weight        # (11, 6), shared


def _names(model: nn.Module) -> dict[int, str]:
    names: dict[int, str] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(p), name)
    return names


@check("param_groups")
def check_param_groups(param_groups: Callable[..., Any]) -> None:
    """Exercise 3: ``param_groups(model, weight_decay)`` -> [decay group, no-decay group]."""
    model = _Probe()
    wd = 0.07
    groups = param_groups(model, wd)
    if groups is None:
        raise CheckFailed("param_groups returned None; return the list of two group dicts")
    if not isinstance(groups, (list, tuple)) or not all(isinstance(g, dict) for g in groups):
        raise CheckFailed("param_groups should return a list of dicts, each with 'params' and "
                          "'weight_decay'")
    if len(groups) != 2:
        raise CheckFailed(f"expected two groups (decayed, not decayed), got {len(groups)}")
    for g in groups:
        if "params" not in g or "weight_decay" not in g:
            raise CheckFailed("each group needs the keys 'params' (a list of tensors) and "
                              "'weight_decay'")
    decay, no_decay = sorted(groups, key=lambda g: -float(g["weight_decay"]))
    if float(decay["weight_decay"]) != wd or float(no_decay["weight_decay"]) != 0.0:
        raise CheckFailed(f"the weight_decay values should be weight_decay ({wd} here) and 0.0, got "
                          f"{[g['weight_decay'] for g in groups]}")
    names = _names(model)
    d_params, n_params = list(decay["params"]), list(no_decay["params"])
    d_names = [names.get(id(p), "?") for p in d_params]
    n_names = [names.get(id(p), "?") for p in n_params]
    every = d_names + n_names
    dup = sorted({n for n in every if every.count(n) > 1})
    if dup:
        raise CheckFailed(f"{dup} appear more than once: a tied (shared) tensor must be listed "
                          "once; model.named_parameters() yields each shared tensor only once")
    if any(n.startswith("frozen.") for n in every):
        raise CheckFailed("frozen parameters (requires_grad=False) are in a group; leave them out")
    if "?" in every:
        raise CheckFailed("a group holds tensors that are not parameters of the model; put the "
                          "parameters themselves (from model.named_parameters()) in the groups")
    biases = [n for n in d_names if n.endswith("bias")]
    if biases:
        raise CheckFailed(f"biases {biases} are in the decayed group; decay only tensors with "
                          "p.dim() >= 2")
    norms = [n for n in d_names if n.startswith("ln.") or n == "gain"]
    if norms:
        raise CheckFailed(f"{norms} (1-D norm and gain parameters) are in the decayed group; "
                          "decay only tensors with p.dim() >= 2")
    want_decay = {"wte.weight", "fc.weight", "head.weight"}
    missing = sorted(want_decay - set(d_names))
    if "wte.weight" in missing and "wte.weight" in n_names:
        raise CheckFailed("the embedding table is not decayed; the package, like GPT-2 and nanoGPT, "
                          "decays every 2-D matrix (the tied embedding is also the output layer): "
                          "use p.dim() >= 2")
    if missing:
        raise CheckFailed(f"{missing} should be decayed (they are 2-D matrices)")
    want_none = {"ln.weight", "ln.bias", "fc.bias", "gain"}
    if set(n_names) != want_none:
        raise CheckFailed(f"the group without decay should hold exactly {sorted(want_none)}, got "
                          f"{sorted(n_names)}")


# ---- exercise 4 ------------------------------------------------------------------------------


def _grads(scale: float, seed: int) -> list[nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    params = [nn.Parameter(torch.zeros(s)) for s in [(4, 3), (7,), (2, 5)]]
    for p in params:
        p.grad = torch.randn(p.shape, generator=g) * scale
    params.insert(1, nn.Parameter(torch.zeros(3)))        # no gradient: must be skipped
    return params


def _as_float(value: Any) -> float:
    if value is None:
        raise CheckFailed("clip_grad_norm returned None; return the total norm measured before "
                          "clipping")
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise CheckFailed(f"clip_grad_norm should return one number (the global norm), got a "
                              f"tensor of shape {tuple(value.shape)}")
        return float(value.item())
    try:
        return float(value)
    except (TypeError, ValueError):
        raise CheckFailed(f"clip_grad_norm should return a number, got {type(value).__name__}")


@check("clip_grad_norm")
def check_clip_grad_norm(clip_grad_norm: Callable[..., Any]) -> None:
    """Exercise 4: ``clip_grad_norm(params, max_norm)`` scales the .grad tensors in place so
    that their global norm is at most ``max_norm`` and returns the norm before clipping."""
    max_norm = 0.5
    mine, ref = _grads(2.0, 0), _grads(2.0, 0)
    try:
        got = _as_float(clip_grad_norm(mine, max_norm))
    except (AttributeError, TypeError) as exc:
        if "NoneType" in str(exc):
            raise CheckFailed("a parameter without a gradient (p.grad is None) must be skipped; "
                              f"your code raised {type(exc).__name__}: {exc}") from None
        raise
    want = torch.nn.utils.clip_grad_norm_(ref, max_norm).item()
    after = torch.sqrt(sum((p.grad**2).sum() for p in mine if p.grad is not None)).item()
    unclipped = _grads(2.0, 0)
    per_tensor = all(
        torch.linalg.vector_norm(a.grad).item() <= max_norm * 1.0001
        for a in mine if a.grad is not None
    ) and after > max_norm * 1.01
    if per_tensor:
        raise CheckFailed("each tensor was clipped on its own; clip the global norm, measured over "
                          "all gradients together, with one common scale factor")
    if all(torch.equal(a.grad, b.grad) for a, b in zip(mine, unclipped) if a.grad is not None):
        raise CheckFailed("the gradients were not changed: scale each p.grad in place "
                          "(p.grad.mul_(scale)) so that the optimizer sees the clipped values")
    if abs(got - want**2) < 1e-4 * want**2:
        raise CheckFailed("that is the squared norm; take the square root of the sum of squares")
    if abs(got - after) < 1e-5 and abs(got - want) > 1e-3:
        raise CheckFailed("the returned value is the norm after clipping (about max_norm); return "
                          "the norm measured before scaling, the figure worth logging")
    if abs(got - want) > 1e-4 * want:
        raise CheckFailed(f"the returned norm is {got:.5f}; the global norm before clipping is "
                          f"{want:.5f} (sqrt of the sum of every gradient element squared)")
    for a, b in zip(mine, ref):
        if a.grad is not None and not torch.allclose(a.grad, b.grad, atol=1e-6):
            raise CheckFailed(f"after clipping the global norm is {after:.5f}, expected "
                              f"{max_norm}; multiply every gradient by max_norm / (norm + 1e-6)")
    # Below the limit nothing may change.
    small = _grads(0.01, 1)
    before = [p.grad.clone() if p.grad is not None else None for p in small]
    _as_float(clip_grad_norm(small, max_norm))
    for p, b in zip(small, before):
        if b is not None and not torch.allclose(p.grad, b, atol=1e-7):
            raise CheckFailed("gradients whose global norm is already below max_norm must be left "
                              "as they are (scale = min(1, max_norm / (norm + 1e-6))); yours were "
                              "scaled up")
