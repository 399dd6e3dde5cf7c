"""The day-29 checks pass the lesson's solutions, reject every mistake of their tables, refuse the
course's own references, and say "not done yet" for stubs."""

from __future__ import annotations

import math

import pytest
import torch

from llmcourse.checks import day29
from llmcourse.train import monitor
from checklines import fails, mistake_params, one_line, passes, rejects, stub

pytestmark = pytest.mark.usefixtures("one_thread")


# ---- the lesson's solutions (solutions/day29_watching_training.md) -------------------------------


def update_ratio(before, after):
    delta = (after - before).norm().item()
    if delta == 0.0:
        return -math.inf
    return math.log10(delta / after.norm().item())


def dead_fraction(pre, threshold=-3.0):
    below = pre.reshape(-1, pre.shape[-1]) < threshold     # (rows, H)
    return below.float().mean().item(), below.all(dim=0).float().mean().item()


def diagnose(summary):
    if (summary["final_val"] > summary["best_val"] + 0.1
            and summary["final_val"] - summary["final_train"] > 0.5):
        return "overfitting"
    if summary["dead_start"] > 0.5:
        return "dead_units"
    if summary["dead_end"] > 0.2:
        return "lr_too_high"
    return "healthy"


CHECKS = [
    (day29.check_update_ratio, update_ratio, day29.reference_update_ratio),
    (day29.check_dead_fraction, dead_fraction, day29.reference_dead_fraction),
    (day29.check_diagnose, diagnose, day29.reference_diagnose),
]


@pytest.mark.parametrize("check_fn, mistake", mistake_params(day29))
def test_mistake_rejected(check_fn, mistake, capsys):
    rejects(capsys, check_fn, mistake)


@pytest.mark.parametrize("check_fn, solution, reference", CHECKS)
def test_solution_passes(check_fn, solution, reference, capsys):
    passes(capsys, check_fn, solution)


@pytest.mark.parametrize("check_fn, solution, reference", CHECKS)
def test_reference_is_refused(check_fn, solution, reference, capsys):
    fails(capsys, check_fn, reference, "the course's own reference")


def test_package_monitor_functions_are_refused(capsys):
    fails(capsys, day29.check_update_ratio, monitor.update_ratio, "the course's own reference")
    fails(capsys, day29.check_dead_fraction, monitor.dead_fraction, "the course's own reference")


@pytest.mark.parametrize("check_fn, solution, reference", CHECKS)
def test_stub_is_not_done(check_fn, solution, reference, capsys):
    fails(capsys, check_fn, stub, "not done yet")


@pytest.mark.parametrize("check_fn, solution, reference", CHECKS)
def test_never_raises(check_fn, solution, reference, capsys):
    for odd in (lambda *a: 1 / 0, lambda *a: "small", lambda *a: [1.0, 2.0, 3.0]):
        assert bool(check_fn(odd)) is False
        assert one_line(capsys).startswith("❌")


# ---- other correct answers -------------------------------------------------------------------


def test_update_ratio_variants_pass(capsys):
    passes(capsys, day29.check_update_ratio,
           lambda b, a: torch.log10((a - b).norm() / a.norm()))      # a 0-d tensor, -inf for no step

    def equal_first(before, after):
        if torch.equal(before, after):
            return -math.inf
        return math.log10((torch.linalg.vector_norm(after - before)
                           / torch.linalg.vector_norm(after)).item())
    passes(capsys, day29.check_update_ratio, equal_first)


def test_dead_fraction_variants_pass(capsys):
    def flatten(pre, threshold=-3.0):
        below = (pre.detach().flatten(0, -2) < threshold).float()
        return below.mean().item(), below.min(dim=0).values.mean().item()
    passes(capsys, day29.check_dead_fraction, flatten)
    passes(capsys, day29.check_dead_fraction,
           lambda pre, threshold=-3.0: tuple(torch.tensor(dead_fraction(pre, threshold))))


def test_diagnose_variant_passes(capsys):
    def unpacked(summary):
        tr, va, best = summary["final_train"], summary["final_val"], summary["best_val"]
        overfit = va - best > 0.1 and va - tr > 0.5
        return ("overfitting" if overfit else "dead_units" if summary["dead_start"] > 0.5
                else "lr_too_high" if summary["dead_end"] > 0.2 else "healthy")
    # va - best > 0.1 and va > best + 0.1 differ by rounding at a rise of exactly 0.1, which the
    # check therefore leaves out; its ties (a gap of 0.5, dead shares of 0.5 and 0.2) are exact
    passes(capsys, day29.check_diagnose, unpacked)


