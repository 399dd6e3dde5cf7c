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

import contextlib
import functools
import hashlib
import hmac
import inspect
import json
import math
import os
import sys
import time
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence

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
    "kind_of",
    "as_list",
    "as_int_list",
    "as_pair",
    "as_tensor",
    "as_bool",
    "as_int",
    "assert_dtype",
    "layer",
    "EarlierNotDone",
    "needs_earlier",
    "PartNotDone",
    "labelled",
    "call",
    "refuse_reference",
    "Case",
    "Mistake",
    "Raised",
    "same",
    "is_close",
    "as_float",
    "none_hint",
    "compare",
    "outputs_and_grads",
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


def run_check(exercise: str, body: Callable[[], Any], hint: Optional[str] = None, *,
              source: Optional[str] = None) -> Verdict:
    """Run ``body`` and print one verdict line for ``exercise``; never raise.

    The body runs with the random number generators (torch's, Python's, numpy's) and torch's
    grad mode saved and restored around it: running a check never changes what the notebook
    draws or computes afterwards, and a check draws its inputs from seeds of its own.

    Args:
        exercise: the exercise's short name as the learner sees it (``"encode/decode"``).
        body: a function of no arguments that raises :class:`NotImplementedError` while the
            exercise is a stub, an ``AssertionError`` (e.g. :class:`CheckFailed`) with a hint
            when the answer is wrong, and returns normally when it is right.
        hint: a general hint appended when the learner's code raises an unexpected exception.
        source: where the check is written (``"llmcourse.checks.day07"``), for the verdict record.

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
    start = time.process_time()
    try:
        with _isolated():
            body()
    except NotImplementedError:
        line = f"⏳ {exercise}: {NOT_DONE}"
        passed = False
    except EarlierNotDone as exc:  # this exercise may be fine; an earlier one it uses is a stub
        line = f"⏳ {exercise}: {_one_line(str(exc))}"
        passed = False
    except AssertionError as exc:
        if _raised_below_body(exc) and _raised_by_learner(exc):  # their own assert, past call/compare
            message = f"your code raised AssertionError: {_one_line(str(exc))}".rstrip(": ")
        else:
            message = _one_line(str(exc)) or "the result is not right (the check gave no detail)"
        line = f"❌ {exercise}: {message}"
        passed = False
    except KeyboardInterrupt:  # let the learner stop a long-running check
        raise
    except BaseException as exc:  # noqa: BLE001 - a check must never raise
        message = f"your code raised {type(exc).__name__}: {_one_line(str(exc))}".rstrip(": ")
        if hint:
            message += f" (hint: {_one_line(hint)})"
        line = f"❌ {exercise}: {message}"
        passed = False
    else:
        line = f"✅ {exercise}: passed"
        passed = True
    _record(exercise, passed, line, time.process_time() - start, source)
    return _verdict(exercise, passed, line)


@contextlib.contextmanager
def _isolated() -> Iterator[None]:
    """Save and restore the random generators and torch's grad mode around a check."""
    import random

    state: dict[str, Any] = {"random": random.getstate()}
    try:
        import numpy as np

        state["numpy"] = np.random.get_state()
    except ImportError:  # pragma: no cover - numpy is a dependency
        np = None  # type: ignore[assignment]
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        torch = None  # type: ignore[assignment]
    if torch is not None:
        state["torch"] = torch.get_rng_state()
        state["grad"] = torch.is_grad_enabled()
    try:
        yield
    finally:
        random.setstate(state["random"])
        if np is not None and "numpy" in state:
            np.random.set_state(state["numpy"])
        if torch is not None:
            torch.set_rng_state(state["torch"])
            torch.set_grad_enabled(state["grad"])


CHECK_LOG_ENV = "LLMCOURSE_CHECK_LOG"
"""Environment variable: a file to which every check appends one JSON line (its verdict record)."""

CHECK_KEY_ENV = "LLMCOURSE_CHECK_KEY_FILE"
"""Environment variable: a file holding the key that signs the verdict records (read once, removed).

``llmcourse check`` writes a fresh random key there for each run; the records the checks sign
with it are the only verdicts it counts, so a line a notebook prints never passes for one.
"""


def _read_key() -> Optional[bytes]:
    """The signing key from ``$LLMCOURSE_CHECK_KEY_FILE``, read when this module is imported.

    The file is removed once read, so the notebook's own cells cannot open it afterwards.
    """
    path = os.environ.pop(CHECK_KEY_ENV, None)
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            key = f.read()
        os.remove(path)
    except OSError:
        return None
    return key or None


_KEY = _read_key()


def sign_record(key: bytes, record: Mapping[str, Any]) -> str:
    """The HMAC-SHA256 of a verdict record (its fields but ``sig``), as hex.

    Example::

        >>> mine = sign_record(b"key", {"exercise": "add", "passed": True})
        >>> mine == sign_record(b"key", {"passed": True, "exercise": "add", "sig": mine})
        True
        >>> mine == sign_record(b"another key", {"exercise": "add", "passed": True})
        False
    """
    fields = {k: v for k, v in record.items() if k != "sig"}
    text = json.dumps(fields, sort_keys=True, ensure_ascii=False)
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


