"""Shared machinery for the lessons' exercise checks (``llmcourse.checks.dayNN``).

A check runs the learner's code (or inspects a value they built), prints exactly one line and
returns a :class:`Verdict`, true on a pass. It never raises, so a check cell never stops a
notebook, and the verdict shows nothing as a cell's result, so the cell shows only the line:

- ``✅ <exercise>: passed``
- ``⏳ <exercise>: not done yet — ...`` while the exercise is still a stub (the stub raised
  :class:`NotImplementedError`, or the value the learner should fill in is still ``None``);
- ``❌ <exercise>: <hint>`` when an assertion in the check failed; the hint says what was
  wrong and how to fix it;
- ``❌ <exercise>: your code raised <Type>: <message>`` when the learner's code failed in its
  own way (plus the check's general hint, if it has one).

Writing a check::

    >>> from llmcourse.checks._core import check, assert_close, require
    >>> @check("softmax")
    ... def check_softmax(softmax):
    ...     import torch
    ...     x = torch.tensor([[1.0, 2.0, 3.0]])
    ...     assert_close(softmax(x), torch.softmax(x, dim=-1), "softmax(x)")
    >>> import torch
    >>> ok = check_softmax(lambda x: torch.softmax(x, dim=-1))
    ✅ softmax: passed
    >>> bool(ok)
    True
    >>> def stub(x):
    ...     raise NotImplementedError
    >>> bool(check_softmax(stub))
    ⏳ softmax: not done yet — write your code in the cell above, run it, then run this check again
    False

The comparison helpers (:func:`assert_close`, :func:`assert_equal`, :func:`assert_shape`,
:func:`assert_type`) raise :class:`CheckFailed` with a readable hint, e.g. ``softmax(x) has
shape (3, 1) but should have shape (1, 3)``.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Mapping, Optional, Sequence

__all__ = [
    "CheckFailed",
    "Verdict",
    "NOT_DONE",
    "run_check",
    "check",
    "require",
    "assert_close",
    "assert_equal",
    "assert_shape",
    "assert_type",
    "describe",
    "first_difference",
    "to_numpy",
]

NOT_DONE = "not done yet — write your code in the cell above, run it, then run this check again"
"""What a check prints after the exercise name while the exercise is still a stub."""


class CheckFailed(AssertionError):
    """A check found a mistake; its message is the hint shown to the learner.

    Any ``AssertionError`` works the same way inside a check; this subclass only makes the
    intent explicit: ``raise CheckFailed("encode('') should return [], got None")``.
    """


def _one_line(text: str) -> str:
    """Collapse a message onto one line so that every check prints exactly one line."""
    return " ".join(str(text).split())


class Verdict:
    """What a check returns: true on a pass, and invisible as a notebook cell's result.

    The check has already printed its one line; a bare ``True`` or ``False`` echoed under it
    would only add noise, so in Jupyter the verdict displays nothing. Scripts read it with
    ``bool(verdict)``, ``if verdict:`` or ``verdict.passed``; ``verdict.line`` is the line printed.

    Example::

        >>> v = Verdict("add", True, "✅ add: passed")
        >>> bool(v), v.passed, v == True
        (True, True, True)
        >>> v
        Verdict('add', passed=True)
    """

    __slots__ = ("exercise", "passed", "line")

    def __init__(self, exercise: str, passed: bool, line: str) -> None:
        self.exercise = exercise
        self.passed = bool(passed)
        self.line = line

    def __bool__(self) -> bool:
        return self.passed

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Verdict):
            return (self.exercise, self.passed) == (other.exercise, other.passed)
        if isinstance(other, bool):
            return self.passed is other
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.exercise, self.passed))

    def __repr__(self) -> str:
        return f"Verdict({self.exercise!r}, passed={self.passed})"

    def _ipython_display_(self) -> None:
        """Show nothing: the check's printed line is the whole output of its cell."""


def _verdict(exercise: str, passed: bool, line: str) -> Verdict:
    print(line)
    return Verdict(exercise, passed, line)


