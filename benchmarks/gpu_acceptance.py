"""GPU acceptance: every lesson's real-size path, a few steps each, in one command (issue 23).

On a CUDA machine (about 8 minutes, compiles included)::

    python benchmarks/gpu_acceptance.py --book          # then: python -m llmcourse.gpu_figures JSON
    python benchmarks/gpu_acceptance.py --t4            # a T4 stand-in: 14.25 GiB, fp16 + scaler, no flash

On a machine lent by the workplace's device tool, ``benchmarks/gpu_device_run.sh`` runs both
(CONTRIBUTING.md, "The GPU acceptance run"); back here, ``--ingest FOLDER`` files the results.

Without a GPU::

    python benchmarks/gpu_acceptance.py --list          # the plan: lesson -> step
    python benchmarks/gpu_acceptance.py --cpu-smoke     # the same plan at tiny sizes on the CPU

Each step runs isolated (its own try/except, a time budget, the CUDA cache emptied and the peak
memory reset before it), so one failure never stops the rest, and the results are rewritten after
every step, so a run killed at its time limit still leaves what it measured. Every step records pass/fail, the
error in one line, tokens/s, MFU against the card's data-sheet peak, peak memory and compile
time. The results go to ``--out`` (default ``benchmarks/results/``) as one JSON file and one
Markdown table; ``--book`` also writes ``book/gpu_acceptance.md`` for the performance page.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

import torch  # noqa: E402

from gpu_acceptance_ctx import T4_MEMORY_GB  # noqa: E402
from gpu_acceptance_steps import PLAN, Ctx  # noqa: E402
from llmcourse.atomic import write_atomic, write_json_atomic  # noqa: E402
from llmcourse.device import enable_tf32  # noqa: E402

BOOK_PAGE = ROOT / "book" / "gpu_acceptance.md"
TOTAL_BUDGET_S = 480   # 8 minutes on CUDA, compiles included
SMOKE_STEP_BUDGET_S = 60
# The T4 stand-in reruns the plan at a T4's memory in float16 + scaler without these: an H100 cannot show
# whether Triton's code for sm75 compiles or runs, and a Colab T4 is one GPU (no DDP).
NOT_IN_T4 = {"train compiled": "compiled code for a T4 (sm75) cannot be checked on another card",
             "generate compiled": "compiled code for a T4 (sm75) cannot be checked on another card",
             "DDP": "Colab has one T4; the cuda run checks NCCL"}
MODES = ("cuda", "t4 stand-in")


class StepTimeout(Exception):
    """A step ran past its time budget."""


def real_run_lessons(solutions: Path = ROOT / "solutions") -> list[int]:
    """The days whose lesson has a ``REAL_RUN`` path (from ``solutions/dayNN_*.md``)."""
    days = set()
    for path in solutions.glob("day*.md"):
        if "REAL_RUN" in path.read_text(encoding="utf-8"):
            days.add(int(re.match(r"day(\d+)", path.name).group(1)))
    return sorted(days)


def coverage() -> dict[int, list[str]]:
    """Day -> the names of the steps that cover it."""
    cover: dict[int, list[str]] = {}
    for name, days, _, _ in PLAN:
        for day in days:
            cover.setdefault(day, []).append(name)
    return cover


def plan_text() -> str:
    cover = coverage()
    lines = [f"{'day':>4}  steps"]
    for day in real_run_lessons():
        lines.append(f"{day:>4}  {', '.join(cover.get(day, ['NOT COVERED']))}")
    lines.append("")
    lines.append(f"{len(PLAN)} steps: " + ", ".join(name for name, *_ in PLAN))
    return "\n".join(lines)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300] if text else ''}".rstrip(": ")


def _on_alarm(signum: int, frame: Any) -> None:
    raise StepTimeout("ran past its time budget")


def record(name: str, days: tuple[int, ...], **values: Any) -> dict[str, Any]:
    """A step's result with nothing measured yet (``ok`` None: not run), updated by ``values``."""
    return {"step": name, "lessons": list(days), "ok": None, "error": None, "tokens_per_s": None, "mfu": None,
            "peak_mem_gb": None, "compile_s": None, "wall_s": 0.0, **values}


