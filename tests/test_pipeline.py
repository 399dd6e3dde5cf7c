"""The notebook pipeline (tools/nb/): the marking scheme, determinism, and no stale files."""

from __future__ import annotations

import doctest
import importlib
import json
import os
import pkgutil
import re
import shutil
from pathlib import Path

import pytest

from llmcourse import tour
from llmcourse.learner import notebooks
from tools import nb

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
DEMO = FIXTURES / "day00_pipeline_demo.md"


def lesson(code: str) -> str:
    return transform(code, "lesson")


def transform(code: str, mode: str) -> str:
    lines, _ = nb.transform_code(code.split("\n"), mode, "x.md", 10)
    return "\n".join(lines)


# ---- the stub transformation ---------------------------------------------------------------


def test_stub_keeps_indentation_of_begin_marker():
    code = "def f(x):\n    if x:\n        # BEGIN SOLUTION\n        # STUB: y = None  # TODO\n        y = 2\n        # END SOLUTION\n    return y"
    assert lesson(code) == "def f(x):\n    if x:\n        y = None  # TODO\n    return y"
    assert transform(code, "solution") == "def f(x):\n    if x:\n        y = 2\n    return y"


def test_default_stub_and_multiple_blocks():
    code = (
        "def f():\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION\n\n\n"
        "def g():\n    # BEGIN SOLUTION\n    # STUB: pass\n    return 2\n    # END SOLUTION"
    )
    assert lesson(code) == (
        f"def f():\n    {nb.DEFAULT_STUB}\n\n\ndef g():\n    pass"
    )


def test_stub_lines_keep_their_own_relative_indentation_and_blank_lines():
    code = "def f():\n    # BEGIN SOLUTION\n    # STUB: for i in range(3):\n    # STUB:     pass\n    # STUB:\n    # STUB: return None\n    return 1\n    # END SOLUTION"
    assert lesson(code) == "def f():\n    for i in range(3):\n        pass\n\n    return None"


def test_module_level_block_needs_a_stub():
    with pytest.raises(nb.PipelineError, match=r"x\.md:10: .*module level"):
        lesson("# BEGIN SOLUTION\nx = 1\n# END SOLUTION")
    assert lesson("# BEGIN SOLUTION\n# STUB: x = None\nx = 1\n# END SOLUTION") == "x = None"


@pytest.mark.parametrize(
    "code, line, words",
    [
        ("x = 1\n    # BEGIN SOLUTION\n    y = 2", 11, "no matching '# END SOLUTION'"),
        ("x = 1\n# END SOLUTION", 11, "without a '# BEGIN SOLUTION'"),
        ("def f():\n    # BEGIN SOLUTION\n    # BEGIN SOLUTION\n    # END SOLUTION", 12, "cannot nest"),
        ("# STUB: x = None\nx = 1", 10, "outside a solution block"),
        ("def f():\n    # BEGIN SOLUTON\n    pass", 11, "looks like a mark"),
    ],
)
def test_bad_marks_name_file_and_line(code, line, words):
    with pytest.raises(nb.PipelineError) as info:
        lesson(code)
    assert f"x.md:{line}:" in str(info.value) and words in str(info.value)


def test_the_marks_are_defined_once_in_the_package():
    """tools/nb/ reuses the marks of llmcourse.learner.notebooks: no regex of its own for them."""
    for name in ("BEGIN_RE", "END_RE", "STUB_RE", "LOOKALIKE_RE", "DEFAULT_STUB"):
        assert getattr(nb, name) is getattr(notebooks, name), name
        assert getattr(nb.marks, name, getattr(notebooks, name)) is getattr(notebooks, name), name
    own = [f"{path.name}: {m.group()}" for path in sorted((ROOT / "tools" / "nb").glob("*.py"))
           for m in re.finditer(r"re\.compile\([^\n]*(SOL|STUB)[^\n]*", path.read_text(encoding="utf-8"))]
    assert own == [], own


def test_the_strict_transform_agrees_with_the_learners_reader():
    """Once the marks pass the build's checks, the lesson and the solution are what
    llmcourse.learner.notebooks.stub_and_solution makes of the cell."""
    code = ["import torch", "", "def f(x):", "    # BEGIN SOLUTION", "    # STUB: for i in range(3):",
            "    # STUB:     pass", "    # STUB:", "    return 2 * x", "    # END SOLUTION", "",
            "def g():", "    # BEGIN SOLUTION", "    return 1", "    # END SOLUTION"]
    stub, solution = notebooks.stub_and_solution(code)
    assert nb.transform_code(code, "lesson", "x.md", 1) == (stub, True)
    assert nb.transform_code(code, "solution", "x.md", 1) == (solution, True)
    assert nb.transform_code(["x = 1"], "lesson", "x.md", 1) == (["x = 1"], False)


