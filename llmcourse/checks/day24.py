"""Checks for day 24, "A command-line generator": the parser, the samples, and the script run for real.

Each ``check_*`` prints one line (a pass, the hint of a typical mistake from the exercise's
table, or "not done yet") and returns a verdict; none raises. The parser is compared with
:func:`reference_build_parser` on a battery of command lines (every option at a non-default
value, the defaults, and the ones that must be refused with status 2); the samples with
:func:`reference_samples` (sample ``s`` is drawn with ``seed + s``, the rule of ``llmcourse
sample``) on several settings, called twice to see that the seed is applied.
:func:`check_script` runs the learner's script in a subprocess, as a user would.

Example::

    >>> import argparse
    >>> from llmcourse.checks import day24
    >>> ok = day24.check_build_parser(lambda: argparse.ArgumentParser())
    ❌ build_parser: ...
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

from llmcourse.checks._core import (Case, CheckFailed, EarlierNotDone, Mistake, as_list, check,
                                    compare, kind_of)
from llmcourse.generate import generate
from llmcourse.threads import kernel_env

__all__ = ["reference_samples", "reference_build_parser", "check_build_parser",
           "check_generate_samples", "check_script", "BUILD_PARSER", "GENERATE_SAMPLES", "SCRIPT",
           "REFERENCE_SCRIPT"]

DEFAULTS = {"prompt": "\n", "num_samples": 1, "seed": 0, "max_new_tokens": 200, "temperature": 0.8}
_OPTIONS = ("checkpoint", "prompt", "num_samples", "seed", "max_new_tokens", "temperature")


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


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def reference_build_parser(num_type: Any = _positive_int, seed_type: Any = int,
                           temperature_type: Any = float, tokens_type: Any = _positive_int,
                           seed_default: int = 0, prompt_default: str = "\n",
                           temperature: bool = True, checkpoint_required: bool = True,
                           num_name: str = "--num-samples", checkpoint_positional: bool = False
                           ) -> argparse.ArgumentParser:
    """The parser of the task; the keyword arguments make the typical wrong ones of the table."""
    p = argparse.ArgumentParser(prog="my_generate")
    if checkpoint_positional:
        p.add_argument("checkpoint")
    else:
        p.add_argument("--checkpoint", required=checkpoint_required)
    p.add_argument("--prompt", default=prompt_default)
    p.add_argument(num_name, type=num_type, default=1)
    p.add_argument("--seed", type=seed_type, default=seed_default)
    p.add_argument("--max-new-tokens", type=tokens_type, default=200)
    if temperature:
        p.add_argument("--temperature", type=temperature_type, default=0.8)
    return p


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[Any, int | None, str]:
    """``(namespace or None, exit status or None, stderr)`` of ``parser.parse_args(argv)``."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            return parser.parse_args(argv), None, err.getvalue()
        except SystemExit as exc:
            return None, (exc.code if isinstance(exc.code, int) else 1), err.getvalue()


def _described(value: Any) -> str:
    if isinstance(value, BaseException):  # a type function that returns its error: same words
        return f"{type(value).__name__} returned as the value, not raised"
    return f"{value!r} ({type(value).__name__})"


def _run_parser(impl: Any, case: Case) -> dict[str, Any]:
    """``build_parser()`` parses ``case.args[0]``: the exit status, each option as value (type)."""
    parser = impl()
    if not isinstance(parser, argparse.ArgumentParser):
        raise CheckFailed(f"build_parser() should return an argparse.ArgumentParser, got "
                          f"{kind_of(parser)}; return the parser after adding the options")
    args, status, err = _parse(parser, list(case.args[0]))
    unknown = re.search(r"unrecognized arguments: (.*)", err)
    obs: dict[str, Any] = {"unrecognized arguments": unknown.group(1).strip() if unknown else None,
                           "exit status": status}
    for name in _OPTIONS:
        obs[f"--{name.replace('_', '-')}"] = ("not parsed" if args is None else
                                              _described(getattr(args, name))
                                              if hasattr(args, name) else "missing")
    return obs


