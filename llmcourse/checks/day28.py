"""Checks for day 28, "Experiments with size and context": mean ± std, grids, a difference's error.

Each ``check_*`` runs the learner's function on inputs unlike the notebook's, prints one line
(a pass, a specific hint, or "not done yet") and returns a verdict. None of them raises. The
references are :func:`llmcourse.sweep.mean_std` and :func:`llmcourse.sweep.difference_with_error`.

Example::

    >>> from llmcourse.checks import day28
    >>> from llmcourse.sweep import mean_std
    >>> ok = day28.check_mean_std(mean_std)
    ✅ mean_std: passed
"""

from __future__ import annotations

import itertools
import math
import numbers
from typing import Any, Callable

import torch

from llmcourse.checks._core import CheckFailed, as_pair, call, check, kind_of, needs_earlier
from llmcourse.sweep import difference_with_error, mean_std

__all__ = ["check_mean_std", "check_expand_grid", "check_difference_with_error"]


def _number(value: Any, name: str) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if hasattr(value, "item") and not isinstance(value, (list, tuple)) and getattr(value, "size", 2) == 1:
        value = value.item()  # a numpy scalar
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise CheckFailed(f"{name} should be a number (a Python float), got {kind_of(value)}")
    return float(value)


def _close(a: float, b: float, tol: float = 1e-5) -> bool:
    return abs(a - b) <= tol * max(1.0, abs(b))


def _population_std(values: list[float]) -> float:
    m = sum(values) / len(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / len(values))


@check("mean_std")
def check_mean_std(mean_std_fn: Callable[[Any], Any]) -> None:
    """Exercise 1: (mean, sample std) of a list, std 0.0 for one value."""
    for values in ([3.1, 2.7, 2.9, 3.4], [1.5, 1.25], [-0.5, 0.25, 1.0, 0.0, 4.0]):
        shown = f"mean_std({values})"
        mean, std = as_pair(call(mean_std_fn, list(values), shown=shown), "mean_std", ("mean", "std"))
        mean, std = _number(mean, f"the mean of {shown}"), _number(std, f"the std of {shown}")
        want_mean, want_std = mean_std(values)
        if not _close(mean, want_mean):
            raise CheckFailed(f"{shown} gave the mean {mean:.4f}, but it is {want_mean:.4f}: the sum "
                              "of the values divided by how many there are")
        if _close(std, want_std):
            continue
        pop = _population_std(values)
        if _close(std, pop):
            raise CheckFailed(f"{shown} gave the std {std:.4f}, which divides by n; the sample "
                              f"standard deviation divides by n - 1 (it is {want_std:.4f})")
        if _close(std, want_std ** 2) or _close(std, pop ** 2):
            raise CheckFailed(f"{shown} gave {std:.4f}, the variance; take its square root "
                              "(math.sqrt) for the standard deviation")
        if _close(std, want_std / math.sqrt(len(values))):
            raise CheckFailed(f"{shown} gave {std:.4f}, the standard error s / sqrt(n); return the "
                              "standard deviation s itself")
        raise CheckFailed(f"{shown} gave the std {std:.4f} but it is {want_std:.4f}")
    shown = "mean_std([2.5])"
    mean, std = as_pair(call(mean_std_fn, [2.5], shown=shown,
                             hint="with one value there is no n - 1 to divide by: return 0.0 as "
                                  "its std"), "mean_std", ("mean", "std"))
    mean, std = _number(mean, f"the mean of {shown}"), _number(std, f"the std of {shown}")
    if not (_close(mean, 2.5) and std == 0.0):
        raise CheckFailed(f"{shown} gave ({mean}, {std}); one value has mean 2.5 and, by the "
                          "lesson's convention, std 0.0")


def _combos(value: Any, shown: str) -> list[dict[str, Any]]:
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
    return list(value)


def _canon(setting: dict[str, Any]) -> str:
    return repr(sorted(setting.items()))


