"""Generation speed with and without the KV cache.

Decodes ``--tokens`` new tokens (default 500) from a one-token prompt, batch 1, with the
nanoGPT Tiny Shakespeare shape (6 layers, 6 heads, 384 wide, block 256, vocabulary 65; random
weights, which cost the same as trained ones), and prints milliseconds per token for:

- ``kv-cache``: prefill once, then one token per forward; when the 256 positions are full the
  cache is rebuilt from the last 128 tokens (``keep_on_rebuild=128``);
- ``recompute``: a full forward over the last ``block_size`` tokens for every new token;
- ``kv-cache, exact window`` (with ``--exact-window``): the cache rebuilt from the full last
  256 tokens at every step past the block (``generate``'s default sliding window).

``recompute`` slides the window by one token (the default), like nanoGPT; with
``keep_on_rebuild=128`` it would follow the cache's rule and decode the same tokens.

Each mode is timed ``--repeats`` times (interleaved) and the fastest run is reported, because
on a shared machine the slower runs measure the neighbours. The load average is printed with
the results: when it is above the number of cores, several CPU threads per process slow
single-token decoding down far more than big forwards (the threads wait for each other at every
small operation), so compare with ``--threads 1``. Run::

    python benchmarks/bench_generate.py                 # CPU, fp32, all cores
    python benchmarks/bench_generate.py --threads 2 --repeats 3
    python benchmarks/bench_generate.py --threads 1 --cpu-time     # on a busy machine
    python benchmarks/bench_generate.py --device cuda
"""

from __future__ import annotations

import argparse
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
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cpu-time", action="store_true",
                   help="time with the process's CPU time instead of the wall clock: steadier on "
                        "a busy shared machine (with --threads 1; not meaningful on a GPU)")
    return p.parse_args()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


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

    modes = {
        "kv-cache": dict(use_cache=True, keep_on_rebuild=config.block_size // 2),
        "recompute": dict(use_cache=False),
    }
    if args.exact_window:
        modes["kv-cache, exact window"] = dict(use_cache=True, keep_on_rebuild=config.block_size)

    clock = time.process_time if args.cpu_time else time.perf_counter

    def run(kwargs: dict) -> float:
        sync(device)
        t0 = clock()
        out = generate(model, prompt, args.tokens, seed=args.seed, **kwargs)
        sync(device)
        assert out.shape == (1, 1 + args.tokens)
        return clock() - t0

    # Warm-up: first calls pay for allocator growth, kernel selection and lazy initialisation.
    for kwargs in modes.values():
        generate(model, prompt, min(args.tokens, 2 * config.block_size // 4), seed=0, **kwargs)

    best = {name: float("inf") for name in modes}
    for _ in range(args.repeats):
        for name, kwargs in modes.items():
            best[name] = min(best[name], run(kwargs))

    print(f"GPT 6 layers / 6 heads / 384 wide, block {config.block_size}, vocab 65, "
          f"{model.num_params() / 1e6:.2f}M parameters")
    print(f"{args.tokens} new tokens from a 1-token prompt, batch 1, {args.dtype} on {device} "
          f"({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}); best of {args.repeats}"
          + (", CPU time" if args.cpu_time else ", wall time"))
    if hasattr(os, "getloadavg"):
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} logical CPUs")
    base = best["recompute"]
    for name, seconds in best.items():
        ms = 1000 * seconds / args.tokens
        print(f"  {name:<24s} {ms:8.2f} ms/token  {args.tokens / seconds:8.1f} tokens/s  "
              f"speed-up vs recompute {base / seconds:5.1f}x")


if __name__ == "__main__":
    main()
