"""Benchmark the tokenizers on Tiny Shakespeare and print a markdown table.

    python benchmarks/bench_tokenizers.py            # everything (the textbook loop takes minutes)
    python benchmarks/bench_tokenizers.py --quick    # skip the textbook loop

Measures:

- BPE training time of ``llmcourse.tokenizers.BPETokenizer.train`` (GPT-2 pre-split) for
  vocabularies of 512 and 4096, next to the textbook loop that recounts every pair after every
  merge (vocab 512) and Hugging Face ``tokenizers`` (ByteLevel pre-tokenizer + BpeTrainer);
- encoding throughput (MB/s of UTF-8 input) of our pure-Python encoder, cold cache and warm cache,
  of the same vocabulary exported to tiktoken, and of tiktoken's ``gpt2`` for reference.

Every figure is the best of ``--repeats`` runs (wall clock, ``time.perf_counter``). Results are
recorded in ``book/performance_tokenizers.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import regex

from llmcourse.tokenizers import ENDOFTEXT, GPT2_SPLIT_PATTERN, BPETokenizer, get_tokenizer
from llmcourse.tokenizers.stream import _split_safe


def find_shakespeare(arg: str | None) -> Path:
    candidates = [Path(arg)] if arg else []
    if os.environ.get("LLMCOURSE_DATA_DIR"):
        candidates.append(Path(os.environ["LLMCOURSE_DATA_DIR"]) / "tinyshakespeare.txt")
    candidates.append(Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt")
    for c in candidates:
        if c.is_file():
            return c
    sys.exit("Tiny Shakespeare not found: pass --data PATH or set LLMCOURSE_DATA_DIR")


def best_of(repeats: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def textbook_train(text: str, vocab_size: int, max_merges: int | None = None) -> list[tuple[int, int]]:
    """The loop of the lesson: after every merge, recount all pairs of all pre-tokens."""
    chunks = [list(c.encode("utf-8")) for c in regex.findall(GPT2_SPLIT_PATTERN, text)]
    n_merges = vocab_size - 256 if max_merges is None else min(max_merges, vocab_size - 256)
    merges = []
    for k in range(n_merges):
        stats: Counter[tuple[int, int]] = Counter()
        for ids in chunks:
            stats.update(zip(ids, ids[1:]))
        pair = min(stats, key=lambda p: (-stats[p], p))
        merges.append(pair)
        new = 256 + k
        for n, ids in enumerate(chunks):
            if len(ids) < 2:
                continue
            out, i = [], 0
            while i < len(ids):
                if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
                    out.append(new)
                    i += 2
                else:
                    out.append(ids[i])
                    i += 1
            chunks[n] = out
    return merges


def hf_train(text: str, vocab_size: int) -> Any:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[ENDOFTEXT],
        show_progress=False,
    )
    tok.train_from_iterator([text], trainer=trainer)
    return tok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="path to tinyshakespeare.txt")
    ap.add_argument("--quick", action="store_true", help="skip the textbook loop")
    ap.add_argument(
        "--textbook-merges", type=int, default=None,
        help="cap the textbook loop at this many merges (default: all 256 of vocab 512)",
    )
    ap.add_argument("--repeats", type=int, default=3, help="best of this many runs (default 3)")
    args = ap.parse_args()

    path = find_shakespeare(args.data)
    text = path.read_text(encoding="utf-8")
    mb = len(text.encode("utf-8")) / 1e6
    rows: list[tuple[str, str, str]] = []

    def add(what: str, impl: str, value: str) -> None:
        rows.append((what, impl, value))
        print(f"  {what:<34} {impl:<44} {value}", flush=True)

    print(f"Tiny Shakespeare: {mb:.3f} MB, python {platform.python_version()}, "
          f"{os.cpu_count()} CPU(s), {platform.processor() or platform.machine()}")

    toks: dict[int, BPETokenizer] = {}
    for vocab in (512, 4096):
        t, tok = best_of(args.repeats, lambda v=vocab: BPETokenizer.train(text, v, special_tokens=[ENDOFTEXT]))
        toks[vocab] = tok
        add(f"train BPE, vocab {vocab}", "llmcourse (incremental, pure Python)", f"{t:.2f} s")
        try:
            t, _ = best_of(args.repeats, lambda v=vocab: hf_train(text, v))
            add(f"train BPE, vocab {vocab}", "HF tokenizers (Rust, ByteLevel BpeTrainer)", f"{t:.2f} s")
        except ImportError:
            add(f"train BPE, vocab {vocab}", "HF tokenizers", "not installed")

    if not args.quick:
        cap = args.textbook_merges
        t0 = time.perf_counter()
        merges = textbook_train(text, 512, cap)
        t = time.perf_counter() - t0
        label = "textbook loop (recount every merge)"
        if cap is None or cap >= 256:
            # Ours reserves one id of the 512 for <|endoftext|>: compare the merges both made.
            n = min(len(merges), len(toks[512].merge_list))
            same = merges[:n] == toks[512].merge_list[:n]
            add("train BPE, vocab 512", label, f"{t:.1f} s (first {n} merges equal ours: {same})")
        else:
            add(f"train BPE, first {cap} merges", label, f"{t:.1f} s")

    tok = toks[4096]
    n_ids = len(tok.encode(text))

    def cold() -> list[int]:
        fresh = BPETokenizer.from_spec(tok.to_dict())
        return fresh.encode(text)

    t, _ = best_of(args.repeats, cold)
    add("encode, vocab 4096", "llmcourse, cold cache", f"{mb / t:.2f} MB/s ({t:.2f} s)")
    tok.encode(text)
    t, _ = best_of(args.repeats, lambda: tok.encode(text))
    add("encode, vocab 4096", "llmcourse, warm cache", f"{mb / t:.2f} MB/s ({t:.2f} s)")
    enc = tok.to_tiktoken()
    assert enc.encode_ordinary(text) == tok.encode(text), "tiktoken export disagrees"
    t, _ = best_of(args.repeats, lambda: enc.encode_ordinary(text))
    add("encode, vocab 4096", "tok.to_tiktoken(), 1 thread", f"{mb / t:.2f} MB/s ({t:.3f} s)")
    threads = os.cpu_count() or 1
    parts = _split_safe(text, 4 * threads)  # cut at safe points, as encode_file does
    assert "".join(parts) == text
    t, _ = best_of(args.repeats, lambda: enc.encode_ordinary_batch(parts, num_threads=threads))
    add("encode, vocab 4096", f"tok.to_tiktoken(), {len(parts)} pieces, {threads} threads",
        f"{mb / t:.2f} MB/s ({t:.3f} s)")
    gpt2 = get_tokenizer("gpt2")
    t, _ = best_of(args.repeats, lambda: gpt2.encode(text))
    add("encode, gpt2 (50257)", "tiktoken gpt2, 1 thread", f"{mb / t:.2f} MB/s ({t:.3f} s)")
    ours_gpt2 = get_tokenizer("gpt2", implementation="python")
    t, _ = best_of(1, lambda: ours_gpt2.encode(text))
    add("encode, gpt2 (50257)", "llmcourse with GPT-2 merges, cold cache", f"{mb / t:.2f} MB/s ({t:.2f} s)")

    print()
    print(f"Tiny Shakespeare ({mb:.2f} MB); vocab 4096 gives {n_ids:,} tokens "
          f"({len(text.encode('utf-8')) / n_ids:.2f} bytes/token). Best of {args.repeats} runs.")
    print()
    print("| measurement | implementation | result |")
    print("|---|---|---|")
    for what, impl, value in rows:
        print(f"| {what} | {impl} | {value} |")


if __name__ == "__main__":
    main()
