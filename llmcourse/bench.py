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

from llmcourse.device import pick_device, pick_dtype
from llmcourse.flops import flops_per_token, mfu
from llmcourse.flops import peak_flops as datasheet_peak_flops
from llmcourse.timing import sync, time_it

__all__ = ["time_it", "matmul_peak_flops", "matmul_dtypes", "ThroughputResult", "train_throughput",
           "bench_train_preset", "bench_generate"]


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


def matmul_dtypes(device: torch.device | str,
                  requested: str | None = None) -> tuple[torch.dtype, ...]:
    """The dtypes ``llmcourse bench matmul`` times on ``device``.

    Without ``requested``: float32 and the 16-bit type training would use there (bfloat16 on
    the CPU and on CUDA from compute capability 8.0, float16 below it and on MPS). With it:
    that one type, as :func:`~llmcourse.device.pick_dtype` resolves it (``"auto"`` included),
    which also refuses what does not work (float16 on the CPU, bfloat16 below 8.0).

    >>> matmul_dtypes("cpu")
    (torch.float32, torch.bfloat16)
    >>> matmul_dtypes("cpu", "bf16")
    (torch.bfloat16,)
    """
    device = torch.device(device)
    if requested is None:
        if device.type == "cpu":
            return (torch.float32, torch.bfloat16)
        half = pick_dtype(device, requested="auto").autocast_dtype
        return (torch.float32, half or torch.float16)
    return (pick_dtype(device, requested=requested).autocast_dtype or torch.float32,)


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
    sync(device)
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    sync(device)
    dt = (time.perf_counter() - t0) / iters
    tokens_per_s = tokens_per_iter / dt
    flops_per_s = tokens_per_s * flops_per_token
    return ThroughputResult(1000 * dt, tokens_per_s, flops_per_s,
                            mfu(flops_per_token, tokens_per_s, peak_flops))


def bench_train_preset(preset_name: str = "shakespeare-char-cpu", iters: int = 20,
                       dtype: str = "float32", compile: bool = False,
                       vocab_size: int = 65) -> str:
    """Time training steps of a preset's model on random tokens; a one-line report.

    Random token ids cost exactly what real ones cost, so no data needs preparing. MFU is
    reported against the measured matmul peak of the CPU, or the datasheet peak on a known GPU.
    """
    from llmcourse.model import GPT
    from llmcourse.presets import get_preset
    from llmcourse.runs import build_configs

    preset = get_preset(preset_name)
    model_cfg, train_cfg = build_configs(preset, vocab_size)
    device = pick_device("auto")
    precision = pick_dtype(device, requested=dtype)
    torch.manual_seed(0)
    model = GPT(model_cfg).to(device)
    fwd = torch.compile(model) if compile else model
    opt = torch.optim.AdamW(model.parameters(), lr=train_cfg.learning_rate)
    B, T = train_cfg.batch_size, model_cfg.block_size
    x = torch.randint(0, model_cfg.vocab_size, (B, T), device=device)
    y = torch.randint(0, model_cfg.vocab_size, (B, T), device=device)
    scaler = precision.make_grad_scaler()

    def step() -> None:
        with precision.autocast():
            _, loss = fwd(x, y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)

    if device.type == "cpu":
        peak = matmul_peak_flops(dtype=torch.bfloat16 if precision.dtype_name == "bfloat16"
                                 else torch.float32)
    elif device.type == "cuda":
        peak = datasheet_peak_flops(torch.cuda.get_device_name(device), precision.dtype_name)
    else:  # MPS: no data sheet to compare with, so no MFU
        peak = None
    res = train_throughput(step, B * T, flops_per_token(model_cfg), peak, device=device,
                           iters=iters)
    return (f"{preset_name} on {device} ({precision.dtype_name}{', compiled' if compile else ''}): "
            + res.as_row())


def bench_generate(max_new_tokens: int = 200, vocab_size: int = 65) -> str:
    """ms per generated token with and without the KV cache for the 6/6/384 block-256 model."""
    from llmcourse.generate import generate
    from llmcourse.model import GPT, GPTConfig

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=vocab_size, block_size=256, n_layer=6, n_head=6,
                          n_embd=384, dropout=0.0)).eval()
    idx = torch.zeros((1, 1), dtype=torch.long)
    rows = []
    results = {}
    for use_cache in (True, False):
        t = time_it(lambda: generate(model, idx, max_new_tokens, temperature=0.0,
                                     use_cache=use_cache), warmup=1, repeats=1)
        results[use_cache] = t
        rows.append(f"{'with' if use_cache else 'without'} KV cache: "
                    f"{1000 * t / max_new_tokens:.2f} ms/token")
    rows.append(f"speed-up: {results[False] / results[True]:.1f}x")
    return "\n".join(rows)
