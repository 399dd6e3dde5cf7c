"""Checks for day 14, "Devices".

Each ``check_*`` function compares the learner's code with a reference on a small battery of
inputs and prints one line - a pass, a specific hint, or "not done yet" - and never raises. None
needs a GPU, and none uses one even where there is one: CUDA is stood in for by recording what the
learner's code asks of it. ``batch_to`` runs with ``Tensor.to``/``.cuda``/``.pin_memory``
recorded (a copy to CUDA is a marked CPU copy that remembers whether it was asynchronous and from
pinned memory); ``time_fn`` runs against a scripted clock (``time.perf_counter`` and friends)
where the function's calls take known durations, a slow first call included, and where on CUDA
the work of a call is only counted once ``torch.cuda.synchronize()`` is called - so the median,
the warm-up and every synchronisation can be checked exactly. Its ``torch.device('mps')`` case
expects no CUDA call (``torch.mps.synchronize()`` is stood in for too, so no Mac is needed).
When the learner's answer differs from the reference, the exercise's table of typical mistakes
names the mistake.

Example::

    >>> import torch
    >>> from llmcourse.checks import day14
    >>> def pick_device(preference, has_cuda, has_mps):
    ...     if preference == "auto":
    ...         return torch.device("cuda" if has_cuda else "mps" if has_mps else "cpu")
    ...     dev = torch.device(preference)
    ...     if (dev.type == "cuda" and not has_cuda) or (dev.type == "mps" and not has_mps):
    ...         raise ValueError(f"{preference} is not available")
    ...     return dev
    >>> ok = day14.check_pick_device(pick_device)
    ✅ pick_device: passed
"""

from __future__ import annotations

import contextlib
import time
import timeit
from typing import Any, Callable, Iterator

import torch

from llmcourse.checks._core import (Case, CheckFailed, Mistake, as_float, as_pair, check,
                                    compare, kind_of, none_hint)

__all__ = ["check_pick_device", "check_batch_to", "check_time_fn"]


# ---- exercise 1: pick_device -----------------------------------------------------------------


def _reference_pick_device(preference, has_cuda, has_mps):
    if preference == "auto":
        return torch.device("cuda" if has_cuda else "mps" if has_mps else "cpu")
    dev = torch.device(preference)
    if dev.type == "cuda" and not has_cuda:
        raise ValueError(f"{preference!r} was requested but there is no CUDA GPU")
    if dev.type == "mps" and not has_mps:
        raise ValueError(f"{preference!r} was requested but MPS is not available")
    return dev


def _pick_run(impl: Any, case: Case) -> Any:
    """The device chosen, or, for an unavailable device, which exception was raised."""
    if not case.kwargs.get("unavailable"):
        try:
            return impl(*case.args)
        except ValueError as exc:  # the device is there: refusing it is the learner's own test
            raise CheckFailed(f"{case.label} raised ValueError ({exc}), but this device is available: "
                              f"{_AVAILABLE}") from exc
    try:
        return impl(*case.args)
    except NotImplementedError as exc:
        raise CheckFailed(f"{case.label} raised NotImplementedError, which means 'not written "
                          "yet'; raise a ValueError saying the device is not available") from exc
    except Exception as exc:  # noqa: BLE001 - which exception is the observation
        return _Raises(type(exc).__name__, " ".join(str(exc).split()))


_AVAILABLE = ("decide from the has_cuda and has_mps arguments (not torch.cuda.is_available(), the "
              "check tries every kind of machine through them), and accept any device torch.device "
              "accepts, such as 'cuda:1'")


class _Raises(str):
    """What pick_device did for an unavailable device: ``raises ValueError``; ``.kind`` and
    ``.message`` keep the exception's type name and text for the hint."""

    def __new__(cls, kind: str, message: str = "") -> "_Raises":
        self = super().__new__(cls, f"raises {kind}")
        self.kind, self.message = kind, message
        return self


