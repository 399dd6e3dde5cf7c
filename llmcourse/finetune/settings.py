"""The one rule for the scalar settings of fine-tuning (LoRA's ``alpha``, ``T``, ``beta``).

A setting such as a temperature or a scale must be a real number, finite and above zero: ``inf``
or ``nan`` would not fail at once, they would turn every loss into NaN a few steps later.

>>> is_positive_finite(2), is_positive_finite(0.5), is_positive_finite(float("inf"))
(True, True, False)
>>> is_positive_finite(float("nan")), is_positive_finite(0), is_positive_finite(True)
(False, False, False)
"""

from __future__ import annotations

import math

__all__ = ["is_positive_finite"]


def is_positive_finite(x: object) -> bool:
    """True for a real number (not a bool) that is finite and ``> 0``; False for anything else."""
    if isinstance(x, bool):
        return False
    try:
        value = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return math.isfinite(value) and value > 0