def run_check(exercise: str, body: Callable[[], Any], hint: Optional[str] = None) -> Verdict:
    """Run ``body`` and print one verdict line for ``exercise``; never raise.

    Args:
        exercise: the exercise's short name as the learner sees it (``"encode/decode"``).
        body: a function of no arguments that raises :class:`NotImplementedError` while the
            exercise is a stub, an ``AssertionError`` (e.g. :class:`CheckFailed`) with a hint
            when the answer is wrong, and returns normally when it is right.
        hint: a general hint appended when the learner's code raises an unexpected exception.

    Returns:
        a :class:`Verdict`: true if the check passed, false otherwise.

    Example::

        >>> bool(run_check("add", lambda: None))
        ✅ add: passed
        True
        >>> def body():
        ...     assert 1 + 1 == 3, "1 + 1 should be 3 in this odd world"
        >>> bool(run_check("add", body))
        ❌ add: 1 + 1 should be 3 in this odd world
        False
    """
    try:
        body()
    except NotImplementedError:
        return _verdict(exercise, False, f"⏳ {exercise}: {NOT_DONE}")
    except AssertionError as exc:
        message = _one_line(str(exc)) or "the result is not right (the check gave no detail)"
        return _verdict(exercise, False, f"❌ {exercise}: {message}")
    except KeyboardInterrupt:  # let the learner stop a long-running check
        raise
    except BaseException as exc:  # noqa: BLE001 - a check must never raise
        message = f"your code raised {type(exc).__name__}: {_one_line(str(exc))}".rstrip(": ")
        if hint:
            message += f" (hint: {_one_line(hint)})"
        return _verdict(exercise, False, f"❌ {exercise}: {message}")
    return _verdict(exercise, True, f"✅ {exercise}: passed")


def check(exercise: str, hint: Optional[str] = None) -> Callable[[Callable[..., Any]], Callable[..., Verdict]]:
    """Decorator form of :func:`run_check`.

    The decorated function takes the learner's objects as arguments and raises like a
    ``body`` of :func:`run_check`; the wrapper prints the verdict line and returns a
    :class:`Verdict`.

    Example::

        >>> @check("double")
        ... def check_double(double):
        ...     assert_equal(double(21), 42, "double(21)")
        >>> bool(check_double(lambda x: 2 * x))
        ✅ double: passed
        True
        >>> bool(check_double(lambda x: x + 2))
        ❌ double: double(21) should be 42, got 23
        False
    """

    def decorate(fn: Callable[..., Any]) -> Callable[..., Verdict]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Verdict:
            return run_check(exercise, lambda: fn(*args, **kwargs), hint=hint)

        return wrapper

    return decorate


def require(value: Any, name: str) -> Any:
    """Treat a still-``None`` fill-in as "not done yet"; return ``value`` otherwise.

    Module-level stubs set a harmless default (``vocab_size = None  # TODO``); a check calls
    ``require(vocab_size, "vocab_size")`` first so that the learner sees "not done yet"
    instead of a confusing type error.
    """
    if value is None:
        raise NotImplementedError(f"{name} is still None")
    return value


# ---- describing values ----------------------------------------------------------------------


def _is_torch_tensor(x: Any) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def _is_numpy_array(x: Any) -> bool:
    return type(x).__module__ == "numpy" and hasattr(x, "shape")


