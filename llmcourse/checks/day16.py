"""Checks for day 16, "Optimizers".

The Adam and AdamW checks run the learner's step as a *sequence*: several steps in a row on seeded
weights and gradients (a coordinate whose gradient is always 0, tensors of 1, 2 and 3 dimensions,
float32 and float64, betas and eps unlike the defaults), each step fed the ``(p, m, v)`` the
previous one returned, and compare the weights and both moments after every step with
``torch.optim.Adam`` / ``torch.optim.AdamW`` run from the same state. The parameter-group check
runs the learner's split on small models with every kind of parameter (tied, frozen, biases,
norms, a 3-D conv weight) against the package's; the clipping check calls the learner's
``clip_grad_norm`` twice in a row on gradients above and below the limit (one parameter without a
gradient; the parameters once as a generator) against ``torch.nn.utils.clip_grad_norm_``. When
the learner's answer differs, the exercise's table of typical mistakes names the mistake (bias
correction forgotten, ``eps`` inside the square root, L2 instead of decoupled decay, decayed
biases, a clip that returns the norm after clipping ...). Each prints one line and never raises.

Example::

    >>> from llmcourse.checks import day16
    >>> def adam_step(p, g, m, v, t, lr, beta1, beta2, eps):
    ...     m = beta1 * m + (1 - beta1) * g
    ...     v = beta2 * v + (1 - beta2) * g * g
    ...     m_hat, v_hat = m / (1 - beta1 ** t), v / (1 - beta2 ** t)
    ...     return p - lr * m_hat / (v_hat.sqrt() + eps), m, v
    >>> ok = day16.check_adam_step(adam_step)
    ✅ adam_step: passed
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from llmcourse.checks._core import (Case, CheckFailed, Mistake, as_float, check, compare, kind_of,
                                    needs_earlier)
from llmcourse.train import optim as _optim

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


# ---- the sequences: torch.optim's Adam/AdamW as the reference ---------------------------------


def _torch_step(p, g, m, v, t, lr, beta1, beta2, eps, weight_decay=None):
    """One step of torch.optim.Adam (or AdamW) started from the state (m, v, step t - 1)."""
    param = nn.Parameter(p.detach().clone())
    if weight_decay is None:
        opt = torch.optim.Adam([param], lr=lr, betas=(beta1, beta2), eps=eps, foreach=False)
    else:
        opt = torch.optim.AdamW([param], lr=lr, betas=(beta1, beta2), eps=eps,
                                weight_decay=weight_decay, foreach=False)
    param.grad = g.detach().clone()
    opt.state[param] = {"step": torch.tensor(float(t - 1)), "exp_avg": m.detach().clone(),
                        "exp_avg_sq": v.detach().clone()}
    opt.step()
    state = opt.state[param]
    return param.detach().clone(), state["exp_avg"].clone(), state["exp_avg_sq"].clone()


def _torch_adam(p, g, m, v, t, lr, beta1, beta2, eps):
    return _torch_step(p, g, m, v, t, lr, beta1, beta2, eps)


def _torch_adamw(p, g, m, v, t, lr, beta1, beta2, eps, weight_decay):
    return _torch_step(p, g, m, v, t, lr, beta1, beta2, eps, weight_decay)


def _unpack(out: Any, name: str, like: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    if out is None:
        raise CheckFailed(f"{name} returned None; did you forget the `return`? It should return "
                          "the new (p, m, v)")
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        raise CheckFailed(f"{name} should return a tuple (p, m, v) of three tensors, got "
                          f"{kind_of(out)}")
    for what, x in zip("pmv", out):
        if not isinstance(x, torch.Tensor):
            raise CheckFailed(f"{name}: the returned {what} should be a tensor, got {kind_of(x)}")
        if tuple(x.shape) != tuple(like.shape):
            raise CheckFailed(f"{name}: the returned {what} has shape {tuple(x.shape)}, expected "
                              f"{tuple(like.shape)} (the shape of p)")
    return out[0], out[1], out[2]


def _sequence_run(name: str) -> Callable[[Any, Case], Any]:
    """Run ``steps`` steps in a row, each fed what the previous one returned; the transcript is
    ``[{"p": ..., "m": ..., "v": ...} after step 1, after step 2, ...]``."""

    def run(step: Any, case: Case) -> list[dict[str, Tensor]]:
        c = case.kwargs
        gen = torch.Generator().manual_seed(c["seed"])
        p = torch.randn(c["shape"], generator=gen).to(c["dtype"])
        m, v = torch.zeros_like(p), torch.zeros_like(p)
        transcript = []
        for t in range(1, c["steps"] + 1):
            g = (torch.randn(c["shape"], generator=gen) * c["scale"] * t).to(c["dtype"])
            g.view(-1)[0] = 0.0                                   # a coordinate never pushed
            out = step(p.clone(), g, m.clone(), v.clone(), t, c["lr"], *c["betas"], c["eps"],
                       *c.get("extra", ()))
            p, m, v = _unpack(out, name, p)
            p, m, v = p.detach(), m.detach(), v.detach()
            transcript.append({"p": p.clone(), "m": m.clone(), "v": v.clone()})
        return transcript

    return run


def _step_cases(name: str, decays: tuple = ()) -> list[Case]:
    settings = [
        dict(shape=(3, 4), dtype=torch.float32, steps=6, lr=0.05, betas=(0.8, 0.95), eps=1e-3,
             scale=0.01, seed=0),
        dict(shape=(7,), dtype=torch.float32, steps=5, lr=1e-2, betas=(0.9, 0.999), eps=1e-8,
             scale=1e-3, seed=1),
        dict(shape=(2, 3, 2), dtype=torch.float64, steps=4, lr=0.1, betas=(0.5, 0.6), eps=1e-6,
             scale=1.0, seed=2),
    ]
    cases = []
    for i, s in enumerate(settings):
        extra = (decays[i],) if decays else ()
        wd = f", weight_decay={decays[i]}" if decays else ""
        label = (f"{s['steps']} steps in a row of {name} on p {s['shape']} {str(s['dtype'])[6:]}, "
                 f"lr={s['lr']}, betas={s['betas']}, eps={s['eps']}{wd}")
        cases.append(Case(label, **s, extra=extra))
    return cases


# ---- exercise 1: adam_step -------------------------------------------------------------------


def _adam_variant(kind: str) -> Callable[..., Any]:
    def adam_step(p, g, m, v, t, lr, beta1, beta2, eps):
        m_old, v_old = m, v
        if kind == "defaults":
            return reference_adam_step(p, g, m, v, t, 1e-3, 0.9, 0.999, 1e-8)
        if kind == "swapped betas":
            m = beta1 * g + (1 - beta1) * m
            v = beta2 * g * g + (1 - beta2) * v
        elif kind == "beta1 for v":
            m = beta2 * m + (1 - beta2) * g
            v = beta1 * v + (1 - beta1) * g * g
        elif kind == "v from g":
            m = beta1 * m + (1 - beta1) * g
            v = beta2 * v + (1 - beta2) * g
        elif kind == "m without (1 - beta1)":
            m = beta1 * m + g
            v = beta2 * v + (1 - beta2) * g * g
        else:
            m = beta1 * m + (1 - beta1) * g
            v = beta2 * v + (1 - beta2) * g * g
        c1, c2 = 1 - beta1**t, 1 - beta2**t
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
        if kind == "t - 1":
            return p - lr * (m / (1 - beta1 ** (t - 1))) / ((v / (1 - beta2 ** (t - 1))).sqrt()
                                                            + eps), m, v
        if kind == "sign":
            return p + lr * (m / c1) / ((v / c2).sqrt() + eps), m, v
        if kind == "returns (m, v, p)":
            return m, v, p - lr * (m / c1) / ((v / c2).sqrt() + eps)
        if kind == "returns (p, v, m)":
            return p - lr * (m / c1) / ((v / c2).sqrt() + eps), v, m
        if kind == "corrections swapped":
            return p - lr * (m / c2) / ((v / c1).sqrt() + eps), m, v
        if kind == "steps along g":
            return p - lr * g / ((v / c2).sqrt() + eps), m, v
        if kind == "(1 - beta) ** t":
            return p - lr * (m / (1 - beta1) ** t) / ((v / (1 - beta2) ** t).sqrt() + eps), m, v
        if kind == "eps added to the update":
            return p - lr * (m / c1) / (v / c2).sqrt() + eps, m, v
        if kind == "sqrt before the correction":
            return p - lr * (m / c1) / (v.sqrt() / c2 + eps), m, v
        if kind == "returns the old moments":
            return p - lr * (m / c1) / ((v / c2).sqrt() + eps), m_old, v_old
        if kind == "returns corrected moments":
            m_hat, v_hat = m / c1, v / c2
            return p - lr * m_hat / (v_hat.sqrt() + eps), m_hat, v_hat
        return p - lr * (m / c1) / ((v / c2).sqrt() + eps), m, v

    return adam_step


ADAM = [
    Mistake("v from g, not g * g", _adam_variant("v from g"),
            hint="v averages the SQUARED gradient: v = beta2 * v + (1 - beta2) * g * g (a plain g "
                 "can be negative, and its square root NaN)"),
    Mistake("beta1 and beta2 swapped", _adam_variant("beta1 for v"),
            hint="beta1 and beta2 are swapped: m uses beta1 (m = beta1 * m + (1 - beta1) * g), v "
                 "uses beta2"),
    Mistake("returns (m, v, p)", _adam_variant("returns (m, v, p)"),
            hint="return the three tensors in the order (p, m, v): the new parameters first"),
    Mistake("returns (p, v, m)", _adam_variant("returns (p, v, m)"),
            hint="m and v come back swapped: return them in the order (p, m, v)"),
    Mistake("corrections swapped", _adam_variant("corrections swapped"),
            hint="the two bias corrections are swapped: m is divided by 1 - beta1**t, v by "
                 "1 - beta2**t"),
    Mistake("steps along g", _adam_variant("steps along g"),
            hint="the update uses the raw gradient g; step along the bias-corrected average, "
                 "lr * m_hat / (sqrt(v_hat) + eps) with m_hat = m / (1 - beta1**t)"),
    Mistake("m without (1 - beta1)", _adam_variant("m without (1 - beta1)"),
            hint="m is an average, not a sum: m = beta1 * m + (1 - beta1) * g (without the "
                 "(1 - beta1) it is SGD momentum's buffer)"),
    Mistake("no correction", _adam_variant("no correction"),
            hint="the bias correction is missing: divide m by (1 - beta1**t) and v by "
                 "(1 - beta2**t) before the update (both start at zero, so early steps are far "
                 "off otherwise)"),
    Mistake("only m corrected", _adam_variant("only m corrected"),
            hint="only m is bias-corrected; v needs its own correction, v / (1 - beta2**t)"),
    Mistake("only v corrected", _adam_variant("only v corrected"),
            hint="only v is bias-corrected; m needs its own correction, m / (1 - beta1**t)"),
    Mistake("eps inside sqrt", _adam_variant("eps inside sqrt"),
            hint="eps goes outside the square root: sqrt(v_hat) + eps"),
    Mistake("no sqrt", _adam_variant("no sqrt"),
            hint="divide by the square root of v_hat (the gradient's root-mean-square), not by "
                 "v_hat itself"),
    Mistake("t + 1", _adam_variant("t + 1"),
            hint="the bias correction uses the step number t as given (1 on the first step), not "
                 "t + 1"),
    Mistake("t - 1", _adam_variant("t - 1"),
            hint="at t = 1 the bias correction 1 - beta**t is 1 - beta, never 0: use t as given, "
                 "not t - 1"),
    Mistake("sign", _adam_variant("sign"),
            hint="the update has the wrong sign: subtract lr * m_hat / (sqrt(v_hat) + eps)"),
    Mistake("swapped betas", _adam_variant("swapped betas"),
            hint="beta weighs the OLD average: m = beta1 * m + (1 - beta1) * g (and likewise v)"),
    Mistake("fixed hyper-parameters", _adam_variant("defaults"),
            hint="use the lr, beta1, beta2 and eps arguments, not PyTorch's defaults (1e-3, 0.9, "
                 "0.999, 1e-8)"),
    Mistake("returns corrected moments", _adam_variant("returns corrected moments"),
            hint="return the raw running averages m and v, not m_hat and v_hat: the correction is "
                 "recomputed from them at every step"),
    Mistake("(1 - beta) ** t", _adam_variant("(1 - beta) ** t"),
            hint="the bias correction is 1 - beta1 ** t (the power binds first), not "
                 "(1 - beta1) ** t; the same for beta2"),
    Mistake("eps added to the update", _adam_variant("eps added to the update"),
            hint="eps belongs in the denominator, lr * m_hat / (sqrt(v_hat) + eps): without the "
                 "parentheses it is added to the weights, and a zero gradient divides 0 by 0"),
    Mistake("sqrt before the correction", _adam_variant("sqrt before the correction"),
            hint="v's correction goes under the square root: sqrt(v / (1 - beta2**t)), not "
                 "sqrt(v) / (1 - beta2**t)"),
    Mistake("returns the old moments", _adam_variant("returns the old moments"),
            hint="return the updated m and v (the running averages after this step), not the ones "
                 "passed in: the next step starts from them"),
]


@check("adam_step", mistakes=ADAM)
def check_adam_step(adam_step: Callable[..., Any]) -> None:
    """Exercise 1: ``adam_step(p, g, m, v, t, lr, beta1, beta2, eps) -> (p, m, v)``."""
    compare(adam_step, _torch_adam, _step_cases("adam_step"), name="after step",
            run=_sequence_run("adam_step"), mistakes=ADAM, read=_named_steps, atol=1e-6,
            rtol=1e-5)


def _named_steps(transcript: list[dict[str, Tensor]], case: Case) -> dict[str, Any]:
    """Name each step of a transcript by its number t (shown in a mismatch: ['t=3']['m'])."""
    return {f"t={t}": obs for t, obs in enumerate(transcript, start=1)}


# ---- exercise 2: adamw_step ------------------------------------------------------------------


def _adamw_variant(kind: str) -> Callable[..., Any]:
    def adamw_step(p, g, m, v, t, lr, beta1, beta2, eps, weight_decay):
        if kind == "L2":
            return reference_adam_step(p, g + weight_decay * p, m, v, t, lr, beta1, beta2, eps)
        if kind == "no lr":
            return reference_adam_step(p * (1 - weight_decay), g, m, v, t, lr, beta1, beta2, eps)
        if kind == "after":
            p2, m2, v2 = reference_adam_step(p, g, m, v, t, lr, beta1, beta2, eps)
            return p2 * (1 - lr * weight_decay), m2, v2
        if kind == "none":
            return reference_adam_step(p, g, m, v, t, lr, beta1, beta2, eps)
        if kind == "grows":
            return reference_adam_step(p * (1 + lr * weight_decay), g, m, v, t, lr, beta1, beta2, eps)
        if kind == "subtracts":
            return reference_adam_step(p - lr * weight_decay, g, m, v, t, lr, beta1, beta2, eps)
        if kind == "L2 times lr":
            return reference_adam_step(p, g + lr * weight_decay * p, m, v, t, lr, beta1, beta2,
                                       eps)
        if kind == "step dropped":
            p = p * (1 - lr * weight_decay)
            reference_adam_step(p, g, m, v, t, lr, beta1, beta2, eps)
            return p, m, v
        if kind == "compounded":
            return reference_adam_step(p * (1 - lr * weight_decay) ** t, g, m, v, t, lr, beta1,
                                       beta2, eps)
        if kind == "grad":
            p2, m2, v2 = reference_adam_step(p, g, m, v, t, lr, beta1, beta2, eps)
            return p2 - lr * weight_decay * g, m2, v2
        raise ValueError(kind)

    return adamw_step


ADAMW = [
    Mistake("L2", _adamw_variant("L2"),
            hint="that is Adam with an L2 penalty (weight_decay * p added to the gradient), which "
                 "Adam's division by sqrt(v_hat) distorts; AdamW shrinks the weights directly: "
                 "p = p * (1 - lr * weight_decay), and the Adam step uses the raw gradient"),
    Mistake("no lr", _adamw_variant("no lr"),
            hint="the decay is not scaled by the learning rate: PyTorch's AdamW (and the "
                 "package's) uses p * (1 - lr * weight_decay)"),
    Mistake("after", _adamw_variant("after"),
            hint="the decay is applied to the weights after the Adam step; shrink the weights from "
                 "before the step (the old p), then take the Adam step, as PyTorch's AdamW does"),
    Mistake("none", _adamw_variant("none"),
            hint="the weights are not decayed at all: multiply p by (1 - lr * weight_decay)"),
    Mistake("plus sign", _adamw_variant("grows"),
            hint="the decay makes the weights grow: shrink them, p * (1 - lr * weight_decay)"),
    Mistake("subtracts lr * weight_decay", _adamw_variant("subtracts"),
            hint="the decay subtracts the same lr * weight_decay from every weight; it must be "
                 "proportional to the weight: p * (1 - lr * weight_decay)"),
    Mistake("grad", _adamw_variant("grad"),
            hint="the decay should shrink the weights themselves (p * (1 - lr * weight_decay)), "
                 "not be proportional to the gradient"),
    Mistake("L2 times lr", _adamw_variant("L2 times lr"),
            hint="the decay went into the gradient (g + lr * weight_decay * p), where Adam's "
                 "division rescales it; shrink the weights themselves, "
                 "p * (1 - lr * weight_decay), and give the Adam step the raw g"),
    Mistake("Adam step dropped", _adamw_variant("step dropped"),
            hint="only the decay was applied: return the result of the Adam step taken from the "
                 "decayed p (return adam_step(p, g, m, v, ...))"),
    Mistake("decay compounded by t", _adamw_variant("compounded"),
            hint="each step decays the weights it is given once, by (1 - lr * weight_decay); do "
                 "not raise it to the power t (the earlier steps already decayed them)"),
]


@check("adamw_step", mistakes=ADAMW)
@needs_earlier(adam_step=1)
def check_adamw_step(adamw_step: Callable[..., Any]) -> None:
    """Exercise 2: ``adamw_step(p, g, m, v, t, lr, beta1, beta2, eps, weight_decay)``; with
    ``weight_decay=0`` it must be Adam exactly (the third case)."""
    compare(adamw_step, _torch_adamw, _step_cases("adamw_step", decays=(0.5, 0.1, 0.0)),
            name="after step", run=_sequence_run("adamw_step"), mistakes=ADAMW, read=_named_steps,
            atol=1e-6, rtol=1e-5)


# ---- exercise 3: param_groups ----------------------------------------------------------------


class _Probe(nn.Module):
    """Every kind of parameter: an embedding tied to an output layer, a LayerNorm, a Linear with
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


