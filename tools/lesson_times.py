"""How long each solved notebook takes: recorded by the build, read by the tests and the lessons.

``python -m tools.nb build --execute`` runs every notebook in a fresh temporary folder (``TMPDIR``
too, so that nothing a previous run cached is reused) and stores in the executed notebook's
metadata (``metadata.llmcourse.build_time``)::

    {"cpu_s": 41.3, "wall_s": 58.0, "cells_wall_s": [...], "threads": "1",
     "machine": "AMD EPYC 7B13 (2 cores)", "torch": "2.13.0+cpu"}

``cpu_s`` is the kernel's CPU time, user + system, its finished child processes included (read
inside the kernel with ``resource.getrusage`` by a probe cell that is removed afterwards);
``wall_s`` is the elapsed time, start-up of the kernel included. A lesson's one sentence about
its CPU time ("the whole notebook takes about N s of CPU time") is checked against ``cpu_s`` by
``tests/test_lesson_claims.py``.

Read the record::

    python -m tools.lesson_times                 # every lesson: CPU s, wall s, machine
    python -m tools.lesson_times day17 day22

Measure under load (issue 21: a lesson must finish on a 2-core laptop that is busy)::

    python -m tools.lesson_times --measure --load 2 -j 1 --out benchmarks/results/lesson_times_load2.json

executes every solved notebook again (without writing it) while ``--load`` CPU-bound processes
run, and writes the same record for each to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path

from tools import nb as nbtool
from tools.nb.record import KEY, machine, record, records, table  # noqa: F401 (the build record)

ROOT = Path(__file__).resolve().parents[1]
def _hog() -> None:  # pragma: no cover - killed by the parent
    # Its own session, as a separately started program has: Linux's autogroup scheduling shares
    # the CPU between sessions first, so hogs sharing one session would together get one share.
    os.setsid()
    x = 0
    while True:
        x = (x * 1103515245 + 12345) % 2**31


def measure(names: list[str], load: int, jobs: int, out: Path) -> dict:
    """Execute the solved notebooks again (not written) with ``load`` busy processes running."""
    import concurrent.futures

    hogs = [multiprocessing.Process(target=_hog, daemon=True) for _ in range(load)]
    for h in hogs:
        h.start()
    paths = sorted((ROOT / "solutions").glob("day*.md"))
    if names:
        paths = [p for p in paths if any(p.stem.startswith(n) for n in names)]
    results: dict[str, dict] = {}
    try:
        with concurrent.futures.ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
            for name, rec in pool.map(_measure_one, paths):
                results[name] = rec
                print(f"{name}: {rec.get('cpu_s')} s CPU, {rec.get('wall_s')} s wall"
                      + (f" FAILED {rec['error']}" if "error" in rec else ""), flush=True)
    finally:
        for h in hogs:
            h.terminate()
    data = {"machine": machine(), "load": load, "jobs": jobs, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "lessons": results}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    return data


def _measure_one(source: Path) -> tuple[str, dict]:
    layout = nbtool.Layout.from_root(ROOT)
    gen = nbtool.generate(layout, source)
    start = time.perf_counter()
    try:
        executed = nbtool.execute_solution(gen.solution_nb, gen.name, layout.solutions)
    except nbtool.PipelineError as exc:
        return gen.name, {"error": str(exc).splitlines()[0], "wall_s": round(time.perf_counter() - start, 1)}
    return gen.name, executed.metadata["llmcourse"][KEY]


def markdown(recs: dict[str, dict | None], loaded: dict | None = None) -> str:
    """A Markdown table of the build records, beside a ``--measure`` JSON when given."""
    head = "| lesson | CPU s | wall s |" + (f" CPU s, {loaded['load']} busy | wall s, {loaded['load']} busy |" if loaded else "")
    rows = [head, "|---" * (head.count("|") - 1) + "|"]
    tot = [0.0, 0.0, 0.0, 0.0]
    for name, rec in recs.items():
        other = (loaded or {}).get("lessons", {}).get(name) or {}
        cells = [rec["cpu_s"] if rec else None, rec["wall_s"] if rec else None, other.get("cpu_s"), other.get("wall_s")]
        tot = [t + (c or 0) for t, c in zip(tot, cells)]
        shown = cells if loaded else cells[:2]
        rows.append(f"| {name[:5]} | " + " | ".join("-" if c is None else f"{c:.0f}" for c in shown) + " |")
    rows.append("| all | " + " | ".join(f"{t:.0f}" for t in (tot if loaded else tot[:2])) + " |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.lesson_times", description=__doc__.split("\n\n")[0])
    p.add_argument("names", nargs="*", help="lessons (day03 or day03_slug); default: all")
    p.add_argument("--measure", action="store_true", help="execute the notebooks again and time them")
    p.add_argument("--load", type=int, default=0, help="busy processes running meanwhile (with --measure)")
    p.add_argument("-j", "--jobs", type=int, default=1, help="notebooks at once (with --measure)")
    p.add_argument("--out", type=Path, help="JSON to write (with --measure)")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    p.add_argument("--beside", type=Path, help="a --measure JSON to show beside the build record (with --markdown)")
    args = p.parse_args(argv)
    if args.measure:
        if args.out is None:
            p.error("--measure needs --out FILE.json")
        measure(args.names, args.load, args.jobs, args.out)
        return 0
    if args.markdown:
        loaded = json.loads(args.beside.read_text(encoding="utf-8")) if args.beside else None
        print(markdown(records(args.names), loaded))
        return 0
    print(table(records(args.names)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
