"""The day-14 checks pass the solutions (and correct variants), catch the mistakes of the tables
in ``llmcourse/checks/day14.py``, refuse the package's own functions, say "not done yet" for
stubs, restore what they patch, print exactly one line and never raise. No GPU is used."""

from __future__ import annotations

import statistics
import time
import timeit

import pytest
import torch

from llmcourse.bench import time_it
from llmcourse.checks import day14
from llmcourse.device import _resolve_device
from checklines import fails, mistake_params, passes, rejects, stub


# ---- the lesson's solutions (solutions/day14_devices.md) -------------------------------------


def my_pick_device(preference, has_cuda, has_mps):
    if preference == "auto":
        return torch.device("cuda" if has_cuda else "mps" if has_mps else "cpu")
    dev = torch.device(preference)
    if dev.type == "cuda" and not has_cuda:
        raise ValueError(f"{preference!r} was requested but there is no CUDA GPU")
    if dev.type == "mps" and not has_mps:
        raise ValueError(f"{preference!r} was requested but MPS is not available")
    return dev


def batch_to(x, y, device):
    device = torch.device(device)
    if device.type == "cuda":
        return (x.pin_memory().to(device, non_blocking=True),
                y.pin_memory().to(device, non_blocking=True))
    return x.to(device), y.to(device)


def time_fn(fn, device, warmup=2, repeats=5):
    is_cuda = torch.device(device).type == "cuda"
    for _ in range(warmup):
        fn()
    if is_cuda:
        torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if is_cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


# ---- other correct variants ------------------------------------------------------------------


def pick_device_strings(preference, has_cuda, has_mps):
    if preference == "auto":
        return "cuda" if has_cuda else "mps" if has_mps else "cpu"
    kind = preference.split(":")[0]
    if (kind == "cuda" and not has_cuda) or (kind == "mps" and not has_mps):
        raise ValueError(f"{preference} is not available here")
    return preference


def batch_to_cuda_method(x, y, device):
    device = torch.device(device)
    if device.type == "cuda":
        return x.pin_memory().cuda(device.index, non_blocking=True), \
            y.pin_memory().cuda(device.index, non_blocking=True)
    return x.to(device), y.to(device)