class _Conv(nn.Module):
    """A 3-D conv weight, a bias-free projection, a BatchNorm-like 1-D scale, a frozen bias."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(4, 5, kernel_size=3)
        self.proj = nn.Linear(5, 3, bias=False)
        self.scale = nn.Parameter(torch.ones(3))
        self.shift = nn.Parameter(torch.zeros(3), requires_grad=False)


class _OnlyVectors(nn.Module):
    """No matrix that trains: a frozen embedding and a trainable LayerNorm (the decay group is
    empty)."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(5, 4)
        self.emb.requires_grad_(False)
        self.norm = nn.LayerNorm(4)


def _groups_run(impl: Any, case: Case) -> list[dict[str, Any]]:
    """The learner's groups, by parameter name: decayed group first, names sorted."""
    model, wd = case.kwargs["model"](), case.kwargs["weight_decay"]
    names: dict[int, str] = {}
    for n, p in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(p), n)
    groups = impl(model, wd)
    if groups is None:
        raise CheckFailed("param_groups returned None; did you forget the `return`? It should "
                          "return the list of two group dicts")
    if not isinstance(groups, (list, tuple)) or not all(isinstance(g, dict) for g in groups):
        raise CheckFailed("param_groups should return a list of dicts, each with 'params' and "
                          f"'weight_decay', got {kind_of(groups)}")
    if len(groups) != 2:
        raise CheckFailed(f"expected two groups (decayed, not decayed), got {len(groups)}")
    out = []
    for g in groups:
        if "params" not in g or "weight_decay" not in g:
            raise CheckFailed("each group needs the keys 'params' (a list of tensors) and "
                              "'weight_decay'")
        params = list(g["params"])
        if any(id(p) not in names for p in params):
            raise CheckFailed("a group holds tensors that are not parameters of the model; put "
                              "the parameters themselves (from model.named_parameters()) in the "
                              "groups")
        out.append({"weight_decay": as_float(g["weight_decay"], "a group's 'weight_decay'"),
                    "params": sorted(names[id(p)] for p in params)})
    return sorted(out, key=lambda g: -g["weight_decay"])


