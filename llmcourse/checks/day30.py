"""Checks for day 30, "Scaling at small scale".

Each ``check_*`` function compares the learner's code with the reference on a small battery
(budgets and sizes unlike the notebook's, Python and numpy integers, ratios other than
Chinchilla's 20 and the default, noisy and exact power laws with falling and rising exponents,
two points, unsorted points, tuples and float32 arrays as a sweep gives them), prints one line -
a pass, the hint of a known mistake from the exercise's table, or "not done yet" - and never
raises. The reference versions are :mod:`llmcourse.scaling`'s functions.

Example::

    >>> from llmcourse.checks import day30
    >>> ok = day30.check_tokens_for_budget(lambda flops, n_params: flops / (6 * n_params))
    ✅ tokens_for_budget: passed
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from llmcourse import scaling
from llmcourse.checks._core import Case, Mistake, as_float, as_pair, check, compare

__all__ = ["check_tokens_for_budget", "check_compute_optimal", "check_fit_power_law",
           "reference_fit_power_law", "TOKENS_FOR_BUDGET", "COMPUTE_OPTIMAL", "FIT_POWER_LAW"]


def reference_fit_power_law(x: Any, y: Any) -> tuple[float, float]:
    """``(coefficient, exponent)`` of ``y = coefficient * x ** exponent``, fitted in log space."""
    law = scaling.fit_power_law(list(x), list(y))
    return law.coefficient, law.exponent


def _pair(names: tuple[str, str], what: str) -> Callable[[Any, Case], tuple[float, float]]:
    def read(value: Any, case: Case) -> tuple[float, float]:
        first, second = as_pair(value, what, names)
        return as_float(first, names[0]), as_float(second, names[1])
    return read


# ---- exercise 1: tokens_for_budget ---------------------------------------------------------------


TOKENS_FOR_BUDGET = [
    Mistake("2N", lambda c, n: c / (2 * n), hint="that is C / (2 N): training costs 6 FLOPs per "
            "parameter per token (2 forward, 4 backward), so D = C / (6 N)"),
    Mistake("N", lambda c, n: c / n, hint="that is C / N: each token costs 6 N FLOPs, so "
            "D = C / (6 N)"),
    Mistake("times N", lambda c, n: 6 * n * c, hint="that multiplies by N; a larger model must get "
            "fewer tokens: D = C / (6 N)"),
    Mistake("precedence", lambda c, n: c / 6 * n, hint="that is C / 6 * N (the precedence of / and "
            "*): write C / (6 * N)"),
    Mistake("floor division", lambda c, n: c // (6 * n), hint="// (or int()) rounds the tokens "
            "down to a whole number; use / (the caller rounds to steps itself)"),
    Mistake("rounded", lambda c, n: round(c / (6 * n)), hint="round() (or math.ceil) makes the tokens a "
            "whole number; return C / (6 N) as it is (the caller rounds to steps itself)"),
    Mistake("times 6", lambda c, n: c * 6 / n, hint="that multiplies the FLOPs by 6: each token "
            "costs 6 N FLOPs, so divide, D = C / (6 N)"),
    Mistake("arguments swapped", lambda c, n: n / (6 * c), hint="flops and n_params are swapped: "
            "D = flops / (6 * n_params)"),
    Mistake("no return", lambda c, n: None, expect="returned None"),
]


def _budget_cases() -> list[Case]:
    return [
        Case("tokens_for_budget(7.2e13, 3e5)", 7.2e13, 3.0e5),
        Case("tokens_for_budget(1000, 7): ints, not a whole number of tokens", 1000, 7),
        Case("tokens_for_budget(5.76e23, 7e10)", 5.76e23, 7e10),
        Case("tokens_for_budget(1e11, n_params=numpy int64 24576)", 1e11, np.int64(24_576)),
    ]


def _tokens_reference(flops: Any, n_params: Any) -> float:
    """:func:`llmcourse.scaling.tokens_for_budget` on Python floats (it refuses numpy integers)."""
    return scaling.tokens_for_budget(float(flops), float(n_params))


@check("tokens_for_budget", mistakes=TOKENS_FOR_BUDGET)
def check_tokens_for_budget(tokens_for_budget: Callable[..., Any]) -> None:
    """Exercise 1: the tokens a FLOP budget buys, ``C / (6 N)``."""
    compare(tokens_for_budget, _tokens_reference, _budget_cases(),
            name="tokens_for_budget(flops, n_params)", mistakes=TOKENS_FOR_BUDGET,
            read=lambda v, case: as_float(v, "tokens_for_budget(flops, n_params)"),
            atol=0.0, rtol=1e-9)


# ---- exercise 2: compute_optimal -----------------------------------------------------------------


def _optimal(n_of, d_of=lambda n, r: r * n, default=20):
    def compute_optimal(flops, tokens_per_param=default):
        n = n_of(flops, tokens_per_param)
        return n, d_of(n, tokens_per_param)
    return compute_optimal


COMPUTE_OPTIMAL = [
    Mistake("no 6", lambda flops, tokens_per_param=20: (
        math.sqrt(flops / tokens_per_param), tokens_per_param * math.sqrt(flops / tokens_per_param)),
            hint="the 6 is left out: training costs C = 6 N D FLOPs, so with D = r N, N = sqrt(C / (6 r))"),
    Mistake("swapped", lambda c, tokens_per_param=20: scaling.compute_optimal(c, tokens_per_param)[::-1],
            hint="n_params and n_tokens are swapped: return (n_params, n_tokens)"),
    Mistake("20 written in", _optimal(lambda c, r: math.sqrt(c / (6 * 20)), lambda n, r: 20 * n),
            hint="the ratio 20 is written in: use the argument tokens_per_param (the check passes "
                 "other ratios)"),
    Mistake("20 written in for D", _optimal(lambda c, r: math.sqrt(c / (6 * r)), lambda n, r: 20 * n),
            hint="n_tokens uses the ratio 20 written in: D = tokens_per_param * N (the check passes "
                 "other ratios)"),
    Mistake("** before /", _optimal(lambda c, r: c / (6 * r) ** 0.5), hint="that is C / (6 r) ** "
            "0.5 (** binds before /, so only the 6 r was rooted): write (C / (6 * r)) ** 0.5 or "
            "math.sqrt(C / (6 * r))"),
    Mistake("ignores r", _optimal(lambda c, r: math.sqrt(c / 6)), hint="that N ignores the tokens "
            "per parameter: from C = 6 N D and D = r N, N = sqrt(C / (6 r))"),
    Mistake("2ND", _optimal(lambda c, r: math.sqrt(c / (2 * r))), hint="that uses C = 2 N D; "
            "training costs 6 N D, so N = sqrt(C / (6 r))"),
    Mistake("precedence", _optimal(lambda c, r: math.sqrt(c / 6 * r)), hint="that is "
            "sqrt(C / 6 * r) (the precedence of / and *): write sqrt(C / (6 * r))"),
    Mistake("rounded", lambda c, tokens_per_param=20: tuple(
        int(v) for v in scaling.compute_optimal(c, tokens_per_param)), hint="n_params and n_tokens "
            "were rounded to whole numbers: return the floats N = sqrt(C / (6 r)) and D = r N"),
    Mistake("no square root", _optimal(lambda c, r: c / (6 * r)), hint="C = 6 r N² gives N² = "
            "C / (6 r): take the square root, N = sqrt(C / (6 r))"),
    Mistake("D = N / r", _optimal(lambda c, r: math.sqrt(c / (6 * r)), lambda n, r: n / r),
            hint="n_tokens is r TIMES n_params (r tokens for each parameter): D = r N"),
    Mistake("another default", _optimal(lambda c, r: math.sqrt(c / (6 * r)), default=10),
            hint="tokens_per_param defaults to Chinchilla's 20: def compute_optimal(flops, "
                 "tokens_per_param=20)"),
    Mistake("only N", lambda c, tokens_per_param=20: math.sqrt(c / (6 * tokens_per_param)),
            expect="should return a pair (n_params, n_tokens)"),
]


def _optimal_cases() -> list[Case]:
    return [
        Case("compute_optimal(4.5e15, tokens_per_param=5)", 4.5e15, tokens_per_param=5.0),
        Case("compute_optimal(3.14e23, 1.7)", 3.14e23, 1.7),
        Case("compute_optimal(1.2e14): the default ratio", 1.2e14),
        Case("compute_optimal(6e9, tokens_per_param=100)", 6e9, tokens_per_param=100),
    ]


@check("compute_optimal", mistakes=COMPUTE_OPTIMAL)
def check_compute_optimal(compute_optimal: Callable[..., Any]) -> None:
    """Exercise 2: ``N = sqrt(C / (6 r))``, ``D = r N``, with r an argument defaulting to 20."""
    compare(compute_optimal, scaling.compute_optimal, _optimal_cases(),
            name="compute_optimal(flops, tokens_per_param)", mistakes=COMPUTE_OPTIMAL,
            read=_pair(("n_params", "n_tokens"), "compute_optimal(flops, tokens_per_param)"),
            atol=0.0, rtol=1e-9)


# ---- exercise 3: fit_power_law ---------------------------------------------------------------


def _polyfit(x, y, log=np.log, back=math.exp, swap=False):
    lx, ly = log(np.asarray(x, dtype=float)), log(np.asarray(y, dtype=float))
    slope, intercept = np.polyfit(ly, lx, 1) if swap else np.polyfit(lx, ly, 1)
    return back(intercept), slope


def _fit_right(x, y):
    return _polyfit(x, y)


def _fit_log_coefficient(x, y):
    return _polyfit(x, y, back=lambda i: i)


def _fit_log10_coefficient(x, y):
    return _polyfit(x, y, log=np.log10, back=lambda i: i)


def _fit_log10_exp(x, y):                    # log10 for the fit, exp to come back
    return _polyfit(x, y, log=np.log10)


def _fit_sign(x, y):
    a, b = _polyfit(x, y)
    return a, -b


def _fit_linear(x, y):
    slope, intercept = np.polyfit(np.asarray(x, dtype=float), np.asarray(y, dtype=float), 1)
    return intercept, slope


def _fit_semilog(x, y):                      # log x only: y itself against log x
    slope, intercept = np.polyfit(np.log(np.asarray(x, dtype=float)), np.asarray(y, dtype=float), 1)
    return math.exp(intercept), slope


def _fit_inverse(x, y):
    return _polyfit(x, y, swap=True)


def _fit_unpacked_backwards(x, y):          # intercept, slope = np.polyfit(...): the wrong order
    intercept, slope = np.polyfit(np.log(np.asarray(x, dtype=float)),
                                  np.log(np.asarray(y, dtype=float)), 1)
    return math.exp(intercept), slope


def _fit_raw(x, y):                          # np.polyfit's (slope, intercept) as it comes
    return tuple(np.polyfit(np.log(np.asarray(x, dtype=float)), np.log(np.asarray(y, dtype=float)), 1))


def _fit_endpoints(x, y):                    # the line through the first and last point
    b = (math.log(y[-1]) - math.log(y[0])) / (math.log(x[-1]) - math.log(x[0]))
    return math.exp(math.log(y[0]) - b * math.log(x[0])), b


FIT_POWER_LAW = [
    Mistake("swapped", lambda x, y: _fit_right(x, y)[::-1], hint="coefficient and exponent are "
            "swapped: return (coefficient, exponent)"),
    Mistake("coefficient is a log", _fit_log_coefficient, hint="the coefficient is still a "
            "logarithm: the line's intercept is log(coefficient), so return math.exp(intercept)"),
    Mistake("log10 coefficient", _fit_log10_coefficient, hint="the coefficient is log10 of the "
            "right one: return 10 ** intercept for a fit in log10 (or exp for natural logs)"),
    Mistake("log10 fit, exp back", _fit_log10_exp, hint="the fit is in log10 but the intercept was "
            "undone with exp: use the same base both ways (np.log with math.exp, or np.log10 with "
            "10 ** intercept)"),
    Mistake("wrong sign", _fit_sign, hint="the exponent has the wrong sign: it is the slope of "
            "log y against log x, negative for a loss that falls with x"),
    Mistake("linear fit", _fit_linear, hint="that is the slope of y against x; fit log y against "
            "log x (np.polyfit(np.log(x), np.log(y), 1))"),
    Mistake("log x only", _fit_semilog, hint="only x was put in log space: fit log y against log x "
            "(np.polyfit(np.log(x), np.log(y), 1))"),
    Mistake("inverse fit", _fit_inverse, hint="that is the slope of log x against log y: fit log y "
            "(the loss) as a function of log x"),
    Mistake("polyfit unpacked backwards", _fit_unpacked_backwards, hint="np.polyfit returns the "
            "highest power first, (slope, intercept): write slope, intercept = np.polyfit(...), "
            "then return (math.exp(intercept), slope)"),
    Mistake("polyfit as it comes", _fit_raw, hint="that returns np.polyfit's (slope, intercept) as "
            "they come: the coefficient is math.exp(intercept) and the exponent is the slope, in "
            "that order"),
    Mistake("endpoints", _fit_endpoints, hint="that is the line through the first and the last "
            "point; fit a least-squares line through ALL the points (np.polyfit)"),
]


def _fit_cases() -> list[Case]:
    g = np.random.default_rng(30)
    exact_x = [3.0, 30.0, 300.0, 3000.0]
    compute = np.array([1e11, 3e11, 1e12, 3e12, 1e13, 3e13], dtype=np.float64)
    losses = (9.0 * compute ** -0.07 * np.exp(g.normal(0, 0.01, size=6))).astype(np.float32)
    order = [4, 1, 0, 3, 2]
    xs, ys = [2e3, 9e3, 4e4, 1.5e5, 7e5], [3.9, 3.1, 2.7, 2.2, 1.85]
    return [
        Case("fit_power_law(x, y) with 5 noisy points, x from 2e3 to 7e5", xs, ys),
        Case("fit_power_law(x, y) with y = 0.5 * x^0.75 exactly at 4 points", exact_x,
             [0.5 * v ** 0.75 for v in exact_x]),
        Case("fit_power_law((1e10, 4e10), (3.2, 2.9)): two points, as tuples", (1e10, 4e10), (3.2, 2.9)),
        Case("fit_power_law(float64 compute, float32 losses): 6 points of a sweep", compute, losses),
        Case("fit_power_law(x, y) with the 5 noisy points in another order",
             [xs[i] for i in order], [ys[i] for i in order]),
    ]


@check("fit_power_law", mistakes=FIT_POWER_LAW)
def check_fit_power_law(fit_power_law: Callable[..., Any]) -> None:
    """Exercise 3: a least-squares line through all the points in log-log space."""
    compare(fit_power_law, reference_fit_power_law, _fit_cases(), name="fit_power_law(x, y)",
            mistakes=FIT_POWER_LAW, read=_pair(("coefficient", "exponent"), "fit_power_law(x, y)"),
            atol=1e-9, rtol=1e-5)
