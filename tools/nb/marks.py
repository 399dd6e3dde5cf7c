"""The exercise marks, strictly: ``# BEGIN SOLUTION`` / ``# STUB: <code>`` / ``# END SOLUTION``.

The marks and the transform itself are defined once, in :mod:`llmcourse.learner.notebooks`
(``BEGIN_RE``, ``END_RE``, ``STUB_RE``, ``DEFAULT_STUB``, ``stub_and_solution``), which reads a
learner's file leniently. The build is strict: :func:`check_marks` refuses, naming file and line,
a block that is not closed or nests, a ``STUB`` outside a block, a line that looks like a mark but
is not one, and a module-level block whose default stub would stop the lesson notebook. Only then
does :func:`transform_code` apply the shared transform.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

from llmcourse.learner import myst
from llmcourse.learner.notebooks import BEGIN_RE, END_RE, LOOKALIKE_RE, STUB_RE, stub_and_solution
from tools.nb.layout import PipelineError


@dataclasses.dataclass
class CodeCell:
    """One ``{code-cell}`` block of a MyST notebook, by line numbers (0-based, inclusive)."""

    start: int  # the opening fence
    end: int  # the closing fence
    body_start: int  # first line of code (after the options)
    tags: list[str]


def find_code_cells(lines: list[str], path: str) -> list[CodeCell]:
    """Locate the ``{code-cell}`` blocks of a MyST notebook (``llmcourse/learner/myst.py`` reads the file)."""
    try:
        blocks = myst.read_blocks(lines, path)
    except myst.MystError as exc:
        raise PipelineError(str(exc)) from None
    cells: list[CodeCell] = []
    for block in (b for b in blocks if b.kind == "code"):
        tags = block.options.get("tags") or []
        if isinstance(tags, str):
            tags = [tags]
        cells.append(CodeCell(start=block.start, end=block.end, body_start=block.body_start,
                              tags=[str(t) for t in tags]))
    return cells


def check_marks(lines: Sequence[str], path: str, first_line: int, tags: Sequence[str] = (),
                lesson: bool = True) -> bool:
    """Refuse a cell whose marks are not exactly the scheme's; return whether it holds a block.

    ``lesson`` also refuses a module-level block without ``# STUB:`` lines (its default stub,
    ``raise NotImplementedError``, would stop the lesson notebook) unless the cell is tagged
    ``raises-exception``. Errors name ``path`` and the line (``lines[0]`` is ``first_line``).
    """
    begin_line: Optional[int] = None
    indent = ""
    has_stub = found = False
    for offset, line in enumerate(lines):
        lineno = first_line + offset
        begin = BEGIN_RE.match(line)
        if begin:
            if begin_line is not None:
                raise PipelineError(
                    f"{path}:{lineno}: '# BEGIN SOLUTION' inside the solution block opened at line "
                    f"{begin_line}; close that one with '# END SOLUTION' first (blocks cannot nest)"
                )
            begin_line, indent, has_stub, found = lineno, begin.group("indent"), False, True
        elif END_RE.match(line):
            if begin_line is None:
                raise PipelineError(
                    f"{path}:{lineno}: '# END SOLUTION' without a '# BEGIN SOLUTION' before it in this cell"
                )
            if lesson and not has_stub and indent == "" and "raises-exception" not in tags:
                raise PipelineError(
                    f"{path}:{begin_line}: this solution block is at module level and has no "
                    "'# STUB: ' lines, so the default stub (raise NotImplementedError) would stop "
                    "the lesson notebook; add a harmless stub such as '# STUB: x = None  # TODO ...'"
                )
            begin_line = None
        elif STUB_RE.match(line):
            if begin_line is None:
                raise PipelineError(
                    f"{path}:{lineno}: a '# STUB:' line outside a solution block; move it between "
                    "'# BEGIN SOLUTION' and '# END SOLUTION'"
                )
            has_stub = True
        elif LOOKALIKE_RE.match(line):
            raise PipelineError(
                f"{path}:{lineno}: {line.strip()!r} looks like a mark but is not one; the marks are "
                "exactly '# BEGIN SOLUTION', '# END SOLUTION' and '# STUB: <code>'"
            )
    if begin_line is not None:
        raise PipelineError(
            f"{path}:{begin_line}: '# BEGIN SOLUTION' has no matching '# END SOLUTION' before the "
            f"end of its cell (line {first_line + len(lines)})"
        )
    return found


def transform_code(lines: list[str], mode: str, path: str, first_line: int, tags: Sequence[str] = ()) -> tuple[list[str], bool]:
    """Apply the marking scheme to a code cell's lines.

    Args:
        lines: the cell's code lines (no newline characters).
        mode: ``"lesson"`` replaces each solution block by its stub; ``"solution"`` keeps the
            solution and removes the marks and ``STUB`` lines.
        path: the source file, for error messages.
        first_line: the 1-based line number of ``lines[0]`` in the source file.
        tags: the cell's tags (a ``raises-exception`` cell may have a raising module-level stub).

    Returns:
        The new lines and whether the cell held a solution block.

    Example::

        >>> code = ["def f(x):", "    # BEGIN SOLUTION", "    # STUB: return None  # TODO",
        ...         "    return 2 * x", "    # END SOLUTION"]
        >>> transform_code(code, "lesson", "demo.md", 1)[0]
        ['def f(x):', '    return None  # TODO']
        >>> transform_code(code, "solution", "demo.md", 1)[0]
        ['def f(x):', '    return 2 * x']
    """
    if mode not in ("lesson", "solution"):
        raise ValueError(f"mode must be 'lesson' or 'solution', got {mode!r}")
    found = check_marks(lines, path, first_line, tags, lesson=mode == "lesson")
    stub, solution = stub_and_solution(lines)
    return (stub if mode == "lesson" else solution), found


@dataclasses.dataclass
class Transformed:
    text: str  # the transformed MyST text
    hidden: list[bool]  # per remaining code cell: did it hold a solution (block or tagged cell)?


def transform_source(text: str, mode: str, path: str = "<source>") -> Transformed:
    """Apply the marking scheme to a whole MyST notebook text.

    In ``"lesson"`` mode the cells tagged ``solution`` are removed (with one blank line after
    them) and solution blocks become stubs; in ``"solution"`` mode all cells stay and the marks
    go. Markdown is never changed.
    """
    lines = text.split("\n")
    cells = find_code_cells(lines, path)
    out: list[str] = []
    hidden: list[bool] = []
    pos = 0
    for cell in cells:
        out.extend(lines[pos : cell.body_start])
        body = lines[cell.body_start : cell.end]
        new_body, had_block = transform_code(body, mode, path, cell.body_start + 1, cell.tags)
        if mode == "lesson" and "solution" in cell.tags:
            del out[len(out) - (cell.body_start - cell.start) :]  # drop the fence and options too
            pos = cell.end + 1
            if pos < len(lines) and lines[pos].strip() == "":
                pos += 1
            continue
        out.extend(new_body)
        out.append(lines[cell.end])
        hidden.append(had_block or "solution" in cell.tags)
        pos = cell.end + 1
    out.extend(lines[pos:])
    return Transformed("\n".join(out), hidden)
