"""Checks for day 28, "Experiments with size and context": mean ± std, grids, a difference's error.

Each ``check_*`` compares the learner's function with the reference on a small battery of inputs
unlike the notebook's (several sizes, a single value, constant values, float32 arrays as a log
gives them, grids with 0, 1, 3 and 4 keys and an empty list of values), prints one line (a pass,
the hint of a known mistake from the exercise's table, or "not done yet") and returns a verdict.
None of them raises. The references are :func:`llmcourse.sweep.mean_std` and
:func:`llmcourse.sweep.difference_with_error`.

Example::

    >>> from llmcourse.checks import day28
    >>> ok = day28.check_mean_std(lambda v: (sum(v) / len(v), 0.0 if len(v) < 2 else
    ...     (sum((x - sum(v) / len(v)) ** 2 for x in v) / (len(v) - 1)) ** 0.5))
    ✅ mean_std: passed
"""

from __future__ import annotations

import copy
import itertools
import math
import statistics
from typing import Any, Callable

import numpy as np

from llmcourse.checks._core import (Case, CheckFailed, Mistake, as_float, as_pair, check, compare,
                                    kind_of, needs_earlier)
from llmcourse.sweep import difference_with_error, mean_std

__all__ = ["check_mean_std", "check_expand_grid", "check_difference_with_error",
           "MEAN_STD", "EXPAND_GRID", "DIFFERENCE_WITH_ERROR"]


def _pair_of_numbers(names: tuple[str, str], what: str) -> Callable[[Any, Case], tuple[float, float]]:
    def read(value: Any, case: Case) -> tuple[float, float]:
        first, second = as_pair(value, what, names)
        return (as_float(first, f"the {names[0]} of {what}"),
                as_float(second, f"the {names[1]} of {what}"))
    return read


# ---- exercise 1: mean_std ----------------------------------------------------------------------


def _pstdev(values):
    return statistics.pstdev([float(v) for v in values])


def _stdev(values):
    return statistics.stdev([float(v) for v in values])


def _mean(values):
    return sum(float(v) for v in values) / len(values)


def _nan_std(values):                        # np.std(ddof=1) of one value: nan (and a warning)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.mean(values)), float(np.std(values, ddof=1))


MEAN_STD = [
    Mistake("n - 1 with one value", lambda v: (sum(v) / len(v), math.sqrt(
        sum((x - sum(v) / len(v)) ** 2 for x in v) / (len(v) - 1))),
            hint="with one value, n - 1 is 0 and the division fails: return 0.0 as the std when "
                 "there are fewer than 2 values"),
    Mistake("divides by n", lambda v: (_mean(v), _pstdev(v)), hint="that std divides by n; the "
            "sample standard deviation divides by n - 1 (Bessel's correction)"),
    Mistake("variance", lambda v: (_mean(v), statistics.variance(v) if len(v) > 1 else 0.0),
            hint="that is the variance; take its square root (math.sqrt) for the standard deviation"),
    Mistake("standard error", lambda v: (_mean(v), _stdev(v) / math.sqrt(len(v)) if len(v) > 1
                                         else 0.0),
            hint="that is the standard error s / sqrt(n); return the standard deviation s itself"),
    Mistake("one value raises", lambda v: (_mean(v), _stdev(v)), hint="with one value there is no "
            "n - 1 to divide by (statistics.stdev raises): return 0.0 as its std"),
    Mistake("one value gives nan", lambda v: _nan_std(v),
            hint="with one value np.std(..., ddof=1) gives nan: return 0.0 as its std"),
    Mistake("sum, not mean", lambda v: (sum(v), _stdev(v) if len(v) > 1 else 0.0),
            hint="the mean is the sum of the values divided by how many there are"),
    Mistake("swapped", lambda v: (_stdev(v) if len(v) > 1 else 0.0, _mean(v)),
            hint="mean and std are swapped: return (mean, std)"),
    Mistake("std only", lambda v: _stdev(v), expect="should return a pair (mean, std)"),
    Mistake("0.0 for two values", lambda v: (_mean(v), _stdev(v) if len(v) > 2 else 0.0),
            hint="two values have a spread (n - 1 = 1): return 0.0 as the std only for a single "
                 "value (n < 2)"),
]


