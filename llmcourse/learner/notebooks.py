"""Reading a learner's notebook: its code cells from an ``.ipynb`` file or its MyST ``.md`` text.

The lessons mark each exercise in their source (``solutions/dayNN_slug.md``) with
``# BEGIN SOLUTION`` / ``# STUB:`` / ``# END SOLUTION``; :func:`stub_and_solution` turns such a
cell into the learner's stub and the solution, as ``tools/nb/`` does when it builds the
lessons. :func:`read_code_cells` reads either kind of notebook, refusing with one clear line a
file that is not one, and :func:`lesson_day` says which lesson a notebook's content comes from.

Example::

    >>> solution = ["def double(x):", "    # BEGIN SOLUTION", "    # STUB: raise NotImplementedError",
    ...             "    return 2 * x", "    # END SOLUTION"]
    >>> stub_and_solution(solution)
    (['def double(x):', '    raise NotImplementedError'], ['def double(x):', '    return 2 * x'])
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any, Optional, Sequence

from llmcourse.learner import myst

__all__ = ["Cell", "LearnerError", "stub_and_solution", "read_code_cells", "read_text",
           "load_ipynb", "day_of_name", "lesson_day", "BEGIN_RE"]

DEFAULT_STUB = 'raise NotImplementedError("exercise: write this part")'
BEGIN_RE = re.compile(r"^(?P<indent>[ \t]*)#\s*BEGIN SOLUTION\s*$")
END_RE = re.compile(r"^[ \t]*#\s*END SOLUTION\s*$")
STUB_RE = re.compile(r"^[ \t]*#\s*STUB:(?: (?P<text>.*)|(?P<empty>\s*))$")
# Anything that looks like a mark but is not exactly one: the build refuses it (typos must not
# pass silently); a learner's file is read as it is.
LOOKALIKE_RE = re.compile(r"^[ \t]*#\s*(BEGIN|END)[ _-]*SOL\w*\s*$|^[ \t]*#\s*STUB\b", re.IGNORECASE)
HEADING_RE = re.compile(r"^#{1,6}\s+(?P<title>.*\S)\s*$")
DAY_RE = re.compile(r"day(?P<day>\d{2})", re.IGNORECASE)
TITLE_DAY_RE = re.compile(r"^#\s+Day\s+(?P<day>\d{1,2})\b", re.IGNORECASE)


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
    """The lesson (stub) and solution versions of a marked cell, as ``tools/nb/`` builds them.

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
    """The code cells of a MyST Markdown notebook (``{code-cell}`` fences), with their tags and
    the last heading above each, read by :mod:`llmcourse.learner.myst` as well as it can be."""
    cells: list[Cell] = []
    heading = ""
    for block in myst.read_blocks(text.splitlines(), strict=False):
        if block.kind == "markdown":
            titles = [m.group("title") for m in map(HEADING_RE.match, block.lines) if m]
            heading = titles[-1] if titles else heading
        elif block.kind == "code":
            tags = block.options.get("tags") or []
            cells.append(Cell(list(block.lines), [str(t) for t in tags] if isinstance(tags, list) else [str(tags)],
                              heading))
    return cells


