"""``build``: regenerate every generated file, reusing stored outputs whose source is unchanged.

A solution notebook's outputs are reused while its source hash and its cells are what the
source makes (:func:`reusable`); otherwise ``build`` writes it without outputs, or, with
``execute``, runs it again (:mod:`tools.nb.execute`), several at a time with ``jobs``.
Every file is written only when its text changed.
"""

from __future__ import annotations

import concurrent.futures
import copy
import time
from pathlib import Path
from typing import Optional, Sequence

from llmcourse.atomic import write_atomic
from tools.nb.book import api_pages, book_files
from tools.nb.execute import execute_solution
from tools.nb.layout import Layout, PipelineError, rel_path, select
from tools.nb.notebook import Generated, cells_signature, dumps, generate, lesson_files, read_notebook


def write_if_changed(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` unless it already holds exactly that; return True if written."""
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    write_atomic(path, text)  # a reader sees the old file or the new one, never half
    return True


def reusable(stored, gen: Generated) -> bool:
    """Stored outputs can be reused when the source hash and the generated cells are unchanged."""
    if stored is None:
        return False
    meta = stored.metadata.get("llmcourse", {})
    return (
        meta.get("source_sha256") == gen.sha
        and meta.get("executed") is True
        and cells_signature(stored) == cells_signature(gen.solution_nb)
    )


def solution_text(nb, stored, executed: bool) -> str:
    """The solution notebook ``nb`` with the outputs (and build record) of ``stored``, if any."""
    if stored is not None:
        nb = copy.deepcopy(nb)
        for new, old in zip(nb.cells, stored.cells):
            if new.cell_type == "code":
                new.outputs = old.get("outputs", [])
                new.execution_count = old.get("execution_count")
        if "widgets" in stored.metadata:
            nb.metadata["widgets"] = stored.metadata["widgets"]
        if "build_time" in stored.metadata.get("llmcourse", {}):
            nb.metadata["llmcourse"]["build_time"] = stored.metadata["llmcourse"]["build_time"]
    nb.metadata["llmcourse"]["executed"] = executed
    return dumps(nb)


def _execute_job(args: tuple) -> tuple[str, Optional[str], Optional[str], float]:
    """One lesson's execution (in a worker process with ``jobs`` > 1): name, text, error, seconds."""
    layout, source, force = args
    start = time.time()
    try:
        gen = generate(layout, source)
        path = layout.solutions / f"{gen.name}.ipynb"
        stored = read_notebook(path)
        if not force and reusable(stored, gen):
            return gen.name, solution_text(gen.solution_nb, stored, True), None, 0.0
        executed = execute_solution(gen.solution_nb, gen.name, layout.solutions)
        executed.metadata["llmcourse"]["executed"] = True
        return gen.name, dumps(executed), None, time.time() - start
    except PipelineError as exc:
        return source.stem, None, str(exc), time.time() - start


def build(layout: Layout, names: Sequence[str] = (), *, execute: bool = False, force: bool = False,
          jobs: int = 1, log=print) -> list[str]:
    """Regenerate the lessons, the toc, the API pages and (with ``execute``) the solutions.

    Returns the list of errors (empty on success); every file is written only if it changed.
    """
    errors: list[str] = []
    sources = select(layout, names)
    to_execute: list[Path] = []
    for source in sources:
        try:
            gen = generate(layout, source)
        except PipelineError as exc:
            errors.append(str(exc))
            continue
        for path, text in lesson_files(layout, gen):
            if write_if_changed(path, text):
                log(f"wrote {rel_path(path, layout.root)}")
        path = layout.solutions / f"{gen.name}.ipynb"
        stored = read_notebook(path)
        if not force and reusable(stored, gen):
            if write_if_changed(path, solution_text(gen.solution_nb, stored, True)):
                log(f"wrote {rel_path(path, layout.root)} (outputs reused)")
        elif execute:
            to_execute.append(source)
        else:
            if write_if_changed(path, solution_text(gen.solution_nb, None, False)):
                log(f"wrote {rel_path(path, layout.root)} WITHOUT outputs: run with --execute to execute it")
    if to_execute:
        jobs = max(1, min(jobs, len(to_execute)))
        work = [(layout, s, force) for s in to_execute]
        if jobs == 1:
            results = map(_execute_job, work)
        else:
            pool = concurrent.futures.ProcessPoolExecutor(max_workers=jobs)
            results = pool.map(_execute_job, work)
        for name, text, error, seconds in results:
            if error:
                errors.append(error)
                log(f"FAILED {name} ({seconds:.0f}s)")
                continue
            path = layout.solutions / f"{name}.ipynb"
            changed = write_if_changed(path, text)
            written = f", wrote {rel_path(path, layout.root)}" if changed else ", unchanged"
            log(f"executed {name} in {seconds:.1f}s{written}")
    if (layout.root / "_config.yml").exists():
        for rel, text in book_files(layout).items():
            if write_if_changed(layout.root / rel, text):
                log(f"wrote {rel}")
        api_dir = layout.root / "book" / "api"
        wanted = {Path(r).name for r in api_pages(layout.root)}
        for stale in sorted(api_dir.glob("*.md")) if api_dir.is_dir() else []:
            if stale.name not in wanted:
                stale.unlink()
                log(f"removed {rel_path(stale, layout.root)}")
    return errors
