"""Tests of llmcourse.scaling: 6ND, tokens per parameter, compute-optimal size, fits."""

from __future__ import annotations

import math

import pytest

import llmcourse.scaling
from llmcourse.scaling import (CHINCHILLA_TOKENS_PER_PARAM, PowerLaw, compute_optimal, fit_power_law, isoflop_minimum,
                               tokens_for_budget, training_flops)


def test_training_flops_is_six_n_d() -> None:
    assert training_flops(3, 7) == 126.0
    # Chinchilla: 70B parameters on 1.4T tokens is about 5.9e23 FLOPs (Hoffmann et al. 2022).
    assert training_flops(70e9, 1.4e12) == pytest.approx(5.88e23)


def test_tokens_for_budget_inverts_training_flops() -> None:
    c = training_flops(2.5e6, 4e7)
    assert tokens_for_budget(c, 2.5e6) == pytest.approx(4e7)
    assert tokens_for_budget(c, 5e6) == pytest.approx(2e7)   # twice the model, half the tokens


def test_chinchilla_ratio() -> None:
    assert CHINCHILLA_TOKENS_PER_PARAM == 20
    n, d = compute_optimal(training_flops(70e9, 1.4e12))   # Chinchilla's own budget and size
    assert n == pytest.approx(70e9) and d == pytest.approx(1.4e12)
    assert not hasattr(llmcourse.scaling, "chinchilla_tokens")   # D = 20 N needs no function


@pytest.mark.parametrize("budget", [1e12, 3.7e18, 5.88e23])
@pytest.mark.parametrize("ratio", [1.0, 20.0, 200.0])
def test_compute_optimal_spends_the_budget_at_the_ratio(budget: float, ratio: float) -> None:
    n, d = compute_optimal(budget, tokens_per_param=ratio)
    assert training_flops(n, d) == pytest.approx(budget)
    assert d / n == pytest.approx(ratio)


def test_compute_optimal_scales_as_square_root() -> None:
    n1, d1 = compute_optimal(1e20)
    n4, d4 = compute_optimal(4e20)
    assert n4 / n1 == pytest.approx(2.0) and d4 / d1 == pytest.approx(2.0)


@pytest.mark.parametrize("bad", [0, -1.0, math.inf, math.nan])
def test_bad_inputs_are_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        training_flops(bad, 10)
    with pytest.raises(ValueError, match="positive"):
        compute_optimal(bad)
    with pytest.raises(ValueError, match="positive"):
        tokens_for_budget(1e12, bad)


def test_non_numbers_are_refused() -> None:
    with pytest.raises(TypeError, match="number"):
        training_flops("1e6", 10)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="number"):
        compute_optimal(True)  # type: ignore[arg-type]


def test_fit_power_law_recovers_known_law() -> None:
    xs = [1e4, 3e4, 1e5, 3e5, 1e6]
    ys = [3.2 * x ** -0.076 for x in xs]
    law = fit_power_law(xs, ys)
    assert law.coefficient == pytest.approx(3.2)
    assert law.exponent == pytest.approx(-0.076)
    assert law.r2 == pytest.approx(1.0)
    assert law(2e6) == pytest.approx(3.2 * 2e6 ** -0.076)
    assert law.solve(law(7e5)) == pytest.approx(7e5)


def test_fit_power_law_is_least_squares_in_log_space() -> None:
    # Noisy points: the slope must equal numpy's degree-1 polyfit of the logs.
    np = pytest.importorskip("numpy")
    xs = [1.0, 2.0, 4.0, 8.0, 16.0]
    ys = [10.0, 7.5, 4.9, 4.1, 2.4]
    law = fit_power_law(xs, ys)
    slope, intercept = np.polyfit(np.log(xs), np.log(ys), 1)
    assert law.exponent == pytest.approx(slope)
    assert law.coefficient == pytest.approx(math.exp(intercept))
    assert 0.9 < law.r2 < 1.0


def test_fit_power_law_refusals() -> None:
    with pytest.raises(ValueError, match="at least two"):
        fit_power_law([1.0], [2.0])
    with pytest.raises(ValueError, match="same length"):
        fit_power_law([1.0, 2.0], [2.0])
    with pytest.raises(ValueError, match="positive"):
        fit_power_law([1.0, 2.0], [2.0, 0.0])
    with pytest.raises(ValueError, match="equal"):
        fit_power_law([3.0, 3.0], [2.0, 1.0])


def test_power_law_str_and_flat_solve() -> None:
    assert str(PowerLaw(2.0, -0.5, 0.99)) == "2 * x^-0.500 (R^2 0.990)"
    with pytest.raises(ValueError, match="flat"):
        PowerLaw(2.0, 0.0).solve(2.0)


def test_isoflop_minimum_finds_the_bottom() -> None:
    sizes = [2e4, 5e4, 1e5, 2e5, 5e5]
    best = 1.3e5
    losses = [1.8 + 0.2 * (math.log(n) - math.log(best)) ** 2 for n in sizes]
    assert isoflop_minimum(sizes, losses) == pytest.approx(best, rel=1e-6)
    # the order of the points does not matter
    assert isoflop_minimum(sizes[::-1], losses[::-1]) == pytest.approx(best, rel=1e-6)


def test_isoflop_minimum_refusals() -> None:
    with pytest.raises(ValueError, match="three"):
        isoflop_minimum([1e5, 2e5], [2.0, 1.9])
    with pytest.raises(ValueError, match="outside the sizes tried"):
        isoflop_minimum([1e5, 2e5, 4e5], [2.0, 1.8, 1.7])   # still falling: no bottom
    with pytest.raises(ValueError, match="three different"):
        isoflop_minimum([1e5, 1e5, 2e5], [2.0, 1.8, 1.7])
