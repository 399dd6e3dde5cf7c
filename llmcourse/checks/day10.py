"""Checks for day 10, "Multi-head attention", and reference head split/merge helpers.

Each ``check_*`` function compares the learner's code with the package's on a small seeded
battery (sizes unlike the notebook's ``C = 8``, ``n_head = 2``, ``T = 4``; batch unlike time;
one head; one position), outputs *and* gradients, prints one line - a pass, the hint of a
typical mistake (the tables ``SPLIT``, ``MERGE``, ``ATTENTION``), or "not done yet" - and
returns a verdict, true on a pass. None of them raises.

:func:`split_heads` and :func:`merge_heads` are the references the lesson uses after its
exercises, so that a learner who skipped one can run the rest of the notebook.

Example::

    >>> import torch
    >>> from llmcourse.checks import day10
    >>> x = torch.randn(2, 5, 12)
    >>> tuple(day10.split_heads(x, 3).shape)
    (2, 3, 5, 4)
    >>> torch.equal(day10.merge_heads(day10.split_heads(x, 3)), x)
    True
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmcourse.checks._core import (Case, CheckFailed, Mistake, Raised, as_tensor, check, compare, layer,
                                    needs_earlier, outputs_and_grads)
from llmcourse.model import CausalSelfAttention, GPTConfig
from llmcourse.model.layers import merge_heads, split_heads

__all__ = [
    "split_heads",
    "merge_heads",
    "check_split_heads",
    "check_merge_heads",
    "check_attention_module",
]

# The references are the package's own (llmcourse.model.layers.split_heads / merge_heads),
# which the attention module itself uses.


def _randn(g: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=g).requires_grad_()


def _run_tensor_fn(what: str) -> Callable[[Any, Case], Any]:
    def run(impl: Any, case: Case) -> Any:
        args, _ = case.fresh()
        out = as_tensor(impl(*args), what)
        return outputs_and_grads(out, {"the input": args[0]})

    return run


# ---------------------------------------------------------------------------- exercise 1
def _shape(t: torch.Tensor, n_head: int) -> tuple[int, int, int, int]:
    B, T, C = t.shape
    return B, T, n_head, C // n_head


def _split_true_division(t, n_head):  # C / n_head is a float, which view refuses
    B, T, C = t.shape
    return t.view(B, T, n_head, C / n_head).transpose(1, 2)


def _split_transpose_first(t, n_head):  # (B, C, T) viewed as (B, nh, T, hs): not contiguous
    B, T, C = t.shape
    return t.transpose(1, 2).view(B, n_head, T, C // n_head)


def _split_transpose_first_reshape(t, n_head):  # the same with reshape: runs, wrong numbers
    B, T, C = t.shape
    return t.transpose(1, 2).reshape(B, n_head, T, C // n_head)


def _split_pieces_of_n_head(t, n_head):  # split(n_head): pieces of n_head channels, hs of them
    return torch.stack(t.split(n_head, dim=-1), dim=1)


_TRANSPOSE_FIRST = ("the transpose came before the view, so the channels were regrouped along the "
                    "wrong axis: view first, t.view(B, T, n_head, C // n_head), then .transpose(1, 2)")

SPLIT = [
    Mistake("no transpose", lambda t, n_head: t.view(*_shape(t, n_head)),
            hint="the head axis must come before the time axis: add .transpose(1, 2) after the "
                 "view, (B, T, n_head, hs) -> (B, n_head, T, hs)"),
    Mistake("flat view", lambda t, n_head: t.reshape(t.shape[0], n_head, t.shape[1], t.shape[2] // n_head),
            hint="x.view(B, n_head, T, hs) cuts the flat data into blocks, which mixes positions "
                 "into heads; view as (B, T, n_head, hs) first, then transpose(1, 2)"),
    Mistake("interleaved channels", lambda t, n_head: t.view(
        t.shape[0], t.shape[1], t.shape[2] // n_head, n_head).permute(0, 3, 1, 2),
            hint="head h got every n_head-th channel (view(B, T, hs, n_head)): head h owns the "
                 "consecutive channels h * hs .. (h + 1) * hs - 1, so view as (B, T, n_head, hs)"),
    Mistake("global n_head", lambda t, n_head: t.view(t.shape[0], t.shape[1], 2, t.shape[2] // 2).transpose(1, 2),
            hint="the split used 2 heads, the notebook's n_head, instead of the n_head argument"),
    Mistake("C / n_head", _split_true_division,
            hint="C / n_head is a float, and view needs ints: use integer division, C // n_head"),
    Mistake("transpose before the view", _split_transpose_first, hint=_TRANSPOSE_FIRST),
    Mistake("split(n_head)", _split_pieces_of_n_head,
            hint="t.split(n_head, dim=-1) cuts pieces of n_head channels (hs of them), not n_head "
                 "pieces: split by the head size, t.split(C // n_head, dim=-1), or use "
                 "t.chunk(n_head, dim=-1)"),
    Mistake("transpose before the reshape", _split_transpose_first_reshape, hint=_TRANSPOSE_FIRST),
    Mistake("transpose(2, 3)", lambda t, n_head: t.view(*_shape(t, n_head)).transpose(2, 3),
            hint="transpose(1, 2) swaps the time and head axes; transpose(2, 3) swaps heads and "
                 "channels instead"),
]


def _split_cases() -> list[Case]:
    g = torch.Generator().manual_seed(100)
    return [
        Case("split_heads(x of shape (2, 5, 12), n_head=3)", _randn(g, 2, 5, 12), 3),
        Case("split_heads(x of shape (3, 4, 16), n_head=4)", _randn(g, 3, 4, 16), 4),
        Case("split_heads(x of shape (1, 7, 8), n_head=1)", _randn(g, 1, 7, 8), 1),
        Case("split_heads(x of shape (3, 6, 16), n_head=8)", _randn(g, 3, 6, 16), 8),
        Case("split_heads(x of shape (4, 1, 6), n_head=2)", _randn(g, 4, 1, 6), 2),
    ]


@check("split_heads", mistakes=SPLIT)
def check_split_heads(split_heads_fn: Callable[[torch.Tensor, int], Any]) -> None:
    """Exercise 1: ``t.view(B, T, nh, hs).transpose(1, 2)``: values, shape and gradient."""
    compare(split_heads_fn, split_heads, _split_cases(), name="split_heads(x, n_head)",
            run=_run_tensor_fn("split_heads(x, n_head)"), mistakes=SPLIT)


# ---------------------------------------------------------------------------- exercise 2
MERGE = [
    Mistake("no transpose", lambda y: y.reshape(y.shape[0], y.shape[2], y.shape[1] * y.shape[3]),
            hint="merge_heads regroups the numbers without moving the head axis back: "
                 "transpose(1, 2) to (B, T, nh, hs) first, then .contiguous().view"),
    Mistake("no contiguous", lambda y: y.transpose(1, 2).view(y.shape[0], y.shape[2], y.shape[1] * y.shape[3]),
            hint="after transpose(1, 2) the tensor is not contiguous: call .contiguous() after the "
                 "transpose and before .view, or use .reshape"),
    Mistake("heads in the wrong order", lambda y: y.permute(0, 2, 3, 1).reshape(
        y.shape[0], y.shape[2], y.shape[1] * y.shape[3]),
            hint="the heads' channels are interleaved (permute to (B, T, hs, nh)); lay the heads "
                 "side by side, head 0's hs numbers first: transpose(1, 2) to (B, T, nh, hs), then view"),
    Mistake("wrong transpose", lambda y: y.transpose(2, 3).reshape(y.shape[0], y.shape[2], y.shape[1] * y.shape[3]),
            hint="transpose(2, 3) swaps time and channels; undo the split with transpose(1, 2)"),
]


def _merge_cases() -> list[Case]:
    g = torch.Generator().manual_seed(101)
    return [
        Case("merge_heads(y of shape (2, 3, 5, 4))", _randn(g, 2, 3, 5, 4)),
        Case("merge_heads(y of shape (3, 4, 4, 2))", _randn(g, 3, 4, 4, 2)),
        Case("merge_heads(y of shape (1, 1, 6, 8))", _randn(g, 1, 1, 6, 8)),
        Case("merge_heads(y of shape (2, 6, 3, 5))", _randn(g, 2, 6, 3, 5)),
    ]


@check("merge_heads", mistakes=MERGE)
def check_merge_heads(merge_heads_fn: Callable[[torch.Tensor], Any]) -> None:
    """Exercise 2: ``y.transpose(1, 2).contiguous().view(B, T, nh * hs)``: values and gradient."""
    compare(merge_heads_fn, merge_heads, _merge_cases(), name="merge_heads(y)",
            run=_run_tensor_fn("merge_heads(y)"), mistakes=MERGE)


# ---------------------------------------------------------------------------- exercise 3
class _Attention(nn.Module):
    """The lesson's module with one thing changed, as a learner might write it."""

    scale = "hs"      # "hs", "C" or "none"
    mask = "tril"     # "tril", "triu", "none" or "diagonal" (the diagonal masked too)
    mask_after = False  # multiply the softmax's weights by tril instead of masking the scores
    zero_nan = False  # nan_to_num(0.0) after the softmax (a row with every key masked is NaN)
    project = True
    order = "qkv"     # the order of c_attn's output
    merge = "transpose"  # "transpose", "reshape" (head axis not moved back) or "no contiguous"
    softmax_dim = -1
    split = "view"    # "view": (B, T, nh, hs) then transpose; "flat"/"flat reshape": (B, nh, T, hs) at once
    qkv = "split"     # "split": .split(C, dim=-1); "split 3": .split(3, dim=-1);
    #                   "interleaved": .view(B, T, C, 3), every third column

    def __init__(self, n_embd: int, n_head: int) -> None:
        super().__init__()
        if n_embd % n_head != 0:
            raise ValueError(f"n_embd ({n_embd}) must be divisible by n_head ({n_head})")
        self.n_head = n_head
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        nh, hs = self.n_head, C // self.n_head
        if self.qkv == "split 3":  # fails: pieces of 3 columns, far more than three of them
            q, k, v = self.c_attn(x).split(3, dim=-1)
        elif self.qkv == "interleaved":  # q, k, v taken as every third column
            parts = dict(zip(self.order, self.c_attn(x).view(B, T, C, 3).unbind(-1)))
        else:
            parts = dict(zip(self.order, self.c_attn(x).split(C, dim=-1)))
        if self.split == "flat":  # fails: a column slice of c_attn's output cannot be viewed so
            q, k, v = (parts[c].view(B, nh, T, hs) for c in "qkv")
        elif self.split == "flat reshape":
            q, k, v = (parts[c].reshape(B, nh, T, hs) for c in "qkv")
        else:
            q, k, v = (parts[c].view(B, T, nh, hs).transpose(1, 2) for c in "qkv")
        s = {"hs": 1 / math.sqrt(hs), "C": 1 / math.sqrt(C), "none": 1.0}[self.scale]
        att = q @ k.transpose(-2, -1) * s
        ones = torch.ones(T, T, dtype=torch.bool)
        keep = {"tril": ones.tril(), "triu": ones.triu(), "none": ones,
                "diagonal": ones.tril(-1)}[self.mask]
        if self.mask_after:  # (B, nh, T, T) weights, then the future ones set to 0
            weights = att.softmax(dim=self.softmax_dim) * keep
        else:
            weights = att.masked_fill(~keep, float("-inf")).softmax(dim=self.softmax_dim)
        if self.zero_nan:
            weights = weights.nan_to_num(0.0)
        y = weights @ v
        if self.merge == "transpose":
            y = y.transpose(1, 2).contiguous().view(B, T, C)
        elif self.merge == "no contiguous":  # fails: the transposed y cannot be viewed
            y = y.transpose(1, 2).view(B, T, C)
        else:  # without moving the head axis back
            y = y.reshape(B, T, C)
        return self.c_proj(y) if self.project else y