def _record(exercise: str, passed: bool, line: str, cpu_s: float, source: Optional[str]) -> None:
    """Append the verdict to the file named by ``$LLMCOURSE_CHECK_LOG``, if it is set.

    The record (exercise, passed, line, CPU seconds) is written by the check itself, not read
    back from what the notebook printed, so tools (``llmcourse check``, the timing benchmark)
    get each verdict and its cost without parsing output. When ``llmcourse check`` gave a key
    (``$LLMCOURSE_CHECK_KEY_FILE``), the record carries its signature ``sig``.
    """
    path = os.environ.get(CHECK_LOG_ENV)
    if not path:
        return
    record: dict[str, Any] = {"exercise": exercise, "passed": passed, "line": line,
                              "cpu_s": round(cpu_s, 4), "source": source}
    if _KEY is not None:
        record["sig"] = sign_record(_KEY, record)
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    except OSError:  # a check never raises; the printed line still says the verdict
        pass


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _package_object(value: Any) -> Optional[str]:
    """``"module.name"`` when ``value`` is a function or class of this package (not a mistake).

    Only what is written in the package's own files counts (a doctest's function does not), and
    lambdas and the wrong answers of the checks' tables (:class:`Mistake`) never do.
    """
    if inspect.ismethod(value):
        value = value.__func__
    if callable(value) and hasattr(value, "__wrapped__"):  # @torch.no_grad(), functools.wraps
        try:
            value = inspect.unwrap(value)
        except ValueError:  # pragma: no cover - a cycle of __wrapped__
            pass
    if not (inspect.isfunction(value) or inspect.isclass(value)):
        return None
    if getattr(value, "__llmcourse_mistake__", False) or getattr(value, "__name__", "") == "<lambda>":
        return None
    module = getattr(value, "__module__", "") or ""
    if not (module == "llmcourse" or module.startswith("llmcourse.")):
        return None
    if inspect.isfunction(value):
        if not os.path.abspath(value.__code__.co_filename).startswith(_PACKAGE_DIR + os.sep):
            return None
    else:
        obj: Any = sys.modules.get(module)
        for part in getattr(value, "__qualname__", "").split("."):
            obj = getattr(obj, part, None)
        if obj is not value:
            return None
    return f"{module}.{getattr(value, '__qualname__', getattr(value, '__name__', '?'))}"


def refuse_reference(value: Any, name: str = "the argument") -> None:
    """Fail when ``value`` is the package's (or the checks') own function or class.

    A later cell may rebind the learner's name (``from llmcourse.generate import top_k_filter``);
    re-running an earlier check cell must then say so instead of passing with no learner code.
    :func:`check` calls this on every argument it is given (all of them, or the ``learner``
    ones it names).

    Example::

        >>> from llmcourse.checks._core import as_int
        >>> refuse_reference(as_int, "count")
        Traceback (most recent call last):
        ...
        llmcourse.checks._core.CheckFailed: count is the course's own reference (llmcourse.checks._core.as_int), not your code: a later cell rebound the name; run your exercise cell again, then this check
    """
    where = _package_object(value)
    if where is not None:
        raise CheckFailed(f"{name} is the course's own reference ({where}), not your code: a later "
                          "cell rebound the name; run your exercise cell again, then this check")


def check(exercise: str, hint: Optional[str] = None, *, mistakes: Sequence["Mistake"] = (),
          learner: Optional[Sequence[str]] = None) -> Callable[[Callable[..., Any]], Callable[..., Verdict]]:
    """Decorator form of :func:`run_check`.

    The decorated function takes the learner's objects as arguments and raises like a
    ``body`` of :func:`run_check`; the wrapper prints the verdict line and returns a
    :class:`Verdict`. Before the body runs, every argument (or only the parameters named in
    ``learner``) that is a function or class of the package itself is refused
    (:func:`refuse_reference`). ``mistakes`` is the exercise's table of typical mistakes
    (:class:`Mistake`); it is kept on the wrapper as ``.mistakes``, where :func:`compare` can
    be given it and the tests read it.

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
        signature = inspect.signature(fn)

        def body(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            try:
                bound = signature.bind(*args, **kwargs).arguments
            except TypeError:
                bound = {}
            for param, value in bound.items():
                if learner is None or param in learner:
                    refuse_reference(value, param)
            fn(*args, **kwargs)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Verdict:
            return run_check(exercise, lambda: body(args, kwargs), hint=hint, source=fn.__module__)

        wrapper.mistakes = tuple(mistakes)  # type: ignore[attr-defined]
        wrapper.exercise = exercise  # type: ignore[attr-defined]
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
    nested lists. The hint names the largest difference and where it is.

    Example::

        >>> assert_close([0.1 + 0.2], [0.3], "sum")
        >>> assert_close([1.0, 2.0], [1.0, 2.5], "scores")
        Traceback (most recent call last):
        ...
        llmcourse.checks._core.CheckFailed: scores differs from the expected value by up to 0.5 at index (1,): got 2.0, expected 2.5 (tolerance atol=1e-05, rtol=0.0001)
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
    np_state = np.seterr(invalid="ignore", over="ignore")
    try:
        _assert_close_values(have, want, name, atol, rtol)
    finally:
        np.seterr(**np_state)


def _assert_close_values(have: Any, want: Any, name: str, atol: float, rtol: float) -> None:
    import numpy as np

    if np.isnan(have).any() and not np.isnan(want).any():
        index = tuple(int(i) for i in np.argwhere(np.isnan(have))[0])
        raise CheckFailed(f"{name} contains NaN (first at index {index}); look for a division by zero or log(0)")
    close = np.isclose(have, want, atol=atol, rtol=rtol, equal_nan=True)
    if close.all():
        return
    diff = np.where(close, 0.0, np.abs(have - want))
    diff = np.where(np.isnan(diff), np.inf, diff)
    bad = tuple(int(i) for i in np.unravel_index(int(np.argmax(diff)), diff.shape))
    where = f" at index {bad}" if have.ndim else ""
    raise CheckFailed(
        f"{name} differs from the expected value by up to {_fmt(diff[bad])}{where}: got "
        f"{_fmt(have[bad])}, expected {_fmt(want[bad])} (tolerance atol={atol:g}, rtol={rtol:g})"
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


# ---- inspecting what the learner returned ---------------------------------------------------
#
# Every day's checks start by looking at what the learner's code returned: is it a list or a
# tensor, a pair, of the right shape and dtype? These helpers do that once, with a message that
# says what was returned instead (``make_windows should return a pair (X, Y), got a list of 3
# items``), so that a check body can go straight to the specific hints of its exercise.


def kind_of(value: Any) -> str:
    """Say in a few words what ``value`` is: its type and, for containers, its size.

    Example::

        >>> kind_of([1, 2, 3])
        'a list of 3 items'
        >>> import torch
        >>> kind_of(torch.zeros(2, 3, dtype=torch.long))
        'a tensor of shape (2, 3) and dtype int64'
        >>> kind_of(None)
        'None'
        >>> kind_of(2.5)
        'a float (2.5)'
    """
    if value is None:
        return "None"
    if _is_torch_tensor(value) or _is_numpy_array(value):
        return describe(value)
    if isinstance(value, (list, tuple, dict, set)):
        n = len(value)
        return f"a {type(value).__name__} of {n} item{'' if n == 1 else 's'}"
    if isinstance(value, (bool, int, float, str, bytes)):
        return f"{_a(type(value).__name__)} ({describe(value, 30)})"
    return _a(type(value).__name__)


def _a(noun: str) -> str:
    """``noun`` with its indefinite article: ``"an int"``, ``"a Linear"``."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def _none_hint(name: str, what: str) -> CheckFailed:
    return CheckFailed(f"{name} returned None; did you forget the `return`? It should return {what}")