def _p_checkpoint_default() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="my_generate")
    p.add_argument("--checkpoint", default="out/run")  # never refused: a default, not required
    p.add_argument("--prompt", default="\n")
    p.add_argument("--num-samples", type=_positive_int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-new-tokens", type=_positive_int, default=200)
    p.add_argument("--temperature", type=float, default=0.8)
    return p


def _positive_int_refuses_1(text: str) -> int:  # value <= 1: the boundary the task names
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 1:
        raise argparse.ArgumentTypeError(f"must be > 1, got {value}")
    return value


def _positive_int_via_float(text: str) -> int:  # int(float(text)): "2.5" becomes 2
    try:
        value = int(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _positive_int_abs(text: str) -> int:  # abs(int(text)): "-2" becomes 2
    value = abs(int(text))
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _positive_int_returns(text: str) -> Any:  # return instead of raise: the error is the value
    try:
        value = int(text)
    except ValueError:
        return argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    if value < 1:
        return argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _m(**changes: Any) -> Callable[[], argparse.ArgumentParser]:
    def build_parser() -> argparse.ArgumentParser:
        return reference_build_parser(**changes)
    return build_parser


BUILD_PARSER = [
    Mistake("no type on --num-samples", _m(num_type=None),
            hint="--num-samples gives a string: argparse keeps text unless the option has a "
                 "type; add type=positive_int"),
    Mistake("no type on --seed", _m(seed_type=None),
            hint="--seed gives a string: argparse keeps text unless the option has type=int"),
    Mistake("no type on --temperature", _m(temperature_type=None),
            hint="--temperature gives a string: argparse keeps text unless the option has "
                 "type=float"),
    Mistake("type=int for --num-samples", _m(num_type=int),
            hint="--num-samples 0 (or -2) is accepted; 0 samples must be refused with a usage "
                 "error (status 2): type=positive_int, which raises argparse.ArgumentTypeError "
                 "below 1"),
    Mistake("type=int for --max-new-tokens", _m(tokens_type=int),
            hint="--max-new-tokens 0 is accepted; use type=positive_int for it too"),
    Mistake("float seed", _m(seed_type=float),
            hint="--seed parses as a float; a seed is a whole number: type=int (and 1.5 must "
                 "be refused)"),
    Mistake("seed default", _m(seed_default=1337),
            hint="the default of --seed is not 0; the task's defaults: prompt '\\n', 1 sample, "
                 "seed 0, 200 new tokens, temperature 0.8"),
    Mistake("prompt default", _m(prompt_default=""),
            hint="the default of --prompt should be '\\n' (a newline), the start of a line"),
    Mistake("no --temperature", _m(temperature=False),
            hint="--temperature is not an option (parse_args exits with status 2); add "
                 "parser.add_argument('--temperature', type=float, default=0.8)"),
    Mistake("checkpoint not required", _m(checkpoint_required=False),
            hint="a command line without --checkpoint is accepted; it must be refused: "
                 "add_argument('--checkpoint', required=True)"),
    Mistake("--num_samples", _m(num_name="--num_samples"),
            hint="the option is spelled with dashes, --num-samples (argparse turns it into "
                 "args.num_samples by itself)"),
    Mistake("type=int for --temperature", _m(temperature_type=int),
            hint="--temperature 0.7 is refused: a temperature is a real number, type=float"),
    Mistake("seed must be positive", _m(seed_type=_positive_int),
            hint="--seed -3 (or 0) is refused: any whole number is a seed, type=int (only the "
                 "counts are positive_int)"),
    Mistake("prompt default backslash-n", _m(prompt_default="\\n"),
            hint="the default of --prompt is the two characters \\ and n; write \"\\n\" in "
                 "Python, one newline character"),
    Mistake("checkpoint with a default", _p_checkpoint_default,
            hint="a command line without --checkpoint is accepted (a default?); it must be "
                 "refused: add_argument('--checkpoint', required=True), no default"),
    Mistake("positive_int refuses 1", _m(num_type=_positive_int_refuses_1,
                                         tokens_type=_positive_int_refuses_1),
            hint="positive_int refuses 1 (value <= 1?); 1 is a whole number >= 1: raise "
                 "argparse.ArgumentTypeError only when value < 1"),
    Mistake("positive_int accepts 2.5", _m(num_type=_positive_int_via_float,
                                           tokens_type=_positive_int_via_float),
            hint="positive_int accepts '2.5' (int(float(text)) cuts it to 2); a count must be "
                 "a whole number: int(text), and ArgumentTypeError when that raises ValueError"),
    Mistake("positive_int takes abs", _m(num_type=_positive_int_abs,
                                         tokens_type=_positive_int_abs),
            hint="positive_int turns '-2' into 2 (abs?); a negative count must be refused: "
                 "raise argparse.ArgumentTypeError when int(text) < 1"),
    Mistake("positive_int returns the error", _m(num_type=_positive_int_returns,
                                                 tokens_type=_positive_int_returns),
            hint="positive_int returned the ArgumentTypeError instead of raising it, so "
                 "--num-samples 0 is accepted: raise argparse.ArgumentTypeError(...)"),
    Mistake("positional checkpoint", _m(checkpoint_positional=True),
            hint="--checkpoint is an option, not a positional argument: "
                 "add_argument('--checkpoint', required=True)"),
]


def _parser_cases() -> list[Case]:
    x = ["--checkpoint", "run/x"]
    full = x + ["--prompt", "KING", "--num-samples", "3", "--seed", "11", "--max-new-tokens",
                "40", "--temperature", "0.7"]
    return [Case(f"parse_args({argv})", argv) for argv in (
        full, x, x + ["--seed", "-3", "--temperature", "0", "--prompt", ""],
        x + ["--num-samples", "0"], x + ["--num-samples", "-2"], x + ["--num-samples", "two"],
        x + ["--max-new-tokens", "0"], x + ["--seed", "1.5"], x + ["--temperature", "hot"], [],
        x + ["--num-samples", "1", "--max-new-tokens", "1"], x + ["--num-samples", "2.5"],
        x + ["--max-new-tokens", "-4"])]


@check("build_parser", mistakes=BUILD_PARSER)
def check_build_parser(build_parser: Callable[[], Any]) -> None:
    """Exercise 1: options, types, defaults, and refusing a count below 1 (status 2)."""
    compare(build_parser, reference_build_parser, _parser_cases(),
            name="build_parser().parse_args(argv)", run=_run_parser, mistakes=BUILD_PARSER)


def _toy() -> tuple[Any, Any]:
    from llmcourse.model import GPT, GPTConfig
    from llmcourse.tokenizers import CharTokenizer

    tok = CharTokenizer.from_text("abcdefgh ijk\n")
    torch.manual_seed(5)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=16, n_layer=1, n_head=1, n_embd=8))
    return model.eval(), tok