def run_step(ctx: Ctx, name: str, days: tuple[int, ...], fn: Any, budget: float) -> dict[str, Any]:
    """One step, isolated: its error is recorded, never raised."""
    rec = record(name, days, ok=False, wall_s=None, budget_s=budget)
    if ctx.cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(ctx.device)
    use_alarm = hasattr(signal, "setitimer")
    if use_alarm:
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, budget)
    t0 = time.perf_counter()
    try:
        out = fn(ctx)
        if "skipped" in out:
            rec.update(ok=None, error=f"skipped: {out.pop('skipped')}")
        else:
            rec["ok"] = True
        for key in ("tokens_per_s", "mfu", "compile_s"):
            if out.get(key) is not None:
                rec[key] = round(out.pop(key), 4 if key == "mfu" else 2)
        rec["details"] = out
    except (Exception, StepTimeout) as exc:   # one failure never stops the rest
        rec["error"] = _one_line(exc)
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
    rec["wall_s"] = round(time.perf_counter() - t0, 2)
    if ctx.cuda:
        rec["peak_mem_gb"] = round(torch.cuda.max_memory_allocated(ctx.device) / 2**30, 3)
    child = rec.get("details", {}).pop("peak_mem_gb", None)   # measured in a subprocess (DDP)
    if child is not None:
        rec["peak_mem_gb"] = round(child, 3)
    return rec


def machine(ctx: Ctx) -> dict[str, Any]:
    info = {"card": "CPU (--cpu-smoke)", "capability": None, "torch": torch.__version__,
            "cuda": torch.version.cuda, "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "mode": "cpu-smoke" if ctx.smoke else ("t4 stand-in" if ctx.t4 else "cuda"),
            "visible_gpus": torch.cuda.device_count() if torch.cuda.is_available() else 0,
            "tf32": torch.backends.cuda.matmul.allow_tf32}
    if ctx.cuda:
        props = torch.cuda.get_device_properties(ctx.device)
        info.update(card=props.name, capability=f"{props.major}.{props.minor}",
                    memory_gb=round(props.total_memory / 2**30, 1))
    return info


def _fmt(value: Any, spec: str) -> str:
    return "" if value is None else format(value, spec)


NOTE_KEYS = ("precision", "sdpa_kernel", "backend", "processes", "cache_speedup", "overflow_step_skipped",
             "data", "note")


def _notes(details: dict[str, Any]) -> str:
    return "; ".join(f"{k} {details[k]}" for k in NOTE_KEYS if k in details).replace("|", "/")


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    head = (f"Measured on **{m['card']}** ({m['mode']}), torch {m['torch']}, CUDA {m['cuda']}, "
            f"{m['date']}, by `benchmarks/gpu_acceptance.py`; total {result['total_s']:.0f} s. "
            "Compile (s) is the first step's time over the median step's: for the compiled "
            "Trainer that is its training graph; the evaluation graph, compiled before it, counts "
            "in the step's wall time only.\n\n")
    rows = ["| step | lessons | result | tokens/s | MFU | peak memory (GB) | compile (s) | wall (s) | notes |",
            "|---|---|---|---:|---:|---:|---:|---:|---|"]
    for r in result["steps"]:
        state = "pass" if r["ok"] else ("" if r["ok"] is None else "FAIL: ")
        if r["error"]:
            state += r["error"].replace("|", "/")
        rows.append(f"| {r['step']} | {', '.join(map(str, r['lessons']))} | {state} | "
                    f"{_fmt(r['tokens_per_s'], ',.0f')} | {_fmt(r['mfu'], '.1%')} | "
                    f"{_fmt(r['peak_mem_gb'], '.2f')} | {_fmt(r['compile_s'], '.1f')} | {r['wall_s']:.1f} | "
                    f"{_notes(r.get('details') or {})} |")
    return head + "\n".join(rows) + "\n"


def _skipped(name: str, days: tuple[int, ...], why: str) -> dict[str, Any]:
    return record(name, days, error=f"skipped: {why}")