def _dtype_name(dtype: Any) -> str:
    return str(dtype).replace("torch.", "")


def as_list(value: Any, name: str, *, of: type | tuple[type, ...] | None = None) -> list[Any]:
    """Read what ``name`` returned as a flat Python list (from a list, tuple, tensor or array).

    ``None`` (a missing ``return``), a string or a dict fail with a hint. With ``of=int``, every
    item must be an integer (numpy and tensor integers count; ``bool`` and ``float`` do not) and
    the items come back as Python ``int``.

    Example::

        >>> import torch
        >>> as_list(torch.tensor([3, 1, 4]), "encode", of=int)
        [3, 1, 4]
        >>> as_list("abc", "encode")
        Traceback (most recent call last):
        ...
        llmcourse.checks._core.CheckFailed: encode should return a list, got a str ('abc')
    """
    if value is None:
        raise _none_hint(name, "a list")
    if _is_torch_tensor(value) or _is_numpy_array(value):
        items = to_numpy(value, name).tolist()
        items = items if isinstance(items, list) else [items]
    elif isinstance(value, (str, bytes, dict, Mapping)) or not hasattr(value, "__iter__"):
        raise CheckFailed(f"{name} should return a list, got {kind_of(value)}")
    else:
        items = list(value)
    if of is None:
        return items
    wanted = of if isinstance(of, tuple) else (of,)
    out: list[Any] = []
    for i, item in enumerate(items):
        if _is_torch_tensor(item) or _is_numpy_array(item):
            if getattr(item, "ndim", 1) != 0:
                raise CheckFailed(f"{name} should return a flat list, but item {i} is {kind_of(item)}")
            item = item.item()
        if int in wanted and not isinstance(item, bool):
            try:
                import numpy as np

                if isinstance(item, np.integer):
                    item = int(item)
            except ImportError:  # pragma: no cover - numpy is a dependency
                pass
        if not isinstance(item, wanted) or (isinstance(item, bool) and bool not in wanted):
            names = " or ".join(t.__name__ for t in wanted)
            raise CheckFailed(f"{name} should return a list of {names}s, but item {i} is {kind_of(item)}")
        out.append(item)
    return out


def as_int_list(value: Any, name: str) -> list[int]:
    """``as_list(value, name, of=int)``: a flat list of Python ints.

    Example::

        >>> as_int_list([1, 2.0], "merge")
        Traceback (most recent call last):
        ...
        llmcourse.checks._core.CheckFailed: merge should return a list of ints, but item 1 is a float (2.0)
    """
    return as_list(value, name, of=int)


def as_pair(value: Any, name: str, names: tuple[str, str] = ("x", "y")) -> tuple[Any, Any]:
    """Unpack what ``name`` returned as a pair, e.g. ``(x, y)``; fail with what it was instead.

    Example::

        >>> as_pair((1, 2), "get_batch")
        (1, 2)
        >>> as_pair([1, 2, 3], "get_batch")
        Traceback (most recent call last):
        ...
        llmcourse.checks._core.CheckFailed: get_batch should return a pair (x, y), got a list of 3 items
    """
    shown = f"({names[0]}, {names[1]})"
    if value is None:
        raise CheckFailed(f"{name} returned None; did you forget `return {names[0]}, {names[1]}`?")
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise CheckFailed(f"{name} should return a pair {shown}, got {kind_of(value)}")
    return value[0], value[1]


def as_tensor(
    value: Any,
    name: str,
    *,
    shape: Sequence[Optional[int]] | None = None,
    dtype: Any = None,
) -> Any:
    """Check that ``value`` is a torch tensor (optionally of ``shape`` and ``dtype``) and return it.

    A list, a numpy array, a tuple (``return out, weights`` where only ``out`` was asked for)
    or ``None`` each get their own hint. ``dtype`` is a ``torch.dtype`` or a tuple of them.

    Example::

        >>> import torch
        >>> as_tensor([1, 2], "ids")
        Traceback (most recent call last):
        ...
        llmcourse.checks._core.CheckFailed: ids should be a torch tensor, got a list of 2 items; build it with torch.tensor(...) (or torch.stack for a list of tensors)
        >>> as_tensor(torch.zeros(2, dtype=torch.int32), "ids", dtype=torch.long)
        Traceback (most recent call last):
        ...
        llmcourse.checks._core.CheckFailed: ids should have dtype int64, got int32
    """
    if value is None:
        raise _none_hint(name, "a tensor")
    if not _is_torch_tensor(value):
        got = kind_of(value)
        if isinstance(value, tuple) and value and _is_torch_tensor(value[0]):
            fix = "; return the tensor only, not a tuple"
        elif isinstance(value, (list, tuple)):
            fix = "; build it with torch.tensor(...) (or torch.stack for a list of tensors)"
        elif _is_numpy_array(value):
            fix = "; convert it with torch.from_numpy(...)"
        else:
            fix = ""
        raise CheckFailed(f"{name} should be a torch tensor, got {got}{fix}")
    if shape is not None:
        assert_shape(value, shape, name)
    if dtype is not None:
        assert_dtype(value, dtype, name)
    return value


def assert_dtype(value: Any, dtype: Any, name: str, hint: str = "") -> None:
    """Fail with "<name> should have dtype int64, got uint16" (plus ``hint``) on a mismatch.

    ``dtype`` is a torch or numpy dtype, or a tuple of the dtypes allowed.

    Example::

        >>> import torch
        >>> assert_dtype(torch.zeros(2, dtype=torch.bool), torch.bool, "mask")
        >>> assert_dtype(torch.zeros(2), torch.bool, "mask", "compare with ==, or build it with dtype=torch.bool")
        Traceback (most recent call last):
        ...
        llmcourse.checks._core.CheckFailed: mask should have dtype bool, got float32: compare with ==, or build it with dtype=torch.bool
    """
    allowed = dtype if isinstance(dtype, tuple) else (dtype,)
    got = getattr(value, "dtype", None)
    if any(got == d for d in allowed):
        return
    want = " or ".join(_dtype_name(d) for d in allowed)
    message = f"{name} should have dtype {want}, got {_dtype_name(got) if got is not None else kind_of(value)}"
    raise CheckFailed(message + (f": {hint}" if hint else ""))


