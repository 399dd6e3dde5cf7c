"""Generation speed with and without the KV cache.

Decodes ``--tokens`` new tokens (default 500) from a one-token prompt, batch 1, with the
nanoGPT Tiny Shakespeare shape (6 layers, 6 heads, 384 wide, block 256, vocabulary 65; random
weights, which cost the same as trained ones), and prints milliseconds per token for:

- ``kv-cache``: prefill once, then one token per forward; when the 256 positions are full the
  cache is rebuilt from the last 128 tokens (``keep_on_rebuild=128``);
- ``recompute``: a full forward over the last ``block_size`` tokens for every new token;
- ``kv-cache, exact window`` (with ``--exact-window``): the cache rebuilt from the full last
  256 tokens at every step past the block (``generate``'s default sliding window).

- ``kv-cache, batch 8``: the same for 8 one-token prompts decoded together (ms per step;
  tokens/s counts all 8 rows);
- ``kv-cache, bf16 weights`` (with ``--bf16``): the cached decode of a bfloat16 copy of the
  model (``model.to(torch.bfloat16)``, the one switch; its cache is bf16 too);
- ``kv-cache, compiled`` (and ``compiled, batch 8``, ``compiled, bf16 weights`` with
  ``--bf16``, ``compiled, 1 thread``; none with ``--no-compile``): the same decodes with
  ``generate(..., compile=True)``, whose one-token steps run the compiled forward of
  :mod:`llmcourse.generate.compiled`. The first decode of each compiled mode (the warm-up, not
  timed) includes the compilation; its wall time is printed;
- ``kv-cache, 1 thread`` (on a CPU, when more threads are in use): the cached decode with
  ``torch.set_num_threads(1)``. A batch-1 step is ~30 tiny parallel regions (24 matrix-vector
  products, 6 attentions); when the machine has more runnable threads than cores, every region
  waits for a descheduled partner thread, and on a busy 2-core machine one thread decodes more
  than 10x faster than two.

``recompute`` slides the window by one token (the default), like nanoGPT; with
``keep_on_rebuild=128`` it would follow the cache's rule and decode the same tokens.

**The bandwidth bound.** A decoding step with batch 1 multiplies one vector by every weight
matrix, so it must read every weight once: the step cannot be faster than the weights' bytes
divided by the speed at which this machine reads memory. The script measures that speed on
the spot, with one thread (on the run's clock) and every core (wall clock), and the faster
counts: the machine's bound, whatever ``--threads`` says, as the best of 20 ``sum`` over a buffer as large as the weights (read again and again, as the decode reads its weights, so the CPU caches help both
alike), and prints the bound, each mode's distance from it, and for reference the read speed of
a 512 MB buffer (main memory, far larger than the caches).

**Where the rest goes.** ``matrix-vector products alone`` times the model's 24 block matrices
(plus the output layer) as the decode step calls them, ``F.linear`` on one ``(1, 1, C)`` row,
and nothing else: the floor of an eager step with these kernels. The step's time above it is
the ~25 other small operations per layer (norms, views, cache writes, attention), each a few
microseconds of dispatch; the compiled step fuses them, and computes the products with its own
loops instead of these kernels, so it can go below this line.

Each mode is timed ``--repeats`` times (interleaved) and the fastest run is reported, because
on a shared machine the slower runs measure the neighbours. The load average is printed with
the results: when it is above the number of cores, several CPU threads per process slow
single-token decoding down far more than big forwards (the threads wait for each other at every
small operation), so compare with ``--threads 1``. Run::

    python benchmarks/bench_generate.py                 # CPU, fp32, all cores
    python benchmarks/bench_generate.py --threads 2 --repeats 3
    python benchmarks/bench_generate.py --threads 2 --repeats 3 --bf16   # the book's table
    python benchmarks/bench_generate.py --threads 1 --cpu-time     # on a busy machine
    python benchmarks/bench_generate.py --device cuda
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import time

import torch

from llmcourse.generate import generate
from llmcourse.model import GPT, GPTConfig


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tokens", type=int, default=500, help="new tokens per run (default 500)")
    p.add_argument("--repeats", type=int, default=2, help="timed runs per mode; the best is kept")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, mps ... (default cpu)")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--exact-window", action="store_true",
                   help="also time the cache rebuilt from a full window at every step")
    p.add_argument("--bf16", action="store_true",
                   help="also time the cached decode with bfloat16 weights")
    p.add_argument("--no-batch", action="store_true", help="skip the batch-8 runs")
    p.add_argument("--no-compile", action="store_true",
                   help="skip the compiled modes (generate(..., compile=True))")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cpu-time", action="store_true",
                   help="time with the process's CPU time instead of the wall clock: steadier on "
                        "a busy shared machine (with --threads 1; not meaningful on a GPU)")
    return p.parse_args()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def read_speed(clock, device: torch.device, nbytes: int, repeats: int) -> float:
    """Bytes per second at which this machine reads ``nbytes``: best of ``repeats`` ``sum``."""
    buf = torch.ones(nbytes // 4, device=device)
    buf.sum()
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        t0 = clock()
        buf.sum()
        sync(device)
        best = min(best, clock() - t0)
    return nbytes / best


def main() -> None:
    args = parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    torch.manual_seed(args.seed)
    config = GPTConfig(vocab_size=65, block_size=256, n_layer=6, n_head=6, n_embd=384,
                       dropout=0.0)
    model = GPT(config).to(device=device, dtype=dtype).eval()
    prompt = torch.zeros(1, 1, dtype=torch.long, device=device)
    keep = dict(use_cache=True, keep_on_rebuild=config.block_size // 2)

    # name: (model, prompt, generate's arguments)
    modes = {
        "kv-cache": (model, prompt, keep),
        "recompute": (model, prompt, dict(use_cache=False)),
    }
    if args.exact_window:
        modes["kv-cache, exact window"] = (model, prompt,
                                           dict(use_cache=True, keep_on_rebuild=config.block_size))
    if not args.no_batch:
        batch = torch.arange(8, device=device)[:, None]  # 8 different one-token prompts
        modes["kv-cache, batch 8"] = (model, batch, keep)
    if args.bf16:
        modes["kv-cache, bf16 weights"] = (copy.deepcopy(model).to(torch.bfloat16), prompt, keep)
    if not args.no_compile:  # generate(..., compile=True): llmcourse.generate.compiled
        fast = dict(keep, compile=True)
        modes["kv-cache, compiled"] = (model, prompt, fast)
        if not args.no_batch:
            modes["compiled, batch 8"] = (model, batch, fast)
        if args.bf16:
            modes["compiled, bf16 weights"] = (modes["kv-cache, bf16 weights"][0], prompt, fast)
    threads = torch.get_num_threads()
    mode_threads = {name: threads for name in modes}
    if device.type == "cpu" and threads > 1:  # the same decodes on one thread, for comparison
        modes["kv-cache, 1 thread"] = (model, prompt, keep)
        mode_threads["kv-cache, 1 thread"] = 1
        if not args.no_compile:
            modes["compiled, 1 thread"] = (model, prompt, fast)
            mode_threads["compiled, 1 thread"] = 1

    clock = time.process_time if args.cpu_time else time.perf_counter

    def run(m: GPT, idx: torch.Tensor, kwargs: dict) -> float:
        sync(device)
        t0 = clock()
        out = generate(m, idx, args.tokens, seed=args.seed, **kwargs)
        sync(device)
        assert out.shape == (idx.shape[0], 1 + args.tokens)
        return clock() - t0

    # Warm-up: first calls pay for allocator growth, kernel selection and lazy initialisation,
    # and the compiled modes for compiling (timed: a learner waits that long once per model).
    warm, warm_tokens = {}, min(args.tokens, 2 * config.block_size // 4)
    for name, (m, idx, kwargs) in modes.items():
        torch.set_num_threads(mode_threads[name])
        t0 = time.perf_counter()
        generate(m, idx, warm_tokens, seed=0, **kwargs)
        warm[name] = time.perf_counter() - t0

    times: dict[str, list[float]] = {name: [] for name in modes}
    for _ in range(args.repeats):
        for name, (m, idx, kwargs) in modes.items():
            torch.set_num_threads(mode_threads[name])
            times[name].append(run(m, idx, kwargs))
    torch.set_num_threads(threads)
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())  # tied: once
    matvec_s, matvec_bytes = matvec_time(clock, device, model, repeats=20)
    # The machine's bound, whatever --threads says: the faster of one thread and every core
    # (on a busy machine several threads can read far slower than one, as they decode slower).
    reads = {}
    for n in sorted({1, os.cpu_count() or threads}) if device.type == "cpu" else [threads]:
        torch.set_num_threads(n)
        how = clock if n == 1 else time.perf_counter  # CPU time only means the time with 1 thread
        reads[n] = (read_speed(how, device, weight_bytes, repeats=20),
                    read_speed(how, device, 512 * 2**20, repeats=5))
    torch.set_num_threads(threads)
    read_threads = max(reads, key=lambda n: reads[n][0])
    speed, dram = reads[read_threads]
    bound_ms = 1000 * weight_bytes / speed

    print(f"GPT 6 layers / 6 heads / 384 wide, block {config.block_size}, vocab 65, "
          f"{model.num_params() / 1e6:.2f}M parameters, {weight_bytes / 1e6:.1f} MB of "
          f"{args.dtype} weights")
    print(f"{args.tokens} new tokens from a 1-token prompt, {args.dtype} on {device} "
          f"({cpu_name()}, {threads} threads, torch {torch.__version__}); "
          f"best of {args.repeats} (range in brackets)"
          + (", CPU time" if args.cpu_time else ", wall time"))
    if hasattr(os, "getloadavg"):
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} logical CPUs")
    print("read speed of the weights' size: " + ", ".join(
        f"{n} thread{'s' if n > 1 else ''} {r[0] / 1e9:.1f} GB/s" for n, r in reads.items()))
    print(f"read speed of {weight_bytes / 1e6:.0f} MB (the weights' size, {read_threads} "
          f"thread{'s' if read_threads > 1 else ''}, the faster) {speed / 1e9:.1f} GB/s: "
          f"bandwidth bound {bound_ms:.2f} ms/token (every weight read once per step); "
          f"512 MB read at {dram / 1e9:.1f} GB/s")
    print(f"matrix-vector products alone (F.linear, one row, {n_linears(model)} matrices, "
          f"{matvec_bytes / 1e6:.1f} MB) {1000 * matvec_s:.2f} ms/step: "
          f"{matvec_bytes / matvec_s / 1e9:.1f} GB/s")
    compiled = [name for name in modes if "compiled" in name]
    if compiled:
        print(f"compile + warm-up run (first decode of each compiled mode, {warm_tokens} "
              "tokens): " +
              ", ".join(f"{name} {warm[name]:.1f} s" for name in compiled))
    base = min(times["recompute"])
    for name, runs in times.items():
        best, worst = min(runs), max(runs)
        ms = 1000 * best / args.tokens
        rows = modes[name][1].shape[0]
        bound = bound_ms * (0.5 if "bf16" in name else 1.0)
        print(f"  {name:<24s} {ms:8.2f} ms/step [{ms:.2f}-{1000 * worst / args.tokens:.2f}]  "
              f"{rows * args.tokens / best:8.1f} tokens/s  speed-up vs recompute "
              f"{base / best:5.1f}x  {ms / bound:5.1f}x the bound ({bound / ms:4.0%} of its speed)")


def n_linears(model: GPT) -> int:
    return sum(isinstance(m, torch.nn.Linear) for m in model.modules())


def matvec_time(clock, device: torch.device, model: GPT, repeats: int) -> tuple[float, int]:
    """Seconds for one row through every ``nn.Linear`` of ``model``, as a decode step runs them.

    Best of ``repeats`` passes (after one warm-up pass), under ``torch.no_grad()``; and the
    bytes of those layers' weights and biases.
    """
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    weight = linears[0].weight
    rows = {m.in_features: torch.randn(1, 1, m.in_features, device=device, dtype=weight.dtype)
            for m in linears}  # (1, 1, in): batch 1, one position
    best = float("inf")
    with torch.no_grad():
        for i in range(repeats + 1):
            sync(device)
            t0 = clock()
            for m in linears:
                torch.nn.functional.linear(rows[m.in_features], m.weight, m.bias)
            sync(device)
            if i:
                best = min(best, clock() - t0)
    nbytes = sum(t.numel() * t.element_size() for m in linears
                 for t in (m.weight, m.bias) if t is not None)
    return best, nbytes


def cpu_name() -> str:
    """The CPU's model name (``lscpu``'s "Model name") where /proc/cpuinfo has it."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    main()
