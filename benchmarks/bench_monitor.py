"""What do the training monitors cost? (``monitor_interval``, :mod:`llmcourse.train.monitor`)

At nanoGPT's CPU recipe (4 layers, 4 heads, 128 wide, block 64, batch 12) on character-level
Tiny Shakespeare, three measurements, each the best of ``--repeats`` interleaved rounds:

1. ``fit`` wall time per step of :meth:`Trainer.fit` for ``--iters`` steps (no evaluation in
   between) with the monitors off and at ``monitor_interval=100`` (and 10, for scale): the
   figure the issue asks for (at most 5% slower at 100);
2. one plain step against one monitored step of ``Trainer._train_step``: the extra cost of a
   monitored step, and the overhead it implies at an interval ``N`` (``extra / (N * step)``),
   which is less sensitive to a noisy neighbour than (1);
3. with the monitors off, the number of hooks on the model after training (must be 0).

Run::

    python benchmarks/bench_monitor.py                  # about a minute on 2 quiet cores
    python benchmarks/bench_monitor.py --iters 400 --repeats 5 --threads 1

Nothing here asserts a speed: read the numbers, and the load average printed with them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import tempfile
import time

import torch

from llmcourse.data import get_batch, prepare
from llmcourse.model import GPT
from llmcourse.presets import apply_overrides, get_preset
from llmcourse.runs import build_configs
from llmcourse.train import Trainer

BATCH = 12


def make_trainer(prep, out: str, iters: int, interval: int | None) -> Trainer:
    sets = [f"max_iters={iters}", f"eval_interval={10 * iters}", "eval_iters=1",
            f"log_interval={iters}", "warmup_iters=0", "train.dtype=float32",
            f"train.batch_size={BATCH}"]
    if interval is not None:
        sets.append(f"train.monitor_interval={interval}")
    preset = apply_overrides(get_preset("shakespeare-char-cpu"), sets)
    preset["train"].update(out_dir=out, progress=False)
    torch.manual_seed(1337)
    model_cfg, train_cfg = build_configs(preset, prep.vocab_size)
    gen = torch.Generator().manual_seed(0)
    data = {"train": prep.load("train"), "val": prep.load("val")}
    return Trainer(GPT(model_cfg), train_cfg,
                   lambda split: get_batch(data[split], BATCH, model_cfg.block_size,
                                           generator=gen))


def fit_ms(prep, iters: int, interval: int | None) -> float:
    with tempfile.TemporaryDirectory() as out:
        trainer = make_trainer(prep, out, iters, interval)
        for _ in range(5):  # warm up the allocator and kernels, off the clock
            trainer._train_step(need_norm=False)
        trainer.iter_num = 0
        t0 = time.perf_counter()
        trainer.fit()
        return 1000 * (time.perf_counter() - t0) / iters


def step_ms(prep, steps: int) -> tuple[float, float]:
    """(plain step ms, monitored step ms), each the mean of ``steps`` alternating steps."""
    with tempfile.TemporaryDirectory() as out:
        trainer = make_trainer(prep, out, 10, interval=1)
        for _ in range(3):
            trainer._train_step(need_norm=False)
        plain = mon = 0.0
        for i in range(steps):
            t0 = time.perf_counter()
            trainer._train_step(need_norm=False)
            t1 = time.perf_counter()
            trainer._train_step(need_norm=False, it=i)
            t2 = time.perf_counter()
            plain, mon = plain + (t1 - t0), mon + (t2 - t1)
        return 1000 * plain / steps, 1000 * mon / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=300, help="steps per fit (default 300)")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved rounds (default 3)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    prep = prepare("shakespeare", "char", progress=False, verbose=False)
    load0 = os.getloadavg()
    print(f"machine: {platform.processor() or platform.machine()}, torch "
          f"{torch.__version__}, threads {torch.get_num_threads()}, load average {load0}")
    best: dict[str, float] = {}
    plain_best, mon_best = math.inf, math.inf
    for _ in range(args.repeats):
        for name, interval in (("off", None), ("every 100", 100), ("every 10", 10)):
            best[name] = min(best.get(name, math.inf), fit_ms(prep, args.iters, interval))
        p, m = step_ms(prep, 20)
        plain_best, mon_best = min(plain_best, p), min(mon_best, m)
    with tempfile.TemporaryDirectory() as out:
        t = make_trainer(prep, out, 3, None)
        t.fit()
        hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks)
                    for m in t.raw_model.modules())
    print(f"\n| monitors | ms/step in fit ({args.iters} steps, best of {args.repeats}) | "
          "vs off |")
    print("|---|---|---|")
    for name, ms in best.items():
        print(f"| {name} | {ms:.2f} | {100 * (ms / best['off'] - 1):+.1f}% |")
    extra = mon_best - plain_best
    print(f"\none plain step {plain_best:.2f} ms, one monitored step {mon_best:.2f} ms "
          f"(+{extra:.2f} ms): implied overhead at interval 100 = "
          f"{100 * extra / (100 * plain_best):.2f}%, at 10 = {100 * extra / (10 * plain_best):.1f}%")
    print(f"hooks on the model after a run with the monitors off: {hooks}")
    load1 = os.getloadavg()
    print(f"load average at the end: {load1}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"fit_ms": best, "plain_step_ms": plain_best,
                       "monitored_step_ms": mon_best, "hooks_when_off": hooks,
                       "load": [load0, load1]}, fh, indent=2)


if __name__ == "__main__":
    main()