def wrong_exception_hint(kind: str, message: str = "") -> str:
    """The hint for ``pick_device`` raising ``kind`` (not ``ValueError``) for a missing device.

    Example::

        >>> print(wrong_exception_hint("AssertionError", "no cuda"))  # doctest: +NORMALIZE_WHITESPACE
        pick_device raised AssertionError (no cuda) for a device that is not available;
        raise a ValueError instead: raise ValueError(f'{preference} is not available')
    """
    said = f" ({message})" if message else ""
    return (f"pick_device raised {kind}{said} for a device that is not available; raise a "
            "ValueError instead: raise ValueError(f'{preference} is not available')")


def _read_device(value: Any, case: Case) -> str:
    if isinstance(value, _Raises):
        if value.kind != "ValueError":
            hint = wrong_exception_hint(value.kind, value.message)
            raise CheckFailed(f"{hint} (on {case.label})")
        return str(value)
    if value is None:
        raise none_hint("pick_device", "a torch.device (or a device string like 'cuda')")
    try:
        dev = torch.device(value)
    except (TypeError, RuntimeError) as exc:
        raise CheckFailed(f"pick_device should return a torch.device or a device string like "
                          f"'cuda', got {kind_of(value)} (on {case.label})") from exc
    return str(dev)[:-2] if str(dev).endswith(":0") else str(dev)     # 'cuda:0' is 'cuda'


def _mps_first(preference, has_cuda, has_mps):
    if preference == "auto":
        return "mps" if has_mps else "cuda" if has_cuda else "cpu"
    return _reference_pick_device(preference, has_cuda, has_mps)


def _ignores_preference(preference, has_cuda, has_mps):
    return "cuda" if has_cuda else "mps" if has_mps else "cpu"


def _drops_index(preference, has_cuda, has_mps):
    return torch.device(_reference_pick_device(preference, has_cuda, has_mps).type)


def _silent_fallback(preference, has_cuda, has_mps):
    try:
        return _reference_pick_device(preference, has_cuda, has_mps)
    except ValueError:
        return _reference_pick_device("auto", has_cuda, has_mps)


def _only_cuda_checked(preference, has_cuda, has_mps):
    if preference == "auto":
        return "cuda" if has_cuda else "mps" if has_mps else "cpu"
    dev = torch.device(preference)
    if dev.type == "cuda" and not has_cuda:
        raise ValueError("no CUDA")
    return dev


def _asks_torch(preference, has_cuda, has_mps):
    if preference == "auto":
        mps = getattr(torch.backends, "mps", None)
        return ("cuda" if torch.cuda.is_available() else
                "mps" if mps is not None and mps.is_available() else "cpu")
    return _reference_pick_device(preference, has_cuda, has_mps)


def _falls_back_to_cpu(preference, has_cuda, has_mps):
    try:
        return _reference_pick_device(preference, has_cuda, has_mps)
    except ValueError:
        return torch.device("cpu")


def _string_compare(preference, has_cuda, has_mps):
    if preference == "auto":
        return torch.device("cuda" if has_cuda else "mps" if has_mps else "cpu")
    if preference == "cuda" and not has_cuda:
        raise ValueError("no CUDA GPU")
    if preference == "mps" and not has_mps:
        raise ValueError("no MPS")
    return torch.device(preference)


def _asks_torch_when_asked(preference, has_cuda, has_mps):
    # `if not torch.cuda.is_available(): raise ...` for a requested GPU, as on a machine without one
    dev = _reference_pick_device(preference, has_cuda, has_mps)
    if dev.type == "cuda" and preference != "auto":
        raise ValueError("no CUDA GPU")
    return dev


def _runtime_error(preference, has_cuda, has_mps):
    try:
        return _reference_pick_device(preference, has_cuda, has_mps)
    except ValueError as exc:
        raise RuntimeError(str(exc)) from None