def _wrong(name: str, **knobs: Any) -> type:
    return type(name, (_Attention,), knobs)


class _NoValidation(_Attention):
    def __init__(self, n_embd: int, n_head: int) -> None:
        nn.Module.__init__(self)
        self.n_head = n_head
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)


class _AssertValidation(_NoValidation):
    def __init__(self, n_embd: int, n_head: int) -> None:
        assert n_embd % n_head == 0, "n_embd must be divisible by n_head"
        super().__init__(n_embd, n_head)


class _NoBias(_Attention):
    def __init__(self, n_embd: int, n_head: int) -> None:
        super().__init__(n_embd, n_head)
        self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=False)


_FLAT_SPLIT = ("q, k and v were split into heads with view/reshape(B, n_head, T, hs), which cuts the "
               "flat data into blocks and mixes positions into heads: view as (B, T, n_head, hs) "
               "first, then transpose(1, 2)")

_VIEW_NOT_CONTIGUOUS = ("a .view() met a tensor that is not contiguous: split each of q, k, v with "
                        ".view(B, T, n_head, hs).transpose(1, 2), not view(B, n_head, T, hs), and "
                        "merge with y.transpose(1, 2).contiguous().view(B, T, C) (or .reshape)")
_DIAGONAL = ("the diagonal is masked too (triu() as the forbidden set): each position must see "
             "itself; mask only the keys strictly above the diagonal: masked_fill(~tril, -inf), or "
             "triu(1) as the forbidden set")

