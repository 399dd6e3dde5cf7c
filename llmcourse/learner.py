"""``llmcourse diff`` and ``llmcourse check``: a learner's notebook against the course's solutions.

A learner works in a copy of ``lessons/dayNN_slug.ipynb`` (Jupyter, Colab) or of its MyST text
``lessons/dayNN_slug.md``. Two commands look at that work from outside the notebook:

- ``llmcourse diff NOTEBOOK`` pairs each exercise cell of the notebook with the solution's and
  prints a unified diff per exercise (code only, outputs, comments and whitespace ignored), then
  one line counting the exercises identical to the solution, still a stub, or different; its
  exit status is ``diff``'s: 0 all identical, 1 some differ, 2 trouble.
- ``llmcourse check NOTEBOOK`` executes the notebook headless on the CPU (the learner's file is
  not changed) and prints the verdict of every check cell in a table; it exits with 0 only when
  every check passed.

The solution of a lesson is found by its day number: ``solutions/dayNN_*.md``, the lesson
source with the ``# BEGIN SOLUTION`` / ``# STUB:`` / ``# END SOLUTION`` marks (see
CONTRIBUTING.md). The ``solutions/`` folder is looked for next to the notebook and in its parent
folders, in the current folder and its parents, and in the checkout the package runs from. A
package installed from PyPI or git has no ``solutions/`` folder (the solutions are course
material, not code): pass ``--solutions DIR`` pointing to a clone's ``solutions/``.

Example::

    >>> solution = ["def double(x):", "    # BEGIN SOLUTION", "    # STUB: raise NotImplementedError",
    ...             "    return 2 * x", "    # END SOLUTION"]
    >>> stub_and_solution(solution)
    (['def double(x):', '    raise NotImplementedError'], ['def double(x):', '    return 2 * x'])
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional, Sequence

__all__ = [
    "Cell",
    "Row",
    "Exercise",
    "Pairing",
    "LearnerError",
    "stub_and_solution",
    "read_code_cells",
    "find_solution",
    "solution_exercises",
    "pair_exercises",
    "code_tokens",
    "diff_notebook",
    "run_checks",
    "add_parsers",
]

DEFAULT_STUB = 'raise NotImplementedError("exercise: write this part")'
BEGIN_RE = re.compile(r"^(?P<indent>[ \t]*)#\s*BEGIN SOLUTION\s*$")
END_RE = re.compile(r"^[ \t]*#\s*END SOLUTION\s*$")
STUB_RE = re.compile(r"^[ \t]*#\s*STUB:(?: (?P<text>.*)|(?P<empty>\s*))$")
CODE_FENCE_RE = re.compile(r"^(?P<fence>`{3,}|~{3,})\{code-cell\}")
HEADING_RE = re.compile(r"^#{1,6}\s+(?P<title>.*\S)\s*$")
DAY_RE = re.compile(r"day(?P<day>\d{2})", re.IGNORECASE)


class LearnerError(ValueError):
    """A notebook or solution that cannot be read or paired; the message says what to do."""


# ---- reading notebooks ------------------------------------------------------------------------


@dataclasses.dataclass
class Cell:
    """One code cell: its lines, its tags and the last heading above it (for ``.md`` sources)."""

    lines: list[str]
    tags: list[str]
    heading: str = ""


def stub_and_solution(lines: Sequence[str]) -> tuple[list[str], list[str]]:
    """The lesson (stub) and solution versions of a marked cell, as ``tools/nb.py`` builds them.

    In the lesson each ``# BEGIN SOLUTION`` ... ``# END SOLUTION`` block becomes its ``# STUB:``
    lines at the block's indentation (``raise NotImplementedError(...)`` without any); in the
    solution the marks and ``STUB`` lines are removed.
    """
    stub: list[str] = []
    solution: list[str] = []
    inside, indent, stubs = False, "", []
    for line in lines:
        begin, end, stub_line = BEGIN_RE.match(line), END_RE.match(line), STUB_RE.match(line)
        if begin:
            inside, indent, stubs = True, begin.group("indent"), []
        elif end:
            stub.extend((indent + s) if s.strip() else "" for s in (stubs or [DEFAULT_STUB]))
            inside = False
        elif stub_line and inside:
            stubs.append(stub_line.group("text") or "")
        else:
            solution.append(line)
            if not inside:
                stub.append(line)
    return stub, solution


def _md_cells(text: str) -> list[Cell]:
    """The code cells of a MyST Markdown notebook (``{code-cell}`` fences), with their tags."""
    lines = text.splitlines()
    cells: list[Cell] = []
    heading = ""
    i = 0
    while i < len(lines):
        match = CODE_FENCE_RE.match(lines[i])
        if not match:
            title = HEADING_RE.match(lines[i])
            if title:
                heading = title.group("title")
            i += 1
            continue
        fence = match.group("fence")
        closing = re.compile(re.escape(fence[0]) + "{%d,}[ \t]*$" % len(fence))
        j = i + 1
        while j < len(lines) and not closing.match(lines[j]):
            j += 1
        body = lines[i + 1 : j]
        tags: list[str] = []
        k = 0
        if body and body[0].strip() == "---":  # a YAML options block
            end = next((n for n in range(1, len(body)) if body[n].strip() == "---"), 0)
            for option in body[1:end]:
                if option.strip().startswith("tags:"):
                    tags = re.findall(r"[\w-]+", option.split(":", 1)[1])
            k = end + 1
        else:
            while k < len(body) and re.match(r"^:[\w-]+:", body[k]):
                if body[k].startswith(":tags:"):
                    tags = re.findall(r"[\w-]+", body[k][len(":tags:"):])
                k += 1
            if k and k < len(body) and not body[k].strip():
                k += 1
        cells.append(Cell(body[k:], tags, heading))
        i = j + 1
    return cells


def read_code_cells(path: Path) -> list[Cell]:
    """The code cells of an ``.ipynb`` or MyST ``.md`` notebook, outputs ignored.

    Raises:
        LearnerError: the file is not a notebook this module can read.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such notebook")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".md":
        return _md_cells(text)
    if path.suffix != ".ipynb":
        raise LearnerError(f"{path}: expected a notebook (.ipynb) or its MyST text (.md)")
    try:
        nb = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LearnerError(f"{path} is not a valid .ipynb file (JSON error at line {exc.lineno}): "
                           "save it again from Jupyter") from exc
    cells = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        cells.append(Cell(source.splitlines(), list(cell.get("metadata", {}).get("tags", []))))
    return cells


