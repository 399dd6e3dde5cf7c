"""The course's table of figures measured on a CPU: real-size runs a lesson reports but does not run.

A lesson's "Run it for real" configuration is for a GPU; on the CPU the notebook trains a small
one. Some lessons still report what the real configuration reaches (a loss, a speed-up), and
those numbers were measured on a CPU by ``benchmarks/cpu_real_runs.py``: the lesson's own code,
seeds and sizes, one torch thread. That script writes its results into the ``MEASURED`` block
below (``--write``), each with the machine, torch version and date; a lesson cell prints
``line(name)`` or ``table(name)``, so prose never types a measured number.

Rerun one figure with ``python benchmarks/cpu_real_runs.py --only NAME --write``.

Example:
    >>> FIGURES["one-head attention"].command
    'python benchmarks/cpu_real_runs.py --only one-head'
    >>> run = {"cpu": "AMD EPYC", "threads": 1, "capability": "AVX2", "torch": "2.13.0",
    ...        "date": "2026-12-07", "rows": [[0, 4.19], [1000, 2.213], [3000, 2.206]]}
    >>> print(line("one-head attention", measured={"one-head attention": run}))  # doctest: +ELLIPSIS
    val loss 2.206 after 3,000 steps, already 2.213 after 1,000 (CPU: AMD EPYC, 1 thread, AVX2, ...)
"""

from __future__ import annotations

import pprint
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from llmcourse.atomic import write_atomic

SCRIPT = "benchmarks/cpu_real_runs.py"
Rows = list[list[Any]]


def _three_models(rows: Rows) -> str:
    # rows: [model, parameters, val loss at the half, val loss at the end]
    ends = ", ".join(f"{r[0].split(',')[0]} {r[3]:.3f}" for r in rows)
    return f"val loss at the end: {ends}"


def _averaging(rows: Rows) -> str:
    # rows: [weights, val loss at the end, learned decay a (recency only)]
    names = {"none": "no average", "uniform": "uniform", "recency": "recency"}
    losses = ", ".join(f"{r[1]:.3f} ({names[r[0]]})" for r in rows)
    decay = next((r[2] for r in rows if r[2] is not None), None)
    return f"val loss at the end: {losses}" + (f"; learned decay a = {decay:.3f}" if decay is not None else "")


def _one_head(rows: Rows) -> str:
    # rows: [step, val loss]; the lesson quotes the end and step 1,000 (a third of the run)
    (last_step, last), third = rows[-1], min(rows, key=lambda r: abs(r[0] - rows[-1][0] / 3))
    return (f"val loss {last:.3f} after {last_step:,} steps, "
            f"already {third[1]:.3f} after {third[0]:,}")


def _kv_cache(rows: Rows) -> str:
    # rows: [mode, new tokens, ms per token, speed-up against recomputing the same tokens]
    cache, slide, keep = (next(r for r in rows if r[0].startswith(prefix))
                          for prefix in ("kv-cache, within", "kv-cache, sliding", "kv-cache, keep"))
    return (f"within the block ({cache[1]} new tokens) the KV cache decodes {cache[3]:.1f}x faster "
            f"than recomputing; past it ({slide[1]} new tokens) the exact sliding window "
            f"{slide[3]:.1f}x, and the approximate {keep[0].split()[1].rstrip(',')} {keep[3]:.1f}x "
            "(its tokens differ from recomputation)")


def _kv_compiled(rows: Rows) -> str:
    # rows: [mode, new tokens, ms per token, speed-up against recomputing, first call in s]
    eager, compiled = (next(r for r in rows if r[0] == name) for name in ("kv-cache, eager", "kv-cache, compiled"))
    return (f"compiled, the cached step takes {compiled[2]:.1f} ms per token instead of {eager[2]:.1f} "
            f"({compiled[3]:.1f}x faster than recomputing, the same greedy tokens), after a first call "
            f"of {compiled[4]:.0f} s that compiles it")


def _bias_gelu(rows: Rows) -> str:
    # rows: [seed, ours, nanoGPT's variant, difference]
    diffs = [r[3] for r in rows]
    higher = sum(d > 0 for d in diffs)
    ours, theirs = [r[1] for r in rows], [r[2] for r in rows]
    return (f"nanoGPT's variant ends higher by {min(diffs):.3f} to {max(diffs):.3f} "
            f"({sum(diffs) / len(diffs):.3f} on average; higher in {higher} of {len(rows)} seeds); "
            f"seed-to-seed spread {max(ours) - min(ours):.3f} for ours, "
            f"{max(theirs) - min(theirs):.3f} for nanoGPT's")