def _reference_groups(model, weight_decay):
    return [{k: g[k] for k in ("params", "weight_decay")}
            for g in _optim.param_groups(model, weight_decay)]


def _groups_with(keep: Callable[[str, nn.Parameter, nn.Module], Any], *, frozen: bool = False,
                 duplicates: bool = False, wd: Any = None, swap: bool = False) -> Callable[..., Any]:
    def param_groups(model, weight_decay):
        decay, no_decay = [], []
        embeddings = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
        for name, p in model.named_parameters(remove_duplicate=not duplicates):
            if not p.requires_grad and not frozen:
                continue
            (decay if keep(name, p, embeddings) else no_decay).append(p)
        if swap:  # the decay rate given to the wrong list
            return [{"params": decay, "weight_decay": 0.0},
                    {"params": no_decay, "weight_decay": weight_decay}]
        return [{"params": decay, "weight_decay": weight_decay if wd is None else wd},
                {"params": no_decay, "weight_decay": 0.0}]

    return param_groups


def _two_d(name, p, embeddings):
    return p.dim() >= 2


PARAM_GROUPS = [
    Mistake("biases decayed", _groups_with(lambda n, p, e: True),
            hint="biases and norm gains are in the decayed group; decay only tensors with "
                 "p.dim() >= 2"),
    Mistake("by name", _groups_with(lambda n, p, e: n.endswith("weight")),
            hint="choose by shape, not by name: a LayerNorm's weight is 1-D and must not be "
                 "decayed, and a learned gain may have any name; decay p.dim() >= 2"),
    Mistake("frozen included", _groups_with(_two_d, frozen=True),
            hint="frozen parameters (requires_grad=False) are in a group; leave them out"),
    Mistake("tied listed twice", _groups_with(_two_d, duplicates=True),
            hint="a tied (shared) tensor must be listed once; model.named_parameters() yields "
                 "each shared tensor only once"),
    Mistake("embedding not decayed", _groups_with(lambda n, p, e: p.dim() >= 2 and id(p) not in e),
            hint="the embedding table is not decayed; the package, like GPT-2 and nanoGPT, decays "
                 "every 2-D matrix (the tied embedding is also the output layer): use p.dim() >= 2"),
    Mistake("names of biases and norms", _groups_with(
                lambda n, p, e: not any(k in n for k in ("bias", "ln", "norm"))),
            hint="choose by shape, not by a list of names: a learned 1-D gain (here 'gain') or a "
                 "norm named otherwise slips into the decayed group; decay only p.dim() >= 2"),
    Mistake("'bias' in the name", _groups_with(lambda n, p, e: "bias" not in n),
            hint="everything but the biases is decayed, LayerNorm weights and gains too: choose by "
                 "shape, not by name; decay only p.dim() >= 2"),
    Mistake("weight_decay on the wrong group", _groups_with(_two_d, swap=True),
            hint="the rates are on the wrong groups: the matrices (p.dim() >= 2) get weight_decay, "
                 "the biases and gains 0.0"),
    Mistake("hard-coded 0.1", _groups_with(_two_d, wd=0.1),
            hint="the decayed group's weight_decay should be the weight_decay argument, not a "
                 "fixed number"),
    Mistake("p.dim() > 2", _groups_with(lambda n, p, e: p.dim() > 2),
            hint="the 2-D matrices (linear layers, embeddings) are not decayed: the test is "
                 "p.dim() >= 2, not p.dim() > 2"),
    Mistake("p.dim() == 2", _groups_with(lambda n, p, e: p.dim() == 2),
            hint="a weight with more than two dimensions (a convolution's) is not decayed: use "
                 "p.dim() >= 2, not p.dim() == 2"),
]


