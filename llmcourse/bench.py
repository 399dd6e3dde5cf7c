"""Small, honest benchmarks: matmul peak, training throughput and MFU, generation speed.

These back the ``llmcourse bench`` command and the scripts in ``benchmarks/``. They measure; they
assert nothing. Every figure quoted in the docs comes from one of them.

Example:
    >>> peak = matmul_peak_flops(n=256, dtype=torch.float32, repeats=3)  # doctest: +SKIP
    >>> print(f"{peak / 1e9:.0f} GFLOP/s")                                # doctest: +SKIP
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch


def _sync(device: torch.device) -> None:
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
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def matmul_peak_flops(n: int = 1024, dtype: torch.dtype = torch.float32,
                      device: torch.device | str = "cpu", repeats: int = 5) -> float:
    """Measured matrix-multiply throughput (FLOP/s) for ``(n, n) @ (n, n)`` in ``dtype``.

    A product of two n x n matrices costs 2 n^3 floating point operations. The result is the
    reference "peak" against which model FLOP utilisation (MFU) is computed, so MFU figures
    here are relative to what this machine's matmul really reaches, not to a datasheet.
    """
    device = torch.device(device)
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    seconds = time_it(lambda: a @ b, device=device, warmup=2, repeats=repeats)
    return 2 * n**3 / seconds


@dataclass
class ThroughputResult:
    """What :func:`train_throughput` measured."""

    ms_per_iter: float
    tokens_per_s: float
    flops_per_s: float
    mfu: float | None

    def as_row(self) -> str:
        mfu = "n/a" if self.mfu is None else f"{100 * self.mfu:.1f}%"
        return (f"{self.ms_per_iter:8.1f} ms/iter  {self.tokens_per_s:10,.0f} tok/s  "
                f"{self.flops_per_s / 1e9:7.1f} GFLOP/s  MFU {mfu}")


def train_throughput(step: Callable[[], object], tokens_per_iter: int, flops_per_token: float,
                     peak_flops: float | None, device: torch.device | str = "cpu",
                     warmup: int = 3, iters: int = 20) -> ThroughputResult:
    """Time a full training step (forward, backward, optimizer) and derive tokens/s and MFU.

    ``flops_per_token`` is the model's training cost per token (forward + backward, about
    6 x parameters plus the attention term); MFU = achieved FLOP/s / ``peak_flops``.
    """
    device = torch.device(device)
    for _ in range(warmup):
        step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    _sync(device)
    dt = (time.perf_counter() - t0) / iters
    tokens_per_s = tokens_per_iter / dt
    flops_per_s = tokens_per_s * flops_per_token
    mfu = None if not peak_flops else flops_per_s / peak_flops
    return ThroughputResult(1000 * dt, tokens_per_s, flops_per_s, mfu)
