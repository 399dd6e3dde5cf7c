"""Numeric tolerance for the notebook regression tests: a pytest plugin beside nbval.

nbval compares a re-run cell's text output with the stored one character for character. That
is right for token ids, shapes, counts and sampled text, but not for the last printed digit of
a loss after hundreds of optimizer steps: matmul and reduction kernels differ in round-off
between CPUs (AVX-512 with or without AMX, AVX2, none) and thread counts, and so do the digits.

The policy (CONTRIBUTING.md, "Outputs are regression tests"):

- integers are compared exactly (token ids, counts, shapes, steps);
- every other text is compared exactly, except that the spaces in front of a number may
  differ (a tensor pads its columns to the widest number);
- a decimal number (``2.4468``, ``1.5e-03``) may differ from the stored one by 1% of its size
  or by two units of its last printed digit, whichever is larger: ``2.75`` against ``2.76``
  passes, a loss that moves from ``2.44`` to ``2.60`` fails.

Round-off itself is never printed as a number (``tools.nb check`` refuses outputs that look
like one): it is printed as a statement, ``max |difference| < 1e-5: True``.

Use: ``pytest --nbval -p tools.nbtolerance ...`` (``tools/test_notebooks.sh`` does). The plugin
wraps nbval's ``IPyNbCell.compare_outputs``: before nbval compares, each fresh text output that
agrees with the stored one within the tolerance is replaced by the stored text, so nbval sees
them equal; anything else reaches nbval unchanged and fails with its usual diff.

Example::

    >>> reconcile("step 100 loss 2.75", "step 100 loss 2.76")
    True
    >>> reconcile("step 100 loss 2.44", "step 100 loss 2.60")
    False
    >>> reconcile("tensor([ 0.1000, -0.2000])", "tensor([-0.0001, -0.2000])")
    False
    >>> reconcile("shape (4, 8)", "shape (4, 9)")
    False
"""

from __future__ import annotations

import copy
import math
import re
from typing import Any

RTOL = 0.01
"""Relative tolerance for decimal numbers (1% of the larger of the two)."""

ULPS = 2
"""Absolute tolerance for decimal numbers, in units of the last printed digit."""

# A number: optional sign (only where it cannot be a binary minus between two names),
# digits with an optional fraction, optional exponent. Digits glued to letters or to an
# underscore (`day10`, `c_attn2`, `0xADDRESS`) belong to a word and stay exact text.
_NUMBER = re.compile(
    r"(?<![\w.])(?P<num>[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)(?![\w])"
)
_SPACES = re.compile(r"[ \t]+")
TEXT_KEYS = ("text", "text/plain", "text/html", "text/markdown")


def _split(text: str) -> tuple[list[str], list[str]]:
    """Split ``text`` into the text between numbers and the numbers.

    Runs of spaces become one space, and the spaces right before a number are dropped.
    """
    parts: list[str] = []
    numbers: list[str] = []
    last = 0
    for match in _NUMBER.finditer(text):
        parts.append(_SPACES.sub(" ", text[last : match.start()]).rstrip(" "))
        numbers.append(match.group("num"))
        last = match.end()
    parts.append(_SPACES.sub(" ", text[last:]))
    return parts, numbers


def _is_integer(token: str) -> bool:
    return not any(c in token for c in ".eE")


def _last_digit(token: str) -> float:
    """The value of one unit in the last printed digit: ``2.75`` -> 0.01, ``1.5e-03`` -> 1e-4."""
    mantissa, _, exponent = token.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 10.0 ** (int(exponent or 0) - decimals)


def numbers_agree(stored: str, fresh: str) -> bool:
    """Whether two printed numbers agree under the policy above.

    Example::

        >>> numbers_agree("2.4468", "2.4471"), numbers_agree("2.44", "2.60")
        (True, False)
        >>> numbers_agree("50257", "50256"), numbers_agree("1.9e-07", "2.4e-07")
        (False, False)
    """
    if _is_integer(stored) or _is_integer(fresh):
        return stored.lstrip("+") == fresh.lstrip("+")
    a, b = float(stored), float(fresh)
    if math.isnan(a) or math.isnan(b) or math.isinf(a) or math.isinf(b):
        return stored == fresh
    tolerance = max(RTOL * max(abs(a), abs(b)), ULPS * max(_last_digit(stored), _last_digit(fresh)))
    return abs(a - b) <= tolerance * (1 + 1e-9)


def reconcile(stored: str, fresh: str) -> bool:
    """Whether ``fresh`` is ``stored`` up to the tolerated numeric differences."""
    if stored == fresh:
        return True
    stored_parts, stored_numbers = _split(stored)
    fresh_parts, fresh_numbers = _split(fresh)
    if stored_parts != fresh_parts or len(stored_numbers) != len(fresh_numbers):
        return False
    return all(numbers_agree(s, f) for s, f in zip(stored_numbers, fresh_numbers))


def _texts(output: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """The (container, key) pairs of an output's comparable text fields."""
    found = []
    if isinstance(output.get("text"), str):
        found.append((output, "text"))
    data = output.get("data")
    if isinstance(data, dict):
        found.extend((data, key) for key in TEXT_KEYS if isinstance(data.get(key), str))
    return found


def tolerate(item: Any, test: list[Any], ref: list[Any]) -> list[Any]:
    """Return a copy of ``test`` where each text output that matches ``ref`` within tolerance
    is replaced by ``ref``'s text.

    nbval hands over both lists with their streams already coalesced (one ``stdout``, one
    ``stderr``), so outputs pair up by position. The texts are compared after nbval's
    sanitizing (``item`` is nbval's cell), so that a changing duration does not hide a
    tolerated loss in the same line.
    """
    test = copy.deepcopy(test)
    for fresh_out, stored_out in zip(test, ref):
        if (fresh_out.get("output_type"), fresh_out.get("name")) != (
            stored_out.get("output_type"),
            stored_out.get("name"),
        ):
            continue
        stored_fields = {key: box[key] for box, key in _texts(stored_out)}
        for box, key in _texts(fresh_out):
            if key not in stored_fields:
                continue
            fresh_text = item.sanitize(box[key])
            stored_text = item.sanitize(stored_fields[key])
            if fresh_text != stored_text and reconcile(stored_text, fresh_text):
                box[key] = stored_fields[key]
    return test


def pytest_configure(config: Any) -> None:
    """Wrap nbval's comparison once nbval is loaded."""
    from nbval.plugin import IPyNbCell

    if getattr(IPyNbCell.compare_outputs, "_llmcourse_tolerant", False):
        return
    original = IPyNbCell.compare_outputs

    def compare_outputs(self: Any, test: Any, ref: Any, skip_compare: Any = None) -> bool:
        return original(self, tolerate(self, test, ref), ref, skip_compare)

    compare_outputs._llmcourse_tolerant = True  # type: ignore[attr-defined]
    IPyNbCell.compare_outputs = compare_outputs