@dataclass(frozen=True)
class CpuFigure:
    """One measurement: what it is, the lessons that print it, its script entry, its sentence."""

    what: str
    lessons: tuple[int, ...]
    only: str                          # the entry's name in benchmarks/cpu_real_runs.py --only
    columns: tuple[str, ...]           # the columns of its rows
    summary: Callable[[Rows], str]     # the one sentence a lesson prints

    @property
    def command(self) -> str:
        return f"python {SCRIPT} --only {self.only}"


FIGURES: dict[str, CpuFigure] = {
    "bigram, MLP and WaveNet": CpuFigure(
        "day 07's three models in the real-run configuration (3,000 steps of 32 x 64, AdamW)",
        (7,), "day07", ("model", "parameters", "val loss at the half", "val loss at the end"),
        _three_models),
    "averaging three ways": CpuFigure(
        "day 08's three models in the real-run configuration (3,000 steps of 64 x 128, width 64, "
        "AdamW at 1e-2)", (8,), "averaging", ("weights", "val loss at the end", "learned decay a"),
        _averaging),
    "one-head attention": CpuFigure(
        "day 09's one-head language model in the real-run configuration (3,000 steps of 64 x 128)",
        (9,), "one-head", ("step", "val loss"), _one_head),
    "KV cache speed-up": CpuFigure(
        "greedy decoding of the 6 x 384 model (block 256) from a one-token prompt, CPU time, "
        "best of the repeats", (19,), "kv-cache",
        ("mode", "new tokens", "ms/token", "vs recompute"), _kv_cache),
    "KV cache, compiled": CpuFigure(
        "the same model's cached step compiled with generate(..., compile=True), 255 new tokens; "
        "CPU time, best of the repeats; the first call (compiling) in wall time", (19,),
        "kv-cache-compiled", ("mode", "new tokens", "ms/token", "vs recompute", "first call s"),
        _kv_compiled),
    "nanoGPT's bias and GELU": CpuFigure(
        "the shakespeare-char-cpu recipe's first 500 steps, ours against bias=False and the exact "
        "GELU, val loss at step 500", (26,), "bias-gelu",
        ("seed", "ours", "nanoGPT's variant", "difference"), _bias_gelu),
}

# --- measured: written by `python benchmarks/cpu_real_runs.py --write`; do not edit by hand ---
MEASURED: dict[str, dict[str, Any]] = {
    'KV cache speed-up':
        {'capability': 'AVX2',
         'cpu': 'AMD EPYC',
         'date': '2026-12-07',
         'rows': [['recompute, within the block', 255, 47.91, 1.0],
                  ['kv-cache, within the block', 255, 5.33, 8.98],
                  ['recompute, past the block', 500, 70.68, 1.0],
                  ['kv-cache, sliding window (exact)', 500, 48.51, 1.46],
                  ['kv-cache, keep_on_rebuild=128 (approximate)', 500, 5.28, 13.39]],
         'seconds': 250.8,
         'threads': 1,
         'torch': '2.13.0+cpu'},
    'KV cache, compiled':
        {'capability': 'AVX2',
         'cpu': 'AMD EPYC',
         'date': '2026-12-07',
         'rows': [['recompute', 255, 55.17, 1.0, 19.0], ['kv-cache, eager', 255, 6.59, 8.38, 2.5],
                  ['kv-cache, compiled', 255, 4.36, 12.65, 34.0]],
         'seconds': 109.6,
         'threads': 1,
         'torch': '2.13.0+cpu'},
    'averaging three ways':
        {'capability': 'AVX2',
         'cpu': 'AMD EPYC',
         'date': '2026-12-07',
         'rows': [['none', 2.4843, None], ['uniform', 2.47, None], ['recency', 2.268, 0.8223]],
         'seconds': 131.8,
         'threads': 1,
         'torch': '2.13.0+cpu'},
    'bigram, MLP and WaveNet':
        {'capability': 'AVX2',
         'cpu': 'AMD EPYC',
         'date': '2026-12-07',
         'rows': [['bigram', 4225, 2.4966, 2.4941],
                  ['MLP, block 16, embedding 24, hidden 256', 116849, 1.8502, 1.807],
                  ['WaveNet, block 32, embedding 24, 96 channels', 87161, 1.8313, 1.762]],
         'seconds': 262.3,
         'threads': 1,
         'torch': '2.13.0+cpu'},
    "nanoGPT's bias and GELU":
        {'capability': 'AVX2',
         'cpu': 'AMD EPYC',
         'date': '2026-12-07',
         'rows': [[1337, 2.2779, 2.3132, 0.0354], [1, 2.2624, 2.2786, 0.0161],
                  [2, 2.2622, 2.2843, 0.0221]],
         'seconds': 249.9,
         'threads': 1,
         'torch': '2.13.0+cpu'},
    'one-head attention':
        {'capability': 'AVX2',
         'cpu': 'AMD EPYC',
         'date': '2026-12-07',
         'rows': [[0, 4.3429], [500, 2.2671], [1000, 2.2133], [1500, 2.2081], [2000, 2.2052],
                  [2500, 2.2074], [3000, 2.2064]],
         'seconds': 170.5,
         'threads': 1,
         'torch': '2.13.0+cpu'},
}
# --- end of measured ---