# ---- the solution and its exercises ------------------------------------------------------------


@dataclasses.dataclass
class Exercise:
    """One exercise cell of a lesson: where it is, its title, its stub and its solution."""

    number: int  # 1, 2, ... in the order of the lesson
    title: str  # the heading above it ("Exercise 2 - causal attention (write a function)")
    stub: list[str]
    solution: list[str]
    anchor: list[str]  # the code cell after it (its check), as in the lesson: finds the exercise
    anchor_is_exercise: bool = False  # the next cell is an exercise too (so a learner edits it)


def _day_of(path: Path) -> str:
    match = DAY_RE.search(path.name)
    if not match:
        raise LearnerError(f"{path.name}: the file name has no day number (dayNN); keep the lesson's "
                           "name, e.g. day09_scaled_dot_product_attention.ipynb, or pass --solution FILE")
    return match.group("day")


def _repo_candidates(start: Path) -> list[Path]:
    start = start.resolve()
    return [start, *start.parents]


def find_solution(notebook: Path, solutions_dir: Optional[Path] = None) -> Path:
    """The solution source ``solutions/dayNN_*.md`` of ``notebook``'s lesson (by its day number).

    Raises:
        LearnerError: no solution found; the message says where it looked and what to pass.
    """
    day = _day_of(Path(notebook))
    if solutions_dir is not None:
        places = [Path(solutions_dir)]
    else:
        here = Path(__file__).resolve().parents[1]  # the checkout, for a source or editable install
        bases = _repo_candidates(Path(notebook).parent) + _repo_candidates(Path.cwd()) + [here]
        places = [b / "solutions" for b in bases] + [Path(notebook).resolve().parent]
    for place in places:
        found = sorted(place.glob(f"day{day}_*.md")) if place.is_dir() else []
        found = [f for f in found if "BEGIN SOLUTION" in f.read_text(encoding="utf-8")]
        if found:
            return found[0]
    where = f"in {solutions_dir}" if solutions_dir is not None else \
        "in a solutions/ folder next to the notebook, above it, or in the current folder"
    raise LearnerError(f"no solution source solutions/day{day}_*.md found {where}. The solutions come "
                       "with a clone of the course repository (git clone ...); run from the clone, "
                       "or pass --solutions PATH/TO/solutions")


