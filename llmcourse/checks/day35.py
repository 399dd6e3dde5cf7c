"""Checks for day 35, "Distillation": softened targets, the distillation loss, the gap closed.

Each ``check_*`` runs the learner's function on inputs unlike the notebook's, prints one line
(a pass, a specific hint, or "not done yet") and returns a verdict. None of them raises. The
references are :mod:`llmcourse.finetune.distill`.

Example::

    >>> from llmcourse.checks import day35
    >>> from llmcourse.finetune import distillation_loss
    >>> ok = day35.check_distillation_loss(distillation_loss)
    ✅ distillation_loss: passed
"""

from __future__ import annotations

import numbers
from typing import Any, Callable

import torch
import torch.nn.functional as F

from llmcourse.checks._core import (CheckFailed, as_tensor, assert_close, call, check, kind_of,
                                    needs_earlier)
from llmcourse.finetune.distill import distillation_loss, soften

__all__ = ["check_soften", "check_distillation_loss", "check_gap_closed", "gap_closed"]


def gap_closed(teacher_loss: float, student_loss: float, distilled_loss: float) -> float:
    """The share of the student-teacher gap that distillation closed (the reference).

    >>> round(gap_closed(2.0, 2.5, 2.4), 4)
    0.2
    """
    return (student_loss - distilled_loss) / (student_loss - teacher_loss)


def _number(value: Any, name: str) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise CheckFailed(f"{name} should return a number, got {kind_of(value)}")
    return float(value)


def _close(a: float, b: float, tol: float = 1e-4) -> bool:
    return abs(a - b) <= tol * max(1.0, abs(b))


