"""The day-30 checks pass the solutions, catch plausible mistakes, and say "not done yet" for stubs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llmcourse import scaling
from llmcourse.checks import day30
from checklines import one_line, stub


def _polyfit(x, y):
    slope, intercept = np.polyfit(np.log(x), np.log(y), 1)
    return math.exp(intercept), slope


@pytest.mark.parametrize("check, solution", [
    (day30.check_tokens_for_budget, scaling.tokens_for_budget),
    (day30.check_tokens_for_budget, lambda c, n: c / (6 * n)),
    (day30.check_compute_optimal, scaling.compute_optimal),
    (day30.check_compute_optimal,
     lambda c, tokens_per_param=20: ((c / (6 * tokens_per_param)) ** 0.5,
                                     tokens_per_param * (c / (6 * tokens_per_param)) ** 0.5)),
    (day30.check_fit_power_law, day30.reference_fit_power_law),
    (day30.check_fit_power_law, _polyfit),
])
def test_solutions_pass_and_stubs_are_not_done(capsys, check, solution):
    assert bool(check(solution)) is True
    assert "passed" in one_line(capsys)
    assert bool(check(stub)) is False
    assert "not done yet" in one_line(capsys)


@pytest.mark.parametrize("wrong, hint", [
    (lambda c, n: c / (2 * n), "C / (2 N)"),
    (lambda c, n: c / n, "that is C / N"),
    (lambda c, n: 6 * n * c, "fewer tokens"),
    (lambda c, n: c / 6 * n, "precedence"),
    (lambda c, n: None, "None"),
    (lambda c, n: c / (6 * n) + 1000, "should be"),
])
def test_tokens_for_budget_mistakes(capsys, wrong, hint):
    assert bool(day30.check_tokens_for_budget(wrong)) is False
    assert hint in one_line(capsys)


def _opt(n_of):
    def f(c, tokens_per_param=20):
        n = n_of(c, tokens_per_param)
        return n, tokens_per_param * n
    return f


@pytest.mark.parametrize("wrong, hint", [
    (lambda c, tokens_per_param=20: scaling.compute_optimal(c, tokens_per_param)[::-1], "swapped"),
    (_opt(lambda c, r: math.sqrt(c / 120)), "written in"),
    (_opt(lambda c, r: math.sqrt(c / 6)), "ignores the tokens per parameter"),
    (_opt(lambda c, r: math.sqrt(c / (2 * r))), "6 N D"),
    (lambda c, tokens_per_param=20: (math.sqrt(c / (6 * tokens_per_param)), c / 6), "n_tokens should be"),
    (lambda c, tokens_per_param=20: math.sqrt(c), "compute_optimal"),
])
def test_compute_optimal_mistakes(capsys, wrong, hint):
    assert bool(day30.check_compute_optimal(wrong)) is False
    assert hint in one_line(capsys)


def _fit_log_coef(x, y):
    slope, intercept = np.polyfit(np.log(x), np.log(y), 1)
    return intercept, slope


def _fit_log10_coef(x, y):
    slope, intercept = np.polyfit(np.log10(x), np.log10(y), 1)
    return intercept, slope


def _fit_linear(x, y):
    slope, intercept = np.polyfit(x, y, 1)
    return intercept, slope


def _fit_inverse(x, y):
    slope, intercept = np.polyfit(np.log(y), np.log(x), 1)
    return math.exp(intercept), slope


@pytest.mark.parametrize("wrong, hint", [
    (lambda x, y: _polyfit(x, y)[::-1], "swapped"),
    (_fit_log_coef, "still a logarithm"),
    (_fit_log10_coef, "log10"),
    (lambda x, y: (_polyfit(x, y)[0], -_polyfit(x, y)[1]), "wrong sign"),
    (_fit_linear, "slope of y against x"),
    (_fit_inverse, "log x against log y"),
    (lambda x, y: (1.0, (math.log(y[-1]) - math.log(y[0])) / (math.log(x[-1]) - math.log(x[0]))),
     "least-squares fit"),
])
def test_fit_power_law_mistakes(capsys, wrong, hint):
    assert bool(day30.check_fit_power_law(wrong)) is False
    assert hint in one_line(capsys)
