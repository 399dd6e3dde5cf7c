"""The day-30 checks pass the lesson's solutions, reject every mistake of their tables, refuse the
course's own references, and say "not done yet" for stubs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llmcourse import scaling
from llmcourse.checks import day30
from checklines import fails, mistake_params, one_line, passes, rejects, stub


# ---- the lesson's solutions (solutions/day30_scaling_at_small_scale.md) ---------------------------


def tokens_for_budget(flops, n_params):
    return flops / (6 * n_params)


def compute_optimal(flops, tokens_per_param=20):
    n = math.sqrt(flops / (6 * tokens_per_param))
    return n, tokens_per_param * n


def fit_power_law(x, y):
    slope, intercept = np.polyfit(np.log(x), np.log(y), 1)
    return math.exp(intercept), slope


CHECKS = [
    (day30.check_tokens_for_budget, tokens_for_budget, scaling.tokens_for_budget),
    (day30.check_compute_optimal, compute_optimal, scaling.compute_optimal),
    (day30.check_fit_power_law, fit_power_law, day30.reference_fit_power_law),
]


@pytest.mark.parametrize("check_fn, mistake", mistake_params(day30))
def test_mistake_rejected(check_fn, mistake, capsys):
    rejects(capsys, check_fn, mistake)


@pytest.mark.parametrize("check_fn, solution, reference", CHECKS)
def test_solution_passes(check_fn, solution, reference, capsys):
    passes(capsys, check_fn, solution)


@pytest.mark.parametrize("check_fn, solution, reference", CHECKS)
def test_reference_is_refused(check_fn, solution, reference, capsys):
    fails(capsys, check_fn, reference, "the course's own reference")


def test_package_fit_is_refused(capsys):
    fails(capsys, day30.check_fit_power_law, scaling.fit_power_law, "the course's own reference")


@pytest.mark.parametrize("check_fn, solution, reference", CHECKS)
def test_stub_is_not_done(check_fn, solution, reference, capsys):
    fails(capsys, check_fn, stub, "not done yet")


@pytest.mark.parametrize("check_fn, solution, reference", CHECKS)
def test_never_raises(check_fn, solution, reference, capsys):
    for odd in (lambda *a, **k: 1 / 0, lambda *a, **k: "x", lambda *a, **k: [1.0, 2.0, 3.0]):
        assert bool(check_fn(odd)) is False
        assert one_line(capsys).startswith("❌")


# ---- other correct answers -------------------------------------------------------------------


def test_other_correct_answers_pass(capsys):
    passes(capsys, day30.check_compute_optimal,
           lambda c, tokens_per_param=20: ((c / (6 * tokens_per_param)) ** 0.5,
                                           tokens_per_param * (c / (6 * tokens_per_param)) ** 0.5))
    passes(capsys, day30.check_tokens_for_budget, lambda flops, n_params: flops / 6 / n_params)

    def by_hand(x, y):                       # least squares written out, in log10
        lx, ly = np.log10(np.asarray(x, float)), np.log10(np.asarray(y, float))
        b = ((lx - lx.mean()) * (ly - ly.mean())).sum() / ((lx - lx.mean()) ** 2).sum()
        return 10 ** (ly.mean() - b * lx.mean()), b
    passes(capsys, day30.check_fit_power_law, by_hand)


# ---- messages --------------------------------------------------------------------------------


def test_generic_mismatch_names_the_case(capsys):
    fails(capsys, day30.check_tokens_for_budget, lambda c, n: c / (6 * n) + 1000,
          "tokens_for_budget(7.2e13, 3e5)")


# ---- hand-worked values ----------------------------------------------------------------------


def test_references_by_hand():
    assert scaling.tokens_for_budget(1.2e14, 1e6) == pytest.approx(2e7)
    n, d = scaling.compute_optimal(1.2e14)
    assert n == pytest.approx(1e6) and d == pytest.approx(2e7)
    a, b = day30.reference_fit_power_law([10, 100, 1000], [5.0, 2.5, 1.25])
    assert a == pytest.approx(10.0) and b == pytest.approx(-math.log10(2))
    a, b = day30.reference_fit_power_law([3.0, 30.0], [0.5 * 3 ** 0.75, 0.5 * 30 ** 0.75])
    assert a == pytest.approx(0.5) and b == pytest.approx(0.75)


def test_second_round_correct_variants_pass(capsys):
    passes(capsys, day30.check_compute_optimal, lambda flops, tokens_per_param=20: [
        (flops / (6 * tokens_per_param)) ** 0.5, (flops * tokens_per_param / 6) ** 0.5])

    def fit_lstsq(x, y):                     # least squares by numpy's lstsq, natural logs
        lx, ly = np.log(np.asarray(x, dtype=float)), np.log(np.asarray(y, dtype=float))
        (slope, intercept), *_ = np.linalg.lstsq(np.stack([lx, np.ones_like(lx)], 1), ly, rcond=None)
        return math.exp(intercept), slope
    passes(capsys, day30.check_fit_power_law, fit_lstsq)
