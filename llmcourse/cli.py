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
import errno
import json
import sys
import traceback
from typing import Any, Sequence

import torch


class UserError(Exception):
    """An error in what the user asked for: printed without a traceback."""


# --------------------------------------------------------------------------------------------
# prepare
# --------------------------------------------------------------------------------------------


def cmd_prepare(args: argparse.Namespace) -> int:
    from llmcourse.data import prepare

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

    try:
        history = train_preset(preset, resume=args.resume, progress=not args.no_progress)
    except FileExistsError as exc:  # an earlier run's checkpoints are in out_dir
        raise UserError(str(exc)) from None
    except NothingToDo as exc:  # --resume to an iteration already reached: nothing written
        print(str(exc))
        return 0
    evals = [h for h in history if "val_loss" in h]
    if evals:
        last = evals[-1]
        print(f"done: iter {last.get('iter')} train loss {last.get('train_loss'):.4f} "
              f"val loss {last.get('val_loss'):.4f}; checkpoints in {preset['train']['out_dir']}")
    return 0


# --------------------------------------------------------------------------------------------
# sample
# --------------------------------------------------------------------------------------------


def _load(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    from llmcourse.device import pick_device
    from llmcourse.runs import load_trained

    try:
        return load_trained(args.checkpoint, device=pick_device(args.device))
    except FileNotFoundError as exc:
        raise UserError(str(exc)) from None


def cmd_sample(args: argparse.Namespace) -> int:
    from llmcourse.generate import stream
    from llmcourse.generate.compiled import CompileError

    from llmcourse.runs import check_run_data

    if args.compile and args.no_cache:
        raise UserError("--compile compiles the KV-cached decoding step; drop --no-cache (or "
                        "--compile)")
    prompt = _read_prompt(args)  # before any work: a bad prompt or output path costs nothing
    _check_output(args.output)
    model, tok, info = _load(args)
    check_run_data(info.run, "sample", need=False)  # refuses data changed under the run
    device = next(model.parameters()).device
    try:
        prompt.encode("utf-8")
    except UnicodeEncodeError as exc:  # bytes the terminal passed that are not UTF-8
        raise UserError(f"--prompt holds {exc.object[exc.start:exc.end]!r}, which is not "
                        "UTF-8 text; give the prompt in UTF-8") from None
    try:
        ids = tok.encode(prompt)
    except (KeyError, ValueError) as exc:  # e.g. a character the char tokenizer never saw
        detail = exc.args[0] if exc.args else exc
        raise UserError(f"--prompt {prompt!r} cannot be encoded by the run's tokenizer "
                        f"{tok.name!r}: {detail}") from None
    if not ids:
        raise UserError(f"--prompt {prompt!r} encodes to no tokens; give some text")
    vocab = model.config.vocab_size
    bad = [i for i in ids if not 0 <= i < vocab]
    if bad:
        raise UserError(f"--prompt {prompt!r} encodes to token id {bad[0]}, outside the "
                        f"model's vocabulary [0, {vocab}): run.json's tokenizer does not match "
                        "the checkpoint")
    eos = getattr(tok, "eot_token", None) if args.stop_at_eos else None
    idx = torch.tensor([ids], dtype=torch.long, device=device)
    sampling = dict(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                    min_p=args.min_p, repetition_penalty=args.repetition_penalty,
                    eos_id=eos, use_cache=not args.no_cache, compile=args.compile)
    print(f"# {info.checkpoint} (iter {info.iter_num}), seed {args.seed}", file=sys.stderr)
    # Sample s is drawn with seed + s, one at a time, by the same loop with and without
    # --stream: `--seed 5 --num-samples 3` repeats, and its sample 2 is `--seed 6`'s sample 1.
    with _Destination(args.output) as dest:
        for s in range(args.num_samples):
            if args.num_samples > 1:
                dest.write(f"--- sample {s + 1} ---\n")
            dest.write(prompt)
            pieces = stream(model, idx, args.max_new_tokens, seed=args.seed + s,
                            decode=tok.decode, **sampling)
            try:
                for piece in until_stop(pieces, args.stop or []):
                    dest.write(piece, flush=args.stream)
            except CompileError as exc:  # --compile on a machine that cannot compile
                raise UserError(str(exc).replace("compile=True", "--compile")) from None
            dest.write("\n", flush=True)
    if args.output:
        print(f"# wrote {args.num_samples} sample(s) to {args.output}", file=sys.stderr)
    return 0


def _read_prompt(args: argparse.Namespace) -> str:
    """The prompt: ``--prompt``, the text of ``--prompt-file`` (``-``: standard input), or a newline."""
    if args.prompt_file is None:
        prompt = args.prompt if args.prompt is not None else "\n"
        if prompt == "":
            raise UserError("--prompt is empty: give at least one character, e.g. --prompt 'ROMEO:'")
        return prompt
    name = "standard input" if args.prompt_file == "-" else args.prompt_file
    try:
        if args.prompt_file == "-":
            prompt = sys.stdin.buffer.read().decode("utf-8")
        else:
            with open(args.prompt_file, "rb") as f:
                prompt = f.read().decode("utf-8")
    except FileNotFoundError:
        raise UserError(f"--prompt-file {name} does not exist; give a text file, or - to read "
                        "standard input") from None
    except IsADirectoryError:
        raise UserError(f"--prompt-file {name} is a folder; give a text file") from None
    except UnicodeDecodeError:
        raise UserError(f"--prompt-file {name} is not UTF-8 text; save it as UTF-8") from None
    if prompt == "":
        raise UserError(f"--prompt-file {name} is empty: give at least one character")
    return prompt


def _check_output(path: str | None) -> None:
    """Refuse an ``--output`` that would replace a file or cannot be made, before any work."""
    import os

    if path is None:
        return
    if os.path.exists(path):
        raise UserError(f"--output {path} already exists and is never replaced; give a new file "
                        "name or remove it first")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UserError(f"--output {path}: the folder {folder} does not exist; create it first")


class _Destination:
    """Standard output, or ``--output``: written to a temporary file renamed when complete."""

    def __init__(self, path: str | None) -> None:
        self.path, self.file, self.tmp = path, sys.stdout, None

    def __enter__(self) -> "_Destination":
        if self.path is not None:
            import os
            import tempfile

            fd, self.tmp = tempfile.mkstemp(prefix=".llmcourse-sample-",
                                            dir=os.path.dirname(os.path.abspath(self.path)))
            self.file = os.fdopen(fd, "w", encoding="utf-8")
        return self

    def write(self, text: str, flush: bool = False) -> None:
        self.file.write(text)
        if flush:
            self.file.flush()

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if self.tmp is None:
            return
        import os

        self.file.close()
        if exc_type is None and not os.path.exists(self.path):
            os.replace(self.tmp, self.path)
        else:  # a failed or interrupted command leaves no half-written output
            os.unlink(self.tmp)
            if exc_type is None:
                raise UserError(f"--output {self.path} appeared while sampling and is not "
                                "replaced; the samples were not written")


def until_stop(pieces: Any, stops: Sequence[str]) -> Any:
    r"""Yield the text of ``pieces`` up to (not including) the first of the ``stops`` strings.

    Text that could be the start of a stop string is held back until it is known not to be;
    at a stop the iterator ``pieces`` is closed, so generation ends there.

    >>> "".join(until_stop(iter(["ab", "c\nd", "e"]), ["\nd"]))
    'abc'
    >>> "".join(until_stop(iter(["a", "b"]), ["bc"]))
    'ab'
    """
    held = ""
    longest = max((len(stop) for stop in stops), default=0)
    try:
        for piece in pieces:
            held += piece
            hits = [i for i in (held.find(stop) for stop in stops) if i >= 0]
            if hits:
                if min(hits):
                    yield held[:min(hits)]
                return
            # keep the longest tail that is the start of some stop string
            keep = next((k for k in range(min(longest - 1, len(held)), 0, -1)
                         if any(stop.startswith(held[-k:]) for stop in stops)), 0)
            if len(held) > keep:
                yield held[:len(held) - keep]
                held = held[len(held) - keep:]
        if held:
            yield held
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:
            close()


# --------------------------------------------------------------------------------------------
# eval
# --------------------------------------------------------------------------------------------


def cmd_eval(args: argparse.Namespace) -> int:
    from llmcourse.data import get_batch
    from llmcourse.train import (bits_per_byte, bits_per_token, bytes_per_token, estimate_loss,
                                 perplexity)

    from llmcourse.runs import check_run_data

    model, tok, info = _load(args)
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
    from llmcourse import bench

    if args.what == "matmul":
        for dtype in (torch.float32, torch.bfloat16):
            peak = bench.matmul_peak_flops(n=args.size, dtype=dtype)
            print(f"matmul {args.size}x{args.size} {str(dtype):15s} {peak / 1e9:8.1f} GFLOP/s")
        return 0
    if args.what == "train":
        result = bench.bench_train_preset(args.preset, iters=args.iters, dtype=args.dtype,
                                          compile=args.compile)
        print(result)
        return 0
    if args.what == "generate":
        print(bench.bench_generate(max_new_tokens=args.iters))
        return 0
    raise UserError(f"unknown benchmark {args.what!r}")


# --------------------------------------------------------------------------------------------
# parser
# --------------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (and the subcommand's help hint)."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _count(minimum: int) -> Any:
    """An argparse type: an integer >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def _stop_string(text: str) -> str:
    """An argparse type: a non-empty stop string; ``\\n`` and ``\\t`` mean newline and tab."""
    if text == "":
        raise argparse.ArgumentTypeError("is empty; give the text that ends a sample, e.g. "
                                         "--stop '\\n\\n'")
    return text.replace("\\n", "\n").replace("\\t", "\t")


def build_parser() -> argparse.ArgumentParser:
    from llmcourse.presets import list_presets

    parser = _Parser(
        prog="llmcourse", description="Prepare data, train, sample from and evaluate GPT models.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare", help="tokenize a dataset into train.bin/val.bin/meta.json")
    p.add_argument("dataset", help="a registered dataset (shakespeare, tinystories) or a text file")
    p.add_argument("--tokenizer", default="char",
                   help="char, gpt2, cl100k_base, or a saved tokenizer file (default: char)")
    p.add_argument("--out-dir", default=None, help="where to write (default: in the cache)")
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="share of tokens kept for validation when there is no official split")
    p.add_argument("--force", action="store_true", help="rebuild even if up to date")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("train", help="train a GPT from a preset")
    p.add_argument("--preset", default="shakespeare-char-cpu", choices=list_presets(),
                   help="starting configuration (default: shakespeare-char-cpu)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a setting, e.g. --set max_iters=500 --set model.n_layer=2")
    p.add_argument("--resume", action="store_true", help="continue from out_dir/ckpt.pt")
    p.add_argument("--print-config", action="store_true", help="print the resolved preset and exit")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=cmd_train)

    def add_checkpoint(q: argparse.ArgumentParser) -> None:
        q.add_argument("--checkpoint", required=True,
                       help="a run directory (best.pt or ckpt.pt inside) or a .pt file")
        q.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
        q.add_argument("--seed", type=_count(0), default=1337, help="random seed")

    p = sub.add_parser("sample", help="generate text from a trained checkpoint")
    add_checkpoint(p)
    given = p.add_mutually_exclusive_group()
    given.add_argument("--prompt", default=None, help="text to continue (default: a newline)")
    given.add_argument("--prompt-file", default=None, metavar="PATH",
                       help="read the prompt from a UTF-8 file; - reads standard input")
    p.add_argument("--stop", action="append", type=_stop_string, metavar="TEXT",
                   help="end a sample at the first TEXT it writes (not printed); repeatable")
    p.add_argument("--output", default=None, metavar="PATH",
                   help="write the samples to a new file PATH (never replaced) instead of stdout")
    p.add_argument("--num-samples", type=_count(1), default=1, help="samples to draw")
    p.add_argument("--max-new-tokens", type=_count(1), default=500,
                   help="tokens to generate per sample")
    p.add_argument("--temperature", type=float, default=0.8, help="0 means greedy")
    p.add_argument("--top-k", type=int, default=None, help="keep the k most likely tokens")
    p.add_argument("--top-p", type=float, default=None, help="nucleus sampling threshold in (0, 1]")
    p.add_argument("--min-p", type=float, default=None,
                   help="keep tokens with probability >= min_p times the top one's, in [0, 1]")
    p.add_argument("--repetition-penalty", type=float, default=1.0,
                   help="CTRL penalty for tokens already in the text, > 0 (1 = off)")
    p.add_argument("--stream", action="store_true", help="print tokens as they are generated")
    p.add_argument("--no-cache", action="store_true", help="recompute instead of using the KV cache")
    p.add_argument("--compile", action="store_true",
                   help="compile the decoding step with torch.compile: faster per token after "
                        "some seconds of compiling (needs a C++ compiler on a CPU)")
    p.add_argument("--stop-at-eos", action="store_true",
                   help="stop a sample at the tokenizer's end-of-text token")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("eval", help="loss, perplexity, bits per token and per byte of a checkpoint")
    add_checkpoint(p)
    p.add_argument("--split", default="val", choices=["train", "val"])
    p.add_argument("--iters", type=_count(1), default=50, help="batches to average")
    p.add_argument("--batch-size", type=_count(1), default=16)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("bench", help="measure matmul peak, training or generation speed")
    p.add_argument("what", choices=["matmul", "train", "generate"])
    p.add_argument("--preset", default="shakespeare-char-cpu", choices=list_presets())
    p.add_argument("--iters", type=_count(1), default=20,
                   help="timed iterations (train) or tokens (generate)")
    p.add_argument("--size", type=_count(1), default=1024,
                   help="matrix size for the matmul benchmark")
    p.add_argument("--dtype", default="float32", help="float32 or bfloat16 autocast")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.set_defaults(func=cmd_bench)

    # Subcommands that live beside the code they drive:
    from llmcourse import learner, sweep
    from llmcourse.train.plots import add_plot_parser

    add_plot_parser(sub)     # llmcourse plot RUN ... --out curves.png
    learner.add_parsers(sub)  # llmcourse diff / llmcourse check, for learners and teachers
    sweep.add_parser(sub)     # llmcourse sweep: a grid of settings times seeds
    return parser


def _os_message(exc: OSError) -> str:
    """One line for a fault of the machine, naming the path and what to do."""
    where = exc.filename or "a file"
    if exc.errno == errno.ENOSPC:
        return f"no space left on the device while writing {where}: free some space or " \
               "choose a folder on another disk (out_dir / --out-dir)"
    if exc.errno == errno.EROFS:
        return f"{where} is on a read-only file system: choose a writable folder"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied for {where}: choose a folder you can write to, or fix its " \
               "permissions"
    if exc.errno == errno.EDQUOT:
        return f"disk quota exceeded while writing {where}: free some space"
    return f"{exc.strerror or exc} ({where})"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from llmcourse.data import ChecksumError, DownloadError
    from llmcourse.train import CheckpointError, TrainingDiverged

    def fail(message: Any) -> None:
        print(f"llmcourse {args.command}: error: {message}", file=sys.stderr)

    try:
        return int(args.func(args) or 0)
    except (UserError, ValueError, FileNotFoundError, FileExistsError,
            NotADirectoryError, IsADirectoryError, CheckpointError, DownloadError,
            ChecksumError, TrainingDiverged) as exc:
        # Errors about what was asked for (bad settings, missing files, offline downloads, a
        # diverged run): their messages say what to do, so print the message alone. (A bare
        # KeyError is not among them: ours are ValueErrors too, so a KeyError is a bug.)
        fail(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc)
        return 2
    except OSError as exc:  # a full disk, a read-only folder, a permission
        fail(_os_message(exc))
        return 1
    except KeyboardInterrupt:
        fail("interrupted; checkpoints and prepared data already written are complete")
        return 130
    except Exception:
        traceback.print_exc()
        fail("this is a bug in llmcourse, not in what you asked for: please report it with the "
             "command you ran and the traceback above")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
