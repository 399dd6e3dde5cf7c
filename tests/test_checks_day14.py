"""The day-14 checks pass the solutions, catch wrong device handling, say "not done yet" for stubs."""

from __future__ import annotations

import time

import pytest
import torch

from llmcourse.bench import time_it
from llmcourse.checks import day14
from llmcourse.device import _resolve_device
from checklines import one_line, stub


def _expect(capsys, verdict, passed, words):
    assert bool(verdict) is passed
    line = one_line(capsys)
    for w in words if isinstance(words, (list, tuple)) else [words]:
        assert w in line, line
    return line


# ---- exercise 1: pick_device -----------------------------------------------------------------


def good_pick_device(preference, has_cuda, has_mps):
    if preference == "auto":
        return "cuda" if has_cuda else "mps" if has_mps else "cpu"
    dev = torch.device(preference)
    if (dev.type == "cuda" and not has_cuda) or (dev.type == "mps" and not has_mps):
        raise ValueError(f"{preference} is not available here")
    return dev


def test_pick_device_passes_and_stub(capsys):
    _expect(capsys, day14.check_pick_device(good_pick_device), True, "passed")
    _expect(capsys, day14.check_pick_device(_resolve_device), True, "passed")
    _expect(capsys, day14.check_pick_device(stub), False, "not done yet")


@pytest.mark.parametrize("fn,words", [
    (lambda p, c, m: "mps" if m else "cuda" if c else "cpu", "CUDA comes first"),
    (lambda p, c, m: "cuda" if c else "mps" if m else "cpu", "must be obeyed"),
    (lambda p, c, m: (p.split(":")[0] if p != "auto" else "cuda" if c else "mps" if m else "cpu"),
     "keep the GPU index"),
    (lambda p, c, m: ("cuda" if c else "mps" if m else "cpu") if p == "auto" or
     (p.startswith("cuda") and not c) or (p == "mps" and not m) else p, "silent fallback"),
    (lambda p, c, m: None, "None"),
    (lambda p, c, m: 3, "device string"),
])
def test_pick_device_mistakes(capsys, fn, words):
    _expect(capsys, day14.check_pick_device(fn), False, words)


def test_pick_device_not_implemented_for_unavailable(capsys):
    def lazy(p, c, m):
        if p == "auto":
            return "cuda" if c else "mps" if m else "cpu"
        dev = torch.device(p)
        if (dev.type == "cuda" and not c) or (dev.type == "mps" and not m):
            raise NotImplementedError
        return dev

    _expect(capsys, day14.check_pick_device(lazy), False, "raise a ValueError")


# ---- exercise 2: batch_to --------------------------------------------------------------------


def good_batch_to(x, y, device):
    device = torch.device(device)
    if device.type == "cuda":
        return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
    return x.to(device), y.to(device)


def test_batch_to_passes_and_stub(capsys):
    _expect(capsys, day14.check_batch_to(good_batch_to), True, "passed")
    _expect(capsys, day14.check_batch_to(stub), False, "not done yet")


def test_batch_to_restores_tensor_methods(capsys):
    before = (torch.Tensor.to, torch.Tensor.pin_memory, torch.Tensor.cuda)
    day14.check_batch_to(good_batch_to)
    day14.check_batch_to(lambda x, y, d: 1 / 0)
    capsys.readouterr()
    assert (torch.Tensor.to, torch.Tensor.pin_memory, torch.Tensor.cuda) == before


def test_batch_to_mistakes(capsys):
    def not_assigned(x, y, device):
        x.to(device)
        y.to(device)
        return x, y

    def blocking(x, y, device):
        return x.to(device), y.to(device)

    def always_pin(x, y, device):
        return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)

    def no_pin(x, y, device):
        return x.to(device, non_blocking=True), y.to(device, non_blocking=True)

    def swapped(x, y, device):
        a, b = good_batch_to(x, y, device)
        return b, a

    def floats(x, y, device):
        a, b = good_batch_to(x, y, device)
        return a.float(), b

    _expect(capsys, day14.check_batch_to(not_assigned), False, "returns a NEW tensor")
    _expect(capsys, day14.check_batch_to(always_pin), False, "pin")
    _expect(capsys, day14.check_batch_to(swapped), False, "swapped")
    _expect(capsys, day14.check_batch_to(floats), False, "int64")
    _expect(capsys, day14.check_batch_to(lambda x, y, d: good_batch_to(x, y, d)[0]), False, "pair")
    if not torch.cuda.is_available():  # on a GPU machine both of these really run
        _expect(capsys, day14.check_batch_to(blocking), False, "non_blocking=True")
        _expect(capsys, day14.check_batch_to(no_pin), False, "pin_memory()")


# ---- exercise 3: time_fn ---------------------------------------------------------------------


def good_time_fn(fn, device, warmup=2, repeats=5):
    device = torch.device(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def test_time_fn_passes_and_stub(capsys):
    _expect(capsys, day14.check_time_fn(good_time_fn), True, "passed")
    _expect(capsys, day14.check_time_fn(time_it), True, "passed")
    _expect(capsys, day14.check_time_fn(stub), False, "not done yet")
    assert torch.cuda.synchronize.__name__ == "synchronize"


def test_time_fn_mistakes(capsys):
    def no_warmup(fn, device, warmup=2, repeats=5):
        return good_time_fn(fn, device, 0, repeats)

    def mean_no_warmup(fn, device, warmup=2, repeats=5):
        times = []
        for _ in range(warmup + repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return sum(times) / len(times)

    def never_syncs(fn, device, warmup=2, repeats=5):
        return good_time_fn(fn, "cpu", warmup, repeats)

    def always_syncs(fn, device, warmup=2, repeats=5):
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        return sorted(times)[len(times) // 2]

    def sync_once_at_end(fn, device, warmup=2, repeats=5):
        for _ in range(warmup):
            fn()
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn()
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - t0) / repeats

    def sync_not_after_warmup(fn, device, warmup=2, repeats=5):
        sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - t0)
        return sorted(times)[len(times) // 2]

    def all_times(fn, device, warmup=2, repeats=5):
        return [good_time_fn(fn, device, warmup, 1)] * repeats

    def milliseconds(fn, device, warmup=2, repeats=5):
        return good_time_fn(fn, device, warmup, repeats) * 1000

    _expect(capsys, day14.check_time_fn(no_warmup), False, "warmup")
    _expect(capsys, day14.check_time_fn(mean_no_warmup), False, "slow first call was timed")
    _expect(capsys, day14.check_time_fn(never_syncs), False, "torch.cuda.synchronize() after each")
    if not torch.cuda.is_available():
        _expect(capsys, day14.check_time_fn(always_syncs), False, "Synchronize only when device is CUDA")
    _expect(capsys, day14.check_time_fn(sync_once_at_end), False, "EVERY timed call")
    _expect(capsys, day14.check_time_fn(sync_not_after_warmup), False, "after the warmup too")
    _expect(capsys, day14.check_time_fn(all_times), False, "one number")
    _expect(capsys, day14.check_time_fn(milliseconds), False, "seconds")
    assert torch.cuda.synchronize.__name__ == "synchronize"
