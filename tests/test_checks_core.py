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


# ---- differential checks ----------------------------------------------------------------------

from llmcourse.checks._core import (Case, Mistake, Raised, as_float, call, compare, is_close,  # noqa: E402
                                    outputs_and_grads, refuse_reference, same)


def _double(x):
    return 2 * x


def _adds(x):
    return x + 2


TABLE = [Mistake("adds", _adds, hint="multiply by 2, do not add 2"),
         Mistake("crashes", lambda x: x.nope, hint="x has no attribute nope"),
         Mistake("squares", lambda x: x * x, expect="should be 6, got 9")]


@check("double", mistakes=TABLE)
def check_double(fn):
    compare(fn, _double, [Case("double(3)", 3), Case("double(-1)", -1)], name="double(x)", mistakes=TABLE)


def test_compare_pass_and_table(capsys):
    assert bool(check_double(lambda x: x * 2)) is True
    assert one_line(capsys) == "✅ double: passed"
    assert check_double.mistakes == tuple(TABLE)
    assert bool(check_double(_adds)) is False
    assert one_line(capsys) == "❌ double: multiply by 2, do not add 2 (on double(3))"


def test_compare_generic_names_the_case(capsys):
    assert bool(check_double(lambda x: abs(2 * x))) is False  # right on 3, wrong on -1
    assert one_line(capsys) == "❌ double: double(x) should be -2, got 2 (on double(-1))"


def test_compare_crash_matches_a_mistake_that_crashes_alike(capsys):
    def crash(x):
        return x.nope + 1  # the same crash as the table's mistake

    assert bool(check_double(crash)) is False
    assert one_line(capsys) == "❌ double: x has no attribute nope (on double(3))"

    def other_crash(x):
        raise AttributeError("other words")  # the same type, another fault: no hint of the table

    assert bool(check_double(other_crash)) is False
    assert one_line(capsys) == "❌ double: your code raised AttributeError: other words on double(3)"

    def crash_type(x):
        raise KeyError("k")

    assert bool(check_double(crash_type)) is False
    assert one_line(capsys) == "❌ double: your code raised KeyError: 'k' on double(3)"


def test_compare_clones_tensor_inputs():
    def writes(x):
        x.add_(1)
        return x

    seen = []

    def reference(x):
        seen.append(x.clone())
        return x + 1

    x = torch.zeros(3)
    compare(writes, reference, [Case("x", x)], name="f")
    assert torch.equal(seen[0], torch.zeros(3)) and torch.equal(x, torch.zeros(3))


def test_same_reports_largest_difference_and_dtype():
    a = torch.zeros(2, 3)
    b = a.clone()
    b[0, 1], b[1, 2] = 0.01, -3.0
    assert same(b, a, "y") == "y differs by up to 3.0 (at index (1, 2): got -3.0, expected 0.0)"
    assert same(a.int(), a.long(), "y") == "y has dtype int32, expected int64"
    assert same(a, a.T, "y") == "y has shape (2, 3), expected (3, 2)"
    assert same({"w": None}, {"w": a}, "grads") == "grads['w'] is None, expected a tensor of shape (2, 3) and dtype float32"
    assert same([1, 2], [1, 2, 3], "ids") == "ids has 2 items, expected 3 (the first 2 agree)"
    assert same("abd", "abc", "s").startswith("s differs from 'abc' at character 2")
    assert same("ab", "abc", "s") == "s should be 'abc' (3 characters), got 'ab' (2): the same start, but shorter"
    assert same("abcd", "abc", "s") == "s should be 'abc' (3 characters), got 'abcd' (4): the same start, but longer"
    assert same(Raised(ValueError("a")), Raised(ValueError("b")), "f") is None
    assert same(torch.tensor([1, 2]), torch.tensor([1, 3]), "ids").startswith("ids differs in 1 of 2 places")


def test_same_shows_numbers_that_differ_past_six_digits_in_full():
    # float32 rounding of 500/21 and an off-by-one 6N + 1: six significant digits would print
    # the same number twice ("should be 23.8095, got 23.8095")
    assert same(23.809524536132812, 500 / 21, "x", atol=0, rtol=1e-9) == \
        "x should be 23.80952380952381, got 23.809524536132812"
    assert same(1.0e7 / 1.0000001, 1.0e7, "steps", atol=0, rtol=1e-9) == \
        "steps should be 10000000.0, got 9999999.000000099"
    assert same(2.5, 3.0, "y") == "y should be 3.0, got 2.5"


def test_outputs_and_grads_names_a_cut_gradient():
    w = torch.randn(3, 2, generator=torch.Generator().manual_seed(0))

    def observe(detach):
        x = torch.ones(4, 3, requires_grad=True)
        weight = w.clone().requires_grad_(True)
        h = x @ weight
        out = h.detach() * 2 if detach == "output" else (x @ weight.detach() if detach == "weight" else h)
        return outputs_and_grads(out, {"x": x, "weight": weight})

    want = observe(None)
    assert set(want) == {"output", "grad of x", "grad of weight"}
    assert "does not carry gradients" in same(observe("output"), want, "f(x)")
    assert "['grad of weight'] is None: no gradient reached it" in same(observe("weight"), want, "f(x)")
    assert "should be None (it is frozen" in same(want, observe("weight"), "f(x)")