def run_plan(ctx: Ctx, only: list[str] | None = None, total_budget: float = TOTAL_BUDGET_S,
             on_step: Any = None) -> dict[str, Any]:
    """Every step of ``PLAN`` (or ``only`` those) within ``total_budget`` seconds.

    ``on_step(result)`` is called with the result so far after each step (``complete`` False).
    """
    start = time.perf_counter()
    steps: list[dict[str, Any]] = []
    info = machine(ctx)

    def result(complete: bool) -> dict[str, Any]:
        return {"machine": info, "steps": steps, "total_s": round(time.perf_counter() - start, 1),
                "budget_s": total_budget, "complete": complete}

    for name, days, fn, budget in PLAN:
        if only and name not in only:
            continue
        left = total_budget - (time.perf_counter() - start)
        if ctx.t4 and name in NOT_IN_T4:
            steps.append(_skipped(name, days, f"not in the T4 stand-in: {NOT_IN_T4[name]}"))
            continue
        if ctx.smoke:
            budget = SMOKE_STEP_BUDGET_S
        elif left < 5:
            steps.append(_skipped(name, days, "out of total time"))
            continue
        else:
            budget = min(budget, left)
        rec = run_step(ctx, name, days, fn, budget)
        print(f"{'ok  ' if rec['ok'] else ('skip' if rec['ok'] is None else 'FAIL')} {name:<28} "
              f"{rec['wall_s']:6.1f} s  {rec['error'] or ''}", flush=True)
        steps.append(rec)
        if on_step is not None:
            on_step(result(False))
    return result(True)


def result_name(mode: str) -> str:
    """``gpu_acceptance-<mode>``, the stem of a run's JSON and Markdown files."""
    return "gpu_acceptance-" + mode.replace(" ", "-")


def write_results(result: dict[str, Any], out: Path, book: bool = False) -> tuple[Path, Path]:
    """``gpu_acceptance-<mode>.json`` and ``.md`` in ``out`` (and the book's fragment)."""
    out.mkdir(parents=True, exist_ok=True)
    stem = result_name(result["machine"]["mode"])
    json_path, md_path = out / f"{stem}.json", out / f"{stem}.md"
    write_json_atomic(json_path, result)
    table = markdown(result)
    if not result.get("complete", True):
        table = "**Incomplete: the run stopped before its last step.**\n\n" + table
    write_atomic(md_path, table)
    if book:
        write_atomic(BOOK_PAGE, book_page([result]))
    return json_path, md_path


def book_page(results: list[dict[str, Any]]) -> str:
    """The book's fragment: one table per run (the cuda run, then the T4 stand-in)."""
    parts = ["<!-- written by benchmarks/gpu_acceptance.py (--book or --ingest) -->"]
    for r in results:
        title = "The T4 stand-in" if r["machine"]["mode"] == "t4 stand-in" else "The card as it is"
        note = "" if r.get("complete", True) else "**Incomplete: the run stopped before its last step.**\n\n"
        parts.append(f"### {title}\n\n{note}{markdown(r)}")
    return "\n\n".join(parts)


