"""Checks for day 34, "Fine-tuning", and the reference versions the lesson runs on.

Each ``check_*`` function compares the learner's code with a reference on a small seeded
battery of its own (sizes unlike the notebook's, prompts and responses that share token ids,
an empty prompt, tied weights, non-default rank and alpha, gradients), prints one line - a
pass, a hint from the exercise's table of typical mistakes, or "not done yet" - and never
raises. The references are :func:`reference_instruction_pair`,
:class:`llmcourse.finetune.LoRALinear` and :func:`reference_training_bytes`.

Example::

    >>> from llmcourse.checks import day34
    >>> def instruction_pair(prompt_ids, response_ids):
    ...     ids = list(prompt_ids) + list(response_ids)
    ...     x, y = torch.tensor(ids[:-1]), torch.tensor(ids[1:])
    ...     y[: max(len(prompt_ids) - 1, 0)] = -1
    ...     return x, y
    >>> ok = day34.check_instruction_pair(instruction_pair)
    ✅ instruction_pair: passed
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Sequence

import torch
import torch.nn as nn

from llmcourse.checks._core import PartNotDone as _PartNotDone  # shared in _core
from llmcourse.checks._core import (Case, CheckFailed, EarlierNotDone, Mistake, as_int, as_pair,
                                    as_tensor, call, check, compare, labelled, outputs_and_grads,
                                    same)
from llmcourse.finetune import LoRALinear as _RefLoRA

__all__ = [
    "check_instruction_pair",
    "check_lora_linear",
    "check_training_bytes",
    "reference_instruction_pair",
    "reference_training_bytes",
]


# ---- reference implementations -------------------------------------------------------------


def reference_instruction_pair(prompt_ids: Sequence[int],
                               response_ids: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)`` for ``ids = prompt_ids + response_ids``: ``x = ids[:-1]``, ``y = ids[1:]``
    with ``-1`` where the target is a prompt token (the first ``len(prompt_ids) - 1``; none
    for an empty prompt)."""
    ids = list(prompt_ids) + list(response_ids)
    x = torch.tensor(ids[:-1], dtype=torch.long)
    y = torch.tensor(ids[1:], dtype=torch.long)
    y[: max(len(prompt_ids) - 1, 0)] = -1
    return x, y


def reference_training_bytes(model: nn.Module) -> int:
    """Bytes of the parameters, plus the gradients and AdamW's two moments of the trainable ones
    (each the size of its parameter); a tied parameter counts once; activations are not counted."""
    total = 0
    for p in model.parameters():
        size = p.numel() * p.element_size()
        total += size + (3 * size if p.requires_grad else 0)
    return total


# ---- exercise 1: the prompt masked out of the loss -----------------------------------------


def _pair(prompt, response, *, start=None, stop=None, fill=-1, shift=True):
    ids = list(prompt) + list(response)
    x = torch.tensor(ids[:-1] if shift else ids)
    y = torch.tensor(ids[1:] if shift else ids[1:] + [0])
    n = len(prompt)
    y[(0 if start is None else start(n)):(n - 1 if stop is None else stop(n, len(ids)))] = fill
    return x, y


def _by_value(prompt_ids, response_ids):  # masks every target whose id occurs in the prompt
    ids = list(prompt_ids) + list(response_ids)
    x, y = torch.tensor(ids[:-1]), torch.tensor(ids[1:])
    y[torch.isin(y, torch.tensor(list(prompt_ids), dtype=torch.long))] = -1
    return x, y


def _view(prompt_ids, response_ids):  # y is a view of the same tensor as x
    ids = torch.tensor(list(prompt_ids) + list(response_ids))
    x, y = ids[:-1], ids[1:]
    y[: len(prompt_ids) - 1] = -1
    return x, y


def _negative_slice(prompt_ids, response_ids):  # y[:len(prompt) - 1] is y[:-1] for no prompt
    ids = list(prompt_ids) + list(response_ids)
    x, y = torch.tensor(ids[:-1]), torch.tensor(ids[1:])
    y[: len(prompt_ids) - 1] = -1
    return x, y


def _x_masked(prompt_ids, response_ids):  # -1 written into x as well as y
    x, y = reference_instruction_pair(prompt_ids, response_ids)
    x[: max(len(prompt_ids) - 1, 0)] = -1
    return x, y


