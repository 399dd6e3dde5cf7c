"""The ``llmcourse`` command: prepare data, train, sample, evaluate, benchmark, plot and sweep.

::

    llmcourse prepare shakespeare --tokenizer char
    llmcourse train --preset shakespeare-char-cpu --set max_iters=500
    llmcourse sample --checkpoint out/shakespeare-char-cpu --prompt "ROMEO:" --num-samples 2
    llmcourse eval --checkpoint out/shakespeare-char-cpu
    llmcourse bench matmul
    llmcourse plot out/run-a out/run-b --out curves.png
    llmcourse sweep --preset shakespeare-char-cpu --grid model.n_embd=64,128 --seeds 3 --out-dir out/sweep

Every subcommand has ``--help``. Every expected failure prints one line on stderr saying what
happened and what to do: a user's mistake (an unknown preset or setting, a bad count, a missing
checkpoint, data that changed under a run, a diverged run) exits with status 2; a fault of the
machine (a full disk, a read-only folder, a missing permission) exits with status 1 and names
the path. Anything else is a bug: its traceback is shown, followed by one line asking for a
report. No failed or refused command changes an earlier run or a prepared dataset (see the
book's page on faults, ``book/faults.md``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import traceback
from typing import Any, Sequence

from llmcourse.cli.args import (EXIT_STATUS, Parser, UserError, check_parent_folders, count,
                                count_upto, memory_message, non_empty_path, one_line, os_message,
                                out_of_memory, path_message, prompt_interrupt, seed_number,
                                stop_string)
from llmcourse.cli.sample import cmd_sample, load_checkpoint_args, until_stop


__all__ = ["main", "build_parser", "UserError", "until_stop"]

INTERRUPTED = "interrupted; checkpoints and prepared data already written are complete"
#: Commands whose Ctrl-C may end the process from a watchdog (cli.args.prompt_interrupt).
PROMPT_INTERRUPT = {"train", "sweep", "sample", "eval", "bench"}
#: Every subcommand (``llmcourse --help``).
COMMANDS = {"prepare", "train", "sample", "eval", "bench", "plot", "diff", "check", "sweep"}
#: ``bench --size``: the side of the matrices (16384: 1 GiB each in float32).
MAX_MATMUL_SIZE = 16384
#: ``bench --iters``: timed steps, or generated tokens.
MAX_BENCH_ITERS = 100_000

# --------------------------------------------------------------------------------------------
# prepare
# --------------------------------------------------------------------------------------------


def cmd_prepare(args: argparse.Namespace) -> int:
    from llmcourse.data import prepare

    if args.out_dir is not None:
        check_parent_folders(args.out_dir, "--out-dir")

    prep = prepare(args.dataset, args.tokenizer, out_dir=args.out_dir,
                   val_fraction=args.val_fraction, force=args.force,
                   progress=not args.no_progress)
    meta = prep.meta
    counts = meta.get("counts") or meta.get("num_tokens") or {}
    print(f"prepared {args.dataset} with tokenizer {args.tokenizer!r} in {prep.path}")
    print(f"vocab_size={prep.vocab_size} dtype={prep.dtype} tokens={json.dumps(counts)}")
    return 0


# --------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------


def _resolved_preset(args: argparse.Namespace) -> dict[str, Any]:
    from llmcourse.presets import apply_overrides, get_preset

    try:
        preset = get_preset(args.preset)
    except KeyError as exc:
        raise UserError(exc.args[0]) from None
    try:
        from llmcourse.runs import known_fields

        return apply_overrides(preset, args.set or [], known=known_fields())
    except ValueError as exc:
        raise UserError(str(exc)) from None


def cmd_train(args: argparse.Namespace) -> int:
    from llmcourse.runs import train_preset

    preset = _resolved_preset(args)
    if args.print_config:
        print(json.dumps(preset, indent=2, sort_keys=True))
        return 0
    from llmcourse.runs import NothingToDo

    train = preset.get("train", {})
    if args.resume and train.get("overwrite"):
        raise UserError(f"--resume continues the run in {train.get('out_dir', 'out')}, and "
                        "overwrite=true would replace it with a run from scratch: drop one of the two")
    from llmcourse.train import cleanup_distributed

    try:
        history = train_preset(preset, resume=args.resume, progress=not args.no_progress)
    except FileExistsError as exc:  # an earlier run's checkpoints are in out_dir
        raise UserError(str(exc)) from None
    except NothingToDo as exc:  # --resume to an iteration already reached: nothing written
        print(str(exc))
        return 0
    finally:  # under torchrun: leave the process group the Trainer joined (a no-op otherwise)
        cleanup_distributed()
    evals = [h for h in history if "val_loss" in h]
    if evals:
        last = evals[-1]
        print(f"done: iter {last.get('iter')} train loss {last.get('train_loss'):.4f} "
              f"val loss {last.get('val_loss'):.4f}; checkpoints in {preset['train']['out_dir']}")
    return 0


# --------------------------------------------------------------------------------------------
# eval
# --------------------------------------------------------------------------------------------


def cmd_eval(args: argparse.Namespace) -> int:
    import torch

    from llmcourse.data import get_batch
    from llmcourse.train import (bits_per_byte, bits_per_token, bytes_per_token, estimate_loss,
                                 perplexity)

    from llmcourse.runs import check_run_data

    model, tok, info = load_checkpoint_args(args)
    device = next(model.parameters()).device
    prep = check_run_data(info.run, "eval")  # the run's own data, unchanged, or a clear error
    data = prep.load(args.split)
    block = model.config.block_size
    gen = torch.Generator().manual_seed(args.seed)
    batch = lambda split: get_batch(data, args.batch_size, block, device=device, generator=gen)
    mean = estimate_loss(model, batch, args.iters, splits=(args.split,))[args.split]
    # Bytes of text per token, from the split's first million tokens: the per-byte loss
    # compares models whatever their tokenizer.
    per_token = bytes_per_token(data[: 1_000_000], tok)
    print(json.dumps({
        "checkpoint": str(info.checkpoint), "split": args.split, "batches": args.iters,
        "loss": round(mean, 4), "perplexity": round(perplexity(mean), 3),
        "bits_per_token": round(bits_per_token(mean), 4),
        "bits_per_byte": round(bits_per_byte(mean, per_token), 4),
    }))
    return 0


# --------------------------------------------------------------------------------------------
# bench
# --------------------------------------------------------------------------------------------


def cmd_bench(args: argparse.Namespace) -> int:
    import torch

    from llmcourse import bench

    if args.what == "matmul":
        from llmcourse.device import pick_device

        device = pick_device("auto")
        for dtype in bench.matmul_dtypes(device, args.dtype):
            peak = bench.matmul_peak_flops(n=args.size, dtype=dtype, device=device)
            name = str(dtype).replace("torch.", "")
            print(f"matmul {args.size}x{args.size} {name:9s} on {device}: "
                  f"{peak / 1e9:10.1f} GFLOP/s")
        return 0
    if args.what == "train":
        result = bench.bench_train_preset(args.preset, iters=args.iters,
                                          dtype=args.dtype or "float32", compile=args.compile)
        print(result)
        return 0
    if args.what == "generate":
        print(bench.bench_generate(max_new_tokens=args.iters))
        return 0
    raise UserError(f"unknown benchmark {args.what!r}")


# --------------------------------------------------------------------------------------------
# parser
# --------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from llmcourse.presets import list_presets

    parser = Parser(
        prog="llmcourse", description="Prepare data, train, sample from and evaluate GPT models.",
        epilog=EXIT_STATUS + " (diff and check: see their --help)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare", help="tokenize a dataset into train.bin/val.bin/meta.json",
                       description="Tokenize a dataset into train.bin, val.bin and meta.json "
                                   "(nothing is done when the folder is up to date).",
                       epilog=EXIT_STATUS)
    p.add_argument("dataset", help="a registered dataset (shakespeare, tinystories) or a text file")
    p.add_argument("--tokenizer", default="char",
                   help="char, gpt2, cl100k_base, or a saved tokenizer file (default: char)")
    p.add_argument("--out-dir", default=None, type=non_empty_path,
                   help="where to write (default: <cache>/prepared/<dataset>-<tokenizer>; "
                        "<cache> is $LLMCOURSE_CACHE_DIR or ~/.cache/llmcourse)")
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="share of the tokens, from the end, kept for validation when there is "
                        "no official split, in [0, 1) (default: 0.1)")
    p.add_argument("--force", action="store_true",
                   help="rebuild even if up to date; replace data prepared with other settings "
                        "(refused without it)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("train", help="train a GPT from a preset",
                       description="Train a GPT from a preset: prepares its data if needed, then "
                                   "writes run.json, metrics.jsonl, ckpt.pt and best.pt into the "
                                   "preset's out_dir (out/<preset> unless --set out_dir=...). An "
                                   "out_dir holding an earlier run is refused: pass --resume, "
                                   "or --set overwrite=true to replace it.",
                       epilog=EXIT_STATUS)
    p.add_argument("--preset", default="shakespeare-char-cpu", choices=list_presets(),
                   help="starting configuration (default: shakespeare-char-cpu)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a setting, e.g. --set max_iters=500 --set model.n_layer=2")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in out_dir, in place, from its ckpt.pt up to max_iters")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved preset as JSON and exit (nothing is trained)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=cmd_train)

    def add_checkpoint(q: argparse.ArgumentParser, seed_help: str) -> None:
        q.add_argument("--checkpoint", required=True,
                       help="a run directory (its best.pt, else ckpt.pt) or a .pt file; "
                            "run.json must be beside it")
        q.add_argument("--device", default="auto",
                       help="auto, cpu, cuda, cuda:N or mps (default: auto, CUDA then MPS then "
                            "the CPU)")
        q.add_argument("--seed", type=seed_number, default=1337, help=seed_help)

    p = sub.add_parser("sample", help="generate text from a trained checkpoint",
                       description="Generate text from a trained checkpoint: each sample is the "
                                   "prompt followed by its continuation, on standard output (or "
                                   "in --output); a header line goes to standard error.",
                       epilog=EXIT_STATUS)
    add_checkpoint(p, "seed of the first sample; sample s uses seed + s - 1 (default: 1337)")
    given = p.add_mutually_exclusive_group()
    given.add_argument("--prompt", default=None, help="text to continue (default: a newline)")
    given.add_argument("--prompt-file", default=None, metavar="PATH",
                       help="read the prompt from a UTF-8 file; - reads standard input")
    p.add_argument("--stop", action="append", type=stop_string, metavar="TEXT",
                   help="end a sample at the first TEXT it writes (not printed); repeatable")
    p.add_argument("--output", default=None, metavar="PATH", type=non_empty_path,
                   help="write the samples to a new file PATH (never replaced) instead of stdout")
    p.add_argument("--num-samples", type=count(1), default=1, help="samples to draw (default: 1)")
    p.add_argument("--max-new-tokens", type=count(1), default=500,
                   help="tokens to generate per sample (default: 500)")
    p.add_argument("--temperature", type=float, default=0.8,
                   help=">= 0; 0 means greedy (default: 0.8)")
    p.add_argument("--top-k", type=int, default=None,
                   help="keep the k >= 1 most likely tokens (default: off)")
    p.add_argument("--top-p", type=float, default=None,
                   help="nucleus sampling threshold in (0, 1] (default: off)")
    p.add_argument("--min-p", type=float, default=None,
                   help="keep tokens with probability >= min_p times the top one's, in [0, 1] "
                        "(default: off)")
    p.add_argument("--repetition-penalty", type=float, default=1.0,
                   help="CTRL penalty for tokens already in the text, > 0 (default: 1 = off)")
    p.add_argument("--stream", action="store_true", help="print tokens as they are generated")
    p.add_argument("--no-cache", action="store_true", help="recompute instead of using the KV cache")
    p.add_argument("--compile", action="store_true",
                   help="compile the decoding step with torch.compile: faster per token after "
                        "some seconds of compiling (needs a C++ compiler on a CPU)")
    p.add_argument("--stop-at-eos", action="store_true",
                   help="stop a sample at the tokenizer's end-of-text token")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("eval", help="loss, perplexity, bits per token and per byte of a checkpoint",
                       description="Loss, perplexity, bits per token and bits per byte of a "
                                   "checkpoint on its run's own prepared data, printed as one "
                                   "JSON line on standard output; nothing is written.",
                       epilog=EXIT_STATUS)
    add_checkpoint(p, "seed of the random batches (default: 1337)")
    p.add_argument("--split", default="val", choices=["train", "val"],
                   help="the data split to measure (default: val)")
    p.add_argument("--iters", type=count(1), default=50, help="batches to average (default: 50)")
    p.add_argument("--batch-size", type=count(1), default=16,
                   help="sequences of block_size tokens per batch (default: 16)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("bench", help="measure matmul peak, training or generation speed",
                       description="matmul: n x n matrix products on the best device (CUDA, "
                                   "MPS, else the CPU), in float32 and the 16-bit type training "
                                   "would use there, or in --dtype. train: training steps of a "
                                   "preset's model on random tokens, on the best device. "
                                   "generate: ms per token "
                                   "with and without the KV cache, for a fixed 6-layer model on "
                                   "the CPU. Prints the results; writes nothing.",
                       epilog=EXIT_STATUS)
    p.add_argument("what", choices=["matmul", "train", "generate"], help="what to measure")
    p.add_argument("--preset", default="shakespeare-char-cpu", choices=list_presets(),
                   help="model and batch to time (train only; default: shakespeare-char-cpu)")
    p.add_argument("--iters", type=count_upto(1, MAX_BENCH_ITERS, "a benchmark, not a training "
                                                               "run"), default=20,
                   help="timed iterations (train) or tokens (generate) (default: 20)")
    p.add_argument("--size", type=count_upto(1, MAX_MATMUL_SIZE, "three such matrices of float32 "
                                                              "take 3 GiB"), default=1024,
                   help=f"matrix size for the matmul benchmark, at most {MAX_MATMUL_SIZE} "
                        "(default: 1024)")
    p.add_argument("--dtype", default=None,
                   help="matmul and train only: auto, float32, bfloat16 or float16 (float16 not "
                        "on the CPU; train runs it as autocast) (default: float32 for train; "
                        "matmul times float32 and the 16-bit type)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (train only)")
    p.set_defaults(func=cmd_bench)

    # Subcommands that live beside the code they drive:
    from llmcourse.cli import plot, sweep
    from llmcourse.learner import commands as learner_commands

    plot.add_parser(sub)  # llmcourse plot RUN ... --out curves.png
    learner_commands.add_parsers(sub)  # llmcourse diff / llmcourse check, for learners and teachers
    sweep.add_parser(sub)  # llmcourse sweep: a grid of settings times seeds
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit status (book/faults.md, rule 1).

    0: done. 2: a mistake in what was asked (bad settings, a missing or existing file, data
    that changed, a diverged run). 1: a fault of the machine (a full disk, a read-only
    folder), naming the path, or memory too small for the sizes asked; or a bug, after its
    traceback. 130: Ctrl-C (also while Python is still loading torch). Every error is one line
    on stderr: ``llmcourse <command>: error: <what happened and what to do>``.
    """
    try:
        return run(argv)
    except KeyboardInterrupt:  # Ctrl-C while Python loads torch, before the command started
        words = list(sys.argv[1:] if argv is None else argv)
        name = next((w for w in words if not w.startswith("-")), None)
        where = f"llmcourse {name}" if name in COMMANDS else "llmcourse"
        print(f"{where}: error: interrupted before the command started; nothing was changed",
              file=sys.stderr)
        return 130