ATTENTION = [
    Mistake("no causal mask", _wrong("NoMask", mask="none"),
            hint="the causal mask is missing: fill the scores above the diagonal with -inf before "
                 "the softmax (torch.tril)"),
    Mistake("mask on the wrong side", _wrong("Triu", mask="triu"),
            hint="the mask is on the wrong side: it keeps the future keys (torch.triu); keep the "
                 "keys at or before the query, torch.tril"),
    Mistake("diagonal masked too", _wrong("Diagonal", mask="diagonal"),
            hint=_DIAGONAL),
    Mistake("diagonal masked too, NaN set to 0", _wrong("DiagonalZeroed", mask="diagonal", zero_nan=True),
            hint=_DIAGONAL),
    Mistake("masked after the softmax", _wrong("MaskAfter", mask_after=True),
            hint="the mask is applied after the softmax (weights * tril), so each row of weights no "
                 "longer sums to 1: mask the scores with -inf BEFORE the softmax "
                 "(scores.masked_fill(~tril, float('-inf')))"),
    Mistake("unscaled", _wrong("Unscaled", scale="none"),
            hint="the scores are not scaled: multiply q @ k.transpose(-2, -1) by 1 / sqrt(hs)"),
    Mistake("scaled by sqrt(C)", _wrong("ByC", scale="C"),
            hint="the scores are scaled by 1 / sqrt(C); use the head size hs = C // n_head, since "
                 "each head's dot products sum over hs numbers"),
    Mistake("no c_proj", _wrong("NoProj", project=False),
            hint="the output projection is missing: return self.c_proj(y) after merging the heads"),
    Mistake("heads merged without transpose", _wrong("BadMerge", merge="reshape"),
            hint="the heads are merged without moving the head axis back: y.transpose(1, 2)"
                 ".contiguous().view(B, T, C)"),
    Mistake("q, k, v in the wrong order", _wrong("KQV", order="kqv"),
            hint="c_attn's output is split in the wrong order: the first C columns are the "
                 "queries, then the keys, then the values (q, k, v = ....split(C, dim=-1))"),
    Mistake("softmax over queries", _wrong("SoftmaxQ", softmax_dim=-2),
            hint="the softmax runs over the queries (dim=-2); each row of weights sums over the "
                 "keys: softmax(dim=-1)"),
    Mistake("split(3) instead of split(C)", _wrong("SplitThree", qkv="split 3"),
            hint="split takes the size of each piece, not their number: .split(C, dim=-1) gives "
                 "three pieces of C columns (or use .chunk(3, dim=-1))"),
    Mistake("q, k, v interleaved", _wrong("Interleaved", qkv="interleaved"),
            hint="c_attn's output holds q, k and v as three consecutive blocks of C columns, not "
                 "every third column: .split(C, dim=-1) (or .view(B, T, 3, C))"),
    Mistake("no ValueError", _NoValidation,
            hint="MyCausalSelfAttention(10, 3) should raise ValueError: 10 channels cannot be "
                 "split into 3 equal heads"),
    Mistake("assert instead of ValueError", _AssertValidation,
            hint="MyCausalSelfAttention(10, 3) should raise ValueError (raise ValueError(...)), not "
                 "an AssertionError: an assert disappears under python -O"),
    Mistake("no bias", _NoBias, expect="has no bias"),
    # a flat view of q and a view of the transposed y crash with the same words: one hint for both
    Mistake("heads split with view(B, nh, T, hs)", _wrong("FlatView", split="flat"),
            hint=_VIEW_NOT_CONTIGUOUS),
    Mistake("merged without contiguous", _wrong("NoContiguous", merge="no contiguous"),
            hint=_VIEW_NOT_CONTIGUOUS),
    Mistake("heads split with reshape(B, nh, T, hs)", _wrong("FlatReshape", split="flat reshape"),
            hint=_FLAT_SPLIT),
]


