"""The shared check helpers: one verdict line, never an exception, readable hints."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import torch

from llmcourse.checks import _core
from llmcourse.checks._core import (
    CheckFailed,
    assert_close,
    assert_equal,
    assert_shape,
    assert_type,
    check,
    first_difference,
    require,
    run_check,
)


def one_line(capsys) -> str:
    out = capsys.readouterr().out
    assert out.count("\n") == 1, f"a check must print exactly one line, printed {out!r}"
    return out.rstrip("\n")


def test_pass(capsys):
    assert bool(run_check("ex", lambda: None)) is True
    assert one_line(capsys) == "✅ ex: passed"


def test_not_done(capsys):
    def body():
        raise NotImplementedError("exercise: write this part")

    assert bool(run_check("ex", body)) is False
    line = one_line(capsys)
    assert line.startswith("⏳ ex: not done yet")


def test_assertion_hint_multiline_is_one_line(capsys):
    def body():
        raise CheckFailed("first line\nsecond   line")

    assert bool(run_check("ex", body)) is False
    assert one_line(capsys) == "❌ ex: first line second line"


def test_plain_assert_without_message(capsys):
    def body():
        raise AssertionError()

    assert bool(run_check("ex", body)) is False
    assert "the check gave no detail" in one_line(capsys)


@pytest.mark.parametrize("exc", [ValueError("bad value"), KeyError("k"), ZeroDivisionError("division by zero")])
def test_other_exception_names_type_and_hint(capsys, exc):
    def body():
        raise exc

    assert bool(run_check("ex", body, hint="look at the indices")) is False
    line = one_line(capsys)
    assert line.startswith(f"❌ ex: your code raised {type(exc).__name__}")
    assert "hint: look at the indices" in line


def test_system_exit_is_caught(capsys):
    def body():
        raise SystemExit(3)

    assert bool(run_check("ex", body)) is False
    assert "SystemExit" in one_line(capsys)


def test_keyboard_interrupt_propagates():
    def body():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_check("ex", body)


def test_decorator_passes_arguments(capsys):
    @check("double", hint="multiply by two")
    def check_double(fn, x):
        assert_equal(fn(x), 2 * x, f"double({x})")

    assert bool(check_double(lambda v: v * 2, 4)) is True
    assert one_line(capsys) == "✅ double: passed"
    assert bool(check_double(lambda v: v + 2, 4)) is False
    assert one_line(capsys) == "❌ double: double(4) should be 8, got 6"
    assert bool(check_double(lambda v: v.nope, 4)) is False
    assert "AttributeError" in one_line(capsys)
    assert check_double.__name__ == "check_double"


def test_require():
    assert require(3, "x") == 3
    with pytest.raises(NotImplementedError, match="x is still None"):
        require(None, "x")


def test_assert_shape_messages():
    assert_shape(torch.zeros(2, 3), (2, 3), "x")
    assert_shape(np.zeros((5, 3)), (None, 3), "x")
    with pytest.raises(CheckFailed, match=r"x has shape \(3, 2\) but should have shape \(2, 3\); the dimensions look swapped"):
        assert_shape(torch.zeros(3, 2), (2, 3), "x")
    with pytest.raises(CheckFailed, match=r"3 dimensions instead of 2"):
        assert_shape(torch.zeros(1, 2, 3), (2, 3), "x")
    with pytest.raises(CheckFailed, match="forget a `return`"):
        assert_shape(None, (2,), "x")


def test_assert_close_tensors_and_arrays():
    a = torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
    assert_close(a, a.numpy().copy(), "a")
    assert_close(a.to(torch.bfloat16), a, "a", atol=5e-2, rtol=5e-2)
    b = a.clone()
    b[2, 3] += 1.0
    with pytest.raises(CheckFailed, match=r"a differs from the expected value by up to 1.0 at index \(2, 3\)") as info:
        assert_close(b, a, "a")
    assert "by up to 1.0" in str(info.value)
    with pytest.raises(CheckFailed, match=r"has shape \(5, 4\) but should have shape \(4, 5\)"):
        assert_close(a.T, a, "a")
    assert_close(a.T.reshape(-1), a.T.reshape(-1), "flat")
    assert_close(a.reshape(-1), a, "a", check_shape=False)


def test_assert_close_nan_none_and_non_numbers():
    with pytest.raises(CheckFailed, match="contains NaN"):
        assert_close([1.0, float("nan")], [1.0, 2.0], "p")
    assert_close([float("nan")], [float("nan")], "p")  # NaN where NaN is expected is fine
    with pytest.raises(CheckFailed, match="None"):
        assert_close(None, [1.0], "p")
    with pytest.raises(CheckFailed, match="should be numbers"):
        assert_close({"a": 1}, [1.0], "p")
    assert_close(0.30000000000000004, 0.3, "scalar")
    with pytest.raises(CheckFailed, match="got 0.4, expected 0.3"):
        assert_close(0.4, 0.3, "scalar")


def test_assert_equal_sequences_and_mappings():
    assert_equal(torch.tensor([1, 2]), [1, 2], "ids")
    with pytest.raises(CheckFailed, match="at index 1: got 5, expected 2"):
        assert_equal([1, 5], [1, 2], "ids")
    with pytest.raises(CheckFailed, match="misses the key 'b'"):
        assert_equal({"a": 1}, {"a": 1, "b": 2}, "d")
    with pytest.raises(CheckFailed, match="unexpected key 'c'"):
        assert_equal({"a": 1, "c": 3}, {"a": 1}, "d")
    with pytest.raises(CheckFailed, match="should be a dict"):
        assert_equal([1], {"a": 1}, "d")
    with pytest.raises(CheckFailed, match="forget a `return`"):
        assert_equal(None, 3, "n")


def test_assert_type_and_first_difference():
    assert_type(3, int, "n")
    assert_type(3, (int, float), "n")
    with pytest.raises(CheckFailed, match="n should be a int or float, got str"):
        assert_type("3", (int, float), "n")
    with pytest.raises(CheckFailed, match="forget a `return`"):
        assert_type(None, list, "n")
    assert first_difference([1, 2], [1, 2]) == "they are equal"
    assert first_difference([1], [1, 2]) == "it has 1 items, expected 3 (the first 1 agree)".replace("3", "2")


def test_docstring_examples():
    result = doctest.testmod(_core, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 5 and result.failed == 0


def test_verdict_reads_as_a_bool_and_shows_nothing_in_a_notebook() -> None:
    """A check cell's output is the check's line alone: no bare True/False under it."""
    import nbformat
    from nbclient import NotebookClient

    from llmcourse.checks import Verdict

    passed, failed = Verdict("ex", True, "✅ ex: passed"), Verdict("ex", False, "❌ ex: no")
    assert bool(passed) and not failed and passed.passed and passed == True  # noqa: E712
    assert failed == False and failed.line == "❌ ex: no"  # noqa: E712
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("from llmcourse.checks import run_check\nrun_check('ex', lambda: None)"),
        nbformat.v4.new_code_cell("def body():\n    assert False, 'wrong'\nrun_check('ex', body)"),
        nbformat.v4.new_code_cell("v = run_check('ex', lambda: None)\nbool(v), v.passed"),
    ]
    NotebookClient(nb, kernel_name="python3", timeout=120).execute()
    outputs = [[(o.output_type, o.get("text") or o.get("data", {}).get("text/plain")) for o in c.outputs] for c in nb.cells]
    assert outputs[0] == [("stream", "✅ ex: passed\n")]
    assert outputs[1] == [("stream", "❌ ex: wrong\n")]
    assert outputs[2] == [("stream", "✅ ex: passed\n"), ("execute_result", "(True, True)")]