def _extends(prompt_ids, response_ids):  # prompt_ids.extend(...) changes the caller's list
    prompt_ids.extend(response_ids)
    ids = torch.tensor(prompt_ids)
    x, y = ids[:-1].clone(), ids[1:].clone()
    y[: max(len(prompt_ids) - len(response_ids) - 1, 0)] = -1
    return x, y


_INPUTS_KEPT = ("instruction_pair changed the lists it was given (prompt_ids.extend, +=, append): "
                "build ids = list(prompt_ids) + list(response_ids) and leave the inputs as they were")


def _run_pair(impl: Any, case: Case) -> Any:
    """``impl(prompt_ids, response_ids)`` on fresh copies, which must come back unchanged."""
    (prompt, response), _ = case.fresh()
    before = (list(prompt), list(response))
    out = impl(prompt, response)
    if (list(prompt), list(response)) != before:
        raise CheckFailed(f"{_INPUTS_KEPT} (on {case.label})")
    return out


PAIR = [
    Mistake("masks by token value", _by_value, hint="you masked the targets whose token id occurs "
            "in the prompt, so response tokens that share an id with the prompt (a space, a new "
            "line) are masked too: mask by position, the first len(prompt) - 1 targets"),
    Mistake("-100", lambda p, r: _pair(p, r, fill=-100), hint="the prompt's targets are -100, "
            "PyTorch's default ignore_index; our GPT's cross-entropy ignores -1: mask with -1"),
    Mistake("y a view of x", _view, hint="x changed when you masked y: y = ids[1:] and x = "
            "ids[:-1] are views of one tensor, so writing -1 into y writes into x; build them as "
            "two tensors (torch.tensor(ids[1:]), or .clone() before masking)"),
    Mistake("empty prompt", _negative_slice, hint="with an empty prompt len(prompt) - 1 is -1 and "
            "y[:-1] masks every target but the last; no target is a prompt token then: mask "
            "y[:max(len(prompt) - 1, 0)]"),
    Mistake("nothing masked", lambda p, r: _pair(p, r, stop=lambda n, L: 0), hint="nothing is "
            "masked: set the targets that are prompt tokens to -1, the value the loss ignores"),
    Mistake("masks with 0", lambda p, r: _pair(p, r, fill=0), hint="the prompt's targets are 0: "
            "mask with -1 (our cross-entropy's ignore_index); 0 is a real token id the model "
            "would learn to predict"),
    Mistake("one too many", lambda p, r: _pair(p, r, stop=lambda n, L: n), hint="one target too "
            "many is masked: y[len(prompt) - 1] is the first response token (predicted from the "
            "prompt's last token); keep it"),
    Mistake("one too few", lambda p, r: _pair(p, r, stop=lambda n, L: max(n - 2, 0)),
            hint="one prompt target is left in the loss: mask y[:len(prompt) - 1] (y is ids "
            "shifted by one, so len(prompt) - 1 of its targets are prompt)"),
    Mistake("response masked", lambda p, r: _pair(p, r, start=lambda n: n - 1,
                                                   stop=lambda n, L: L),
            hint="the response is masked: the loss should count the response tokens and skip "
            "the prompt's"),
    Mistake("max with 1", lambda p, r: _pair(p, r, stop=lambda n, L: max(n - 1, 1)), hint="with an "
            "empty prompt no target is a prompt token, so none is masked: y[:max(len(prompt) - 1, 0)] "
            "(max with 0, not 1)"),
    Mistake("x masked too", _x_masked, hint="x was masked too: only the targets y get -1; x keeps "
            "every token id (the model reads the whole prompt)"),
    Mistake("extends the prompt list", _extends, expect=_INPUTS_KEPT),
    Mistake("not shifted", lambda p, r: _pair(p, r, shift=False), expect="x has shape"),
    Mistake("float x", lambda p, r: (torch.tensor(p + r)[:-1].float(), torch.tensor(p + r)[1:]),
            expect="int64"),
    Mistake("lists", lambda p, r: ((p + r)[:-1], (p + r)[1:]), expect="torch tensor"),
    Mistake("no pair", lambda p, r: torch.tensor(p + r), expect="pair"),
]


