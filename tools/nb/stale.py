"""``check``: every generated file that no longer matches its source, and every fragile output.

A generated file is stale when it is missing, differs from what its source makes, or (for a
solution notebook) was executed from another version of the source; a file with no source is
an orphan. :func:`fragile_outputs` finds stored outputs that would not reproduce on another CPU.
``python -m tools.nb check`` prints both kinds and exits 1 if there is any.
"""

from __future__ import annotations

import re
from pathlib import Path

from tools.nb.book import api_pages, book_files
from tools.nb.layout import LESSON_RE, Layout, PipelineError, lesson_sources, rel_path
from tools.nb.notebook import cells_signature, generate, lesson_files, read_notebook


def check(layout: Layout) -> list[str]:
    """Every stale generated file, as ``"<path>: <why>"``; empty when all are current."""
    problems: list[str] = []
    names = set()
    for source in lesson_sources(layout):
        names.add(source.stem)
        try:
            gen = generate(layout, source)
        except PipelineError as exc:
            problems.append(str(exc))
            continue
        for path, text in lesson_files(layout, gen):
            rel = rel_path(path, layout.root)
            if not path.exists():
                problems.append(f"{rel}: missing")
            elif path.read_text(encoding="utf-8") != text:
                problems.append(f"{rel}: differs from what {rel_path(source, layout.root)} generates")
        path = layout.solutions / f"{gen.name}.ipynb"
        rel = rel_path(path, layout.root)
        stored = read_notebook(path)
        if stored is None:
            problems.append(f"{rel}: missing or unreadable")
            continue
        meta = stored.metadata.get("llmcourse", {})
        if meta.get("source_sha256") != gen.sha:
            problems.append(f"{rel}: executed from an older version of {rel_path(source, layout.root)} "
                            "(source hash differs)")
        elif not meta.get("executed"):
            problems.append(f"{rel}: not executed (no stored outputs)")
        elif cells_signature(stored) != cells_signature(gen.solution_nb):
            problems.append(f"{rel}: its cells differ from what {rel_path(source, layout.root)} generates")
        else:
            problems.extend(fragile_outputs(stored, rel))
    for folder, pattern in ((layout.lessons, "*.md"), (layout.lessons, "*.ipynb"), (layout.solutions, "*.ipynb")):
        for path in sorted(folder.glob(pattern)) if folder.is_dir() else []:
            if LESSON_RE.match(path.stem) and path.stem not in names:
                problems.append(f"{rel_path(path, layout.root)}: orphan (no solutions/{path.stem}.md); delete it")
    if (layout.root / "_config.yml").exists():
        for rel, text in book_files(layout).items():
            path = layout.root / rel
            if not path.exists():
                problems.append(f"{rel}: missing")
            elif path.read_text(encoding="utf-8") != text:
                problems.append(f"{rel}: out of date")
        api_dir = layout.root / "book" / "api"
        wanted = {Path(r).name for r in api_pages(layout.root)}
        for path in sorted(api_dir.glob("*.md")) if api_dir.is_dir() else []:
            if path.name not in wanted:
                problems.append(f"{rel_path(path, layout.root)}: no such module any more; delete it")
    return problems


# ---- outputs that would not reproduce on another CPU ---------------------------------------

# A decimal with six or more digits after the point (`2.4468231201`): an unrounded float.
_UNROUNDED = re.compile(r"(?<![\w.])[-+]?\d+\.\d{6,}(?![\d\w])")
# A number in scientific notation of size 1e-6 or below (`4.8e-07`, `1.1921e-07`): round-off.
_ROUNDOFF = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?[eE]-(?:0*[6-9]|0*[1-9]\d)(?![\d\w])")
FRAGILE_MARK = ": prints the "
FRAGILE_OK = "# output-ok: "
"""A comment that lets one code line's output through (with the reason), e.g. a tiny learning rate."""


def fragile_outputs(nb, rel: str) -> list[str]:
    """Cells of an executed solution whose compared text output depends on the CPU.

    The regression tests compare decimals with a tolerance (``tools/nbtolerance.py``), which
    holds for rounded results, not for round-off: a raw error magnitude (``4.8e-07``) or an
    unrounded float (``2.4468231201``) changes from one instruction set to another. Cells tagged
    ``nbval-ignore-output`` or ``nbval-skip`` are not compared and not looked at; a cell whose
    source holds ``# output-ok: <reason>`` is let through.

    Example::

        >>> import nbformat
        >>> nb = nbformat.v4.new_notebook()
        >>> cell = nbformat.v4.new_code_cell("print(d)")
        >>> cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="max diff 4.8e-07\\n")]
        >>> nb.cells = [cell]
        >>> print(*fragile_outputs(nb, "x.ipynb"))  # doctest: +ELLIPSIS
        x.ipynb cell 0: prints the round-off magnitude '4.8e-07'; print a statement instead ...
    """
    problems = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        tags = set(cell.metadata.get("tags", []))
        if tags & {"nbval-ignore-output", "nbval-skip"} or FRAGILE_OK in cell.source:
            continue
        for output in cell.get("outputs", []):
            texts = [output.get("text", "")] if output.get("output_type") == "stream" else []
            texts.append(output.get("data", {}).get("text/plain", ""))
            for text in texts:
                found = _ROUNDOFF.search(text)
                if found:
                    problems.append(
                        f"{rel} cell {index}: prints the round-off magnitude {found.group()!r}; print a "
                        f"statement instead (f\"max |difference| < 1e-5: {{diff < 1e-5}}\")"
                    )
                    break
                found = _UNROUNDED.search(text)
                if found:
                    problems.append(
                        f"{rel} cell {index}: prints the unrounded float {found.group()!r}; round it "
                        f"(f\"{{x:.4f}}\") so that it reproduces on another CPU"
                    )
                    break
            else:
                continue
            break
    return problems