def _logits(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * 2


@check("soften")
def check_soften(soften_fn: Callable[[torch.Tensor, float], Any]) -> None:
    """Exercise 1: softmax(logits / T) over the last dimension."""
    x = _logits(2, 3, 5, seed=11)
    for T in (3.0, 0.5):
        shown = f"soften(logits of shape (2, 3, 5), T={T})"
        got = as_tensor(call(soften_fn, x.clone(), T, shown=shown), shown, shape=(2, 3, 5))
        want = soften(x, T)
        if torch.allclose(got.float(), want, atol=1e-5):
            continue
        if torch.allclose(got.float(), torch.softmax(x * T, -1), atol=1e-5):
            raise CheckFailed(f"{shown} multiplies the logits by T; divide them: softmax(logits / T)")
        if torch.allclose(got.float(), torch.softmax(x, -1), atol=1e-5):
            raise CheckFailed(f"{shown} ignores T; divide the logits by T before the softmax")
        if torch.allclose(got.float(), x / T, atol=1e-5):
            raise CheckFailed(f"{shown} returned logits / T; apply the softmax to them as well")
        if torch.allclose(got.float(), torch.log_softmax(x / T, -1), atol=1e-5):
            raise CheckFailed(f"{shown} returned log-probabilities; return probabilities (softmax)")
        if not torch.allclose(got.float().sum(-1), torch.ones(2, 3), atol=1e-4):
            raise CheckFailed(f"{shown}: the values along the last dimension (the vocabulary) "
                              "should sum to 1; take the softmax over dim=-1")
        assert_close(got.float(), want, shown)


def _wrong_answers(s, t, y, T, alpha):
    """The typical mistakes, computed on the check's inputs, each with its hint."""
    V = s.shape[-1]
    s2, t2, y2 = s.reshape(-1, V), t.reshape(-1, V), y.reshape(-1)
    keep = y2 != -1
    hard = F.cross_entropy(s2, y2, ignore_index=-1)
    lt, ls = F.log_softmax(t2 / T, -1), F.log_softmax(s2 / T, -1)
    kl_rows = (lt.exp() * (lt - ls)).sum(-1)
    kl = kl_rows[keep].mean()
    rev = (ls.exp() * (ls - lt)).sum(-1)[keep].mean()
    ls1 = F.log_softmax(s2, -1)
    unsoft = (lt.exp() * (lt - ls1)).sum(-1)[keep].mean()
    mix = lambda soft, a=alpha: a * soft + (1 - a) * hard  # noqa: E731
    return [
        (mix(kl), "leaves out the T**2 factor: multiply the KL term by T ** 2, which keeps its "
                  "gradients on the scale of the hard term's as T changes"),
        (mix(kl * T), "multiplies the KL term by T; the factor is T ** 2"),
        (mix(kl * T * T, 1 - alpha), "swaps the weights: alpha weights the soft (teacher) term, "
                                     "1 - alpha the hard-label cross-entropy"),
        (mix(rev * T * T), "computes KL(student || teacher); the soft targets are the teacher's: "
                           "sum p_teacher * (log p_teacher - log p_student)"),
        (mix(unsoft * T * T), "softens only the teacher; divide the student's logits by T too "
                              "before its log_softmax"),
        (mix(kl * T * T / V), "averages the KL over the vocabulary; sum it over the vocabulary "
                              "and average over the positions (F.kl_div's reduction='mean' does "
                              "the wrong thing here)"),
        (mix(kl_rows.mean() * T * T), "averages the soft term over every position, those whose "
                                      "target is -1 too; leave those positions out of both terms"),
    ]


@check("distillation_loss")
@needs_earlier(soften=1)
def check_distillation_loss(loss_fn: Callable[..., Any]) -> None:
    """Exercise 2: alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * cross-entropy."""
    s, t = _logits(2, 5, 7, seed=1), _logits(2, 5, 7, seed=2)
    y = torch.randint(0, 7, (2, 5), generator=torch.Generator().manual_seed(3))
    y[0, 1] = y[1, 4] = -1
    T, alpha = 3.0, 0.3
    shown = ("distillation_loss(student (2, 5, 7), teacher (2, 5, 7), targets (2, 5) with two -1, "
             f"T={T}, alpha={alpha})")
    try:
        out = call(loss_fn, s.clone(), t.clone(), y.clone(), T, alpha, shown=shown)
    except CheckFailed as e:
        if "out of bounds" in str(e) or "-1" in str(e):
            raise CheckFailed(f"{e}; targets of -1 mark positions to ignore: pass ignore_index=-1 "
                              "to F.cross_entropy and leave them out of the KL term") from None
        raise
    got = _number(out, "distillation_loss(...)")
    want = distillation_loss(s, t, y, T, alpha).item()
    if _close(got, want):
        s_req = s.clone().requires_grad_(True)
        out = call(loss_fn, s_req, t.clone(), y.clone(), T, alpha, shown=shown)
        if not isinstance(out, torch.Tensor) or not out.requires_grad:
            raise CheckFailed("the loss has no gradient: keep it a tensor built from the student's "
                              "logits (no .item(), no torch.no_grad() around the student)")
        return
    for value, hint in _wrong_answers(s, t, y, T, alpha):
        if _close(got, float(value)):
            raise CheckFailed(f"{shown} returned {got:.4f}: it {hint}")
    raise CheckFailed(f"{shown} returned {got:.4f} but should return {want:.4f}")


@check("gap_closed")
def check_gap_closed(gap_fn: Callable[[float, float, float], Any]) -> None:
    """Exercise 3: (student - distilled) / (student - teacher), a fraction."""
    teacher, student, distilled = 1.9, 2.7, 2.5
    shown = f"gap_closed(teacher_loss={teacher}, student_loss={student}, distilled_loss={distilled})"
    got = _number(call(gap_fn, teacher, student, distilled, shown=shown), shown)
    want = gap_closed(teacher, student, distilled)
    if _close(got, want):
        return
    if _close(got, 100 * want):
        raise CheckFailed(f"{shown} returned {got:.4f}, a percentage; return the fraction (0.25, not 25)")
    if _close(got, 1 - want):
        raise CheckFailed(f"{shown} returned {got:.4f}, the share still open; return the share "
                          "closed: (student_loss - distilled_loss) / (student_loss - teacher_loss)")
    if want and _close(got, 1 / want):
        raise CheckFailed(f"{shown} returned {got:.4f}: the fraction is upside down; divide by the "
                          "whole gap, student_loss - teacher_loss")
    if _close(got, (student - distilled) / student):
        raise CheckFailed(f"{shown} returned {got:.4f}: it divides by the student's loss; divide by "
                          "the gap, student_loss - teacher_loss")
    raise CheckFailed(f"{shown} returned {got:.4f} but should return {want:.4f}")