def solution_exercises(solution: Path) -> list[Exercise]:
    """The exercises of a lesson source: its code cells that hold a ``# BEGIN SOLUTION`` block."""
    cells = [c for c in read_code_cells(solution) if "solution" not in c.tags]
    exercises = []
    for i, cell in enumerate(cells):
        if not any(BEGIN_RE.match(line) for line in cell.lines):
            continue
        stub, sol = stub_and_solution(cell.lines)
        following = cells[i + 1].lines if i + 1 < len(cells) else []
        anchor_is_exercise = any(BEGIN_RE.match(line) for line in following)
        anchor = stub_and_solution(following)[0]
        title = cell.heading if cell.heading.lower().startswith("exercise") else ""
        exercises.append(Exercise(len(exercises) + 1, title, _clean(stub), _clean(sol), _clean(anchor),
                                  anchor_is_exercise))
    if not exercises:
        raise LearnerError(f"{solution} has no exercise (no '# BEGIN SOLUTION' mark)")
    return exercises


def _clean(lines: Sequence[str]) -> list[str]:
    """Lines without trailing spaces and without blank lines at the start and the end."""
    out = [line.rstrip() for line in lines]
    while out and not out[0]:
        out.pop(0)
    while out and not out[-1]:
        out.pop()
    return out


def _similarity(a: Sequence[str], b: Sequence[str]) -> float:
    return difflib.SequenceMatcher(None, "\n".join(a), "\n".join(b), autojunk=False).ratio()


# ---- pairing and diffing -------------------------------------------------------------------------


@dataclasses.dataclass
class Pairing:
    """An exercise and the learner's cell for it (``None`` if the notebook has none)."""

    exercise: Exercise
    mine: Optional[list[str]]
    cell_index: Optional[int]  # among the notebook's code cells, 0-based

    @property
    def status(self) -> str:
        """``"same"`` as the solution, ``"stub"`` (still the lesson's stub), ``"different"`` or ``"missing"``.

        Comments and whitespace do not count (see :func:`code_tokens`); :meth:`status_exact`
        compares the lines as written.
        """
        if self.mine is None:
            return "missing"
        mine = code_tokens(self.mine)
        if mine == code_tokens(self.exercise.solution):
            return "same"
        if mine == code_tokens(self.exercise.stub):
            return "stub"
        return "different"

    @property
    def status_exact(self) -> str:
        """Like :attr:`status`, but a comment or a space counts as a difference."""
        if self.mine is None:
            return "missing"
        if self.mine == self.exercise.solution:
            return "same"
        if self.mine == self.exercise.stub:
            return "stub"
        return "different"


def code_tokens(lines: Sequence[str]) -> list[tuple[int, str]]:
    """The Python tokens of ``lines`` without comments, blank lines or spacing inside a line.

    Two cells with the same tokens differ only in comments or whitespace (indentation still
    counts, as it is code). A cell that does not tokenize (a syntax error) is compared by its
    stripped, non-blank, non-comment lines instead.

    Example::

        >>> code_tokens(["x = 1  # one"]) == code_tokens(["x=1", "", "# a note"])
        True
        >>> code_tokens(["x = 1"]) == code_tokens(["x = 2"])
        False
    """
    import io
    import tokenize

    text = "\n".join(lines) + "\n"
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER}
    try:
        return [(t.type, t.string) for t in tokenize.generate_tokens(io.StringIO(text).readline)
                if t.type not in skip]
    except (tokenize.TokenError, SyntaxError):
        return [(0, " ".join(line.split())) for line in lines
                if line.strip() and not line.strip().startswith("#")]