def _asserts(preference, has_cuda, has_mps):  # `assert has_cuda` stops with an AssertionError
    if preference == "auto":
        return "cuda" if has_cuda else "mps" if has_mps else "cpu"
    dev = torch.device(preference)
    if dev.type == "cuda":
        assert has_cuda, "no cuda"
    if dev.type == "mps":
        assert has_mps, "no mps"
    return dev


PICK_DEVICE = [
    Mistake("MPS first", _mps_first,
            hint="with both a CUDA GPU and MPS available you chose MPS; CUDA comes first (faster "
                 "kernels, everything supported)"),
    Mistake("silent fallback", _silent_fallback,
            hint="an unavailable device was replaced by another instead of raising: a silent "
                 "fallback hides a missing GPU (a Colab notebook without a GPU runtime would "
                 "train many times slower without a word); raise a ValueError"),
    Mistake("GPU index dropped", _drops_index,
            hint="keep the GPU index the user asked for: return torch.device('cuda:1'), not "
                 "'cuda'"),
    Mistake("preference ignored", _ignores_preference,
            hint="an explicit request ('cpu', 'cuda:1', ...) must be obeyed, not replaced by the "
                 "best device: only 'auto' chooses"),
    Mistake("MPS not checked", _only_cuda_checked,
            hint="'mps' on a machine without MPS must raise a ValueError too, like 'cuda' without "
                 "CUDA"),
    Mistake("asks torch, not the arguments", _asks_torch,
            hint="decide from the has_cuda and has_mps arguments, not torch.cuda.is_available(): "
                 "the check tries every kind of machine through them"),
    Mistake("RuntimeError", _runtime_error,
            expect="pick_device raised RuntimeError ('cuda' was requested but there is no CUDA "
                   "GPU) for a device that is not available; raise a ValueError instead"),
    Mistake("assert", _asserts,
            expect=wrong_exception_hint("AssertionError", "no cuda")),
    Mistake("falls back to the CPU", _falls_back_to_cpu,
            hint="an unavailable device was replaced by the CPU instead of raising: a silent "
                 "fallback hides a missing GPU; raise a ValueError"),
    Mistake("preference == 'cuda'", _string_compare,
            hint="'cuda:0' (and 'cuda:1') name a CUDA device too: test torch.device(preference).type "
                 "== 'cuda', not preference == 'cuda'"),
    Mistake("torch.cuda.is_available() for an explicit request", _asks_torch_when_asked,
            expect=_AVAILABLE),
]


def _pick_cases() -> list[Case]:
    rows = [("auto", True, True), ("auto", False, True), ("auto", False, False),
            ("auto", True, False), ("cpu", True, True), ("cuda:1", True, False),
            ("mps", False, True), ("cuda", True, False)]
    cases = [Case(f"pick_device({p!r}, has_cuda={c}, has_mps={m})", p, c, m) for p, c, m in rows]
    for p, c, m in (("cuda", False, True), ("mps", True, False), ("cuda:0", False, False)):
        cases.append(Case(f"pick_device({p!r}, has_cuda={c}, has_mps={m}) (not available)",
                          p, c, m, unavailable=True))
    return cases


@check("pick_device", mistakes=PICK_DEVICE)
def check_pick_device(pick_device: Callable[..., Any]) -> None:
    """Exercise 1: ``pick_device(preference, has_cuda, has_mps)``: CUDA, then MPS, then the CPU;
    an explicit device is obeyed, an unavailable one raises ``ValueError``."""
    compare(pick_device, _reference_pick_device, _pick_cases(), name="pick_device",
            run=_pick_run, mistakes=PICK_DEVICE, read=_read_device)


# ---- exercise 2: batch_to --------------------------------------------------------------------


