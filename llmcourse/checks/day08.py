"""Checks for day 08, "Self-attention as weighted averaging", and the lesson's reference helpers.

Each ``check_*`` function compares the learner's code with a reference built on the package's
:func:`llmcourse.model.causal_mask` (or with PyTorch's
:func:`torch.nn.functional.scaled_dot_product_attention`) on a small seeded battery of inputs
(several sizes, T = 1, large scores, float64), gradients included, prints one line - a pass, a
specific hint, or "not done yet" - and returns ``True`` on a pass. None of them raises.
``causal_softmax`` also runs on scores of the "meta" device (shapes without values), which stands
in for a GPU, so that a mask built on the CPU is named. Each exercise has a table of typical
mistakes (``AVERAGE_PAST``, ``AVERAGING_MATRIX``, ``CAUSAL_SOFTMAX``, ``SIMILARITY_AVERAGE``)
from which the hints come.

Example::

    >>> import torch
    >>> from llmcourse.checks import day08
    >>> def averaging_matrix(T):
    ...     w = torch.tril(torch.ones(T, T))
    ...     return w / w.sum(dim=1, keepdim=True)
    >>> ok = day08.check_averaging_matrix(averaging_matrix)
    ✅ averaging_matrix: passed
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import torch
import torch.nn.functional as F

from llmcourse.checks._core import (Case, CheckFailed, Mistake, as_tensor, check, compare,
                                    kind_of, needs_earlier, outputs_and_grads)
from llmcourse.checks._meta import UNJUDGED, run_on_meta
from llmcourse.model import causal_mask

__all__ = [
    "check_average_past",
    "check_averaging_matrix",
    "check_causal_softmax",
    "check_similarity_average",
    "reference_average_past",
    "reference_averaging_matrix",
    "reference_causal_softmax",
    "AVERAGE_PAST",
    "AVERAGING_MATRIX",
    "CAUSAL_SOFTMAX",
    "SIMILARITY_AVERAGE",
]


def reference_average_past(x: torch.Tensor) -> torch.Tensor:
    """``out[b, t] = mean(x[b, 0..t])`` for ``x`` ``(B, T, C)``, via a cumulative sum."""
    T = x.shape[1]
    counts = torch.arange(1, T + 1, device=x.device, dtype=x.dtype).view(1, T, 1)
    return x.cumsum(dim=1) / counts  # (B, T, C)


def reference_averaging_matrix(T: int) -> torch.Tensor:
    """The ``(T, T)`` lower-triangular matrix whose row ``t`` is ``1 / (t + 1)`` up to column ``t``."""
    w = causal_mask(T, T).float()  # (T, T): 1 where key s <= query t
    return w / w.sum(dim=1, keepdim=True)


def reference_causal_softmax(scores: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dimension of ``scores`` ``(..., T, T)`` with future keys masked out."""
    T = scores.shape[-1]
    allowed = causal_mask(T, T, device=scores.device)  # (T, T)
    return scores.masked_fill(~allowed, float("-inf")).softmax(dim=-1)


def _tensor_or_obs(name: str) -> Callable[[Any, Case], Any]:
    def read(value: Any, case: Case) -> Any:
        return value if isinstance(value, dict) else as_tensor(value, name)
    return read


CHANGED_INPUT = ("your function changed the tensor it was given (an in-place operation such as "
                 "masked_fill_ or +=), so the caller's tensor is no longer what it was: use the "
                 "out-of-place form (masked_fill, without the underscore) and return a new tensor")


def _run_with_grad(impl: Any, case: Case) -> Any:
    """``impl(x)`` for a leaf ``x`` that requires grad: the output and the gradient of ``x``."""
    (x,), _ = case.fresh()
    leaf = x.requires_grad_()
    arg = leaf.clone()  # a non-leaf copy, so that an in-place edit is seen here, not as a crash
    out = impl(arg)
    if not torch.equal(arg.detach(), leaf.detach()):
        raise CheckFailed(CHANGED_INPUT)
    if not isinstance(out, torch.Tensor):
        return out
    return outputs_and_grads(out, {"the input": leaf})


