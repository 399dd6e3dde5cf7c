"""CPU time of each lesson's checks, from the verdict records the checks write themselves.

Every check appends a JSON record (exercise, verdict, CPU seconds, the module it is written in)
to the file named by ``$LLMCOURSE_CHECK_LOG``. This script runs the solved notebooks with that
variable set (headless, on the CPU, with the course's thread policy, in a temporary folder) and
prints a table per day: checks, passed, mistakes in their tables, CPU seconds of the checks
together. Or it summarises a log written by another run (``pytest --nbval`` with the variable set). Run::

    python benchmarks/check_times.py                       # every solutions/day*.ipynb
    python benchmarks/check_times.py day07 day22           # some days
    python benchmarks/check_times.py --log checks.jsonl    # only summarise an existing log

The figures are CPU time of the check functions only (``time.process_time`` inside the kernel),
not of the notebook, so they do not depend on how busy the machine is as much as wall time does.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from llmcourse.threads import cpu_threads, kernel_env

ROOT = Path(__file__).resolve().parents[1]


def kernel_env_for(log: Path) -> dict[str, str]:
    """The environment of the notebook kernels: the check log, no GPU, and the course's thread
    policy (``llmcourse.threads.kernel_env``: one thread, or ``$LLMCOURSE_THREADS``)."""
    return kernel_env(dict(os.environ, LLMCOURSE_CHECK_LOG=str(log), CUDA_VISIBLE_DEVICES="",
                           PYTHONHASHSEED="0", MPLBACKEND="module://matplotlib_inline.backend_inline"))


def run_notebooks(days: list[str], log: Path) -> None:
    """Execute the solved notebooks of ``days`` (all when empty) with the check log set."""
    import nbformat
    from nbclient import NotebookClient

    paths = sorted((ROOT / "solutions").glob("day*.ipynb"))
    if days:
        paths = [p for p in paths if p.name[:5] in days]
    env = kernel_env_for(log)
    for path in paths:
        nb = nbformat.read(str(path), as_version=4)
        with tempfile.TemporaryDirectory(prefix="llmcourse-checktimes-") as cwd:
            print(f"running {path.name} ...", file=sys.stderr, flush=True)
            NotebookClient(nb, timeout=900, kernel_name="python3", allow_errors=True,
                           resources={"metadata": {"path": cwd}}).execute(env=env)


def mistakes_per_day() -> dict[str, int]:
    """The number of mistakes in the tables of each day's checks."""
    counts: dict[str, int] = {}
    for path in sorted((ROOT / "llmcourse" / "checks").glob("day*.py")):
        module = importlib.import_module(f"llmcourse.checks.{path.stem}")
        counts[path.stem] = sum(len(getattr(getattr(module, n), "mistakes", ()))
                                for n in dir(module) if n.startswith("check_"))
    return counts


def summarise(log: Path) -> list[dict]:
    """One row per day: checks run, passed, mistakes in the tables, CPU seconds."""
    rows: dict[str, dict] = defaultdict(lambda: {"checks": 0, "passed": 0, "cpu_s": 0.0})
    for line in log.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        day = (record.get("source") or "?").rsplit(".", 1)[-1]
        row = rows[day]
        row["checks"] += 1
        row["passed"] += bool(record["passed"])
        row["cpu_s"] += float(record["cpu_s"])
    tables = mistakes_per_day()
    return [{"day": day, **row, "mistakes": tables.get(day, 0)} for day, row in sorted(rows.items())]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("days", nargs="*", help="dayNN names (default: every solved notebook)")
    parser.add_argument("--log", type=Path, help="summarise this log instead of running notebooks")
    args = parser.parse_args(argv)
    if args.log is None:
        try:
            cpu_threads()   # a bad $LLMCOURSE_THREADS: one line, before any notebook runs
        except ValueError as exc:
            print(f"check_times.py: error: {exc}", file=sys.stderr)
            return 2
        log = Path(tempfile.mkdtemp(prefix="llmcourse-checklog-")) / "checks.jsonl"
        run_notebooks(args.days, log)
    else:
        log = args.log
    rows = summarise(log)
    print("| day | checks | passed | mistakes in tables | CPU s of the checks |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['day']} | {r['checks']} | {r['passed']} | {r['mistakes']} | {r['cpu_s']:.2f} |")
    total = sum(r["cpu_s"] for r in rows)
    print(f"| all | {sum(r['checks'] for r in rows)} | {sum(r['passed'] for r in rows)} | "
          f"{sum(r['mistakes'] for r in rows)} | {total:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
