"""Where the time of a cached decoding step goes, eager and compiled: a ``torch.profiler`` table.

The model of ``bench_generate.py`` (6 layers, 6 heads, 384 wide, block 256, vocabulary 65,
random weights, float32, batch 1). Each mode decodes ``--tokens`` tokens once to warm up (the
compiled mode compiles then), then ``--tokens`` tokens under the profiler, and prints the
operators with the most self CPU time, per step. Run::

    python benchmarks/profile_decode.py --threads 2
    python benchmarks/profile_decode.py --threads 2 --modes compiled --rows 30

The profiler adds a few microseconds per operator, so the eager step looks slower here than in
``bench_generate.py``; compare the shares, not the totals.
"""

from __future__ import annotations

import argparse

import torch
from torch.profiler import profile

from llmcourse.generate import generate
from llmcourse.model import GPT, GPTConfig


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tokens", type=int, default=200,
                   help="tokens profiled per mode (default 200; at most 255, within the block)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--modes", nargs="+", default=["eager", "compiled"],
                   choices=["eager", "compiled"])
    p.add_argument("--rows", type=int, default=15, help="operators shown per mode")
    args = p.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=65, block_size=256, n_layer=6, n_head=6, n_embd=384,
                       dropout=0.0)
    model = GPT(config).eval()
    for mode in args.modes:
        # within the 256-token block (--tokens <= 255), so no window rule comes into it
        kwargs = dict(use_cache=True, temperature=0, compile=mode == "compiled")
        generate(model, [0], args.tokens, **kwargs)  # warm-up (and compilation)
        with profile() as prof:
            generate(model, [0], args.tokens, **kwargs)
        events = prof.key_averages()
        total = sum(e.self_cpu_time_total for e in events)
        print(f"\n== {mode}: {args.tokens} tokens, {torch.get_num_threads()} threads, "
              f"{total / args.tokens / 1000:.2f} ms of self CPU time per step under the profiler")
        print(f"{'operator':<58s} {'ms/step':>8s} {'share':>6s} {'calls/step':>10s}")
        for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[:args.rows]:
            print(f"{e.key[:58]:<58s} {e.self_cpu_time_total / args.tokens / 1000:8.3f} "
                  f"{e.self_cpu_time_total / total:6.1%} {e.count / args.tokens:10.1f}")


if __name__ == "__main__":
    main()