class _TypeErrorValidation(_NoValidation):
    def __init__(self, n_embd: int, n_head: int) -> None:
        if n_embd % n_head != 0:
            raise TypeError("n_embd must be divisible by n_head")
        super().__init__(n_embd, n_head)


_WRONG_EXCEPTION = ("MyCausalSelfAttention({C}, {nh}) raised {kind}; raise ValueError(...) when "
                    "n_embd is not divisible by n_head")
ATTENTION.append(Mistake("TypeError instead of ValueError", _TypeErrorValidation,
                         expect="raised TypeError; raise ValueError"))


def _reference_attention(n_embd: int, n_head: int) -> nn.Module:
    return CausalSelfAttention(GPTConfig(vocab_size=2, block_size=16, n_layer=1, n_head=n_head,
                                         n_embd=n_embd))


def _attention_cases() -> list[Case]:
    g = torch.Generator().manual_seed(102)
    return [
        Case("MyCausalSelfAttention(24, 4) on x of shape (2, 7, 24)", 24, 4, _randn(g, 2, 7, 24)),
        Case("MyCausalSelfAttention(12, 1) on x of shape (3, 5, 12)", 12, 1, _randn(g, 3, 5, 12)),
        Case("MyCausalSelfAttention(48, 8) on x of shape (2, 9, 48)", 48, 8, _randn(g, 2, 9, 48)),
        Case("MyCausalSelfAttention(20, 5) on x of shape (3, 1, 20)", 20, 5, _randn(g, 3, 1, 20)),
        Case("MyCausalSelfAttention(10, 3)", 10, 3, None),
    ]


