"""Checks for day 11, "The Transformer block".

Each ``check_*`` function compares the learner's code with the package's (``F.gelu``,
:class:`llmcourse.model.MLP`, ``F.layer_norm``, :class:`llmcourse.model.Block`) on a small seeded
battery of inputs: sizes unlike the notebook's (``n_embd = 64``, ``n_head = 4``), batch unlike
time, one position, arguments at non-default values; the outputs *and* the gradients w.r.t. the
input and every parameter (the learner's module and the package's get the same weights). The
block is also run with dropout on, in training mode with the same seed (dropout in the same
places as the package's) and in evaluation mode (no dropout at all). A check prints one line -
a pass, the hint of a typical mistake (the tables ``GELU``, ``MLP_MISTAKES``, ``LAYER_NORM``,
``BLOCK``), or "not done yet" - and returns a verdict, true on a pass. None of them raises.

Example::

    >>> import torch, torch.nn.functional as F
    >>> from llmcourse.checks import day11
    >>> ok = day11.check_gelu_tanh(lambda x: F.gelu(x, approximate="tanh"))
    ✅ GELU (tanh): passed
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmcourse.checks._core import (Case, CheckFailed, Mistake, as_tensor, check, compare, layer,
                                    needs_earlier, outputs_and_grads)
from llmcourse.model import MLP, Block, CausalSelfAttention, GPTConfig

__all__ = ["check_gelu_tanh", "check_mlp", "check_layer_norm", "check_block"]


def _output(value: Any) -> Any:
    """A module may return ``(y, extra)`` like the package's ``Block``; keep ``y``."""
    if isinstance(value, tuple) and value and isinstance(value[0], torch.Tensor):
        return value[0]
    return value


def _leaf(t: torch.Tensor) -> torch.Tensor:
    return t.detach().requires_grad_()


def _set_params(module: nn.Module, names: list[str], seed: int) -> dict[str, torch.Tensor]:
    """Give ``module``'s parameters ``names`` seeded values (the same for learner and reference).

    Weights (2-D) get ``randn / sqrt(fan_in)``; 1-D parameters (biases, norm gains) ``1 + 0.3 randn``
    for LayerNorm weights and ``0.3 randn`` otherwise, so that a mix-up of ln_1 and ln_2 shows.
    """
    params = dict(module.named_parameters())
    missing = [n for n in names if n not in params]
    extra = [n for n in params if n not in names]
    if missing or extra:
        raise CheckFailed(f"the parameter names differ from the package's: missing {missing}, "
                          f"unexpected {extra}; use exactly the attribute names the exercise gives")
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name in names:
            p = params[name]
            r = torch.randn(p.shape, generator=g)
            if p.dim() >= 2:
                p.copy_(r / math.sqrt(p.shape[-1]))
            elif name.startswith("ln") and name.endswith("weight"):
                p.copy_(1 + 0.3 * r)
            else:
                p.copy_(0.3 * r)
    return {name: params[name] for name in names}


# ---------------------------------------------------------------------------- exercise 1
def _gelu_formula(x: torch.Tensor, *, c: float = 0.044715, power: int = 3,
                  k: float = math.sqrt(2 / math.pi), half: float = 0.5) -> torch.Tensor:
    return half * x * (1 + torch.tanh(k * (x + c * x ** power)))