def ingest(folder: Path, results_dir: Path = ROOT / "benchmarks" / "results") -> int:
    """File the JSON results a device run left in ``folder``: into ``results_dir``, the book's
    fragment and the ``MEASURED`` block of ``llmcourse/gpu_figures.py`` (T4 stand-in first)."""
    import json

    from llmcourse import gpu_figures

    paths = [folder / f"{result_name(mode)}.json" for mode in MODES]
    found = [p for p in paths if p.is_file()]
    if not found:
        print(f"gpu_acceptance: error: {folder} holds no {' or '.join(p.name for p in paths)}; give the "
              "folder the device run's files came back to", file=sys.stderr)
        return 2
    try:
        results = [json.loads(p.read_text(encoding="utf-8")) for p in found]
        for r in results:
            if not (isinstance(r, dict) and isinstance(r.get("machine"), dict) and "mode" in r["machine"]
                    and isinstance(r.get("steps"), list)):
                raise ValueError("no machine.mode or no list of steps")
    except ValueError as exc:
        print(f"gpu_acceptance: error: {found[0].parent} holds a result that is not gpu_acceptance's JSON "
              f"({_one_line(exc)}); give the files as the device run wrote them", file=sys.stderr)
        return 2
    measured = gpu_figures.rebuild(sorted(results, key=lambda r: r["machine"]["mode"] != "t4 stand-in"))
    for r in results:
        write_results(r, results_dir)
    write_atomic(BOOK_PAGE, book_page(results))
    gpu_figures.write_measured(measured)
    print(f"filed {', '.join(p.name for p in found)} into {results_dir} and {BOOK_PAGE}; "
          f"{len(measured)} of {len(gpu_figures.FIGURES)} GPU figures now rest on the measurement. Next: "
          "python -m tools.nb build --execute (the lessons print the new figures)")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--list", action="store_true", help="print the plan (lesson -> step) and exit")
    ap.add_argument("--cpu-smoke", action="store_true", help="the same plan at tiny sizes on the CPU")
    ap.add_argument("--t4", action="store_true", help="T4 stand-in: a T4's memory (T4_MEMORY_GB), float16 + scaler, no flash SDPA")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--book", action="store_true", help="also write book/gpu_acceptance.md")
    ap.add_argument("--only", action="append", help="run only this step (repeatable)")
    ap.add_argument("--data-dir", type=Path, help="offline data for the sweep (sets LLMCOURSE_DATA_DIR)")
    ap.add_argument("--budget", type=float, default=TOTAL_BUDGET_S,
                    help=f"seconds for the whole plan (default {TOTAL_BUDGET_S}); later steps are skipped")
    ap.add_argument("--ingest", type=Path, metavar="FOLDER",
                    help="file a device run's results (its JSON files in FOLDER) into the repo and exit")
    args = ap.parse_args(argv)
    if args.budget <= 0:
        ap.error(f"--budget must be a positive number of seconds, not {args.budget:g}")
    if args.ingest is not None:
        return ingest(args.ingest)
    if args.data_dir is not None:
        os.environ["LLMCOURSE_DATA_DIR"] = str(args.data_dir.resolve())
    if args.list:
        print(plan_text())
        return 0
    if not args.cpu_smoke and not torch.cuda.is_available():
        print("gpu_acceptance: error: no CUDA GPU is visible; run with --cpu-smoke (or --list) here",
              file=sys.stderr)
        return 2
    device = torch.device("cpu") if args.cpu_smoke else torch.device("cuda", 0)

    def partial(so_far: dict[str, Any]) -> None:   # a run killed at its limit leaves what it measured
        write_results(so_far, args.out)
    with tempfile.TemporaryDirectory(prefix="gpu_acceptance-") as tmp:
        ctx = Ctx(device, args.cpu_smoke, args.t4 and not args.cpu_smoke, Path(tmp))
        if ctx.cuda and not ctx.t4:
            enable_tf32()   # as the Trainer does; lessons' own float32 loops run after it
        if ctx.t4:
            from torch.nn.attention import SDPBackend, sdpa_kernel

            import llmcourse.train.trainer as trainer_module

            # A T4 has no TF32, so the Trainer's enable_tf32() changes nothing there: keep it off.
            trainer_module.enable_tf32 = lambda: None

            total = torch.cuda.get_device_properties(device).total_memory / 2**30
            torch.cuda.set_per_process_memory_fraction(min(1.0, T4_MEMORY_GB / total), device)
            with sdpa_kernel([SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]):   # what sm75 has
                result = run_plan(ctx, args.only, args.budget, on_step=partial)
        else:
            result = run_plan(ctx, args.only, args.budget, on_step=partial)
    json_path, md_path = write_results(result, args.out, args.book)
    failed = [s["step"] for s in result["steps"] if s["ok"] is False]
    print(f"{len(result['steps']) - len(failed)} of {len(result['steps'])} steps passed or skipped; "
          f"{result['total_s']:.0f} s; wrote {json_path} and {md_path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