def _run_samples(impl: Any, case: Case) -> dict[str, Any]:
    """The samples of one call, and whether a second call with the same seed gives them again."""
    torch.manual_seed(1)  # the global generator differs between the two calls: an ignored
    first = as_list(impl(*case.args, **case.kwargs), "generate_samples(...)", of=str)
    torch.manual_seed(2)  # seed shows, and what it draws is the same for the table's mistakes
    state = torch.get_rng_state()
    again = as_list(impl(*case.args, **case.kwargs), "generate_samples(...)", of=str)
    untouched = bool(torch.equal(torch.get_rng_state(), state))
    return {"samples": first, "the same seed gives the same samples": again == first,
            "torch's global random state left alone": untouched}


def _g_no_seed(model, tokenizer, prompt, num_samples, max_new_tokens, temperature, seed):
    ids = tokenizer.encode(prompt)
    return [tokenizer.decode(generate(model, ids, max_new_tokens,
                                      temperature=temperature)[0].tolist())
            for _ in range(num_samples)]


def _g_one_sample(model, tokenizer, prompt, num_samples, max_new_tokens, temperature, seed):
    return reference_samples(model, tokenizer, prompt, 1, max_new_tokens, temperature, seed)


def _g_same_seed(model, tokenizer, prompt, num_samples, max_new_tokens, temperature, seed):
    return reference_samples(model, tokenizer, prompt, 1, max_new_tokens, temperature,
                             seed) * num_samples


def _g_batched(model, tokenizer, prompt, num_samples, max_new_tokens, temperature, seed):
    out = generate(model, tokenizer.encode(prompt), max_new_tokens, temperature=temperature,
                   num_samples=num_samples, seed=seed)
    return [tokenizer.decode(r) for r in out.tolist()]


