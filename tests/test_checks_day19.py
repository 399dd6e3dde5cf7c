"""The day-19 checks pass the solutions, reject the mistakes of their tables, and say "not done
yet" for stubs."""

from __future__ import annotations

import pytest
import torch

from llmcourse.checks import day19
from llmcourse.generate import generate
from llmcourse.model.kv_cache import KVCache as PackageKVCache
from checklines import fails, mistake_params, one_line, passes, rejects, stub

pytestmark = pytest.mark.usefixtures("one_thread")


# ---- the lesson's solutions (solutions/day19_autoregressive_generation.md) ----------------------


def generate_greedy(model, idx, max_new_tokens):
    block_size = model.config.block_size
    model.eval()
    with torch.no_grad():
        for _ in range(max_new_tokens):
            logits, _ = model(idx[:, -block_size:])                      # (B, T, V)
            next_id = logits[:, -1, :].argmax(dim=-1, keepdim=True)      # (B, 1)
            idx = torch.cat([idx, next_id], dim=1)                       # (B, T + 1)
    return idx


class KVCache:
    def __init__(self, n_layer, batch_size, n_head, max_len, head_size):
        self.max_len = max_len
        self.pos = 0
        shape = (batch_size, n_head, max_len, head_size)
        self.k = [torch.zeros(shape) for _ in range(n_layer)]
        self.v = [torch.zeros(shape) for _ in range(n_layer)]

    def check_room(self, batch_size, n_new):
        if self.pos + n_new > self.max_len:
            raise ValueError(f"KV cache overflow: {self.pos} + {n_new} > {self.max_len}")

    def update(self, layer, k, v):
        end = self.pos + k.shape[2]
        self.k[layer][:, :, self.pos:end] = k
        self.v[layer][:, :, self.pos:end] = v
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]   # (B, nh, pos + T, hs)

    def advance(self, n):
        self.pos += n

    def reset(self):
        self.pos = 0


def generate_cached(model, idx, max_new_tokens):
    block_size = model.config.block_size
    model.eval()
    step_logits = []
    with torch.no_grad():
        cache = model.new_kv_cache(batch_size=idx.shape[0])
        logits, _ = model(idx[:, -block_size:], kv_cache=cache)          # prefill
        for _ in range(max_new_tokens):
            last = logits[:, -1, :]                                      # (B, V)
            step_logits.append(last)
            idx = torch.cat([idx, last.argmax(dim=-1, keepdim=True)], dim=1)
            if cache.pos == block_size:                                  # full: refill
                cache.reset()
                logits, _ = model(idx[:, -block_size:], kv_cache=cache)
            else:
                logits, _ = model(idx[:, -1:], kv_cache=cache)           # (B, 1, V)
    return idx, torch.stack(step_logits, dim=1)                          # (B, T + n), (B, n, V)


# ---- other correct variants ----------------------------------------------------------------------


def greedy_via_package(model, idx, n):
    return generate(model, idx, n, temperature=0)


class KVCacheCat:  # grows by torch.cat instead of writing into preallocated tensors: refused
    def __init__(self, n_layer, batch_size, n_head, max_len, head_size):
        self.max_len, self.pos = max_len, 0
        self.k = [torch.zeros(batch_size, n_head, 0, head_size) for _ in range(n_layer)]
        self.v = [torch.zeros(batch_size, n_head, 0, head_size) for _ in range(n_layer)]

    def check_room(self, batch_size, n_new):
        if self.pos + n_new > self.max_len:
            raise ValueError("KV cache overflow")

    def update(self, layer, k, v):
        self.k[layer] = torch.cat([self.k[layer][:, :, :self.pos], k], dim=2)
        self.v[layer] = torch.cat([self.v[layer][:, :, :self.pos], v], dim=2)
        return self.k[layer], self.v[layer]

    def advance(self, n):
        self.pos += n

    def reset(self):
        self.pos = 0


def generate_cached_no_last_forward(model, idx, n):  # skips the forward after the last token
    bs = model.config.block_size
    model.eval()
    out = []
    with torch.no_grad():
        cache = model.new_kv_cache(batch_size=idx.shape[0])
        logits = model(idx[:, -bs:], kv_cache=cache)[0][:, -1]
        for i in range(n):
            out.append(logits)
            idx = torch.cat([idx, logits.argmax(-1, keepdim=True)], 1)
            if i == n - 1:
                break
            if cache.pos == bs:
                cache.reset()
                logits = model(idx[:, -bs:], kv_cache=cache)[0][:, -1]
            else:
                logits = model(idx[:, -1:], kv_cache=cache)[0][:, -1]
    return idx, torch.stack(out, 1)


@torch.no_grad()
def greedy_topk(model, idx, n):  # topk(1) picks the argmax too; the decorator instead of `with`
    model.eval()
    for _ in range(n):
        logits, _ = model(idx[:, -model.config.block_size:])
        idx = torch.cat([idx, torch.topk(logits[:, -1], 1, dim=-1).indices], dim=1)
    return idx


