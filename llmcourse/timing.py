"""Timing code on a device: wait for the device, then read the clock.

CUDA and MPS run kernels asynchronously: a call returns as soon as the work is queued, so a
clock read right after it measures the queueing, not the work. :func:`sync` waits until the
device is idle; :func:`time_it` brackets every timed call with it and returns the median.
:func:`time_copy` times a copy from host memory to a device with it.

This module needs nothing else of the package, so the device code and the benchmarks can
both use it.

Example:
    >>> import torch
    >>> a = torch.randn(64, 64)
    >>> time_it(lambda: a @ a, "cpu", warmup=1, repeats=3) > 0
    True
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch

__all__ = ["sync", "time_it", "CopyTiming", "time_copy"]


def sync(device: torch.device | str) -> None:
    """Wait until ``device`` has finished the work queued on it (a no-op on the CPU)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":  # pragma: no cover - no MPS in CI
        torch.mps.synchronize()


def time_it(fn: Callable[[], object], device: torch.device | str = "cpu", warmup: int = 2,
            repeats: int = 5) -> float:
    """Median wall time of ``fn()`` in seconds, after ``warmup`` untimed calls."""
    device = torch.device(device)
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


@dataclass(frozen=True)
class CopyTiming:
    """One measured copy of ``nbytes`` from host memory to ``device`` (median of repeats)."""

    device: str
    nbytes: int
    pinned: bool
    seconds: float

    @property
    def gb_per_s(self) -> float:
        """Bandwidth in GB/s (1e9 bytes per second)."""
        return self.nbytes / self.seconds / 1e9

    def __str__(self) -> str:
        memory = "pinned" if self.pinned else "pageable"
        return (f"{self.nbytes / 2**20:.0f} MiB {memory} host -> {self.device}: "
                f"{self.seconds * 1e3:.2f} ms, {self.gb_per_s:.1f} GB/s")


def time_copy(nbytes: int, device: torch.device, pinned: bool, repeats: int) -> CopyTiming:
    """Time copying ``nbytes`` from a CPU tensor (page-locked if ``pinned``) to ``device``.

    The copy is ``non_blocking`` from pinned memory. :func:`llmcourse.device.time_host_to_device`
    checks the arguments and picks the defaults.
    """
    src = torch.empty(nbytes, dtype=torch.uint8, pin_memory=pinned).fill_(1)  # (nbytes,)
    dst = torch.empty(nbytes, dtype=torch.uint8, device=device)
    seconds = time_it(lambda: dst.copy_(src, non_blocking=pinned), device=device, warmup=1,
                      repeats=repeats)
    return CopyTiming(str(device), nbytes, pinned, seconds)
