"""The day-19 checks pass the solutions, catch plausible mistakes, and say "not done yet" for stubs."""

from __future__ import annotations

import pytest
import torch

from llmcourse.checks import day19
from llmcourse.generate import generate
from llmcourse.model import KVCache as PackageKVCache
from checklines import one_line, stub


# ---- exercise 1: the loop --------------------------------------------------------------------


def greedy(model, idx, n, *, crop=True, eval_mode=True, no_grad=True, first=False):
    bs = model.config.block_size
    if eval_mode:
        model.eval()
    with torch.set_grad_enabled(not no_grad):
        for _ in range(n):
            logits, _ = model(idx[:, -bs:] if crop else idx)
            pick = logits[:, 0 if first else -1].argmax(-1, keepdim=True)
            idx = torch.cat([idx, pick], dim=1)
    return idx


def test_generate_greedy_passes_solution_and_package(capsys):
    assert bool(day19.check_generate_greedy(greedy)) is True
    assert one_line(capsys) == "✅ generate_greedy: passed"
    assert bool(day19.check_generate_greedy(lambda m, i, n: generate(m, i, n, temperature=0))) is True
    assert "passed" in one_line(capsys)


@pytest.mark.parametrize("wrong, hint", [
    (dict(crop=False), "crop the context to its last block_size tokens"),
    (dict(eval_mode=False), "model.eval()"),
    (dict(no_grad=False), "torch.no_grad()"),
    (dict(first=True), "logits[:, -1, :]"),
])
def test_generate_greedy_catches_mistakes(capsys, wrong, hint):
    assert bool(day19.check_generate_greedy(lambda m, i, n: greedy(m, i, n, **wrong))) is False
    line = one_line(capsys)
    assert line.startswith("❌") and hint in line, line


def test_generate_greedy_new_tokens_only_and_stub(capsys):
    assert bool(day19.check_generate_greedy(lambda m, i, n: greedy(m, i, n)[:, i.shape[1]:])) is False
    assert "(2, 20)" in one_line(capsys)
    assert bool(day19.check_generate_greedy(stub)) is False
    assert "not done yet" in one_line(capsys)


# ---- exercise 2: the cache -------------------------------------------------------------------


class Cache:
    """The solution, with switches for the typical mistakes."""

    mistake = None

    def __init__(self, n_layer, batch_size, n_head, max_len, head_size):
        self.max_len, self.pos = max_len, 0
        shape = (batch_size, n_head, max_len, head_size)
        shared = self.mistake == "shared"
        k0 = torch.zeros(shape)
        self.k = [k0 if shared else torch.zeros(shape) for _ in range(n_layer)]
        self.v = [torch.zeros(shape) for _ in range(n_layer)]

    def check_room(self, batch_size, n_new):
        if self.pos + n_new > self.max_len:
            raise ValueError("KV cache overflow")

    def update(self, layer, k, v):
        end = self.pos + k.shape[2]
        self.k[layer][:, :, self.pos:end] = k
        if self.mistake != "no_values":
            self.v[layer][:, :, self.pos:end] = v
        if self.mistake == "advance_in_update":
            self.pos_after = end
            self.pos += k.shape[2]
            return self.k[layer][:, :, :end], self.v[layer][:, :, :end]
        if self.mistake == "only_new":
            return k, v
        if self.mistake == "no_values":
            return self.k[layer][:, :, :end], v
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]

    def advance(self, n):
        if self.mistake not in ("no_advance", "advance_in_update"):
            self.pos += n


def _variant(mistake):
    return type(f"Cache_{mistake}", (Cache,), {"mistake": mistake})


def test_kv_cache_passes_solution_and_package(capsys):
    assert bool(day19.check_kv_cache(Cache)) is True
    assert one_line(capsys) == "✅ KVCache: passed"
    assert bool(day19.check_kv_cache(PackageKVCache)) is True
    assert "passed" in one_line(capsys)


@pytest.mark.parametrize("mistake, hint", [
    ("no_advance", "still 0"),
    ("advance_in_update", "update must not move pos"),
    ("only_new", "only the new token's keys"),
    ("no_values", "store the new values"),
    ("shared", "this* layer's tensors"),
])
def test_kv_cache_catches_mistakes(capsys, mistake, hint):
    assert bool(day19.check_kv_cache(_variant(mistake))) is False
    line = one_line(capsys)
    assert line.startswith("❌") and hint in line, line


def test_kv_cache_stub(capsys):
    class Stub(Cache):
        def update(self, layer, k, v):
            raise NotImplementedError

    assert bool(day19.check_kv_cache(Stub)) is False
    assert "not done yet" in one_line(capsys)

    class InitStub(Cache):  # update and advance written, __init__'s fill-in left as None
        def __init__(self, *args):
            super().__init__(*args)
            self.k = self.v = None

    assert bool(day19.check_kv_cache(InitStub)) is False
    assert "not done yet" in one_line(capsys)


# ---- exercise 3: the cached loop -------------------------------------------------------------


def cached(model, idx, n, *, mistake=None):
    bs = model.config.block_size
    model.eval()
    out = []
    with torch.no_grad():
        cache = model.new_kv_cache(batch_size=idx.shape[0])
        logits, _ = model(idx[:, -bs:], kv_cache=cache)
        for _ in range(n):
            last = logits[:, -1]
            out.append(last)
            idx = torch.cat([idx, last.argmax(-1, keepdim=True)], 1)
            if mistake == "recompute":
                logits, _ = model(idx[:, -bs:])
            elif mistake == "whole":
                logits, _ = model(idx[:, -bs:], kv_cache=cache)
            elif cache.pos == bs and mistake != "no_reset":
                cache.reset()
                logits, _ = model(idx[:, -bs:], kv_cache=cache)
            else:
                logits, _ = model(idx[:, -1:], kv_cache=cache)
    if mistake == "late_logits":
        out = out[1:] + [logits[:, -1]]
    return idx, torch.stack(out, 1)


def test_generate_cached_passes_solution(capsys):
    assert bool(day19.check_generate_cached(cached)) is True
    assert one_line(capsys) == "✅ generate_cached: passed"


@pytest.mark.parametrize("mistake, hint", [
    ("no_reset", "the cache overflowed"),
    ("whole", "the cache overflowed"),
    ("recompute", "forwards ran a single token"),
    ("late_logits", "logits[:, s] should be"),
])
def test_generate_cached_catches_mistakes(capsys, mistake, hint):
    assert bool(day19.check_generate_cached(lambda m, i, n: cached(m, i, n, mistake=mistake))) is False
    line = one_line(capsys)
    assert line.startswith("❌") and hint in line, line


def test_generate_cached_stub_and_earlier(capsys):
    assert bool(day19.check_generate_cached(stub)) is False
    assert "not done yet" in one_line(capsys)

    class KVCache(Cache):  # the learner's own cache, still a stub
        def update(self, layer, k, v):
            raise NotImplementedError

    def uses_own_cache(model, idx, n):
        cfg = model.config
        cache = KVCache(cfg.n_layer, idx.shape[0], cfg.n_head, cfg.block_size, cfg.head_size)
        model(idx, kv_cache=cache)

    assert bool(day19.check_generate_cached(uses_own_cache)) is False
    assert "finish exercise 2 first" in one_line(capsys)


def test_generate_cached_wrong_return(capsys):
    assert bool(day19.check_generate_cached(lambda m, i, n: cached(m, i, n)[0])) is False
    assert "generate_cached" in one_line(capsys)
