"""Running a sweep: every (setting, seed) pair of a grid trained into its own run folder.

:func:`run_sweep` writes ``sweep.json`` (what every run shares), trains each run through
:func:`llmcourse.runs.train_preset` (``jobs=N``: N at a time, each in a child process running
:func:`worker_main`), writes each run's ``result.json`` once it is complete and returns a
:class:`~llmcourse.sweep.results.SweepResult`. A second call skips the finished runs and resumes
an interrupted one; a folder holding a run with other settings is refused before anything
trains.

Example (no training: a context longer than the sweep allows is refused up front):
    >>> check_context({"model": {"block_size": 100_000}}, None)
    Traceback (most recent call last):
    ...
    ValueError: block_size=100000 is above 8192, the longest context a sweep trains (a step would take minutes and the attention's memory grows with its square); give block_size <= 8192
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from llmcourse.sweep.results import SweepResult, check_row
from llmcourse.sweep.settings import (base_preset, expand_settings, folder_name, jsonable,
                                      parse_seeds, setting_changes, with_settings,
                                      without_folder)

__all__ = ["run_sweep", "RunFailed", "MAX_BLOCK_SIZE", "check_context", "read_result",
           "worker_main"]

SWEEP_FILE = "sweep.json"
RESULT_FILE = "result.json"
LOG_FILE = "worker.log"
#: The longest context a sweep trains: beyond it one training step takes minutes on a CPU
#: and the attention's memory grows with its square.
MAX_BLOCK_SIZE = 8192


class RunFailed(ValueError):
    """A run of a sweep diverged, or failed in its subprocess (``jobs=N``; its log says why).

    The runs finished before it keep their folders and ``result.json``: fix the setting (or drop
    it) and run the sweep again to go on from there."""


def check_context(preset: dict[str, Any], prep: Any) -> None:
    """Refuse a ``block_size`` above :data:`MAX_BLOCK_SIZE` or too long for the data's splits."""
    block = int(preset.get("model", {}).get("block_size", 0) or 0)
    if block > MAX_BLOCK_SIZE:
        raise ValueError(f"block_size={block} is above {MAX_BLOCK_SIZE}, the longest context a "
                         "sweep trains (a step would take minutes and the attention's memory "
                         f"grows with its square); give block_size <= {MAX_BLOCK_SIZE}")
    for split in ("train", "val"):
        tokens = len(prep.load(split))
        if block >= tokens:
            raise ValueError(f"block_size={block} needs {block + 1} tokens per sequence, but "
                             f"the {split} split of {prep.path} has {tokens}; give block_size "
                             f"< {tokens}")


# --------------------------------------------------------------------------------------------
# One run


def _outcome(run_dir: Path) -> dict[str, Any]:
    """The losses of the finished run in ``run_dir``, from its ``metrics.jsonl``."""
    from llmcourse.train import read_metrics

    evals = [r for r in read_metrics(run_dir / "metrics.jsonl") if r.get("type") == "eval"]
    if not evals:
        raise ValueError(f"{run_dir} finished without an evaluation; its metrics.jsonl is incomplete")
    last = evals[-1]
    vals = [r["val_loss"] for r in evals if r.get("val_loss") is not None]
    return {"val_loss": float(min(vals)), "final_val_loss": float(last["val_loss"]),
            "train_loss": float(last["train_loss"]), "steps": int(last["iter"])}


def _run_state(run_dir: Path, preset: dict[str, Any]) -> str:
    """``"done"``, ``"resume"``, ``"fresh"`` (nothing there, or a run that stopped before its
    first checkpoint), or raise when the folder holds something else."""
    from llmcourse.runs import RUN_FILE, read_json

    if not run_dir.exists():
        return "fresh"
    if not run_dir.is_dir():
        raise FileExistsError(f"{run_dir} is a file, not a run folder; move it or give another out_dir")
    run_file = run_dir / RUN_FILE
    if not run_file.is_file():
        extra = [p.name for p in run_dir.iterdir() if p.name != LOG_FILE and ".tmp" not in p.name]
        if extra:
            raise FileExistsError(
                f"{run_dir} holds {', '.join(sorted(extra)[:3])} but no run.json: it is not a run "
                "of this sweep and is never replaced; move it or give another out_dir")
        return "fresh"
    earlier = read_json(run_file, "run")
    before = earlier.get("preset") if isinstance(earlier, dict) else None
    if not isinstance(before, dict) or without_folder(before) != without_folder(preset):
        changes = setting_changes(without_folder(before), without_folder(preset)) \
            if isinstance(before, dict) else ["its run.json records no preset"]
        raise FileExistsError(
            f"{run_dir} holds a run made with other settings than this sweep's "
            f"({'; '.join(changes)}); it is never replaced: give another out_dir (or the "
            "sweep's original settings)")
    if (run_dir / RESULT_FILE).is_file():
        return "done"
    if any((run_dir / n).is_file() for n in ("ckpt.pt", "best.pt")):
        return "resume"
    return "fresh"