def time_fn_statistics(fn, device, warmup=2, repeats=5):
    device = torch.device(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        fn()
        sync()                                   # after every warmup call: also fine
    times = []
    for _ in range(repeats):
        sync()                                   # before starting the clock: also fine
        t0 = timeit.default_timer()
        fn()
        sync()
        times.append(timeit.default_timer() - t0)
    return statistics.median(times)


def time_fn_waits_for_mps(fn, device, warmup=2, repeats=5):
    # like the package's time_it: also waits for MPS (the check stands in for it: no Mac needed)
    kind = torch.device(device).type
    sync = {"cuda": torch.cuda.synchronize, "mps": torch.mps.synchronize}.get(kind, lambda: None)
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


def batch_to_guarded(x, y, device):
    # also asks whether the machine has CUDA: correct on every machine, so it must pass on any
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        return tuple(t.pin_memory().to(device, non_blocking=True) for t in (x, y))
    return x.to(device), y.to(device)


def time_fn_if_available(fn, device, warmup=2, repeats=5):
    # the common idiom: synchronize whenever the machine has CUDA. Right everywhere (on a CUDA
    # machine timing CPU work it waits for an idle GPU), so it passes
    for _ in range(warmup):
        fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def time_fn_guarded(fn, device, warmup=2, repeats=5):
    is_cuda = torch.device(device).type == "cuda" and torch.cuda.is_available()
    for _ in range(warmup):
        fn()
    if is_cuda:
        torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if is_cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return sorted(times)[(repeats - 1) // 2]


@pytest.mark.parametrize("check_fn, fn", [
    (day14.check_time_fn, time_fn_waits_for_mps),
    (day14.check_batch_to, batch_to_guarded), (day14.check_time_fn, time_fn_guarded),
    (day14.check_time_fn, time_fn_if_available),
    (day14.check_pick_device, my_pick_device), (day14.check_pick_device, pick_device_strings),
    (day14.check_batch_to, batch_to), (day14.check_batch_to, batch_to_cuda_method),
    (day14.check_time_fn, time_fn), (day14.check_time_fn, time_fn_statistics),
])
def test_solutions_pass(capsys, check_fn, fn):
    passes(capsys, check_fn, fn)


@pytest.mark.parametrize("check_fn, mistake", mistake_params(day14))
def test_mistake_rejected(check_fn, mistake, capsys):
    rejects(capsys, check_fn, mistake)


def test_tables_have_three_mistakes():
    for fn in (day14.check_pick_device, day14.check_batch_to, day14.check_time_fn):
        assert len(fn.mistakes) >= 3


@pytest.mark.parametrize("check_fn, fn", [
    (day14.check_pick_device, _resolve_device), (day14.check_time_fn, time_it),
    (day14.check_pick_device, day14._reference_pick_device),
    (day14.check_batch_to, day14._reference_batch_to),
    (day14.check_time_fn, day14._reference_time_fn),
])
def test_refuses_the_package_reference(capsys, check_fn, fn):
    fails(capsys, check_fn, fn, "the course's own reference")


@pytest.mark.parametrize("check_fn", [day14.check_pick_device, day14.check_batch_to,
                                      day14.check_time_fn])
def test_stub(capsys, check_fn):
    fails(capsys, check_fn, stub, "not done yet")


# ---- other behaviours ------------------------------------------------------------------------


def test_pick_device_not_implemented_for_unavailable(capsys):
    def lazy(p, c, m):
        if p == "auto":
            return "cuda" if c else "mps" if m else "cpu"
        dev = torch.device(p)
        if (dev.type == "cuda" and not c) or (dev.type == "mps" and not m):
            raise NotImplementedError
        return dev

    fails(capsys, day14.check_pick_device, lazy, "raise a ValueError")


@pytest.mark.parametrize("fn, words", [
    (lambda p, c, m: None, "None"),
    (lambda p, c, m: 3, "device string"),
])
def test_pick_device_odd_returns(capsys, fn, words):
    fails(capsys, day14.check_pick_device, fn, words)


def test_batch_to_restores_tensor_methods(capsys):
    before = (torch.Tensor.to, torch.Tensor.pin_memory, torch.Tensor.cuda, torch.cuda.is_available)
    day14.check_batch_to(batch_to)
    day14.check_batch_to(lambda x, y, d: 1 / 0)
    capsys.readouterr()
    assert (torch.Tensor.to, torch.Tensor.pin_memory, torch.Tensor.cuda,
            torch.cuda.is_available) == before


def test_batch_to_returns_one_tensor(capsys):
    fails(capsys, day14.check_batch_to, lambda x, y, d: batch_to(x, y, d)[0], "pair")


def test_time_fn_restores_the_clock(capsys):
    before = (time.perf_counter, time.time, timeit.default_timer, torch.cuda.synchronize,
              torch.mps.synchronize, torch.cuda.is_available)
    day14.check_time_fn(time_fn)
    day14.check_time_fn(lambda fn, d, warmup=2, repeats=5: 1 / 0)
    capsys.readouterr()
    assert (time.perf_counter, time.time, timeit.default_timer, torch.cuda.synchronize,
            torch.mps.synchronize, torch.cuda.is_available) == before


def test_time_fn_has_an_mps_case_without_cuda_calls():
    cases = [c for c in day14._time_cases() if str(torch.device(c.args[0])) == "mps"]
    assert len(cases) == 1
    assert day14._time_run(time_fn, cases[0])["torch.cuda.synchronize() calls"] == 0


def test_time_fn_needs_no_gpu(capsys, monkeypatch):
    # every case runs on a CPU-only machine: a real CUDA or MPS call would fail the test
    def no_device(*args, **kwargs):
        raise AssertionError("the check touched a real device")

    monkeypatch.setattr(torch.cuda, "synchronize", no_device)
    monkeypatch.setattr(torch.mps, "synchronize", no_device)
    passes(capsys, day14.check_time_fn, time_fn_waits_for_mps)


def test_batch_to_hard_coded_cuda_is_named(capsys):
    def batch_to_hard_coded(x, y, device):
        if torch.device(device).type == "cuda":
            return (x.pin_memory().to("cuda", non_blocking=True),
                    y.pin_memory().to("cuda", non_blocking=True))
        return x.to(device), y.to(device)

    fails(capsys, day14.check_batch_to, batch_to_hard_coded,
          "you copied to 'cuda', not to the device you were given")


def test_time_fn_cuda_sync_on_mps_is_named(capsys):
    def time_fn_not_cpu(fn, device, warmup=2, repeats=5):
        on_gpu = str(device) != "cpu"                  # syncs CUDA for MPS too
        for _ in range(warmup):
            fn()
        if on_gpu:
            torch.cuda.synchronize()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            if on_gpu:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    fails(capsys, day14.check_time_fn, time_fn_not_cpu,
          "you called torch.cuda.synchronize() for a device that is not CUDA (mps), which fails "
          "on a Mac: synchronize only when torch.device(device).type == 'cuda' (on time_fn(fn, "
          "torch.device('mps')")


def test_pick_device_any_other_exception_names_it(capsys):
    def type_error(preference, has_cuda, has_mps):
        if preference != "auto" and torch.device(preference).type == "cuda" and not has_cuda:
            raise TypeError("no GPU here")
        return my_pick_device(preference, has_cuda, has_mps)

    fails(capsys, day14.check_pick_device, type_error,
          "pick_device raised TypeError (no GPU here) for a device that is not available; raise a "
          "ValueError instead: raise ValueError(f'{preference} is not available') (on "
          "pick_device('cuda', has_cuda=False, has_mps=True) (not available))")


def test_time_fn_crash_names_the_input(capsys):
    fails(capsys, day14.check_time_fn, lambda fn, d, warmup=2, repeats=5: 1 / 0,
          "ZeroDivisionError")


def test_time_fn_is_fast(capsys):
    # the scripted clock: no real sleeping, whatever the durations say
    t0 = time.perf_counter()
    day14.check_time_fn(time_fn)
    capsys.readouterr()
    assert time.perf_counter() - t0 < 1.0


def test_time_fn_clock_imported_by_name(capsys):
    from time import perf_counter as pc

    def by_name(fn, device, warmup=2, repeats=5):
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(repeats):
            t0 = pc()
            fn()
            times.append(pc() - t0)
        return sorted(times)[len(times) // 2]

    fails(capsys, day14.check_time_fn, by_name, "time.perf_counter()")
