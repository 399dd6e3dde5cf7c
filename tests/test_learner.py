"""``llmcourse diff`` and ``llmcourse check`` on a learner's notebook (llmcourse/learner*.py)."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from llmcourse import learner
from llmcourse.cli import main

ROOT = Path(__file__).resolve().parents[1]

# A three-exercise lesson source in the course's marking scheme, with its own checks.
SOURCE = '''---
jupytext:
  text_representation:
    format_name: myst
kernelspec:
  name: python3
---

# Day 99: a demo

```{code-cell} ipython3
from llmcourse.checks._core import assert_equal, check

@check("double")
def check_double(fn):
    assert_equal(fn(21), 42, "double(21)")

@check("square")
def check_square(fn):
    assert_equal(fn(7), 49, "square(7)")

@check("halve")
def check_halve(fn):
    assert_equal(fn(8), 4, "halve(8)")
```

### Exercise 1 - double

```{code-cell} ipython3
def double(x):
    # BEGIN SOLUTION
    # STUB: raise NotImplementedError  # TODO: twice x
    return 2 * x
    # END SOLUTION
```

```{code-cell} ipython3
check_double(double)
```

### Exercise 2 - square

```{code-cell} ipython3
def square(x):
    # BEGIN SOLUTION
    # STUB: raise NotImplementedError  # TODO: x times x
    return x * x
    # END SOLUTION
```

```{code-cell} ipython3
check_square(square)
```

### Exercise 3 - halve

```{code-cell} ipython3
def halve(x):
    # BEGIN SOLUTION
    return x // 2
    # END SOLUTION
```

```{code-cell} ipython3
check_halve(halve)
```
'''

SETUP = SOURCE.split("```{code-cell} ipython3\n", 2)[1].split("```", 1)[0]


def _notebook(path: Path, cells: list[str], title: str = "# Day 99") -> Path:
    """Write a minimal .ipynb with these code cells (and a markdown title: the lesson's day)."""
    nb = {
        "cells": [{"cell_type": "markdown", "id": "title", "metadata": {}, "source": title}]
        + [{"cell_type": "code", "id": f"cell-{i}", "metadata": {}, "execution_count": None,
            "outputs": [], "source": c} for i, c in enumerate(cells)],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(nb), encoding="utf-8")
    return path


@pytest.fixture()
def course(tmp_path):
    """A clone-like folder: solutions/day99_demo.md and a learner's notebook elsewhere in it."""
    (tmp_path / "solutions").mkdir()
    (tmp_path / "solutions" / "day99_demo.md").write_text(SOURCE, encoding="utf-8")
    work = tmp_path / "my_work"
    work.mkdir()
    mine = _notebook(work / "day99_demo.ipynb", [
        SETUP,
        "def double(x):\n    return 2 * x",                    # correct: the solution itself
        "check_double(double)",
        "print('a scratch cell of my own')",
        "def square(x):\n    return x + x  # wrong",           # wrong
        "check_square(square)",
        'def halve(x):\n    raise NotImplementedError("exercise: write this part")',  # stubbed
        "check_halve(halve)",
    ])
    return tmp_path, mine


def test_diff_pairs_each_exercise(course, capsys):
    root, mine = course
    out = io.StringIO()
    counts = learner.diff_notebook(mine, out=out)
    assert counts == {"same": 1, "stub": 1, "different": 1, "missing": 0}
    text = out.getvalue()
    assert "== Exercise 1 - double: identical to the solution\n" in text
    assert "== Exercise 2 - square: different\n" in text
    assert "-    return x + x  # wrong" in text and "+    return x * x" in text
    assert "== Exercise 3 - halve: still a stub\n" in text
    assert "code cell" not in text  # exercises are named by their titles, not cell numbers
    assert "scratch" not in text  # cells that are not exercises are left out
    assert text.rstrip().splitlines()[-1] == "3 exercises: 1 identical to the solution, 1 still a stub, 1 different"
    assert "\033[" not in text  # no colour unless asked for or on a terminal


def test_diff_cli_exit_code_and_colour(course, capsys):
    root, mine = course
    assert main(["diff", str(mine), "--color", "always"]) == 1
    out = capsys.readouterr().out
    assert "\033[31m-    return x + x" in out and "\033[32m+    return x * x" in out


def test_diff_md_notebook_and_explicit_solutions(course, tmp_path_factory):
    root, _ = course
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    md = elsewhere / "day99_demo.md"
    md.write_text(SOURCE.replace("    return 2 * x\n", "    return x * 2\n"), encoding="utf-8")
    out = io.StringIO()
    counts = learner.diff_notebook(md, solutions_dir=root / "solutions", out=out)
    # The learner's .md still holds the marks: compared by its solution part.
    assert counts == {"same": 2, "stub": 0, "different": 1, "missing": 0}


def test_diff_errors_are_one_clear_line(tmp_path, capsys):
    nb = _notebook(tmp_path / "my_notebook.ipynb", ["print(1)"])
    assert main(["diff", str(nb)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no day number" in err
    nb = _notebook(tmp_path / "day98_nothing.ipynb", ["print(1)"], title="# Day 98")
    assert main(["diff", str(nb), "--solutions", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no solution source solutions/day98_*.md" in err and "--solutions" in err
    assert main(["diff", str(tmp_path / "day01_missing.ipynb")]) == 2
    assert "no such notebook" in capsys.readouterr().err


def test_check_runs_headless_and_tabulates(course, capsys):
    root, mine = course
    before = mine.read_bytes()
    assert main(["check", str(mine)]) == 1
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert lines[0].split() == ["exercise", "verdict", "message"]
    rows = {line.split()[0]: line for line in lines[1:-1]}
    assert rows["double"].split()[1] == "passed"
    assert rows["square"].split()[1] == "hint" and "square(7) should be 49, got 14" in rows["square"]
    assert rows["halve"].split()[1:3] == ["not", "done"]
    assert lines[-1] == "1 of 3 checks passed"
    assert mine.read_bytes() == before  # the learner's notebook is never changed


def test_check_exit_0_when_all_pass(course, tmp_path):
    root, _ = course
    good = _notebook(tmp_path / "day99_good.ipynb", [
        SETUP, "def double(x):\n    return 2 * x", "check_double(double)",
        "def square(x):\n    return x ** 2", "check_square(square)",
        "def halve(x):\n    return x // 2", "check_halve(halve)",
    ])
    rows = learner.run_checks(good)
    assert [r.verdict for r in rows] == ["passed"] * 3


def test_check_reports_a_check_cell_that_raised(tmp_path):
    nb = _notebook(tmp_path / "day99_broken.ipynb", [
        SETUP, "def double(x):\n    return 2 * x", "check_double(dubble)",
    ])
    rows = learner.run_checks(nb)
    assert len(rows) == 1 and rows[0].verdict == "error"
    assert "NameError" in rows[0].message and "dubble" in rows[0].message


# ---- the real lessons --------------------------------------------------------------------------

LESSONS = sorted(p.stem for p in (ROOT / "solutions").glob("day*.md"))


@pytest.mark.parametrize("name", LESSONS)
def test_every_lesson_reads_as_stubs_and_its_solution_as_solved(name):
    """Pairing works on every lesson: its stubs against the solution, and the solved notebook."""
    paths = [(ROOT / "lessons" / f"{name}.ipynb", "stub"), (ROOT / "lessons" / f"{name}.md", "stub"),
             (ROOT / "solutions" / f"{name}.ipynb", "same")]
    if not all(path.is_file() for path, _ in paths):
        pytest.skip(f"{name} is not built yet")
    from tools.nb import source_sha256

    sha = source_sha256((ROOT / "solutions" / f"{name}.md").read_text(encoding="utf-8"))
    for path, _ in paths[::2]:  # the two generated .ipynb files record their source's hash
        if json.loads(path.read_text(encoding="utf-8"))["metadata"]["llmcourse"]["source_sha256"] != sha:
            pytest.skip(f"{path.name} is stale (tools.nb check reports it); rebuild it first")
    for path, status in paths:
        counts = learner.diff_notebook(path, out=io.StringIO())
        assert counts[status] == sum(counts.values()) >= 3, (path, counts)


@pytest.fixture()
def offline_env(monkeypatch):
    data = Path(os.environ.get("LLMCOURSE_DATA_DIR", "/work/shared/data"))
    if data.is_dir():
        monkeypatch.setenv("LLMCOURSE_DATA_DIR", str(data))


def test_check_on_a_lesson_and_its_solved_copy(offline_env, capsys):
    lesson = ROOT / "lessons" / "day01_characters_to_numbers.ipynb"
    rows = learner.run_checks(lesson)
    assert len(rows) >= 4 and all(r.verdict == "not done" for r in rows), rows
    assert main(["check", str(ROOT / "solutions" / "day01_characters_to_numbers.ipynb")]) == 0
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1] == f"{len(rows)} of {len(rows)} checks passed"


def test_check_runs_a_myst_md_notebook(course):
    root, _ = course
    rows = learner.run_checks(root / "solutions" / "day99_demo.md")  # the solved source itself
    assert [(r.exercise, r.verdict) for r in rows] == [("double", "passed"), ("square", "passed"),
                                                       ("halve", "passed")]


def test_check_timeout_is_one_clear_error(tmp_path, capsys):
    nb = _notebook(tmp_path / "day99_slow.ipynb", ["import time\ntime.sleep(30)"])
    assert main(["check", str(nb), "--timeout", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "longer than 1 s" in err and "--timeout" in err


def test_check_table_wraps_long_hints_whole(capsys):
    hint = ("kept every logit tied with the k-th largest (logits < kth_value keeps ties); keep exactly k: "
            "scatter the values of torch.topk back at its indices, and say which row it was in")
    rows = [learner.Row("top_k_filter", "hint", hint), learner.Row("top_p_filter", "passed", "passed")]
    learner.print_table(rows, width=80)
    out = capsys.readouterr().out.splitlines()
    assert all(len(line) <= 80 for line in out), out
    words = " ".join(line[len("top_k_filter") + 14:].strip() for line in out[1:-2])
    assert words == hint  # nothing cut, every word kept in order
    assert out[-1] == "1 of 2 checks passed"


def test_diff_ignores_comments_and_whitespace_unless_exact(tmp_path, capsys):
    (tmp_path / "solutions").mkdir()
    (tmp_path / "solutions" / "day99_demo.md").write_text(SOURCE, encoding="utf-8")
    mine = _notebook(tmp_path / "day99_demo.ipynb", [
        SETUP,
        "def double(x):\n    # twice x, as asked\n\n    return 2*x   ",  # only comments and spaces differ
        "check_double(double)",
        "def square(x):\n    return x * x",
        "check_square(square)",
        "def halve(x):\n    return x // 2",
        "check_halve(halve)",
    ])
    assert main(["diff", str(mine), "--color", "never"]) == 0  # diff's convention: 0 identical
    out = capsys.readouterr().out
    assert "Exercise 1 - double: identical to the solution (apart from comments or whitespace" in out
    assert out.rstrip().splitlines()[-1] == "3 exercises: 3 identical to the solution, 0 still a stub, 0 different"
    assert main(["diff", str(mine), "--color", "never", "--exact"]) == 1
    out = capsys.readouterr().out
    assert "Exercise 1 - double: different" in out and "+    return 2 * x" in out


def test_code_tokens_keeps_code_that_differs():
    assert learner.code_tokens(["s = 'a # b'"]) != learner.code_tokens(["s = 'a'"])  # '#' in a string is code
    assert learner.code_tokens(["if x:", "    y = 1"]) != learner.code_tokens(["if x:", "y = 1"])
    assert learner.code_tokens(["def f(:"]) == learner.code_tokens(["def  f(:", "", "# broken"])