class _Recorder:
    """Stand in for CUDA: ``pin_memory`` and copies to CUDA make marked CPU copies; nothing runs
    on a GPU. ``moved[id(copy)] = (device, non_blocking, source_was_pinned)``."""

    def __init__(self) -> None:
        self.pinned: set[int] = set()
        self.moved: dict[int, tuple[str, bool, bool]] = {}
        self.keep: list[torch.Tensor] = []          # keep the copies alive: ids stay unique

    @contextlib.contextmanager
    def active(self) -> Iterator["_Recorder"]:
        real_to, real_pin, real_cuda = torch.Tensor.to, torch.Tensor.pin_memory, torch.Tensor.cuda
        real_available = torch.cuda.is_available
        rec = self

        def copy_to_cuda(t: torch.Tensor, target: Any, non_blocking: bool) -> torch.Tensor:
            out = t.detach().clone()
            rec.keep.append(out)
            rec.moved[id(out)] = (str(torch.device(target)), bool(non_blocking), id(t) in rec.pinned)
            return out

        def pin_memory(t: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
            out = t.detach().clone()
            rec.keep.append(out)
            rec.pinned.add(id(out))
            return out

        def to(t: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
            target = kwargs.get("device", args[0] if args else None)
            non_blocking = kwargs.get("non_blocking", args[1] if len(args) > 1 and
                                      isinstance(args[1], bool) else False)
            if isinstance(target, (str, torch.device)) and torch.device(target).type == "cuda":
                return copy_to_cuda(t, target, non_blocking)
            return real_to(t, *args, **kwargs)

        def cuda(t: torch.Tensor, device: Any = None, non_blocking: bool = False, **kw: Any) -> Any:
            target = "cuda" if device is None else (f"cuda:{device}" if isinstance(device, int)
                                                    else device)
            return copy_to_cuda(t, target, non_blocking)

        torch.Tensor.to, torch.Tensor.pin_memory, torch.Tensor.cuda = to, pin_memory, cuda  # type: ignore[method-assign]
        torch.cuda.is_available = lambda: True  # the same machine everywhere: one with CUDA
        try:
            yield self
        finally:
            torch.Tensor.to, torch.Tensor.pin_memory, torch.Tensor.cuda = real_to, real_pin, real_cuda  # type: ignore[method-assign]
            torch.cuda.is_available = real_available

    def describe(self, t: Any, name: str) -> Any:
        if not isinstance(t, torch.Tensor):
            return t
        if id(t) in self.moved:
            device, non_blocking, pinned = self.moved[id(t)]
            return {"device": device, "values": t, "non_blocking": non_blocking,
                    "pinned": pinned}
        values = None if t.device.type == "meta" else t.detach()
        return {"device": str(t.device), "values": values, "non_blocking": None,
                "pinned": id(t) in self.pinned}


def _batch_run(impl: Any, case: Case) -> dict[str, Any]:
    (x, y, device), _ = case.fresh()
    rec = _Recorder()
    with rec.active():
        out = impl(x, y, device)
    bx, by = as_pair(out, "batch_to(x, y, device)", names=("x", "y"))
    return {"x": rec.describe(bx, "x"), "y": rec.describe(by, "y")}


def _reference_batch_to(x, y, device):
    device = torch.device(device)
    if device.type == "cuda":
        return (x.pin_memory().to(device, non_blocking=True),
                y.pin_memory().to(device, non_blocking=True))
    return x.to(device), y.to(device)


def _batch_string_compare(x, y, device):
    if device == "cuda":
        return (x.pin_memory().to(device, non_blocking=True),
                y.pin_memory().to(device, non_blocking=True))
    return x.to(device), y.to(device)


def _batch_not_assigned(x, y, device):
    x.to(device)
    y.to(device)
    return x, y


def _batch_blocking(x, y, device):
    return x.to(device), y.to(device)


def _batch_pinned_blocking(x, y, device):
    if torch.device(device).type == "cuda":
        return x.pin_memory().to(device), y.pin_memory().to(device)
    return x.to(device), y.to(device)


def _batch_asks_torch(x, y, device):
    if torch.cuda.is_available():  # what the machine has, not where the batch goes
        return (x.pin_memory().to(device, non_blocking=True),
                y.pin_memory().to(device, non_blocking=True))
    return x.to(device), y.to(device)


def _batch_always_pin(x, y, device):
    return (x.pin_memory().to(device, non_blocking=True),
            y.pin_memory().to(device, non_blocking=True))


def _batch_no_pin(x, y, device):
    return x.to(device, non_blocking=True), y.to(device, non_blocking=True)


def _batch_swapped(x, y, device):
    a, b = _reference_batch_to(x, y, device)
    return b, a


def _batch_only_x(x, y, device):
    return _reference_batch_to(x, y, device)[0], y


def _batch_cuda_method(x, y, device):
    return x.cuda(), y.cuda()


def _batch_hard_coded_cuda(x, y, device):
    if torch.device(device).type == "cuda":
        return (x.pin_memory().to("cuda", non_blocking=True),
                y.pin_memory().to("cuda", non_blocking=True))
    return x.to(device), y.to(device)


def _batch_floats(x, y, device):
    a, b = _reference_batch_to(x, y, device)
    return a.float(), b.float()


BATCH_TO = [
    Mistake("device == 'cuda'", _batch_string_compare,
            hint="device may be a torch.device or 'cuda:0': test torch.device(device).type == "
                 "'cuda', not device == 'cuda'"),
    Mistake("result not returned", _batch_not_assigned,
            hint="tensor.to(device) returns a NEW tensor and leaves the old one where it was; "
                 "return the moved ones (x = x.to(device))"),
    Mistake("blocking copies", _batch_blocking,
            hint="the copies to CUDA are blocking and from pageable memory: pin each tensor "
                 "(t.pin_memory()) and copy with .to(device, non_blocking=True) so the copy "
                 "overlaps with work already queued on the GPU"),
    Mistake("pinned, but blocking", _batch_pinned_blocking,
            hint="you pinned the tensors but the copies are still blocking: pass "
                 "non_blocking=True to .to(device, non_blocking=True), or pinning buys nothing"),
    Mistake("torch.cuda.is_available()", _batch_asks_torch, expect="torch.cuda.is_available() says"),
    Mistake("always pinned", _batch_always_pin,
            hint="you pinned memory for a non-CUDA target: pinning only helps copies to CUDA (and "
                 "fails on machines without CUDA; torch.cuda.is_available() says what the machine "
                 "has, not where the batch goes); pin only when the device type is 'cuda'"),
    Mistake("no pin", _batch_no_pin,
            hint="non_blocking copies need a pinned (page-locked) source: call t.pin_memory() "
                 "before .to(device, non_blocking=True) when the target is CUDA"),
    Mistake("swapped", _batch_swapped,
            hint="x and y come back swapped; return (x, y) in that order"),
    Mistake("only x moved", _batch_only_x, hint="only x was moved; move y as well"),
    Mistake("float", _batch_floats, expect="dtype float32"),
    Mistake("hard-coded 'cuda'", _batch_hard_coded_cuda,
            hint="you copied to 'cuda', not to the device you were given (torch.device('cuda:0'), "
                 "'cuda:1'): use .to(device, non_blocking=True)"),
    Mistake(".cuda()", _batch_cuda_method,
            hint="x.cuda() copies to the GPU whatever device was asked (and fails without CUDA): "
                 "move to the device you are given, x.to(device)"),
]


def _batch_cases() -> list[Case]:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 50_000, (3, 5), generator=g)
    y = torch.roll(x, -1, dims=1)
    x32 = torch.randint(0, 65, (2, 7), generator=g, dtype=torch.int32)  # ids from a uint16 file
    y32 = torch.roll(x32, -1, dims=1)
    return [
        Case("batch_to(x, y, 'cpu') with x, y (3, 5) int64", x, y, "cpu"),
        Case("batch_to(x, y, torch.device('meta')) (stands in for a non-CUDA accelerator, e.g. "
             "MPS)", x, y, torch.device("meta")),
        Case("batch_to(x, y, 'cuda') (CUDA recorded, not run)", x, y, "cuda"),
        Case("batch_to(x, y, torch.device('cuda:0')) with x, y (2, 7) int32 (CUDA recorded, not "
             "run)", x32, y32, torch.device("cuda:0")),
        Case("batch_to(x, y, 'cpu') with x, y (2, 7) int32", x32, y32, "cpu"),
    ]


@check("batch_to", mistakes=BATCH_TO)
def check_batch_to(batch_to: Callable[..., Any]) -> None:
    """Exercise 2: move ``(x, y)`` to ``device``; pinned + ``non_blocking`` only on CUDA."""
    compare(batch_to, _reference_batch_to, _batch_cases(), name="batch_to", run=_batch_run,
            mistakes=BATCH_TO)


# ---- exercise 3: time_fn ---------------------------------------------------------------------


class _Clock:
    """A scripted clock. ``fn()`` takes the next duration; on CUDA it only queues that work (the
    clock moves by 1 µs) and ``torch.cuda.synchronize()`` waits for what is queued."""

    def __init__(self, durations: list[float], cuda: bool) -> None:
        self.now = 1000.0
        self.pending = 0.0
        self.durations = list(durations)
        self.cuda = cuda
        self.events: list[str] = []
        self.reads = 0

    def read(self) -> float:
        self.reads += 1
        return self.now

    def fn(self) -> None:
        d = self.durations[min(self.events.count("fn"), len(self.durations) - 1)]
        self.events.append("fn")
        if self.cuda:
            self.now += 1e-6
            self.pending += d
        else:
            self.now += d

    def sync(self, *args: Any, **kwargs: Any) -> None:
        self.events.append("sync")
        self.now += self.pending
        self.pending = 0.0

    def mps_sync(self, *args: Any, **kwargs: Any) -> None:
        """``torch.mps.synchronize()``: allowed (the work is already counted); no Mac needed."""
        self.events.append("mps sync")

    @contextlib.contextmanager
    def active(self) -> Iterator["_Clock"]:
        ns = lambda: int(self.read() * 1e9)  # noqa: E731
        patches = [(time, "perf_counter", self.read), (time, "time", self.read),
                   (time, "monotonic", self.read), (time, "perf_counter_ns", ns),
                   (time, "monotonic_ns", ns), (time, "time_ns", ns),
                   (timeit, "default_timer", self.read), (torch.cuda, "synchronize", self.sync)]
        if hasattr(torch, "mps"):
            patches.append((torch.mps, "synchronize", self.mps_sync))
        # the machine each case stands for, whatever runs the check: one with CUDA for a CUDA
        # device, a laptop without it for the others (so `if torch.cuda.is_available():` before
        # synchronizing times right, as it does there, and an unguarded synchronize is seen)
        patches.append((torch.cuda, "is_available", lambda: self.cuda))
        saved = [(obj, name, getattr(obj, name)) for obj, name, _ in patches]
        try:
            for obj, name, new in patches:
                setattr(obj, name, new)
            yield self
        finally:
            for obj, name, old in saved:
                setattr(obj, name, old)


def _time_run(impl: Any, case: Case) -> dict[str, Any]:
    (device,), kwargs = case.fresh()
    cuda = torch.device(device).type == "cuda"
    clock = _Clock(case_durations(), cuda)

    def fn() -> None:
        clock.fn()

    with clock.active():
        returned = impl(fn, device, **kwargs)
    seconds = as_float(returned, "time_fn(...)")
    if clock.reads == 0 and clock.events:
        raise CheckFailed("time_fn never read the clock through time.perf_counter(): call "
                          "time.perf_counter() (not a perf_counter imported by name) before and "
                          f"after each timed call; the check scripts that clock (on {case.label})")
    calls = [i for i, e in enumerate(clock.events) if e == "fn"]
    obs: dict[str, Any] = {"seconds": seconds, "calls of fn": len(calls)}
    if cuda:
        warmup = kwargs.get("warmup", 2)
        ends = calls[1:] + [len(clock.events)]
        obs["synchronized after call"] = {
            i + 1: "sync" in clock.events[calls[i] + 1:ends[i]]
            for i in range(max(0, warmup - 1), len(calls))}
    else:
        obs["torch.cuda.synchronize() calls"] = clock.events.count("sync")
    return obs


def case_durations() -> list[float]:
    """fn's calls: a slow first call (compilation, caches, CUDA start-up), then calls whose mean
    is not their median."""
    return [0.6, 0.02, 0.010, 0.013, 0.050, 0.011, 0.012, 0.016, 0.009, 0.014, 0.030, 0.015,
            0.017]


def _reference_time_fn(fn, device, warmup=2, repeats=5):
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


def _timer(*, warmup_used=True, median=True, scale=1.0, sync="cuda", sync_after_warmup=True,
           fixed=None, time_warmup=False):
    """A time_fn with one thing done wrong (as the keyword arguments say)."""

    def time_fn(fn, device, warmup=2, repeats=5):
        if fixed:
            warmup, repeats = fixed
        if sync == "string":
            is_cuda = device == "cuda"
        elif sync == "not cpu":
            is_cuda = str(device) != "cpu"
        else:
            is_cuda = torch.device(device).type == "cuda"
        do_sync = {"cuda": is_cuda, "string": is_cuda, "not cpu": is_cuda, "always": True,
                   "never": False, "end": False}[sync]
        times = []
        if warmup_used and not time_warmup:
            for _ in range(warmup):
                fn()
            if do_sync and sync_after_warmup:
                torch.cuda.synchronize()
        n = repeats + (warmup if time_warmup else 0)
        if sync == "end":
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            if is_cuda:
                torch.cuda.synchronize()
            return (time.perf_counter() - t0) / n * scale
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            if do_sync:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        value = sorted(times)[len(times) // 2] if median else sum(times) / len(times)
        return value * scale

    return time_fn


def _fastest(fn, device, warmup=2, repeats=5):
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
    return min(times)


def _total_time(fn, device, warmup=2, repeats=5):
    is_cuda = torch.device(device).type == "cuda"
    for _ in range(warmup):
        fn()
    if is_cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
        if is_cuda:
            torch.cuda.synchronize()
    return time.perf_counter() - t0                # the total, not the time of one call


def _sync_before_fn(fn, device, warmup=2, repeats=5):
    is_cuda = torch.device(device).type == "cuda"
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        if is_cuda:
            torch.cuda.synchronize()               # waits for the previous call, not this one
        fn()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def _clock_before_sync(fn, device, warmup=2, repeats=5):
    is_cuda = torch.device(device).type == "cuda"
    for _ in range(warmup):
        fn()
    if is_cuda:
        torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        t1 = time.perf_counter()                   # read while fn's kernels are still queued
        if is_cuda:
            torch.cuda.synchronize()
        times.append(t1 - t0)
    return sorted(times)[len(times) // 2]


def _all_times(fn, device, warmup=2, repeats=5):
    return [_reference_time_fn(fn, device, warmup, 1) for _ in range(repeats)]


TIME_FN = [
    Mistake("device == 'cuda'", _timer(sync="string"),
            hint="device may be a torch.device or 'cuda:0': test torch.device(device).type == "
                 "'cuda', not device == 'cuda'"),
    Mistake("no warmup", _timer(warmup_used=False),
            hint="fn ran only `repeats` times: run it `warmup` times first, untimed, so that "
                 "one-off start-up costs are not measured"),
    Mistake("warmup timed", _timer(time_warmup=True, median=False),
            hint="the slow first call was timed: run the warmup calls before starting the clock, "
                 "and return the median of the timed calls"),
    Mistake("mean", _timer(median=False),
            hint="that is the mean of the timings (or one clock around the whole loop, divided by "
                 "repeats): time each call on its own and return the median "
                 "(sorted(times)[len(times) // 2]), which ignores the odd slow repeat"),
    Mistake("minimum", _fastest,
            hint="that is the fastest timing; return the median (sorted(times)[len(times) // 2]), "
                 "the typical call"),
    Mistake("milliseconds", _timer(scale=1000.0),
            hint="that looks like milliseconds; return seconds (time.perf_counter() differences "
                 "are in seconds)"),
    Mistake("syncs CUDA on MPS", _timer(sync="not cpu"),
            hint="you called torch.cuda.synchronize() for a device that is not CUDA (mps), which "
                 "fails on a Mac: synchronize only when torch.device(device).type == 'cuda'"),
    Mistake("syncs on the CPU", _timer(sync="always"),
            hint="you call torch.cuda.synchronize() for a CPU device; that fails on a machine "
                 "without CUDA. Synchronize only when torch.device(device).type == 'cuda'"),
    Mistake("never syncs", _timer(sync="never"),
            hint="on CUDA, fn() returns as soon as its kernels are queued: call "
                 "torch.cuda.synchronize() after each timed call, before reading the clock"),
    Mistake("sync once at the end", _timer(sync="end"), expect="time each call on its own"),
    Mistake("no sync after warmup", _timer(sync_after_warmup=False),
            hint="synchronize after the warmup too, before the first timed call starts the clock: "
                 "queued warmup work would otherwise be counted in it"),
    Mistake("hard-coded counts", _timer(fixed=(2, 5)),
            hint="use the warmup and repeats arguments, not fixed numbers"),
    Mistake("all timings", _all_times, expect="one number"),
    Mistake("total time", _total_time,
            hint="that is the time of all the repeats together; return the time of ONE call: time "
                 "each call on its own and return the median (sorted(times)[len(times) // 2])"),
    Mistake("clock read before synchronize", _clock_before_sync,
            hint="the clock is read before torch.cuda.synchronize(), while fn's kernels are still "
                 "queued: call fn(), then synchronize, then read the clock"),
    Mistake("synchronize before fn()", _sync_before_fn,
            hint="torch.cuda.synchronize() runs before fn(), so the clock stops while fn's kernels "
                 "are still queued: call fn(), then synchronize, then read the clock"),
]


def _time_cases() -> list[Case]:
    return [
        Case("time_fn(fn, 'cpu', warmup=2, repeats=5) where fn's first call takes 0.6 s", "cpu",
             warmup=2, repeats=5),
        Case("time_fn(fn, torch.device('cpu'), warmup=3, repeats=7)", torch.device("cpu"),
             warmup=3, repeats=7),
        Case("time_fn(fn, 'cpu') (the default warmup and repeats)", "cpu"),
        Case("time_fn(fn, 'cuda', warmup=1, repeats=3) (CUDA stood in for)", "cuda", warmup=1,
             repeats=3),
        Case("time_fn(fn, torch.device('cuda:0'), warmup=2, repeats=5) (CUDA stood in for)",
             torch.device("cuda:0"), warmup=2, repeats=5),
        Case("time_fn(fn, 'cuda', warmup=0, repeats=5) (CUDA stood in for)", "cuda", warmup=0,
             repeats=5),
        Case("time_fn(fn, torch.device('mps'), warmup=1, repeats=3) (no CUDA call; no Mac "
             "needed)", torch.device("mps"), warmup=1, repeats=3),
    ]


@check("time_fn", mistakes=TIME_FN)
def check_time_fn(time_fn: Callable[..., Any]) -> None:
    """Exercise 3: median seconds of ``fn()`` after warmup, synchronizing on CUDA."""
    compare(time_fn, _reference_time_fn, _time_cases(), name="time_fn", run=_time_run,
            mistakes=TIME_FN, atol=1e-9, rtol=1e-6)