GELU = [
    Mistake("exact GELU", lambda x: F.gelu(x),
            hint="that is the exact (erf) GELU; this exercise asks for the tanh approximation "
                 "0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3)))"),
    Mistake("twice too large", lambda x: _gelu_formula(x, half=1.0),
            hint="the result is twice too large: the formula starts with 0.5 * x"),
    Mistake("ReLU", lambda x: F.relu(x), hint="that is ReLU; write the GELU formula"),
    Mistake("x ** 2", lambda x: _gelu_formula(x, power=2),
            hint="the cubic term should be 0.044715 * x ** 3, not x ** 2"),
    Mistake("no square root", lambda x: _gelu_formula(x, k=2 / math.pi),
            hint="the factor inside tanh is the square root of 2 / pi: math.sqrt(2 / math.pi)"),
    Mistake("sigmoid approximation", lambda x: x * torch.sigmoid(1.702 * x),
            hint="that is the sigmoid approximation x * sigmoid(1.702 x); write the tanh formula"),
    Mistake("float64 constant", lambda x: _gelu_formula(x) * torch.tensor(1.0, dtype=torch.float64).expand(x.shape),
            expect="dtype float64, expected float32"),
    Mistake("no return", lambda x: None, expect="None"),
    Mistake("x left out", lambda x: 0.5 * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))),
            hint="the leading x is missing: GELU is x times a soft gate, 0.5 * x * (1 + tanh(...)); "
                 "without the x it returns the gate only, between 0 and 1"),
    Mistake("sqrt(2/pi) on x only", lambda x: 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * x + 0.044715 * x ** 3)),
            hint="a bracket is missing: sqrt(2 / pi) multiplies the whole sum, tanh(sqrt(2 / pi) * "
                 "(x + 0.044715 * x ** 3)), not x alone"),
    Mistake("sqrt(2 * pi)", lambda x: _gelu_formula(x, k=math.sqrt(2 * math.pi)),
            hint="the factor inside tanh is sqrt(2 / pi), about 0.798, not sqrt(2 * pi): "
                 "math.sqrt(2 / math.pi)"),
    Mistake("2 / sqrt(pi)", lambda x: _gelu_formula(x, k=2 / math.sqrt(math.pi)),
            hint="2 / math.pi ** 0.5 is 2 / sqrt(pi) (** binds first); the factor is sqrt(2 / pi): "
                 "math.sqrt(2 / math.pi) or (2 / math.pi) ** 0.5"),
    Mistake("1 + left out", lambda x: 0.5 * x * torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)),
            hint="the 1 + is missing: the gate is 0.5 * (1 + tanh(...)), between 0 and 1, so the "
                 "result is 0.5 * x * (1 + tanh(...))"),
]


def _gelu_cases() -> list[Case]:
    g = torch.Generator().manual_seed(110)
    return [
        Case("gelu_tanh(x of shape (4, 7), float32)", _leaf(torch.randn(4, 7, generator=g) * 3)),
        Case("gelu_tanh(x = linspace(-6, 6, 241), float64)", _leaf(torch.linspace(-6, 6, 241, dtype=torch.float64))),
        Case("gelu_tanh(x of shape (2, 3, 5) with |x| up to 20)", _leaf(torch.randn(2, 3, 5, generator=g) * 8)),
    ]


def _run_gelu(impl: Any, case: Case) -> Any:
    (x,), _ = case.fresh()
    return outputs_and_grads(as_tensor(impl(x), "gelu_tanh(x)"), {"x": x})


@check("GELU (tanh)", mistakes=GELU)
def check_gelu_tanh(gelu_fn: Callable[[torch.Tensor], Any]) -> None:
    """Exercise 1: ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``: values, dtype, gradient."""
    compare(gelu_fn, lambda x: F.gelu(x, approximate="tanh"), _gelu_cases(), name="gelu_tanh(x)",
            run=_run_gelu, mistakes=GELU, atol=1e-6)