def pair_exercises(exercises: Sequence[Exercise], cells: Sequence[Cell]) -> list[Pairing]:
    """Find each exercise's cell in the learner's notebook.

    The cell after an exercise (its check cell) is left as it is by learners, so it anchors the
    search: the exercise is the code cell before the anchor that looks most like the stub or
    the solution. Without an anchor the most similar cell after the previous exercise is taken.
    """
    code = [_clean(stub_and_solution(c.lines)[1]) for c in cells]  # a solved source: marks removed
    checks = {tuple(ex.anchor) for ex in exercises if ex.anchor and not ex.anchor_is_exercise}
    pairings: list[Pairing] = []
    start = 0
    for ex in exercises:
        anchor = next((j for j in range(start + 1, len(code)) if ex.anchor and code[j] == ex.anchor), None)
        window = range(start, anchor) if anchor is not None else range(start, len(code))
        best, best_score = None, 0.0
        for j in window:
            if tuple(code[j]) in checks:
                continue  # a check cell is never an exercise
            score = max(_similarity(code[j], ex.stub), _similarity(code[j], ex.solution))
            if score >= best_score and score > 0:  # a tie goes to the later cell, next to the check
                best, best_score = j, score
        if best is None or best_score < 0.3:
            pairings.append(Pairing(ex, None, None))
            continue
        pairings.append(Pairing(ex, code[best], best))
        start = best + 1
    return pairings


_COLOURS = {"+": "\033[32m", "-": "\033[31m", "@": "\033[36m", "head": "\033[1m", "off": "\033[0m"}


def _paint(line: str, colour: bool) -> str:
    if not colour:
        return line
    if line.startswith(("+++", "---")):
        return _COLOURS["head"] + line + _COLOURS["off"]
    code = _COLOURS.get(line[:1])
    return code + line + _COLOURS["off"] if code else line


def diff_notebook(notebook: Path, solution: Optional[Path] = None, *, colour: bool = False,
                  solutions_dir: Optional[Path] = None, out: Any = None,
                  exact: bool = False) -> dict[str, int]:
    """Print, exercise by exercise, a unified diff of the learner's code against the solution.

    Exercises are named by their titles in the lesson. An exercise that differs from the
    solution only in comments or whitespace counts as identical (``exact=True`` counts those
    differences too, and shows them).

    Returns:
        the counts ``{"same": ..., "stub": ..., "different": ..., "missing": ...}``.
    """
    out = out or sys.stdout
    notebook = Path(notebook)
    if not notebook.is_file():
        raise FileNotFoundError(f"{notebook}: no such notebook")
    solution = Path(solution) if solution else find_solution(notebook, solutions_dir)
    pairings = pair_exercises(solution_exercises(solution), read_code_cells(notebook))
    counts = {"same": 0, "stub": 0, "different": 0, "missing": 0}
    words = {"same": "identical to the solution", "stub": "still a stub",
             "missing": "not found in your notebook", "different": "different"}
    for p in pairings:
        status = p.status_exact if exact else p.status
        counts[status] += 1
        title = p.exercise.title or f"exercise {p.exercise.number}"
        note = ""
        if status == "same" and not exact and p.status_exact != "same":
            note = " (apart from comments or whitespace; --exact shows them)"
        header = f"== {title}: {words[status]}{note}"
        print(_COLOURS["head"] + header + _COLOURS["off"] if colour else header, file=out)
        if status == "different":
            for line in difflib.unified_diff(p.mine or [], p.exercise.solution, "your notebook",
                                             f"solution ({solution.name})", lineterm="", n=2):
                print(_paint(line, colour), file=out)
    n = len(pairings)
    summary = (f"{n} exercise{'s' if n != 1 else ''}: {counts['same']} identical to the solution, "
               f"{counts['stub']} still a stub, {counts['different']} different")
    if counts["missing"]:
        summary += f", {counts['missing']} not found"
    print(summary, file=out)
    return counts


