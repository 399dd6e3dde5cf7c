"""runs.train_or_load: the lessons' shared model is trained once, then loaded; never replaced."""

import os, time
from pathlib import Path
import pytest
from llmcourse.runs import train_or_load

TINY = {"model": {"n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 16},
        "train": {"max_iters": 4, "eval_interval": 2, "eval_iters": 2, "batch_size": 4}}

def test_train_or_load_trains_once_then_loads(tmp_path):
    data = {"data": {"prepared_dir": str(tmp_path / "data")}}
    overrides = dict(TINY, **data)
    model, tok, info = train_or_load("shakespeare-char-cpu", tmp_path / "run", overrides=overrides)
    assert info.iter_num == 4 and model.config.n_embd == 16
    stamp = info.checkpoint.stat().st_mtime_ns
    again, _, info2 = train_or_load("shakespeare-char-cpu", tmp_path / "run", overrides=overrides)
    assert info2.checkpoint.stat().st_mtime_ns == stamp  # loaded, not retrained
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()}
    other = dict(overrides, train=dict(TINY["train"], max_iters=6))
    with pytest.raises(FileExistsError, match="other settings"):
        train_or_load("shakespeare-char-cpu", tmp_path / "run", overrides=other)
    after = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()}
    assert after == before


def test_two_notebooks_sharing_a_run_train_it_once(tmp_path):
    """Two processes at once (as two notebook workers): one trains, the other waits and loads."""
    import subprocess
    import sys

    code = (
        "import sys; from llmcourse.runs import train_or_load; "
        f"o = {dict(TINY, data={'prepared_dir': str(tmp_path / 'data')})!r}; "
        f"m, t, i = train_or_load('shakespeare-char-cpu', {str(tmp_path / 'run')!r}, overrides=o); "
        "print(i.iter_num, i.checkpoint.stat().st_mtime_ns)"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outs[0] == outs[1] and outs[0][0] == "4"  # the same checkpoint, trained once


def test_a_run_made_by_the_cli_loads(tmp_path, monkeypatch):
    """`llmcourse train` leaves a run a lesson's train_or_load loads: device and out_dir do not count."""
    from llmcourse.cli import main

    monkeypatch.chdir(tmp_path)
    sets = ["n_layer=1", "n_head=2", "n_embd=16", "model.block_size=16", "max_iters=4",
            "eval_interval=2", "eval_iters=2", "batch_size=4", f"prepared_dir={tmp_path / 'data'}",
            "device=cpu", "dtype=float32"]
    argv = ["train", "--preset", "shakespeare-char-cpu", "--no-progress"]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) == 0
    run = tmp_path / "out/shakespeare-char-cpu"
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    overrides = dict(TINY, data={"prepared_dir": str(tmp_path / "data")})
    model, tok, info = train_or_load("shakespeare-char-cpu", "out/shakespeare-char-cpu", overrides=overrides)
    assert info.iter_num == 4 and model.config.n_embd == 16
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir()} == before   # loaded, not retrained


def test_the_refusal_names_the_setting_that_differs(tmp_path):
    from llmcourse.runs import recipe_difference

    overrides = dict(TINY, data={"prepared_dir": str(tmp_path / "data")})
    train_or_load("shakespeare-char-cpu", tmp_path / "run", overrides=overrides)
    other = dict(overrides, model=dict(TINY["model"], n_embd=32))
    with pytest.raises(FileExistsError, match=r"model\.n_embd is 16 there, 32 here"):
        train_or_load("shakespeare-char-cpu", tmp_path / "run", overrides=other)
    assert recipe_difference({"train": {"seed": 1}}, {"train": {}}) == "train.seed is 1 there, unset here"