# ---------------------------------------------------------------------------- exercise 2
class _MLP(nn.Module):
    """The lesson's MLP with one thing changed, as a learner might write it."""

    hidden = 4
    act = staticmethod(lambda h: F.gelu(h, approximate="tanh"))
    act_last = False
    act_first = False
    residual = False
    drop = 0.0  # a dropout of the learner's own after c_proj (the exercise's MLP has none)

    def __init__(self, n_embd: int) -> None:
        super().__init__()
        self.c_fc = nn.Linear(n_embd, self.hidden * n_embd)
        self.c_proj = nn.Linear(self.hidden * n_embd, n_embd)
        if self.drop:
            self.dropout = nn.Dropout(self.drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.act_last:
            return self.act(self.c_proj(self.c_fc(x)))
        if self.act_first:
            return self.c_proj(self.c_fc(self.act(x)))
        if self.residual:  # the block adds x; the MLP itself does not
            return x + self.c_proj(self.act(self.c_fc(x)))
        if self.drop:
            return self.dropout(self.c_proj(self.act(self.c_fc(x))))
        return self.c_proj(self.act(self.c_fc(x)))


def _mlp(name: str, **knobs: Any) -> type:
    if "act" in knobs:
        knobs["act"] = staticmethod(knobs["act"])
    return type(name, (_MLP,), knobs)


MLP_MISTAKES = [
    Mistake("exact GELU", _mlp("ExactGelu", act=F.gelu),
            hint="you used the exact GELU; GPT-2 (and the package) use the tanh approximation: "
                 "F.gelu(h, approximate='tanh')"),
    Mistake("ReLU", _mlp("Relu", act=F.relu),
            hint="that is ReLU; GPT-2's MLP uses GELU (approximate='tanh')"),
    Mistake("no activation", _mlp("Linear", act=lambda h: h),
            hint="the activation is missing between c_fc and c_proj"),
    Mistake("activation after c_proj", _mlp("ActLast", act_last=True),
            hint="the GELU is applied after c_proj; it goes between the two layers: "
                 "c_proj(gelu(c_fc(x)))"),
    Mistake("hidden 2C", _mlp("Narrow", hidden=2), expect="4 * n_embd"),
    Mistake("activation before c_fc", _mlp("ActFirst", act_first=True),
            hint="the GELU is applied to the input, before c_fc; it goes between the two layers: "
                 "c_proj(gelu(c_fc(x)))"),
    Mistake("approximate=True", _mlp("ApproxTrue", act=lambda h: F.gelu(h, approximate=True)),
            hint="F.gelu's approximate argument is a string: F.gelu(h, approximate='tanh')"),
    Mistake("adds the residual", _mlp("Residual", residual=True),
            hint="the MLP returns x + c_proj(...): the residual add belongs to the block (exercise 4), "
                 "so the MLP returns c_proj(gelu(c_fc(x))) alone"),
    Mistake("dropout of its own", _mlp("OwnDropout", drop=0.1), expect="an nn.Dropout of its own"),
]


def _reference_mlp(n_embd: int) -> nn.Module:
    return MLP(GPTConfig(vocab_size=2, block_size=2, n_layer=1, n_head=1, n_embd=n_embd))


def _mlp_cases() -> list[Case]:
    g = torch.Generator().manual_seed(111)
    return [
        Case("MyMLP(16) on x of shape (2, 5, 16)", 16, _leaf(torch.randn(2, 5, 16, generator=g))),
        Case("MyMLP(40) on x of shape (3, 2, 40)", 40, _leaf(torch.randn(3, 2, 40, generator=g))),
        Case("MyMLP(6) on x of shape (4, 1, 6)", 6, _leaf(torch.randn(4, 1, 6, generator=g))),
        Case("MyMLP(16) in train() mode on x of shape (2, 5, 16)", 16,
             _leaf(torch.randn(2, 5, 16, generator=g)), train=True),
    ]


_MLP_PARAMS = ["c_fc.weight", "c_fc.bias", "c_proj.weight", "c_proj.bias"]


def _run_mlp(impl: Any, case: Case) -> Any:
    (C, x), kwargs = case.fresh()
    module = impl(C)
    owner = f"MyMLP({C})"
    if any(isinstance(m, nn.Dropout) and m.p > 0 for m in module.modules()):
        raise CheckFailed(f"{owner} has an nn.Dropout of its own; the exercise's MLP is c_fc, GELU, "
                          "c_proj and nothing more (the block's dropout comes with the package's "
                          "MLP(config) in exercise 4): remove it")
    fc = layer(module, "c_fc", nn.Linear, owner=owner)
    if fc.out_features != 4 * C:
        raise CheckFailed(f"the hidden layer has {fc.out_features} units for n_embd={C}; GPT-2 "
                          f"uses 4 * n_embd = {4 * C}")
    layer(module, "c_fc", nn.Linear, shape=(4 * C, C), bias=True, owner=owner)
    layer(module, "c_proj", nn.Linear, shape=(C, 4 * C), bias=True, owner=owner)
    params = _set_params(module, _MLP_PARAMS, seed=C)
    module.train(kwargs.get("train", False))  # train(): no dropout of any kind may act
    torch.manual_seed(7)
    out = as_tensor(_output(module(x)), f"{owner}(x)")
    return outputs_and_grads(out, {"x": x, **params})


@check("MLP", mistakes=MLP_MISTAKES)
def check_mlp(mlp_cls: Callable[[int], nn.Module]) -> None:
    """Exercise 2: ``c_proj(gelu_tanh(c_fc(x)))`` with a 4x hidden layer; output and gradients."""
    compare(mlp_cls, _reference_mlp, _mlp_cases(), name="MyMLP(n_embd)(x)", run=_run_mlp,
            mistakes=MLP_MISTAKES)


# ---------------------------------------------------------------------------- exercise 3
def _ln(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float = 1e-5, *,
        dim: int = -1, unbiased: bool = False, eps_outside: bool = False) -> torch.Tensor:
    mean = x.mean(dim, keepdim=True)
    var = x.var(dim, keepdim=True, unbiased=unbiased)
    if eps_outside:
        return (x - mean) / (torch.sqrt(var) + eps) * weight + bias
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def _ln_in_place(x, w, b, eps=1e-5):
    mean = x.mean(-1, keepdim=True)
    var = x.var(-1, keepdim=True, unbiased=False)
    x -= mean
    return x / torch.sqrt(var + eps) * w + b


LAYER_NORM = [
    Mistake("unbiased variance", lambda x, w, b, eps=1e-5: _ln(x, w, b, eps, unbiased=True),
            hint="you used the unbiased variance (dividing by C - 1); LayerNorm divides by C: "
                 "x.var(dim=-1, keepdim=True, unbiased=False)"),
    Mistake("no weight and bias", lambda x, w, b, eps=1e-5: _ln(x, torch.ones_like(w), torch.zeros_like(b), eps),
            hint="weight and bias are not applied: multiply by weight, then add bias"),
    Mistake("weight and bias swapped", lambda x, w, b, eps=1e-5: _ln(x, b, w, eps),
            hint="weight and bias are swapped: it is normalised * weight + bias"),
    Mistake("batch axis", lambda x, w, b, eps=1e-5: _ln(x, w, b, eps, dim=0),
            hint="the statistics are taken over the batch axis (dim=0, like BatchNorm); LayerNorm "
                 "uses the last axis: dim=-1, keepdim=True"),
    Mistake("eps outside the root", lambda x, w, b, eps=1e-5: _ln(x, w, b, eps, eps_outside=True),
            hint="eps is added after the square root; it goes inside: sqrt(var + eps)"),
    Mistake("eps ignored", lambda x, w, b, eps=1e-5: _ln(x, w, b, 1e-5),
            hint="the eps argument is ignored (1e-5 typed in): use the eps you are given"),
    Mistake("std + eps", lambda x, w, b, eps=1e-5: (x - x.mean(-1, keepdim=True))
            / (x.std(-1, keepdim=True, unbiased=False) + eps) * w + b,
            hint="eps is added to the standard deviation (x.std(...) + eps); it goes inside the root: "
                 "(x - mean) / torch.sqrt(var + eps)"),
    Mistake("mean without keepdim", lambda x, w, b, eps=1e-5: (x - x.mean(-1))
            / torch.sqrt(x.var(-1, unbiased=False) + eps) * w + b,
            hint="x.mean(dim=-1) without keepdim=True drops the last axis, so x - mean lines the "
                 "means up with the wrong axis: use x.mean(dim=-1, keepdim=True) (and the same "
                 "for the variance)"),
    Mistake("x -= mean", _ln_in_place,
            hint="x -= mean changes the caller's x in place (and fails on a tensor that requires "
                 "grad): compute a new tensor, (x - mean) / torch.sqrt(var + eps)"),
    Mistake("statistics of the whole tensor", lambda x, w, b, eps=1e-5: (x - x.mean())
            / torch.sqrt(x.var(unbiased=False) + eps) * w + b,
            hint="x.mean() and x.var() without dim= take one mean and variance of the whole tensor; "
                 "LayerNorm normalises each position on its own: dim=-1, keepdim=True"),
    Mistake("dim=1", lambda x, w, b, eps=1e-5: _ln(x, w, b, eps, dim=1),
            hint="the statistics are taken over dim=1, which is the last axis only for 2-D inputs; "
                 "for x of shape (..., C) use dim=-1, keepdim=True"),
    Mistake("no square root", lambda x, w, b, eps=1e-5: (x - x.mean(-1, keepdim=True))
            / (x.var(-1, keepdim=True, unbiased=False) + eps) * w + b,
            hint="you divided by the variance; divide by the standard deviation, "
                 "torch.sqrt(var + eps)"),
    Mistake("bias not added", lambda x, w, b, eps=1e-5: _ln(x, w, torch.zeros_like(b), eps),
            hint="the bias is not added: normalised * weight + bias"),
    Mistake("bias before weight", lambda x, w, b, eps=1e-5: (_ln(x, torch.ones_like(w), torch.zeros_like(b), eps)
                                                             + b) * w,
            hint="the bias is added before the scaling; scale first, then shift: "
                 "normalised * weight + bias"),
    Mistake("no eps", lambda x, w, b, eps=1e-5: _ln(x, w, b, 0.0),
            hint="eps is missing: a constant row gives 0 / 0 = NaN; add eps to the variance before "
                 "the square root, sqrt(var + eps)"),
]


def _reference_layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                          eps: float = 1e-5) -> torch.Tensor:
    return F.layer_norm(x, (x.shape[-1],), weight, bias, eps)