def _groups_cases() -> list[Case]:
    return [
        Case("param_groups(model with a tied embedding, LayerNorm, biases, a gain and a frozen "
             "layer, weight_decay=0.07)", model=_Probe, weight_decay=0.07),
        Case("param_groups(model with a 3-D Conv1d weight and a frozen 1-D shift, "
             "weight_decay=0.1)", model=_Conv, weight_decay=0.1),
        Case("param_groups(model whose only matrix is frozen, weight_decay=0.3)",
             model=_OnlyVectors, weight_decay=0.3),
    ]


@check("param_groups", mistakes=PARAM_GROUPS)
def check_param_groups(param_groups: Callable[..., Any]) -> None:
    """Exercise 3: ``param_groups(model, weight_decay)`` -> [decay group, no-decay group]."""
    compare(param_groups, _reference_groups, _groups_cases(), name="groups", run=_groups_run,
            mistakes=PARAM_GROUPS)


# ---- exercise 4: clip_grad_norm --------------------------------------------------------------


def _clip_run(impl: Any, case: Case) -> dict[str, Any]:
    """Two calls in a row (the second on the clipped gradients): the norms returned, and every
    .grad after each call."""
    c = case.kwargs
    gen = torch.Generator().manual_seed(c["seed"])
    params = []
    for shape in c["shapes"]:
        p = nn.Parameter(torch.zeros(shape, dtype=c["dtype"]))
        if shape != (3,):                                     # the (3,) one never got a gradient
            p.grad = (torch.randn(shape, generator=gen) * c["scale"]).to(c["dtype"])
        params.append(p)
    out: dict[str, Any] = {}
    for call_no in (1, 2):
        arg = (p for p in params) if c["generator"] else params
        returned = impl(arg, c["max_norm"])
        out[f"call {call_no}: returned norm"] = as_float(returned, "clip_grad_norm(...)")
        out[f"call {call_no}: grads"] = [None if p.grad is None else p.grad.clone() for p in params]
    return out