def _pair_cases() -> list[Case]:
    # Prompt and response share ids (3 a space, 12 a new line, as in "A: ...\n"), ids past 255.
    return [
        Case("instruction_pair([7, 3, 9, 3, 12], [3, 8, 12, 2]) (shared ids)",
             [7, 3, 9, 3, 12], [3, 8, 12, 2]),
        Case("instruction_pair(2 prompt ids, 6 response ids up to 50256)",
             [50256, 300], [300, 9000, 11, 300, 50256, 0]),
        Case("instruction_pair([], [5, 8, 2, 6]) (empty prompt)", [], [5, 8, 2, 6]),
        Case("instruction_pair([4], [1, 4, 4]) (one prompt token)", [4], [1, 4, 4]),
        Case("instruction_pair(9 prompt ids, [9])", [1, 9, 2, 9, 3, 9, 4, 9, 5], [9]),
    ]


@labelled
def _read_pair(value: Any, case: Case) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = as_pair(value, "instruction_pair")
    n = len(case.args[0]) + len(case.args[1]) - 1
    return (as_tensor(x, "x", shape=(n,), dtype=torch.long),
            as_tensor(y, "y", shape=(n,), dtype=torch.long))


@check("instruction_pair", mistakes=PAIR)
def check_instruction_pair(instruction_pair: Any) -> None:
    """Exercise 1: x is ids[:-1], y is ids[1:] with the prompt's targets set to -1."""
    compare(instruction_pair, reference_instruction_pair, _pair_cases(),
            name="instruction_pair(prompt_ids, response_ids)", mistakes=PAIR, read=_read_pair,
            run=_run_pair)


# ---- exercise 2: LoRALinear ------------------------------------------------------------------


class _LoRA(nn.Module):
    """A LoRA layer as a learner might write it, with one knob per mistake."""

    def __init__(self, base, r, alpha, *, factor=None, transpose=False, init="kaiming",
                 b_random=False, freeze=True, param=True, new_base=False, forward="ok"):
        super().__init__()
        self.base = nn.Linear(base.in_features, base.out_features) if new_base else base
        if freeze:
            base.requires_grad_(False)
        a = torch.zeros(r, base.in_features)
        if init == "kaiming":
            nn.init.kaiming_uniform_(a, a=math.sqrt(5))
        elif init == "kaiming a=0":
            nn.init.kaiming_uniform_(a)
        elif init == "randn":
            a = torch.randn(r, base.in_features)
        b = torch.randn(base.out_features, r) if b_random else torch.zeros(base.out_features, r)
        if transpose:
            a, b = a.T.contiguous(), b.T.contiguous()
        self.lora_A = nn.Parameter(a) if param else a
        self.lora_B = nn.Parameter(b) if param else b
        self.factor = alpha / r if factor is None else factor(alpha, r)
        self.how = forward

    def forward(self, x):
        a, b, s = self.lora_A, self.lora_B, self.factor
        if self.how == "merge":
            with torch.no_grad():
                self.base.weight += s * b @ a
            return self.base(x)
        if self.how == "no_grad":
            with torch.no_grad():
                update = s * (x @ a.T) @ b.T
            return self.base(x) + update
        if self.how == "base detached":
            return self.base(x).detach() + s * (x @ a.T) @ b.T
        if self.how == "x detached":
            return self.base(x) + s * (x.detach() @ a.T) @ b.T
        if self.how == "2-D":
            with warnings.catch_warnings():  # x.T of a 3-D x: the learner's warning, not ours
                warnings.simplefilter("ignore", UserWarning)
                return self.base(x) + s * (b @ (a @ x.T)).T
        if self.how == "no bias":
            return x @ self.base.weight.T + s * (x @ a.T) @ b.T
        if self.how == "A detached":
            return self.base(x) + s * (x @ a.detach().T) @ b.T
        return self.base(x) + s * (x @ a.T) @ b.T


def _lora(**kw):
    return lambda base, r, alpha: _LoRA(base, r, alpha, **kw)


_TRANSPOSED = Mistake("transposed", _lora(transpose=True), hint="A and B are transposed: A is "
                      "(r, in_features) and B is (out_features, r), like an nn.Linear's weight "
                      "(out, in)")
_A_ZERO = Mistake("A zero", _lora(init="zeros"), hint="lora_A is all zeros: with A = B = 0 both "
                  "gradients are 0 and nothing ever trains; initialise A randomly "
                  "(nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5)))")