def _layer_norm_cases() -> list[Case]:
    g = torch.Generator().manual_seed(112)

    def wb(C: int) -> tuple[torch.Tensor, torch.Tensor]:
        return _leaf(torch.randn(C, generator=g)), _leaf(torch.randn(C, generator=g))

    const = torch.randn(3, 6, generator=g)
    const[1] = 2.5  # a constant row: variance 0
    tiny = torch.tensor([[0.0, 0.0, 0.0, 0.02], [1.0, 2.0, 3.0, 4.0]])
    return [
        Case("layer_norm(x of shape (3, 8), weight, bias)", _leaf(torch.randn(3, 8, generator=g) * 3 + 1), *wb(8)),
        Case("layer_norm(x of shape (2, 5, 16), weight, bias)", _leaf(torch.randn(2, 5, 16, generator=g) * 2 - 1), *wb(16)),
        Case("layer_norm(x of shape (3, 6) with a constant row, weight, bias)", _leaf(const), *wb(6)),
        Case("layer_norm(x of shape (2, 4) with a tiny variance, weight, bias, eps=1e-3)",
             _leaf(tiny), *wb(4), eps=1e-3),
    ]


def _run_layer_norm(impl: Any, case: Case) -> Any:
    (x, w, b), kwargs = case.fresh()
    out = as_tensor(impl(x, w, b, **kwargs), "layer_norm(x, weight, bias)")
    return outputs_and_grads(out, {"x": x, "weight": w, "bias": b})