def _entry(name: str, measured: dict[str, dict[str, Any]] | None) -> dict[str, Any]:
    if name not in FIGURES:
        raise KeyError(f"no CPU figure named {name!r}; the table has: {', '.join(FIGURES)}")
    table = MEASURED if measured is None else measured
    if name not in table:
        raise KeyError(f"CPU figure {name!r} has not been measured yet; run "
                       f"`{FIGURES[name].command} --write`")
    return table[name]


def where(name: str, measured: dict[str, dict[str, Any]] | None = None) -> str:
    """The machine, torch version, date and command of figure ``name``."""
    m = _entry(name, measured)
    threads = f"{m['threads']} thread{'s' if m['threads'] != 1 else ''}"
    return (f"CPU: {m['cpu']}, {threads}, {m['capability']}, torch {m['torch']}, {m['date']}; "
            f"rerun: {FIGURES[name].command}")


def line(name: str, measured: dict[str, dict[str, Any]] | None = None) -> str:
    """One sentence for a lesson: the figure, then where and how it was measured."""
    rows = _entry(name, measured)["rows"]
    return f"{FIGURES[name].summary(rows)} ({where(name, measured)})"


def table(name: str, measured: dict[str, dict[str, Any]] | None = None) -> str:
    """Figure ``name``'s rows as an aligned text table, under a line saying where it was measured."""
    m = _entry(name, measured)
    cols = FIGURES[name].columns
    rows = [row[:len(cols)] for row in m["rows"]]
    cells = [[f"{v:.3f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) and i else str(v)
              for i, v in enumerate(row)] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(cols)]
    numeric = [not isinstance(v, str) for v in rows[0]]          # numbers align right
    out = [FIGURES[name].what, where(name, measured),
           "  ".join(c.rjust(w) if n else c.ljust(w) for c, w, n in zip(cols, widths, numeric))]
    out += ["  ".join(v.rjust(w) if n else v.ljust(w) for v, w, n in zip(r, widths, numeric))
            for r in cells]
    return "\n".join(out)


def write_measured(measured: dict[str, dict[str, Any]], path: Path = Path(__file__)) -> None:
    """Replace the ``MEASURED`` block of the module at ``path`` with ``measured``."""
    text = path.read_text(encoding="utf-8")
    indent = "\n" + " " * 8
    entries = [f"    {name!r}:{indent}" + pprint.pformat(entry, width=92, compact=True).replace("\n", indent)
               + "," for name, entry in sorted(measured.items())]
    body = "{\n" + "\n".join(entries) + "\n}" if entries else "{}"
    new, n = re.subn(r"(?s)(MEASURED: dict\[str, dict\[str, Any\]\] = ).*?(\n# --- end of measured ---)",
                     lambda mo: mo.group(1) + body + mo.group(2), text, count=1)
    if n != 1:
        raise ValueError(f"{path} has no MEASURED block to replace")
    write_atomic(path, new)
