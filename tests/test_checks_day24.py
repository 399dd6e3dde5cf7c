"""The day-24 checks pass the solutions, catch plausible mistakes, and say "not done yet" for stubs."""

from __future__ import annotations

import argparse
import textwrap

import pytest

from llmcourse import cli
from llmcourse.checks import day24
from llmcourse.generate import generate
from checklines import one_line, stub


# ---- exercise 1: build_parser -----------------------------------------------------------------


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def make_parser(num_type=positive_int, seed_type=int, temp_type=float, seed_default=0,
                with_temperature=True, checkpoint_required=True):
    p = argparse.ArgumentParser(prog="my_generate")
    p.add_argument("--checkpoint", required=checkpoint_required)
    p.add_argument("--prompt", default="\n")
    p.add_argument("--num-samples", type=num_type, default=1)
    p.add_argument("--seed", type=seed_type, default=seed_default)
    p.add_argument("--max-new-tokens", type=positive_int, default=200)
    if with_temperature:
        p.add_argument("--temperature", type=temp_type, default=0.8)
    return p


def test_build_parser_passes_and_stub(capsys):
    assert bool(day24.check_build_parser(make_parser)) is True
    assert "passed" in one_line(capsys)
    assert bool(day24.check_build_parser(stub)) is False
    assert "not done yet" in one_line(capsys)

    def stub_type(text):
        raise NotImplementedError

    assert bool(day24.check_build_parser(lambda: make_parser(num_type=stub_type))) is False
    assert "not done yet" in one_line(capsys)


@pytest.mark.parametrize("parser, words", [
    (lambda: make_parser(num_type=None), "type=positive_int"),
    (lambda: make_parser(seed_type=None), "type=int"),
    (lambda: make_parser(temp_type=None), "type=float"),
    (lambda: make_parser(num_type=int), "0 samples must be refused"),
    (lambda: make_parser(seed_type=float), "--seed parsed as 11.0"),
    (lambda: make_parser(seed_default=1337), "default of --seed is 1337"),
    (lambda: make_parser(with_temperature=False), "exits with status 2"),
    (lambda: make_parser(checkpoint_required=False), "no --checkpoint must be refused"),
    (lambda: None, "should return an argparse.ArgumentParser"),
])
def test_build_parser_mistakes(capsys, parser, words):
    assert bool(day24.check_build_parser(parser)) is False
    assert words in one_line(capsys)


# ---- exercise 2: generate_samples -------------------------------------------------------------


def good_samples(model, tokenizer, prompt, num_samples, max_new_tokens, temperature, seed):
    ids = tokenizer.encode(prompt)
    return [tokenizer.decode(generate(model, ids, max_new_tokens, temperature=temperature,
                                      seed=seed + s)[0].tolist()) for s in range(num_samples)]


def test_generate_samples_passes_and_stub(capsys):
    assert bool(day24.check_generate_samples(good_samples)) is True
    assert "passed" in one_line(capsys)
    assert bool(day24.check_generate_samples(day24.reference_samples)) is True
    assert "passed" in one_line(capsys)
    assert bool(day24.check_generate_samples(stub)) is False
    assert "not done yet" in one_line(capsys)


def test_generate_samples_mistakes(capsys):
    def no_seed(model, tokenizer, prompt, num_samples, max_new_tokens, temperature, seed):
        ids = tokenizer.encode(prompt)
        return [tokenizer.decode(generate(model, ids, max_new_tokens, temperature=temperature)[0].tolist())
                for _ in range(num_samples)]

    assert bool(day24.check_generate_samples(no_seed)) is False
    assert "seed is not applied" in one_line(capsys)

    def one_sample(model, tokenizer, prompt, num_samples, max_new_tokens, temperature, seed):
        return good_samples(model, tokenizer, prompt, 1, max_new_tokens, temperature, seed)

    assert bool(day24.check_generate_samples(one_sample)) is False
    assert "returned 1 sample(s)" in one_line(capsys)

    def same_seed(model, tokenizer, prompt, num_samples, max_new_tokens, temperature, seed):
        return good_samples(model, tokenizer, prompt, 1, max_new_tokens, temperature, seed) * num_samples

    assert bool(day24.check_generate_samples(same_seed)) is False
    assert "3 identical samples" in one_line(capsys)

    def batched(model, tokenizer, prompt, num_samples, max_new_tokens, temperature, seed):
        out = generate(model, tokenizer.encode(prompt), max_new_tokens, temperature=temperature,
                       num_samples=num_samples, seed=seed)
        return [tokenizer.decode(r) for r in out.tolist()]

    assert bool(day24.check_generate_samples(batched)) is False
    assert "one batched call" in one_line(capsys)

    def no_temperature(model, tokenizer, prompt, num_samples, max_new_tokens, temperature, seed):
        return good_samples(model, tokenizer, prompt, num_samples, max_new_tokens, 1.0, seed)

    assert bool(day24.check_generate_samples(no_temperature)) is False
    assert "ignore the temperature" in one_line(capsys)

    def no_prompt(model, tokenizer, prompt, num_samples, max_new_tokens, temperature, seed):
        return [s[len(prompt):] for s in good_samples(model, tokenizer, prompt, num_samples,
                                                      max_new_tokens, temperature, seed)]

    assert bool(day24.check_generate_samples(no_prompt)) is False
    assert "start with the prompt" in one_line(capsys)

    assert bool(day24.check_generate_samples(lambda *a, **k: "text")) is False
    assert "generate_samples" in one_line(capsys)