def _g_no_temperature(model, tokenizer, prompt, num_samples, max_new_tokens, temperature, seed):
    return reference_samples(model, tokenizer, prompt, num_samples, max_new_tokens, 1.0, seed)


def _g_no_prompt(model, tokenizer, prompt, num_samples, max_new_tokens, temperature, seed):
    return [s[len(prompt):] for s in reference_samples(model, tokenizer, prompt, num_samples,
                                                       max_new_tokens, temperature, seed)]


def _g_seed_0(model, tokenizer, prompt, num_samples, max_new_tokens, temperature, seed):
    return reference_samples(model, tokenizer, prompt, num_samples, max_new_tokens, temperature, 0)


def _g_seed_times(model, tokenizer, prompt, num_samples, max_new_tokens, temperature, seed):
    ids = tokenizer.encode(prompt)
    return [tokenizer.decode(generate(model, ids, max_new_tokens, temperature=temperature,
                                      seed=seed * (s + 1))[0].tolist()) for s in range(num_samples)]


def _g_seed_from_1(model, tokenizer, prompt, num_samples, max_new_tokens, temperature, seed):
    ids = tokenizer.encode(prompt)
    return [tokenizer.decode(generate(model, ids, max_new_tokens, temperature=temperature,
                                      seed=seed + s)[0].tolist())
            for s in range(1, num_samples + 1)]


def _g_global_seed(model, tokenizer, prompt, num_samples, max_new_tokens, temperature, seed):
    ids = tokenizer.encode(prompt)
    texts = []
    for s in range(num_samples):
        torch.manual_seed(seed + s)  # seeds torch itself, then draws from the global generator
        texts.append(tokenizer.decode(generate(model, ids, max_new_tokens,
                                               temperature=temperature)[0].tolist()))
    return texts


def _g_whole_tensor(model, tokenizer, prompt, num_samples, max_new_tokens, temperature, seed):
    ids = tokenizer.encode(prompt)
    return [tokenizer.decode(generate(model, ids, max_new_tokens, temperature=temperature,
                                      seed=seed + s).tolist()) for s in range(num_samples)]


def _g_tokens_written_in(model, tokenizer, prompt, num_samples, max_new_tokens, temperature,
                         seed):  # 200 new tokens, whatever max_new_tokens says
    return reference_samples(model, tokenizer, prompt, num_samples, 200, temperature, seed)


def _g_stripped(model, tokenizer, prompt, num_samples, max_new_tokens, temperature, seed):
    return [text.strip() for text in reference_samples(model, tokenizer, prompt, num_samples,
                                                       max_new_tokens, temperature, seed)]


def _g_global_seed_once(model, tokenizer, prompt, num_samples, max_new_tokens, temperature,
                        seed):  # torch.manual_seed(seed) once, then the global generator
    torch.manual_seed(seed)
    ids = tokenizer.encode(prompt)
    return [tokenizer.decode(generate(model, ids, max_new_tokens,
                                      temperature=temperature)[0].tolist())
            for _ in range(num_samples)]


def _g_one_token_short(model, tokenizer, prompt, num_samples, max_new_tokens, temperature, seed):
    return reference_samples(model, tokenizer, prompt, num_samples, max_new_tokens - 1,
                             temperature, seed)


