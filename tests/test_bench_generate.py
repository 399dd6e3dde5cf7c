"""benchmarks/bench_generate.py: ``time_modes``, the one timing loop of the decoding benchmarks.

``bench_generate.py`` and ``cpu_real_runs.py`` (day 19's KV-cache figures) both time their
modes with it: a warm-up decode of each mode (wall time), the tokens of modes that must agree
compared, then ``repeats`` interleaved runs of which the fastest counts.
"""

from __future__ import annotations

import doctest
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from llmcourse.model import GPT, GPTConfig

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_generate as bg  # noqa: E402
import cpu_real_runs  # noqa: E402


def _tiny() -> tuple[GPT, torch.Tensor]:
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=65, block_size=16, n_layer=1, n_head=2, n_embd=32, dropout=0.0)
    return GPT(config).eval(), torch.zeros(1, 1, dtype=torch.long)  # model, prompt (1, 1)


def _fake_clock(durations: list[float]):
    """A clock read twice per timed run: run ``i`` lasts ``durations[i]`` seconds."""
    ticks = []
    for i, d in enumerate(durations):
        ticks += [100.0 * i, 100.0 * i + d]
    ticks = iter(ticks)
    return lambda: next(ticks)


def test_time_modes_keeps_the_fastest_run_and_the_tokens():
    model, prompt = _tiny()
    modes = {"recompute": (12, dict(use_cache=False)),   # the tuple form
             "kv-cache": bg.Mode(12, dict(use_cache=True), same_as="recompute")}
    # interleaved: recompute, kv-cache, recompute, kv-cache, recompute, kv-cache
    clock = _fake_clock([5.0, 2.0, 1.0, 3.0, 3.0, 7.0])
    timed = bg.time_modes(model, prompt, modes, repeats=3, clock=clock)
    assert timed.runs == {"recompute": [5.0, 1.0, 3.0], "kv-cache": [2.0, 3.0, 7.0]}
    assert timed.best == {"recompute": 1.0, "kv-cache": 2.0}            # the min of the repeats
    with pytest.raises(StopIteration):
        clock()                                                          # read 12 times, no more
    assert timed.tokens["kv-cache"].shape == (1, 13)
    assert torch.equal(timed.tokens["kv-cache"], timed.tokens["recompute"])
    # the warm-up is timed apart, on the wall clock (not the fake one, whose runs last whole seconds)
    assert set(timed.first_call) == set(modes)
    assert all(0 < s < 30 for s in timed.first_call.values())


def test_time_modes_refuses_modes_that_should_agree_but_differ():
    model, prompt = _tiny()
    other = torch.ones(1, 1, dtype=torch.long)
    modes = {"a": bg.Mode(4, dict(use_cache=False)),
             "b": bg.Mode(4, dict(use_cache=True), same_as="a", prompt=other)}
    with pytest.raises(bg.TokensDiffer, match="^b decoded other greedy tokens than a$"):
        bg.time_modes(model, prompt, modes, repeats=1)
    with pytest.raises(ValueError, match=r"repeats=0: give at least 1 timed run per mode"):
        bg.time_modes(model, prompt, {"a": (4, {})}, repeats=0)


def test_time_modes_sets_a_modes_threads_and_restores_them():
    model, prompt = _tiny()
    seen = []
    before = torch.get_num_threads()

    def clock() -> float:
        seen.append(torch.get_num_threads())
        return 0.0

    try:
        torch.set_num_threads(2)
        timed = bg.time_modes(model, prompt, {"one": bg.Mode(3, dict(use_cache=True), threads=1),
                                              "all": bg.Mode(3, dict(use_cache=True))}, 1, clock)
        assert seen == [1, 1, 2, 2]                  # each mode's runs on its own threads
        assert torch.get_num_threads() == 2          # as they were
        assert timed.best == {"one": 0.0, "all": 0.0}
    finally:
        torch.set_num_threads(before)


def test_docstring_example_runs():
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner()
    for test in finder.find(bg.time_modes, "time_modes", globs=vars(bg)):
        runner.run(test)
    assert runner.summarize(verbose=False) == (0, 4)   # (failed, tried)


def test_cpu_real_runs_kv_cache_rows_come_from_time_modes(monkeypatch):
    calls = []
    real = cpu_real_runs.time_modes
    monkeypatch.setattr(cpu_real_runs, "time_modes", lambda *a, **k: calls.append(a) or real(*a, **k))
    rows = cpu_real_runs.kv_cache(smoke=True, repeats=1)
    assert len(calls) == 1
    assert [row[:2] for row in rows] == [
        ["recompute, within the block", 15], ["kv-cache, within the block", 15],
        ["recompute, past the block", 30], ["kv-cache, sliding window (exact)", 30],
        ["kv-cache, keep_on_rebuild=8 (approximate)", 30]]
    assert all(isinstance(v, float) and v > 0 for row in rows for v in row[2:])
    assert rows[0][3] == rows[2][3] == 1.0                               # each base against itself


def test_bench_generate_smallest_run_prints_its_modes():
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_generate.py"), "--tokens", "2",
         "--past-block", "0", "--repeats", "1", "--threads", "1", "--no-batch", "--no-compile"],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "greedy tokens asserted identical: kv-cache = recompute\n" in done.stdout
    table = [re.match(r"  (.+?) +[\d.]+ ms/step \[", line).group(1)
             for line in done.stdout.splitlines() if "ms/step [" in line]
    assert table == ["recompute", "kv-cache"]
    assert "PAST the block" not in done.stdout and "compile + warm-up" not in done.stdout