# ---- exercise 1: average the past with a loop ----------------------------------------------------


def _loop(body: Callable[[torch.Tensor, int, int], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """The lesson's loop skeleton with ``body(x, b, t)`` as its one line."""
    def average_past(x):
        B, T, C = x.shape
        xbow = torch.zeros_like(x)
        for b in range(B):
            for t in range(T):
                xbow[b, t] = body(x, b, t)
        return xbow
    return average_past


AVERAGE_PAST = [
    Mistake("leaves out t", _loop(lambda x, b, t: x[b, :t].mean(dim=0)),
            hint="position t averages x[b, :t], leaving out t itself (position 0 is the NaN mean of "
                 "an empty slice); use x[b, :t + 1]"),
    Mistake("running sum", _loop(lambda x, b, t: x[b, :t + 1].sum(dim=0)),
            hint="that is the running sum; divide by the number of positions, t + 1 (or use .mean(dim=0))"),
    Mistake("whole sequence", _loop(lambda x, b, t: x[b].mean(dim=0)),
            hint="every position holds the mean of the whole sequence, future included; position t "
                 "may only average positions 0..t"),
    Mistake("the future", _loop(lambda x, b, t: x[b, t:].mean(dim=0)),
            hint="position t averages positions t..T-1, the future; it should average 0..t, x[b, :t + 1]"),
    Mistake("mean over everything", _loop(lambda x, b, t: x[b, :t + 1].mean()),
            hint="the mean runs over the C numbers too, giving one number per position; average "
                 "over the positions only, .mean(dim=0)"),
    Mistake("mean over dim 1", _loop(lambda x, b, t: x[b, :t + 1].mean(dim=1)),
            hint="x[b, :t + 1] has shape (t + 1, C): .mean(dim=1) averages the C numbers of each "
                 "position; average over the positions, .mean(dim=0)"),
    Mistake("divides by t", _loop(lambda x, b, t: x[b, :t + 1].sum(dim=0) / t),
            hint="the sum of positions 0..t is divided by t (position 0 divides by zero): there are "
                 "t + 1 positions, divide by t + 1 (or use .mean(dim=0))"),
    Mistake("divides by T", _loop(lambda x, b, t: x[b, :t + 1].sum(dim=0) / x.shape[1]),
            hint="the running sum is divided by T, the whole length: position t averages t + 1 "
                 "positions, divide by t + 1 (or use .mean(dim=0))"),
    Mistake("copies x", _loop(lambda x, b, t: x[b, t]),
            hint="xbow[b, t] is x[b, t] itself; it should be the mean of x[b, 0..t]"),
]


def _ap_cases() -> list[Case]:
    g = torch.Generator().manual_seed(0)
    return [Case(f"average_past(x of shape {(B, T, C)}{', float64' if d is torch.float64 else ''})",
                 torch.randn(B, T, C, generator=g).to(d))
            for B, T, C, d in ((2, 6, 3, torch.float32), (1, 1, 4, torch.float32),
                               (3, 9, 1, torch.float32), (2, 5, 2, torch.float64))]


@check("average_past", mistakes=AVERAGE_PAST)
def check_average_past(average_past: Callable[[torch.Tensor], Any]) -> None:
    """Exercise 1: the mean of the vectors at positions ``0..t``, for every ``t`` (and its gradient)."""
    compare(average_past, reference_average_past, _ap_cases(), name="average_past(x)",
            run=_run_with_grad, mistakes=AVERAGE_PAST, read=_tensor_or_obs("average_past(x)"))


# ---- exercise 2: the averaging matrix ------------------------------------------------------------


def _am_triu(T):
    w = torch.triu(torch.ones(T, T))
    return w / w.sum(dim=1, keepdim=True)


def _am_columns(T):
    w = torch.tril(torch.ones(T, T))
    return w / w.sum(dim=0, keepdim=True)


def _am_no_diagonal(T):
    w = torch.tril(torch.ones(T, T), diagonal=-1)
    return w / w.sum(dim=1, keepdim=True)


def _am_global_T(T):  # the notebook's T = 6
    w = torch.tril(torch.ones(6, 6))
    return w / w.sum(dim=1, keepdim=True)


def _am_divide_by_T(T):
    return torch.tril(torch.ones(T, T)) / T


def _am_no_keepdim(T):
    w = torch.tril(torch.ones(T, T))
    return w / w.sum(dim=1)


def _am_float64(T):
    w = torch.tril(torch.ones(T, T, dtype=torch.float64))
    return w / w.sum(dim=1, keepdim=True)


def _am_diagonal_1(T):  # tril(..., diagonal=1): each row also takes the next position
    w = torch.tril(torch.ones(T, T), diagonal=1)
    return w / w.sum(dim=1, keepdim=True)


def _am_arange_from_0(T):  # row t divided by t: arange(T) starts at 0
    return torch.tril(torch.ones(T, T)) / torch.arange(T).view(T, 1)


AVERAGING_MATRIX = [
    Mistake("upper triangular", _am_triu,
            hint="the non-zero entries are above the diagonal: row t (the query) may only use "
                 "columns 0..t, so the matrix is LOWER triangular (torch.tril)"),
    Mistake("not normalised", lambda T: torch.tril(torch.ones(T, T)),
            hint="the rows are not normalised: divide each row by its sum (w / w.sum(dim=1, "
                 "keepdim=True)) so that it averages"),
    Mistake("columns normalised", _am_columns,
            hint="the columns sum to 1, not the rows: use sum(dim=1, keepdim=True)"),
    Mistake("divides by T", _am_divide_by_T,
            hint="row t has t + 1 non-zero entries, so it divides by t + 1, not by T: divide each "
                 "row by its own sum"),
    Mistake("no diagonal", _am_no_diagonal,
            hint="keep the diagonal (torch.tril with the default diagonal=0): position t averages "
                 "0..t, itself included, and row 0 would otherwise be 0/0 = NaN"),
    Mistake("diagonal=1", _am_diagonal_1,
            hint="torch.tril(..., diagonal=1) also keeps the entry just above the diagonal, so row t "
                 "sees position t + 1: use the default diagonal=0"),
    Mistake("row t divided by t", _am_arange_from_0,
            hint="row t is divided by t (torch.arange(T) starts at 0, and row 0 is 0/0): row t has "
                 "t + 1 ones, so divide by torch.arange(1, T + 1).view(T, 1), or by the row's sum"),
    Mistake("sum without keepdim", _am_no_keepdim,
            hint="w / w.sum(dim=1) divides COLUMN s by the sum of row s (a (T,) vector broadcasts "
                 "along the rows): keep the summed axis, w / w.sum(dim=1, keepdim=True)"),
    Mistake("the notebook's T", _am_global_T,
            hint="use the argument T, not the notebook's T"),
    Mistake("float64", _am_float64, expect="dtype float64, expected float32"),
]


@check("averaging_matrix", mistakes=AVERAGING_MATRIX)
def check_averaging_matrix(averaging_matrix: Callable[[int], Any]) -> None:
    """Exercise 2: the row-normalised lower-triangular ``(T, T)`` float32 matrix, for several ``T``."""
    cases = [Case(f"averaging_matrix({T})", T) for T in (4, 9, 1, 6, 3)]
    compare(averaging_matrix, reference_averaging_matrix, cases, name="the matrix",
            mistakes=AVERAGING_MATRIX, read=lambda v, c: as_tensor(v, c.label), atol=1e-6)


# ---- exercise 3: the causal softmax --------------------------------------------------------------


def _tril(T: int, like: torch.Tensor) -> torch.Tensor:
    return torch.tril(torch.ones(T, T, device=like.device))


def _cs_zero_mask(scores):
    T = scores.shape[-1]
    return scores.masked_fill(_tril(T, scores) == 0, 0.0).softmax(dim=-1)


def _cs_no_mask(scores):
    return scores.softmax(dim=-1)


def _cs_dim_2(scores):
    T = scores.shape[-1]
    return scores.masked_fill(_tril(T, scores) == 0, float("-inf")).softmax(dim=-2)


def _cs_mask_after(scores):
    T = scores.shape[-1]
    return scores.softmax(dim=-1).masked_fill(_tril(T, scores) == 0, 0.0)


def _cs_no_diagonal(scores):
    T = scores.shape[-1]
    return scores.masked_fill(torch.tril(torch.ones(T, T), diagonal=-1) == 0, float("-inf")).softmax(dim=-1)


def _cs_masks_the_past(scores):
    T = scores.shape[-1]
    return scores.masked_fill(_tril(T, scores) == 1, float("-inf")).softmax(dim=-1)


def _cs_in_place(scores):  # masked_fill_ writes -inf into the caller's scores
    T = scores.shape[-1]
    return scores.masked_fill_(_tril(T, scores) == 0, float("-inf")).softmax(dim=-1)


def _cs_triu(scores):
    T = scores.shape[-1]
    return scores.masked_fill(torch.triu(torch.ones(T, T)) == 0, float("-inf")).softmax(dim=-1)


def _cs_global_T(scores):  # the notebook's T = 6
    return scores.masked_fill(torch.tril(torch.ones(6, 6)) == 0, float("-inf")).softmax(dim=-1)


def _cs_exp_by_hand(scores):  # softmax written out: exp overflows to inf for scores near 90
    T = scores.shape[-1]
    e = scores.masked_fill(_tril(T, scores) == 0, float("-inf")).exp()
    return e / e.sum(dim=-1, keepdim=True)


def _cs_cpu_mask(scores):  # right on the CPU; on a GPU the CPU mask raises
    T = scores.shape[-1]
    return scores.masked_fill(torch.tril(torch.ones(T, T)) == 0, float("-inf")).softmax(dim=-1)


def _cs_tril_of_scores(scores):  # the mask built from the scores' values: tril(scores) == 0
    return scores.masked_fill(torch.tril(scores) == 0, float("-inf")).softmax(dim=-1)


def _cs_softmax_dim_1(scores):  # dim=1 is the last dimension only for 2-D scores
    T = scores.shape[-1]
    return scores.masked_fill(_tril(T, scores) == 0, float("-inf")).softmax(dim=1)


def _cs_T_from_dim_0(scores):  # T = scores.shape[0], the batch for scores of more than 2 dimensions
    T = scores.shape[0]
    return scores.masked_fill(_tril(T, scores) == 0, float("-inf")).softmax(dim=-1)


def _cs_diagonal_1(scores):  # tril(..., diagonal=1): each query also sees the next key
    T = scores.shape[-1]
    mask = torch.tril(torch.ones(T, T, device=scores.device), diagonal=1)
    return scores.masked_fill(mask == 0, float("-inf")).softmax(dim=-1)


CPU_MASK = ("the mask was built on the CPU, not on scores.device: torch.ones(T, T, "
            "device=scores.device), so that the function works on a GPU")


CAUSAL_SOFTMAX = [
    Mistake("triu mask", _cs_triu,
            hint="the mask keeps the entries above the diagonal (torch.triu): query t may only see "
                 "keys 0..t, so keep the LOWER triangle (torch.tril) and mask the rest"),
    Mistake("masks with 0", _cs_zero_mask,
            hint="the future was masked with 0, which softmax turns into weight e^0 = 1 (not 0); "
                 "mask with float('-inf')"),
    Mistake("no mask", _cs_no_mask,
            hint="the future is not masked: set the scores above the diagonal to float('-inf') "
                 "before the softmax"),
    Mistake("softmax over the queries", _cs_dim_2,
            hint="the softmax runs over the queries (dim=-2); run it over the keys, the last "
                 "dimension, so that each row sums to 1"),
    Mistake("masks after the softmax", _cs_mask_after,
            hint="the rows do not sum to 1: mask the scores BEFORE the softmax (zeroing weights "
                 "afterwards leaves rows that no longer sum to 1)"),
    Mistake("no diagonal", _cs_no_diagonal,
            hint="the diagonal is masked too, so row 0 is all -inf and its softmax NaN: keep the "
                 "diagonal, every query sees at least itself (torch.tril with diagonal=0)"),
    Mistake("masks the past", _cs_masks_the_past,
            hint="the past is masked instead of the future: set -inf where torch.tril(...) == 0 "
                 "(keys after the query)"),
    Mistake("mask from tril(scores)", _cs_tril_of_scores,
            hint="torch.tril(scores) == 0 also masks every allowed score that happens to be 0 (a row "
                 "of zeros becomes all -inf, NaN): build the mask from ones, "
                 "torch.tril(torch.ones(T, T, device=scores.device)) == 0"),
    Mistake("softmax over dim 1", _cs_softmax_dim_1,
            hint="softmax(dim=1) is the last dimension only for 2-D scores: with leading dimensions "
                 "it normalises the wrong axis; use dim=-1"),
    Mistake("T from dim 0", _cs_T_from_dim_0,
            hint="T = scores.shape[0] is the first leading dimension when scores has more than two: "
                 "take T = scores.shape[-1]"),
    Mistake("diagonal=1", _cs_diagonal_1,
            hint="torch.tril(..., diagonal=1) lets query t see key t + 1, one step of the future: "
                 "use the default diagonal=0"),
    Mistake("the notebook's T", _cs_global_T,
            hint="build the mask from the scores' own size, T = scores.shape[-1], not the notebook's T"),
    Mistake("masked_fill_ on the input", _cs_in_place, expect="changed the tensor it was given"),
    Mistake("softmax by hand", _cs_exp_by_hand,
            hint="exp of a large score overflowed to inf (inf/inf = NaN): use .softmax(dim=-1), "
                 "which subtracts each row's maximum first"),
    Mistake("mask on the CPU", _cs_cpu_mask, expect=CPU_MASK),
]


def _cs_cases() -> list[Case]:
    g = torch.Generator().manual_seed(1)
    return [
        Case("causal_softmax(torch.zeros(5, 5))", torch.zeros(5, 5)),
        Case("causal_softmax(scores of shape (2, 3, 6, 6))", torch.randn(2, 3, 6, 6, generator=g) * 2),
        Case("causal_softmax(scores of shape (1, 1))", torch.randn(1, 1, generator=g)),
        Case("causal_softmax(scores of shape (4, 7, 7) around ±50)", torch.randn(4, 7, 7, generator=g) * 50),
        Case("causal_softmax(float64 scores of shape (3, 3))", torch.randn(3, 3, generator=g).double()),
    ]


@check("causal_softmax", mistakes=CAUSAL_SOFTMAX)
def check_causal_softmax(causal_softmax: Callable[[torch.Tensor], Any]) -> None:
    """Exercise 3: mask the future with ``-inf``, then softmax over the keys (weights and gradients)."""
    compare(causal_softmax, reference_causal_softmax, _cs_cases(), name="causal_softmax(scores)",
            run=_run_with_grad, mistakes=CAUSAL_SOFTMAX, read=_tensor_or_obs("causal_softmax(scores)"))
    _works_off_the_cpu(causal_softmax)


def _works_off_the_cpu(causal_softmax: Callable[[torch.Tensor], Any]) -> None:
    """Run ``causal_softmax`` on scores of the "meta" device (shapes, no values), which stands in
    for a GPU: a mask built on the CPU cannot meet them, as it could not meet scores on a GPU."""
    label = ("causal_softmax(torch.zeros(2, 4, 4, device='meta')), scores on another device than "
             "the CPU")
    out = run_on_meta(causal_softmax, (torch.zeros(2, 4, 4, device="meta"),), label, CPU_MASK)
    if out is UNJUDGED:
        return
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, 4, 4):
        raise CheckFailed(f"causal_softmax(scores) should return a tensor of shape (2, 4, 4), got "
                          f"{kind_of(out)} (on {label})")
    if out.device.type != "meta":
        raise CheckFailed(f"causal_softmax(scores) returned a tensor on {out.device.type}: keep "
                          f"the result on scores.device (on {label})")


# ---- exercise 4: data-dependent averaging --------------------------------------------------------


def _reference_similarity_average(x: torch.Tensor) -> torch.Tensor:
    return F.scaled_dot_product_attention(x, x, x, is_causal=True, scale=1.0)


def _sa_uniform(x):
    return reference_averaging_matrix(x.shape[1]).to(x.dtype) @ x


def _sa_no_mask(x):
    return (x @ x.transpose(-2, -1)).softmax(-1) @ x


def _sa_scaled(x):
    return reference_causal_softmax(x @ x.transpose(-2, -1) / x.shape[-1] ** 0.5) @ x


def _sa_weights_only(x):
    return reference_causal_softmax(x @ x.transpose(-2, -1))


def _sa_dot_T(x):
    with warnings.catch_warnings():  # x.T on a 3-D tensor is deprecated
        warnings.simplefilter("ignore")
        return reference_causal_softmax(x @ x.T) @ x


def _sa_feature_scores(x):  # (C, C) scores: x.transpose(-2, -1) @ x
    return x @ (x.transpose(-2, -1) @ x).softmax(-1)


SIMILARITY_AVERAGE = [
    Mistake("uniform weights", _sa_uniform,
            hint="these are uniform weights (a plain average); the scores should be the dot products "
                 "x @ x.transpose(-2, -1)"),
    Mistake("no mask", _sa_no_mask, hint="the future is not masked: use your causal_softmax on the scores"),
    Mistake("scaled", _sa_scaled,
            hint="the scores are divided by sqrt(C); not today (that is tomorrow's lesson): use the "
                 "raw dot products"),
    Mistake("returns the weights", _sa_weights_only,
            hint="that is the (B, T, T) matrix of weights; return the weighted average weights @ x, "
                 "(B, T, C)"),
    Mistake("x.T", _sa_dot_T,
            hint="x.T (or x.transpose(0, 1)) swaps the wrong dimensions of a 3-D x: for the dot "
                 "products of positions use x.transpose(-2, -1)"),
    Mistake("scores between features", _sa_feature_scores, expect="differs by up to"),
]


def _sa_cases() -> list[Case]:
    g = torch.Generator().manual_seed(3)
    return [Case(f"similarity_average(x of shape {(B, T, C)}{', float64' if d is torch.float64 else ''})",
                 (torch.randn(B, T, C, generator=g) * s).to(d))
            for B, T, C, s, d in ((2, 7, 4, 1.0, torch.float32), (1, 1, 3, 1.0, torch.float32),
                                  (3, 5, 8, 0.5, torch.float32), (2, 4, 2, 1.0, torch.float64))]


@check("similarity_average", mistakes=SIMILARITY_AVERAGE)
@needs_earlier(causal_softmax=3)
def check_similarity_average(similarity_average: Callable[[torch.Tensor], Any]) -> None:
    """Exercise 4: attention with ``q = k = v = x``, no scaling, against PyTorch's SDPA (and gradients)."""
    compare(similarity_average, _reference_similarity_average, _sa_cases(), name="similarity_average(x)",
            run=_run_with_grad, mistakes=SIMILARITY_AVERAGE, read=_tensor_or_obs("similarity_average(x)"))
