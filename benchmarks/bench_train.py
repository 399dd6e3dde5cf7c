"""Training benchmarks on character-level Tiny Shakespeare.

Two questions, each answered by measurement on the machine it runs on:

1. ``throughput``: at nanoGPT's CPU recipe (4 layers, 4 heads, 128 wide, block 64, batch 12,
   lr 1e-3), how fast is one optimizer step of our :class:`~llmcourse.train.Trainer` compared
   with a straightforward eager loop written below (same model, same AdamW, same math)? Prints
   ms/iter, tokens/s and MFU against this machine's measured fp32 and bf16 matmul peaks.
2. ``race``: how much wall time (evaluation included) does a preset need to reach a
   validation loss of ``--target`` (default 1.88)? Prints the loss curve against time and the
   time the target was first met.

Run::

    python benchmarks/bench_train.py throughput
    python benchmarks/bench_train.py race --preset shakespeare-char-fast
    python benchmarks/bench_train.py race --preset shakespeare-char-cpu   # nanoGPT's recipe
    python benchmarks/bench_train.py all --json out/bench_train.json

Nothing here asserts a speed: run it on a quiet machine and read the numbers. The load average
is printed at the start and at the end (and stored with ``--json``), with a warning when other
processes competed for the cores. The losses of a race do not depend on the load (same seed,
same batches), only its times do; on a busy machine prefer ``--threads 1``, as two threads that
have to wait for each other slow down far more than one.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import tempfile
import time
from typing import Any

import torch

from llmcourse.bench import matmul_peak_flops
from llmcourse.data import get_batch, prepare
from llmcourse.model import GPT, GPTConfig, flops_per_token
from llmcourse.presets import apply_overrides, get_preset
from llmcourse.runs import build_configs, known_fields
from llmcourse.train import Trainer

RECIPE = dict(n_layer=4, n_head=4, n_embd=128, block_size=64, dropout=0.0)
BATCH = 12
LR = 1e-3


def shakespeare_char():
    return prepare("shakespeare", "char", progress=False, verbose=False)


# --------------------------------------------------------------------------------------------
# 1. throughput
# --------------------------------------------------------------------------------------------


def eager_loop_ms(prep, iters: int, warmup: int, autocast_bf16: bool = False) -> float:
    """A plain loop: batch, forward, backward, clip, AdamW step. Returns ms per iteration."""
    torch.manual_seed(1337)
    cfg = GPTConfig(vocab_size=prep.vocab_size, **RECIPE)
    model = GPT(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, betas=(0.9, 0.99), weight_decay=0.1)
    data = prep.load("train")
    gen = torch.Generator().manual_seed(0)

    def step() -> None:
        x, y = get_batch(data, BATCH, cfg.block_size, generator=gen)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast_bf16):
            _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    return 1000 * (time.perf_counter() - t0) / iters


def trainer_ms(prep, iters: int, warmup: int, dtype: str = "float32") -> float:
    """Our Trainer on the same recipe, timed over ``iters`` steps after ``warmup`` (no eval)."""
    preset = apply_overrides(get_preset("shakespeare-char-cpu"), [
        f"max_iters={warmup + iters}", f"eval_interval={10 * (warmup + iters)}", "eval_iters=1",
        f"log_interval={warmup + iters}", f"train.dtype={dtype}", "warmup_iters=0",
    ])
    with tempfile.TemporaryDirectory() as out:
        preset["train"]["out_dir"] = out
        preset["train"]["progress"] = False
        torch.manual_seed(1337)
        model_cfg, train_cfg = build_configs(preset, prep.vocab_size)
        gen = torch.Generator().manual_seed(0)
        data = {"train": prep.load("train"), "val": prep.load("val")}
        trainer = Trainer(GPT(model_cfg), train_cfg,
                          lambda split: get_batch(data[split], BATCH, model_cfg.block_size, generator=gen))
        for _ in range(warmup):
            trainer._train_step(need_norm=False)
        t0 = time.perf_counter()
        for _ in range(iters):
            trainer._train_step(need_norm=False)
        return 1000 * (time.perf_counter() - t0) / iters


def throughput(args) -> dict[str, Any]:
    prep = shakespeare_char()
    peak32 = matmul_peak_flops(n=1024, dtype=torch.float32, repeats=5)
    peak16 = matmul_peak_flops(n=1024, dtype=torch.bfloat16, repeats=5)
    cfg = GPTConfig(vocab_size=prep.vocab_size, **RECIPE)
    fpt = flops_per_token(cfg)
    tokens = BATCH * cfg.block_size
    rows = []
    # Interleave the runs so a noisy neighbour hurts each of them alike; keep the best.
    best: dict[str, float] = {}
    for _ in range(args.repeats):
        for name, fn in (
            ("eager loop fp32", lambda: eager_loop_ms(prep, args.iters, 5)),
            ("Trainer fp32", lambda: trainer_ms(prep, args.iters, 5)),
            ("eager loop bf16 autocast", lambda: eager_loop_ms(prep, args.iters, 5, True)),
            ("Trainer bf16 autocast", lambda: trainer_ms(prep, args.iters, 5, "bfloat16")),
        ):
            ms = fn()
            best[name] = min(ms, best.get(name, math.inf))
    for name, ms in best.items():
        tok_s = tokens / (ms / 1000)
        peak = peak16 if "bf16" in name else peak32
        rows.append({"run": name, "ms_per_iter": round(ms, 2), "tokens_per_s": round(tok_s),
                     "mfu_vs_measured_peak": round(tok_s * fpt / peak, 3)})
    print(f"\nmatmul peak (1024x1024): fp32 {peak32 / 1e9:.1f} GFLOP/s, bf16 {peak16 / 1e9:.1f} GFLOP/s")
    print(f"model: {RECIPE}, batch {BATCH}, {fpt / 1e6:.2f} MFLOP per token (training)")
    print("| run | ms/iter | tokens/s | MFU (vs measured matmul peak of its dtype) |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['run']} | {r['ms_per_iter']:.1f} | {r['tokens_per_s']:,} | "
              f"{100 * r['mfu_vs_measured_peak']:.0f}% |")
    return {"peak_fp32": peak32, "peak_bf16": peak16, "flops_per_token": fpt, "rows": rows}


# --------------------------------------------------------------------------------------------
# 2. race to a validation loss
# --------------------------------------------------------------------------------------------


class TimedTrainer(Trainer):
    """A Trainer whose evaluation records carry the wall time since the run started."""

    t0 = 0.0

    def _evaluate(self, it: int) -> dict[str, Any]:
        record = super()._evaluate(it)
        record["elapsed_s"] = time.perf_counter() - self.t0  # measured after the evaluation
        return record


def race(args) -> dict[str, Any]:
    preset = apply_overrides(get_preset(args.preset), args.set or [], known=known_fields())
    prep = shakespeare_char()
    with tempfile.TemporaryDirectory() as out:
        preset["train"]["out_dir"] = out
        preset["train"]["progress"] = False
        torch.manual_seed(preset["train"].get("seed", 1337))
        model_cfg, train_cfg = build_configs(preset, prep.vocab_size)
        gen = torch.Generator().manual_seed(train_cfg.seed)
        get_b = prep.get_batch_fn(train_cfg.batch_size, model_cfg.block_size, generator=gen)
        t0 = time.perf_counter()
        trainer = TimedTrainer(GPT(model_cfg), train_cfg, get_b, generator=gen)
        trainer.t0 = t0
        history = trainer.fit()
        wall = time.perf_counter() - t0
    evals = [h for h in history if h.get("type") == "eval"]
    curve = [(h.get("elapsed_s"), h["iter"], h["val_loss"]) for h in evals]
    hit = next(((t, it, v) for t, it, v in curve if v <= args.target), None)
    print(f"\npreset {args.preset} {args.set or ''}: {train_cfg.max_iters} iters in {wall:.1f} s "
          f"(evaluation included)")
    print("| elapsed s | iter | val loss |")
    print("|---|---|---|")
    for t, it, v in curve:
        ts = "?" if t is None else f"{t:.1f}"
        print(f"| {ts} | {it} | {v:.4f} |")
    if hit:
        print(f"target val loss <= {args.target} first met at iter {hit[1]}, {hit[0]:.1f} s")
    else:
        print(f"target val loss <= {args.target} NOT met (best {min(v for *_, v in curve):.4f})")
    return {"preset": args.preset, "overrides": args.set or [], "wall_s": wall, "curve": curve,
            "target": args.target, "hit": hit}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=["throughput", "race", "all"])
    p.add_argument("--iters", type=int, default=40, help="timed iterations per throughput run")
    p.add_argument("--repeats", type=int, default=2, help="throughput runs per variant (best kept)")
    p.add_argument("--preset", default="shakespeare-char-fast")
    p.add_argument("--set", action="append", help="override, e.g. --set max_iters=1000")
    p.add_argument("--target", type=float, default=1.88)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load_start = os.getloadavg()[0]
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, {torch.get_num_threads()} threads, "
          f"load average {load_start:.2f}")
    results: dict[str, Any] = {"threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
                               "loadavg_start": load_start}
    if args.what in ("throughput", "all"):
        results["throughput"] = throughput(args)
    if args.what in ("race", "all"):
        results["race"] = race(args)
    results["loadavg_end"] = os.getloadavg()[0]
    if max(load_start, results["loadavg_end"]) > (os.cpu_count() or 1):
        print(f"warning: the load average ({load_start:.2f} at the start, "
              f"{results['loadavg_end']:.2f} at the end) exceeded the {os.cpu_count()} cores: "
              "other processes shared the CPU, so the times above are too long; the losses are "
              "unaffected")
    if args.json:
        os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