def test_refuse_reference_only_package_objects(capsys):
    from llmcourse.generate import top_k_filter

    with pytest.raises(CheckFailed, match="the course's own reference"):
        refuse_reference(top_k_filter, "top_k_filter")
    refuse_reference(_double, "x")  # a test's (a learner's) function
    refuse_reference(lambda x: x, "x")
    refuse_reference(_adds, "x")  # a mistake of a table is no reference

    @check("k")
    def check_k(fn):
        pass

    assert bool(check_k(top_k_filter)) is False
    assert "fn is the course's own reference (llmcourse.generate.sampling.top_k_filter)" in one_line(capsys)

    @check("k", learner=("fn",))
    def check_k2(fn, helper):
        pass

    assert bool(check_k2(_double, top_k_filter)) is True
    one_line(capsys)


def test_check_isolates_rng_and_grad_mode(capsys):
    import random

    @check("noisy")
    def check_noisy():
        torch.manual_seed(123)
        torch.randn(5)
        random.random()
        np.random.rand()
        torch.set_grad_enabled(False)

    torch.manual_seed(7)
    random.seed(7)
    np.random.seed(7)
    expected = (torch.randn(2), random.random(), np.random.rand())
    torch.manual_seed(7)
    random.seed(7)
    np.random.seed(7)
    check_noisy()
    got = (torch.randn(2), random.random(), np.random.rand())
    assert torch.equal(got[0], expected[0]) and got[1:] == expected[1:]
    assert torch.is_grad_enabled()
    one_line(capsys)


def test_check_log_records_each_verdict(tmp_path, monkeypatch, capsys):
    import json

    log = tmp_path / "log.jsonl"
    monkeypatch.setenv("LLMCOURSE_CHECK_LOG", str(log))
    check_double(_double)
    check_double(_adds)
    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert [(r["exercise"], r["passed"]) for r in records] == [("double", True), ("double", False)]
    assert all(r["cpu_s"] >= 0 for r in records) and records[1]["line"].startswith("❌ double:")
    capsys.readouterr()


def test_mistake_needs_a_hint_or_expect():
    with pytest.raises(ValueError, match="give a hint"):
        Mistake("x", _adds)


def test_as_float_and_is_close():
    assert as_float(np.float32(2.5), "loss") == 2.5
    with pytest.raises(CheckFailed, match="returned None"):
        as_float(None, "loss")
    assert is_close(float("nan"), float("nan")) and not is_close(1.0, 1.001)


def test_refuse_reference_sees_through_decorators():
    import functools

    from llmcourse.checks._core import _package_object
    from llmcourse.generate import top_k_filter

    @functools.wraps(top_k_filter)
    def wrapped(*a, **k):
        return top_k_filter(*a, **k)

    assert _package_object(wrapped) == "llmcourse.generate.sampling.top_k_filter"
    assert _package_object(torch.no_grad()(_double)) is None  # a learner's function, decorated


def test_learners_own_assert_is_reported_as_their_crash(capsys):
    # A learner who validates with `assert` (the lesson asks for ValueError) must not see their
    # own assert message printed as if it were the check's hint.
    ns: dict = {}  # compiled outside pytest's assertion rewriting, as a notebook cell is
    exec("def double(x):\n    assert x >= 0, 'x must be positive'\n    return 2 * x\n", ns)

    def body():
        call(ns["double"], -1)

    assert bool(run_check("ex", body)) is False
    assert one_line(capsys) == "❌ ex: your code raised AssertionError: x must be positive on double(-1)"


def test_learners_assert_called_directly_by_a_check_is_their_crash(capsys):
    # a check that calls the learner's code itself (not through call/compare) and lets an
    # AssertionError through: the learner's own assert is named as theirs, not as "no detail"
    ns: dict = {}
    exec("def getitem(k):\n    assert 0 <= k < 3\n    return k\n", ns)

    def body():
        ns["getitem"](5)

    assert bool(run_check("ex", body)) is False
    assert one_line(capsys) == "❌ ex: your code raised AssertionError"


def test_learners_assert_in_compare_is_matched_with_the_table(capsys):
    def reference(x):
        if x < 0:
            raise ValueError("x must be >= 0")
        return 2 * x

    ns: dict = {}
    exec("def with_assert(x):\n    assert x >= 0, 'negative'\n    return 2 * x\n", ns)
    with_assert = ns["with_assert"]
    table = [Mistake("assert", with_assert, hint="raise ValueError for a negative x, not assert")]
    cases = [Case("double(3)", 3), Case("double(-1)", -1)]

    def body():
        compare(with_assert, reference, cases, name="double(x)", mistakes=table)

    assert bool(run_check("ex", body)) is False
    assert one_line(capsys) == "❌ ex: raise ValueError for a negative x, not assert (on double(-1))"


def test_a_checks_own_assert_still_passes_through(capsys):
    # a plain `assert` in a check module (compiled under a file name inside checks/) is the
    # check's verdict, printed as its hint
    import os
    ns: dict = {}
    where = os.path.join(os.path.dirname(_core.__file__), "day99.py")
    exec(compile("def run(impl, case):\n    assert False, \"the check's own words\"\n", where, "exec"), ns)

    def body():
        compare(lambda x: 2 * x, lambda x: 2 * x, [Case("f(1)", 1)], name="f(x)", run=ns["run"])

    assert bool(run_check("ex", body)) is False
    assert one_line(capsys) == "❌ ex: the check's own words"