def _torch_clip(params, max_norm):
    return torch.nn.utils.clip_grad_norm_(list(params), max_norm)


def _clip_with(kind: str) -> Callable[..., Any]:
    def clip_grad_norm(params, max_norm):
        if kind == "twice":
            grads = [p.grad for p in params if p.grad is not None]
            norm = torch.sqrt(sum((g * g).sum() for g in grads))
            scale = min(1.0, max_norm / (norm.item() + 1e-6))
            for p in params:                                  # a generator is empty by now
                if p.grad is not None:
                    p.grad.mul_(scale)
            return norm
        if kind == "per tensor":
            total = 0.0
            for p in params:
                if p.grad is not None:
                    n = p.grad.norm()
                    total = total + n * n
                    p.grad.mul_(min(1.0, max_norm / (n.item() + 1e-6)))
            return total ** 0.5
        if kind == "none grad":
            grads = [p.grad for p in params]
            norm = torch.sqrt(sum((g * g).sum() for g in grads))
        elif kind == "none grad ** 2":
            grads = [p.grad for p in params]
            norm = torch.sqrt(sum((g ** 2).sum() for g in grads))
        elif kind == "none grad .norm()":
            grads = [p.grad for p in params]
            norm = torch.sqrt(sum(g.norm() ** 2 for g in grads))
        elif kind == "clamp":
            grads = [p.grad for p in params if p.grad is not None]
            norm = torch.sqrt(sum((g * g).sum() for g in grads))
            for g in grads:
                g.clamp_(-max_norm, max_norm)
            return norm
        elif kind in ("no sqrt", "sum of norms", "largest norm", "rms"):
            grads = [p.grad for p in params if p.grad is not None]
            norm = {"no sqrt": lambda: sum((g * g).sum() for g in grads),
                    "sum of norms": lambda: sum(g.norm() for g in grads),
                    "largest norm": lambda: max(g.norm() for g in grads),
                    "rms": lambda: torch.sqrt(sum((g * g).mean() for g in grads))}[kind]()
        else:
            grads = [p.grad for p in params if p.grad is not None]
            norm = torch.sqrt(sum((g * g).sum() for g in grads))
        scale = (1.0 if kind == "fixed max_norm" else max_norm) / (norm.item() + 1e-6)
        if kind == "max, not min":
            scale = max(1.0, scale)
        elif kind != "scales up":
            scale = min(1.0, scale)
        if kind == "not in place":
            grads = [g * scale for g in grads]
        else:
            for g in grads:
                g.mul_(scale)
        if kind == "squared":
            return norm * norm
        if kind == "returns the scale":
            return scale
        if kind == "after":
            return torch.sqrt(sum((g * g).sum() for g in grads))
        return norm

    return clip_grad_norm


