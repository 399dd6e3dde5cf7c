"""The day-28 checks pass the solutions, catch plausible mistakes, and say "not done yet" for stubs."""

from __future__ import annotations

import itertools
import math
import statistics

import numpy as np
import pytest
import torch

from llmcourse.checks import day28
from llmcourse.sweep import difference_with_error, mean_std
from checklines import one_line, stub


# ---- exercise 1: mean_std ----------------------------------------------------------------------


def good_mean_std(values):
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


def test_mean_std_passes_and_stub(capsys):
    for fn in (good_mean_std, mean_std,
               lambda v: (float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0),
               lambda v: (torch.tensor(v).mean(), torch.tensor(v).std() if len(v) > 1 else 0.0)):
        assert bool(day28.check_mean_std(fn)) is True
        assert "passed" in one_line(capsys)
    assert bool(day28.check_mean_std(stub)) is False
    assert "not done yet" in one_line(capsys)


def test_mean_std_mistakes(capsys):
    assert bool(day28.check_mean_std(lambda v: (statistics.mean(v), statistics.pstdev(v)))) is False
    assert "divides by n" in one_line(capsys)
    assert bool(day28.check_mean_std(lambda v: (statistics.mean(v), statistics.variance(v)))) is False
    assert "the variance" in one_line(capsys)
    assert bool(day28.check_mean_std(
        lambda v: (statistics.mean(v), statistics.stdev(v) / math.sqrt(len(v))))) is False
    assert "standard error" in one_line(capsys)
    assert bool(day28.check_mean_std(lambda v: (statistics.mean(v), statistics.stdev(v)))) is False
    line = one_line(capsys)
    assert "StatisticsError" in line and "mean_std([2.5])" in line and "return 0.0" in line
    assert bool(day28.check_mean_std(lambda v: (sum(v), 0.0))) is False
    assert "divided by how many" in one_line(capsys)
    assert bool(day28.check_mean_std(lambda v: statistics.stdev(v))) is False
    assert "should return a pair (mean, std)" in one_line(capsys)
    assert bool(day28.check_mean_std(lambda v: (statistics.mean(v), None))) is False
    assert "should be a number" in one_line(capsys)


# ---- exercise 2: expand_grid -------------------------------------------------------------------


def good_grid(grid):
    keys = list(grid)
    return [dict(zip(keys, c)) for c in itertools.product(*(grid[k] for k in keys))]


def test_expand_grid_passes_and_stub(capsys):
    assert bool(day28.check_expand_grid(good_grid)) is True
    assert "passed" in one_line(capsys)
    assert bool(day28.check_expand_grid(stub)) is False
    assert "not done yet" in one_line(capsys)


def test_expand_grid_mistakes(capsys):
    assert bool(day28.check_expand_grid(
        lambda g: [dict(zip(g, c)) for c in zip(*g.values())])) is False
    assert "zip" in one_line(capsys)

    def last_slowest(grid):
        keys = list(grid)[::-1]
        return [dict(zip(keys, c)) for c in itertools.product(*(grid[k] for k in keys))]

    assert bool(day28.check_expand_grid(last_slowest)) is False
    assert "the last key changes slowest" in one_line(capsys)
    assert bool(day28.check_expand_grid(lambda g: list(itertools.product(*g.values())))) is False
    assert "list of dicts" in one_line(capsys)
    assert bool(day28.check_expand_grid(lambda g: good_grid(g) if g else [])) is False
    assert "[{}]" in one_line(capsys)
    assert bool(day28.check_expand_grid(lambda g: (dict(zip(g, c)) for c in
                                                   itertools.product(*g.values())))) is False
    assert "return a list" in one_line(capsys)
    assert bool(day28.check_expand_grid(lambda g: None)) is False
    assert "forget the `return`" in one_line(capsys)

    def nested_two(grid):  # only the first two keys looped
        k = list(grid)
        return [{k[0]: a, k[1]: b} for a in grid[k[0]] for b in grid[k[1]]]

    assert bool(day28.check_expand_grid(nested_two)) is False
    assert "every setting holds every key" in one_line(capsys)


# ---- exercise 3: difference_with_error ---------------------------------------------------------


def good_diff(a, b):
    ma, sa = good_mean_std(a)
    mb, sb = good_mean_std(b)
    return mb - ma, math.sqrt(sa ** 2 / len(a) + sb ** 2 / len(b))


def test_difference_passes_stub_and_earlier(capsys):
    for fn in (good_diff, difference_with_error):
        assert bool(day28.check_difference_with_error(fn)) is True
        assert "passed" in one_line(capsys)
    assert bool(day28.check_difference_with_error(stub)) is False
    assert "not done yet" in one_line(capsys)

    def uses_stubbed_mean_std(a, b):
        def mean_std(values):
            raise NotImplementedError
        mean_std(a)

    assert bool(day28.check_difference_with_error(uses_stubbed_mean_std)) is False
    assert "finish exercise 1 first" in one_line(capsys)


def test_difference_mistakes(capsys):
    def with_std(std):
        def fn(a, b):
            return statistics.mean(b) - statistics.mean(a), std(a, b)
        return fn

    s = statistics.stdev
    cases = [
        (lambda a, b: (statistics.mean(a) - statistics.mean(b), good_diff(a, b)[1]), "mean(a) - mean(b)"),
        (lambda a, b: (statistics.mean(b) + statistics.mean(a), 0.1), "the mean of b minus"),
        (with_std(lambda a, b: math.sqrt(statistics.pstdev(a) ** 2 / len(a)
                                         + statistics.pstdev(b) ** 2 / len(b))), "divide by n;"),
        (with_std(lambda a, b: math.sqrt(s(a) ** 2 + s(b) ** 2)), "by its own number"),
        (with_std(lambda a, b: s(a) / math.sqrt(len(a)) + s(b) / math.sqrt(len(b))), "add as variances"),
        (with_std(lambda a, b: s(a) ** 2 / len(a) + s(b) ** 2 / len(b)), "take its square root"),
        (with_std(lambda a, b: math.sqrt(s(a) ** 2 / math.sqrt(len(a))
                                         + s(b) ** 2 / math.sqrt(len(b)))), "not sqrt(n)"),
        (with_std(lambda a, b: 1.0), "but it is"),
        (lambda a, b: good_diff(a, b)[0], "should return a pair"),
    ]
    for fn, words in cases:
        assert bool(day28.check_difference_with_error(fn)) is False
        assert words in one_line(capsys), words


def test_checks_never_raise(capsys):
    for check in (day28.check_mean_std, day28.check_expand_grid, day28.check_difference_with_error):
        assert bool(check(lambda *a: 1 / 0)) is False
        assert "ZeroDivisionError" in one_line(capsys)
        assert bool(check("not a function")) is False
        one_line(capsys)
