"""Context and timing helpers of ``benchmarks/gpu_acceptance.py`` (see ``gpu_acceptance_steps``).

``Ctx`` says where the plan runs and picks real or tiny sizes; :func:`timed_loop` times a training
closure; :func:`trainer_run` runs the package's Trainer at a preset's size, as ``llmcourse train``.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from llmcourse.data import get_batch
from llmcourse.device import peak_flops, pick_dtype
from llmcourse.model import GPT, mfu
from llmcourse.presets import get_preset
from llmcourse.runs import build_configs
from llmcourse.train import Trainer

SHAKESPEARE = dict(n_layer=6, n_head=6, n_embd=384, block_size=256)   # the shakespeare-char preset
TINY = dict(n_layer=2, n_head=2, n_embd=32, block_size=32)           # --cpu-smoke's stand-in
# The T4 stand-in's cap on PyTorch's allocator, in GiB. A T4 has 15,843,721,216 bytes (14.76 GiB)
# and its CUDA context and cuBLAS workspace (a few hundred MiB) sit outside the allocator, so a
# run that fits under this cap fits on a Colab T4.
T4_MEMORY_GB = 14.25
# Float32 peaks of the CUDA cores alone (NVIDIA data sheets), used when TF32 is off; the first
# name a card's name contains wins (so "H100 PCIe" before "H100").
PLAIN_FP32 = (("H100 PCIe", 51e12), ("H100", 67e12), ("H200", 67e12), ("A100", 19.5e12), ("T4", 8.1e12))


@dataclass
class Ctx:
    """Where and how the plan runs."""

    device: torch.device
    smoke: bool
    t4: bool
    tmp: Path

    def pick(self, real: Any, tiny: Any) -> Any:
        return tiny if self.smoke else real

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def dtype(self) -> str:
        """The trainer's ``dtype``: forced float16 (a T4's plan) in --t4 mode, else auto."""
        return "float16" if self.t4 else "auto"

    def plan(self, requested: str = "auto") -> Any:
        cap = (7, 5) if self.t4 and self.cuda else None
        return pick_dtype(self.device, capability=cap, requested=requested)

    def peak(self, dtype_name: str) -> float | None:
        """The card's data-sheet peak at ``dtype_name``; float32 without TF32 (the T4 stand-in,
        as a T4 has no TF32) is the CUDA cores' own peak, not the TF32 tensor cores' one."""
        if not self.cuda:
            return None
        name = torch.cuda.get_device_name(self.device)
        if dtype_name == "float32" and not torch.backends.cuda.matmul.allow_tf32:
            return next((flops for key, flops in PLAIN_FP32 if key in name), None)
        return peak_flops(name, dtype_name)

    def ids(self, vocab: int, n: int = 200_000) -> torch.Tensor:
        """Synthetic token ids: a step costs the same on them as on real text."""
        return torch.randint(0, vocab, (n,), generator=torch.Generator().manual_seed(0))


def sync(ctx: Ctx) -> None:
    if ctx.cuda:
        torch.cuda.synchronize(ctx.device)


def timed_loop(ctx: Ctx, step: Callable[[], Any], tokens: int, fpt: float, dtype_name: str,
               iters: int) -> dict[str, Any]:
    """Run ``step`` ``iters + 1`` times; the first call (compiles, warms up) is timed apart."""
    t0 = time.perf_counter()
    step()
    sync(ctx)
    first = time.perf_counter() - t0
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        step()
        sync(ctx)
        times.append(time.perf_counter() - t0)
    dt = statistics.median(times)
    tok_s = tokens / dt
    return {"tokens_per_s": tok_s, "ms_per_iter": 1000 * dt, "compile_s": max(0.0, first - dt),
            "mfu": mfu(fpt, tok_s, ctx.peak(dtype_name)), "precision": dtype_name}


def trainer_run(ctx: Ctx, preset_name: str, model: dict | None = None, train: dict | None = None,
                vocab: int = 65, iters: int = 20) -> dict[str, Any]:
    """The Trainer at a preset's size for ``iters`` steps, as ``llmcourse train`` runs it."""
    preset = get_preset(preset_name)
    preset["model"].update(model or {})
    if ctx.smoke:
        preset["model"].update({k: v for k, v in TINY.items()}, vocab_size=vocab)
        preset["train"].update(batch_size=4, grad_accum_steps=1)
    out = tempfile.mkdtemp(dir=ctx.tmp, prefix=preset_name + "-")
    preset["train"].update(max_iters=iters, lr_decay_iters=iters, warmup_iters=2, eval_interval=iters,
                           eval_iters=1, log_interval=1, out_dir=out, device=str(ctx.device),
                           dtype=ctx.dtype, progress=False, overwrite=True, save_best=False)
    preset["train"].update(train or {})
    if ctx.cuda:   # the MFU against the peak of the precision the run will use (ctx.peak)
        preset["train"]["peak_flops"] = ctx.peak(ctx.plan(preset["train"]["dtype"]).dtype_name)
    model_cfg, train_cfg = build_configs(preset, vocab)
    ids = ctx.ids(model_cfg.vocab_size)
    B, T = train_cfg.batch_size, model_cfg.block_size

    def batches(split: str, generator: torch.Generator | None = None):
        return get_batch(ids, B, T, device=ctx.device, generator=generator)

    torch.manual_seed(train_cfg.seed)
    trainer = Trainer(GPT(model_cfg), train_cfg, batches)
    t0 = time.perf_counter()
    history = trainer.fit()
    wall = time.perf_counter() - t0
    logs = [r for r in history if r["type"] == "train"]
    later = [r for r in logs if r["iter"] >= 2] or logs
    tok_s = statistics.median(r["tokens_per_s"] for r in later)
    ms = statistics.median(r["ms_per_iter"] for r in later)
    mfus = [r["mfu"] for r in later if r.get("mfu") is not None]
    return {"tokens_per_s": tok_s, "ms_per_iter": ms, "mfu": statistics.median(mfus) if mfus else None,
            "compile_s": max(0.0, logs[0]["ms_per_iter"] / 1000 - ms / 1000) if logs else None,
            "precision": str(trainer.precision), "params": sum(p.numel() for p in trainer.raw_model.parameters()),
            "batch": f"{B}x{T}x{train_cfg.grad_accum_steps}", "train_s": round(wall, 2),
            "final_loss": logs[-1]["loss"] if logs else None}