# ---- running the checks ----------------------------------------------------------------------------

VERDICT_RE = re.compile(r"^(?P<mark>[✅❌⏳])\s+(?P<exercise>[^:]+?):\s*(?P<message>.*)$")


@dataclasses.dataclass
class Row:
    """One line of the ``llmcourse check`` table."""

    exercise: str
    verdict: str  # "passed", "hint", "not done", "error" (the check cell raised), "no verdict"
    message: str


def _classify(mark: str, message: str) -> str:
    if mark == "✅":
        return "passed"
    if mark == "⏳" or "not done yet" in message:
        return "not done"
    return "hint"


def _to_nbformat(path: Path) -> Any:
    import nbformat

    if path.suffix == ".ipynb":
        nb = nbformat.read(str(path), as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        return nb
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    for cell in read_code_cells(path):
        nb.cells.append(nbformat.v4.new_code_cell("\n".join(cell.lines), metadata={"tags": cell.tags}))
    return nb


def run_checks(notebook: Path, *, timeout: int = 600, kernel: str = "python3") -> list[Row]:
    """Execute ``notebook`` headless on the CPU and collect the verdict line of every check cell.

    The learner's file is not changed: a copy is executed in a fresh temporary folder, with
    ``CUDA_VISIBLE_DEVICES=""`` (the lessons' small CPU configuration). A cell that raises does
    not stop the run; a check cell that raised gets an ``error`` row.

    Raises:
        LearnerError: ``nbclient`` (and a Jupyter kernel) are not installed.
    """
    try:
        from nbclient import NotebookClient
    except ImportError as exc:
        raise LearnerError("llmcourse check runs the notebook with nbclient and a Jupyter kernel: "
                           "pip install nbclient ipykernel") from exc
    notebook = Path(notebook)
    if not notebook.is_file():
        raise FileNotFoundError(f"{notebook}: no such notebook")
    nb = _to_nbformat(notebook)
    saved = os.environ.get("CUDA_VISIBLE_DEVICES")
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    try:
        with tempfile.TemporaryDirectory(prefix="llmcourse-check-") as cwd:
            client = NotebookClient(nb, timeout=timeout, kernel_name=kernel, allow_errors=True,
                                    resources={"metadata": {"path": cwd}})
            try:
                client.execute()
            except Exception as exc:  # noqa: BLE001 - no kernel, a cell over the timeout, ...
                name = type(exc).__name__
                if name == "NoSuchKernel":
                    raise LearnerError(f"no Jupyter kernel named {kernel!r}: pip install ipykernel") from exc
                if "Timeout" in name:
                    raise LearnerError(f"a cell ran longer than {timeout} s; pass --timeout SECONDS "
                                       "to allow more") from exc
                raise
    finally:
        if saved is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = saved
    rows: list[Row] = []
    first_error = None
    code_index = 0
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        code_index += 1
        if first_error is None:
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error" and "raises-exception" not in cell.metadata.get("tags", []):
                    first_error = f"code cell {code_index} raised {output.get('ename')}: {output.get('evalue')}"
                    break
        if "check_" not in cell.source:
            continue
        found = False
        error = None
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stdout":
                for line in output.get("text", "").splitlines():
                    match = VERDICT_RE.match(line.strip())
                    if match:
                        found = True
                        rows.append(Row(match["exercise"], _classify(match["mark"], match["message"]),
                                        match["message"]))
            elif output.get("output_type") == "error":
                error = f"{output.get('ename')}: {output.get('evalue')}"
        if error and not found:
            name = re.search(r"check_(\w+)", cell.source)
            message = f"the check cell raised {error}"
            if first_error and not first_error.startswith(f"code cell {code_index} "):
                message += f" (the first error: {first_error})"
            rows.append(Row(name.group(1) if name else f"cell {index + 1}", "error", message))
    return rows


def print_table(rows: Sequence[Row], out: Any = None, *, width: Optional[int] = None) -> None:
    """Print the rows as an aligned table and a closing count line.

    A hint is never cut: a long one wraps at word boundaries onto continuation lines under the
    message column, within ``width`` characters (default: the terminal's width, at least 100).
    """
    import shutil
    import textwrap

    out = out or sys.stdout
    if not rows:
        print("no check cell printed a verdict (is this a lesson notebook?)", file=out)
        return
    total = width or max(100, shutil.get_terminal_size((100, 24)).columns)
    name_width = max(len("exercise"), *(len(r.exercise) for r in rows))
    indent = name_width + 2 + 10 + 2
    print(f"{'exercise':<{name_width}}  {'verdict':<10}  message", file=out)
    for r in rows:
        message = "" if r.verdict == "passed" or r.message.startswith("not done yet — write your code") \
            else r.message
        lines = textwrap.wrap(message, width=max(40, total - indent), break_long_words=False,
                              break_on_hyphens=False) or [""]
        print(f"{r.exercise:<{name_width}}  {r.verdict:<10}  {lines[0]}".rstrip(), file=out)
        for more in lines[1:]:
            print(" " * indent + more, file=out)
    passed = sum(r.verdict == "passed" for r in rows)
    print(f"{passed} of {len(rows)} checks passed", file=out)


# ---- the command line --------------------------------------------------------------------------------


def _colour_wanted(choice: str) -> bool:
    if choice == "always":
        return True
    if choice == "never" or os.environ.get("NO_COLOR"):
        return False
    return sys.stdout.isatty()


def cmd_diff(args: argparse.Namespace) -> int:
    """``llmcourse diff NOTEBOOK``: exit codes as ``diff``'s: 0 identical, 1 different, 2 trouble.

    0 when every exercise is identical to the solution (comments and whitespace aside, unless
    ``--exact``), 1 when any is a stub, different or missing; 2 (from the command line's error
    handling) when the notebook or the solution cannot be read.
    """
    counts = diff_notebook(Path(args.notebook), Path(args.solution) if args.solution else None,
                           colour=_colour_wanted(args.color),
                           solutions_dir=Path(args.solutions) if args.solutions else None,
                           exact=args.exact)
    return 0 if counts["same"] == sum(counts.values()) else 1


def cmd_check(args: argparse.Namespace) -> int:
    """``llmcourse check NOTEBOOK``: exit 0 only when every check passed."""
    rows = run_checks(Path(args.notebook), timeout=args.timeout)
    print_table(rows)
    return 0 if rows and all(r.verdict == "passed" for r in rows) else 1


def add_parsers(sub: Any) -> None:
    """Register ``diff`` and ``check`` on the ``llmcourse`` command's subparsers."""
    p = sub.add_parser("diff", help="compare a lesson notebook's exercises with the solutions")
    p.add_argument("notebook", help="your lesson notebook (.ipynb) or its MyST text (.md)")
    p.add_argument("--solution", default=None,
                   help="the solution source to compare with (default: solutions/dayNN_*.md, found "
                        "by the day number in the notebook's name)")
    p.add_argument("--solutions", default=None, metavar="DIR",
                   help="the solutions/ folder of a clone of the course (default: searched)")
    p.add_argument("--color", choices=["auto", "always", "never"], default="auto",
                   help="colour the diff (default: on a terminal)")
    p.add_argument("--exact", action="store_true",
                   help="count and show differences in comments and whitespace too (default: ignored)")
    p.epilog = "exit status: 0 every exercise identical to the solution, 1 some differ, 2 trouble"
    p.set_defaults(func=cmd_diff)

    p = sub.add_parser("check", help="run a lesson notebook headless and list its checks' verdicts")
    p.add_argument("notebook", help="your lesson notebook (.ipynb) or its MyST text (.md)")
    p.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell (default 600)")
    p.set_defaults(func=cmd_check)
