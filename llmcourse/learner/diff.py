"""``llmcourse diff``: each exercise of a learner's notebook against the lesson's solution.

The solution of a lesson is found by its day number: ``solutions/dayNN_*.md``, the lesson
source with the ``# BEGIN SOLUTION`` / ``# STUB:`` / ``# END SOLUTION`` marks (see
CONTRIBUTING.md). The ``solutions/`` folder is looked for next to the notebook and in its parent
folders, in the current folder and its parents, and in the checkout the package runs from. A
package installed from PyPI or git has no ``solutions/`` folder (the solutions are course
material, not code): pass ``--solutions DIR`` pointing to a clone's ``solutions/``.

Each exercise is found in the learner's notebook by the check cell after it (which learners
leave as it is), then compared token by token, so comments and spacing do not count.

Example::

    >>> code_tokens(["x = 1  # one"]) == code_tokens(["x=1"])
    True
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

from llmcourse.learner.notebooks import (BEGIN_RE, Cell, LearnerError, day_of_name, lesson_day,
                                         read_code_cells, stub_and_solution)

__all__ = ["Exercise", "Pairing", "find_solution", "solution_exercises", "pair_exercises",
           "code_tokens", "diff_notebook", "check_lesson_matches_name"]


def check_lesson_matches_name(notebook: Path) -> None:
    """Refuse a notebook whose content is another day's lesson than its name says.

    Raises:
        LearnerError: e.g. a day-01 notebook saved as ``day05_...ipynb``.
    """
    named = day_of_name(notebook)
    found = lesson_day(notebook)
    if found and found[0] != named:
        day, evidence = found
        raise LearnerError(f"{notebook.name} looks like the lesson of day {day} ({evidence}), but its "
                           f"name says day {named}: rename it day{day}_..., or pass --solution FILE "
                           "to compare it with another lesson on purpose")


@dataclasses.dataclass
class Exercise:
    """One exercise cell of a lesson: where it is, its title, its stub and its solution."""

    number: int  # 1, 2, ... in the order of the lesson
    title: str  # the heading above it ("Exercise 2 - causal attention (write a function)")
    stub: list[str]
    solution: list[str]
    anchor: list[str]  # the code cell after it (its check), as in the lesson: finds the exercise
    anchor_is_exercise: bool = False  # the next cell is an exercise too (so a learner edits it)


def _repo_candidates(start: Path) -> list[Path]:
    start = start.resolve()
    return [start, *start.parents]


def find_solution(notebook: Path, solutions_dir: Optional[Path] = None) -> Path:
    """The solution source ``solutions/dayNN_*.md`` of ``notebook``'s lesson (by its day number).

    Raises:
        LearnerError: no solution found; the message says where it looked and what to pass.
    """
    day = day_of_name(Path(notebook))
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
    cells = read_code_cells(notebook)  # a file that is not a notebook is refused first
    if not solution:
        check_lesson_matches_name(notebook)
    solution = Path(solution) if solution else find_solution(notebook, solutions_dir)
    pairings = pair_exercises(solution_exercises(solution), cells)
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