def as_bool(value: Any, name: str) -> bool:
    """Read a Python ``bool`` (or a one-element tensor holding one) that ``name`` returned.

    Example::

        >>> import torch
        >>> as_bool(torch.tensor(True), "is_causal")
        True
        >>> as_bool(1, "is_causal")
        Traceback (most recent call last):
        ...
        llmcourse.checks._core.CheckFailed: is_causal should return True or False, got an int (1)
    """
    if value is None:
        raise _none_hint(name, "True or False")
    if _is_torch_tensor(value) or _is_numpy_array(value):
        if int(getattr(value, "size", 1) if _is_numpy_array(value) else value.numel()) != 1:
            raise CheckFailed(f"{name} returned {kind_of(value)}; return one True or False "
                              "(e.g. bool(tensor.all()))")
        value = value.item()
    if not isinstance(value, bool):
        raise CheckFailed(f"{name} should return True or False, got {kind_of(value)}")
    return value


def as_int(value: Any, name: str) -> int:
    """Read a Python ``int`` that ``name`` returned (a float like ``12.0`` or a 0-d tensor counts).

    Example::

        >>> as_int(12.0, "count_params")
        12
        >>> as_int("12", "count_params")
        Traceback (most recent call last):
        ...
        llmcourse.checks._core.CheckFailed: count_params should return an int, got a str ('12')
    """
    if value is None:
        raise _none_hint(name, "an int")
    if (_is_torch_tensor(value) or _is_numpy_array(value)) and getattr(value, "ndim", 1) == 0:
        value = value.item()
    try:
        import numpy as np

        if isinstance(value, np.integer):
            value = int(value)
    except ImportError:  # pragma: no cover
        pass
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise CheckFailed(f"{name} should return an int, got {kind_of(value)}")
    return value


def layer(
    module: Any,
    attr: str,
    cls: type | tuple[type, ...] | None = None,
    *,
    shape: Sequence[Optional[int]] | None = None,
    bias: Optional[bool] = None,
    owner: str = "the module",
) -> Any:
    """Return ``module.<attr>`` (dots allowed: ``"transformer.wte"``), checking class and weight shape.

    A missing attribute, the wrong class (an ``nn.Linear`` where one was asked for), a weight of
    the wrong shape, or a bias where ``bias=False`` (or none where ``bias=True``) fail with a hint
    that names ``owner.attr``.

    Example::

        >>> import torch.nn as nn
        >>> head = nn.Module()
        >>> head.query = nn.Linear(16, 4, bias=False)
        >>> layer(head, "query", nn.Linear, shape=(4, 16), bias=False, owner="head")
        Linear(in_features=16, out_features=4, bias=False)
        >>> layer(head, "key", nn.Linear, owner="head")
        Traceback (most recent call last):
        ...
        llmcourse.checks._core.CheckFailed: head has no attribute `key`; it should be a Linear (create it in __init__: self.key = ...)
    """
    names = (
        " or ".join(_a(t.__name__) for t in cls) if isinstance(cls, tuple) else _a(cls.__name__)
    ) if cls is not None else "a layer"
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise CheckFailed(f"{owner} has no attribute `{attr}`; it should be {names} "
                              f"(create it in __init__: self.{attr} = ...)")
        obj = getattr(obj, part)
    if cls is not None and not isinstance(obj, cls):
        raise CheckFailed(f"{owner}.{attr} should be {names}, got {kind_of(obj)}")
    weight = getattr(obj, "weight", None)
    if shape is not None:
        if weight is None:
            raise CheckFailed(f"{owner}.{attr} has no weight")
        assert_shape(weight, shape, f"{owner}.{attr}.weight")
    if bias is not None:
        has_bias = getattr(obj, "bias", None) is not None
        if has_bias and not bias:
            raise CheckFailed(f"{owner}.{attr} has a bias: create it with bias=False")
        if bias and not has_bias:
            raise CheckFailed(f"{owner}.{attr} has no bias: create it with bias=True")
    return obj


# ---- the learner's code: inputs in error messages, earlier exercises -------------------------


class EarlierNotDone(CheckFailed):
    """An earlier exercise that this one uses is still a stub.

    Raised by :func:`needs_earlier`; the message names that function and its exercise, e.g.
    ``causal_attention: not done yet — finish exercise 2 first``. ``function`` and
    ``exercise`` hold the two. :func:`run_check` prints it as a "not done yet" verdict (⏳),
    as the exercise under test itself may be fine.
    """

    def __init__(self, function: str, exercise: Any = None) -> None:
        self.function = function
        self.exercise = exercise
        which = f"exercise {exercise}" if exercise is not None else "that exercise"
        super().__init__(f"{function}: not done yet — finish {which} first, run its cell, then "
                         "run this check again")


def _raising_names(exc: BaseException) -> list[str]:
    """Where ``exc`` was raised: the innermost frame's function name and, for a method, its class.

    ``raise NotImplementedError`` in ``MyMLP.__init__`` gives ``["__init__", "MyMLP"]``.
    """
    tb = exc.__traceback__
    if tb is None:
        return []
    while tb.tb_next is not None:
        tb = tb.tb_next
    code = tb.tb_frame.f_code
    names = [code.co_name]
    qualname = getattr(code, "co_qualname", code.co_name)
    if "." in qualname:
        names.append(qualname.split(".")[-2])
    owner = tb.tb_frame.f_locals.get("self")
    if owner is not None:
        names.append(type(owner).__name__)
    return names


