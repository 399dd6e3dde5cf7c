"""benchmarks/gpu_acceptance.py and llmcourse.gpu_figures, checked without a GPU (issue 23).

``--list`` must cover every lesson with a ``REAL_RUN`` path; ``--cpu-smoke`` runs the whole plan
at tiny sizes (about a minute on 2 cores); the one table of GPU figures rebuilds from a
results file, and every figure says how it was made.
"""

from __future__ import annotations

import importlib.util
import json
import re
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_acceptance.py"


def _load():
    spec = importlib.util.spec_from_file_location("gpu_acceptance", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ga = _load()


def test_every_real_run_lesson_is_covered_by_a_step():
    days = ga.real_run_lessons()
    assert len(days) >= 30, days          # the course has 36 lessons, all with REAL_RUN today
    missing = [d for d in days if d not in ga.coverage()]
    assert missing == [], f"lessons with REAL_RUN that no step of the plan covers: {missing}"
    assert "NOT COVERED" not in ga.plan_text()


def test_list_names_an_uncovered_lesson(monkeypatch):
    plan = [row for row in ga.PLAN if 36 not in row[1]]
    monkeypatch.setattr(ga, "PLAN", plan)
    assert "  36  NOT COVERED" in ga.plan_text()


def test_list_prints_the_plan(capsys):
    assert ga.main(["--list"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["day", "steps"]
    assert "  34  fine-tune + LoRA" in out


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal without a GPU")
def test_without_a_gpu_it_refuses_and_writes_nothing(tmp_path, capsys):
    assert ga.main(["--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "gpu_acceptance: error: no CUDA GPU is visible; run with --cpu-smoke (or --list) here"
    assert not (tmp_path / "out").exists()


def test_a_failing_or_slow_step_is_recorded_and_the_rest_go_on(tmp_path):
    ctx = ga.Ctx(torch.device("cpu"), True, False, tmp_path)

    def boom(ctx):
        raise RuntimeError("first line\nsecond line")

    def slow(ctx):
        time.sleep(5)
        return {}

    rec = ga.run_step(ctx, "boom", (1,), boom, 5)
    assert (rec["ok"], rec["error"]) == (False, "RuntimeError: first line")
    rec = ga.run_step(ctx, "slow", (1,), slow, 0.2)
    assert rec["ok"] is False and rec["error"].startswith("StepTimeout") and rec["wall_s"] < 2
    rec = ga.run_step(ctx, "fine", (1,), lambda c: {"tokens_per_s": 12.345, "x": 1}, 5)
    assert (rec["ok"], rec["tokens_per_s"], rec["details"]) == (True, 12.35, {"x": 1})


def _fake_result(card="NVIDIA H100 80GB HBM3"):
    def rec(step, precision, mfu, tok_s, mem):
        return {"step": step, "lessons": [1], "ok": True, "error": None, "tokens_per_s": tok_s,
                "mfu": mfu, "peak_mem_gb": mem, "compile_s": None, "wall_s": 1.0,
                "details": {"precision": precision}}

    return {"machine": {"card": card, "mode": "cuda", "torch": "2.x", "cuda": "12.x",
                        "date": "2026-12-24 10:00 UTC"},
            "total_s": 300.0,
            "steps": [rec("fp16 + GradScaler (T4 path)", "cuda: float16 autocast + GradScaler", 0.2, 4e5, 3.0),
                      rec("train fp32", "cuda: float32", 0.5, 2e5, 2.0),
                      {"step": "DPO", "lessons": [36], "ok": False, "error": "OutOfMemoryError: x",
                       "tokens_per_s": None, "mfu": None, "peak_mem_gb": 15.0, "compile_s": None,
                       "wall_s": 2.0}]}


def test_results_are_written_as_json_and_markdown(tmp_path, monkeypatch):
    monkeypatch.setattr(ga, "BOOK_PAGE", tmp_path / "book.md")
    result = _fake_result()
    json_path, md_path = ga.write_results(result, tmp_path / "out")
    assert json.loads(json_path.read_text()) == result
    table = md_path.read_text()
    assert "**NVIDIA H100 80GB HBM3** (cuda), torch 2.x, CUDA 12.x, 2026-12-24 10:00 UTC" in table
    assert "| DPO | 36 | FAIL: OutOfMemoryError: x |" in table
    assert "| precision cuda: float16 autocast + GradScaler |" in table   # the notes column
    assert not (tmp_path / "book.md").exists()
    ga.write_results(result, tmp_path / "out", book=True)
    assert table in (tmp_path / "book.md").read_text()


def test_the_book_placeholder_says_it_has_not_run():
    assert "Not yet run on a GPU" in (ROOT / "book" / "gpu_acceptance.md").read_text()


@pytest.mark.slow
def test_cpu_smoke_runs_the_whole_plan(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    run = subprocess.run([sys.executable, str(SCRIPT), "--cpu-smoke", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=900, env=env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads((tmp_path / "gpu_acceptance-cpu-smoke.json").read_text())
    assert [s["step"] for s in result["steps"]] == [row[0] for row in ga.PLAN]
    failed = {s["step"]: s["error"] for s in result["steps"] if s["ok"] is False}
    assert failed == {}
    skipped = {s["step"] for s in result["steps"] if s["ok"] is None}
    assert skipped <= {"train compiled"}, skipped
    assert "| step | lessons | result |" in (tmp_path / "gpu_acceptance-cpu-smoke.md").read_text()


# ---- llmcourse.gpu_figures ------------------------------------------------------------------

from llmcourse import gpu_figures as gf  # noqa: E402


def test_every_figure_states_its_method_and_a_sane_range():
    for name in gf.FIGURES:
        s = gf.show(name)
        assert s["how"].startswith(("estimate: ", "measured on ")), (name, s["how"])
        lo, hi = s["t4_seconds"]
        assert 0 < lo <= hi, name
        assert gf.line(name).startswith("T4: about ")


def test_each_figure_lists_the_lessons_that_print_it():
    """A figure's `lessons` are the lessons whose code names it (literally or by an f-string prefix)."""
    used: dict[str, set[int]] = {name: set() for name in gf.FIGURES}
    for path in sorted((ROOT / "solutions").glob("day*.md")):
        text = path.read_text(encoding="utf-8")
        if "gpu_figures" not in text:
            continue
        for literal in re.findall(r'f?"([^"\n]+)"', text):
            prefix = literal.split("{")[0] if "{" in literal else None
            for name in gf.FIGURES:
                if literal == name or (prefix and len(prefix) > 12 and name.startswith(prefix)):
                    used[name].add(int(path.name[3:5]))
    wrong = {name: (tuple(sorted(days)), gf.FIGURES[name].lessons) for name, days in used.items()
             if tuple(sorted(days)) != tuple(sorted(gf.FIGURES[name].lessons))}
    assert not wrong, f"figure: (lessons that print it, its lessons tuple): {wrong}"


def test_assumed_figures_use_the_t4_peak_of_their_precision():
    s16, s32 = gf.show("shakespeare-char train"), gf.show("gpt2 lora tune")
    assert "float16 peak of 65 TFLOP/s" in s16["how"] and "float32 peak of 8.1 TFLOP/s" in s32["how"]
    fig = gf.FIGURES["gpt2 lora tune"]
    lo, hi, _ = gf.t4_seconds("gpt2 lora tune", measured={})
    assert lo == pytest.approx(fig.flops / (8.1e12 * gf.ASSUMED_MFU["float32"][1]))
    assert hi == pytest.approx(fig.flops / (8.1e12 * gf.ASSUMED_MFU["float32"][0]))


def test_figures_rebuild_from_a_results_file():
    measured = gf.rebuild(_fake_result())
    assert measured["shakespeare-char train"]["mfu"] == 0.2              # the float16 step
    assert measured["day 16 optimizer runs"]["mfu"] == 0.5              # the float32 step
    assert "dpo two betas" not in measured                               # that step failed
    lo, hi, how = gf.t4_seconds("shakespeare-char train", measured)
    fig = gf.FIGURES["shakespeare-char train"]
    assert lo == pytest.approx(max(fig.flops / (65e12 * 0.2), fig.tokens / 4e5))
    assert hi == pytest.approx(fig.flops / (65e12 * 0.2 * gf.HOT_CARD))
    assert how.startswith("estimate: the float16 MFU measured on NVIDIA H100 80GB HBM3 2026-12-24")
    bf16 = _fake_result()
    bf16["steps"][0]["details"]["precision"] = "cuda: bfloat16 autocast"
    assert "shakespeare-char train" not in gf.rebuild(bf16)               # not the T4's precision
    t4 = gf.rebuild(_fake_result(card="Tesla T4"))
    assert gf.t4_seconds("shakespeare-char train", t4)[2].startswith("measured on Tesla T4 2026-12-24")


def test_one_command_rewrites_the_measured_block(tmp_path, monkeypatch):
    copy = tmp_path / "gpu_figures.py"
    copy.write_text(Path(gf.__file__).read_text())
    measured = gf.rebuild(_fake_result())
    gf.write_measured(measured, copy)
    spec = importlib.util.spec_from_file_location("gpu_figures_copy", copy)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "gpu_figures_copy", module)   # its dataclass looks itself up
    spec.loader.exec_module(module)
    assert module.MEASURED == measured
    assert module.line("shakespeare-char train").split("(")[1].startswith("estimate: the float16 MFU measured")


def test_unknown_figure_names_the_table():
    with pytest.raises(KeyError, match="no GPU figure named 'nope'; the table has: shakespeare-char train"):
        gf.show("nope")


# ---- the launch bound: benchmarks/count_ops.py and the lessons' own models ---------------------

def _load_benchmark(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


co = _load_benchmark("count_ops")
lm = _load_benchmark("lesson_models")


def test_count_ops_counts_every_model_the_launch_figures_use():
    assert set(co.MODELS) == set(gf.OPS_PER_STEP), "run python benchmarks/count_ops.py and copy its counts"
    used = {m for fig in gf.FIGURES.values() if isinstance(fig, gf.LaunchFigure) for m, _ in fig.runs}
    assert used <= set(gf.OPS_PER_STEP), used - set(gf.OPS_PER_STEP)


@pytest.mark.parametrize("day", [6, 7, 8, 9, 10])
def test_launch_bound_lessons_have_a_t4_figure(day):
    """Days 06-10 train models too small to keep a GPU busy: each prints a launch-bound T4 time."""
    assert [name for name, fig in gf.FIGURES.items() if isinstance(fig, gf.LaunchFigure) and day in fig.lessons]


def _lesson(day: int) -> str:
    (path,) = (ROOT / "solutions").glob(f"day{day:02d}_*.md")
    return path.read_text(encoding="utf-8")


def _class_source(text: str, name: str) -> str:
    """The source of ``class name`` in ``text``: up to the first later line that is not indented."""
    lines = text[text.index(f"class {name}("):].splitlines()
    end = next((i for i, row in enumerate(lines[1:], 1) if row and not row.startswith(" ")), len(lines))
    return "\n".join(lines[:end]).rstrip() + "\n"


@pytest.mark.parametrize("name", sorted(lm.LESSONS))
def test_lesson_models_are_the_lessons_code(name):
    """benchmarks/lesson_models.py holds each class exactly as its lesson writes it."""
    lesson = (ROOT / lm.LESSONS[name]).read_text(encoding="utf-8")
    copy = _class_source((ROOT / "benchmarks" / "lesson_models.py").read_text(encoding="utf-8"), name)
    assert copy == _class_source(lesson, name), f"{name} differs from {lm.LESSONS[name]}: copy it again"


@pytest.mark.parametrize("day, names", [(8, ("averaging none", "averaging uniform", "averaging recency")),
                                        (9, ("one head",))])
def test_counted_sizes_are_the_lessons_real_run_sizes(day, names):
    found = re.search(r"CFG = (dict\([^)]*\)) if REAL_RUN", _lesson(day))
    cfg = eval(found.group(1), {"dict": dict})                  # the lesson's REAL_RUN sizes
    for name in names:
        make, batch, T = co.MODELS[name]
        model = make()
        assert (batch, T, model.wte.embedding_dim) == (cfg["batch"], cfg["T"], cfg["n_embd"]), name
        if hasattr(model, "wpe"):
            assert model.wpe.num_embeddings == cfg["T"], name
    kinds = re.findall(r'for kind in \(([^)]*)\)', _lesson(day))
    if kinds:                                                   # day 08: one run per kind of weights
        assert tuple("averaging " + k.strip(' "') for k in kinds[0].split(",")) == names
    runs = [fig.runs for fig in gf.FIGURES.values() if isinstance(fig, gf.LaunchFigure) and day in fig.lessons]
    assert runs == [tuple((name, cfg["steps"]) for name in names)]
