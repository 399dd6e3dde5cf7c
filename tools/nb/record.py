"""The build record: how long executing each solved notebook took, stored in the notebook.

:func:`tools.nb.execute.execute_solution` appends a probe cell (:func:`add_probe`) that prints the
kernel's CPU time, takes it out again with the record (:func:`take_probe`) and stores that record
in the notebook's metadata (``metadata.llmcourse.build_time``); :func:`record` and :func:`records`
read it back, :func:`table` prints it (``python -m tools.nb times``). ``tools/lesson_times.py``
measures the same under load; ``tests/test_lesson_claims.py`` checks each lesson's stated CPU time
against it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from llmcourse.device import cpu_name
from tools.nb.layout import ROOT

KEY = "build_time"

PROBE = (
    "import json as _json, resource as _resource\n"
    "_u = [_resource.getrusage(w) for w in (_resource.RUSAGE_SELF, _resource.RUSAGE_CHILDREN)]\n"
    "print(_json.dumps({'cpu_s': sum(r.ru_utime + r.ru_stime for r in _u)}))"
)


def machine() -> str:
    """``"<CPU model> (<n> cores)"`` of this machine."""
    return f"{cpu_name()} ({os.cpu_count()} cores)"


def add_probe(nb) -> None:
    """Append the cell that prints the kernel's CPU time (:func:`take_probe` removes it)."""
    import nbformat

    nb.cells.append(nbformat.v4.new_code_cell(PROBE))


def take_probe(nb, wall_s: float, env: dict) -> dict:
    """Remove the probe cell and return the record: CPU and wall time, per-cell wall time."""
    import torch

    probe = nb.cells.pop()
    text = "".join(o.get("text", "") for o in probe.get("outputs", []) if o.get("output_type") == "stream")
    cpu = json.loads(text.strip().splitlines()[-1])["cpu_s"]
    cells = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        ex = cell.metadata.get("execution", {})
        start, end = ex.get("iopub.execute_input"), ex.get("shell.execute_reply")
        cells.append(round(_seconds(end) - _seconds(start), 2) if start and end else None)
    return {"cpu_s": round(cpu, 1), "wall_s": round(wall_s, 1), "cells_wall_s": cells,
            "threads": env.get("OMP_NUM_THREADS", "all"), "machine": machine(), "torch": torch.__version__}


def _seconds(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def record(path: Path) -> dict | None:
    """The build-time record stored in the solved notebook ``path`` (None when it has none)."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    return nb.get("metadata", {}).get("llmcourse", {}).get(KEY)


def records(names: list[str] | None = None) -> dict[str, dict | None]:
    """``{lesson name: record}`` for the solved notebooks (all, or those starting with a name)."""
    paths = sorted((ROOT / "solutions").glob("day*.ipynb"))
    if names:
        paths = [p for p in paths if any(p.stem.startswith(n) for n in names)]
    return {p.stem: record(p) for p in paths}


def table(recs: dict[str, dict | None]) -> str:
    lines = [f"{'lesson':40s} {'CPU s':>7s} {'wall s':>7s}  machine"]
    for name, rec in recs.items():
        if rec is None:
            lines.append(f"{name:40s} {'-':>7s} {'-':>7s}  (no record: run python -m tools.nb build --execute --force {name[:5]})")
        else:
            lines.append(f"{name:40s} {rec['cpu_s']:7.1f} {rec['wall_s']:7.1f}  {rec['machine']}, {rec['threads']} thread(s)")
    return "\n".join(lines)
