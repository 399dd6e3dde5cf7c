"""llmcourse.sweep: grid expansion, skips on a rerun, refusals, the table's numbers, jobs, CLI."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmcourse.sweep import (SweepResult, difference_with_error, expand_settings, mean_std,
                             parse_grid, parse_seeds, parse_variant, run_sweep)

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = {"model": {"n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 16},
        "train": {"max_iters": 4, "eval_interval": 2, "eval_iters": 2, "batch_size": 4,
                  "log_interval": 2, "warmup_iters": 1, "lr_decay_iters": 4}}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("data") / "shakespeare-char")


def tiny(data_dir, **train):
    o = json.loads(json.dumps(TINY))
    o["train"].update(train)
    o["data"] = {"prepared_dir": data_dir}
    return o


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


# --------------------------------------------------------------------------------------------
# Settings, no training


def test_grid_is_the_cross_product_in_order():
    s = expand_settings({"model.n_embd": [16, 32], "learning_rate": [1e-3, 3e-3, 1e-2]})
    assert len(s) == 6
    assert s[0] == ("n_embd=16,learning_rate=0.001", {"model.n_embd": 16, "train.learning_rate": 1e-3})
    assert [p["model.n_embd"] for _, p in s] == [16, 16, 16, 32, 32, 32]  # first key slowest
    assert expand_settings({}) == [("base", {})]


def test_variants_and_variants_times_grid():
    s = expand_settings(variants=[("baseline", {}), ("rms", {"norm": "rmsnorm"})])
    assert s == [("baseline", {}), ("rms", {"model.norm": "rmsnorm"})]
    both = expand_settings({"n_layer": [1, 2]}, [("a", {}), ("b", {"dropout": 0.1})])
    assert [n for n, _ in both] == ["a,n_layer=1", "a,n_layer=2", "b,n_layer=1", "b,n_layer=2"]
    assert both[3][1] == {"model.dropout": 0.1, "model.n_layer": 2}


@pytest.mark.parametrize("grid, variants, match", [
    ({"n_emb": [16]}, None, "did you mean 'n_embd'"),
    ({"model.n_embd": []}, None, "no values"),
    ({"n_embd": [16, 16]}, None, "repeats"),
    ({"seed": [0, 1]}, None, "seeds="),
    ({"out_dir": ["x"]}, None, "folder"),
    ({"modle.n_embd": [16]}, None, "did you mean 'model'"),
    (None, [("a", {}), ("a", {"dropout": 0.1})], "both named 'a'"),
    (None, [("", {})], "needs a name"),
])
def test_bad_settings_are_one_line_errors(grid, variants, match):
    with pytest.raises(ValueError, match=match) as err:
        expand_settings(grid, variants)
    assert "\n" not in str(err.value)


def test_parsers():
    assert parse_grid(["model.n_embd=16,32", "lr_decay_iters=4"]) == {
        "model.n_embd": [16, 32], "lr_decay_iters": [4]}
    with pytest.raises(ValueError, match="no values"):
        parse_grid(["n_embd="])
    with pytest.raises(ValueError, match="key=v1,v2"):
        parse_grid(["n_embd"])
    assert parse_variant("rms:norm=rmsnorm,bias=false") == ("rms", {"norm": "rmsnorm", "bias": False})
    assert parse_seeds(2) == [0, 1] and parse_seeds([3, 7]) == [3, 7] and parse_seeds("4") == [0, 1, 2, 3]
    for bad in (0, -1, [], [1, 1], "x", True):
        with pytest.raises(ValueError, match="seed"):
            parse_seeds(bad)


def test_summary_is_mean_and_sample_std_of_the_rows():
    rows = [{"setting": s, "params": {}, "seed": k, "val_loss": v, "train_loss": v + 0.5,
             "seconds": 1.0} for s, vals in (("a", [1.0, 2.0, 4.0]), ("b", [3.0])) for k, v in enumerate(vals)]
    res = SweepResult(rows)
    a, b = res.summary()
    assert (a["setting"], a["n"], b["n"]) == ("a", 3, 1)
    assert a["val_mean"] == pytest.approx(7 / 3)
    assert a["val_std"] == pytest.approx(math.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2))
    assert a["train_mean"] == pytest.approx(7 / 3 + 0.5) and b["val_std"] == 0.0
    assert (a["val_min"], a["val_max"]) == (1.0, 4.0)
    table = res.table()
    assert "2.3333 ± 1.5275" in table and "3.0000 ± 0.0000" in table
    assert "| a | 2.3333 ± 1.5275 | 3 |" in res.markdown()


def test_mean_std_difference_and_compare():
    assert mean_std([2.5]) == (2.5, 0.0)
    m, sd = mean_std([1.0, 2.0, 4.0])
    assert m == pytest.approx(7 / 3) and sd == pytest.approx(1.5275252, abs=1e-6)
    with pytest.raises(ValueError, match="no values"):
        mean_std([])
    d, se = difference_with_error([1.0, 2.0, 4.0], [3.0, 3.5])
    assert d == pytest.approx(3.25 - 7 / 3)
    assert se == pytest.approx(math.sqrt(sd ** 2 / 3 + 0.125 / 2))
    rows = [{"setting": s, "params": {}, "seed": k, "val_loss": v, "train_loss": v, "seconds": 0.0}
            for s, vals in (("a", [1.0, 2.0, 4.0]), ("b", [3.0, 3.5])) for k, v in enumerate(vals)]
    res = SweepResult(rows)
    assert res.losses("b") == [3.0, 3.5] and res.compare("a", "b") == pytest.approx((d, se))
    with pytest.raises(ValueError, match="no setting 'c'"):
        res.losses("c")


def test_overrides_in_every_form_and_managed_keys(data_dir):
    from llmcourse.sweep import base_preset as _base_preset

    nested = _base_preset("shakespeare-char-cpu", {"train": {"max_iters": 3}, "model": {"n_layer": 1}})
    flat = _base_preset("shakespeare-char-cpu", {"max_iters": 3, "model.n_layer": 1})
    text = _base_preset("shakespeare-char-cpu", ["max_iters=3", "model.n_layer=1"])
    assert nested == flat == text and nested["train"]["max_iters"] == 3
    for bad in ({"train": {"seed": 1}}, ["seed=1"], {"out_dir": "x"}, ["train.overwrite=true"]):
        with pytest.raises(ValueError, match="cannot be swept or set"):
            _base_preset("shakespeare-char-cpu", bad)
    with pytest.raises(ValueError, match="did you mean 'model.n_layer'"):
        _base_preset("shakespeare-char-cpu", {"model": {"n_layers": 1}})


# --------------------------------------------------------------------------------------------
# Training (tiny runs)


def test_sweep_trains_each_run_then_skips_it(tmp_path, data_dir):
    out = tmp_path / "sweep"
    res = run_sweep("shakespeare-char-cpu", out, grid={"model.n_embd": [16, 32]}, seeds=2,
                    overrides=tiny(data_dir))
    assert [(r["setting"], r["seed"], r["status"]) for r in res.rows] == [
        ("n_embd=16", 0, "trained"), ("n_embd=16", 1, "trained"),
        ("n_embd=32", 0, "trained"), ("n_embd=32", 1, "trained")]
    for r in res.rows:
        run = json.loads((Path(r["out_dir"]) / "run.json").read_text())
        assert run["train_config"]["seed"] == r["seed"]
        assert run["model_config"]["n_embd"] == r["params"]["model.n_embd"]
        assert r["steps"] == 4 and math.isfinite(r["val_loss"]) and r["val_loss"] <= r["final_val_loss"]
    assert res.rows[0]["val_loss"] != res.rows[1]["val_loss"]  # the seeds differ
    for name in ("results.json", "results.md", "results.png", "sweep.json"):
        assert (out / name).is_file()
    saved = SweepResult.load(out)
    assert saved.summary() == res.summary()
    s = res.summary()[0]
    vals = [r["val_loss"] for r in res.rows[:2]]
    assert s["val_mean"] == pytest.approx(sum(vals) / 2)
    assert s["val_std"] == pytest.approx(abs(vals[0] - vals[1]) / math.sqrt(2))

    runs = {k: v for k, v in snapshot(out).items() if not k.startswith("results")}
    again = run_sweep("shakespeare-char-cpu", out, grid={"model.n_embd": [16, 32]}, seeds=2,
                      overrides=tiny(data_dir))
    assert {r["status"] for r in again.rows} == {"skipped"}
    assert [r["val_loss"] for r in again.rows] == [r["val_loss"] for r in res.rows]
    assert {k: v for k, v in snapshot(out).items() if not k.startswith("results")} == runs

    # one more seed and one more value: only the new runs train
    more = run_sweep("shakespeare-char-cpu", out, grid={"model.n_embd": [16, 32, 24]}, seeds=3,
                     overrides=tiny(data_dir), plot=False)
    trained = [(r["setting"], r["seed"]) for r in more.rows if r["status"] == "trained"]
    assert len(more.rows) == 9 and len(trained) == 5
    assert ("n_embd=24", 0) in trained and ("n_embd=16", 2) in trained


def test_variants_share_finished_runs(tmp_path, data_dir, capsys):
    out = tmp_path / "sweep"
    first = run_sweep("shakespeare-char-cpu", out, variants=[("base", {})], seeds=1,
                      overrides=tiny(data_dir), plot=False)
    both = run_sweep("shakespeare-char-cpu", out, seeds=1, overrides=tiny(data_dir), plot=False,
                     variants=[("wide", {"n_embd": 32}), ("base", {})], progress=True)
    assert [(r["setting"], r["status"]) for r in both.rows] == [("wide", "trained"), ("base", "skipped")]
    assert both.rows[1]["val_loss"] == first.rows[0]["val_loss"]
    assert json.loads((out / "wide" / "seed0" / "run.json").read_text())["model_config"]["n_embd"] == 32
    printed = capsys.readouterr().out
    assert "[1/2] wide seed 0: val" in printed and "[2/2] base seed 0" in printed
    assert not (out / "results.png").exists()


def test_interrupted_runs_resume_or_restart(tmp_path, data_dir):
    out = tmp_path / "sweep"
    first = run_sweep("shakespeare-char-cpu", out, seeds=2, overrides=tiny(data_dir))
    seed0, seed1 = (Path(r["out_dir"]) for r in first.rows)
    # seed0: killed after its last checkpoint, before result.json; seed1: before any checkpoint
    (seed0 / "result.json").unlink()
    for name in ("result.json", "ckpt.pt", "best.pt", "metrics.jsonl"):
        (seed1 / name).unlink()
    again = run_sweep("shakespeare-char-cpu", out, seeds=2, overrides=tiny(data_dir))
    assert [r["status"] for r in again.rows] == ["trained", "trained"]
    assert [r["val_loss"] for r in again.rows] == pytest.approx([r["val_loss"] for r in first.rows])


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_diverged_run_names_itself_and_keeps_the_finished_ones(tmp_path, data_dir, jobs):
    from llmcourse.sweep import RunFailed

    out = tmp_path / "sweep"
    kw = dict(grid={"learning_rate": [1e-3, 1e30]}, seeds=1, jobs=jobs,
              overrides=tiny(data_dir, grad_clip=0.0))
    with pytest.raises(RunFailed, match=r"the run learning_rate=1e\+30 seed 0 .*diverged") as err:
        run_sweep("shakespeare-char-cpu", out, **kw)
    assert "\n" not in str(err.value) and str(err.value).count("the run ") == 1
    assert (out / "learning_rate=0.001" / "seed0" / "result.json").is_file()


def test_refusals_change_nothing(tmp_path, data_dir):
    out = tmp_path / "sweep"
    run_sweep("shakespeare-char-cpu", out, grid={"n_embd": [16]}, seeds=1, overrides=tiny(data_dir))
    before = snapshot(out)
    # other base settings (max_iters): the whole sweep folder is refused
    with pytest.raises(FileExistsError, match="other base settings"):
        run_sweep("shakespeare-char-cpu", out, grid={"n_embd": [16, 32]}, seeds=1,
                  overrides=tiny(data_dir, max_iters=6))
    # a run folder holding a run with other settings (its run.json edited by hand)
    run_file = out / "n_embd=16" / "seed0" / "run.json"
    run = json.loads(run_file.read_text())
    run["preset"]["model"]["n_layer"] = 3
    run_file.write_text(json.dumps(run))
    before = snapshot(out)
    with pytest.raises(FileExistsError, match="other settings") as err:
        run_sweep("shakespeare-char-cpu", out, grid={"n_embd": [32, 16]}, seeds=1,
                  overrides=tiny(data_dir))
    assert "\n" not in str(err.value)
    assert snapshot(out) == before  # n_embd=32 was not trained either: checks come first
    # a folder holding something else
    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a sweep folder"):
        run_sweep("shakespeare-char-cpu", other, seeds=1, overrides=tiny(data_dir))
    assert snapshot(other) == {"todo.txt": b"mine"}
    with pytest.raises(ValueError, match="at least one seed"):
        run_sweep("shakespeare-char-cpu", tmp_path / "s2", seeds=0, overrides=tiny(data_dir))
    with pytest.raises(ValueError, match="did you mean 'max_iters'"):
        run_sweep("shakespeare-char-cpu", tmp_path / "s2", seeds=1, overrides=["max_iter=3"])
    with pytest.raises(ValueError, match="unknown preset"):
        run_sweep("no-such-preset", tmp_path / "s2", seeds=1)
    with pytest.raises(ValueError, match="would share the folder"):
        run_sweep("shakespeare-char-cpu", tmp_path / "s2", seeds=1, overrides=tiny(data_dir),
                  variants=[("a b", {}), ("a_b", {"dropout": 0.1})])
    with pytest.raises(ValueError, match="jobs"):
        run_sweep("shakespeare-char-cpu", tmp_path / "s2", seeds=1, jobs=0, overrides=tiny(data_dir))
    assert not (tmp_path / "s2").exists()


def test_jobs_two_gives_the_results_of_jobs_one(tmp_path, data_dir):
    kw = dict(grid={"n_embd": [16, 32]}, seeds=2, overrides=tiny(data_dir))
    one = run_sweep("shakespeare-char-cpu", tmp_path / "one", **kw)
    two = run_sweep("shakespeare-char-cpu", tmp_path / "two", jobs=2, **kw)
    assert [(r["setting"], r["seed"]) for r in two.rows] == [(r["setting"], r["seed"]) for r in one.rows]
    assert [r["val_loss"] for r in two.rows] == pytest.approx([r["val_loss"] for r in one.rows], abs=1e-4)
    assert {r["status"] for r in two.rows} == {"trained"}
    again = run_sweep("shakespeare-char-cpu", tmp_path / "two", jobs=2, **kw)
    assert {r["status"] for r in again.rows} == {"skipped"}


def _cli(*args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "llmcourse", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_sweep(tmp_path, data_dir):
    sets = [f"--set=data.prepared_dir={data_dir}"] + [
        f"--set={s}.{k}={v}" for s in ("model", "train") for k, v in TINY[s].items()]
    args = ["sweep", "--preset", "shakespeare-char-cpu", "--grid", "model.n_embd=16,32",
            "--seeds", "2", "--out-dir", str(tmp_path / "sw"), "--no-progress", *sets]
    done = _cli(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "n_embd=16" in done.stdout and "±" in done.stdout and "4 runs (4 trained, 0 skipped)" in done.stdout
    assert json.loads((tmp_path / "sw" / "results.json").read_text())["summary"][1]["n"] == 2
    again = _cli(*args, cwd=tmp_path)
    assert again.returncode == 0 and "(0 trained, 4 skipped)" in again.stdout
    bad = _cli("sweep", "--grid", "model.n_emb=16", "--out-dir", str(tmp_path / "x"), cwd=tmp_path)
    assert bad.returncode == 2 and "did you mean 'model.n_embd'" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    bad = _cli("sweep", "--seeds", "0", "--out-dir", str(tmp_path / "x"), cwd=tmp_path)
    assert bad.returncode == 2 and "at least one seed" in bad.stderr


@pytest.mark.parametrize("content, words", [
    ({"rows": [{"val_loss": 1}]}, "lacks 'setting'"),
    ({"rows": 3}, "holds no list of rows"),
    ([1], "holds no list of rows"),
])
def test_load_of_damaged_results_names_the_file(tmp_path, content, words):
    path = tmp_path / "results.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=words) as err:
        SweepResult.load(tmp_path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
