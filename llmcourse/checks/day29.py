"""Checks for day 29, "Watching training", and the reference versions the lesson runs on.

Each ``check_*`` function runs the learner's code on cases of its own (sizes unlike the
notebook's), prints one line - a pass, a specific hint, or "not done yet" - and never raises.
The references (:func:`reference_update_ratio`, :func:`reference_dead_fraction`,
:func:`reference_diagnose`) are what the lesson uses after each exercise.

Example::

    >>> from llmcourse.checks import day29
    >>> ok = day29.check_diagnose(day29.reference_diagnose)
    ✅ diagnose: passed
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

from llmcourse.checks._core import CheckFailed, call, check, kind_of, needs_earlier
from llmcourse.train.monitor import DEAD_BELOW, dead_fraction, update_ratio

__all__ = [
    "check_update_ratio",
    "check_dead_fraction",
    "check_diagnose",
    "reference_update_ratio",
    "reference_dead_fraction",
    "reference_diagnose",
    "DIAGNOSES",
]

#: The answers ``diagnose`` may give.
DIAGNOSES = ("overfitting", "lr_too_high", "dead_units", "healthy")


# ---- reference implementations -------------------------------------------------------------


def reference_update_ratio(before: torch.Tensor, after: torch.Tensor) -> float:
    """``log10(||after - before|| / ||after||)`` (see :func:`llmcourse.train.monitor.update_ratio`)."""
    return update_ratio(before, after)


def reference_dead_fraction(pre: torch.Tensor, threshold: float = DEAD_BELOW) -> tuple[float, float]:
    """``(share of entries < threshold, share of units below it in every row)``."""
    return dead_fraction(pre, threshold)


def reference_diagnose(summary: dict[str, float]) -> str:
    """The lesson's rules, in order: overfitting, dead units from the start, units that died
    during training (too high a learning rate), else healthy."""
    if (summary["final_val"] > summary["best_val"] + 0.1
            and summary["final_val"] - summary["final_train"] > 0.5):
        return "overfitting"
    if summary["dead_start"] > 0.5:
        return "dead_units"
    if summary["dead_end"] > 0.2:
        return "lr_too_high"
    return "healthy"


# ---- reading a returned number -----------------------------------------------------------------


def _number(value: Any, name: str) -> float:
    """A Python number or a one-element tensor, as a float; a hint otherwise."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise CheckFailed(f"{name} should be one number, got {kind_of(value)}; "
                              "reduce it (e.g. .mean()) and return .item()")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CheckFailed(f"{name} should be a number (a float), got {kind_of(value)}")
    return float(value)


# ---- exercise 1: update_ratio -------------------------------------------------------------------


@check("update_ratio")
def check_update_ratio(update_ratio: Callable[..., Any]) -> None:
    """Exercise 1: log10 of the step's norm over the weights' norm, after the step."""
    g = torch.Generator().manual_seed(29)
    before = torch.randn(7, 5, generator=g) * 0.3 + 0.2   # a mean, so std != norm / sqrt(n)
    after = before + torch.randn(7, 5, generator=g) * 0.05
    shown = "update_ratio(before, after) with two (7, 5) tensors"
    got = _number(call(update_ratio, before, after, shown=shown), "update_ratio(before, after)")
    delta, w_after, w_before = (after - before).norm(), after.norm(), before.norm()
    want = math.log10(delta / w_after)
    if not math.isfinite(got):
        raise CheckFailed(f"update_ratio returned {got}; the step here is not zero")
    if abs(got - delta.item() / w_after.item()) < 1e-4:
        raise CheckFailed("you returned the ratio itself; return its log10 (math.log10 or "
                          "torch.log10), so that 1e-3 reads as -3")
    if abs(got - math.log(delta / w_after)) < 1e-4:
        raise CheckFailed("that is the natural log; use log base 10 (math.log10)")
    if abs(got + want) < 1e-4:
        raise CheckFailed("the ratio is upside down: divide the update's norm by the weight's norm")
    if abs(got - math.log10((after - before).std() / after.std())) < 1e-4:
        raise CheckFailed("use norms (.norm()), not standard deviations: a weight with a mean "
                          "gives another ratio")
    if abs(got - math.log10(delta / w_before)) < 1e-4 and abs(want - got) > 1e-4:
        raise CheckFailed("divide by the norm of the weights AFTER the step (after.norm())")
    if abs(got - want) > 1e-4:
        raise CheckFailed(f"update_ratio(before, after) should be {want:.4f}, got {got:.4f}: "
                          "log10(||after - before|| / ||after||)")
    try:
        same = _number(call(update_ratio, after, after.clone(), shown="update_ratio(w, w)"),
                       "update_ratio(w, w)")
    except CheckFailed as exc:
        if "raised" not in str(exc):
            raise
        raise CheckFailed(f"{exc}; weights that did not move (a skipped step) have an update "
                          "of norm 0: return -math.inf then instead of taking log10(0)") from None
    if same != -math.inf:
        raise CheckFailed(f"for weights that did not move the ratio is 0 and its log10 is -inf, "
                          f"got {same}")


# ---- exercise 2: dead_fraction --------------------------------------------------------------