class needs_earlier:
    """Name the earlier exercise that is unfinished when a stub of it raises ``NotImplementedError``.

    Use it as a context manager around the learner's call, or as a decorator under
    :func:`check`, with the learner's earlier functions and their exercise numbers. A
    ``NotImplementedError`` raised *inside one of those functions* becomes
    :class:`EarlierNotDone` ("causal_attention: not done yet — finish exercise 2 first"); one
    raised by the exercise under test stays "not done yet".

    Example::

        >>> def causal_attention(q, k, v):
        ...     raise NotImplementedError
        >>> class Head:
        ...     def __call__(self, x):
        ...         return causal_attention(x, x, x)
        >>> @check("Head")
        ... @needs_earlier(causal_attention=2)
        ... def check_head(head):
        ...     head(1)
        >>> ok = check_head(Head())
        ⏳ Head: causal_attention: not done yet — finish exercise 2 first, run its cell, then run this check again
    """

    def __init__(self, **exercises: Any) -> None:
        self.exercises = exercises

    def __enter__(self) -> "needs_earlier":
        return self

    def __exit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> bool:
        if exc is None or not isinstance(exc, NotImplementedError):
            return False
        for function in _raising_names(exc):
            if function in self.exercises:
                raise EarlierNotDone(function, self.exercises[function]) from exc
        return False

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with needs_earlier(**self.exercises):
                return fn(*args, **kwargs)

        return wrapper


class PartNotDone(EarlierNotDone):
    """One part of an exercise is still a stub (a method of a class, the eval branch of a function).

    Printed as "not done yet" (⏳) with ``message`` naming the missing part, e.g. ``__init__ is
    written, forward is not done yet``, instead of a hint that blames the parts that are done.
    """

    def __init__(self, message: str) -> None:
        CheckFailed.__init__(self, message)
        self.function, self.exercise = message, None


def labelled(read: Callable[[Any, "Case"], Any]) -> Callable[[Any, "Case"], Any]:
    """``read`` (a ``compare`` reader) with the case's label added to its hint: which input it was.

    Example::

        >>> def as_number(value, case):
        ...     assert isinstance(value, int), f"returned {value!r}, not an int"
        ...     return value
        >>> labelled(as_number)("7", Case("f('x')"))
        Traceback (most recent call last):
        ...
        llmcourse.checks._core.CheckFailed: returned '7', not an int (on f('x'))
    """

    def wrapped(value: Any, case: "Case") -> Any:
        try:
            return read(value, case)
        except EarlierNotDone:  # "not done yet" stays that
            raise
        except AssertionError as exc:
            raise CheckFailed(f"{exc} (on {case.label})") from None

    return wrapped


def call(fn: Callable[..., Any], *args: Any, shown: Optional[str] = None, hint: Optional[str] = None,
         **kwargs: Any) -> Any:
    """Call the learner's ``fn(*args, **kwargs)``; if it crashes, say on which input.

    ``NotImplementedError`` (a stub) and a check's own ``AssertionError`` (its hint) pass through;
    an ``AssertionError`` raised in the learner's code (their ``assert``, or a library's) does not
    (:func:`_raised_by_learner`). Any other exception becomes :class:`CheckFailed` with the message ``your code raised
    <Type>: <message> on <shown>``, where ``shown`` describes the input (by default the call
    with its arguments, shortened), plus ``hint``.

    Example::

        >>> def encode(text):
        ...     return [{"a": 0}[c] for c in text]
        >>> call(encode, "ab")
        Traceback (most recent call last):
        ...
        llmcourse.checks._core.CheckFailed: your code raised KeyError: 'b' on encode('ab')
    """
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise
    except AssertionError as exc:
        if not _raised_by_learner(exc):
            raise
        return _reported(exc, fn, args, kwargs, shown, hint)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - turned into a verdict
        return _reported(exc, fn, args, kwargs, shown, hint)


def _reported(exc: BaseException, fn: Callable[..., Any], args: tuple, kwargs: dict,
              shown: Optional[str], hint: Optional[str]) -> Any:
    """Raise :class:`CheckFailed` saying that the learner's ``fn`` raised ``exc`` (for :func:`call`)."""
    if shown is None:
        parts = [describe(a, 40) for a in args] + [f"{k}={describe(v, 40)}" for k, v in kwargs.items()]
        shown = f"{getattr(fn, '__name__', 'your function')}({', '.join(parts)})"
    message = f"your code raised {type(exc).__name__}: {_one_line(str(exc))}".rstrip(": ")
    message += f" on {shown}"
    if hint:
        message += f" (hint: {_one_line(hint)})"
    raise CheckFailed(message) from exc


# ---- differential checks: the learner's code against the reference on a seeded battery -------------
#
# A check written with these compares the learner's function (or class) with the reference on
# several inputs drawn for the exercise (``Case``), so that a mistake hidden by one input (a
# size equal to a notebook global, a kernel size of 2, no ties, no tied weights) shows on
# another. What is compared is an *observation*: what ``run(impl, case)`` returns, which may hold
# the output, the gradients (:func:`outputs_and_grads`) or the transcript of a sequence of calls.
# When the learner's observation differs, the exercise's table of typical mistakes (``Mistake``)
# is consulted: if a known wrong implementation gives the learner's observation on that input,
# its hint is shown; otherwise a generic line names the input and the largest difference.


