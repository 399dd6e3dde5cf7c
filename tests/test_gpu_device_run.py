"""The GPU acceptance run as a lent machine runs it, checked without a GPU (issue 23).

``benchmarks/gpu_device_run.sh`` is the one prepared command: it runs the plan twice (the card,
then the T4 stand-in), writing results after every step; ``--ingest`` files what came back.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
RUN_SH = ROOT / "benchmarks" / "gpu_device_run.sh"
sys.path.insert(0, str(ROOT / "benchmarks"))


def _load():
    spec = importlib.util.spec_from_file_location("gpu_acceptance", ROOT / "benchmarks" / "gpu_acceptance.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ga = _load()
from llmcourse import gpu_figures as gf  # noqa: E402


def _rec(step, precision, mfu, ok=True):
    return {"step": step, "lessons": [1], "ok": ok, "error": None if ok else "RuntimeError: x",
            "tokens_per_s": 4e5, "mfu": mfu, "peak_mem_gb": 2.0, "compile_s": None, "wall_s": 1.0,
            "details": {"precision": precision}}


def _result(mode, mfu16, mfu32, complete=True):
    return {"machine": {"card": "NVIDIA H100 80GB HBM3", "mode": mode, "torch": "2.11.0", "cuda": "13.0",
                        "date": "2026-12-24 10:00 UTC"}, "total_s": 100.0, "complete": complete,
            "steps": [_rec("fp16 + GradScaler (T4 path)", "cuda: float16 autocast + GradScaler", mfu16),
                      _rec("train fp32", "cuda: float32", mfu32)]}


def _sh(*args, env=None, cwd=ROOT):
    full = dict(os.environ, **(env or {}))
    return subprocess.run(["bash", str(cwd / "benchmarks" / "gpu_device_run.sh"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600, env=full)


def test_the_device_script_runs_both_modes_and_leaves_its_files_in_out(tmp_path):
    out = tmp_path / "out"
    run = _sh(env={"OUT": str(out), "GPU_ACCEPTANCE_SMOKE": "1", "OMP_NUM_THREADS": "1",
                   "GPU_ACCEPTANCE_ONLY": "sdpa_kernels data_to_device"})
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "gpu_acceptance (cuda) exited with 0" in run.stdout
    names = sorted(p.name for p in out.iterdir())
    assert names == ["cuda.log", "gpu_acceptance-cpu-smoke.json", "gpu_acceptance-cpu-smoke.md", "machine.txt"]
    assert len(names) <= 8                                     # the device tool returns 8 files at most
    result = json.loads((out / "gpu_acceptance-cpu-smoke.json").read_text())
    assert [s["step"] for s in result["steps"]] == ["sdpa kernels", "data to device"]
    assert result["complete"] is True and "torch" in (out / "machine.txt").read_text()


def test_both_passes_stop_within_total_s_under_the_calls_timeout(tmp_path):
    """With no time left of TOTAL_S a pass does not start: it says so, in its log too, and the
    script exits 124 (as `timeout` would), so the device call never runs past its timeout_s."""
    text = RUN_SH.read_text()
    assert "TOTAL_S=${TOTAL_S:-440}" in text and "timeout_s 450" in text
    out = tmp_path / "out"
    run = _sh(env={"OUT": str(out), "GPU_ACCEPTANCE_SMOKE": "1", "TOTAL_S": "15"})
    assert run.returncode == 124, run.stdout[-2000:] + run.stderr[-2000:]
    assert "gpu_acceptance (cuda) skipped: " in run.stdout
    assert sorted(p.name for p in out.iterdir()) == ["cuda.log", "machine.txt"]
    assert "left of TOTAL_S=15" in (out / "cuda.log").read_text()


def test_the_device_script_refuses_what_it_cannot_do(tmp_path):
    run = _sh("--nope")
    assert (run.returncode, run.stderr.strip()) == (2, "gpu_device_run: error: unknown argument '--nope'; "
                                                       "give none (on the GPU machine) or --prepare (here)")
    env = {k: v for k, v in os.environ.items() if k != "OUT"}
    run = subprocess.run(["bash", str(RUN_SH)], capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode != 0 and "OUT is not set" in run.stderr


def test_prepare_copies_the_data_into_an_ignored_folder(tmp_path):
    repo = tmp_path / "repo"
    (repo / "benchmarks").mkdir(parents=True)
    (repo / ".git" / "info").mkdir(parents=True)
    shutil.copy(RUN_SH, repo / "benchmarks")
    data = tmp_path / "data"
    data.mkdir()
    (data / "tinyshakespeare.txt").write_text("First Citizen:\n")
    run = _sh("--prepare", env={"LLMCOURSE_DATA_DIR": str(data), "TIKTOKEN_CACHE_DIR": ""}, cwd=repo)
    assert run.returncode == 0, run.stderr
    assert (repo / ".gpudata" / "data" / "tinyshakespeare.txt").read_text() == "First Citizen:\n"
    assert (repo / ".git" / "info" / "exclude").read_text().splitlines() == ["/.gpudata/"]
    assert _sh("--prepare", env={"LLMCOURSE_DATA_DIR": str(data)}, cwd=repo).returncode == 0
    assert (repo / ".git" / "info" / "exclude").read_text().splitlines() == ["/.gpudata/"]   # once
    run = _sh("--prepare", env={"LLMCOURSE_DATA_DIR": str(tmp_path / "none")}, cwd=repo)
    assert (run.returncode, run.stderr.strip()) == (
        2, "gpu_device_run: error: set LLMCOURSE_DATA_DIR to a folder holding tinyshakespeare.txt")


def test_results_are_written_after_every_step_so_a_killed_run_leaves_them(tmp_path, monkeypatch):
    def fine(ctx):
        return {"tokens_per_s": 1.0}

    def killed(ctx):
        raise KeyboardInterrupt   # as `timeout`'s signal would end the process mid-step

    monkeypatch.setattr(ga, "PLAN", [("one", (1,), fine, 5), ("two", (2,), killed, 5)])
    with pytest.raises(KeyboardInterrupt):
        ga.main(["--cpu-smoke", "--out", str(tmp_path)])
    result = json.loads((tmp_path / "gpu_acceptance-cpu-smoke.json").read_text())
    assert [s["step"] for s in result["steps"]] == ["one"] and result["complete"] is False
    assert (tmp_path / "gpu_acceptance-cpu-smoke.md").read_text().startswith("**Incomplete")


def test_the_t4_stand_in_skips_what_it_cannot_stand_in_for(tmp_path, monkeypatch):
    calls = []
    plan = [(name, (1,), lambda ctx, n=name: calls.append(n) or {}, 5) for name in ("DDP", "train compiled", "x")]
    monkeypatch.setattr(ga, "PLAN", plan)
    ctx = ga.Ctx(torch.device("cpu"), False, True, tmp_path)
    result = ga.run_plan(ctx, total_budget=60)
    assert calls == ["x"]
    assert [s["error"] for s in result["steps"]][:2] == [
        f"skipped: not in the T4 stand-in: {ga.NOT_IN_T4['DDP']}",
        f"skipped: not in the T4 stand-in: {ga.NOT_IN_T4['train compiled']}"]
    result = ga.run_plan(ga.Ctx(torch.device("cpu"), False, False, tmp_path), total_budget=1)
    assert {s["error"] for s in result["steps"]} == {"skipped: out of total time"}


def test_budget_must_be_positive(capsys):
    with pytest.raises(SystemExit) as exc:
        ga.main(["--cpu-smoke", "--budget", "0"])
    assert exc.value.code == 2 and "--budget must be a positive number of seconds, not 0" in capsys.readouterr().err


def test_ingest_files_both_runs_and_prefers_the_t4_stand_in(tmp_path, monkeypatch):
    back = tmp_path / "back"
    back.mkdir()
    (back / "gpu_acceptance-cuda.json").write_text(json.dumps(_result("cuda", 0.30, 0.50)))
    (back / "gpu_acceptance-t4-stand-in.json").write_text(json.dumps(_result("t4 stand-in", 0.20, 0.40, False)))
    written = {}
    monkeypatch.setattr(ga, "BOOK_PAGE", tmp_path / "book.md")
    monkeypatch.setattr(gf, "write_measured", lambda measured: written.update(measured))
    assert ga.ingest(back, tmp_path / "results") == 0
    assert written["shakespeare-char train"]["mfu"] == 0.20 and written["shakespeare-char train"]["mode"] == "t4 stand-in"
    assert written["day 16 optimizer runs"]["mfu"] == 0.40
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == [
        "gpu_acceptance-cuda.json", "gpu_acceptance-cuda.md", "gpu_acceptance-t4-stand-in.json",
        "gpu_acceptance-t4-stand-in.md"]
    page = (tmp_path / "book.md").read_text()
    assert page.index("### The card as it is") < page.index("### The T4 stand-in")
    assert "**Incomplete: the run stopped before its last step.**" in page.split("### The T4 stand-in")[1]
    how = gf.t4_seconds("shakespeare-char train", written)[2]
    assert "measured on NVIDIA H100 80GB HBM3 (t4 stand-in) 2026-12-24" in how


def test_ingest_refuses_a_folder_without_results(tmp_path, capsys):
    assert ga.main(["--ingest", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"gpu_acceptance: error: {tmp_path} holds no gpu_acceptance-cuda.json or ")
    (tmp_path / "gpu_acceptance-cuda.json").write_text('{"steps": []}')
    assert ga.main(["--ingest", str(tmp_path)]) == 2
    assert "holds a result that is not gpu_acceptance's JSON" in capsys.readouterr().err


def test_gpu_figures_takes_several_results_first_one_first(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_result("t4 stand-in", 0.2, 0.4)))
    b.write_text(json.dumps(_result("cuda", 0.3, 0.5)))
    assert gf.rebuild([_result("cuda", 0.3, 0.5), _result("t4 stand-in", 0.2, 0.4)])["shakespeare-char train"]["mfu"] == 0.3
    assert gf.main(["--help"]) == 2 and "RESULTS.json [MORE.json ...]" in capsys.readouterr().err


def test_the_stand_in_counts_float32_against_the_cuda_cores_without_tf32(monkeypatch, tmp_path):
    from gpu_acceptance_ctx import Ctx

    ctx = Ctx(torch.device("cuda", 0), False, True, tmp_path)
    matmul = torch.backends.cuda.matmul
    before = matmul.allow_tf32          # a property of torch's cuBLAS module: set and put back
    try:
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 80GB HBM3")
        matmul.allow_tf32 = False
        assert ctx.peak("float32") == 67e12 and ctx.peak("float16") == 989e12
        matmul.allow_tf32 = True
        assert ctx.peak("float32") == 494e12
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 PCIe")
        matmul.allow_tf32 = False
        assert ctx.peak("float32") == 51e12
    finally:
        matmul.allow_tf32 = before


def test_what_the_device_call_carries_fits_its_64_mib():
    """The device tool sends the working tree (tracked files) and the carried .gpudata; over
    64 MiB the call is refused, so the repository must stay well under it (a 25% margin)."""
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True,
                             check=True).stdout.decode().split("\0")
    size = sum((ROOT / p).stat().st_size for p in tracked if p and (ROOT / p).is_file())
    data = Path(os.environ.get("LLMCOURSE_DATA_DIR", "")) / "tinyshakespeare.txt"
    size += data.stat().st_size if data.is_file() else 1_115_394      # Tiny Shakespeare's size
    cache = os.environ.get("TIKTOKEN_CACHE_DIR")
    if cache and Path(cache).is_dir():
        size += sum(p.stat().st_size for p in Path(cache).rglob("*") if p.is_file())
    assert size < 0.75 * 64 * 2**20, f"{size / 2**20:.1f} MiB would travel; the device call takes 64 MiB"