# ---- messages --------------------------------------------------------------------------------


def test_generic_mismatch_names_the_case(capsys):
    fails(capsys, day29.check_update_ratio, lambda b, a: -2.0, "two (7, 5) tensors")


def test_dead_units_left_as_a_tensor(capsys):
    def per_unit(pre, threshold=-3.0):
        below = pre.reshape(-1, pre.shape[-1]) < threshold
        return below.float().mean().item(), below.all(dim=0).float()
    fails(capsys, day29.check_dead_fraction, per_unit, "dead_units should be one number")


def test_dead_units_by_the_mean_is_named(capsys):
    # the learner trial's answer: a unit's mean below the threshold, tensors returned
    def mean_below(pre, threshold=-3.0):
        rows = pre.detach().reshape(-1, pre.shape[-1])
        return (rows < threshold).float().mean(), (rows.mean(0) < threshold).float().mean()
    fails(capsys, day29.check_dead_fraction, mean_below,
          "a unit is dead when EVERY row is below the threshold (.all(dim=0)), not when its "
          "mean is")


def test_diagnose_crash_names_the_input(capsys):
    fails(capsys, day29.check_diagnose, lambda s: s["loss"], "raised KeyError")


# ---- hand-worked values ----------------------------------------------------------------------


def test_references_by_hand():
    w = torch.ones(10, 10)
    assert day29.reference_update_ratio(w, w * 1.001) == pytest.approx(-3.0, abs=1e-3)
    assert day29.reference_update_ratio(w, w.clone()) == -math.inf
    pre = torch.tensor([[-4.0, 1.0, -5.0], [-6.0, -4.0, 2.0], [-3.0, -3.5, 0.0]])
    frac, units = day29.reference_dead_fraction(pre)
    assert frac == pytest.approx(5 / 9) and units == pytest.approx(0.0)
    assert day29.reference_dead_fraction(pre, -2.9) == pytest.approx((6 / 9, 1 / 3))
    s = dict(final_train=2.25, final_val=2.75, best_val=2.5, dead_start=0.0, dead_end=0.0)
    assert day29.reference_diagnose(s) == "healthy"       # a gap of exactly 0.5
    assert day29.reference_diagnose(dict(s, final_train=2.0)) == "overfitting"


# ---- second red-team round: wrong rules that only other summaries expose --------------------


def _rules(overfit, dead_units):
    def diagnose(s):
        if overfit(s):
            return "overfitting"
        if dead_units(s):
            return "dead_units"
        return "lr_too_high" if s["dead_end"] > 0.2 else "healthy"
    return diagnose


_RISE = lambda s: s["final_val"] > s["best_val"] + 0.1          # noqa: E731
_DEAD_START = lambda s: s["dead_start"] > 0.5                   # noqa: E731


@pytest.mark.parametrize("wrong, words", [
    (_rules(lambda s: _RISE(s) and abs(s["final_val"] - s["final_train"]) > 0.5, _DEAD_START),
     "0.6 BELOW train"),                                          # abs() of the gap
    (_rules(lambda s: _RISE(s) and s["best_val"] - s["final_train"] > 0.5, _DEAD_START),
     "its best only 0.4 above train"),                            # the gap taken from best_val
    (_rules(lambda s: _RISE(s) and s["final_val"] - s["final_train"] > 0.5,
            lambda s: s["dead_start"] > 0.5 and s["dead_end"] > 0.5),
     "80% dead from the start, 10% at the end"),                  # dead at the end too
])
def test_diagnose_rules_exposed_by_other_summaries(wrong, words, capsys):
    fails(capsys, day29.check_diagnose, wrong, words)


def test_more_correct_variants_pass(capsys):
    def dead_numpy(pre, threshold=-3.0):
        a = pre.detach().float().numpy()
        a = a.reshape(-1, a.shape[-1]) < threshold
        return float(a.mean()), float(a.all(axis=0).mean())
    passes(capsys, day29.check_dead_fraction, dead_numpy)

    def diagnose_table(s):
        rules = [("overfitting", s["final_val"] > s["best_val"] + 0.1
                  and s["final_val"] - s["final_train"] > 0.5),
                 ("dead_units", s["dead_start"] > 0.5), ("lr_too_high", s["dead_end"] > 0.2)]
        return next((name for name, holds in rules if holds), "healthy")
    passes(capsys, day29.check_diagnose, diagnose_table)
