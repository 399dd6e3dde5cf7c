"""The notebook pipeline: the course's notebooks generated from one source per lesson.

Every lesson has one source, ``solutions/dayNN_slug.md`` (a MyST Markdown notebook, jupytext
``md:myst``). From it ``build`` generates, deterministically:

- ``lessons/dayNN_slug.md``: the source with every ``# BEGIN SOLUTION`` ... ``# END SOLUTION``
  block replaced by its stub and every cell tagged ``solution`` removed, so that
  ``diff lessons/dayNN_slug.md solutions/dayNN_slug.md`` shows exactly the exercises;
- ``lessons/dayNN_slug.ipynb``: that lesson as a notebook without outputs;
- ``solutions/dayNN_slug.ipynb``: the solved notebook with the marks removed, executed on the
  CPU, outputs stored; cells that held a solution are tagged ``hide-input`` (the book folds
  their code behind a toggle).

Both notebooks start with a Colab badge and a setup cell that installs the package when the
notebook runs in Colab; the repository URL comes from ``_config.yml`` (``repository.url``).
``build`` also writes ``_toc.yml`` (the lessons by week) and the API reference pages
``book/api/*.md`` (one per public module of ``llmcourse``). The commands (``build``, ``check``,
``times``) are in :mod:`tools.nb.cli`; run ``python -m tools.nb --help``.

One concept per module, each importing only the ones above it:

- ``layout``: the repository's folders, the lesson sources, :class:`PipelineError`;
- ``release``: the package version and the release tag the set-up cells install;
- ``marks``: the exercise marks, checked strictly (the marks themselves and the transform are
  defined once, in :mod:`llmcourse.learner.notebooks`);
- ``notebook``: one source to its lesson and solution notebooks;
- ``execute``: running a solution notebook on the CPU, deterministically;
- ``book``: ``_toc.yml``, the API pages and the book's footer;
- ``builder``: ``build``; ``stale``: ``check`` and the outputs that would not reproduce;
- ``cli``: ``python -m tools.nb``.
"""

from llmcourse.learner.notebooks import BEGIN_RE, DEFAULT_STUB, END_RE, LOOKALIKE_RE, STUB_RE
from tools.nb.book import (
    WEEKS, api_pages, book_files, config_text, lesson_week, public_modules, submodules, toc_text,
)
from tools.nb.builder import build, reusable, solution_text, write_if_changed
from tools.nb.cli import main
from tools.nb.execute import KERNEL_ENV, execute_solution, normalise_widget_ids
from tools.nb.layout import (
    LESSON_RE, ROOT, Layout, PipelineError, lesson_sources, read_repository, rel_path, select,
)
from tools.nb.marks import CodeCell, Transformed, check_marks, find_code_cells, transform_code, transform_source
from tools.nb.notebook import (
    KERNELSPEC, LANGUAGE_INFO, SETUP_HEADER, TOOL_VERSION, Generated, cells_signature, dumps, generate, lesson_files,
    make_notebook, preamble_cells, read_notebook, source_sha256,
)
from tools.nb.release import package_version, release_tag
from tools.nb.stale import FRAGILE_MARK, FRAGILE_OK, check, fragile_outputs

__all__ = [
    "BEGIN_RE", "DEFAULT_STUB", "END_RE", "LOOKALIKE_RE", "STUB_RE",
    "WEEKS", "api_pages", "book_files", "config_text", "lesson_week", "public_modules", "submodules", "toc_text",
    "build", "reusable", "solution_text", "write_if_changed", "main",
    "KERNEL_ENV", "execute_solution", "normalise_widget_ids",
    "LESSON_RE", "ROOT", "Layout", "PipelineError", "lesson_sources", "read_repository", "rel_path", "select",
    "CodeCell", "Transformed", "check_marks", "find_code_cells", "transform_code", "transform_source",
    "KERNELSPEC", "LANGUAGE_INFO", "SETUP_HEADER", "TOOL_VERSION", "Generated", "cells_signature", "dumps", "lesson_files",
    "generate", "make_notebook", "preamble_cells", "read_notebook", "source_sha256",
    "package_version", "release_tag",
    "FRAGILE_MARK", "FRAGILE_OK", "check", "fragile_outputs",
]