def describe(value: Any, limit: int = 60) -> str:
    """A short description of ``value`` for a hint: type, shape and dtype for arrays.

    Example::

        >>> describe([1, 2, 3])
        '[1, 2, 3]'
        >>> import numpy as np
        >>> describe(np.zeros((2, 3), dtype=np.float32))
        'a numpy array of shape (2, 3) and dtype float32'
    """
    if _is_torch_tensor(value):
        return f"a tensor of shape {tuple(value.shape)} and dtype {str(value.dtype).replace('torch.', '')}"
    if _is_numpy_array(value):
        return f"a numpy array of shape {tuple(value.shape)} and dtype {value.dtype}"
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def to_numpy(value: Any, name: str = "value") -> Any:
    """Convert a tensor, array, number or nested list to a numpy array (on the CPU).

    Raises:
        CheckFailed: when ``value`` cannot be read as numbers (the hint names ``name``).
    """
    import numpy as np

    if _is_torch_tensor(value):
        tensor = value.detach().cpu()
        if tensor.is_floating_point() and tensor.dtype.itemsize < 4:  # bf16/fp16: numpy lacks bf16
            tensor = tensor.float()
        return tensor.numpy()
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise CheckFailed(f"{name} should be numbers (a tensor or array), got {describe(value)}") from exc
    if array.dtype == object:
        raise CheckFailed(f"{name} should be numbers (a tensor or array), got {describe(value)}")
    return array


def first_difference(got: Sequence[Any], expected: Sequence[Any]) -> str:
    """Describe where two sequences first differ, e.g. ``"at index 3: got 7, expected 5"``.

    Example::

        >>> first_difference([1, 2, 3], [1, 2, 4])
        'at index 2: got 3, expected 4'
        >>> first_difference([1, 2], [1, 2, 3])
        'it has 2 items, expected 3 (the first 2 agree)'
    """
    got_list, expected_list = list(got), list(expected)
    for i, (g, e) in enumerate(zip(got_list, expected_list)):
        if g != e:
            return f"at index {i}: got {describe(g)}, expected {describe(e)}"
    if len(got_list) != len(expected_list):
        n = min(len(got_list), len(expected_list))
        return f"it has {len(got_list)} items, expected {len(expected_list)} (the first {n} agree)"
    return "they are equal"


# ---- assertions with readable hints ---------------------------------------------------------


def assert_type(value: Any, expected: type | tuple[type, ...], name: str) -> None:
    """Fail with a hint unless ``isinstance(value, expected)``.

    ``None`` gets its own hint, as it usually means a missing ``return``.
    """
    if isinstance(value, expected):
        return
    names = (
        " or ".join(t.__name__ for t in expected) if isinstance(expected, tuple) else expected.__name__
    )
    if value is None:
        raise CheckFailed(f"{name} is None; did you forget a `return`? It should be a {names}")
    raise CheckFailed(f"{name} should be a {names}, got {type(value).__name__} ({describe(value)})")


def _shape_of(value: Any) -> tuple[int, ...]:
    if _is_torch_tensor(value) or _is_numpy_array(value):
        return tuple(int(d) for d in value.shape)
    return tuple(to_numpy(value).shape)


def assert_shape(value: Any, expected: Sequence[Optional[int]], name: str) -> None:
    """Fail with "<name> has shape (a, b) but should have shape (c, d)" on a mismatch.

    ``None`` in ``expected`` matches any size on that dimension.

    Example::

        >>> import numpy as np
        >>> assert_shape(np.zeros((4, 8)), (None, 8), "x")
        >>> assert_shape(np.zeros((8, 4)), (4, 8), "x")
        Traceback (most recent call last):
        ...
        llmcourse.checks._core.CheckFailed: x has shape (8, 4) but should have shape (4, 8); the dimensions look swapped (a transpose?)
    """
    if value is None:
        raise CheckFailed(f"{name} is None; did you forget a `return`?")
    got = _shape_of(value)
    want = tuple(expected)
    shown = "(" + ", ".join("any" if d is None else str(d) for d in want) + ("," if len(want) == 1 else "") + ")"
    if len(got) == len(want) and all(w is None or g == w for g, w in zip(got, want)):
        return
    message = f"{name} has shape {got} but should have shape {shown}"
    if len(got) == len(want) and None not in want and sorted(got) == sorted(want):
        message += "; the dimensions look swapped (a transpose?)"
    elif len(got) != len(want):
        message += f"; it has {len(got)} dimensions instead of {len(want)}"
    raise CheckFailed(message)