def test_solution_tagged_cells_and_markdown():
    text = (
        "# Title\n\nText with `# BEGIN SOLUTION` quoted.\n\n"
        "```{code-cell} ipython3\n:tags: [solution]\n\nprint('answer')\n```\n\n"
        "More text.\n\n"
        "```{code-cell} ipython3\n---\ntags: [hide-output]\n---\ndef f():\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION\n```\n"
    )
    les = nb.transform_source(text, "lesson", "t.md")
    assert "print('answer')" not in les.text and ":tags: [solution]" not in les.text
    assert "Text with `# BEGIN SOLUTION` quoted." in les.text and "More text." in les.text
    assert nb.DEFAULT_STUB in les.text and "return 1" not in les.text
    assert les.hidden == [True]
    sol = nb.transform_source(text, "solution", "t.md")
    assert "print('answer')" in sol.text and "BEGIN SOLUTION\n" not in sol.text.split("quoted.")[1]
    assert sol.hidden == [True, True]


def test_unclosed_code_fence_is_an_error():
    with pytest.raises(nb.PipelineError, match=r"t\.md:3: .*never closed"):
        nb.transform_source("a\n\n```{code-cell} ipython3\nx = 1\n", "lesson", "t.md")


def test_bad_repository_url(tmp_path):
    (tmp_path / "_config.yml").write_text("repository:\n  url: not-a-url\n")
    with pytest.raises(nb.PipelineError, match="repository.url"):
        nb.read_repository(tmp_path / "_config.yml")


# ---- the pipeline's own code ----------------------------------------------------------------

NB_MODULES = sorted(m.name for m in pkgutil.iter_modules(nb.__path__, prefix="tools.nb.")
                    if m.name != "tools.nb.__main__")  # importing that one runs the command


