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