_SKIP_NONE = ("a parameter without a gradient (p.grad is None) must be skipped: "
              "[p.grad for p in params if p.grad is not None]")
_UNCHANGED = ("the gradients were not changed: scale each p.grad in place (p.grad.mul_(scale)) by "
              "scale = min(1, max_norm / (norm + 1e-6)) (min, not max), so that the optimizer "
              "sees the clipped values")

CLIP = [
    Mistake("no square root", _clip_with("no sqrt"),
            hint="the norm is missing its square root: sqrt(sum of g * g over every gradient)"),
    Mistake("sum of the norms", _clip_with("sum of norms"),
            hint="the norms of the tensors were added; the global norm is the square root of the "
                 "sum of ALL squared entries: sqrt(sum((g * g).sum() for g in grads))"),
    Mistake("largest norm", _clip_with("largest norm"),
            hint="that is the largest norm of one tensor; the global norm is measured over all "
                 "gradients together: sqrt(sum((g * g).sum() for g in grads))"),
    Mistake("clamps each entry", _clip_with("clamp"),
            hint="each entry was clamped to [-max_norm, max_norm] (that is clipping by value); "
                 "scale all gradients by one factor, min(1, max_norm / (norm + 1e-6))"),
    Mistake("none grad", _clip_with("none grad"),
            hint=_SKIP_NONE),
    Mistake("none grad, ** 2", _clip_with("none grad ** 2"), hint=_SKIP_NONE),
    Mistake("none grad, .norm()", _clip_with("none grad .norm()"), hint=_SKIP_NONE),
    Mistake("per tensor", _clip_with("per tensor"),
            hint="each tensor was clipped on its own; clip the global norm, measured over all "
                 "gradients together, with one common scale factor"),
    Mistake("iterates twice", _clip_with("twice"),
            hint="params may be a generator (model.parameters()), which can be read only once: "
                 "collect the gradients in a list first and scale those"),
    Mistake("not in place", _clip_with("not in place"), hint=_UNCHANGED),
    Mistake("fixed max_norm", _clip_with("fixed max_norm"),
            hint="use the max_norm argument, not a fixed 1.0"),
    Mistake("squared", _clip_with("squared"),
            hint="that is the squared norm; take the square root of the sum of squares"),
    Mistake("after", _clip_with("after"),
            hint="the returned value is the norm after clipping (about max_norm); return the norm "
                 "measured before scaling, the figure worth logging"),
    Mistake("scales up", _clip_with("scales up"),
            hint="gradients whose global norm is already below max_norm must be left as they are "
                 "(scale = min(1, max_norm / (norm + 1e-6))); yours were scaled up"),
    Mistake("mean of the squares", _clip_with("rms"),
            hint="the squares were averaged ((g * g).mean()); the global norm SUMS every squared "
                 "entry: sqrt(sum((g * g).sum() for g in grads))"),
    Mistake("returns the scale", _clip_with("returns the scale"),
            hint="return the global norm measured before clipping, not the scale factor "
                 "min(1, max_norm / (norm + 1e-6))"),
    # after "scales up": below max_norm it scales up too, and that hint fits better there
    Mistake("max, not min", _clip_with("max, not min"), hint=_UNCHANGED),
]