_A_STD1 = Mistake("A std 1", _lora(init="randn"), hint="lora_A starts with std about 1 "
                  "(torch.randn): initialise it like an nn.Linear weight, "
                  "nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5)), within "
                  "±1/sqrt(in_features)")
_A_KAIMING0 = Mistake("kaiming without a", _lora(init="kaiming a=0"), hint="lora_A goes beyond "
                      "±1/sqrt(in_features): use nn.init.kaiming_uniform_ (uniform, not "
                      "kaiming_normal_) with a=math.sqrt(5), the nn.Linear initialisation; without "
                      "a the bound is sqrt(6 / in_features)")
_B_RANDOM = Mistake("B random", _lora(b_random=True), hint="lora_B should start at zero, so the "
                    "fresh adapter changes nothing (layer(x) == base(x) at init)")
_NOT_FROZEN = Mistake("base trains", _lora(freeze=False), hint="the base layer still trains: set "
                      "requires_grad_(False) on its weight and bias")
_NOT_PARAM = Mistake("plain tensors", _lora(param=False), hint="should be an nn.Parameter (so the "
                     "optimizer sees it)")
_NEW_BASE = Mistake("new base", _lora(new_base=True), hint="self.base should be the nn.Linear "
                    "passed in (the trained layer), not a new one")
_MERGED = Mistake("merges in forward", _lora(forward="merge"), hint="forward changed the base "
                  "weight: leave W alone and add the update to the output")

_NO_BIAS = Mistake("base without its bias", _lora(forward="no bias"), hint="the base's bias is "
                   "missing: x @ self.base.weight.T drops it; call self.base(x), which adds it")

_NO_SUPER = ("call super().__init__() first in __init__: an nn.Module cannot hold layers or "
             "parameters (self.base, self.lora_A) before it")
_NO_TRANSPOSE = ("lora_A is (r, in) and lora_B (out, r), stored like nn.Linear weights: the "
                 "update is (x @ self.lora_A.T) @ self.lora_B.T, (..., in) -> (..., r) -> (..., out)")


class _LoraNoSuper(nn.Module):
    def __init__(self, base, r, alpha):  # no super().__init__()
        self.base = base


class _LoraNoTranspose(nn.Module):
    def __init__(self, base, r, alpha):
        super().__init__()
        self.base = base.requires_grad_(False)
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r))
        self.scaling = alpha / r

    def forward(self, x):
        return self.base(x) + self.scaling * (x @ self.lora_A) @ self.lora_B


