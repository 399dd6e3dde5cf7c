"""Checks for day 14, "Devices".

Each ``check_*`` function runs the learner's code, prints one line - a pass, a specific hint, or
"not done yet" - and returns a ``Verdict``. None of them raises, and none needs a GPU: where the
CUDA path is checked on a machine without one, the check stands in for CUDA by recording what
the learner's code asks of it (``pin_memory``, ``non_blocking``, ``torch.cuda.synchronize``)
without running it. The references are the package's: :func:`llmcourse.device.pick_device`,
:func:`llmcourse.data.get_batch` (its CUDA copy) and :func:`llmcourse.bench.time_it`.

Example::

    >>> from llmcourse.checks import day14
    >>> from llmcourse.device import _resolve_device
    >>> ok = day14.check_pick_device(_resolve_device)
    ✅ pick_device: passed
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Callable, Iterator

import torch

from llmcourse.checks._core import CheckFailed, as_pair, as_tensor, call, check

__all__ = ["check_pick_device", "check_batch_to", "check_time_fn"]


def _as_device(value: Any, shown: str) -> torch.device:
    if value is None:
        raise CheckFailed(f"{shown} returned None; did you forget the `return`?")
    try:
        return torch.device(value)
    except (TypeError, RuntimeError) as exc:
        raise CheckFailed(f"{shown} should return a torch.device or a device string like 'cuda', "
                          f"got {value!r}") from exc


@check("pick_device")
def check_pick_device(pick_device: Callable[..., Any]) -> None:
    """Exercise 1: ``pick_device(preference, has_cuda, has_mps)``: CUDA, then MPS, then the CPU."""
    def run(pref: str, has_cuda: bool, has_mps: bool) -> torch.device:
        shown = f"pick_device({pref!r}, has_cuda={has_cuda}, has_mps={has_mps})"
        return _as_device(call(pick_device, pref, has_cuda, has_mps, shown=shown), shown)

    got = run("auto", True, True)
    if got.type == "mps":
        raise CheckFailed("with both a CUDA GPU and MPS available you chose MPS; CUDA comes first "
                          "(faster kernels, everything supported)")
    if got.type != "cuda":
        raise CheckFailed(f"pick_device('auto', has_cuda=True, has_mps=True) gave {got}; a visible "
                          "CUDA GPU should win")
    got = run("auto", False, True)
    if got.type != "mps":
        raise CheckFailed(f"pick_device('auto', has_cuda=False, has_mps=True) gave {got}; without "
                          "CUDA, Apple's MPS backend comes next")
    got = run("auto", False, False)
    if got.type != "cpu":
        raise CheckFailed(f"pick_device('auto', has_cuda=False, has_mps=False) gave {got}; with no "
                          "GPU at all the answer is the CPU")
    got = run("cpu", True, True)
    if got.type != "cpu":
        raise CheckFailed(f"pick_device('cpu', has_cuda=True, ...) gave {got}: an explicit request "
                          "must be obeyed, not replaced by the best device")
    got = run("cuda:1", True, False)
    if got != torch.device("cuda:1"):
        raise CheckFailed(f"pick_device('cuda:1', has_cuda=True, ...) gave {got}; keep the GPU "
                          "index the user asked for (torch.device('cuda:1'))")
    for pref, has_cuda, has_mps in (("cuda", False, True), ("mps", True, False)):
        shown = f"pick_device({pref!r}, has_cuda={has_cuda}, has_mps={has_mps})"
        try:
            out = pick_device(pref, has_cuda, has_mps)
        except NotImplementedError as exc:
            raise CheckFailed(f"{shown} raised NotImplementedError, which means 'not written "
                              "yet'; raise a ValueError saying the device is not available") from exc
        except Exception:  # noqa: BLE001 - any clear error is the right answer here
            continue
        raise CheckFailed(f"{shown} returned {out!r} instead of raising an error: a silent fallback "
                          f"hides a missing {pref.upper()} (a Colab notebook without a GPU runtime "
                          "would train many times slower without a word); raise a ValueError")


class _Recorder:
    """Stand in for a CUDA device: record pin_memory/.to/.cuda calls on tensors, run nothing."""

    def __init__(self, fake_cuda: bool, forbid_pin: bool = False) -> None:
        self.fake_cuda = fake_cuda
        self.forbid_pin = forbid_pin
        self.pinned: list[int] = []
        self.moves: list[tuple[int, str, bool]] = []

    @contextlib.contextmanager
    def active(self) -> Iterator["_Recorder"]:
        real_to, real_pin, real_cuda = torch.Tensor.to, torch.Tensor.pin_memory, torch.Tensor.cuda
        rec = self

        def pin_memory(t: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
            rec.pinned.append(id(t))
            if rec.forbid_pin:
                raise CheckFailed("you pinned memory for a non-CUDA target: pinning only helps "
                                  "copies to CUDA (and fails on machines without CUDA); pin only "
                                  "when device.type == 'cuda'")
            if rec.fake_cuda:
                return t  # pretend: no CUDA allocator here
            return real_pin(t, *args, **kwargs)

        def to(t: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
            target = kwargs.get("device", args[0] if args else None)
            non_blocking = bool(kwargs.get("non_blocking", args[1] if len(args) > 1 and
                                           isinstance(args[1], bool) else False))
            if isinstance(target, (str, torch.device)) and torch.device(target).type == "cuda":
                rec.moves.append((id(t), str(target), non_blocking))
                if rec.fake_cuda:
                    return t
            return real_to(t, *args, **kwargs)

        def cuda(t: torch.Tensor, device: Any = None, non_blocking: bool = False, **kw: Any) -> Any:
            rec.moves.append((id(t), "cuda", bool(non_blocking)))
            if rec.fake_cuda:
                return t
            return real_cuda(t, device=device, non_blocking=non_blocking, **kw)

        torch.Tensor.to, torch.Tensor.pin_memory, torch.Tensor.cuda = to, pin_memory, cuda  # type: ignore[method-assign]
        try:
            yield self
        finally:
            torch.Tensor.to, torch.Tensor.pin_memory, torch.Tensor.cuda = real_to, real_pin, real_cuda  # type: ignore[method-assign]


def _batch(B: int = 3, T: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 50_000, (B, T), generator=g)
    return x, torch.roll(x, -1, dims=1)


@check("batch_to")
def check_batch_to(batch_to: Callable[..., Any]) -> None:
    """Exercise 2: move ``(x, y)`` to ``device``; pinned + ``non_blocking`` only on CUDA."""
    x, y = _batch()
    # The CPU: nothing to pin, nothing to copy.
    rec = _Recorder(fake_cuda=False, forbid_pin=True)
    with rec.active():
        out = call(batch_to, x, y, "cpu", shown="batch_to(x, y, 'cpu')")
    bx, by = as_pair(out, "batch_to(x, y, 'cpu')")
    bx = as_tensor(bx, "x from batch_to(x, y, 'cpu')", shape=(3, 5), dtype=torch.int64)
    by = as_tensor(by, "y from batch_to(x, y, 'cpu')", shape=(3, 5), dtype=torch.int64)
    if not (torch.equal(bx, x) and torch.equal(by, y)):
        if torch.equal(bx, y) and torch.equal(by, x):
            raise CheckFailed("x and y come back swapped; return (x, y) in that order")
        raise CheckFailed("batch_to(x, y, 'cpu') changed the values; only the device may change")
    # Another device (the 'meta' device stands in for any non-CUDA accelerator, e.g. MPS).
    rec = _Recorder(fake_cuda=False, forbid_pin=True)
    with rec.active():
        out = call(batch_to, x, y, torch.device("meta"), shown="batch_to(x, y, torch.device('meta'))")
    mx, my = as_pair(out, "batch_to(x, y, 'meta')")
    for name, t in (("x", mx), ("y", my)):
        t = as_tensor(t, f"{name} from batch_to(x, y, 'meta')")
        if t.device.type != "meta":
            raise CheckFailed(f"{name} is still on {t.device} after batch_to(x, y, 'meta'): "
                              f"tensor.to(device) returns a NEW tensor; return that one "
                              f"({name} = {name}.to(device))")
    # CUDA: pinned source, asynchronous copy. Without a GPU, recorded instead of run.
    has_cuda = torch.cuda.is_available()
    rec = _Recorder(fake_cuda=not has_cuda)
    with rec.active():
        out = call(batch_to, x, y, torch.device("cuda"), shown="batch_to(x, y, torch.device('cuda'))")
    cx, cy = as_pair(out, "batch_to(x, y, 'cuda')")
    if len(rec.moves) < 2:
        raise CheckFailed("batch_to(x, y, 'cuda') did not copy both tensors to the GPU; use "
                          "t.to(device, non_blocking=True) on each")
    if not all(nb for _, _, nb in rec.moves):
        raise CheckFailed("the copies to CUDA are blocking: pass non_blocking=True to .to(...) so "
                          "the copy overlaps with work already queued on the GPU")
    if len(rec.pinned) < 2:
        raise CheckFailed("non_blocking copies need a pinned (page-locked) source: call "
                          "t.pin_memory() before .to(device, non_blocking=True) when the target "
                          "is CUDA")
    if has_cuda:
        for name, t, ref in (("x", cx, x), ("y", cy, y)):
            t = as_tensor(t, f"{name} from batch_to(x, y, 'cuda')")
            if t.device.type != "cuda":
                raise CheckFailed(f"{name} is on {t.device}, not the GPU: return the moved tensor")
            if not torch.equal(t.cpu(), ref):
                raise CheckFailed(f"{name} changed its values on the way to the GPU")


@check("time_fn")
def check_time_fn(time_fn: Callable[..., Any]) -> None:
    """Exercise 3: median seconds of ``fn()`` after warmup, synchronizing on CUDA."""
    # The CPU: there is nothing to synchronize (torch.cuda.synchronize fails without CUDA).
    calls = {"n": 0}

    def fast() -> None:
        calls["n"] += 1

    shown = "time_fn(fn, 'cpu', warmup=2, repeats=5)"
    real_sync = torch.cuda.synchronize
    events: list[str] = []

    def cpu_sync(*args: Any, **kwargs: Any) -> None:
        events.append("sync")  # recorded, not run: without CUDA it would raise

    torch.cuda.synchronize = cpu_sync  # type: ignore[assignment]
    try:
        got = call(time_fn, fast, "cpu", warmup=2, repeats=5, shown=shown)
    finally:
        torch.cuda.synchronize = real_sync  # type: ignore[assignment]
    if events:
        raise CheckFailed("you call torch.cuda.synchronize() for a CPU device; that fails on a "
                          "machine without CUDA. Synchronize only when device is CUDA")
    seconds = _seconds(got, shown)
    if calls["n"] != 7:
        raise CheckFailed(f"with warmup=2 and repeats=5, fn should run 7 times; it ran "
                          f"{calls['n']} times")
    if seconds > 0.05:
        raise CheckFailed(f"{shown} returned {seconds:.3f} s for a function that does nothing; "
                          "time one call of fn per repeat, in seconds")

    # A first call that is slow (compilation, caches, CUDA start-up): warmup must hide it.
    state = {"n": 0}

    def slow_first() -> None:
        state["n"] += 1
        time.sleep(0.6 if state["n"] == 1 else 0.01)

    shown = "time_fn(fn, 'cpu', warmup=1, repeats=5) where fn's first call takes 0.6 s"
    seconds = _seconds(call(time_fn, slow_first, "cpu", warmup=1, repeats=5, shown=shown), shown)
    if state["n"] == 5:
        raise CheckFailed("fn ran only `repeats` times: run it `warmup` times first, untimed, so "
                          "that one-off start-up costs are not measured")
    if 5 <= seconds <= 20:
        raise CheckFailed(f"{shown} returned {seconds:.3f} for calls of 0.01 s: that looks like "
                          "milliseconds; return seconds")
    if seconds > 0.1:
        raise CheckFailed(f"{shown} returned {seconds:.3f} s: the slow first call was timed. Run "
                          "the warmup calls before starting the clock")
    if seconds < 0.005:
        raise CheckFailed(f"{shown} returned {seconds:.4f} s for calls of 0.01 s each; time each "
                          "call (clock before, clock after) and return seconds")

    # CUDA: kernels are queued, not finished, when fn returns: synchronize before reading the clock.
    events = []

    def queued() -> None:
        events.append("fn")

    def fake_sync(*args: Any, **kwargs: Any) -> None:
        events.append("sync")

    torch.cuda.synchronize = fake_sync  # type: ignore[assignment]
    try:
        shown = "time_fn(fn, torch.device('cuda'), warmup=1, repeats=3)"
        _seconds(call(time_fn, queued, torch.device("cuda"), warmup=1, repeats=3, shown=shown), shown)
    finally:
        torch.cuda.synchronize = real_sync  # type: ignore[assignment]
    fn_at = [i for i, e in enumerate(events) if e == "fn"]
    if "sync" not in events:
        raise CheckFailed("on CUDA, fn() returns as soon as its kernels are queued: call "
                          "torch.cuda.synchronize() after each timed call, before reading the clock")
    if len(fn_at) != 4:
        raise CheckFailed(f"with warmup=1 and repeats=3, fn should run 4 times; it ran {len(fn_at)}")
    ends = fn_at[1:] + [len(events)]
    # after each timed call (index 1..3), a sync must come before the next call or the end
    if any("sync" not in events[fn_at[j] + 1:ends[j]] for j in range(1, 4)):
        raise CheckFailed("synchronize after EVERY timed call (before reading the clock), not only "
                          "once at the end: otherwise each timing is only the launch of the work")
    if events[fn_at[1] - 1] != "sync":
        raise CheckFailed("synchronize after the warmup too, before the first timed call starts the "
                          "clock: queued warmup work would otherwise be counted in it")


def _seconds(value: Any, shown: str) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if value is None:
        raise CheckFailed(f"{shown} returned None; did you forget the `return`?")
    if isinstance(value, (list, tuple)):
        raise CheckFailed(f"{shown} returned {len(value)} timings; return one number, their median")
    try:
        seconds = float(value)
    except (TypeError, ValueError) as exc:
        raise CheckFailed(f"{shown} should return seconds as a float, got {type(value).__name__}") from exc
    if seconds < 0:
        raise CheckFailed(f"{shown} returned a negative time ({seconds}); subtract start from end")
    return seconds