# ---- exercise 3: the script, run in a subprocess ----------------------------------------------

TINY = ["model.n_layer=1", "model.n_head=2", "model.n_embd=32", "model.block_size=32",
        "batch_size=4", "max_iters=8", "eval_interval=4", "eval_iters=2", "log_interval=4",
        "warmup_iters=2", "lr_decay_iters=8"]

HEADER = """\
import argparse
import sys

from llmcourse.generate import generate
from llmcourse.runs import load_trained


"""

POSITIVE_INT = '''
def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value
'''

PARSER = '''
def build_parser():
    p = argparse.ArgumentParser(prog="my_generate")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--prompt", default="\\n")
    p.add_argument("--num-samples", type=positive_int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-new-tokens", type=positive_int, default=200)
    p.add_argument("--temperature", type=float, default=0.8)
    return p
'''

SAMPLES = '''
def generate_samples(model, tokenizer, prompt, num_samples, max_new_tokens, temperature, seed):
    ids = tokenizer.encode(prompt)
    return [tokenizer.decode(generate(model, ids, max_new_tokens, temperature=temperature,
                                      seed=seed + s)[0].tolist()) for s in range(num_samples)]
'''

MAIN = '''
def main(argv=None):
    args = build_parser().parse_args(argv)
    model, tok, _ = load_trained(args.checkpoint)
    for text in generate_samples(model, tok, args.prompt, args.num_samples,
                                 args.max_new_tokens, args.temperature, args.seed):
        print(text)
        print("---")
    return 0
'''

FOOTER = '\n\nif __name__ == "__main__":\n    sys.exit(main())\n'


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


def script(tmp_path, *parts):
    path = tmp_path / "my_generate.py"
    path.write_text(HEADER + "\n".join(parts) + FOOTER, encoding="utf-8")
    return path


def test_script_passes(run_dir, tmp_path, capsys):
    path = script(tmp_path, POSITIVE_INT, PARSER, SAMPLES, MAIN)
    assert bool(day24.check_script(path, run_dir)) is True
    assert "passed" in one_line(capsys)


def test_script_stubs_name_the_exercise(run_dir, tmp_path, capsys):
    stub_main = "\ndef main(argv=None):\n    raise NotImplementedError\n"
    assert bool(day24.check_script(script(tmp_path, POSITIVE_INT, PARSER, SAMPLES, stub_main),
                                   run_dir)) is False
    line = one_line(capsys)
    assert "⏳" in line and "not done yet" in line and "exercise" not in line
    stub_samples = "\ndef generate_samples(*args):\n    raise NotImplementedError\n"
    assert bool(day24.check_script(script(tmp_path, POSITIVE_INT, PARSER, stub_samples, MAIN),
                                   run_dir)) is False
    assert "generate_samples: not done yet — finish exercise 2" in one_line(capsys)
    stub_parser = "\ndef build_parser():\n    raise NotImplementedError\n"
    assert bool(day24.check_script(script(tmp_path, POSITIVE_INT, stub_parser, SAMPLES, MAIN),
                                   run_dir)) is False
    assert "finish exercise 1" in one_line(capsys)


def test_script_mistakes(run_dir, tmp_path, capsys):
    ignores_n = MAIN.replace("args.num_samples", "1")
    assert bool(day24.check_script(script(tmp_path, POSITIVE_INT, PARSER, SAMPLES, ignores_n),
                                   run_dir)) is False
    assert "printed 1 sample" in one_line(capsys)

    no_seed = MAIN.replace("args.seed)", "None)")
    no_seed_samples = SAMPLES.replace("seed=seed + s", "seed=None if seed is None else seed + s")
    assert bool(day24.check_script(script(tmp_path, POSITIVE_INT, PARSER, no_seed_samples, no_seed),
                                   run_dir)) is False
    assert "--seed is not applied" in one_line(capsys)

    no_dashes = MAIN.replace('        print("---")\n', "")
    assert bool(day24.check_script(script(tmp_path, POSITIVE_INT, PARSER, SAMPLES, no_dashes),
                                   run_dir)) is False
    assert "no --- lines" in one_line(capsys)

    lax = PARSER.replace('"--num-samples", type=positive_int', '"--num-samples", type=int')
    assert bool(day24.check_script(script(tmp_path, POSITIVE_INT, lax, SAMPLES, MAIN), run_dir)) is False
    assert "--num-samples 0" in one_line(capsys)

    crashes = MAIN.replace("load_trained(args.checkpoint)", "load_trained(args.checkpoint + 'x')")
    assert bool(day24.check_script(script(tmp_path, POSITIVE_INT, PARSER, SAMPLES, crashes),
                                   run_dir)) is False
    assert "exited with status 1" in one_line(capsys)

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
    want = day24.reference_samples(model, tok, "KI", 2, 15, 0.9, 5)
    assert out == "".join(f"--- sample {i + 1} ---\n{s}\n" for i, s in enumerate(want))