LORA = [
    Mistake("no super().__init__()", _LoraNoSuper, expect=_NO_SUPER),
    Mistake("weights not transposed", _LoraNoTranspose, expect=_NO_TRANSPOSE),
    _TRANSPOSED, _A_ZERO, _A_STD1, _A_KAIMING0, _B_RANDOM, _NOT_FROZEN, _NOT_PARAM, _NEW_BASE,
    _MERGED, _NO_BIAS,
    Mistake("2-D x only", _lora(forward="2-D"), hint="(B @ (A @ x.T)).T works only for a 2-D x; "
            "x is (..., in_features): write (x @ self.lora_A.T) @ self.lora_B.T"),
    Mistake("x detached", _lora(forward="x detached"), hint="x is detached in the update: the "
            "gradient of x must flow through the adapter as well as through base(x); use x as it is"),
    Mistake("base detached", _lora(forward="base detached"), hint="base(x) is detached: the "
            "gradient must still flow through the frozen base to x (freezing W only stops W's "
            "own gradient); drop the .detach()"),
    Mistake("update under no_grad", _lora(forward="no_grad"), hint="the update is computed under "
            "torch.no_grad(): lora_A and lora_B get no gradient, so the adapter can never train"),
    Mistake("A detached", _lora(forward="A detached"), hint="lora_A is detached in forward: it "
            "gets no gradient and never trains; use self.lora_A as it is"),
    Mistake("not scaled", _lora(factor=lambda a, r: 1.0), hint="the update is not scaled: "
            "multiply B A x by alpha / r"),
    Mistake("scaled by alpha", _lora(factor=lambda a, r: a), hint="scaled by alpha: the factor "
            "is alpha / r"),
    Mistake("scaled by r / alpha", _lora(factor=lambda a, r: r / a), hint="scaled by r / alpha: "
            "the factor is alpha / r"),
    Mistake("scaled by alpha / sqrt(r)", _lora(factor=lambda a, r: a / math.sqrt(r)),
            hint="scaled by alpha / sqrt(r) (rank-stabilised LoRA): the factor here is alpha / r"),
    Mistake("alpha // r", _lora(factor=lambda a, r: a // r), hint="alpha // r is floor division "
            "(4.0 // 8 is 0.0, and the adapter vanishes): the factor is alpha / r"),
    Mistake("not added", _lora(factor=lambda a, r: 0.0), hint="the adapter is not added: return "
            "base(x) + (alpha / r) * B A x"),
]



def _structure(LoRALinear: Any, in_f: int, out_f: int, r: int, alpha: float) -> None:
    """Attributes, shapes, freezing and the initialisation of a fresh layer."""
    torch.manual_seed(34)
    base = nn.Linear(in_f, out_f)
    shown = f"LoRALinear(nn.Linear({in_f}, {out_f}), r={r}, alpha={alpha})"
    try:
        layer = call(LoRALinear, base, r, alpha, shown=shown)
    except CheckFailed as exc:
        if "before Module.__init__() call" in str(exc):
            raise CheckFailed(_NO_SUPER) from None
        raise
    if not isinstance(layer, nn.Module):
        raise CheckFailed(f"{shown} should build an nn.Module, got {type(layer).__name__}")
    for attr in ("base", "lora_A", "lora_B"):
        if not hasattr(layer, attr):
            raise CheckFailed(f"the layer has no attribute {attr!r}; store the wrapped layer as "
                              f"self.base and the adapters as self.lora_A, self.lora_B")
    if layer.base is not base:
        raise CheckFailed(_NEW_BASE.hint)
    a, b = layer.lora_A, layer.lora_B
    for name, p in (("lora_A", a), ("lora_B", b)):
        if not isinstance(p, nn.Parameter):
            raise CheckFailed(f"{name} {_NOT_PARAM.hint}, got {type(p).__name__}")
    if tuple(a.shape) == (in_f, r) and tuple(b.shape) == (r, out_f):
        raise CheckFailed(f"{_TRANSPOSED.hint}: here A ({r}, {in_f}) and B ({out_f}, {r})")
    if tuple(a.shape) != (r, in_f) or tuple(b.shape) != (out_f, r):
        raise CheckFailed(f"lora_A should be (r, in) = ({r}, {in_f}) and lora_B (out, r) = "
                          f"({out_f}, {r}), got {tuple(a.shape)} and {tuple(b.shape)}")
    if base.weight.requires_grad or base.bias.requires_grad:
        raise CheckFailed(_NOT_FROZEN.hint)
    if not (a.requires_grad and b.requires_grad):
        raise CheckFailed("lora_A and lora_B must have requires_grad=True (they are what trains)")
    trainable = sorted(n for n, p in layer.named_parameters() if p.requires_grad)
    if trainable != ["lora_A", "lora_B"]:
        raise CheckFailed(f"the trainable parameters should be lora_A and lora_B only, got {trainable}")
    if torch.count_nonzero(b.detach()) != 0:
        raise CheckFailed(_B_RANDOM.hint)
    values = a.detach().float()
    bound = 1 / math.sqrt(in_f)  # kaiming_uniform_(a=sqrt(5)): U(-1/sqrt(in), 1/sqrt(in))
    if torch.count_nonzero(values) == 0:
        raise CheckFailed(_A_ZERO.hint)
    if values.std() > 0.8:
        raise CheckFailed(f"{_A_STD1.hint} (got std {values.std():.2f}, expected about "
                          f"{bound / math.sqrt(3):.3f} for in_features={in_f})")
    if values.abs().max() > math.sqrt(6 / in_f) * (1 + 1e-5):   # beyond even kaiming_uniform_(a=0)
        raise CheckFailed(f"lora_A goes beyond ±1/sqrt(in_features) (got values up to "
                          f"{values.abs().max():.3f}, bound {bound:.3f} for in_features={in_f}): "
                          "initialise it like an nn.Linear weight, "
                          "nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))")
    if values.abs().max() > bound * (1 + 1e-5):
        raise CheckFailed(f"{_A_KAIMING0.hint} (got values up to {values.abs().max():.3f}, "
                          f"bound {bound:.3f} for in_features={in_f})")
    if values.std() < 0.45 * bound:       # kaiming_uniform_(a=sqrt(5)) gives about 0.577 * bound
        raise CheckFailed(f"lora_A is too small (std {values.std():.4f}, expected about "
                          f"{bound / math.sqrt(3):.3f} for in_features={in_f}): initialise it with "
                          "nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5)), a the square "
                          "root of 5")
    x = torch.randn(3, in_f)
    w0 = base.weight.detach().clone()
    try:
        out = call(layer, x, shown=f"layer(x) with x of shape (3, {in_f})")
    except CheckFailed as exc:
        if "shapes cannot be multiplied" in str(exc):
            raise CheckFailed(f"{exc}: {_NO_TRANSPOSE}") from None
        raise
    except NotImplementedError:
        raise _PartNotDone("__init__ is written, forward is not done yet: return base(x) + "
                           "(alpha / r) * B A x, run the cell, then run this check again") from None
    out = as_tensor(out, "layer(x)", shape=(3, out_f))
    if not torch.equal(base.weight.detach(), w0):
        raise CheckFailed(_MERGED.hint)
    why = same(out.detach(), base(x).detach(), "layer(x) at init (it should equal base(x), B = 0)")
    if why and same(out.detach(), (x @ base.weight.T).detach(), "layer(x)") is None:
        raise CheckFailed(_NO_BIAS.hint)
    if why:
        raise CheckFailed(why)


def _lora_run(cls: Any, case: Case) -> dict[str, Any]:
    in_f, out_f, r, alpha, lead, bias = case.args
    torch.manual_seed(3)
    base = nn.Linear(in_f, out_f, bias=bias)
    layer = cls(base, r, alpha)
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():  # the same trained-looking A and B for the learner and the reference
        layer.lora_A.copy_(torch.randn(r, in_f, generator=g) / math.sqrt(in_f))
        layer.lora_B.copy_(torch.randn(out_f, r, generator=g))
    x = torch.randn(*lead, in_f, generator=g).requires_grad_(True)
    wrt = {"x": x, "lora_A": layer.lora_A, "lora_B": layer.lora_B, "base.weight": base.weight}
    obs = outputs_and_grads(layer(x), wrt)
    obs["base.weight after forward"] = base.weight.detach().clone()
    return obs


def _lora_cases() -> list[Case]:
    return [
        Case("LoRALinear(nn.Linear(10, 6), r=2, alpha=6.0) on x (3, 4, 10)", 10, 6, 2, 6.0, (3, 4), True),
        Case("LoRALinear(nn.Linear(24, 40, bias=False), r=8, alpha=4.0) on x (5, 24)",
             24, 40, 8, 4.0, (5,), False),
        Case("LoRALinear(nn.Linear(7, 5), r=1, alpha=1.5) on x (2, 3, 7)", 7, 5, 1, 1.5, (2, 3), True),
    ]


@check("LoRALinear", mistakes=LORA)
def check_lora_linear(LoRALinear: Any) -> None:
    """Exercise 2: the frozen base plus (alpha / r) * B A x, A (r, in) Kaiming-uniform, B zero."""
    _structure(LoRALinear, 48, 20, 4, 12.0)
    compare(LoRALinear, _RefLoRA, _lora_cases(), name="layer(x)", run=_lora_run, mistakes=LORA)


# ---- exercise 3: training memory ------------------------------------------------------------


class _Mixed(nn.Module):
    """A frozen float32 layer, a trainable one and a frozen bfloat16 embedding."""

    def __init__(self) -> None:
        super().__init__()
        self.frozen = nn.Linear(7, 5)
        self.trained = nn.Linear(5, 3, bias=False)
        self.emb = nn.Embedding(11, 4).to(torch.bfloat16)
        for p in (*self.frozen.parameters(), *self.emb.parameters()):
            p.requires_grad_(False)


class _Tied(nn.Module):
    """A tiny language model whose head shares the embedding's weight (like GPT's wte/lm_head)."""

    def __init__(self, vocab: int, dim: int, freeze_emb: bool = False) -> None:
        super().__init__()
        self.wte = nn.Embedding(vocab, dim)
        self.ln = nn.LayerNorm(dim)
        self.lm_head = nn.Linear(dim, vocab, bias=False)
        self.lm_head.weight = self.wte.weight
        if freeze_emb:
            self.wte.weight.requires_grad_(False)


def _bytes(params=1, extra=3, only_trainable=True, per=None):
    def training_bytes(model):
        total = 0
        for p in model.parameters():
            size = p.numel() * (p.element_size() if per is None else per)
            total += params * size + (extra * size if (p.requires_grad or not only_trainable) else 0)
        return total
    return training_bytes


def _tied_twice(model):  # every module's own parameters: a shared one is met twice
    total = 0
    for m in model.modules():
        for p in m.parameters(recurse=False):
            size = p.numel() * p.element_size()
            total += size + (3 * size if p.requires_grad else 0)
    return total


def _with_buffers(model):  # model.buffers() added to the parameters
    total = reference_training_bytes(model)
    return total + sum(b.numel() * b.element_size() for b in model.buffers())


BYTES = [
    Mistake("frozen parameters not counted", _bytes(params=0, extra=4), hint="the frozen "
            "parameters still sit in memory: count every parameter's own bytes once, and add the "
            "gradient and two AdamW moments (3 more copies) for the trainable ones only"),
    Mistake("tied counted twice", _tied_twice, hint="a tied weight (one nn.Parameter in two "
            "modules, like wte and lm_head) was counted twice: model.parameters() yields each "
            "parameter once; sum over it"),
    Mistake("numel", _bytes(per=1), hint="that is a count of numbers, not bytes: multiply each "
            "p.numel() by p.element_size() (4 for float32, 2 for bfloat16)"),
    Mistake("frozen get state", _bytes(only_trainable=False), hint="the frozen parameters get "
            "gradients and optimizer state too: only p.requires_grad ones do"),
    Mistake("4 bytes each", _bytes(per=4), hint="every parameter counted as 4 bytes: the "
            "embedding here is bfloat16; use p.element_size()"),
    Mistake("no AdamW state", _bytes(extra=1), hint="AdamW's state is missing: it keeps two "
            "moments per trainable parameter (exp_avg and exp_avg_sq), each the parameter's "
            "size, besides the gradient"),
    Mistake("one copy short", _bytes(extra=2), hint="one copy short: a trainable parameter has a "
            "gradient and two AdamW moments, three extra copies of its bytes"),
    Mistake("parameters only", _bytes(extra=0), hint="no gradient or AdamW state was "
            "counted: add 3 more copies of the bytes of every p in model.parameters() with "
            "p.requires_grad (not p.grad, None before a backward; not a state_dict's tensors, "
            "which never require grad; and a generator such as model.parameters() is empty the "
            "second time through)"),
    Mistake("buffers counted", _with_buffers, hint="buffers (a BatchNorm's running statistics, "
            "a causal mask) were counted: they are not parameters; sum over model.parameters() only"),
    Mistake("one copy too many", _bytes(extra=4), expect="training_bytes(model) should be"),
    Mistake("a str", lambda m: "12", expect="should return an int"),
]


def _bytes_cases() -> list[Case]:
    torch.manual_seed(0)
    lora = nn.Sequential(nn.Linear(6, 9), nn.GELU())
    lora[0] = _RefLoRA(lora[0], 2, 4.0)
    return [
        Case("training_bytes(frozen float32 Linear(7, 5), trainable Linear(5, 3), frozen bfloat16 "
             "Embedding(11, 4))", _Mixed()),
        Case("training_bytes(Embedding(13, 6) tied with the head, LayerNorm(6))", _Tied(13, 6)),
        Case("training_bytes(tied Embedding(9, 4) frozen)", _Tied(9, 4, freeze_emb=True)),
        Case("training_bytes(Linear(6, 9) with a LoRA adapter r=2)", lora),
        Case("training_bytes(Embedding(300, 16) tied, in bfloat16)", _Tied(300, 16).to(torch.bfloat16)),
        Case("training_bytes(Linear(4, 3), BatchNorm1d(3) with its running-statistics buffers)",
             nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))),
    ]


@check("training_bytes", mistakes=BYTES)
def check_training_bytes(training_bytes: Any) -> None:
    """Exercise 3: parameters + gradients + AdamW state of the trainable ones, in bytes."""
    compare(training_bytes, reference_training_bytes, _bytes_cases(), name="training_bytes(model)",
            mistakes=BYTES, read=lambda v, case: as_int(v, "training_bytes"))