def read_result(run_dir: Path) -> dict[str, Any]:
    """The ``result.json`` of a finished run, checked (a damaged one: a ValueError naming it)."""
    from llmcourse.runs import read_json

    path = run_dir / RESULT_FILE
    return check_row(read_json(path, "sweep result"), path)


def _run_one(spec: dict[str, Any]) -> dict[str, Any]:
    """Train (or resume, or skip) one run; return its row. ``spec`` is JSON-able."""
    from llmcourse.atomic import folder_lock, write_json_atomic
    from llmcourse.runs import NothingToDo, train_preset

    run_dir = Path(spec["run_dir"])
    preset = spec["preset"]
    row = {"setting": spec["setting"], "params": spec["params"], "seed": spec["seed"]}
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    with folder_lock(run_dir, verbose=False):  # two sweeps sharing a folder train a run once
        state = _run_state(run_dir, preset)
        if state == "done":
            done = read_result(run_dir)
            return dict(done, **row, out_dir=str(run_dir), status="skipped")
        from llmcourse.train import TrainingDiverged

        start = time.perf_counter()
        try:
            train_preset(preset, resume=state == "resume", progress=False)
        except NothingToDo:
            pass  # killed after its last checkpoint, before result.json: the run is complete
        except TrainingDiverged as exc:  # say which run of the sweep it was
            raise RunFailed(f"the run {spec['setting']} seed {spec['seed']} ({run_dir}): {exc}") from None
        seconds = time.perf_counter() - start
        result = dict(row, **_outcome(run_dir), seconds=seconds)
        write_json_atomic(run_dir / RESULT_FILE, result)
        return dict(result, out_dir=str(run_dir), status="trained")


def worker_main(spec_json: str) -> int:
    """``python -m llmcourse.sweep --worker SPEC``: one run in a child process.

    Its error goes to the sweep by the pipe ``spec["report_fd"]`` (a full disk may keep it
    out of the log) and, when it can, to ``worker.log``."""
    import torch

    spec = json.loads(spec_json)
    torch.set_num_threads(int(spec.get("threads", 1)))
    try:
        _run_one(spec)
    except (ValueError, FileExistsError, FileNotFoundError) as exc:  # the user's: one line
        _tell_sweep(spec, {"error": str(exc)}, exc)
        return 2
    except OSError as exc:  # the machine's: the sweep raises it as its own
        _tell_sweep(spec, {"oserror": [exc.errno, exc.strerror, exc.filename]}, exc)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def _tell_sweep(spec: dict[str, Any], message: dict[str, Any], exc: BaseException) -> None:
    with contextlib.suppress(OSError):
        print(exc, file=sys.stderr)
    fd = spec.get("report_fd")
    if fd is not None:
        with contextlib.suppress(OSError):
            os.write(int(fd), json.dumps(message).encode("utf-8"))


def _child_failure(code: int, message: dict[str, Any], spec: dict[str, Any]) -> Exception:
    """The error of a worker that failed, as the sweep raises it."""
    log = Path(spec["run_dir"]) / LOG_FILE
    if "oserror" in message:  # the same OSError, so the same line and exit status as jobs=1
        number, text, filename = message["oserror"]
        return OSError(number, text, filename)
    detail = message.get("error")
    if detail is None:  # a crash: the last line of its log says why
        try:
            tail = log.read_text(errors="replace").strip().splitlines()
        except OSError:
            tail = []
        detail = tail[-1] if tail else "no output"
    if detail.startswith("the run "):  # it said which run
        return RunFailed(f"{detail} (log: {log})")
    return RunFailed(f"the run {spec['setting']} seed {spec['seed']} failed (exit {code}): "
                     f"{detail} (log: {log})")


