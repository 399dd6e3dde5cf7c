"""Generate the course's notebooks from one source per lesson, and check they are current.

Usage::

    python -m tools.nb build               # regenerate lessons, toc, API pages; reuse outputs
    python -m tools.nb build --execute     # ... and execute solution notebooks whose source changed
    python -m tools.nb build --execute --force day03   # re-execute day 03 even if unchanged
    python -m tools.nb check               # exit 1 naming every stale generated file
    python -m tools.nb times               # CPU and wall time of each notebook's last execution

A solution notebook records the SHA-256 of its source (``metadata.llmcourse.source_sha256``);
``build --execute`` re-executes only those whose source (or generated code) changed, and records
how long each took (``metadata.llmcourse.build_time``, see :mod:`tools.nb.record`).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Optional, Sequence

from tools.nb import record
from tools.nb.builder import build
from tools.nb.layout import ROOT, Layout, PipelineError, lesson_sources, select
from tools.nb.stale import FRAGILE_MARK, check


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.nb", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="generate lessons, solution notebooks, _toc.yml and API pages")
    b.add_argument("names", nargs="*", help="lessons to build (day03 or day03_slug); default: all")
    b.add_argument("--execute", action="store_true", help="execute solution notebooks whose source changed")
    b.add_argument("--force", action="store_true", help="re-execute even if the source is unchanged (implies --execute)")
    b.add_argument("--jobs", "-j", type=int, default=1, help="notebooks executed in parallel (default 1)")
    sub.add_parser("check", help="exit 1 naming every stale generated file")
    t = sub.add_parser("times", help="the CPU and wall time each solved notebook took in its last build")
    t.add_argument("names", nargs="*", help="lessons (day03 or day03_slug); default: all")
    args = parser.parse_args(argv)
    if args.command == "times":
        print(record.table(record.records(args.names)))
        return 0
    try:
        layout = Layout.from_root(ROOT)
        if args.command == "build":
            start = time.time()
            errors = build(layout, args.names, execute=args.execute or args.force, force=args.force, jobs=args.jobs)
            for error in errors:
                print(f"error: {error}", file=sys.stderr)
            print(f"build: {len(select(layout, args.names))} lesson(s), {len(errors)} error(s), {time.time() - start:.1f}s")
            return 1 if errors else 0
        problems = check(layout)
        fragile = [p for p in problems if FRAGILE_MARK in p]
        stale = [p for p in problems if FRAGILE_MARK not in p]
        for problem in stale:
            print(f"stale: {problem}")
        for problem in fragile:
            print(f"fragile output: {problem}")
        if stale:
            print(f"{len(stale)} stale generated file(s); run: python -m tools.nb build --execute", file=sys.stderr)
        if fragile:
            print(
                f"{len(fragile)} output(s) would not reproduce on another CPU; fix the print in the "
                "solution's source (see CONTRIBUTING.md, 'Outputs are regression tests')",
                file=sys.stderr,
            )
        if problems:
            return 1
        print(f"check: all generated files are current ({len(lesson_sources(layout))} lesson(s))")
        return 0
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