_PARAMS = ("c_attn.weight", "c_attn.bias", "c_proj.weight", "c_proj.bias")


def _run_attention(impl: Any, case: Case) -> Any:
    (C, nh, x), _ = case.fresh()
    if x is None:  # the module must refuse sizes it cannot split
        try:
            impl(C, nh)
        except (NotImplementedError, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - which exception it is, is the answer
            if not isinstance(exc, (ValueError, AssertionError)):  # an assert has its own hint
                raise CheckFailed(_WRONG_EXCEPTION.format(C=C, nh=nh, kind=type(exc).__name__)) from exc
            if isinstance(exc, ValueError) and type(exc) is not ValueError:  # a subclass is a ValueError
                exc = ValueError(str(exc))
            return Raised(exc)
        return "built a module"
    module = impl(C, nh)
    owner = f"MyCausalSelfAttention({C}, {nh})"
    layer(module, "c_attn", nn.Linear, shape=(3 * C, C), bias=True, owner=owner)
    layer(module, "c_proj", nn.Linear, shape=(C, C), bias=True, owner=owner)
    params = {name: module.get_parameter(name) for name in _PARAMS}
    g = torch.Generator().manual_seed(C * 10 + nh)
    with torch.no_grad():  # the same weights for the learner's module and the package's
        for p in params.values():
            p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(C))
    module.eval()
    out = module(x)
    if isinstance(out, tuple) and out and isinstance(out[0], torch.Tensor):
        out = out[0]  # allow the package's (y, weights) convention
    out = as_tensor(out, f"{owner}(x)")
    return outputs_and_grads(out, {"x": x, **params})


@check("CausalSelfAttention", mistakes=ATTENTION)
@needs_earlier(split_heads=1, merge_heads=2)
def check_attention_module(module_cls: Callable[[int, int], nn.Module]) -> None:
    """Exercise 3: the learner's module computes the package's ``CausalSelfAttention``.

    Both get the same weights (``c_attn``, ``c_proj``) and the same inputs; the outputs and the
    gradients w.r.t. the input and every parameter are compared. ``(10, 3)`` must raise
    ``ValueError``.
    """
    compare(module_cls, _reference_attention, _attention_cases(),
            name="MyCausalSelfAttention(n_embd, n_head)(x)", run=_run_attention, mistakes=ATTENTION)
