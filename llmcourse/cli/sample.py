"""``llmcourse sample``: text from a trained checkpoint, to the terminal or to a new file.

::

    llmcourse sample --checkpoint out/shakespeare-char-cpu --prompt "ROMEO:" --num-samples 2

Every check comes before the model is loaded or a token drawn: a bad prompt, an ``--output``
that exists, ``--stop-at-eos`` with a tokenizer that has no end-of-text token. ``--output`` is
written through :func:`llmcourse.atomic.write_atomic`: a failed or interrupted command leaves
no half-written file, and an existing file is never replaced.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from typing import IO, Any, Sequence

from llmcourse.cli.args import UserError, check_parent_folders, check_writable_folder


def load_checkpoint_args(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """``(model, tokenizer, info)`` for ``--checkpoint`` and ``--device``."""
    from llmcourse.device import pick_device
    from llmcourse.runs import load_trained

    try:
        return load_trained(args.checkpoint, device=pick_device(args.device))
    except FileNotFoundError as exc:
        raise UserError(str(exc)) from None


def cmd_sample(args: argparse.Namespace) -> int:
    import torch

    from llmcourse.generate import Settings, end_of_text_id, stream
    from llmcourse.runs import check_run_data

    compile_errors: tuple[type[Exception], ...] = ()  # the compiled step's module, only if asked
    if args.compile:
        from llmcourse.generate.compiled import CompileError
        compile_errors = (CompileError,)

    if args.compile and args.no_cache:
        raise UserError("--compile compiles the KV-cached decoding step; drop --no-cache (or "
                        "--compile)")
    prompt = read_prompt(args)  # before any work: a bad prompt or output path costs nothing
    check_output(args.output)
    sampling = dict(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                    min_p=args.min_p, repetition_penalty=args.repetition_penalty,
                    use_cache=not args.no_cache, compile=args.compile)
    Settings(**sampling)  # a bad --temperature, --top-k, ... is refused before the model loads
    model, tok, info = load_checkpoint_args(args)
    check_run_data(info.run, "sample", need=False)  # refuses data changed under the run
    device = next(model.parameters()).device
    ids = encode_prompt(prompt, tok, model.config.vocab_size)
    eos = None
    if args.stop_at_eos:
        try:
            eos = end_of_text_id(tok)
        except ValueError:
            raise UserError(f"--stop-at-eos: the run's tokenizer {tok.name!r} has no "
                            "end-of-text token; drop --stop-at-eos, or end samples at a text "
                            "with --stop TEXT (e.g. --stop '\\n\\n')") from None
    idx = torch.tensor([ids], dtype=torch.long, device=device)
    sampling["eos_id"] = eos
    print(f"# {info.checkpoint} (iter {info.iter_num}), seed {args.seed}", file=sys.stderr)

    # Sample s is drawn with seed + s, one at a time, by the same loop with and without
    # --stream: `--seed 5 --num-samples 3` repeats, and its sample 2 is `--seed 6`'s sample 1.
    def write_samples(dest: IO[str]) -> None:
        for s in range(args.num_samples):
            if args.num_samples > 1:
                dest.write(f"--- sample {s + 1} ---\n")
            dest.write(prompt)
            pieces = stream(model, idx, args.max_new_tokens, seed=args.seed + s,
                            decode=tok.decode, **sampling)
            try:
                for piece in until_stop(pieces, args.stop or []):
                    dest.write(piece)
                    if args.stream:
                        dest.flush()
            except compile_errors as exc:  # --compile on a machine that cannot compile
                raise UserError(str(exc).replace("compile=True", "--compile")) from None
            dest.write("\n")
            dest.flush()

    if args.output is None:
        write_samples(sys.stdout)
        return 0
    write_new_text_file(args.output, write_samples)
    print(f"# wrote {args.num_samples} sample(s) to {args.output}", file=sys.stderr)
    return 0


def write_new_text_file(path: str, write: Any) -> None:
    """Call ``write(text_file)`` into a temporary file renamed to ``path`` when complete.

    The file is never replaced: one that appeared meanwhile is kept and the command refused.
    """
    from llmcourse.atomic import write_atomic

    def through_text(fh: IO[bytes]) -> None:
        text = io.TextIOWrapper(fh, encoding="utf-8")
        try:
            write(text)
            text.flush()
        finally:
            text.detach()  # the binary file stays open for write_atomic to fsync

    try:
        write_atomic(path, through_text, overwrite=False)
    except FileExistsError:
        raise UserError(f"--output {path} appeared while sampling and is not replaced; the "
                        "samples were not written") from None


def encode_prompt(prompt: str, tok: Any, vocab: int) -> list[int]:
    """The prompt's token ids, or a one-line error saying why it cannot be encoded."""
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
    bad = [i for i in ids if not 0 <= i < vocab]
    if bad:
        raise UserError(f"--prompt {prompt!r} encodes to token id {bad[0]}, outside the "
                        f"model's vocabulary [0, {vocab}): run.json's tokenizer does not match "
                        "the checkpoint")
    return ids


def read_prompt(args: argparse.Namespace) -> str:
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


def check_output(path: str | None) -> None:
    """Refuse an ``--output`` that would replace a file or cannot be made, before any work."""
    if path is None:
        return
    check_parent_folders(path, "--output")
    if os.path.exists(path):
        raise UserError(f"--output {path} already exists and is never replaced; give a new file "
                        "name or remove it first")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UserError(f"--output {path}: the folder {folder} does not exist; create it first")
    check_writable_folder(folder)  # a read-only folder fails now, not after the sampling


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
