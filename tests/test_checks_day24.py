"""The day-24 checks pass the lesson's solutions, reject every typical mistake of their tables
with its hint, refuse the course's own functions, say "not done yet" for stubs (naming the
exercise a script's stub belongs to), print exactly one line and never raise."""

from __future__ import annotations

import argparse

import pytest

from llmcourse import cli
from llmcourse.checks import day24
from llmcourse.generate import generate
from checklines import fails, mistake_params, one_line, passes, rejects, stub


# ---- the lesson's solutions, copied from solutions/day24_command_line_generator.md ---------------


def positive_int(text):
    """argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def build_parser():
    """The options of my_generate.py."""
    parser = argparse.ArgumentParser(prog="my_generate", description="Sample from a checkpoint.")
    parser.add_argument("--checkpoint", required=True, help="a run directory or a .pt file")
    parser.add_argument("--prompt", default="\n", help="text to continue")
    parser.add_argument("--num-samples", type=positive_int, default=1, help="samples to draw")
    parser.add_argument("--seed", type=int, default=0, help="sample s uses seed + s")
    parser.add_argument("--max-new-tokens", type=positive_int, default=200)
    parser.add_argument("--temperature", type=float, default=0.8)
    return parser


def generate_samples(model, tokenizer, prompt, num_samples, max_new_tokens, temperature, seed):
    """num_samples texts (prompt included); sample s drawn with seed + s."""
    ids = tokenizer.encode(prompt)
    texts = []
    for s in range(num_samples):
        out = generate(model, ids, max_new_tokens, temperature=temperature, seed=seed + s)  # (1, T + n)
        texts.append(tokenizer.decode(out[0].tolist()))
    return texts


def build_parser_with_extras():  # short options and an extra one are fine
    parser = argparse.ArgumentParser(prog="gen")
    parser.add_argument("-c", "--checkpoint", required=True)
    parser.add_argument("-p", "--prompt", default="\n")
    parser.add_argument("-n", "--num-samples", type=positive_int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-new-tokens", type=positive_int, default=200)
    parser.add_argument("-t", "--temperature", type=float, default=0.8)
    parser.add_argument("--top-k", type=int, default=None)
    return parser


def positive_int_digits(text):  # str.isdigit, then a ValueError (argparse turns it into status 2)
    if not text.strip().isdigit() or int(text) < 1:
        raise ValueError(f"not a positive whole number: {text!r}")
    return int(text)


def build_parser_digits():
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint", type=str, required=True)
    parser.add_argument("--prompt", type=str, default="\n")
    parser.add_argument("--num-samples", dest="num_samples", type=positive_int_digits, default="1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-new-tokens", type=positive_int_digits, default=200)
    parser.add_argument("--temperature", type=float, default="0.8")
    return parser


def positive_int_via_float(text):  # float, then is_integer: "2.5" is refused, not cut to 2
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value.is_integer() or value < 1:
        raise argparse.ArgumentTypeError(f"need a whole number >= 1, got {text!r}")
    return int(value)


def build_parser_float_counts():
    parser = argparse.ArgumentParser(prog="my_generate")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--prompt", default="\n")
    parser.add_argument("--num-samples", type=positive_int_via_float, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-new-tokens", type=positive_int_via_float, default=200)
    parser.add_argument("--temperature", type=float, default=0.8)
    return parser


def generate_samples_prompt_plus_new(model, tokenizer, prompt, num_samples, max_new_tokens,
                                     temperature, seed):  # the prompt, then the new ids decoded
    ids = tokenizer.encode(prompt)
    outs = [generate(model, ids, max_new_tokens, temperature=temperature, seed=seed + s)
            for s in range(num_samples)]
    return [prompt + tokenizer.decode(out[0, len(ids):].tolist()) for out in outs]


@pytest.mark.parametrize("check_fn, fn", [
    (day24.check_build_parser, build_parser),
    (day24.check_build_parser, build_parser_digits),
    (day24.check_generate_samples, generate_samples_prompt_plus_new),
    (day24.check_build_parser, build_parser_with_extras),
    (day24.check_generate_samples, generate_samples),
    (day24.check_build_parser, build_parser_float_counts),
], ids=["build_parser", "build_parser digits", "generate_samples prompt + new",
        "build_parser extras", "generate_samples", "build_parser float counts"])
def test_the_solutions_pass(check_fn, fn, capsys):
    passes(capsys, check_fn, fn)


@pytest.mark.parametrize("check_fn, mistake", [p for p in mistake_params(day24)
                                               if p.values[0] is not day24.check_script])
def test_mistake_rejected(check_fn, mistake, capsys):
    rejects(capsys, check_fn, mistake)


def test_the_seed_rule_by_hand():
    """Sample 2 of --seed 21 is sample 1 of --seed 22 (the rule, not the check's reference)."""
    model, tok = day24._toy()
    a = generate_samples(model, tok, "ab", 3, 8, 0.7, 21)
    b = generate_samples(model, tok, "ab", 2, 8, 0.7, 22)
    assert a[1:] == b and all(s.startswith("ab") and len(s) == 10 for s in a)


def test_a_positive_int_stub_is_not_done_yet(capsys):
    def stub_type(text):
        raise NotImplementedError

    def parser():
        p = build_parser()
        p._option_string_actions["--num-samples"].type = stub_type
        return p

    fails(capsys, day24.check_build_parser, parser, "not done yet")


def test_an_empty_parser_names_the_unrecognized_arguments(capsys):
    fails(capsys, day24.check_build_parser, lambda: argparse.ArgumentParser(),
          "unrecognized arguments")


# ---- the course's own functions are refused ------------------------------------------------------


@pytest.mark.parametrize("check_fn, package_fn", [
    (day24.check_build_parser, day24.reference_build_parser),
    (day24.check_generate_samples, day24.reference_samples),
])
def test_the_package_reference_is_refused(check_fn, package_fn, capsys):
    fails(capsys, check_fn, package_fn, "the course's own reference")


# ---- exercise 3: the script, run in a subprocess ----------------------------------------------

TINY = ["model.n_layer=1", "model.n_head=2", "model.n_embd=32", "model.block_size=32",
        "batch_size=4", "max_iters=8", "eval_interval=4", "eval_iters=2", "log_interval=4",
        "warmup_iters=2", "lr_decay_iters=8"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("day24")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LLMCOURSE_CACHE_DIR", str(root / "cache"))
        args = ["train", "--no-progress", "--set", f"out_dir={root / 'run'}"]
        for o in TINY:
            args += ["--set", o]
        assert cli.main(args) == 0
    return root / "run"


def write(tmp_path, text):
    path = tmp_path / "my_generate.py"
    path.write_text(text, encoding="utf-8")
    return path


def test_script_passes(run_dir, tmp_path, capsys):
    passes(capsys, lambda path: day24.check_script(path, run_dir),
           write(tmp_path, day24.REFERENCE_SCRIPT))


@pytest.mark.parametrize("mistake", day24.SCRIPT, ids=[m.name for m in day24.SCRIPT])
def test_script_mistake_rejected(mistake, run_dir, tmp_path, capsys):
    path = write(tmp_path, mistake.wrong)
    assert bool(day24.check_script(path, run_dir)) is False
    line = one_line(capsys)
    assert line.startswith("❌") and mistake.expect in line, line


def test_script_stubs_name_the_exercise(run_dir, tmp_path, capsys):
    script = day24.REFERENCE_SCRIPT
    stub_main = (script[:script.index("def main(")]
                 + "def main(argv=None):\n    raise NotImplementedError\n")
    stub_main += '\n\nif __name__ == "__main__":\n    sys.exit(main())\n'
    assert bool(day24.check_script(write(tmp_path, stub_main), run_dir)) is False
    line = one_line(capsys)
    assert "⏳" in line and "not done yet" in line and "exercise" not in line
    stub_samples = script.replace("    ids = tokenizer.encode(prompt)\n",
                                  "    raise NotImplementedError\n")
    assert bool(day24.check_script(write(tmp_path, stub_samples), run_dir)) is False
    assert "generate_samples: not done yet — finish exercise 2" in one_line(capsys)
    stub_parser = script.replace('    p = argparse.ArgumentParser(prog="my_generate")\n',
                                 "    raise NotImplementedError\n")
    assert bool(day24.check_script(write(tmp_path, stub_parser), run_dir)) is False
    assert "finish exercise 1" in one_line(capsys)


def test_a_missing_script(run_dir, tmp_path, capsys):
    assert bool(day24.check_script(tmp_path / "missing.py", run_dir)) is False
    assert "does not exist" in one_line(capsys)


def test_sample_cli_follows_the_same_seed_rule(run_dir, capsys):
    """`llmcourse sample` and the lesson's rule agree: sample s is drawn with seed + s."""
    from llmcourse.runs import load_trained

    assert cli.main(["sample", "--checkpoint", str(run_dir), "--device", "cpu", "--prompt", "KI",
                     "--num-samples", "2", "--seed", "5", "--max-new-tokens", "15",
                     "--temperature", "0.9"]) == 0
    out = capsys.readouterr().out
    model, tok, _ = load_trained(run_dir)
    want = generate_samples(model, tok, "KI", 2, 15, 0.9, 5)
    assert out == "".join(f"--- sample {i + 1} ---\n{s}\n" for i, s in enumerate(want))


# ---- stubs, one line, never raises ---------------------------------------------------------------

CHECKS = [day24.check_build_parser, day24.check_generate_samples]


@pytest.mark.parametrize("check", CHECKS)
def test_stub_is_not_done_yet(check, capsys):
    fails(capsys, check, stub, "not done yet")


@pytest.mark.parametrize("check", CHECKS)
def test_garbage_never_raises(check, capsys):
    for bad in (lambda *a, **k: 1 / 0, lambda *a, **k: "text", lambda *a, **k: None,
                lambda *a, **k: [1, 2], lambda *a, **k: argparse.Namespace()):
        assert bool(check(bad)) is False
        assert one_line(capsys).startswith("❌")
