"""Checks for day 24, "A command-line generator": the parser, the samples, and the script run for real.

Each ``check_*`` prints one line (a pass, a specific hint, or "not done yet") and returns a
verdict; none raises. :func:`reference_samples` is the sampling rule the lesson specifies -
sample ``s`` is drawn with ``seed + s`` - and the one the checks compare with; it is also the
rule of ``llmcourse sample``. :func:`check_script` runs the learner's script in a subprocess,
as a user would.

Example::

    >>> import argparse
    >>> from llmcourse.checks import day24
    >>> ok = day24.check_build_parser(lambda: argparse.ArgumentParser())
    ❌ build_parser: parse_args(['--checkpoint', 'run/x', '--prompt', 'KING', '--num-samples', '3', '--seed', '11', '--max-new-tokens', '40', '--temperature', '0.7']) failed: it exits with status 2 (add every option of the task)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import torch

from llmcourse.checks._core import CheckFailed, EarlierNotDone, as_list, call, check, kind_of
from llmcourse.generate import generate

__all__ = ["reference_samples", "check_build_parser", "check_generate_samples", "check_script"]

DEFAULTS = {"prompt": "\n", "num_samples": 1, "seed": 0, "max_new_tokens": 200, "temperature": 0.8}


def reference_samples(model: Any, tokenizer: Any, prompt: str, num_samples: int,
                      max_new_tokens: int, temperature: float, seed: int) -> list[str]:
    """``num_samples`` texts, prompt included; sample ``s`` is drawn with ``seed + s``.

    >>> from llmcourse.model import GPT, GPTConfig
    >>> from llmcourse.tokenizers import CharTokenizer
    >>> tok = CharTokenizer.from_text("abc ")
    >>> m = GPT(GPTConfig(vocab_size=4, block_size=8, n_layer=1, n_head=1, n_embd=8))
    >>> a = reference_samples(m, tok, "ab", 2, 5, 1.0, seed=3)
    >>> len(a), all(s.startswith("ab") and len(s) == 7 for s in a)
    (2, True)
    >>> reference_samples(m, tok, "ab", 1, 5, 1.0, seed=4) == a[1:]
    True
    """
    ids = tokenizer.encode(prompt)
    return [tokenizer.decode(generate(model, ids, max_new_tokens, temperature=temperature,
                                      seed=seed + s)[0].tolist()) for s in range(num_samples)]


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[Any, int | None, str]:
    """``(namespace or None, exit status or None, stderr)`` of ``parser.parse_args(argv)``."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            return parser.parse_args(argv), None, err.getvalue()
        except SystemExit as exc:
            return None, (exc.code if isinstance(exc.code, int) else 1), err.getvalue()


@check("build_parser")
def check_build_parser(build_parser: Callable[[], Any]) -> None:
    """Exercise 1: options, types, defaults, and refusing a count below 1."""
    parser = call(build_parser, shown="build_parser()")
    if not isinstance(parser, argparse.ArgumentParser):
        raise CheckFailed(f"build_parser() should return an argparse.ArgumentParser, got "
                          f"{kind_of(parser)}; return the parser after adding the options")
    argv = ["--checkpoint", "run/x", "--prompt", "KING", "--num-samples", "3", "--seed", "11",
            "--max-new-tokens", "40", "--temperature", "0.7"]
    args, status, _ = _parse(parser, argv)
    if args is None:
        raise CheckFailed(f"parse_args({argv}) failed: it exits with status {status} (add every "
                          "option of the task)")
    want = {"checkpoint": "run/x", "prompt": "KING", "num_samples": 3, "seed": 11,
            "max_new_tokens": 40, "temperature": 0.7}
    for name, value in want.items():
        if not hasattr(args, name):
            raise CheckFailed(f"the parsed arguments have no {name!r}; add the option "
                              f"--{name.replace('_', '-')}")
        got = getattr(args, name)
        if isinstance(value, (int, float)) and isinstance(got, str):
            kind = "positive_int" if name == "num_samples" else ("float" if name == "temperature" else "int")
            raise CheckFailed(f"--{name.replace('_', '-')} {got} gives the string {got!r}; argparse "
                              f"keeps text unless the option has type={kind}")
        if got != value or type(got) is not type(value):
            raise CheckFailed(f"--{name.replace('_', '-')} parsed as {got!r} ({kind_of(got)}), "
                              f"should be {value!r}")
    args, status, _ = _parse(parser, ["--checkpoint", "run/x"])
    if args is None:
        raise CheckFailed(f"parse_args(['--checkpoint', 'run/x']) exits with status {status}: every "
                          "option but --checkpoint needs a default")
    for name, value in DEFAULTS.items():
        got = getattr(args, name)
        if got != value:
            raise CheckFailed(f"the default of --{name.replace('_', '-')} is {got!r}, should be {value!r}")
    for bad, why in ((["--num-samples", "0"], "0 samples"), (["--num-samples", "two"], "'two'"),
                     (["--num-samples", "-2"], "-2 samples"), (["--seed", "1.5"], "seed 1.5"),
                     ([], "no --checkpoint")):
        argv = (["--checkpoint", "run/x"] if bad else []) + bad
        args, status, err = _parse(parser, argv)
        if status != 2:
            got = "accepts it" if args is not None else f"exits with status {status}"
            raise CheckFailed(f"parse_args({argv}) {got}; {why} must be refused with a usage error "
                              "(status 2): raise argparse.ArgumentTypeError in positive_int")