def run(argv: Sequence[str] | None) -> int:
    """:func:`main`, once Python runs: parse ``argv``, run the command, one line per fault."""
    parser = build_parser()
    args = parser.parse_args(argv)

    def fail(message: Any) -> None:
        print(f"llmcourse {args.command}: error: {one_line(message)}", file=sys.stderr)

    from llmcourse.data import ChecksumError, DownloadError  # these load torch (seconds)
    from llmcourse.train import CheckpointError, TrainingDiverged

    # On a real command line, Ctrl-C ends a command that computes promptly, even inside one
    # long torch operation (a notebook calling main([...]) keeps its kernel).
    guard: Any = contextlib.nullcontext()
    if argv is None and args.command in PROMPT_INTERRUPT:
        guard = prompt_interrupt(lambda: fail(INTERRUPTED))
    try:
        with guard:
            return int(args.func(args) or 0)
    except (UserError, ValueError, FileNotFoundError, FileExistsError,
            NotADirectoryError, IsADirectoryError, CheckpointError, DownloadError,
            ChecksumError, TrainingDiverged) as exc:
        # Errors about what was asked for (bad settings, missing files, offline downloads, a
        # diverged run): their messages say what to do, so print the message alone. (A bare
        # KeyError is not among them: ours are ValueErrors too, so a KeyError is a bug.) The
        # operating system's own errors about a path ("[Errno 20] Not a directory") get a line
        # that says what to do.
        fail((path_message(exc) if isinstance(exc, OSError) else None) or exc)
        return 2
    except OSError as exc:  # a full disk, a read-only folder, a permission
        fail(os_message(exc))
        return 1
    except KeyboardInterrupt:
        fail(INTERRUPTED)
        return 130
    except (MemoryError, RuntimeError) as exc:  # sizes too large for this machine, or a bug
        if not out_of_memory(exc):
            return bug(fail)
        fail(memory_message(exc, args.command))
        return 1
    except Exception:
        return bug(fail)


def bug(fail: Any) -> int:
    """An unexpected error: its traceback, then one line asking for a report (exit status 1)."""
    traceback.print_exc()
    fail("this is a bug in llmcourse, not in what you asked for: please report it with the "
         "command you ran and the traceback above")
    return 1
