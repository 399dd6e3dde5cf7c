"""Checks for day 30, "Scaling at small scale".

Each ``check_*`` function runs the learner's code on cases of its own (budgets, ratios and
points unlike the notebook's), prints one line - a pass, a specific hint, or "not done yet" -
and never raises. The reference versions are :mod:`llmcourse.scaling`'s functions.

Example::

    >>> from llmcourse import scaling
    >>> from llmcourse.checks import day30
    >>> ok = day30.check_tokens_for_budget(scaling.tokens_for_budget)
    ✅ tokens_for_budget: passed
"""

from __future__ import annotations

import math
from typing import Any, Callable

from llmcourse.checks._core import CheckFailed, as_pair, call, check
from llmcourse import scaling

__all__ = ["check_tokens_for_budget", "check_compute_optimal", "check_fit_power_law",
           "reference_fit_power_law"]


def reference_fit_power_law(x: Any, y: Any) -> tuple[float, float]:
    """``(coefficient, exponent)`` of ``y = coefficient * x ** exponent``, fitted in log space."""
    law = scaling.fit_power_law(list(x), list(y))
    return law.coefficient, law.exponent


def _number(value: Any, name: str) -> float:
    if value is None:
        raise CheckFailed(f"{name} is None: return the number")
    if isinstance(value, bool):
        raise CheckFailed(f"{name} should be a number, got a bool")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise CheckFailed(f"{name} should be a number, got {type(value).__name__}") from None


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6)


@check("tokens_for_budget")
def check_tokens_for_budget(tokens_for_budget: Callable[..., Any]) -> None:
    """Exercise 1: the tokens a FLOP budget buys, ``C / (6 N)``."""
    c, n = 7.2e13, 3.0e5
    shown = f"tokens_for_budget({c:g}, {n:g})"
    got = _number(call(tokens_for_budget, c, n, shown=shown), shown)
    right = c / (6 * n)
    wrong = {
        "that is C / (2 N): training costs 6 FLOPs per parameter per token (2 forward, 4 "
        "backward), so D = C / (6 N)": c / (2 * n),
        "that is C / N: each token costs 6 N FLOPs, so D = C / (6 N)": c / n,
        "that multiplies by N; a larger model must get fewer tokens: D = C / (6 N)": 6 * n * c,
        "that is C / 6 * N (the precedence of / and *): write C / (6 * N)": c / 6 * n,
    }
    for hint, value in wrong.items():
        if _close(got, value):
            raise CheckFailed(hint)
    if not _close(got, right):
        raise CheckFailed(f"{shown} should be {right:.4g} tokens (C / (6 N)), got {got:.4g}")


@check("compute_optimal")
def check_compute_optimal(compute_optimal: Callable[..., Any]) -> None:
    """Exercise 2: ``N = sqrt(C / (6 r))``, ``D = r N``."""
    c, r = 4.5e15, 5.0                                   # r is not Chinchilla's 20
    shown = f"compute_optimal({c:g}, tokens_per_param={r:g})"
    n, d = as_pair(call(compute_optimal, c, tokens_per_param=r, shown=shown), "compute_optimal",
                   ("n_params", "n_tokens"))
    n, d = _number(n, "n_params"), _number(d, "n_tokens")
    right_n, right_d = scaling.compute_optimal(c, r)
    if _close(n, right_d) and _close(d, right_n):
        raise CheckFailed("n_params and n_tokens are swapped: return (n_params, n_tokens)")
    if _close(n, math.sqrt(c / (6 * 20))):
        raise CheckFailed("the ratio 20 is written in: use the argument tokens_per_param (the "
                          f"check passes {r:g})")
    if _close(n, math.sqrt(c / 6)):
        raise CheckFailed("that N ignores the tokens per parameter: from C = 6 N D and D = r N, "
                          "N = sqrt(C / (6 r))")
    if _close(n, math.sqrt(c / (2 * r))):
        raise CheckFailed("that uses C = 2 N D; training costs 6 N D, so N = sqrt(C / (6 r))")
    if not _close(n, right_n):
        raise CheckFailed(f"{shown}: n_params should be {right_n:.4g} (sqrt(C / (6 r))), got "
                          f"{n:.4g}")
    if not _close(d, right_d):
        raise CheckFailed(f"{shown}: n_tokens should be r * n_params = {right_d:.4g}, got {d:.4g}")


@check("fit_power_law")
def check_fit_power_law(fit_power_law: Callable[..., Any]) -> None:
    """Exercise 3: a least-squares line in log-log space."""
    x = [2e3, 9e3, 4e4, 1.5e5, 7e5]
    y = [3.9, 3.1, 2.7, 2.2, 1.85]                        # noisy: not exactly a power law
    shown = "fit_power_law(x, y) with 5 points, x from 2e3 to 7e5"
    a, b = as_pair(call(fit_power_law, x, y, shown=shown), "fit_power_law",
                   ("coefficient", "exponent"))
    a, b = _number(a, "coefficient"), _number(b, "exponent")
    ra, rb = reference_fit_power_law(x, y)
    lx, ly = [math.log(v) for v in x], [math.log(v) for v in y]
    if _close(a, rb) and _close(b, ra):
        raise CheckFailed("coefficient and exponent are swapped: return (coefficient, exponent)")
    if _close(b, rb) and _close(a, math.log(ra)):
        raise CheckFailed("the coefficient is still a logarithm: the line's intercept is "
                          "log(coefficient), so return math.exp(intercept)")
    if _close(b, rb) and _close(a, math.log10(ra)):
        raise CheckFailed("the coefficient is log10 of the right one: return 10 ** intercept "
                          "for a fit in log10 (or exp for natural logs)")
    if _close(b, -rb):
        raise CheckFailed("the exponent has the wrong sign: a loss that falls with x has a "
                          "negative exponent (the slope of log y against log x)")
    # Fits in linear space, or of x against y, give other slopes.
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    lin = sum((p - mx) * (q - my) for p, q in zip(x, y)) / sum((p - mx) ** 2 for p in x)
    if _close(b, lin):
        raise CheckFailed("that is the slope of y against x; fit log y against log x "
                          "(np.polyfit(np.log(x), np.log(y), 1))")
    mlx, mly = sum(lx) / n, sum(ly) / n
    inv = (sum((p - mlx) * (q - mly) for p, q in zip(lx, ly))
           / sum((q - mly) ** 2 for q in ly))           # slope of log x against log y
    if _close(b, inv) or _close(b, 1 / rb):
        raise CheckFailed("that is the slope of log x against log y: fit log y (the loss) as a "
                          "function of log x")
    if not (_close(a, ra) and _close(b, rb)):
        raise CheckFailed(f"for these points the least-squares fit in log space is "
                          f"{ra:.4f} * x^{rb:.4f}; got {a:.4g} * x^{b:.4g}")