GENERATE_SAMPLES = [
    Mistake("torch.manual_seed once", _g_global_seed_once,
            hint="seeded torch's global generator once (torch.manual_seed(seed)) and drew every "
                 "sample from it; pass seed=seed + s to generate, so that sample s is drawn alone"),
    Mistake("one token short", _g_one_token_short,
            hint="each sample has one new token too few: pass max_new_tokens to generate as it "
                 "is (it adds exactly that many)"),
    Mistake("max_new_tokens ignored", _g_tokens_written_in,
            hint="the samples do not have max_new_tokens new tokens; pass the max_new_tokens "
                 "argument to generate (not a number written in)"),
    Mistake("stripped", _g_stripped,
            hint="stripped the spaces and newlines at the ends of each sample (.strip()); "
                 "return the decoded text as it is, prompt and continuation"),
    Mistake("seed not applied", _g_no_seed,
            hint="gives other samples each time it is called: the seed is not applied; pass "
                 "seed=seed + s to generate"),
    Mistake("one sample", _g_one_sample,
            hint="returned 1 sample; return num_samples of them (one per value of s in "
                 "range(num_samples))"),
    Mistake("same seed for all", _g_same_seed,
            hint="every sample is the same: every sample uses the same seed; draw sample s with "
                 "seed + s"),
    Mistake("batched", _g_batched,
            hint="the samples come from one batched call (num_samples=n, seed=seed); the task "
                 "draws sample s alone with seed + s, so that --seed 22 reproduces sample 2 of "
                 "--seed 21"),
    Mistake("no temperature", _g_no_temperature,
            hint="the samples ignore the temperature; pass temperature=temperature to generate"),
    Mistake("no prompt", _g_no_prompt,
            hint="each sample should start with the prompt: decode the whole row generate "
                 "returned, prompt included"),
    Mistake("seed 0", _g_seed_0,
            hint="the samples ignore the seed argument (they are those of seed 0); draw sample s "
                 "with seed=seed + s"),
    Mistake("seed * (s + 1)", _g_seed_times,
            hint="sample s should be drawn with seed + s (not another rule), so that --seed 22 "
                 "reproduces sample 2 of --seed 21"),
    Mistake("seed + s counted from 1", _g_seed_from_1,
            hint="sample 0 should be drawn with seed itself: seed + s for s in "
                 "range(num_samples), counting from 0"),
    Mistake("torch.manual_seed", _g_global_seed,
            hint="changed torch's global random state (torch.manual_seed); pass seed=seed + s "
                 "to generate, which draws from its own generator and leaves the notebook's alone"),
    Mistake("decodes the (1, T) tensor", _g_whole_tensor,
            hint="generate returns a (1, T + max_new_tokens) tensor, one row: decode that row, "
                 "tokenizer.decode(out[0].tolist())"),
]


@check("generate_samples", mistakes=GENERATE_SAMPLES)
def check_generate_samples(generate_samples: Callable[..., Any]) -> None:
    """Exercise 2: a list of ``num_samples`` texts, sample ``s`` drawn with ``seed + s``."""
    model, tok = _toy()
    cases = [
        Case("generate_samples(model, tokenizer, prompt='ab', num_samples=3, max_new_tokens=12, "
             "temperature=0.3, seed=21)", model, tok, prompt="ab", num_samples=3,
             max_new_tokens=12, temperature=0.3, seed=21),
        Case("generate_samples(model, tokenizer, 'k', 2, 6, 1.4, 3) (positional, as main calls "
             "it)", model, tok, "k", 2, 6, 1.4, 3),
        Case("generate_samples(model, tokenizer, 'hij', 1, 4, 0.9, 0)", model, tok, "hij", 1, 4,
             0.9, 0),
        Case("generate_samples(model, tokenizer, 'a', 2, 5, 0.0, 8): greedy", model, tok, "a", 2,
             5, 0.0, 8),
    ]
    compare(generate_samples, reference_samples, cases, name="generate_samples(...)",
            run=_run_samples, mistakes=GENERATE_SAMPLES)


_EXERCISES = {"positive_int": 1, "build_parser": 1, "generate_samples": 2}