def _mean_std_cases() -> list[Case]:
    losses = np.array([2.61, 2.55, 2.70, 2.58, 2.49, 2.66], dtype=np.float32)
    return [
        Case("mean_std([3.1, 2.7, 2.9, 3.4])", [3.1, 2.7, 2.9, 3.4]),
        Case("mean_std([1.5, 1.25])", [1.5, 1.25]),
        Case("mean_std([-0.5, 0.25, 1.0, 0.0, 4.0])", [-0.5, 0.25, 1.0, 0.0, 4.0]),
        Case("mean_std([2.5]): one value", [2.5]),
        Case("mean_std([2.0, 2.0, 2.0]): no spread", [2.0, 2.0, 2.0]),
        Case("mean_std(a float32 array of 6 losses)", losses),
    ]


@check("mean_std", mistakes=MEAN_STD)
def check_mean_std(mean_std_fn: Callable[[Any], Any]) -> None:
    """Exercise 1: (mean, sample std) of a list, std 0.0 for one value."""
    compare(mean_std_fn, mean_std, _mean_std_cases(), name="mean_std(values)", mistakes=MEAN_STD,
            read=_pair_of_numbers(("mean", "std"), "mean_std(values)"), atol=1e-9, rtol=1e-5)


# ---- exercise 2: expand_grid -------------------------------------------------------------------


def _grid(grid):                             # the reference: nested loops, first key outermost
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def _zip(grid):
    return [dict(zip(grid, c)) for c in zip(*grid.values())]


def _last_slowest(grid):
    keys = list(grid)[::-1]
    return [dict(zip(keys, c)) for c in itertools.product(*(grid[k] for k in keys))]


def _sorted_keys(grid):
    keys = sorted(grid)
    return [dict(zip(keys, c)) for c in itertools.product(*(grid[k] for k in keys))]


def _tuples(grid):
    return list(itertools.product(*grid.values()))


def _empty_is_empty(grid):
    return _grid(grid) if grid else []


def _generator(grid):
    keys = list(grid)
    return (dict(zip(keys, c)) for c in itertools.product(*grid.values()))


def _first_two(grid):                        # nested loops written for two keys only
    k = list(grid)
    if len(k) < 2:
        return _grid(grid)
    return [{k[0]: a, k[1]: b} for a in grid[k[0]] for b in grid[k[1]]]


def _one_dict(grid):                         # appends the same dict object every time
    keys, out, setting = list(grid), [], {}
    for combo in itertools.product(*(grid[k] for k in keys)):
        for k, v in zip(keys, combo):
            setting[k] = v
        out.append(setting)
    return out


def _pops_keys(grid):                        # recursion that takes the keys out of the grid
    if not grid:
        return [{}]
    key = next(iter(grid))
    values = grid.pop(key)
    rest = _pops_keys(grid)
    return [{key: v, **r} for v in values for r in rest]


_GRID_CHANGED = ("expand_grid changed the grid it was given (a key popped or a list changed): "
                 "leave it as it was, build the settings from copies (list(grid), dict(zip(...)))")

EXPAND_GRID = [
    Mistake("pops the grid's keys", _pops_keys, expect=_GRID_CHANGED),
    Mistake("empty grid gives []", _empty_is_empty, hint="an empty grid is one setting in which "
            "nothing changes: [{}]"),
    Mistake("zip", _zip, hint="it pairs the lists up (zip); a grid is every combination "
            "(itertools.product)"),
    Mistake("last key slowest", _last_slowest, hint="the right settings, in the wrong order - the "
            "last key changes slowest; the first key is the outer loop (it changes slowest)"),
    Mistake("sorted keys", _sorted_keys, hint="the settings come in another order: loop over the "
            "keys in the grid's own order (list(grid)), the first key outermost, not sorted"),
    Mistake("shared dict", _one_dict, hint="every item of the list is the same dict, changed in "
            "place: build a new dict for each combination (dict(zip(keys, combination)))"),
    Mistake("only two keys", _first_two, hint="every setting holds every key of the grid; loop "
            "over all of them (itertools.product(*values))"),
    Mistake("tuples", _tuples, expect="list of dicts"),
    Mistake("generator", _generator, expect="return a list"),
]


