"""Small experiments on one cached decoding step: the side figures of the performance page.

``bench_generate.py`` times whole decodes; the experiments here take the step apart. Each is
one ``--only NAME`` (several names, or none for all), on the model of ``bench_generate.py``
(6 layers, 6 heads, 384 wide, block 256, vocabulary 65, random weights, float32, batch 1):

- ``threads``: cached decodes of ``--steps`` tokens with 1 thread and with every core, while
  ``--busy N`` extra processes spin on the CPU (a machine shared with other jobs);
  median of ``--rounds`` interleaved rounds, wall time;
- ``compile``: the one-token step ``model(idx, kv_cache=cache)`` eager against
  ``torch.compile(model, dynamic=True)`` (the plain recipe, not ``generate(..., compile=True)``);
  the compile time, the time per step and the largest difference of the logits;
- ``weight-layout``: the 24 block matrices alone, one row each: ``F.linear`` float32,
  pre-transposed ``(in, out)`` weights with ``addmm`` float32, ``F.linear`` bfloat16;
- ``attention``: one query over ``--keys`` cached keys in every layer: fused
  ``F.scaled_dot_product_attention`` against the explicit three operations;
- ``matvec-bf16``: single products of the shapes ``3C x C`` and ``4C x C`` (1152 x 384 and
  1536 x 384 here), bfloat16 against float32.

Every experiment prints a ``machine:`` line (CPU, torch, threads, load average) above its
figures; each figure is the median of ``--rounds`` interleaved rounds with the range in
brackets. ``--smoke`` runs a tiny model for a few rounds, to check that the script works.
Run::

    python benchmarks/decode_experiments.py --only weight-layout --threads 1 --cpu-time
    python benchmarks/decode_experiments.py --only threads --busy 8
    python benchmarks/decode_experiments.py --smoke        # every experiment, in seconds
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from llmcourse.device import cpu_name
from llmcourse.model import GPT, GPTConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_generate import Mode, time_modes  # noqa: E402  (one timing loop for decodes)

EXPERIMENTS = ["threads", "compile", "weight-layout", "attention", "matvec-bf16"]


# ---- shared helpers ----------------------------------------------------------------------------

def machine_line() -> str:
    load = f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "?"
    threads = torch.get_num_threads()
    return (f"machine: {cpu_name()}, {os.cpu_count()} logical CPUs, torch {torch.__version__}, "
            f"{threads} thread{'s' if threads > 1 else ''}, load average {load}")


def interleaved(fns: dict[str, Callable[[], object]], rounds: int, passes: int,
                clock: Callable[[], float]) -> dict[str, list[float]]:
    """Seconds per call of each function: ``rounds`` rounds, each function ``passes`` calls per
    round, the functions taking turns (a slow spell of the machine hits all of them).

    >>> t = interleaved({"a": lambda: 1, "b": lambda: 2}, 3, 2, time.perf_counter)
    >>> sorted(t), len(t["a"])
    (['a', 'b'], 3)
    """
    for fn in fns.values():  # warm-up: lazy initialisation, allocator growth
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = clock()
            for _ in range(passes):
                fn()
            times[name].append((clock() - t0) / passes)
    return times


def show(name: str, seconds: list[float], base: list[float] | None = None, unit: str = "") -> str:
    """``name  median ms [fastest-slowest]`` and, with ``base``, the ratio of the medians."""
    med = 1000 * statistics.median(seconds)
    fast, slow = 1000 * min(seconds), 1000 * max(seconds)
    line = f"  {name:<34s} {med:8.3f} ms{unit} [{fast:.3f}-{slow:.3f}]"
    if base is not None:
        line += f"  {med / (1000 * statistics.median(base)):.2f}x"
    return line


def build_model(smoke: bool) -> GPT:
    torch.manual_seed(0)
    shape = (dict(n_layer=2, n_head=2, n_embd=32, block_size=32) if smoke else
             dict(n_layer=6, n_head=6, n_embd=384, block_size=256))
    return GPT(GPTConfig(vocab_size=65, dropout=0.0, **shape)).eval()


def block_linears(model: GPT) -> list[torch.nn.Linear]:
    """The matrices of the transformer blocks (4 per layer), not the output layer."""
    return [m for m in model.transformer.h.modules() if isinstance(m, torch.nn.Linear)]


# ---- the experiments ---------------------------------------------------------------------------

SPIN = "import time\nend = time.time() + 900\nwhile time.time() < end: pass"  # stops by itself


def threads_under_load(model: GPT, args: argparse.Namespace) -> None:
    """Cached decodes with 1 thread and every core while ``--busy`` processes spin."""
    counts = sorted({1, os.cpu_count() or 1})
    busy = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(args.busy)]
    try:
        time.sleep(0.5 if busy else 0)  # let the spinners start
        print(machine_line() + f" (with {args.busy} busy processes running)")
        cache = dict(use_cache=True)
        modes = {f"{n} thread{'s' if n > 1 else ''}": Mode(args.steps, cache, threads=n)
                 for n in counts}
        prompt = torch.zeros(1, 1, dtype=torch.long)  # (1, 1)
        timed = time_modes(model, prompt, modes, args.rounds, time.perf_counter)
    finally:
        for p in busy:
            p.kill()
            p.wait()
    print(f"threads under load: {args.steps} cached steps, {args.rounds} rounds, wall time, "
          "ms per step, median [range]")
    runs = {name: [s / args.steps for s in seconds] for name, seconds in timed.runs.items()}
    base = runs[next(iter(runs))]
    for name, seconds in runs.items():
        print(show(name, seconds, base, "/step") + " of 1 thread's")


def compiled_step(model: GPT, args: argparse.Namespace, clock) -> None:
    """The one-token step, eager against ``torch.compile(model, dynamic=True)``."""
    print(machine_line())
    compiled = torch.compile(model, dynamic=True, backend=args.backend)
    start = torch.zeros(1, 1, dtype=torch.long)  # (1, 1)

    def decode(m) -> torch.Tensor:  # args.steps one-token steps into a fresh cache
        cache, idx, logits = model.new_kv_cache(1), start, []
        for _ in range(args.steps):
            out, _ = m(idx, kv_cache=cache)  # (1, 1, V)
            logits.append(out)
            idx = out[:, -1:].argmax(-1)  # (1, 1): greedy
        return torch.cat(logits, 1)  # (1, steps, V)

    with torch.no_grad():
        wall, cpu = time.perf_counter(), time.process_time()
        got = decode(compiled)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        diff = (got - decode(model)).abs().max().item()
        times = interleaved({"eager": lambda: decode(model), "compiled": lambda: decode(compiled)},
                            args.rounds, 1, clock)
    print(f"compiled decode step (torch.compile(model, dynamic=True), backend {args.backend}): "
          f"compile + first decode {wall:.1f} s wall, {cpu:.1f} s CPU; logits differ by at most "
          f"{diff:.1e}; {args.steps} steps per round, {args.rounds} rounds, ms per step")
    per_step = {k: [s / args.steps for s in v] for k, v in times.items()}
    print(show("eager", per_step["eager"], unit="/step"))
    print(show("compiled", per_step["compiled"], per_step["eager"], "/step") + " of eager")


def weight_layout(model: GPT, args: argparse.Namespace, clock) -> None:
    """The block matrices alone: F.linear fp32, pre-transposed addmm fp32, F.linear bf16."""
    print(machine_line())
    linears = block_linears(model)
    rows = {m.in_features: torch.randn(1, m.in_features) for m in linears}  # (1, in): one row
    transposed = [(m.weight.t().contiguous(), m.bias) for m in linears]  # (in, out)
    low = copy.deepcopy(linears)
    for m in low:
        m.to(torch.bfloat16)
    rows16 = {k: v.to(torch.bfloat16) for k, v in rows.items()}

    def plain():
        for m in linears:
            F.linear(rows[m.in_features], m.weight, m.bias)  # (1, out)

    def pre_transposed():
        for w, b in transposed:
            x = rows[w.shape[0]]  # (1, in)
            if b is None:
                x @ w  # (1, out)
            else:
                torch.addmm(b, x, w)  # (1, out): b + x @ w in one call

    def bf16():
        for m in low:
            F.linear(rows16[m.in_features], m.weight, m.bias)

    with torch.no_grad():
        t = interleaved({"F.linear fp32": plain, "pre-transposed addmm fp32": pre_transposed,
                         "F.linear bf16": bf16}, args.rounds, args.passes, clock)
    print(f"weight layout and precision: the {len(linears)} block matrices, one row each, "
          f"{args.passes} passes per round, {args.rounds} rounds, ms per pass, median [range]")
    for name, seconds in t.items():
        print(show(name, seconds, t["F.linear fp32"]) + " of F.linear fp32")


def one_query_attention(model: GPT, args: argparse.Namespace, clock) -> None:
    """One query over ``--keys`` cached keys in every layer: fused SDPA against explicit."""
    print(machine_line())
    c = model.config
    hs, keys = c.n_embd // c.n_head, min(args.keys, c.block_size)
    q = torch.randn(c.n_layer, 1, c.n_head, 1, hs)  # (L, B, nh, 1, hs): one query per layer
    k = torch.randn(c.n_layer, 1, c.n_head, keys, hs)  # (L, B, nh, keys, hs)
    v = torch.randn_like(k)

    def fused():
        return [F.scaled_dot_product_attention(q[i], k[i], v[i]) for i in range(c.n_layer)]

    def explicit():
        out = []
        for i in range(c.n_layer):
            att = (q[i] @ k[i].transpose(-2, -1)) * hs ** -0.5  # (B, nh, 1, keys)
            out.append(att.softmax(-1) @ v[i])  # (B, nh, 1, hs)
        return out

    with torch.no_grad():
        diff = max((a - b).abs().max().item() for a, b in zip(fused(), explicit()))
        t = interleaved({"fused SDPA": fused, "explicit (matmul, softmax, matmul)": explicit},
                        args.rounds, args.passes, clock)
    print(f"attention for one query over {keys} cached keys, {c.n_layer} layers x {c.n_head} "
          f"heads: ms for all layers, {args.rounds} rounds (outputs differ by {diff:.1e})")
    for name, seconds in t.items():
        print(show(name, seconds, t["fused SDPA"]) + " of fused")


def matvec_bf16(model: GPT, args: argparse.Namespace, clock) -> None:
    """Single matrix-vector products of the attention's and the MLP's input shapes."""
    print(machine_line())
    C = model.config.n_embd
    print(f"matrix-vector products, bf16 against fp32: one row, {args.passes} passes per round, "
          f"{args.rounds} rounds, ms per product, median [range]")
    for out in (3 * C, 4 * C):  # the attention's c_attn and the MLP's c_fc
        w, x = torch.randn(out, C), torch.randn(1, C)  # (out, C), (1, C)
        w16, x16 = w.to(torch.bfloat16), x.to(torch.bfloat16)
        with torch.no_grad():
            t = interleaved({"fp32": lambda: F.linear(x, w), "bf16": lambda: F.linear(x16, w16)},
                            args.rounds, args.passes, clock)
        print(show(f"{out} x {C} fp32", t["fp32"]))
        print(show(f"{out} x {C} bf16", t["bf16"], t["fp32"]) + " of fp32")


# ---- command line -----------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", nargs="+", choices=EXPERIMENTS, default=None,
                   help="the experiments to run (default: all)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--cpu-time", action="store_true",
                   help="time with the process's CPU time (with --threads 1), not the wall clock; "
                        "'threads' always uses the wall clock")
    p.add_argument("--rounds", type=int, default=None,
                   help="interleaved rounds (default 9; smoke 2)")
    p.add_argument("--passes", type=int, default=None,
                   help="calls per round of the kernel experiments (default 100; smoke 3)")
    p.add_argument("--steps", type=int, default=None,
                   help="decode steps per round of 'threads' and 'compile' (default 100; smoke 4)")
    p.add_argument("--busy", type=int, default=0,
                   help="'threads': spinning processes started during the run (default 0)")
    p.add_argument("--keys", type=int, default=200, help="'attention': cached keys (default 200)")
    p.add_argument("--backend", default="inductor",
                   help="'compile': torch.compile backend (default inductor)")
    p.add_argument("--smoke", action="store_true", help="a tiny model and few rounds: seconds")
    args = p.parse_args(argv)
    small = args.smoke
    args.rounds = args.rounds or (2 if small else 9)
    args.passes = args.passes or (3 if small else 100)
    args.steps = args.steps or (4 if small else 100)
    for name in ("rounds", "passes", "steps"):
        if getattr(args, name) < 1:
            p.error(f"--{name} {getattr(args, name)}: give at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    clock = time.process_time if args.cpu_time else time.perf_counter
    model = build_model(args.smoke)
    if args.steps >= model.config.block_size:  # the decodes stay within the block
        print(f"decode_experiments.py: error: --steps {args.steps}: give at most "
              f"{model.config.block_size - 1} (the block is {model.config.block_size})", file=sys.stderr)
        raise SystemExit(2)   # a mistake in what was asked (book/faults.md, rule 1)
    for name in args.only or EXPERIMENTS:
        print(f"\n== {name} ({'CPU time' if args.cpu_time and name != 'threads' else 'wall time'})")
        if name == "threads":
            threads_under_load(model, args)
        elif name == "compile":
            compiled_step(model, args, clock)
        elif name == "weight-layout":
            weight_layout(model, args, clock)
        elif name == "attention":
            one_query_attention(model, args, clock)
        else:
            matvec_bf16(model, args, clock)


if __name__ == "__main__":
    main()