def read_text(path: Path) -> str:
    """The UTF-8 text of ``path``; a file that is not text is refused in one line naming it.

    Raises:
        FileNotFoundError: there is no such file.
        LearnerError: the bytes are not UTF-8 text.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such notebook")
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LearnerError(f"{path} is not a notebook: its bytes are not UTF-8 text (byte {exc.start} "
                           "cannot be read); pass the .ipynb or .md file of the lesson") from exc


def load_ipynb(path: Path) -> dict[str, Any]:
    """The JSON of an ``.ipynb`` file, checked to be a notebook: an object with a list of cells.

    Every cell must be an object whose ``source`` is a string or a list of strings.

    Raises:
        LearnerError: the file is not JSON, or not shaped like a notebook.
    """
    path = Path(path)
    try:
        nb = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise LearnerError(f"{path} is not a valid .ipynb file (JSON error at line {exc.lineno}): "
                           "save it again from Jupyter") from exc
    problem = None
    if not isinstance(nb, dict) or "cells" not in nb:
        problem = "it holds no list of cells"
    elif not isinstance(nb["cells"], list):
        problem = "its 'cells' is not a list"
    else:
        for n, cell in enumerate(nb["cells"], 1):
            source = cell.get("source", "") if isinstance(cell, dict) else None
            if not isinstance(cell, dict) or not (
                    isinstance(source, str)
                    or (isinstance(source, list) and all(isinstance(s, str) for s in source))):
                problem = f"its cell {n} is not a notebook cell (an object with a text 'source')"
                break
    if problem:
        raise LearnerError(f"{path} is not a Jupyter notebook: {problem}; save it again from "
                           "Jupyter, or pass the lesson's .md text")
    return nb


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _tags(cell: dict[str, Any]) -> list[str]:
    metadata = cell.get("metadata")
    tags = metadata.get("tags", []) if isinstance(metadata, dict) else []
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []


def read_code_cells(path: Path) -> list[Cell]:
    """The code cells of an ``.ipynb`` or MyST ``.md`` notebook, outputs ignored.

    Raises:
        FileNotFoundError: there is no such file.
        LearnerError: the file is not a notebook this module can read.
    """
    path = Path(path)
    if path.suffix not in (".md", ".ipynb"):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such notebook")
        raise LearnerError(f"{path}: expected a notebook (.ipynb) or its MyST text (.md)")
    if path.suffix == ".md":
        return _md_cells(read_text(path))
    return [Cell(_source(cell).splitlines(), _tags(cell)) for cell in load_ipynb(path)["cells"]
            if cell.get("cell_type") == "code"]


def day_of_name(path: Path) -> str:
    """The two-digit day number in a notebook's file name (``day09_...`` gives ``"09"``).

    Raises:
        LearnerError: the name has no ``dayNN``.

    Example::

        >>> day_of_name(Path("my_work/day09_attention.ipynb"))
        '09'
    """
    match = DAY_RE.search(Path(path).name)
    if not match:
        raise LearnerError(f"{Path(path).name}: the file name has no day number (dayNN); keep the "
                           "lesson's name, e.g. day09_scaled_dot_product_attention.ipynb, or pass "
                           "--solution FILE")
    return match.group("day")


def lesson_day(path: Path) -> Optional[tuple[str, str]]:
    """The day a notebook's content belongs to, and what says so; ``None`` when nothing does.

    A lesson built by the course records its name in the notebook's metadata
    (``llmcourse.lesson``); otherwise the first title ``# Day NN ...`` is used.

    Example::

        >>> import tempfile
        >>> page = Path(tempfile.mkdtemp()) / "day05_mine.md"
        >>> _ = page.write_text("# Day 01 - Characters to numbers\\n")
        >>> lesson_day(page)
        ('01', "its title 'Day 01 - Characters to numbers'")
    """
    path = Path(path)
    if path.suffix == ".ipynb":
        nb = load_ipynb(path)
        metadata = nb.get("metadata")
        lesson = metadata.get("llmcourse", {}) if isinstance(metadata, dict) else {}
        name = lesson.get("lesson") if isinstance(lesson, dict) else None
        if isinstance(name, str) and DAY_RE.match(name):
            return DAY_RE.match(name).group("day"), f"its metadata names the lesson {name}"
        lines = [line for cell in nb["cells"] if cell.get("cell_type") == "markdown"
                 for line in _source(cell).splitlines()]
    else:
        lines = read_text(path).splitlines()
    for line in lines:
        match = TITLE_DAY_RE.match(line)
        if match:
            return f"{int(match.group('day')):02d}", f"its title {line.lstrip('# ').strip()!r}"
    return None
