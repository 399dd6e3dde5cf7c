"""``llmcourse sample``: reproducible seeds, several samples, streaming, --stop, prompt files and
standard input, --output; bad input is one line on stderr and exit status 2."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from llmcourse import cli
from llmcourse.cli import until_stop

TINY = ["model.n_layer=1", "model.n_head=2", "model.n_embd=32", "model.block_size=32",
        "batch_size=4", "max_iters=12", "eval_interval=6", "eval_iters=2", "log_interval=3",
        "warmup_iters=2", "lr_decay_iters=12"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("sample")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LLMCOURSE_CACHE_DIR", str(root / "cache"))
        args = ["train", "--no-progress", "--set", f"out_dir={root / 'run'}"]
        for o in TINY:
            args += ["--set", o]
        assert cli.main(args) == 0
    return root / "run"


def sample(run_dir, capsys, *flags):
    code = cli.main(["sample", "--checkpoint", str(run_dir), "--device", "cpu",
                     "--max-new-tokens", "30", *flags])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def samples_of(text):
    """The samples of a --num-samples > 1 output, without their header lines."""
    parts = text.split("--- sample ")[1:]
    return [p.split(" ---\n", 1)[1] for p in parts]


# ---- until_stop ------------------------------------------------------------------------------


@pytest.mark.parametrize("pieces, stops, want", [
    (["ab", "c\nd", "e"], ["\nd"], "abc"),           # a stop split over two pieces
    (["a", "b"], ["bc"], "ab"),                      # the start of a stop, never completed
    (["x", "y", "z"], [], "xyz"),                    # no stops: everything
    (["END", "more"], ["END"], ""),                  # a stop at the very start
    (["ab", "cd"], ["zz", "c"], "ab"),                # the first of several stops
])
def test_until_stop(pieces, stops, want):
    assert "".join(until_stop(iter(pieces), stops)) == want


def test_until_stop_closes_the_stream_at_a_stop():
    made = []

    def pieces():
        for ch in "abcdefgh":
            made.append(ch)
            yield ch

    assert "".join(until_stop(pieces(), ["cd"])) == "ab"
    assert made == list("abcd")  # nothing generated after the stop


# ---- seeds, samples, streaming --------------------------------------------------------------


def test_same_seed_same_samples_and_seed_plus_s_is_sample_s(run_dir, capsys):
    code, three, err = sample(run_dir, capsys, "--seed", "5", "--num-samples", "3", "--prompt", "A")
    assert code == 0 and "seed 5" in err
    assert sample(run_dir, capsys, "--seed", "5", "--num-samples", "3", "--prompt", "A")[1] == three
    got = samples_of(three)
    assert len(got) == 3 and all(s.startswith("A") for s in got)
    assert len(set(got)) > 1  # different samples, not one repeated
    one = sample(run_dir, capsys, "--seed", "6", "--prompt", "A")[1]
    assert one == got[1]      # sample 2 of seed 5 is sample 1 of seed 6
    other = sample(run_dir, capsys, "--seed", "7", "--num-samples", "3", "--prompt", "A")[1]
    assert other != three


def test_stream_writes_the_same_text_as_without(run_dir, capsys):
    flags = ("--seed", "2", "--num-samples", "2", "--prompt", "RO")
    assert sample(run_dir, capsys, *flags)[1] == sample(run_dir, capsys, *flags, "--stream")[1]


def test_stream_flushes_every_piece(run_dir, capsys, monkeypatch):
    class Recorder(io.StringIO):
        flushes = 0

        def flush(self):
            Recorder.flushes += 1

    rec = Recorder()
    monkeypatch.setattr(sys, "stdout", rec)
    assert cli.main(["sample", "--checkpoint", str(run_dir), "--device", "cpu",
                     "--max-new-tokens", "25", "--stream", "--prompt", "A"]) == 0
    assert Recorder.flushes >= 25   # one flush per token, as it is made
    assert len(rec.getvalue()) == len("A") + 25 + 1


# ---- --stop ----------------------------------------------------------------------------------


def test_stop_ends_each_sample_before_the_stop_text(run_dir, capsys):
    flags = ["--seed", "1", "--num-samples", "3", "--max-new-tokens", "60", "--prompt", "A"]
    full = samples_of(sample(run_dir, capsys, *flags)[1])
    stop = full[0][4:6]          # two characters sample 1 writes after its prompt
    cut = samples_of(sample(run_dir, capsys, *flags, "--stop", stop)[1])
    for whole, part in zip(full, cut):
        new = whole[1:].rstrip("\n")
        at = new.find(stop)
        want = "A" + (new if at < 0 else new[:at]) + "\n"
        assert part == want
    assert stop not in cut[0][1:]


def test_stop_understands_backslash_n(run_dir, capsys):
    flags = ["--seed", "3", "--max-new-tokens", "120", "--prompt", "A"]
    text = sample(run_dir, capsys, *flags, "--stop", "\\n")[1]
    assert text.count("\n") == 1 and text.endswith("\n")


def test_empty_stop_is_refused(run_dir, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["sample", "--checkpoint", str(run_dir), "--stop", ""])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--stop" in err and "empty" in err


# ---- --compile -------------------------------------------------------------------------------


def test_compile_writes_the_same_greedy_text_as_without(run_dir, capsys):
    flags = ("--temperature", "0", "--prompt", "RO", "--max-new-tokens", "60")  # past the block
    code, out, err = sample(run_dir, capsys, *flags, "--compile")
    assert code == 0 and out == sample(run_dir, capsys, *flags)[1]


def test_compile_with_no_cache_is_refused_before_any_work(run_dir, capsys, tmp_path):
    target = tmp_path / "out.txt"
    code, out, err = sample(run_dir, capsys, "--compile", "--no-cache", "--output", str(target))
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "--no-cache" in err and "--compile" in err
    assert not target.exists()


def test_a_failed_compile_is_one_line_and_writes_no_output(run_dir, capsys, tmp_path, monkeypatch):
    from llmcourse.generate import compiled

    def no_compiler(gm, example_inputs):
        raise RuntimeError("no working C++ compiler")

    monkeypatch.setattr(compiled, "_backend", no_compiler)  # each sample loads a new model
    target = tmp_path / "out.txt"
    code, out, err = sample(run_dir, capsys, "--compile", "--output", str(target))
    lines = err.strip().splitlines()
    assert code == 2 and out == "" and lines[-1].count("--compile") == 2, err
    assert "could not compile" in lines[-1] and "compile=True" not in lines[-1]
    assert list(tmp_path.iterdir()) == []  # no half-written output


# ---- prompt from a file or standard input ----------------------------------------------------


def test_prompt_file_is_the_same_as_prompt(run_dir, capsys, tmp_path):
    f = tmp_path / "prompt.txt"
    f.write_text("ROMEO:\nO", encoding="utf-8")
    by_flag = sample(run_dir, capsys, "--seed", "4", "--prompt", "ROMEO:\nO")[1]
    assert sample(run_dir, capsys, "--seed", "4", "--prompt-file", str(f))[1] == by_flag


def test_prompt_from_standard_input(run_dir, capsys, monkeypatch):
    by_flag = sample(run_dir, capsys, "--seed", "4", "--prompt", "KING")[1]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"KING")))
    assert sample(run_dir, capsys, "--seed", "4", "--prompt-file", "-")[1] == by_flag


@pytest.mark.parametrize("content, words", [
    (None, "does not exist"),
    (b"", "is empty"),
    (b"\xff\xfe abc", "not UTF-8"),
    ("folder", "is a folder"),
])
def test_bad_prompt_file_is_one_line_and_status_2(run_dir, capsys, tmp_path, content, words):
    path = tmp_path / "p.txt"
    if content == "folder":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    code, out, err = sample(run_dir, capsys, "--prompt-file", str(path))
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and words in err and "--prompt-file" in err


def test_prompt_and_prompt_file_together_are_refused(run_dir, capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        cli.main(["sample", "--checkpoint", str(run_dir), "--prompt", "A", "--prompt-file", "x"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not allowed with" in err


# ---- --output --------------------------------------------------------------------------------


def test_output_writes_the_samples_to_a_new_file(run_dir, capsys, tmp_path):
    flags = ("--seed", "8", "--num-samples", "2", "--prompt", "A")
    shown = sample(run_dir, capsys, *flags)[1]
    target = tmp_path / "samples.txt"
    code, out, err = sample(run_dir, capsys, *flags, "--output", str(target))
    assert code == 0 and out == "" and str(target) in err
    assert target.read_text(encoding="utf-8") == shown
    assert [p.name for p in tmp_path.iterdir()] == ["samples.txt"]  # no temporary file left


def test_output_never_replaces_a_file(run_dir, capsys, tmp_path):
    target = tmp_path / "mine.txt"
    target.write_text("my notes", encoding="utf-8")
    code, out, err = sample(run_dir, capsys, "--output", str(target))
    assert code == 2 and "already exists" in err and len(err.strip().splitlines()) == 1
    assert target.read_text(encoding="utf-8") == "my notes"


def test_output_in_a_missing_folder_is_refused(run_dir, capsys, tmp_path):
    code, _, err = sample(run_dir, capsys, "--output", str(tmp_path / "no" / "such.txt"))
    assert code == 2 and "does not exist" in err
    assert not (tmp_path / "no").exists()


# ---- argument types --------------------------------------------------------------------------


@pytest.mark.parametrize("flags, words", [
    (["--num-samples", "0"], "--num-samples"),
    (["--num-samples", "two"], "not a whole number"),
    (["--seed", "-1"], "--seed"),
    (["--seed", "1.5"], "not a whole number"),
    (["--max-new-tokens", "0"], "--max-new-tokens"),
    (["--temperature", "hot"], "--temperature"),
])
def test_bad_numbers_are_argparse_errors(run_dir, capsys, flags, words):
    with pytest.raises(SystemExit) as exc:
        cli.main(["sample", "--checkpoint", str(run_dir), *flags])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err


def test_sample_as_a_subprocess_with_stdin(run_dir, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "llmcourse", "sample", "--checkpoint", str(run_dir),
           "--device", "cpu", "--max-new-tokens", "10", "--prompt-file", "-", "--seed", "0"]
    done = subprocess.run(cmd, input="AB".encode(), capture_output=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    text = done.stdout.decode("utf-8")
    assert text.startswith("AB") and len(text) == 2 + 10 + 1
