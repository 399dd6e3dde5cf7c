"""Scaling arithmetic: training FLOPs, tokens per parameter, compute-optimal sizes, power laws.

Four small tools for reasoning about how big a model to train on how much data:

- :func:`training_flops`: the cost of training, ``C = 6 N D`` FLOPs for ``N`` parameters and
  ``D`` tokens (2 FLOPs per parameter per token forward, 4 backward; Kaplan et al. 2020). It
  leaves out attention's ``T``-dependent term, which is small while ``n_embd`` is large
  against the context (see :func:`llmcourse.model.flops_per_token` for the fuller count).
- :data:`CHINCHILLA_TOKENS_PER_PARAM`: Hoffmann et al. (2022) found that for a fixed compute budget the loss is lowest when the model sees about 20
  tokens per parameter (their Chinchilla, 70B parameters, saw 1.4T tokens).
- :func:`compute_optimal`: the ``(N, D)`` that spends a budget ``C`` at a given tokens-per-
  parameter ratio ``r``: from ``C = 6 N D`` and ``D = r N``, ``N = sqrt(C / (6 r))``.
- :func:`fit_power_law` (a straight line in log-log space) and :func:`isoflop_minimum` (a
  parabola in ``log N``, the IsoFLOP method of Hoffmann et al.) fit measured points.

Example:
    >>> f"{training_flops(70e9, 1.4e12):.2e}"          # Chinchilla's budget
    '5.88e+23'
    >>> n, d = compute_optimal(5.88e23)
    >>> f"{n:.3g} parameters, {d:.3g} tokens"
    '7e+10 parameters, 1.4e+12 tokens'
    >>> law = fit_power_law([1e6, 1e7, 1e8], [4.0, 2.0, 1.0])
    >>> round(law.exponent, 4), round(law(1e9), 4)
    (-0.301, 0.5)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

__all__ = [
    "CHINCHILLA_TOKENS_PER_PARAM",
    "training_flops",
    "tokens_for_budget",
    "compute_optimal",
    "PowerLaw",
    "fit_power_law",
    "isoflop_minimum",
]

#: Tokens per parameter at the compute-optimal point, as Hoffmann et al. (2022) found it.
CHINCHILLA_TOKENS_PER_PARAM = 20.0


def _positive(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def training_flops(n_params: float, n_tokens: float) -> float:
    """FLOPs to train ``n_params`` parameters on ``n_tokens`` tokens: ``6 * N * D``.

    >>> training_flops(1e6, 2e7)
    120000000000000.0
    """
    return 6.0 * _positive(n_params, "n_params") * _positive(n_tokens, "n_tokens")


def tokens_for_budget(flops: float, n_params: float) -> float:
    """How many tokens a budget of ``flops`` buys for a model of ``n_params``: ``C / (6 N)``.

    A smaller model sees more tokens for the same compute:

    >>> tokens_for_budget(1.2e14, 1e6), tokens_for_budget(1.2e14, 2e6)
    (20000000.0, 10000000.0)
    """
    return _positive(flops, "flops") / (6.0 * _positive(n_params, "n_params"))


def compute_optimal(flops: float,
                    tokens_per_param: float = CHINCHILLA_TOKENS_PER_PARAM) -> tuple[float, float]:
    """The ``(n_params, n_tokens)`` that spend ``flops`` at ``tokens_per_param`` tokens each.

    From ``C = 6 N D`` and ``D = r N``: ``N = sqrt(C / (6 r))`` and ``D = r N``.

    >>> n, d = compute_optimal(1.2e14)
    >>> round(n), round(d), round(d / n)
    (1000000, 20000000, 20)
    """
    c = _positive(flops, "flops")
    r = _positive(tokens_per_param, "tokens_per_param")
    n = math.sqrt(c / (6.0 * r))
    return n, r * n


@dataclass(frozen=True)
class PowerLaw:
    """``y = coefficient * x ** exponent``, a straight line in log-log space.

    Attributes:
        coefficient: the value at ``x = 1``.
        exponent: the slope of ``log y`` against ``log x`` (negative for a loss that falls).
        r2: the fraction of the variance of ``log y`` the line explains (1.0 = a perfect fit).
    """

    coefficient: float
    exponent: float
    r2: float = 1.0

    def __call__(self, x: float) -> float:
        return self.coefficient * _positive(x, "x") ** self.exponent

    def solve(self, y: float) -> float:
        """The ``x`` at which the law reaches ``y``.

        >>> round(PowerLaw(10.0, -0.5).solve(1.0))
        100
        """
        if self.exponent == 0:
            raise ValueError("a power law with exponent 0 is flat: it reaches one value only")
        return (_positive(y, "y") / self.coefficient) ** (1.0 / self.exponent)

    def __str__(self) -> str:
        return f"{self.coefficient:.4g} * x^{self.exponent:.3f} (R^2 {self.r2:.3f})"


def _as_positive_list(values: Sequence[float], name: str) -> list[float]:
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a sequence of numbers, got {values!r}") from None
    if any(not math.isfinite(v) or v <= 0 for v in out):
        raise ValueError(f"{name} must hold positive finite numbers (they are fitted in log "
                         f"space), got {out}")
    return out


def fit_power_law(x: Sequence[float], y: Sequence[float]) -> PowerLaw:
    """Least-squares fit of ``log y = log a + b log x``; returns ``PowerLaw(a, b)``.

    Fitting the straight line in log space weights every point by its *relative* error, which
    is what a law spanning orders of magnitude needs (a fit in linear space would be decided
    by the largest ``y`` values alone).

    Raises:
        ValueError: fewer than two points, points that are not positive, or ``x`` all equal.

    >>> law = fit_power_law([10, 100, 1000], [5.0, 2.5, 1.25])
    >>> round(law.coefficient, 3), round(law.exponent, 4), round(law.r2, 4)
    (10.0, -0.301, 1.0)
    """
    xs, ys = _as_positive_list(x, "x"), _as_positive_list(y, "y")
    if len(xs) != len(ys):
        raise ValueError(f"x and y must have the same length, got {len(xs)} and {len(ys)}")
    if len(xs) < 2:
        raise ValueError("a power-law fit needs at least two points")
    lx, ly = [math.log(v) for v in xs], [math.log(v) for v in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    sxx = sum((a - mx) ** 2 for a in lx)
    if sxx == 0:
        raise ValueError("all x values are equal: a slope cannot be fitted")
    slope = sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sxx
    intercept = my - slope * mx
    ss_tot = sum((b - my) ** 2 for b in ly)
    ss_res = sum((b - (intercept + slope * a)) ** 2 for a, b in zip(lx, ly))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    return PowerLaw(math.exp(intercept), slope, r2)


def isoflop_minimum(n_params: Sequence[float], losses: Sequence[float]) -> float:
    """The model size at the bottom of an IsoFLOP curve.

    Runs that spent the *same* compute on models of different sizes give a U-shaped curve of
    loss against ``log N``: too small a model cannot learn enough, too large a one sees too few
    tokens. A parabola ``a (log N)^2 + b log N + c`` fitted by least squares has its minimum at
    ``log N = -b / (2a)``; this returns that ``N``. Hoffmann et al. (2022) find their
    compute-optimal sizes this way.

    Raises:
        ValueError: fewer than three points, or points that do not curve upwards around a
            minimum inside the sizes tried (the budget's best size is outside them: add larger
            or smaller ones).

    >>> sizes = [1e5, 1e6, 1e7]
    >>> losses = [2.0 + 0.1 * (math.log10(n) - 6.3) ** 2 for n in sizes]
    >>> f"{isoflop_minimum(sizes, losses):.3g}"
    '2e+06'
    """
    xs, ys = _as_positive_list(n_params, "n_params"), [float(v) for v in losses]
    if len(xs) != len(ys):
        raise ValueError(f"n_params and losses must have the same length, got {len(xs)} and "
                         f"{len(ys)}")
    if len(xs) < 3:
        raise ValueError("a parabola needs at least three model sizes")
    if len(set(xs)) < 3:
        raise ValueError("the model sizes must hold at least three different values")
    t = [math.log(v) for v in xs]
    # Normal equations of the least-squares parabola, centred for conditioning.
    m = sum(t) / len(t)
    u = [v - m for v in t]
    s = [sum(v ** k for v in u) for k in range(5)]
    r = [sum(y * v ** k for v, y in zip(u, ys)) for k in range(3)]
    mat = [[s[4], s[3], s[2]], [s[3], s[2], s[1]], [s[2], s[1], s[0]]]
    a, b, _ = _solve3(mat, [r[2], r[1], r[0]])
    if not a > 0:
        raise ValueError("the losses do not curve upwards around a minimum: the best size for "
                         "this budget lies outside the sizes tried; add smaller or larger models")
    best = m - b / (2.0 * a)
    if not min(t) <= best <= max(t):
        raise ValueError(f"the fitted minimum (N = {math.exp(best):.3g}) lies outside the sizes "
                         f"tried ({min(xs):.3g} to {max(xs):.3g}): the losses do not turn up on "
                         "both sides; add smaller or larger models")
    return math.exp(best)


def _solve3(mat: list[list[float]], rhs: list[float]) -> list[float]:
    """Solve a 3x3 linear system by Cramer's rule."""
    def det(m: list[list[float]]) -> float:
        return (m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
                - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
                + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]))
    d = det(mat)
    if d == 0:
        raise ValueError("the model sizes must hold at least three different values")
    out = []
    for col in range(3):
        m = [row[:] for row in mat]
        for i in range(3):
            m[i][col] = rhs[i]
        out.append(det(m) / d)
    return out
