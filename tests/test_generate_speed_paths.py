"""What makes cached decoding fast, pinned down: the work each step does, not its time.

A KV-cached step must run one new position through the blocks (the prefix is never re-run,
except when the window moves and the cache is refilled from it) and the output layer must
see only the last position. These tests count positions with forward hooks, so a change
that quietly re-runs the prefix (and would make decoding O(n^2) again) fails here on any
machine, however loaded. The benchmark script itself is run once on tiny settings so that
the command the book quotes keeps working.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from llmcourse.generate import generate
from llmcourse.model import GPT, GPTConfig

ROOT = Path(__file__).resolve().parents[1]
BLOCK, WINDOW, PROMPT, N_NEW = 16, 8, 3, 40


def _model() -> GPT:
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=23, block_size=BLOCK, n_layer=2, n_head=2, n_embd=16, dropout=0.0)
    return GPT(cfg).eval()


def _positions_per_forward(model: GPT, **kwargs) -> tuple[list[int], list[int]]:
    """``T`` of every forward (at the embedding) and at the output layer, over one decode."""
    trunk, head = [], []
    hooks = [model.transformer.wte.register_forward_hook(lambda m, a, o: trunk.append(a[0].shape[1])),
             model.lm_head.register_forward_hook(lambda m, a, o: head.append(a[0].shape[1]))]
    try:
        generate(model, torch.arange(PROMPT)[None], N_NEW, temperature=0, **kwargs)
    finally:
        for h in hooks:
            h.remove()
    return trunk, head


def _expected_cached(prompt: int, n_new: int, block: int, window: int) -> list[int]:
    """Prefill the prompt, then one position per step; a refill of ``window`` positions
    whenever the window has moved (length - start > block, the decoder's one rule)."""
    out, length, start, cache_start = [prompt], prompt, 0, 0
    for _ in range(n_new - 1):  # the first logits come from the prefill
        length += 1
        if length - start > block:
            start = length - window
        if start != cache_start:
            cache_start = start
            out.append(length - start)
        else:
            out.append(1)
    return out


def test_cached_decode_runs_one_new_position_per_step_between_refills():
    trunk, head = _positions_per_forward(_model(), use_cache=True, keep_on_rebuild=WINDOW)
    expected = _expected_cached(PROMPT, N_NEW, BLOCK, WINDOW)
    assert trunk == expected
    assert expected.count(WINDOW) == 3 and sum(expected) == PROMPT + 36 + 3 * WINDOW  # 3 refills
    assert head == [1] * N_NEW  # the output layer: the last position only


def test_recompute_runs_the_whole_window_every_step():
    trunk, head = _positions_per_forward(_model(), use_cache=False)
    assert trunk == [min(PROMPT + t, BLOCK) for t in range(N_NEW)]  # the sliding window
    assert head == [1] * N_NEW


def test_cached_and_recomputed_decodes_agree_over_twice_the_block():
    model = _model()
    prompt = torch.arange(PROMPT)[None]
    cached = generate(model, prompt, 2 * BLOCK, temperature=0, use_cache=True)
    recomputed = generate(model, prompt, 2 * BLOCK, temperature=0, use_cache=False)
    assert torch.equal(cached, recomputed)


@pytest.mark.slow
def test_bench_generate_runs_on_tiny_settings():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_generate.py"), "--tokens", "3",
         "--past-block", "258", "--repeats", "1", "--threads", "1", "--no-batch"],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    for needle in ("bandwidth bound", "matrix-vector products alone",
                   "EXACT, within the block: 3 new tokens",
                   "greedy tokens asserted identical: kv-cache = recompute, "
                   "kv-cache, compiled = kv-cache", "x vs recompute", "the bound",
                   "compile + warm-up run", "PAST the block: 258 new tokens",
                   "kv-cache, past the block, sliding window (exact)",
                   "kv-cache, keep_on_rebuild=128: approximate (tokens differ from recomputation)"):
        assert needle in out.stdout, (needle, out.stdout)
    # the headline is the exact comparison: no cache figure is printed before it
    assert out.stdout.index("EXACT") < out.stdout.index("ms/step [")