def _grid_cases() -> list[Case]:
    return [
        Case("expand_grid({'n_layer': [1, 2], 'dropout': [0.0, 0.1, 0.2], 'lr': [1e-3, 3e-3]})",
             {"n_layer": [1, 2], "dropout": [0.0, 0.1, 0.2], "lr": [1e-3, 3e-3]}),
        Case("expand_grid({'block_size': [16, 32, 64]}): one key", {"block_size": [16, 32, 64]}),
        Case("expand_grid({}): nothing varied", {}),
        Case("expand_grid({'seed': [0, 1], 'norm': ['layer', 'rms'], 'bias': [True, False], "
             "'n_embd': [48]}): 4 keys", {"seed": [0, 1], "norm": ["layer", "rms"],
                                          "bias": [True, False], "n_embd": [48]}),
        Case("expand_grid({'n_head': [2, 4], 'dropout': []}): an empty list of values",
             {"n_head": [2, 4], "dropout": []}),
    ]


def _settings(value: Any, case: Case) -> list[dict[str, Any]]:
    shown = "expand_grid(grid)"
    if value is None:
        raise CheckFailed(f"{shown} returned None; did you forget the `return`?")
    if not isinstance(value, (list, tuple)):
        if hasattr(value, "__iter__") and not isinstance(value, (dict, str)):
            raise CheckFailed(f"{shown} returned {kind_of(value)}; return a list (list(...) of it)")
        raise CheckFailed(f"{shown} should return a list of dicts, got {kind_of(value)}")
    for item in value:
        if not isinstance(item, dict):
            raise CheckFailed(f"{shown} should return a list of dicts {{name: value}}, but an item "
                              f"is {kind_of(item)}; build each with dict(zip(keys, combination))")
    if len(value) > 1 and len({id(item) for item in value}) == 1:
        return ["the same dict, changed in place"] * len(value)   # compared with the table's entry
    return list(value)


def _run_grid(impl: Any, case: Case) -> Any:
    """``impl(grid)`` on a fresh copy; fails if it changed that copy (the notebook's grid)."""
    args, _ = case.fresh()
    before = copy.deepcopy(args[0])
    out = impl(args[0])
    if args[0] != before:
        raise CheckFailed(f"{_GRID_CHANGED} (on {case.label})")
    return out


@check("expand_grid", mistakes=EXPAND_GRID)
def check_expand_grid(expand_grid_fn: Callable[[Any], Any]) -> None:
    """Exercise 2: the cross product of a grid, as dicts, the first key varying slowest."""
    compare(expand_grid_fn, _grid, _grid_cases(), name="expand_grid(grid)", run=_run_grid,
            mistakes=EXPAND_GRID, read=_settings)


# ---- exercise 3: difference_with_error -----------------------------------------------------------


def _with_se(se):
    def fn(a, b):
        return _mean(b) - _mean(a), se(a, b)
    return fn


def _s(values):
    return _stdev(values) if len(values) > 1 else 0.0


def _p(values):
    return _pstdev(values)