class Case:
    """One labelled input of a battery: ``Case("top_k(logits (2, 3, 11), k=4)", logits, 4)``.

    ``label`` is shown in every message about this input (a crash, a mismatch); ``args`` and
    ``kwargs`` are what ``run`` passes on (by default ``impl(*args, **kwargs)``). Tensors in
    the arguments are cloned for each call, so an implementation that writes into its input
    cannot change what the reference sees.

    Example::

        >>> Case("double(21)", 21)
        Case('double(21)')
    """

    __slots__ = ("label", "args", "kwargs")

    def __init__(self, label: str, *args: Any, **kwargs: Any) -> None:
        self.label = label
        self.args = args
        self.kwargs = kwargs

    def __repr__(self) -> str:
        return f"Case({self.label!r})"

    def fresh(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The arguments, with every tensor (also inside lists, tuples and dicts) cloned."""
        return _clone(self.args), _clone(self.kwargs)


def _clone(value: Any) -> Any:
    if _is_torch_tensor(value):
        return value.detach().clone().requires_grad_(value.requires_grad) if value.is_leaf else value
    if _is_numpy_array(value):
        return value.copy()
    if isinstance(value, tuple):
        return tuple(_clone(v) for v in value)
    if isinstance(value, list):
        return [_clone(v) for v in value]
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    return value


class Mistake:
    """A typical wrong answer to an exercise, and the words the check's line must contain for it.

    Args:
        name: a short id (``"global stoi"``), used as the test's id.
        wrong: the wrong implementation, written as a learner would; it is what the test hands
            the check. For a check that takes several objects, pass them all as ``args``.
        hint: the hint shown when the learner's answer behaves like ``wrong`` on the first input
            where it differs from the reference (:func:`compare` finds this by running ``wrong``
            on that input). Leave it out when the check's own logic or a generic message already
            names the mistake; then give ``expect``.
        expect: the words the check's one line must contain for this mistake (default: ``hint``).
        args: the complete arguments of the check, when it takes more than one object.

    Every exercise keeps such a table next to its check (``@check(..., mistakes=TABLE)``); the
    check's hints and the tests in ``tests/test_checks_dayNN.py`` both come from it.

    Example::

        >>> m = Mistake("adds", lambda x: x + 2, hint="double: multiply by 2, do not add 2")
        >>> m.expect
        'double: multiply by 2, do not add 2'
    """

    __slots__ = ("name", "wrong", "hint", "expect", "args")

    def __init__(self, name: str, wrong: Any = None, *, hint: Optional[str] = None,
                 expect: Optional[str] = None, args: Optional[tuple[Any, ...]] = None) -> None:
        if hint is None and expect is None:
            raise ValueError(f"mistake {name!r}: give a hint, or the words the line must contain (expect=)")
        self.name = name
        self.wrong = wrong
        self.hint = hint
        self.expect = expect if expect is not None else hint
        self.args = args if args is not None else (wrong,)
        for item in (wrong, *self.args):
            if inspect.isfunction(item) or inspect.isclass(item):
                try:
                    item.__llmcourse_mistake__ = True  # not refused as "the course's reference"
                except (AttributeError, TypeError):  # pragma: no cover - builtins
                    pass

    def __repr__(self) -> str:
        return f"Mistake({self.name!r})"


class Raised:
    """What an implementation did instead of returning: raised an exception of type ``kind``."""

    __slots__ = ("kind", "message")

    def __init__(self, exc: BaseException) -> None:
        self.kind = type(exc).__name__
        self.message = _one_line(str(exc))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Raised) and other.kind == self.kind

    def __hash__(self) -> int:
        return hash(self.kind)

    def __repr__(self) -> str:
        return f"raised {self.kind}: {self.message}"


def _raised_by_learner(exc: AssertionError) -> bool:
    """Whether an ``AssertionError`` comes from the learner's code (their own ``assert``, or a
    library they called), not from a check: its innermost frame lies outside ``checks/``.

    A check's own ``AssertionError`` (:class:`CheckFailed`, ``require``, a plain ``assert``) is its
    verdict and passes through; the learner's is reported like any other crash of their code.
    """
    if isinstance(exc, CheckFailed):
        return False
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.dirname(os.path.abspath(tb.tb_frame.f_code.co_filename)) != here


def _raised_below_body(exc: BaseException) -> bool:
    """Whether ``exc`` (caught in :func:`run_check`) was raised in a function the check's body
    called, not by the body itself (a body's own ``assert`` is its verdict, wherever it is written)."""
    tb = exc.__traceback__  # run_check's frame, then the body's, then what the body called
    return tb is not None and tb.tb_next is not None and tb.tb_next.tb_next is not None


def _observe(run: Callable[[Any, Case], Any], impl: Any, case: Case) -> Any:
    """``run(impl, case)``, or a :class:`Raised` for any exception (used for references and mistakes)."""
    try:
        return run(impl, case)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - a mistake may crash; that is its observation
        return Raised(exc)


def _default_run(impl: Any, case: Case) -> Any:
    args, kwargs = case.fresh()
    return impl(*args, **kwargs)


def same(got: Any, expected: Any, name: str = "the result", *, atol: float = 1e-5,
         rtol: float = 1e-4) -> Optional[str]:
    """Why ``got`` is not ``expected`` (``None`` when they agree), in words for a hint.

    Tensors and arrays must have the same dtype and shape; integer and bool values must be
    equal, float values close (``atol``, ``rtol``), and the message names the *largest*
    difference and where it is. Lists, tuples and dicts are compared item by item (the message
    names the item, ``out[1]`` or ``grads['weight']``); ``None`` where a tensor was expected is
    named as such (a gradient that never arrived). :class:`Raised` values compare by exception type.

    Example::

        >>> import torch
        >>> same(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 2.5, 3.0]), "y")
        'y differs by up to 0.5 (at index (1,): got 2.0, expected 2.5)'
        >>> same(torch.zeros(2, dtype=torch.int32), torch.zeros(2, dtype=torch.long), "ids")
        'ids has dtype int32, expected int64'
        >>> same([1, 2], [1, 2, 3], "ids")
        'ids has 2 items, expected 3 (the first 2 agree)'
    """
    if isinstance(expected, Raised) or isinstance(got, Raised):
        if got == expected:
            return None
        if isinstance(got, Raised):
            return f"{name}: {got!r}"
        return f"{name} should have raised {expected.kind}, but it returned {kind_of(got)}"
    if _is_torch_tensor(expected) or _is_numpy_array(expected):
        return _same_array(got, expected, name, atol, rtol)
    if expected is None:
        if got is None:
            return None
        if "grad of " in name:
            return (f"{name} should be None (it is frozen and gets no gradient), but it got one: "
                    "set requires_grad=False on it")
        return f"{name} should be None, got {kind_of(got)}"
    if got is None:
        what = "a tensor" if _is_torch_tensor(expected) else kind_of(expected)
        return f"{name} is None, expected {what}"
    if isinstance(expected, Mapping):
        if not isinstance(got, Mapping):
            return f"{name} should be a dict, got {kind_of(got)}"
        missing = [k for k in expected if k not in got]
        if missing:
            return f"{name} misses the key {missing[0]!r}"
        extra = [k for k in got if k not in expected]
        if extra:
            return f"{name} has an unexpected key {extra[0]!r}"
        for key in expected:
            # outputs_and_grads' "output" is the call's own result: name it as the call
            label = name if key == "output" else f"{name}[{key!r}]"
            why = same(got[key], expected[key], label, atol=atol, rtol=rtol)
            if why:
                return why
        return None
    if isinstance(expected, (list, tuple)):
        if _is_torch_tensor(got) or _is_numpy_array(got):
            got = to_numpy(got, name).tolist()
        if not isinstance(got, (list, tuple)):
            return f"{name} should be a {type(expected).__name__}, got {kind_of(got)}"
        if len(got) != len(expected):
            n = sum(1 for _ in zip(got, expected))
            agree = all(same(g, e, name, atol=atol, rtol=rtol) is None for g, e in zip(got, expected))
            tail = f" (the first {n} agree)" if agree else ""
            return f"{name} has {len(got)} items, expected {len(expected)}{tail}"
        for i, (g, e) in enumerate(zip(got, expected)):
            why = same(g, e, f"{name}[{i}]", atol=atol, rtol=rtol)
            if why:
                return why
        return None
    if isinstance(expected, bool) or isinstance(got, bool):
        return None if got is expected or (isinstance(got, bool) and got == expected) \
            else f"{name} should be {expected!r}, got {describe(got)}"
    if isinstance(expected, (int, float)) and not isinstance(expected, bool):
        if _is_torch_tensor(got) or _is_numpy_array(got):
            if int(getattr(got, "size", 1) if _is_numpy_array(got) else got.numel()) != 1:
                return f"{name} should be a number, got {kind_of(got)}"
            got = got.item()
        if not isinstance(got, (int, float)):
            return f"{name} should be a number, got {kind_of(got)}"
        if isinstance(expected, int) and not isinstance(got, float):
            return None if got == expected else f"{name} should be {expected}, got {got}"
        if is_close(got, expected, atol=atol, rtol=rtol):
            return None
        shown = _fmt(expected), _fmt(got)
        if float(shown[0]) == float(shown[1]):  # differ past 6 digits: show every digit
            shown = repr(float(expected)), repr(float(got))
        return f"{name} should be {shown[0]}, got {shown[1]}"
    if got == expected:
        return None
    if isinstance(expected, str) and isinstance(got, str):
        i = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
        if i == min(len(got), len(expected)):  # one is the start of the other
            what = "shorter" if len(got) < len(expected) else "longer"
            return (f"{name} should be {describe(expected, 40)} ({len(expected)} characters), got "
                    f"{describe(got, 40)} ({len(got)}): the same start, but {what}")
        return (f"{name} differs from {describe(expected, 40)} at character {i}: got "
                f"{got[i:i + 12]!r}, expected {expected[i:i + 12]!r}")
    return f"{name} should be {describe(expected)}, got {describe(got)}"


def _same_array(got: Any, expected: Any, name: str, atol: float, rtol: float) -> Optional[str]:
    import numpy as np

    if got is None:
        if "grad of " in name:
            return (f"{name} is None: no gradient reached it (a .detach(), torch.no_grad() or a "
                    "frozen parameter on its path?)")
        return f"{name} is None, expected {describe(expected)}"
    if not (_is_torch_tensor(got) or _is_numpy_array(got)):
        return f"{name} should be {'a torch tensor' if _is_torch_tensor(expected) else 'an array'}, got {kind_of(got)}"
    if _is_torch_tensor(expected) and not _is_torch_tensor(got):
        return f"{name} should be a torch tensor, got {kind_of(got)}"
    if getattr(got, "dtype", None) != getattr(expected, "dtype", None):
        return f"{name} has dtype {_dtype_name(got.dtype)}, expected {_dtype_name(expected.dtype)}"
    g_shape, e_shape = _shape_of(got), _shape_of(expected)
    if g_shape != e_shape:
        return f"{name} has shape {g_shape}, expected {e_shape}"
    if _is_torch_tensor(expected) and bool(expected.requires_grad) != bool(got.requires_grad):
        if expected.requires_grad:
            return (f"{name} does not carry gradients (requires_grad=False): something in its "
                    "computation is detached or under torch.no_grad()")
    have, want = to_numpy(got, name), to_numpy(expected)
    if have.size == 0:
        return None
    if want.dtype.kind in "biu":
        if np.array_equal(have, want):
            return None
        bad = np.argwhere(have != want)
        index = tuple(int(i) for i in bad[0])
        return (f"{name} differs in {len(bad)} of {want.size} places (first at index {index}: got "
                f"{have[index].item()!r}, expected {want[index].item()!r})")
    have, want = have.astype(np.float64), want.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf is a difference, not a warning
        close = np.isclose(have, want, atol=atol, rtol=rtol, equal_nan=True)
        if close.all():
            return None
        if np.isnan(have).any() and not np.isnan(want).any():
            index = tuple(int(i) for i in np.argwhere(np.isnan(have))[0])
            return f"{name} contains NaN (first at index {index}); look for a division by zero or log(0)"
        diff = np.where(close, 0.0, np.abs(have - want))
    diff = np.where(np.isnan(diff), np.inf, diff)
    index = tuple(int(i) for i in np.unravel_index(int(np.argmax(diff)), diff.shape))
    at = f"at index {index}: " if have.ndim else ""
    return (f"{name} differs by up to {_fmt(diff[index])} ({at}got {_fmt(have[index])}, expected "
            f"{_fmt(want[index])})")


def is_close(got: float, expected: float, *, atol: float = 1e-5, rtol: float = 1e-4) -> bool:
    """``|got - expected| <= atol + rtol * |expected|`` for Python numbers (NaN equals NaN).

    Example::

        >>> is_close(0.1 + 0.2, 0.3), is_close(1.0, 1.1)
        (True, False)
    """
    if math.isnan(got) or math.isnan(expected):
        return math.isnan(got) and math.isnan(expected)
    if math.isinf(expected):
        return got == expected
    return abs(got - expected) <= atol + rtol * abs(expected)


def as_float(value: Any, name: str) -> float:
    """Read one number that ``name`` returned (a float, an int or a one-element tensor) as a float.

    Example::

        >>> import torch
        >>> as_float(torch.tensor(2.5), "loss")
        2.5
        >>> as_float([2.5], "loss")
        Traceback (most recent call last):
        ...
        llmcourse.checks._core.CheckFailed: loss should return one number, got a list of 1 item
    """
    if value is None:
        raise none_hint(name, "a number")
    if _is_torch_tensor(value) or _is_numpy_array(value):
        n = int(getattr(value, "size", 1) if _is_numpy_array(value) else value.numel())
        if n != 1:
            raise CheckFailed(f"{name} should return one number, got {kind_of(value)}")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            import numpy as np

            if isinstance(value, (np.floating, np.integer)):
                return float(value)
        except ImportError:  # pragma: no cover
            pass
        raise CheckFailed(f"{name} should return one number, got {kind_of(value)}")
    return float(value)


def none_hint(name: str, what: str) -> CheckFailed:
    """The one hint for a function that returned ``None``: a missing ``return``.

    Example::

        >>> str(none_hint("encode", "a list of ints"))
        'encode returned None; did you forget the `return`? It should return a list of ints'
    """
    return _none_hint(name, what)


def compare(
    learner: Any,
    reference: Any,
    cases: Sequence[Case],
    *,
    name: str,
    run: Optional[Callable[[Any, Case], Any]] = None,
    mistakes: Sequence[Mistake] = (),
    read: Optional[Callable[[Any, Case], Any]] = None,
    atol: float = 1e-5,
    rtol: float = 1e-4,
) -> None:
    """The differential check: ``learner`` must behave like ``reference`` on every case.

    For each case, ``run(impl, case)`` is called with the learner's implementation and with
    the reference (default ``run``: ``impl(*case.args, **case.kwargs)`` on fresh copies of the
    inputs); ``read(observation, case)``, if given, turns the learner's raw result into a
    comparable one and raises the shape-and-type hints (``as_int_list``, ``as_tensor``...). The
    two observations are compared with :func:`same`.

    On the first case where they differ, each :class:`Mistake` of the table that has a ``hint``
    is run on the same case: if its observation equals the learner's, its hint is the message.
    Otherwise the message says which input it was and what differs (the largest difference for
    floats). A learner's crash names the input (``your code raised ... on <label>``), unless a
    mistake of the table crashes the same way.

    Example::

        >>> TABLE = [Mistake("adds", lambda x: x + 2, hint="multiply by 2, do not add 2")]
        >>> cases = [Case("double(3)", 3), Case("double(-1)", -1)]
        >>> @check("double", mistakes=TABLE)
        ... def check_double(double):
        ...     compare(double, lambda x: 2 * x, cases, name="double(x)", mistakes=TABLE)
        >>> bool(check_double(lambda x: x + 2))
        ❌ double: multiply by 2, do not add 2 (on double(3))
        False
        >>> bool(check_double(lambda x: x * x))
        ❌ double: double(x) should be 6, got 9 (on double(3))
        False
    """
    run = run or _default_run
    for case in cases:
        try:
            got = run(learner, case)
        except (NotImplementedError, KeyboardInterrupt):
            raise
        except AssertionError as exc:
            if not _raised_by_learner(exc):
                raise
            got = Raised(exc)
        except Exception as exc:  # noqa: BLE001 - compared with the mistakes, then reported
            got = Raised(exc)
        if read is not None and not isinstance(got, Raised):
            got = read(got, case)
        expected = _observe(run, reference, case)  # a reference may raise on purpose (bad input)
        if read is not None and not isinstance(expected, Raised):
            expected = read(expected, case)
        why = same(got, expected, name, atol=atol, rtol=rtol)
        if why is None:
            continue
        for mistake in mistakes:
            if mistake.hint is None or mistake.wrong is None:
                continue
            theirs = _observe(run, mistake.wrong, case)
            if read is not None and not isinstance(theirs, Raised):
                try:
                    theirs = read(theirs, case)
                except AssertionError:
                    continue
            if isinstance(got, Raised) or isinstance(theirs, Raised):
                # a crash is this mistake's only if it crashes alike: same type, same words
                alike = (isinstance(got, Raised) and isinstance(theirs, Raised) and got == theirs
                         and _digits_out(got.message) == _digits_out(theirs.message))
            else:
                alike = same(got, theirs, name, atol=atol, rtol=rtol) is None
            if alike:
                raise CheckFailed(f"{mistake.hint} (on {case.label})")
        if isinstance(got, Raised):
            raise CheckFailed(f"your code raised {got.kind}: {got.message} on {case.label}".replace(": on", " on"))
        raise CheckFailed(f"{why} (on {case.label})")


def _digits_out(message: str) -> str:
    """An error message with its numbers blanked: sizes differ between inputs, the words do not."""
    import re

    return re.sub(r"\d+", "#", message)


def outputs_and_grads(output: Any, wrt: Mapping[str, Any], *, seed: int = 0) -> dict[str, Any]:
    """An observation of a differentiable result: the output, and the gradient of each of ``wrt``.

    ``output`` is a tensor computed from the tensors in ``wrt`` (inputs made with
    ``requires_grad=True``, a module's parameters by name); a fixed random upstream gradient
    (from ``seed``) is back-propagated through it, so every element's gradient counts. The
    result maps ``"output"`` and ``"grad of <name>"`` (``None`` when none arrived: a frozen
    parameter, or one cut off by ``.detach()`` / ``torch.no_grad()``) and compares with
    :func:`same` against the reference's observation of the same seed: an output that does not
    carry gradients, a gradient that never arrives, or a wrong one are each named.

    Example::

        >>> import torch
        >>> x = torch.tensor([1.0, 2.0], requires_grad=True)
        >>> obs = outputs_and_grads(x * 3, {"x": x})
        >>> sorted(obs)
        ['grad of x', 'output']
        >>> x = torch.tensor([1.0, 2.0], requires_grad=True)
        >>> same(outputs_and_grads((x * 3).detach(), {"x": x}), obs, "f(x)")
        'f(x) does not carry gradients (requires_grad=False): something in its computation is detached or under torch.no_grad()'
    """
    import torch

    if not _is_torch_tensor(output):
        return {"output": output}
    observation: dict[str, Any] = {"output": output.detach().clone().requires_grad_(output.requires_grad)}
    tensors = dict(wrt)
    for t in tensors.values():
        if _is_torch_tensor(t):
            t.grad = None
    if output.requires_grad and output.is_floating_point():
        upstream = torch.randn(output.shape, generator=torch.Generator().manual_seed(seed),
                               dtype=torch.float32).to(output.dtype)
        output.backward(upstream)
    for key, t in tensors.items():
        grad = getattr(t, "grad", None)
        observation[f"grad of {key}"] = None if grad is None else grad.detach().clone()
    return observation