def _read_report(fd: int) -> dict[str, Any]:
    try:
        data = os.read(fd, 1 << 16)
    except OSError:
        data = b""
    finally:
        os.close(fd)
    try:
        message = json.loads(data.decode("utf-8")) if data else {}
    except ValueError:
        message = {}
    return message if isinstance(message, dict) else {}


# --------------------------------------------------------------------------------------------
# The sweep


def run_sweep(preset: str, out_dir: str | os.PathLike[str], *,
              grid: dict[str, Sequence[Any]] | None = None,
              variants: Sequence[tuple[str, dict[str, Any]]] | None = None,
              seeds: int | Sequence[int] = 3, overrides: Any = None, jobs: int = 1,
              progress: bool = False, plot: bool = True) -> SweepResult:
    """Train every (setting, seed) of a sweep that is not finished yet; return all the rows.

    Args:
        preset: a preset name (``llmcourse.presets.list_presets()``).
        out_dir: the sweep's folder; each run goes to ``out_dir/<setting>/seed<k>``.
        grid: ``{"model.n_embd": [64, 128], ...}``: the cross product of the value lists.
        variants: ``[("baseline", {}), ("rms", {"model.norm": "rmsnorm"})]``: named settings.
        seeds: ``n`` for seeds ``0..n-1`` (``train.seed``), or a list of seeds.
        overrides: settings for every run: ``{"train": {"max_iters": 100}}`` or
            ``["max_iters=100"]`` as ``--set`` takes them.
        jobs: ``1`` trains in this process; ``N`` trains N runs at a time in subprocesses,
            each with ``max(1, torch.get_num_threads() // N)`` threads.
        progress: print one line per run as it finishes.
        plot: also write ``results.png`` next to ``results.json`` and ``results.md``.

    Every check comes first: bad settings, a folder holding something else, or a run
    folder holding a run with other settings raise before anything is trained.

    Raises:
        ValueError: bad settings (one line, with a did-you-mean for an unknown key).
        FileExistsError: ``out_dir`` (or one of its run folders) holds something else.
        RunFailed: a run diverged, or failed in a subprocess (the message ends with the last
            line of its ``worker.log``); the runs finished before it keep their results.
    """
    import torch

    from llmcourse.atomic import write_json_atomic
    from llmcourse.runs import build_configs, prepare_preset_data, read_json

    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs={jobs!r}: give a whole number >= 1 (1 trains in this process)")
    seed_list = parse_seeds(seeds)
    base = jsonable(base_preset(preset, overrides))  # as run.json will hold it
    settings = [(label, jsonable(params)) for label, params in expand_settings(grid, variants)]
    out = Path(out_dir)

    # The sweep folder: new, empty, or an earlier sweep with the same base settings.
    sweep_file = out / SWEEP_FILE
    record = {"preset": preset, "base": without_folder(base)}
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"out_dir {out} is a file; give a folder for the sweep")
    if sweep_file.is_file():
        earlier = read_json(sweep_file, "sweep")
        if earlier != record:
            changes = (setting_changes({"preset": earlier.get("preset")}, {"preset": preset})
                       + setting_changes(earlier.get("base") or {}, record["base"])) \
                if isinstance(earlier, dict) else [f"{SWEEP_FILE} holds no settings"]
            raise FileExistsError(
                f"{out} holds a sweep with other base settings ({'; '.join(changes)}); its runs "
                "are never replaced: give another out_dir (or the sweep's original settings)")
    elif out.is_dir() and any(not p.name.startswith(".") for p in out.iterdir()):
        raise FileExistsError(f"{out} is not empty and holds no {SWEEP_FILE}: it is not a sweep "
                              "folder and is never written into; give a new or empty out_dir")

    folders = [folder_name(label) for label, _ in settings]
    clash = next((f for f in folders if folders.count(f) > 1), None)
    if clash is not None:
        names = [label for (label, _), f in zip(settings, folders) if f == clash]
        raise ValueError(f"the settings {names[0]!r} and {names[1]!r} would share the folder "
                         f"{clash!r}; rename a variant (letters, digits and . _ = , + - only)")

    # Every run's settings and folder, checked before anything is trained.
    data_seen: dict[str, Any] = {}
    specs = []
    for label, params in settings:
        p = with_settings(base, params)
        key = json.dumps(p.get("data", {}), sort_keys=True, default=str)
        if key not in data_seen:  # prepared once here, not by N children at once
            data_seen[key] = prepare_preset_data(p, progress=progress)
        build_configs(p, data_seen[key].vocab_size)  # bad values fail now, in one line
        check_context(p, data_seen[key])  # a context too long for the data, or absurd
        for seed in seed_list:
            run_dir = out / folder_name(label) / f"seed{seed}"
            run = with_settings(p, {"train.seed": seed, "train.out_dir": str(run_dir)})
            _run_state(run_dir, run)  # raises on a folder holding something else
            specs.append({"preset": run, "run_dir": str(run_dir), "setting": label,
                          "params": params, "seed": seed})
    if train_max := [s for s in specs if s["preset"]["train"].get("max_iters", 1) < 1]:
        raise ValueError(f"max_iters={train_max[0]['preset']['train']['max_iters']} trains nothing; "
                         "set max_iters >= 1")
    write_json_atomic(sweep_file, record)

    rows: list[dict[str, Any] | None] = [None] * len(specs)

    def report(i: int, row: dict[str, Any]) -> None:
        rows[i] = row
        if progress:
            done = sum(r is not None for r in rows)
            print(f"[{done}/{len(specs)}] {row['setting']} seed {row['seed']}: val "
                  f"{row['val_loss']:.4f} ({row['status']}, {row['seconds']:.1f} s)", flush=True)

    if jobs == 1:
        for i, spec in enumerate(specs):
            report(i, _run_one(spec))
    else:
        _run_parallel(specs, jobs, max(1, torch.get_num_threads() // jobs), report)

    result = SweepResult([r for r in rows if r is not None], preset, str(out))
    result.save(out, plot=plot)
    return result


def _run_parallel(specs: list[dict[str, Any]], jobs: int, threads: int, report: Any) -> None:
    """Run the specs in at most ``jobs`` child processes at a time."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    waiting = list(enumerate(specs))
    running: dict[int, tuple[subprocess.Popen[bytes], Any, dict[str, Any], int | None]] = {}
    failed: Exception | None = None
    try:
        while waiting or running:
            while waiting and failed is None and len(running) < jobs:
                i, spec = waiting.pop(0)
                run_dir = Path(spec["run_dir"])
                if _run_state(run_dir, spec["preset"]) == "done":  # no process for a skip
                    report(i, dict(read_result(run_dir), out_dir=str(run_dir), status="skipped"))
                    continue
                run_dir.mkdir(parents=True, exist_ok=True)
                log = open(run_dir / LOG_FILE, "wb")
                read_fd, write_fd = os.pipe() if os.name == "posix" else (None, None)
                child = dict(spec, threads=threads, report_fd=write_fd)
                try:
                    proc = subprocess.Popen(
                        [sys.executable, "-m", "llmcourse.sweep", "--worker", json.dumps(child)],
                        stdout=log, stderr=subprocess.STDOUT, env=env,
                        pass_fds=() if write_fd is None else (write_fd,))
                finally:
                    if write_fd is not None:
                        os.close(write_fd)
                running[i] = (proc, log, spec, read_fd)
            if failed is not None:
                waiting.clear()  # start no more; let the running ones finish their work
            for i, (proc, log, spec, read_fd) in list(running.items()):
                if proc.poll() is None:
                    continue
                log.close()
                del running[i]
                message = {} if read_fd is None else _read_report(read_fd)
                run_dir = Path(spec["run_dir"])
                if proc.returncode != 0 or not (run_dir / RESULT_FILE).is_file():
                    failed = failed or _child_failure(proc.returncode, message, spec)
                    continue
                report(i, dict(read_result(run_dir), out_dir=str(run_dir), status="trained"))
            if running:
                time.sleep(0.05)
    finally:
        for proc, log, _, read_fd in running.values():  # Ctrl-C or an error: no orphans
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
            if read_fd is not None:
                os.close(read_fd)
    if failed is not None:
        raise failed