class KVCacheOneTensor:  # one (n_layer, B, nh, max_len, hs) tensor each; torch.empty; copies
    def __init__(self, n_layer, batch_size, n_head, max_len, head_size):
        self.max_len, self.pos = max_len, 0
        self.k = torch.empty(n_layer, batch_size, n_head, max_len, head_size)
        self.v = torch.empty_like(self.k)

    def check_room(self, batch_size, n_new):
        if self.pos + n_new > self.max_len:
            raise ValueError(f"KV cache overflow: {self.pos} + {n_new} > {self.max_len}")

    def update(self, layer, k, v):
        T = k.size(-2)
        self.k[layer, ..., self.pos:self.pos + T, :] = k
        self.v[layer, ..., self.pos:self.pos + T, :] = v
        return (self.k[layer, ..., :self.pos + T, :].clone(),
                self.v[layer, ..., :self.pos + T, :].clone())

    def advance(self, n):
        self.pos = self.pos + n

    def reset(self):
        self.pos = 0


def generate_cached_by_length(model, idx, n):  # refills when idx outgrows the block
    bs = model.config.block_size
    model.eval()
    steps = []
    with torch.no_grad():
        cache = model.new_kv_cache(batch_size=idx.shape[0])
        logits, _ = model(idx[:, -bs:], kv_cache=cache)
        for _ in range(n):
            steps.append(logits[:, -1:, :])                     # (B, 1, V)
            idx = torch.cat([idx, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
            chunk = idx[:, -bs:] if idx.shape[1] > bs else idx[:, -1:]
            if idx.shape[1] > bs:
                cache.reset()
            logits, _ = model(chunk, kv_cache=cache)
    return idx, torch.cat(steps, dim=1)


def greedy_preallocated(model, idx, n):  # writes each new token into a preallocated result
    model.eval()
    bs = model.config.block_size
    B, T = idx.shape
    out = torch.zeros(B, T + n, dtype=idx.dtype)
    out[:, :T] = idx
    with torch.no_grad():
        for t in range(T, T + n):
            logits, _ = model(out[:, max(0, t - bs):t])
            out[:, t] = logits[:, -1].argmax(-1)
    return out


def generate_cached_forward_first(model, idx, n):  # each step: forward (prefill or refill), pick
    bs = model.config.block_size
    model.eval()
    picked = []
    with torch.inference_mode():
        cache = model.new_kv_cache(batch_size=idx.shape[0])
        for i in range(n):
            if i == 0 or cache.pos == bs:
                cache.reset()
                logits, _ = model(idx[:, -bs:], kv_cache=cache)
            else:
                logits, _ = model(idx[:, -1:], kv_cache=cache)
            picked.append(logits[:, -1])
            idx = torch.cat([idx, logits[:, -1].argmax(-1, keepdim=True)], 1)
    return idx, torch.stack(picked, dim=1)


# ---- every mistake of the tables is rejected with its hint ----------------------------------------


@pytest.mark.parametrize("check_fn, mistake", mistake_params(day19))
def test_mistake_rejected(check_fn, mistake, capsys):
    rejects(capsys, check_fn, mistake)


@pytest.mark.parametrize("check_fn, fn", [
    (day19.check_generate_greedy, generate_greedy),
    (day19.check_generate_greedy, greedy_via_package),
    (day19.check_kv_cache, KVCache),
    (day19.check_generate_cached, generate_cached),
    (day19.check_generate_cached, generate_cached_no_last_forward),
    (day19.check_generate_greedy, greedy_topk),
    (day19.check_kv_cache, KVCacheOneTensor),
    (day19.check_generate_cached, generate_cached_by_length),
    (day19.check_generate_greedy, greedy_preallocated),
    (day19.check_generate_cached, generate_cached_forward_first),
])
def test_passes_correct_answers(capsys, check_fn, fn):
    passes(capsys, check_fn, fn)


@pytest.mark.parametrize("check_fn, reference", [
    (day19.check_generate_greedy, generate),
    (day19.check_kv_cache, PackageKVCache),
    (day19.check_generate_cached, day19._reference_cached),
])
def test_refuses_the_package_reference(capsys, check_fn, reference):
    assert len(check_fn.mistakes) >= 3
    fails(capsys, check_fn, reference, "the course's own reference")


@pytest.mark.parametrize("check_fn", [day19.check_generate_greedy, day19.check_kv_cache,
                                      day19.check_generate_cached])
def test_stub(capsys, check_fn):
    fails(capsys, check_fn, stub, "not done yet")


# ---- exercise 1 ---------------------------------------------------------------------------------


class _NotebookConfig:  # the notebook's global cfg (block 64 on the CPU, 256 on a GPU)
    block_size = 64


def test_crop_with_a_notebook_global_names_model_config(capsys):
    # 31c #2: section 2 crops with cfg.block_size; the check's models are not the notebook's
    cfg = _NotebookConfig()

    def greedy_global(model, idx, n):
        model.eval()
        with torch.no_grad():
            for _ in range(n):
                logits, _ = model(idx[:, -cfg.block_size:])
                idx = torch.cat([idx, logits[:, -1, :].argmax(-1, keepdim=True)], dim=1)
        return idx

    fails(capsys, day19.check_generate_greedy, greedy_global,
          "with the model's own model.config.block_size, not a notebook global such as cfg.block_size")

    def cached_global(model, idx, n):
        bs = cfg.block_size
        model.eval()
        out = []
        with torch.no_grad():
            cache = model.new_kv_cache(batch_size=idx.shape[0])
            logits, _ = model(idx[:, -bs:], kv_cache=cache)
            for _ in range(n):
                out.append(logits[:, -1])
                idx = torch.cat([idx, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
                if cache.pos == bs:
                    cache.reset()
                    logits, _ = model(idx[:, -bs:], kv_cache=cache)
                else:
                    logits, _ = model(idx[:, -1:], kv_cache=cache)
        return idx, torch.stack(out, 1)

    fails(capsys, day19.check_generate_cached, cached_global,
          "the cache overflowed: after the prefill feed only the newest token, idx[:, -1:], and when "
          "cache.pos reaches block_size, call cache.reset() and prefill it again with the last "
          "block_size tokens; compare with the model's own model.config.block_size, not a notebook "
          "global such as cfg.block_size")


def test_greedy_tokens_by_hand(capsys):
    # independent of the check: each token is the argmax of a full forward over the cropped window
    model = day19._model().eval()
    idx = torch.tensor([[1, 2, 3]])
    out = generate_greedy(model, idx, 12)
    with torch.no_grad():
        for t in range(3, 15):
            logits = model(out[:, max(0, t - 10):t])[0]
            assert out[0, t] == logits[0, -1].argmax()
    fails(capsys, day19.check_generate_greedy, lambda m, i, n: None, "returned None")


# ---- exercise 2 ---------------------------------------------------------------------------------


def test_kv_cache_stubs(capsys):
    class Stub(KVCache):
        def update(self, layer, k, v):
            raise NotImplementedError

    fails(capsys, day19.check_kv_cache, Stub, "not done yet")

    class InitStub(KVCache):  # update and advance written, __init__'s fill-in left as None
        def __init__(self, *args):
            super().__init__(*args)
            self.k = self.v = None

    fails(capsys, day19.check_kv_cache, InitStub, "not done yet")


def test_kv_cache_must_allocate_its_tensors(capsys):
    # the lesson asks for (batch_size, n_head, max_len, head_size) tensors allocated once (31c #8)
    assert not day19.check_kv_cache(KVCacheCat)
    line = one_line(capsys)
    assert line == ("❌ KVCache: self.k[0] has shape (2, 3, 0, 8) after __init__, expected (2, 3, 16, 8): "
                    "allocate self.k[layer] and self.v[layer] once, in __init__, as zeros of shape "
                    "(batch_size, n_head, max_len, head_size); update writes into them, it does not "
                    "grow them with torch.cat"), line

    class OnlyKeys(KVCache):  # the values forgotten: a list of None
        def __init__(self, n_layer, *args):
            super().__init__(n_layer, *args)
            self.v = [None] * n_layer

    fails(capsys, day19.check_kv_cache, OnlyKeys, "self.v[0] is None after __init__: allocate")


def test_kv_cache_names_the_returned_positions(capsys):
    # 31c #9: say in words how many positions update returned, not "forwards[...][0][0][0]"
    class PlusOne(KVCache):
        def update(self, layer, k, v):
            super().update(layer, k, v)
            return self.k[layer][:, :, :self.pos + 1], self.v[layer][:, :, :self.pos + 1]

    assert not day19.check_kv_cache(PlusOne)
    assert one_line(capsys) == ("❌ KVCache: update returned keys for 1 position after a 6-token prefill, "
                                "expected 6: return positions 0 .. pos + T - 1, "
                                "self.k[layer][:, :, :pos + T] (and the same for v)")


def test_kv_cache_garbage(capsys):
    class ReturnsOne(KVCache):
        def update(self, layer, k, v):
            super().update(layer, k, v)
            return k

    fails(capsys, day19.check_kv_cache, ReturnsOne, "should return a pair")


# ---- exercise 3 ---------------------------------------------------------------------------------


def test_generate_cached_names_the_unfinished_cache(capsys):
    class KVCache:  # the learner's own cache, still a stub
        def __init__(self, *args):
            self.pos = 0

        def check_room(self, *args):
            pass

        def update(self, layer, k, v):
            raise NotImplementedError

    def uses_own_cache(model, idx, n):
        cfg = model.config
        cache = KVCache(cfg.n_layer, idx.shape[0], cfg.n_head, cfg.block_size, cfg.head_size)
        model(idx, kv_cache=cache)

    fails(capsys, day19.check_generate_cached, uses_own_cache, "finish exercise 2 first")
