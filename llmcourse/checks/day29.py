"""Checks for day 29, "Watching training", and the reference versions the lesson runs on.

Each ``check_*`` function compares the learner's code with the reference on a small seeded
battery (weights of several shapes and dtypes, with a mean, a tiny step and no step at all;
GELU inputs of 2, 3 and 4 dimensions in float32 and bfloat16, carrying gradients as a forward
hook sees them, entries exactly at the threshold, non-default thresholds; run summaries exactly
at the thresholds, with extra keys in another order), prints one line - a pass, the
hint of a known mistake from the exercise's table, or "not done yet" - and never raises. The
references (:func:`reference_update_ratio`, :func:`reference_dead_fraction`,
:func:`reference_diagnose`) are what the lesson uses after each exercise.

Example::

    >>> from llmcourse.checks import day29
    >>> ok = day29.check_diagnose(lambda s: day29.reference_diagnose(s))
    ✅ diagnose: passed
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

from llmcourse.checks._core import (Case, CheckFailed, Mistake, as_float, as_pair, check, compare,
                                    kind_of)
from llmcourse.train.monitor import DEAD_BELOW, dead_fraction, update_ratio

__all__ = [
    "check_update_ratio",
    "check_dead_fraction",
    "check_diagnose",
    "reference_update_ratio",
    "reference_dead_fraction",
    "reference_diagnose",
    "DIAGNOSES",
    "UPDATE_RATIO", "DEAD_FRACTION", "DIAGNOSE",
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


# ---- exercise 1: update_ratio -------------------------------------------------------------------


def _log_ratio(num, den, log=math.log10):
    return -math.inf if num == 0.0 else log(num / den)


UPDATE_RATIO = [
    Mistake("no log", lambda b, a: ((a - b).norm() / a.norm()).item(),
            hint="you returned the ratio itself; return its log10 (math.log10 or torch.log10), so "
                 "that 1e-3 reads as -3"),
    Mistake("natural log", lambda b, a: _log_ratio((a - b).norm().item(), a.norm().item(), math.log),
            hint="that is the natural log; use log base 10 (math.log10)"),
    Mistake("upside down", lambda b, a: -_log_ratio((a - b).norm().item(), a.norm().item()),
            hint="the ratio is upside down: divide the update's norm by the weight's norm"),
    Mistake("std, not norm", lambda b, a: _log_ratio((a - b).std().item(), a.std().item()),
            hint="use norms (.norm()), not standard deviations: a weight with a mean gives another "
                 "ratio"),
    Mistake("mean |.|, not norm", lambda b, a: _log_ratio((a - b).abs().mean().item(),
                                                          a.abs().mean().item()),
            hint="use the Euclidean norms (.norm()), not mean absolute values"),
    Mistake("norm before the step", lambda b, a: _log_ratio((a - b).norm().item(), b.norm().item()),
            hint="divide by the norm of the weights AFTER the step (after.norm())"),
    Mistake("squared norms", lambda b, a: _log_ratio(((a - b) ** 2).sum().item(), (a ** 2).sum().item()),
            hint="those are squared norms (sums of squares), which double the log: use the norms "
                 "themselves, .norm() (the square root of the sum of squares)"),
    Mistake("log10(0) raises", lambda b, a: math.log10((a - b).norm().item() / a.norm().item()),
            hint="weights that did not move (a skipped step) have an update of norm 0: return "
                 "-math.inf then instead of taking log10(0)"),
    Mistake("epsilon", lambda b, a: math.log10((a - b).norm().item() / a.norm().item() + 1e-12),
            hint="for weights that did not move the ratio is 0 and its log10 is -math.inf; adding "
                 "an epsilon gives a finite number instead"),
    Mistake("no reduction", lambda b, a: (a - b) / a, expect="one number"),
]


def _ratio_cases() -> list[Case]:
    g = torch.Generator().manual_seed(29)
    w = torch.randn(7, 5, generator=g) * 0.3 + 0.2         # a mean, so std != norm / sqrt(n)
    v = torch.randn(64, generator=g) * 0.02 + 0.01
    k = torch.randn(4, 3, 2, generator=g, dtype=torch.float64) + 0.5
    big = torch.randn(96, 32, generator=g) * 0.02 - 0.01
    p = torch.nn.Parameter(torch.randn(6, 6, generator=g) + 0.3)
    return [
        Case("update_ratio(before, after) with two (7, 5) tensors", w,
             w + torch.randn(7, 5, generator=g) * 0.05),
        Case("update_ratio(before, after) with (64,) vectors, a step of 1e-3", v,
             v + torch.randn(64, generator=g) * 1e-3),
        Case("update_ratio(before, after) with float64 (4, 3, 2) tensors", k,
             k + torch.randn(4, 3, 2, generator=g, dtype=torch.float64) * 0.3),
        Case("update_ratio(before, after) with a (96, 32) matrix and a tiny step of 1e-6", big,
             big + torch.randn(96, 32, generator=g) * 1e-6),
        Case("update_ratio(before, after) with after an nn.Parameter (6, 6)", p.detach() - 0.01, p),
        Case("update_ratio(w, w): weights that did not move", w, w.clone()),
    ]


def _ratio_read(value: Any, case: Case) -> float:
    if isinstance(value, torch.Tensor):
        value = value.detach()
        if value.numel() != 1:
            raise CheckFailed(f"update_ratio(before, after) should be one number, got "
                              f"{kind_of(value)}; reduce it (norms) and return a float")
    return as_float(value, "update_ratio(before, after)")


@check("update_ratio", mistakes=UPDATE_RATIO)
def check_update_ratio(update_ratio: Callable[..., Any]) -> None:
    """Exercise 1: log10 of the step's norm over the weights' norm, after the step; -inf for none."""
    compare(update_ratio, reference_update_ratio, _ratio_cases(),
            name="update_ratio(before, after)", mistakes=UPDATE_RATIO, read=_ratio_read,
            atol=1e-4, rtol=1e-5)


# ---- exercise 2: dead_fraction --------------------------------------------------------------


def _fractions(below):
    return below.float().mean().item(), below.all(dim=0).float().mean().item()


def _at_or_below(pre, threshold=-3.0):
    return _fractions(pre.detach().reshape(-1, pre.shape[-1]) <= threshold)


def _any_row(pre, threshold=-3.0):
    below = pre.detach().reshape(-1, pre.shape[-1]) < threshold
    return below.float().mean().item(), below.any(dim=0).float().mean().item()


def _no_reshape(pre, threshold=-3.0):        # .all over the first dimension only
    below = pre.detach() < threshold
    return below.float().mean().item(), below.all(dim=0).float().mean().item()


def _units_axis(pre, threshold=-3.0):        # .all over the units instead of the rows
    below = pre.detach().reshape(-1, pre.shape[-1]) < threshold
    return below.float().mean().item(), below.all(dim=-1).float().mean().item()


def _fixed_threshold(pre, threshold=-3.0):
    return _fractions(pre.detach().reshape(-1, pre.shape[-1]) < -3.0)


def _numpy(pre, threshold=-3.0):             # pre.numpy() on a tensor that carries gradients
    below = pre.numpy().reshape(-1, pre.shape[-1]) < threshold
    return float(below.mean()), float(below.all(axis=0).mean())


def _mean_below(pre, threshold=-3.0):       # a unit's MEAN below the threshold, not every row
    rows = pre.detach().reshape(-1, pre.shape[-1])            # (rows, H)
    return ((rows < threshold).float().mean().item(),
            (rows.mean(dim=0) < threshold).float().mean().item())


def _output_zero(pre, threshold=-3.0):       # GELU's output 0 instead of its input below -3
    dead = torch.nn.functional.gelu(pre.detach().float()).reshape(-1, pre.shape[-1]) == 0
    return _fractions(dead)


def _over_tokens_only(pre, threshold=-3.0):  # .all(dim=-2) on (B, T, H): per batch row
    below = pre.detach() < threshold
    return below.float().mean().item(), below.all(dim=-2).float().mean().item()


def _low_precision_mean(pre, threshold=-3.0):  # the flags cast to pre's dtype (bfloat16) to average
    below = pre.detach().reshape(-1, pre.shape[-1]) < threshold
    return below.to(pre.dtype).mean().item(), below.all(dim=0).to(pre.dtype).mean().item()


DEAD_FRACTION = [
    Mistake("at the threshold counts", _at_or_below, hint="an entry equal to the threshold counted "
            "as dead; dead means strictly below it (pre < threshold)"),
    Mistake("some rows", _any_row, hint="dead_units counted units below the threshold in SOME rows; "
            "a dead unit is below it in EVERY row (.all over the rows)"),
    Mistake("no reshape", _no_reshape, hint="dead_units looked only along the first dimension: "
            "flatten every dimension but the last (pre.reshape(-1, H)) before asking which units "
            "are below in every row"),
    Mistake("mean below", _mean_below, hint="a unit is dead when EVERY row is below the threshold "
            "(.all(dim=0)), not when its mean is"),
    Mistake("units axis", _units_axis, hint="the units are the LAST dimension: ask, for each unit, "
            "whether all its rows are below (.all(dim=0) of pre.reshape(-1, H)), not whether a row's "
            "units all are"),
    Mistake("fixed threshold", _fixed_threshold, hint="dead_fraction ignored its threshold argument: "
            "compare with threshold, not with a fixed -3"),
    Mistake(".numpy() on a grad tensor", _numpy, hint="pre comes from the model's forward pass and "
            "may carry gradients (and be bfloat16): stay in torch, or call pre.detach() first"),
    Mistake("GELU output zero", _output_zero, hint="count the GELU INPUTS below the threshold "
            "(pre < threshold), not outputs equal to 0"),
    Mistake("swapped", lambda pre, threshold=-3.0: _fractions(
        pre.detach().reshape(-1, pre.shape[-1]) < threshold)[::-1],
            hint="dead_frac and dead_units are swapped: return (dead_frac, dead_units)"),
    Mistake("count of units", lambda pre, threshold=-3.0: (
        _fractions(pre.detach().reshape(-1, pre.shape[-1]) < threshold)[0],
        (pre.detach().reshape(-1, pre.shape[-1]) < threshold).all(dim=0).sum().item()),
            hint="dead_units counted the dead units; return their share of the H units (.float()"
                 ".mean() of the per-unit flags)"),
    Mistake("all over dim -2 only", _over_tokens_only, hint="dead_units asked only along the "
            "token dimension (dim=-2), per batch row: flatten every dimension but the last "
            "(pre.reshape(-1, H)) and ask .all(dim=0) over all the rows"),
    Mistake("bfloat16 mean", _low_precision_mean, hint="the shares were averaged in pre's own "
            "dtype (bfloat16 rounds them): turn the flags into float32 (.float()) before .mean()"),
    Mistake("one number", lambda pre, threshold=-3.0: (pre < threshold).float().mean().item(),
            expect="should return a pair (dead_frac, dead_units)"),
]


def _dead_cases() -> list[Case]:
    g = torch.Generator().manual_seed(292)
    pre = torch.full((2, 3, 5), 1.0)  # (B, T, H): H = 5 units, B * T = 6 rows
    pre[:, :, 0] = -4.0               # unit 0 dead everywhere
    pre[0, :, 1] = -4.0               # unit 1 dead in batch row 0 only
    pre[:, 0, 2] = -3.0               # exactly at the threshold: not below it
    pre[1, 2, 3] = -7.0               # one entry of unit 3
    flat = torch.randn(40, 7, generator=g) * 2 - 2
    flat[:, 4] = -2.0                 # exactly at a non-default threshold
    flat[:, 6] = -2.5
    hook = (torch.randn(3, 4, 6, generator=g) * 3 - 3).requires_grad_(True)
    hook.data[:, :, 2] = -5.0
    half = (torch.randn(2, 2, 5, 3, generator=g) * 2 - 4).to(torch.bfloat16)
    half[..., 1] = -3.0
    return [
        Case("dead_fraction(pre of shape (2, 3, 5), entries at -3)", pre),
        Case("dead_fraction(pre of shape (40, 7), threshold=-2.0)", flat, threshold=-2.0),
        Case("dead_fraction(pre (3, 4, 6) that requires grad, -1.5)", hook, -1.5),
        Case("dead_fraction(bfloat16 pre of shape (2, 2, 5, 3), entries at -3)", half),
        Case("dead_fraction(pre of shape (8, 1)): one unit", torch.full((8, 1), -3.5)),
    ]


@check("dead_fraction", mistakes=DEAD_FRACTION)
def check_dead_fraction(dead_fraction: Callable[..., Any]) -> None:
    """Exercise 2: share of GELU inputs below the threshold, and of units dead in every row."""
    def read(value: Any, case: Case) -> tuple[float, float]:
        frac, units = as_pair(value, "dead_fraction(pre)", ("dead_frac", "dead_units"))
        if isinstance(units, torch.Tensor) and units.numel() != 1:
            raise CheckFailed(f"dead_units should be one number, got a tensor of shape "
                              f"{tuple(units.shape)}: take the mean over the units")
        return as_float(frac, "dead_frac"), as_float(units, "dead_units")

    compare(dead_fraction, reference_dead_fraction, _dead_cases(), name="dead_fraction(pre)",
            mistakes=DEAD_FRACTION, read=read, atol=1e-6, rtol=1e-6)


# ---- exercise 3: diagnose -------------------------------------------------------------------


def _lr_first(s):
    if s["dead_end"] > 0.2:
        return "lr_too_high"
    return reference_diagnose(s)


def _dead_after_lr(s):
    if reference_diagnose(s) == "overfitting":
        return "overfitting"
    if s["dead_end"] > 0.2:
        return "lr_too_high"
    return reference_diagnose(s)


def _gap_only(s):
    if s["final_val"] - s["final_train"] > 0.5:
        return "overfitting"
    return reference_diagnose(s)


def _rise_only(s):
    if s["final_val"] > s["best_val"] + 0.1:
        return "overfitting"
    return reference_diagnose(s)


def _non_strict_dead(s):
    if reference_diagnose(s) == "overfitting":
        return "overfitting"
    if s["dead_start"] >= 0.5:
        return "dead_units"
    if s["dead_end"] >= 0.2:
        return "lr_too_high"
    return "healthy"


def _non_strict_overfit(s):
    if s["final_val"] >= s["best_val"] + 0.1 and s["final_val"] - s["final_train"] >= 0.5:
        return "overfitting"
    return reference_diagnose(s)


def _by_position(s):                         # reads the values in the lesson's key order
    final_train, final_val, best_val, dead_start, dead_end = list(s.values())[:5]
    return reference_diagnose(dict(final_train=final_train, final_val=final_val, best_val=best_val,
                                   dead_start=dead_start, dead_end=dead_end))


def _dead_first(s):                          # dead_units tested before overfitting
    if s["dead_start"] > 0.5:
        return "dead_units"
    return reference_diagnose(s)



def _relative_rise(s):                       # 10% above the best instead of 0.1 above it
    if s["final_val"] > s["best_val"] * 1.1 and s["final_val"] - s["final_train"] > 0.5:
        return "overfitting"
    if s["dead_start"] > 0.5:
        return "dead_units"
    if s["dead_end"] > 0.2:
        return "lr_too_high"
    return "healthy"


def _gap_reversed(summary):  # final_train - final_val: the gap of a real overfit is negative
    if (summary["final_val"] > summary["best_val"] + 0.1
            and summary["final_train"] - summary["final_val"] > 0.5):
        return "overfitting"
    if summary["dead_start"] > 0.5:
        return "dead_units"
    if summary["dead_end"] > 0.2:
        return "lr_too_high"
    return "healthy"

DIAGNOSE = [
    Mistake("dead_units first", _dead_first, hint="the rules go in order: overfitting comes first, "
            "then dead_units (dead_start), then lr_too_high (dead_end)"),
    Mistake("dead_end before dead_start", _dead_after_lr, hint="units dead from the start "
            "(dead_start > 0.5) are dead_units, which comes before lr_too_high in the rules"),
    Mistake("lr rule first", _lr_first, hint="the rules go in order: overfitting comes first, then "
            "dead_units (dead_start), then lr_too_high (dead_end)"),
    Mistake("gap only", _gap_only, hint="overfitting needs BOTH signs: the validation loss more "
            "than 0.1 above its best AND more than 0.5 above the training loss"),
    Mistake(">= for overfitting", _non_strict_overfit, hint="the overfitting rule is strict (> 0.1, "
            "> 0.5): a rise or a gap exactly at them is not yet overfitting"),
    Mistake("rise only", _rise_only, hint="overfitting needs BOTH signs: the validation loss more "
            "than 0.1 above its best AND more than 0.5 above the training loss"),
    Mistake(">= for the dead rules", _non_strict_dead, hint="the thresholds are strict (> 0.5, > "
            "0.2): a share exactly at them is not over it"),
    Mistake("by position", _by_position, hint="read the values by their keys (summary['final_val']), "
            "not by position: a summary may hold other keys, in another order"),
    Mistake("another label", lambda s: "too high" if _lr_first(s) == "lr_too_high" else
            reference_diagnose(s), expect="return one of"),
    Mistake("no return", lambda s: None, expect="as a string"),
    Mistake("relative rise", _relative_rise, hint="the rise is absolute: final_val > best_val + "
            "0.1, not 10% above the best (best_val * 1.1)"),
    Mistake("gap the wrong way", _gap_reversed,
            hint="the gap is final_val - final_train (the validation loss above the training "
                 "loss), not final_train - final_val"),
]


def _summary(train, val, best, start, end):
    return dict(final_train=train, final_val=val, best_val=best, dead_start=start, dead_end=end)


def _diagnose_cases() -> list[Case]:
    rows = [
        (_summary(1.2, 3.5, 2.9, 0.0, 0.05), "a rising val loss with a large gap"),
        (_summary(1.2, 3.1, 2.95, 0.0, 0.0), "val 0.15 above its best (0.1 is an absolute margin)"),
        (_summary(1.1, 3.3, 3.0, 0.7, 0.6), "overfitting while most units were dead from the start"),
        (_summary(1.3, 3.4, 3.2, 0.0, 0.4), "overfitting while units died"),
        (_summary(2.9, 2.95, 2.95, 0.01, 0.45), "45% dead at the end, alive at the start"),
        (_summary(2.6, 2.62, 2.6, 0.9, 0.7), "90% dead from the start and at the end"),
        (_summary(1.2, 2.0, 2.0, 0.0, 0.0), "a gap of 0.8 but the val loss at its best"),
        (_summary(2.2, 2.5, 2.25, 0.0, 0.0), "val 0.25 above its best but only 0.3 above train"),
        (_summary(2.25, 2.75, 2.5, 0.0, 0.0), "a gap of exactly 0.5"),
        (_summary(2.0, 2.1, 2.1, 0.5, 0.2), "dead_start exactly 0.5, dead_end exactly 0.2"),
        (_summary(1.9, 2.0, 1.98, 0.0, 0.01), "a healthy run"),
        (_summary(3.0, 2.4, 2.2, 0.0, 0.0), "val 0.2 above its best but 0.6 BELOW train"),
        (_summary(1.5, 2.1, 1.9, 0.0, 0.0), "val 0.2 above its best and 0.6 above train, its "
                                           "best only 0.4 above train"),
        (_summary(2.6, 2.62, 2.6, 0.8, 0.1), "80% dead from the start, 10% at the end"),
    ]
    cases = [Case(f"diagnose({s}): {why}", s) for s, why in rows]
    shuffled = {"dead_start": 0.1, "final_train": 2.3, "dead_end": 0.3, "best_val": 2.4,
                "final_val": 2.45, "label": "lr 3e-2", "steps": 400}
    cases.append(Case(f"diagnose({shuffled}): other keys, another order", shuffled))
    return cases


def _label(value: Any, case: Case) -> str:
    if not isinstance(value, str):
        raise CheckFailed(f"diagnose should return one of {', '.join(DIAGNOSES)} as a string, got "
                          f"{kind_of(value)}")
    if value not in DIAGNOSES:
        raise CheckFailed(f"diagnose returned {value!r}; return one of "
                          f"{', '.join(repr(d) for d in DIAGNOSES)}")
    return value


@check("diagnose", mistakes=DIAGNOSE)
def check_diagnose(diagnose: Callable[..., Any]) -> None:
    """Exercise 3: the rules of the lesson, in order, on summaries the notebook does not make."""
    compare(diagnose, reference_diagnose, _diagnose_cases(), name="diagnose(summary)",
            mistakes=DIAGNOSE, read=_label)