@check("dead_fraction")
def check_dead_fraction(dead_fraction: Callable[..., Any]) -> None:
    """Exercise 2: share of GELU inputs below the threshold, and of units dead in every row."""
    pre = torch.full((2, 3, 5), 1.0)  # (B, T, H): H = 5 units, B * T = 6 rows
    pre[:, :, 0] = -4.0               # unit 0 dead everywhere
    pre[0, :, 1] = -4.0               # unit 1 dead in batch row 0 only
    pre[:, 0, 2] = -3.0               # exactly at the threshold: not below it
    pre[1, 2, 3] = -7.0               # one entry of unit 3
    shown = "dead_fraction(pre) with pre of shape (2, 3, 5)"
    out = call(dead_fraction, pre, shown=shown)
    if not isinstance(out, tuple) or len(out) != 2:
        raise CheckFailed(f"dead_fraction should return a pair (dead_frac, dead_units), got "
                          f"{kind_of(out)}")
    if isinstance(out[1], torch.Tensor) and out[1].numel() != 1:
        raise CheckFailed(f"dead_units should be one number, got a tensor of shape "
                          f"{tuple(out[1].shape)}: flatten every dimension but the last "
                          "(pre.reshape(-1, H)) before asking which units are below in every row")
    frac, units = _number(out[0], "dead_frac"), _number(out[1], "dead_units")
    want_frac, want_units = (6 + 3 + 1) / 30, 1 / 5
    if abs(frac - (6 + 3 + 2 + 1) / 30) < 1e-6:
        raise CheckFailed("an entry equal to the threshold counted as dead; dead means strictly "
                          "below it (pre < threshold)")
    if abs(units - 2 / 5) < 1e-6 or abs(units - 3 / 5) < 1e-6:
        raise CheckFailed("dead_units counted units below the threshold in SOME rows; a dead "
                          "unit is below it in EVERY row (.all over the rows)")
    if abs(frac - want_frac) > 1e-6:
        raise CheckFailed(f"dead_frac should be {want_frac:.4f} (10 of 30 entries), got {frac:.4f}")
    if abs(units - want_units) > 1e-6:
        raise CheckFailed(f"dead_units should be {want_units:.4f} (1 of 5 units), got {units:.4f}")
    out = call(dead_fraction, pre, -2.0, shown="dead_fraction(pre, -2.0)")
    if not isinstance(out, tuple) or len(out) != 2:
        raise CheckFailed("dead_fraction(pre, threshold) should return a pair as well")
    frac2 = _number(out[0], "dead_frac")
    if abs(frac2 - (6 + 3 + 2 + 1) / 30) > 1e-6:
        raise CheckFailed("dead_fraction(pre, -2.0) ignored its threshold argument: compare with "
                          "threshold, not with a fixed -3")


# ---- exercise 3: diagnose -------------------------------------------------------------------

_CASES = [
    # (summary, answer, hint when missed)
    (dict(final_train=1.9, final_val=2.0, best_val=1.98, dead_start=0.0, dead_end=0.01),
     "healthy", "a small gap, the best loss at the end and almost no dead GELU inputs: healthy"),
    (dict(final_train=1.2, final_val=3.5, best_val=2.9, dead_start=0.0, dead_end=0.05),
     "overfitting", "the validation loss rose 0.6 above its best while the training loss is "
                    "2.3 below it: overfitting"),
    (dict(final_train=1.3, final_val=3.4, best_val=3.2, dead_start=0.0, dead_end=0.4),
     "overfitting", "overfitting comes first in the rules: a rising validation loss with a large "
                    "gap is overfitting even when units also died"),
    (dict(final_train=2.9, final_val=2.95, best_val=2.95, dead_start=0.01, dead_end=0.45),
     "lr_too_high", "units alive at the start (dead_start 0.01) of which 45% died during "
                    "training: the steps were too large, lr_too_high"),
    (dict(final_train=2.6, final_val=2.62, best_val=2.6, dead_start=0.9, dead_end=0.7),
     "dead_units", "90% of the GELU inputs were below -3 from the first step: dead_units (the "
                   "initialisation), which comes before lr_too_high in the rules"),
    (dict(final_train=2.0, final_val=2.1, best_val=2.1, dead_start=0.5, dead_end=0.2),
     "healthy", "the thresholds are strict (> 0.5, > 0.2): exactly at them is still healthy"),
    (dict(final_train=2.0, final_val=2.6, best_val=2.5, dead_start=0.0, dead_end=0.05),
     "healthy", "a rise of exactly 0.1 over the best is not yet overfitting (the rule is > 0.1)"),
]


@check("diagnose")
def check_diagnose(diagnose: Callable[..., Any]) -> None:
    """Exercise 3: the rules of the lesson on summaries of runs the notebook does not make."""
    for summary, want, hint in _CASES:
        got = call(diagnose, dict(summary), shown=f"diagnose({summary})")
        if not isinstance(got, str):
            raise CheckFailed(f"diagnose should return one of {', '.join(DIAGNOSES)} as a "
                              f"string, got {kind_of(got)}")
        if got not in DIAGNOSES:
            raise CheckFailed(f"diagnose returned {got!r}; return one of "
                              f"{', '.join(repr(d) for d in DIAGNOSES)}")
        if got != want:
            raise CheckFailed(f"diagnose({summary}) gave {got!r}, expected {want!r}: {hint}")