def assert_close(
    got: Any,
    expected: Any,
    name: str,
    *,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    check_shape: bool = True,
) -> None:
    """Fail with a readable hint unless ``got`` is numerically close to ``expected``.

    Works for torch tensors (any device, any float dtype), numpy arrays, Python numbers and
    nested lists. The hint names the first position that differs and the largest difference.

    Example::

        >>> assert_close([0.1 + 0.2], [0.3], "sum")
        >>> assert_close([1.0, 2.0], [1.0, 2.5], "scores")
        Traceback (most recent call last):
        ...
        llmcourse.checks._core.CheckFailed: scores differs from the expected value at index (1,): got 2.0, expected 2.5 (largest difference 0.5; tolerance atol=1e-05, rtol=0.0001)
    """
    import numpy as np

    if got is None:
        raise CheckFailed(f"{name} is None; did you forget a `return`?")
    want = to_numpy(expected, "the expected value")
    have = to_numpy(got, name)
    if check_shape:
        assert_shape(have, want.shape, name)
    elif have.size != want.size:
        raise CheckFailed(f"{name} has {have.size} values but should have {want.size}")
    have = have.reshape(want.shape).astype(np.float64)
    want = want.astype(np.float64)
    if np.isnan(have).any() and not np.isnan(want).any():
        index = tuple(int(i) for i in np.argwhere(np.isnan(have))[0])
        raise CheckFailed(f"{name} contains NaN (first at index {index}); look for a division by zero or log(0)")
    close = np.isclose(have, want, atol=atol, rtol=rtol, equal_nan=True)
    if close.all():
        return
    bad = tuple(int(i) for i in np.argwhere(~close)[0])
    diff = np.abs(have - want)
    largest = float(np.nanmax(np.where(np.isnan(diff), 0.0, diff)))
    where = f" at index {bad}" if have.ndim else ""
    raise CheckFailed(
        f"{name} differs from the expected value{where}: got {_fmt(have[bad])}, expected "
        f"{_fmt(want[bad])} (largest difference {_fmt(largest)}; tolerance atol={atol:g}, rtol={rtol:g})"
    )


def _fmt(x: Any) -> str:
    value = float(x)
    if math.isnan(value) or math.isinf(value):
        return str(value)
    return f"{value:.6g}" if value != int(value) or abs(value) >= 1e15 else f"{value:.1f}"


def assert_equal(got: Any, expected: Any, name: str) -> None:
    """Fail with a readable hint unless ``got == expected`` (exactly).

    Sequences report their first differing index, mappings a missing, extra or wrong key.

    Example::

        >>> assert_equal([1, 2, 3], [1, 2, 3], "ids")
        >>> assert_equal({"a": 1}, {"a": 2}, "counts")
        Traceback (most recent call last):
        ...
        llmcourse.checks._core.CheckFailed: counts['a'] should be 2, got 1
    """
    if _is_torch_tensor(got) or _is_numpy_array(got):
        got = to_numpy(got, name).tolist()
    if _is_torch_tensor(expected) or _is_numpy_array(expected):
        expected = to_numpy(expected).tolist()
    if got == expected:
        return
    if got is None:
        raise CheckFailed(f"{name} is None; did you forget a `return`? Expected {describe(expected)}")
    if isinstance(expected, Mapping):
        if not isinstance(got, Mapping):
            raise CheckFailed(f"{name} should be a dict, got {type(got).__name__} ({describe(got)})")
        missing = [k for k in expected if k not in got]
        if missing:
            raise CheckFailed(f"{name} misses the key {missing[0]!r} ({len(missing)} missing in all)")
        extra = [k for k in got if k not in expected]
        if extra:
            raise CheckFailed(f"{name} has an unexpected key {extra[0]!r} ({len(extra)} extra in all)")
        for key in expected:
            if got[key] != expected[key]:
                raise CheckFailed(
                    f"{name}[{key!r}] should be {describe(expected[key])}, got {describe(got[key])}"
                )
    if isinstance(expected, (list, tuple)) and isinstance(got, (list, tuple)):
        raise CheckFailed(f"{name} is not right: {first_difference(got, expected)}")
    raise CheckFailed(f"{name} should be {describe(expected)}, got {describe(got)}")
