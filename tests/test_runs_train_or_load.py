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