def _clip_cases() -> list[Case]:
    shapes = [(4, 3), (3,), (7,), (2, 5)]
    return [
        Case("clip_grad_norm([4 params, one without .grad], max_norm=0.5) with a norm of about 8, "
             "twice in a row", shapes=shapes, scale=2.0, max_norm=0.5, seed=0,
             dtype=torch.float32, generator=False),
        Case("clip_grad_norm([4 params], max_norm=3.0) with a norm below it, twice in a row",
             shapes=shapes, scale=0.05, max_norm=3.0, seed=1, dtype=torch.float32,
             generator=False),
        Case("clip_grad_norm(model.parameters() (a generator), max_norm=1.25), float64 grads, "
             "twice in a row", shapes=[(3, 2, 2), (3,), (6,)], scale=1.0, max_norm=1.25, seed=2,
             dtype=torch.float64, generator=True),
    ]


@check("clip_grad_norm", mistakes=CLIP)
def check_clip_grad_norm(clip_grad_norm: Callable[..., Any]) -> None:
    """Exercise 4: ``clip_grad_norm(params, max_norm)`` scales the .grad tensors in place so
    that their global norm is at most ``max_norm`` and returns the norm before clipping."""
    compare(clip_grad_norm, _torch_clip, _clip_cases(), name="clip", run=_clip_run,
            mistakes=CLIP, atol=1e-6, rtol=1e-5)