def _toy() -> tuple[Any, Any]:
    from llmcourse.model import GPT, GPTConfig
    from llmcourse.tokenizers import CharTokenizer

    tok = CharTokenizer.from_text("abcdefgh ijk\n")
    torch.manual_seed(5)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=16, n_layer=1, n_head=1, n_embd=8))
    return model.eval(), tok


@check("generate_samples")
def check_generate_samples(generate_samples: Callable[..., Any]) -> None:
    """Exercise 2: a list of ``num_samples`` texts, sample ``s`` drawn with ``seed + s``."""
    model, tok = _toy()
    setting = dict(prompt="ab", num_samples=3, max_new_tokens=12, temperature=0.3, seed=21)
    shown = ("generate_samples(model, tokenizer, prompt='ab', num_samples=3, max_new_tokens=12, "
             "temperature=0.3, seed=21)")
    got = as_list(call(generate_samples, model, tok, **setting, shown=shown), "generate_samples",
                  of=str)
    want = reference_samples(model, tok, **setting)
    if len(got) != 3:
        raise CheckFailed(f"{shown} returned {len(got)} sample(s); return num_samples of them "
                          "(one per value of s in range(num_samples))")
    again = as_list(call(generate_samples, model, tok, **setting, shown=shown), "generate_samples",
                    of=str)
    if again != got:
        raise CheckFailed(f"{shown} gives other samples each time it is called: the seed is not "
                          "applied; pass seed=seed + s to generate")
    if not all(s.startswith("ab") for s in got):
        raise CheckFailed("each sample should start with the prompt 'ab': decode the whole row "
                          "generate returned, prompt included")
    if got == want:
        return
    if len(set(got)) == 1:
        raise CheckFailed(f"{shown} returns 3 identical samples: every sample uses the same seed; "
                          "draw sample s with seed + s")
    ids = tok.encode("ab")
    batch = [tok.decode(r) for r in generate(model, ids, 12, temperature=0.3, num_samples=3,
                                             seed=21).tolist()]
    if got == batch:
        raise CheckFailed("the samples come from one batched call (num_samples=3, seed=seed); "
                          "the task draws sample s alone with seed + s, so that --seed 22 "
                          "reproduces sample 2 of --seed 21")
    if got == reference_samples(model, tok, "ab", 3, 12, 1.0, 21):
        raise CheckFailed("the samples ignore the temperature; pass temperature=temperature to "
                          "generate")
    if got == reference_samples(model, tok, "ab", 3, 12, 0.3, 0):
        raise CheckFailed("the samples ignore the seed argument (they are those of seed 0)")
    raise CheckFailed(f"{shown} returned {got[0]!r}, ... but sample 1 should be {want[0]!r}: "
                      "draw sample s with generate(model, ids, max_new_tokens, "
                      "temperature=temperature, seed=seed + s)")


_EXERCISES = {"positive_int": 1, "build_parser": 1, "generate_samples": 2}


def _run(script: Path, argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONIOENCODING="utf-8")
    return subprocess.run([sys.executable, str(script), *argv], capture_output=True, text=True,
                          env=env, timeout=timeout)


def _not_done(stderr: str) -> None:
    """A stub's NotImplementedError in the script: name the exercise it belongs to."""
    if "NotImplementedError" not in stderr:
        return
    frames = re.findall(r'File "[^"]*", line \d+, in (\w+)', stderr)
    name = frames[-1] if frames else ""
    if name in _EXERCISES:
        raise EarlierNotDone(name, _EXERCISES[name])
    raise NotImplementedError


@check("my_generate.py")
def check_script(script: str | os.PathLike[str], checkpoint: str | os.PathLike[str],
                 timeout: float = 300) -> None:
    """Exercise 3: run the script as a user would; compare its output with the reference."""
    from llmcourse.runs import load_trained

    script = Path(script)
    if not script.is_file():
        raise CheckFailed(f"{script} does not exist; run the cell that writes the script first")
    argv = ["--checkpoint", str(checkpoint), "--prompt", "KI", "--num-samples", "2", "--seed", "5",
            "--max-new-tokens", "15", "--temperature", "0.9"]
    shown = f"python {script.name} {' '.join(argv[2:])}"
    done = _run(script, argv, timeout)
    if done.returncode != 0:
        _not_done(done.stderr)
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise CheckFailed(f"`{shown}` exited with status {done.returncode}: {last}")
    model, tok, _ = load_trained(checkpoint)
    want = "".join(s + "\n---\n" for s in reference_samples(model, tok, "KI", 2, 15, 0.9, 5))
    if done.stdout != want:
        blocks = done.stdout.split("\n---\n")
        if done.stdout.count("\n---\n") == 1:
            raise CheckFailed(f"`{shown}` printed 1 sample; print --num-samples of them, each "
                              "followed by a line ---")
        if "---" not in done.stdout:
            raise CheckFailed(f"`{shown}` printed no --- lines; print each sample, then a line ---")
        again = _run(script, argv, timeout)
        if again.stdout != done.stdout:
            raise CheckFailed(f"`{shown}` printed other samples the second time: --seed is not applied")
        raise CheckFailed(f"`{shown}` printed {blocks[0]!r} first, expected {want.split(chr(10) + '---')[0]!r}: "
                          "main should print generate_samples(...) with the parsed arguments")
    bad = ["--checkpoint", str(checkpoint), "--num-samples", "0"]
    done = _run(script, bad, timeout)
    if done.returncode != 2:
        raise CheckFailed(f"`python {script.name} --num-samples 0` exited with status "
                          f"{done.returncode}; the parser should refuse it (status 2)")