def _run(script: Path, argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    env = kernel_env(dict(os.environ, PYTHONIOENCODING="utf-8"))   # the one thread policy
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


_HEADER = """\
import argparse
import sys

from llmcourse.generate import generate
from llmcourse.runs import load_trained

"""

_POSITIVE_INT = """
def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value
"""

_PARSER = """
def build_parser():
    p = argparse.ArgumentParser(prog="my_generate")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--prompt", default="\\n")
    p.add_argument("--num-samples", type=positive_int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-new-tokens", type=positive_int, default=200)
    p.add_argument("--temperature", type=float, default=0.8)
    return p
"""

_SAMPLES = """
def generate_samples(model, tokenizer, prompt, num_samples, max_new_tokens, temperature, seed):
    ids = tokenizer.encode(prompt)
    return [tokenizer.decode(generate(model, ids, max_new_tokens, temperature=temperature,
                                      seed=seed + s)[0].tolist()) for s in range(num_samples)]
"""

_MAIN = """
def main(argv=None):
    args = build_parser().parse_args(argv)
    model, tok, _ = load_trained(args.checkpoint)
    for text in generate_samples(model, tok, args.prompt, args.num_samples,
                                 args.max_new_tokens, args.temperature, args.seed):
        print(text)
        print("---")
    return 0
"""

_FOOTER = '\n\nif __name__ == "__main__":\n    sys.exit(main())\n'


def _script(*, positive_int: str = _POSITIVE_INT, parser: str = _PARSER, samples: str = _SAMPLES,
            main: str = _MAIN) -> str:
    return _HEADER + "\n".join((positive_int, parser, samples, main)) + _FOOTER


REFERENCE_SCRIPT = _script()
"""A correct ``my_generate.py``, as the lesson's cell writes it; each script of the table changes
one part of it."""

SCRIPT = [
    Mistake("one sample printed", _script(main=_MAIN.replace("args.num_samples", "1")),
            hint="printed 1 sample; print --num-samples of them, each followed by a line ---"),
    Mistake("no --- lines", _script(main=_MAIN.replace('        print("---")\n', "")),
            hint="printed no --- lines; print each sample, then a line ---"),
    Mistake("--seed not applied", _script(
        main=_MAIN.replace("args.seed)", "None)"),
        samples=_SAMPLES.replace("seed=seed + s", "seed=None if seed is None else seed + s")),
            hint="printed other samples the second time: --seed is not applied; pass args.seed "
                 "on to generate_samples"),
    Mistake("--num-samples 0 accepted", _script(
        parser=_PARSER.replace('"--num-samples", type=positive_int', '"--num-samples", type=int')),
            hint="the parser should refuse --num-samples 0 with a usage error (status 2): "
                 "type=positive_int"),
    Mistake("crashes", _script(main=_MAIN.replace("load_trained(args.checkpoint)",
                                                  "load_trained(args.checkpoint + 'x')")),
            expect="exited with status 1"),
    Mistake("--- before each sample", _script(main=_MAIN.replace(
        '        print(text)\n        print("---")\n', '        print("---")\n        print(text)\n')),
            hint="printed the --- line before each sample; print each sample first, then a line ---"),
    Mistake("--- on the sample's line", _script(main=_MAIN.replace(
        '        print(text)\n        print("---")\n', '        print(text, "---")\n')),
            hint="each sample should be followed by a line that holds only --- (print(text), then "
                 "print(\"---\")), not by --- on the sample's own line"),
    Mistake("extra output", _script(main=_MAIN.replace(
        "    for text in", '    print(f"loaded {args.checkpoint}")\n    for text in')),
            hint="printed more than the samples and their --- lines: print nothing else on "
                 "standard output (send notes to sys.stderr)"),
    Mistake("two values from load_trained", _script(main=_MAIN.replace(
        "model, tok, _ = load_trained", "model, tok = load_trained")),
            hint="load_trained returns three values (model, tokenizer, info): "
                 "model, tokenizer, _ = load_trained(args.checkpoint)"),
    Mistake("dashes in attribute names", _script(main=_MAIN.replace(
        "args.max_new_tokens", "args.max_tokens")),
            hint="argparse stores --max-new-tokens as args.max_new_tokens (dashes become "
                 "underscores), --num-samples as args.num_samples"),
    Mistake("one --- line at the end", _script(main=_MAIN.replace(
        '        print(text)\n        print("---")\n', '        print(text)\n    print("---")\n')),
            hint="printed one --- line after all the samples; print a line --- after each sample "
                 "(inside the loop)"),
    Mistake("temperature and seed swapped", _script(main=_MAIN.replace(
        "args.temperature, args.seed", "args.seed, args.temperature")),
            expect="temperature, seed)"),
    Mistake("argv ignored", _script(main=_MAIN.replace("parse_args(argv)", "parse_args()")),
            hint="main(argv) parsed sys.argv instead of its argv: build_parser().parse_args(argv), "
                 "so that main(['--checkpoint', ...]) can be called and tested"),
    Mistake("wrong argument order", _script(main=_MAIN.replace(
        "args.max_new_tokens, args.temperature, args.seed", "args.max_new_tokens, 1.0, args.seed")),
            hint="main should print each text of generate_samples(...) as it is (print(text)), "
                 "called with the parsed arguments in the order of its signature (model, "
                 "tokenizer, prompt, num_samples, max_new_tokens, temperature, seed)"),
]


@check("my_generate.py", mistakes=SCRIPT)
def check_script(script: str | os.PathLike[str], checkpoint: str | os.PathLike[str],
                 timeout: float = 300) -> None:
    """Exercise 3: run the script as a user would; compare its output with the reference.

    Then ``--num-samples 0`` must exit with status 2, and so must ``main([..., '--num-samples',
    '0'])`` called as a function while ``sys.argv`` holds valid words (main parses its argv).

    The table's mistakes are script texts (``Mistake.wrong``): a test writes one to a file and
    hands the check that file and a trained checkpoint.
    """
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
        hint = {m.name: m.hint for m in SCRIPT}
        why = ""
        if "too many values to unpack" in last and "load_trained(" in done.stderr:
            why = f": {hint['two values from load_trained']}"
        elif "'Namespace' object has no attribute" in last:
            why = f": {hint['dashes in attribute names']}"
        elif "seed must be" in last or "temperature must be" in last:
            why = f": {hint['wrong argument order']}"
        raise CheckFailed(f"`{shown}` exited with status {done.returncode}: {last}{why}")
    model, tok, _ = load_trained(checkpoint)
    want = "".join(s + "\n---\n" for s in reference_samples(model, tok, "KI", 2, 15, 0.9, 5))
    if done.stdout != want:
        hint = {m.name: m.hint for m in SCRIPT}
        samples = want.split("\n---\n")[:-1]
        if done.stdout.startswith("---\n") and done.stdout[4:] + "---\n" == want:
            raise CheckFailed(f"`{shown}` {hint['--- before each sample']}")
        if done.stdout == "".join(text + "\n" for text in samples) + "---\n":
            raise CheckFailed(f"`{shown}` {hint['one --- line at the end']}")
        if want in done.stdout:
            extra = next((line for line in done.stdout.replace(want, "\n").splitlines() if line), "")
            raise CheckFailed(f"`{shown}` {hint['extra output']} (it printed {extra!r})")
        if all(text in done.stdout for text in samples) and "---" in done.stdout:
            raise CheckFailed(f"`{shown}` " + hint["--- on the sample's line"])
        if done.stdout.count("\n---\n") == 1:
            raise CheckFailed(f"`{shown}` {hint['one sample printed']}")
        if "---" not in done.stdout:
            raise CheckFailed(f"`{shown}` {hint['no --- lines']}")
        again = _run(script, argv, timeout)
        if again.stdout != done.stdout:
            raise CheckFailed(f"`{shown}` {hint['--seed not applied']}")
        first = done.stdout.split("\n---\n")[0]
        raise CheckFailed(f"`{shown}` printed {first!r} first, expected "
                          f"{want.split(chr(10) + '---')[0]!r}: {hint['wrong argument order']}")
    hint_0 = next(m.hint for m in SCRIPT if m.name == "--num-samples 0 accepted")
    bad = ["--checkpoint", str(checkpoint), "--num-samples", "0"]
    done = _run(script, bad, timeout)
    if done.returncode != 2:
        raise CheckFailed(f"`python {script.name} --num-samples 0` exited with status "
                          f"{done.returncode}; {hint_0}")
    # main(argv) called as a function, with other words in sys.argv: it must parse its argv
    call = (f"import runpy, sys; sys.argv = [{str(script)!r}, '--checkpoint', {str(checkpoint)!r}, "
            f"'--max-new-tokens', '1']; main = runpy.run_path({str(script)!r})['main']; "
            f"sys.exit(main(['--checkpoint', {str(checkpoint)!r}, '--num-samples', '0']))")
    env = kernel_env(dict(os.environ, PYTHONIOENCODING="utf-8"))
    done = subprocess.run([sys.executable, "-c", call], capture_output=True, text=True, env=env,
                          timeout=timeout)
    if done.returncode != 2:
        hint = next(m.hint for m in SCRIPT if m.name == "argv ignored")
        raise CheckFailed(f"main(['--checkpoint', ..., '--num-samples', '0']) exited with status "
                          f"{done.returncode}: {hint}")
