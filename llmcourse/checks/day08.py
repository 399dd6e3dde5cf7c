"""Checks for day 08, "Self-attention as weighted averaging", and the lesson's reference helpers.

Each ``check_*`` function runs the learner's code on random inputs, compares it numerically with
a reference built on the package's :func:`llmcourse.model.causal_mask` (or with PyTorch's
:func:`torch.nn.functional.scaled_dot_product_attention`), prints one line - a pass, a specific
hint, or "not done yet" - and returns ``True`` on a pass. None of them raises.

Example::

    >>> import torch
    >>> from llmcourse.checks import day08
    >>> ok = day08.check_averaging_matrix(day08.reference_averaging_matrix)
    ✅ averaging_matrix: passed
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F

from llmcourse.checks._core import CheckFailed, assert_close, assert_shape, check, needs_earlier
from llmcourse.model import causal_mask

__all__ = [
    "check_average_past",
    "check_averaging_matrix",
    "check_causal_softmax",
    "check_similarity_average",
    "reference_average_past",
    "reference_averaging_matrix",
    "reference_causal_softmax",
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


def _random_x(B: int = 2, T: int = 6, C: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.randn(B, T, C, generator=torch.Generator().manual_seed(seed))


@check("average_past")
def check_average_past(average_past: Callable[[torch.Tensor], Any]) -> None:
    """Exercise 1: the mean of the vectors at positions ``0..t``, for every ``t``."""
    x = _random_x()
    got = average_past(x.clone())
    if got is None:
        raise CheckFailed("average_past returned None; did you forget `return xbow`?")
    assert_shape(got, tuple(x.shape), "average_past(x)")
    got = torch.as_tensor(got)
    if torch.isnan(got[:, 0]).any():
        raise CheckFailed("position 0 is NaN: the mean of an empty slice. Position t averages "
                          "x[b, :t + 1], which includes t itself")
    if torch.allclose(got[:, 1:], x[:, :-1].cumsum(1) / torch.arange(1, x.shape[1]).view(1, -1, 1),
                      atol=1e-5):
        raise CheckFailed("position t averages x[b, :t], leaving out t itself; use x[b, :t + 1]")
    if torch.allclose(got, x.mean(dim=1, keepdim=True).expand_as(x), atol=1e-5):
        raise CheckFailed("every position holds the mean of the whole sequence, future included; "
                          "position t may only average positions 0..t")
    if torch.allclose(got, x.cumsum(dim=1), atol=1e-5):
        raise CheckFailed("that is the running sum; divide by the number of positions, t + 1")
    assert_close(got, reference_average_past(x), "average_past(x)", atol=1e-5)


@check("averaging_matrix")
def check_averaging_matrix(averaging_matrix: Callable[[int], Any]) -> None:
    """Exercise 2: the row-normalised lower-triangular ``(T, T)`` matrix."""
    got = averaging_matrix(4)
    if got is None:
        raise CheckFailed("averaging_matrix returned None; did you forget the `return`?")
    assert_shape(got, (4, 4), "averaging_matrix(4)")
    got = torch.as_tensor(got, dtype=torch.float32)
    want = reference_averaging_matrix(4)
    if torch.allclose(got, want.T, atol=1e-6) or torch.allclose(got, torch.ones(4, 4).triu() /
                                                                 torch.ones(4, 4).triu().sum(1, keepdim=True)):
        raise CheckFailed("the non-zero entries are above the diagonal: row t (the query) may only "
                          "use columns 0..t, so the matrix is LOWER triangular (torch.tril)")
    if torch.allclose(got, torch.ones(4, 4).tril(), atol=1e-6):
        raise CheckFailed("the rows are not normalised: divide each row by its sum "
                          "(w / w.sum(dim=1, keepdim=True)) so that it averages")
    if torch.allclose(got, torch.ones(4, 4).tril() / torch.ones(4, 4).tril().sum(0, keepdim=True), atol=1e-6):
        raise CheckFailed("the columns sum to 1, not the rows: use sum(dim=1, keepdim=True)")
    assert_close(got, want, "averaging_matrix(4)", atol=1e-6)
    assert_close(averaging_matrix(9), reference_averaging_matrix(9), "averaging_matrix(9)", atol=1e-6)


@check("causal_softmax")
def check_causal_softmax(causal_softmax: Callable[[torch.Tensor], Any]) -> None:
    """Exercise 3: mask the future with ``-inf``, then softmax over the keys."""
    zeros = torch.zeros(5, 5)
    got = causal_softmax(zeros.clone())
    if got is None:
        raise CheckFailed("causal_softmax returned None; did you forget the `return`?")
    assert_shape(got, (5, 5), "causal_softmax(torch.zeros(5, 5))")
    got = torch.as_tensor(got)
    if torch.isnan(got).any():
        raise CheckFailed("the result has NaN: a row whose scores are all -inf has no softmax. "
                          "Mask with tril (keep the diagonal), so every query sees at least itself")
    if torch.allclose(got, torch.full((5, 5), 0.2), atol=1e-6):
        raise CheckFailed("all weights are 1/5: the future is not masked. Set the scores above "
                          "the diagonal to float('-inf') before the softmax")
    scores = torch.randn(2, 3, 6, 6, generator=torch.Generator().manual_seed(1)) * 2
    want = reference_causal_softmax(scores)
    got = torch.as_tensor(causal_softmax(scores.clone()))
    assert_shape(got, (2, 3, 6, 6), "causal_softmax on scores of shape (2, 3, 6, 6)")
    if (got.triu(1).abs() > 1e-6).any():
        zero_masked = scores.masked_fill(~causal_mask(6, 6), 0.0).softmax(-1)
        if torch.allclose(got, zero_masked, atol=1e-5):
            raise CheckFailed("the future was masked with 0, which softmax turns into weight e^0 = 1 "
                              "(not 0); mask with float('-inf')")
        if torch.allclose(got, scores.softmax(-1), atol=1e-5):
            raise CheckFailed("the future is not masked: positions after the query get weight")
        raise CheckFailed("some weights above the diagonal are not 0: query t must give weight 0 to "
                          "keys after t (mask where torch.tril(...) == 0)")
    if torch.allclose(got, scores.masked_fill(~causal_mask(6, 6), float("-inf")).softmax(-2)
                      .nan_to_num(0.0), atol=1e-5):
        raise CheckFailed("the softmax runs over the queries (dim=-2); run it over the keys, the "
                          "last dimension, so that each row sums to 1")
    rows = got.sum(-1)
    if not torch.allclose(rows, torch.ones_like(rows), atol=1e-5):
        raise CheckFailed("the rows do not sum to 1: mask the scores BEFORE the softmax (zeroing "
                          "weights afterwards leaves rows that no longer sum to 1)")
    assert_close(got, want, "causal_softmax(scores)", atol=1e-5)


@check("similarity_average")
@needs_earlier(causal_softmax=3)
def check_similarity_average(similarity_average: Callable[[torch.Tensor], Any]) -> None:
    """Exercise 4: attention with ``q = k = v = x`` and no scaling, against PyTorch's SDPA."""
    x = _random_x(B=2, T=7, C=4, seed=3)
    got = similarity_average(x.clone())
    if got is None:
        raise CheckFailed("similarity_average returned None; did you forget the `return`?")
    assert_shape(got, (2, 7, 4), "similarity_average(x) for x of shape (2, 7, 4)")
    got = torch.as_tensor(got)
    want = F.scaled_dot_product_attention(x, x, x, is_causal=True, scale=1.0)  # (B, T, C)
    if torch.allclose(got, reference_average_past(x), atol=1e-5):
        raise CheckFailed("these are uniform weights (a plain average); the scores should be the "
                          "dot products x @ x.transpose(-2, -1)")
    if torch.allclose(got, F.scaled_dot_product_attention(x, x, x, scale=1.0), atol=1e-5):
        raise CheckFailed("the future is not masked: use your causal_softmax on the scores")
    scaled = F.scaled_dot_product_attention(x, x, x, is_causal=True)
    if torch.allclose(got, scaled, atol=1e-5):
        raise CheckFailed("the scores are divided by sqrt(C); not today (that is tomorrow's "
                          "lesson): use the raw dot products")
    assert_close(got, want, "similarity_average(x) compared with F.scaled_dot_product_attention("
                 "x, x, x, is_causal=True, scale=1.0)", atol=1e-5)
