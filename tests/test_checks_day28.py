"""The day-28 checks pass the lesson's solutions, reject every mistake of their tables, refuse the
course's own references, and say "not done yet" for stubs."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from llmcourse import sweep
from llmcourse.checks import day28
from checklines import fails, mistake_params, one_line, passes, rejects, stub


# ---- the lesson's solutions (solutions/day28_experiments_with_size_and_context.md) --------------


def mean_std(values):
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


def expand_grid(grid):
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def difference_with_error(a, b):
    mean_a, std_a = mean_std(a)
    mean_b, std_b = mean_std(b)
    return mean_b - mean_a, math.sqrt(std_a ** 2 / len(a) + std_b ** 2 / len(b))


CHECKS = [
    (day28.check_mean_std, mean_std, sweep.mean_std),
    (day28.check_expand_grid, expand_grid, sweep.expand_settings),
    (day28.check_difference_with_error, difference_with_error, sweep.difference_with_error),
]


@pytest.mark.parametrize("check_fn, mistake", mistake_params(day28))
def test_mistake_rejected(check_fn, mistake, capsys):
    rejects(capsys, check_fn, mistake)


@pytest.mark.parametrize("check_fn, solution, reference", CHECKS)
def test_solution_passes(check_fn, solution, reference, capsys):
    passes(capsys, check_fn, solution)


@pytest.mark.parametrize("check_fn, solution, reference", CHECKS)
def test_package_function_is_refused(check_fn, solution, reference, capsys):
    fails(capsys, check_fn, reference, "the course's own reference")


@pytest.mark.parametrize("check_fn, solution, reference", CHECKS)
def test_stub_is_not_done(check_fn, solution, reference, capsys):
    fails(capsys, check_fn, stub, "not done yet")


@pytest.mark.parametrize("check_fn, solution, reference", CHECKS)
def test_never_raises(check_fn, solution, reference, capsys):
    for odd in (lambda *a: 1 / 0, "not a function", lambda *a: None):
        assert bool(check_fn(odd)) is False
        assert one_line(capsys).startswith("❌")


# ---- other correct answers -------------------------------------------------------------------


@pytest.mark.parametrize("fn", [
    lambda v: (float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0),
    lambda v: (torch.tensor(v, dtype=torch.float64).mean(),
               torch.tensor(v, dtype=torch.float64).std() if len(v) > 1 else 0.0),
    lambda v: (torch.tensor(v).mean(), torch.tensor(v).std() if len(v) > 1 else 0.0),
])
def test_mean_std_variants_pass(fn, capsys):
    passes(capsys, day28.check_mean_std, fn)


def test_expand_grid_loop_variant_passes(capsys):
    def recursive(grid):
        if not grid:
            return [{}]
        (first, values), rest = next(iter(grid.items())), dict(list(grid.items())[1:])
        return [{first: v, **r} for v in values for r in recursive(rest)]
    passes(capsys, day28.check_expand_grid, recursive)


def test_difference_variant_passes(capsys):
    def with_numpy(a, b):
        va = np.var(a, ddof=1) if len(a) > 1 else 0.0
        vb = np.var(b, ddof=1) if len(b) > 1 else 0.0
        return float(np.mean(b) - np.mean(a)), float(np.sqrt(va / len(a) + vb / len(b)))
    passes(capsys, day28.check_difference_with_error, with_numpy)


# ---- messages --------------------------------------------------------------------------------


def test_difference_names_an_unfinished_mean_std(capsys):
    def uses_stubbed_mean_std(a, b):
        def mean_std(values):
            raise NotImplementedError
        mean_std(a)
    fails(capsys, day28.check_difference_with_error, uses_stubbed_mean_std,
          "finish exercise 1 first")


def test_generic_mismatch_names_the_input(capsys):
    fails(capsys, day28.check_mean_std, lambda v: (sum(v) / len(v), 0.5),
          "mean_std([3.1, 2.7, 2.9, 3.4])")


def test_none_in_the_pair_is_named(capsys):
    fails(capsys, day28.check_mean_std, lambda v: (sum(v) / len(v), None), "std of mean_std")


# ---- hand-worked values ----------------------------------------------------------------------


def test_reference_values_by_hand():
    m, s = sweep.mean_std([2.0, 2.2, 2.4])
    assert m == pytest.approx(2.2) and s == pytest.approx(0.2)
    assert sweep.mean_std([2.5]) == (2.5, 0.0)
    d, se = sweep.difference_with_error([2.0, 2.2, 2.4], [1.9, 2.0, 2.1])
    assert d == pytest.approx(-0.2) and se == pytest.approx(math.sqrt(0.04 / 3 + 0.01 / 3))
    assert day28._grid({}) == [{}]
    assert day28._grid({"a": [1, 2], "b": [3]}) == [{"a": 1, "b": 3}, {"a": 2, "b": 3}]
    assert day28._grid({"a": [1], "b": []}) == []


def test_expand_grid_widening_loop_passes(capsys):
    def widening(grid):                          # one key at a time, each setting a new dict
        settings = [{}]
        for key, values in grid.items():
            settings = [{**s, key: v} for s in settings for v in values]
        return settings
    passes(capsys, day28.check_expand_grid, widening)


def test_expand_grid_that_empties_the_grid_is_named(capsys):
    def pops(grid):                              # right settings, but the caller's grid is emptied
        if not grid:
            return [{}]
        key = list(grid)[0]
        values = grid.pop(key)
        return [{key: v, **r} for v in values for r in pops(grid)]
    fails(capsys, day28.check_expand_grid, pops, "changed the grid it was given")


def test_difference_sign_when_b_is_higher():
    # by hand: mean([1.75, 1.5]) = 1.625, mean([2.0, 2.5, 2.25]) = 2.25, difference +0.625
    d, se = difference_with_error([1.75, 1.5], [2.0, 2.5, 2.25])
    assert d == pytest.approx(0.625)
    assert se == pytest.approx(math.sqrt(0.03125 / 2 + 0.0625 / 3))