@check("LayerNorm", mistakes=LAYER_NORM)
def check_layer_norm(layer_norm_fn: Callable[..., Any]) -> None:
    """Exercise 3: LayerNorm over the last axis, biased variance, eps inside the square root.

    Output and gradients w.r.t. ``x``, ``weight`` and ``bias``; a constant row; ``eps=1e-3``.
    """
    compare(layer_norm_fn, _reference_layer_norm, _layer_norm_cases(),
            name="layer_norm(x, weight, bias)", run=_run_layer_norm, mistakes=LAYER_NORM, atol=1e-4)


# ---------------------------------------------------------------------------- exercise 4
def _attn(block: nn.Module, t: torch.Tensor) -> torch.Tensor:
    return block.attn(t)[0]


class _Block(nn.Module):
    """The lesson's block; the mistakes below override ``forward`` as a learner might write it."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + _attn(self, self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


def _block(name: str, forward: Callable[[Any, torch.Tensor], Any]) -> type:
    return type(name, (_Block,), {"forward": forward})


def _normed_stream(s: Any, x: torch.Tensor) -> torch.Tensor:
    x = s.ln_1(x)
    x = x + _attn(s, x)
    x = s.ln_2(x)
    return x + s.mlp(x)


class _DropStream(_Block):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__(config)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(x + _attn(self, self.ln_1(x)))
        return self.drop(x + self.mlp(self.ln_2(x)))


class _BranchDropBlock(_Block):
    """A second dropout at the end of each branch, on top of the package's own."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__(config)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(_attn(self, self.ln_1(x)))
        return x + self.drop(self.mlp(self.ln_2(x)))