def test_every_module_is_short_documented_and_imports_downward():
    """One concept per module: each under 450 lines with a docstring, and no import cycle
    between them (the package __init__ re-exports them; none imports it back)."""
    assert {"tools.nb.marks", "tools.nb.notebook", "tools.nb.cli"} <= set(NB_MODULES)
    for path in sorted((ROOT / "tools" / "nb").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert len(text.splitlines()) < 450, f"{path.name}: split it by concept"
        assert text.startswith('"""'), f"{path.name}: say what the module is in a docstring"
    graph = {m: {t for t in targets if t.startswith("tools.nb")}
             for m, targets in tour.module_imports(ROOT / "tools").items() if m.startswith("tools.nb")}
    assert tour.cycles(graph) == []
    assert not any("tools.nb" in targets for m, targets in graph.items() if m != "tools.nb"), graph


def test_no_import_cycle_between_the_tools():
    """tools.lesson_times reads the build record that tools.nb writes (tools.nb.record), so it
    imports tools.nb, never the other way round."""
    graph = {m: {t for t in targets if t.startswith("tools.")}
             for m, targets in tour.module_imports(ROOT / "tools").items()}
    assert "tools.lesson_times" in graph and "tools.nb.record" in graph["tools.lesson_times"]
    assert tour.cycles(graph) == []


@pytest.mark.parametrize("name", NB_MODULES)
def test_doctests(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed"


def test_python_m_tools_nb_is_the_cli():
    assert (ROOT / "tools" / "nb" / "__main__.py").read_text(encoding="utf-8").count("from tools.nb.cli import main") == 1
    assert nb.main is nb.cli.main and nb.ROOT == ROOT


# ---- building the demo lesson --------------------------------------------------------------


@pytest.fixture
def demo_root(tmp_path) -> nb.Layout:
    (tmp_path / "solutions").mkdir()
    shutil.copy(DEMO, tmp_path / "solutions" / DEMO.name)
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    (tmp_path / "llmcourse").mkdir()
    shutil.copy(ROOT / "llmcourse" / "__init__.py", tmp_path / "llmcourse")  # the version
    (tmp_path / "book" / "_static").mkdir(parents=True)
    shutil.copy(ROOT / "book" / "_static" / "open-in-colab.png", tmp_path / "book" / "_static")
    return nb.Layout.from_root(tmp_path)


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_demo_lesson_generated_without_execution(demo_root):
    layout = demo_root
    assert nb.build(layout, log=lambda *a: None) == []
    first = snapshot(layout.root)
    assert nb.build(layout, log=lambda *a: None) == []
    assert snapshot(layout.root) == first  # deterministic, byte for byte

    lesson_md = (layout.lessons / "day00_pipeline_demo.md").read_text()
    source = DEMO.read_text()
    assert "e = torch.exp(z - z.max())" in source and "e = torch.exp(z - z.max())" not in lesson_md
    assert "# TODO: exponentiate" in lesson_md and "Only in the solutions" not in lesson_md
    assert "BEGIN SOLUTION" not in lesson_md and "STUB" not in lesson_md

    lesson_nb = json.loads((layout.lessons / "day00_pipeline_demo.ipynb").read_text())
    assert lesson_nb["metadata"]["kernelspec"]["name"] == "python3"
    first_cell, setup = lesson_nb["cells"][0], lesson_nb["cells"][1]
    assert first_cell["cell_type"] == "markdown" and "colab.research.google.com/github/llmcourse/llmcourse/blob/main/lessons/day00_pipeline_demo.ipynb" in "".join(first_cell["source"])
    assert '"google.colab" in sys.modules' in "".join(setup["source"])
    import llmcourse
    assert f"git+https://github.com/llmcourse/llmcourse@v{llmcourse.__version__}" in "".join(setup["source"])
    assert all(c.get("outputs", []) == [] for c in lesson_nb["cells"])
    ids = [c["id"] for c in lesson_nb["cells"]]
    assert len(set(ids)) == len(ids)

    # Without --execute the solution notebook is written unexecuted, and check says so.
    problems = nb.check(layout)
    assert any("not executed" in p for p in problems), problems
    assert not any("lessons/" in p for p in problems), problems


def test_check_names_stale_and_orphan_files(demo_root):
    layout = demo_root
    nb.build(layout, log=lambda *a: None)
    path = layout.lessons / "day00_pipeline_demo.md"
    path.write_text(path.read_text() + "\nedited by hand\n")
    (layout.lessons / "day99_gone.ipynb").write_text("{}")
    problems = nb.check(layout)
    assert any(p.startswith("lessons/day00_pipeline_demo.md: differs") for p in problems), problems
    assert any(p.startswith("lessons/day99_gone.ipynb: orphan") for p in problems), problems
    src = layout.solutions / DEMO.name
    src.write_text(src.read_text().replace("Day 0:", "Day zero:"))
    assert any("source hash differs" in p or "not executed" in p for p in nb.check(layout))


@pytest.mark.slow
def test_demo_solution_executes_deterministically(demo_root):
    layout = demo_root
    assert nb.build(layout, execute=True, log=lambda *a: None) == []
    path = layout.solutions / "day00_pipeline_demo.ipynb"
    first = path.read_bytes()
    solved = json.loads(first)
    assert solved["metadata"]["llmcourse"]["executed"] is True
    text = json.dumps(solved, ensure_ascii=False)
    for wanted in ("✅ softmax: passed", "✅ entropy: passed", "image/png", "uniform entropy over 4 outcomes"):
        assert wanted in text, wanted
    assert "BEGIN SOLUTION" not in text and "STUB:" not in text and '"execution"' not in text
    by_source = {"".join(c["source"]): c for c in solved["cells"]}
    softmax_cell = next(c for s, c in by_source.items() if s.startswith("def softmax"))
    assert "hide-input" in softmax_cell["metadata"]["tags"]
    assert nb.check(layout) == [] or all("_toc" in p or "book/api" in p for p in nb.check(layout))
    # Unchanged source: no re-execution, same bytes. Forced: executed again, still the same bytes.
    messages: list[str] = []
    nb.build(layout, execute=True, log=messages.append)
    assert not any(m.startswith("executed") for m in messages) and path.read_bytes() == first
    nb.build(layout, execute=True, force=True, log=messages.append)
    assert any(m.startswith("executed") for m in messages)
    again = json.loads(path.read_bytes())
    # The build records how long the run took (the one part that may differ), and the cell that
    # measured the CPU time is gone again.
    records = [d["metadata"]["llmcourse"].pop("build_time") for d in (solved, again)]
    assert again == solved
    for rec in records:
        assert rec["cpu_s"] > 0 and rec["wall_s"] > 0 and rec["threads"] == os.environ.get("OMP_NUM_THREADS", "1")
        assert len(rec["cells_wall_s"]) == sum(c["cell_type"] == "code" for c in solved["cells"])
    assert not any("getrusage" in "".join(c["source"]) for c in again["cells"])


def test_repository_generated_files_are_current():
    """CI fails when someone edits a lesson source without running `python -m tools.nb build`."""
    problems = nb.check(nb.Layout.from_root(ROOT))
    assert problems == [], "stale generated files (run: python -m tools.nb build --execute):\n" + "\n".join(problems)
