"""The day-29 checks pass the solutions, catch plausible mistakes, and say "not done yet" for stubs."""

from __future__ import annotations

import math

import pytest
import torch

from llmcourse.checks import day29
from checklines import fails, one_line, stub

pytestmark = pytest.mark.usefixtures("one_thread")


# ---- exercise 1: update_ratio ----------------------------------------------------------------


def good_update_ratio(before, after):
    if torch.equal(before, after):
        return -math.inf
    return math.log10((after - before).norm().item() / after.norm().item())


def test_update_ratio_passes_and_stub(capsys):
    assert bool(day29.check_update_ratio(good_update_ratio)) is True
    assert "passed" in one_line(capsys)
    assert bool(day29.check_update_ratio(day29.reference_update_ratio)) is True
    assert "passed" in one_line(capsys)
    assert bool(day29.check_update_ratio(lambda b, a: torch.log10((a - b).norm() / a.norm())))
    assert "passed" in one_line(capsys)  # a 0-d tensor is accepted
    fails(capsys, day29.check_update_ratio, stub, "not done yet")


@pytest.mark.parametrize("wrong, words", [
    (lambda b, a: ((a - b).norm() / a.norm()).item(), "its log10"),
    (lambda b, a: math.log((a - b).norm() / a.norm()), "natural log"),
    (lambda b, a: math.log10(a.norm() / (a - b).norm()), "upside down"),
    (lambda b, a: math.log10((a - b).std() / a.std()), "norms"),
    (lambda b, a: math.log10((a - b).norm() / b.norm()), "AFTER the step"),
    (lambda b, a: math.log10((a - b).abs().mean() / a.abs().mean()), "should be"),
    (lambda b, a: (a - b) / a, "one number"),
    (lambda b, a: "small", "a number"),
    (lambda b, a: math.log10((a - b).norm() / a.norm() + 1e-12), "-inf"),
    (lambda b, a: 1 / 0, "raised ZeroDivisionError"),
    (lambda b, a: math.log10((a - b).norm() / a.norm()), "return -math.inf"),
])
def test_update_ratio_mistakes(capsys, wrong, words):
    fails(capsys, day29.check_update_ratio, wrong, words)


# ---- exercise 2: dead_fraction ---------------------------------------------------------------


def good_dead_fraction(pre, threshold=-3.0):
    below = pre.reshape(-1, pre.shape[-1]) < threshold
    return below.float().mean().item(), below.all(dim=0).float().mean().item()


def test_dead_fraction_passes_and_stub(capsys):
    for fn in (good_dead_fraction, day29.reference_dead_fraction):
        assert bool(day29.check_dead_fraction(fn)) is True
        assert "passed" in one_line(capsys)
    fails(capsys, day29.check_dead_fraction, stub, "not done yet")


def at_or_below(pre, threshold=-3.0):
    below = pre.reshape(-1, pre.shape[-1]) <= threshold
    return below.float().mean().item(), below.all(dim=0).float().mean().item()


def any_row(pre, threshold=-3.0):
    below = pre.reshape(-1, pre.shape[-1]) < threshold
    return below.float().mean().item(), below.any(dim=0).float().mean().item()


def no_reshape(pre, threshold=-3.0):
    below = pre < threshold
    return below.float().mean(), below.all(dim=0).float()


def fixed_threshold(pre, threshold=-3.0):
    return good_dead_fraction(pre, -3.0)


def output_zero(pre, threshold=-3.0):
    dead = torch.nn.functional.gelu(pre).reshape(-1, pre.shape[-1]) == 0
    return dead.float().mean().item(), dead.all(dim=0).float().mean().item()


@pytest.mark.parametrize("wrong, words", [
    (at_or_below, "strictly below"),
    (any_row, "EVERY row"),
    (no_reshape, "reshape(-1, H)"),
    (fixed_threshold, "ignored its threshold"),
    (output_zero, "dead_frac should be"),
    (lambda pre, threshold=-3.0: (pre < threshold).float().mean().item(), "a pair"),
])
def test_dead_fraction_mistakes(capsys, wrong, words):
    fails(capsys, day29.check_dead_fraction, wrong, words)


# ---- exercise 3: diagnose --------------------------------------------------------------------


def test_diagnose_passes_and_stub(capsys):
    assert bool(day29.check_diagnose(day29.reference_diagnose)) is True
    assert "passed" in one_line(capsys)
    fails(capsys, day29.check_diagnose, stub, "not done yet")


def lr_first(s):
    if s["dead_end"] > 0.2:
        return "lr_too_high"
    return day29.reference_diagnose(s)


def gap_only(s):
    if s["final_val"] - s["final_train"] > 0.5:
        return "overfitting"
    return day29.reference_diagnose(s)


def non_strict(s):
    if day29.reference_diagnose(s) == "overfitting":
        return "overfitting"
    if s["dead_start"] >= 0.5:
        return "dead_units"
    if s["dead_end"] >= 0.2:
        return "lr_too_high"
    return "healthy"


def dead_before_lr(s):
    if day29.reference_diagnose(s) == "overfitting":
        return "overfitting"
    if s["dead_end"] > 0.2:
        return "lr_too_high"
    return day29.reference_diagnose(s)


@pytest.mark.parametrize("wrong, words", [
    (lambda s: "healthy", "overfitting"),
    (lr_first, "overfitting comes first"),
    (dead_before_lr, "comes before lr_too_high"),
    (gap_only, "not yet overfitting"),
    (non_strict, "strict"),
    (lambda s: "too high", "return one of"),
    (lambda s: None, "as a string"),
    (lambda s: s["loss"], "raised KeyError"),
])
def test_diagnose_mistakes(capsys, wrong, words):
    fails(capsys, day29.check_diagnose, wrong, words)