def _in_place_add(s: Any, x: torch.Tensor) -> torch.Tensor:
    x += _attn(s, s.ln_1(x))
    x += s.mlp(s.ln_2(x))
    return x


class _OwnMLPBlock(_Block):
    """Exercise 2's MLP (no dropout) in the block instead of the package's ``MLP(config)``."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__(config)
        self.mlp = _MLP(config.n_embd)


BLOCK = [
    Mistake("post-norm", _block("PostNorm", lambda s, x: (lambda y: s.ln_2(y + s.mlp(y)))(s.ln_1(x + _attn(s, x)))),
            hint="this is the post-norm arrangement LN(x + f(x)), layer norm after the residual "
                 "add; GPT-2 is pre-norm: x = x + f(ln(x))"),
    Mistake("no attention residual", _block("NoRes1", lambda s, x: (lambda y: y + s.mlp(s.ln_2(y)))(_attn(s, s.ln_1(x)))),
            hint="the attention branch is not added to x: x = x + self.attn(self.ln_1(x))[0]"),
    Mistake("no MLP residual", _block("NoRes2", lambda s, x: s.mlp(s.ln_2(x + _attn(s, s.ln_1(x))))),
            hint="the MLP branch is not added to x: x = x + self.mlp(self.ln_2(x))"),
    Mistake("normalised stream", _block("NormedStream", _normed_stream),
            hint="the normalised value is written back into the stream; normalise only the "
                 "branch's input: x = x + self.attn(self.ln_1(x))[0]"),
    Mistake("ln_1 twice", _block("OneNorm", lambda s, x: (lambda y: y + s.mlp(s.ln_1(y)))(x + _attn(s, s.ln_1(x)))),
            hint="both branches use ln_1; the MLP branch reads self.ln_2(x)"),
    Mistake("ln_1 and ln_2 swapped", _block("SwappedNorms", lambda s, x: (lambda y: y + s.mlp(s.ln_1(y)))(x + _attn(s, s.ln_2(x)))),
            hint="ln_1 and ln_2 are swapped: the attention branch reads self.ln_1(x), the MLP "
                 "branch self.ln_2(x)"),
    Mistake("parallel branches", _block("Parallel", lambda s, x: x + _attn(s, s.ln_1(x)) + s.mlp(s.ln_2(x))),
            hint="the MLP reads the block's input instead of the stream after the attention "
                 "branch; update x first, then x = x + self.mlp(self.ln_2(x))"),
    Mistake("MLP first", _block("MlpFirst", lambda s, x: (lambda y: y + _attn(s, s.ln_1(y)))(x + s.mlp(s.ln_2(x)))),
            hint="the MLP runs before the attention; communicate first (attention), then compute "
                 "(MLP)"),
    Mistake("no residuals", _block("NoResiduals", lambda s, x: s.mlp(s.ln_2(_attn(s, s.ln_1(x))))),
            hint="neither branch is added to the stream: each one is a residual update, "
                 "x = x + self.attn(self.ln_1(x))[0], then x = x + self.mlp(self.ln_2(x))"),
    Mistake("MLP first, with ln_1", _block("MlpFirstLn1", lambda s, x: (lambda y: y + _attn(s, s.ln_2(y)))(x + s.mlp(s.ln_1(x)))),
            hint="the MLP runs before the attention; communicate first (attention, with ln_1), then "
                 "compute (MLP, with ln_2)"),
    Mistake("forgot [0]", _block("Tuple", lambda s, x: (lambda y: y + s.mlp(s.ln_2(y)))(x + s.attn(s.ln_1(x)))),
            hint="the package's attention returns a pair (y, weights): take [0], "
                 "x = x + self.attn(self.ln_1(x))[0]"),
    Mistake("MLP without dropout", _OwnMLPBlock,
            hint="in train() mode with dropout your block differs from the package's: its MLP "
                 "branch has no dropout. Use the package's MLP(config), which ends with dropout, "
                 "as the exercise says"),
    Mistake("second dropout on the branches", _BranchDropBlock,
            hint="in train() mode your block drops each branch twice: the package's attention and "
                 "MLP already end with dropout, so add their outputs as they are, without an "
                 "nn.Dropout of your own"),
    Mistake("x += in place", _block("InPlace", _in_place_add),
            hint="x += ... changes the caller's tensor in place (and breaks autograd when x "
                 "requires grad); write x = x + self.attn(self.ln_1(x))[0]"),
    Mistake("final LayerNorm in the block", _block("FinalNorm", lambda s, x: F.layer_norm(
        (lambda y: y + s.mlp(s.ln_2(y)))(x + _attn(s, s.ln_1(x))), (x.shape[-1],))),
            hint="the block's output is normalised; a pre-norm block returns the stream as it is "
                 "(the one final LayerNorm, ln_f, belongs to the GPT, day 12)"),
    Mistake("dropout on the stream", _DropStream,
            hint="with dropout on, in training mode, your block drops parts of the residual "
                 "stream itself; dropout belongs only at the end of each branch (the package's "
                 "attention and MLP already apply it), so the identity path stays intact"),
]


def _reference_block(config: GPTConfig) -> nn.Module:
    return Block(config)


def _block_cases() -> list[Case]:
    g = torch.Generator().manual_seed(113)
    cfg = lambda C, nh, p=0.0: GPTConfig(vocab_size=2, block_size=16, n_layer=2, n_head=nh,  # noqa: E731
                                         n_embd=C, dropout=p)
    return [
        Case("MyBlock(n_embd=32, n_head=4) on x of shape (2, 6, 32)", cfg(32, 4),
             _leaf(torch.randn(2, 6, 32, generator=g) * 2), train=False),
        Case("MyBlock(n_embd=48, n_head=6) on x of shape (3, 9, 48)", cfg(48, 6),
             _leaf(torch.randn(3, 9, 48, generator=g) * 2), train=False),
        Case("MyBlock(n_embd=24, n_head=2) on x of shape (4, 1, 24)", cfg(24, 2),
             _leaf(torch.randn(4, 1, 24, generator=g)), train=False),
        Case("MyBlock(n_embd=32, n_head=4, dropout=0.25) in train() mode, seeded, on x of shape (2, 5, 32)",
             cfg(32, 4, 0.25), _leaf(torch.randn(2, 5, 32, generator=g)), train=True),
        Case("MyBlock(n_embd=32, n_head=4, dropout=0.25) in eval() mode on x of shape (2, 5, 32)",
             cfg(32, 4, 0.25), _leaf(torch.randn(2, 5, 32, generator=g)), train=False),
    ]


def _block_param_names(config: GPTConfig) -> list[str]:
    return [name for name, _ in Block(config).named_parameters()]


def _run_block(impl: Any, case: Case) -> Any:
    (cfg, x), kwargs = case.fresh()
    module = impl(cfg)
    for name in ("ln_1", "attn", "ln_2", "mlp"):
        if getattr(module, name, None) is None:
            raise NotImplementedError(f"self.{name} is missing")
    layer(module, "ln_1", owner="MyBlock")
    layer(module, "ln_2", owner="MyBlock")
    params = _set_params(module, _block_param_names(cfg), seed=cfg.n_embd)
    module.train(kwargs["train"])
    torch.manual_seed(7)  # the same dropout masks for the learner's block and the package's
    out = as_tensor(_output(module(x)), "MyBlock(config)(x)")
    return outputs_and_grads(out, {"x": x, **params})


@check("Block", mistakes=BLOCK)
@needs_earlier(gelu_tanh=1, MyMLP=2, layer_norm=3)
def check_block(block_cls: Callable[[GPTConfig], nn.Module]) -> None:
    """Exercise 4: a pre-norm block equal to :class:`llmcourse.model.Block`.

    Output and gradients w.r.t. ``x`` and every parameter, with the same (random, so that
    ``ln_1`` and ``ln_2`` differ) weights in both; with dropout, in train mode under one seed and
    in eval mode.
    """
    compare(block_cls, _reference_block, _block_cases(), name="MyBlock(config)(x)", run=_run_block,
            mistakes=BLOCK, atol=1e-5, rtol=1e-4)