@check("expand_grid")
def check_expand_grid(expand_grid_fn: Callable[[Any], Any]) -> None:
    """Exercise 2: the cross product of a grid, as dicts, the first key varying slowest."""
    grid = {"n_layer": [1, 2], "dropout": [0.0, 0.1, 0.2], "block_size": [48]}
    shown = "expand_grid({'n_layer': [1, 2], 'dropout': [0.0, 0.1, 0.2], 'block_size': [48]})"
    got = _combos(call(expand_grid_fn, {k: list(v) for k, v in grid.items()}, shown=shown), shown)
    keys = list(grid)
    want = [dict(zip(keys, c)) for c in itertools.product(*grid.values())]
    if got == want:
        pass
    elif got == [dict(zip(keys, c)) for c in zip(*grid.values())]:
        raise CheckFailed(f"{shown} returned {len(got)} settings: it pairs the lists up (zip); a "
                          "grid is every combination, 2 x 3 x 1 = 6 (itertools.product)")
    elif len(got) != len(want):
        raise CheckFailed(f"{shown} returned {len(got)} settings; the grid has 2 x 3 x 1 = "
                          f"{len(want)} combinations")
    elif any(set(g) != set(keys) for g in got):
        bad = next(g for g in got if set(g) != set(keys))
        raise CheckFailed(f"{shown} returned a setting {bad}; every setting holds every key "
                          f"({', '.join(keys)})")
    elif sorted(map(_canon, got)) == sorted(map(_canon, want)):
        last_slowest = [dict(zip(keys, reversed(c))) for c in
                        itertools.product(*reversed(list(grid.values())))]
        if got == last_slowest:
            raise CheckFailed(f"{shown}: the right settings, in the wrong order - the last key "
                              "changes slowest; the first key is the outer loop (it changes slowest)")
        raise CheckFailed(f"{shown}: the right settings in another order; give them in the order "
                          "of nested loops, the first key outermost")
    else:
        wrong = next(g for g, w in zip(got, want) if g != w)
        raise CheckFailed(f"{shown} returned the setting {wrong}, which is not in the grid")
    shown = "expand_grid({})"
    got = _combos(call(expand_grid_fn, {}, shown=shown), shown)
    if got != [{}]:
        raise CheckFailed(f"{shown} returned {got}; an empty grid is one setting in which nothing "
                          "changes: [{}]")


@check("difference_with_error")
@needs_earlier(mean_std=1)
def check_difference_with_error(diff_fn: Callable[[Any, Any], Any]) -> None:
    """Exercise 3: (mean(b) - mean(a), sqrt(s_a²/n_a + s_b²/n_b))."""
    a, b = [2.61, 2.55, 2.70, 2.58], [2.43, 2.52, 2.47]   # different sizes and spreads
    shown = f"difference_with_error({a}, {b})"
    d, se = as_pair(call(diff_fn, list(a), list(b), shown=shown), "difference_with_error",
                    ("difference", "se"))
    d, se = _number(d, f"the difference of {shown}"), _number(se, f"the standard error of {shown}")
    want_d, want_se = difference_with_error(a, b)
    if _close(d, -want_d):
        raise CheckFailed(f"{shown} gave the difference {d:+.4f}, mean(a) - mean(b); return "
                          f"mean(b) - mean(a) ({want_d:+.4f})")
    if not _close(d, want_d):
        raise CheckFailed(f"{shown} gave the difference {d:+.4f} but it is {want_d:+.4f}, the mean "
                          "of b minus the mean of a")
    if _close(se, want_se):
        return
    (_, sa), (_, sb) = mean_std(a), mean_std(b)
    pa, pb = _population_std(a), _population_std(b)
    wrong = {
        "population": math.sqrt(pa ** 2 / len(a) + pb ** 2 / len(b)),
        "no_n": math.sqrt(sa ** 2 + sb ** 2),
        "stds_added": sa / math.sqrt(len(a)) + sb / math.sqrt(len(b)),
        "variance": sa ** 2 / len(a) + sb ** 2 / len(b),
        "sqrt_n": math.sqrt(sa ** 2 / math.sqrt(len(a)) + sb ** 2 / math.sqrt(len(b))),
    }
    if _close(se, wrong["population"]):
        raise CheckFailed(f"{shown} gave the error {se:.4f} from standard deviations that divide by "
                          "n; use the sample standard deviations (n - 1), as mean_std returns them")
    if _close(se, wrong["no_n"]):
        raise CheckFailed(f"{shown} gave the error {se:.4f} = sqrt(s_a² + s_b²); divide each variance "
                          "by its own number of results: sqrt(s_a²/n_a + s_b²/n_b)")
    if _close(se, wrong["stds_added"]):
        raise CheckFailed(f"{shown} gave the error {se:.4f}, the two standard errors added; "
                          "uncertainties add as variances: sqrt(s_a²/n_a + s_b²/n_b)")
    if _close(se, wrong["variance"]):
        raise CheckFailed(f"{shown} gave {se:.4f}, the variance of the difference; take its square "
                          "root")
    if _close(se, wrong["sqrt_n"]):
        raise CheckFailed(f"{shown} gave the error {se:.4f}: divide each variance by n, not sqrt(n)")
    raise CheckFailed(f"{shown} gave the standard error {se:.4f} but it is {want_se:.4f}")