DIFFERENCE_WITH_ERROR = [
    Mistake("absolute difference", lambda a, b: (abs(_mean(b) - _mean(a)),
                                                 difference_with_error(a, b)[1]),
            hint="the difference has a sign: return mean(b) - mean(a), negative when b is lower "
                 "(no abs)"),
    Mistake("mean(a) - mean(b)", lambda a, b: (_mean(a) - _mean(b),
                                               difference_with_error(a, b)[1]),
            hint="that difference is mean(a) - mean(b); return mean(b) - mean(a)"),
    Mistake("population stds", _with_se(lambda a, b: math.sqrt(_p(a) ** 2 / len(a)
                                                              + _p(b) ** 2 / len(b))),
            hint="that error comes from standard deviations that divide by n; use the sample "
                 "standard deviations (n - 1), as mean_std returns them"),
    Mistake("no division by n", _with_se(lambda a, b: math.sqrt(_s(a) ** 2 + _s(b) ** 2)),
            hint="that error is sqrt(s_a² + s_b²); divide each variance by its own number of "
                 "results: sqrt(s_a²/n_a + s_b²/n_b)"),
    Mistake("one n for both", _with_se(lambda a, b: math.sqrt((_s(a) ** 2 + _s(b) ** 2) / len(a))),
            hint="both variances were divided by len(a); divide each by its own number of results "
                 "(n_a and n_b differ)"),
    Mistake("errors added", _with_se(lambda a, b: _s(a) / math.sqrt(len(a))
                                     + _s(b) / math.sqrt(len(b))),
            hint="that is the two standard errors added; uncertainties add as variances: "
                 "sqrt(s_a²/n_a + s_b²/n_b)"),
    Mistake("no square root", _with_se(lambda a, b: _s(a) ** 2 / len(a) + _s(b) ** 2 / len(b)),
            hint="that is the variance of the difference; take its square root"),
    Mistake("sqrt(n)", _with_se(lambda a, b: math.sqrt(_s(a) ** 2 / math.sqrt(len(a))
                                                       + _s(b) ** 2 / math.sqrt(len(b)))),
            hint="divide each variance by n, not sqrt(n)"),
    Mistake("stdev of one run", _with_se(lambda a, b: math.sqrt(_stdev(a) ** 2 / len(a)
                                                                + _stdev(b) ** 2 / len(b))),
            hint="a setting with one run has std 0.0 (as mean_std returns it); "
                 "statistics.stdev raises for a single value"),
    Mistake("difference only", lambda a, b: _mean(b) - _mean(a),
            expect="should return a pair (difference, se)"),
    Mistake("pooled variance", _with_se(lambda a, b: math.sqrt(
        ((len(a) - 1) * _s(a) ** 2 + (len(b) - 1) * _s(b) ** 2) / max(len(a) + len(b) - 2, 1)
        * (1 / len(a) + 1 / len(b)))),
            hint="that is the pooled standard error (one variance shared by both settings); "
                 "each setting keeps its own: sqrt(s_a²/n_a + s_b²/n_b)"),
]


def _difference_cases() -> list[Case]:
    return [
        Case("difference_with_error([1.75, 1.5], [2.0, 2.5, 2.25]): b is higher",
             [1.75, 1.5], [2.0, 2.5, 2.25]),
        Case("difference_with_error([2.61, 2.55, 2.70, 2.58], [2.43, 2.52, 2.47])",
             [2.61, 2.55, 2.70, 2.58], [2.43, 2.52, 2.47]),
        Case("difference_with_error(5 results, 2 results)", [3.0, 3.5, 2.5, 3.25, 2.75],
             [2.0, 2.5]),
        Case("difference_with_error([2.2, 2.4, 2.3], [2.05]): one run of b", [2.2, 2.4, 2.3], [2.05]),
        Case("difference_with_error(float32 arrays of 3 and 4 losses)",
             np.array([1.91, 1.87, 1.95], dtype=np.float32),
             np.array([1.82, 1.80, 1.86, 1.79], dtype=np.float32)),
        Case("difference_with_error([1.5], [1.25]): one run each", [1.5], [1.25]),
    ]


@check("difference_with_error", mistakes=DIFFERENCE_WITH_ERROR)
@needs_earlier(mean_std=1)
def check_difference_with_error(diff_fn: Callable[[Any, Any], Any]) -> None:
    """Exercise 3: (mean(b) - mean(a), sqrt(s_a²/n_a + s_b²/n_b))."""
    compare(diff_fn, difference_with_error, _difference_cases(), name="difference_with_error(a, b)",
            mistakes=DIFFERENCE_WITH_ERROR,
            read=_pair_of_numbers(("difference", "se"), "difference_with_error(a, b)"),
            atol=1e-9, rtol=1e-5)
