"""Faults and bad input (issue 10): each is one clear line, and nothing a user has changes.

Every test that refuses or fails a command on an existing run checks the message and that the
run's files (``run.json``, checkpoints, ``metrics.jsonl``) and the prepared data are
byte-identical afterwards. The page ``book/faults.md`` lists these cases with their messages.

A full disk is simulated by making the write fail with ``ENOSPC`` (monkeypatching), and, where
the tests run as root and may mount one, also made real with a 256 KiB tmpfs; a read-only
folder likewise (a patched ``open``, since root ignores permissions, and a read-only tmpfs).
"""

from __future__ import annotations

import errno
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from llmcourse import cli
from llmcourse.cli import commands
from llmcourse.data import get_batch, prepare
from llmcourse.data import prepared as prepared_module
from llmcourse.presets import apply_overrides, get_preset
from llmcourse.train import checkpoint as checkpoint_module

from faults_helpers import (TEXT, copy_of_run, finished_run, one_error_line,
                            prepared_dir, small_tmpfs, snapshot, train_args)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A text file, a cache, and one finished tiny run (copied by each test that changes it)."""
    yield from finished_run(tmp_path_factory.mktemp("faults"))


@pytest.fixture()
def run(world, tmp_path, monkeypatch):
    """A fresh copy of the finished run, and the arguments that trained it."""
    return copy_of_run(world, tmp_path, monkeypatch)


# ====================================================== 1. refused commands change nothing

@pytest.mark.parametrize("extra, words", [
    (["--set", "data.tokenizer=gpt2"], "already holds ckpt.pt and best.pt"),  # no --resume
    (["--resume", "--set", "data.tokenizer=gpt2"], "data.tokenizer 'char' -> 'gpt2'"),
    (["--resume", "--set", "model.n_embd=32"], "model.n_embd 16 -> 32"),
    (["--resume", "--set", "model.n_layer=2"], "model.n_layer 1 -> 2"),
    (["--resume", "--set", "data.val_fraction=0.5"], "data.val_fraction None -> 0.5"),
])
def test_refused_train_leaves_the_run_as_it_was(run, capsys, extra, words):
    out, args = run
    before = snapshot(out, prepared_dir(out))
    capsys.readouterr()
    assert cli.main(args + extra) == 2
    assert words in one_error_line(capsys, "train")
    assert snapshot(out, prepared_dir(out)) == before
    # and the run still samples and evaluates
    assert cli.main(["sample", "--checkpoint", str(out), "--device", "cpu",
                     "--max-new-tokens", "3"]) == 0
    assert cli.main(["eval", "--checkpoint", str(out), "--device", "cpu", "--iters", "1"]) == 0


def test_data_remade_under_a_run_is_refused_by_resume_eval_and_sample(world, tmp_path,
                                                                       monkeypatch, capsys):
    monkeypatch.setenv("LLMCOURSE_CACHE_DIR", str(world["cache"]))
    out, prep, text = tmp_path / "run", tmp_path / "prep", str(world["text"])
    args = train_args(text, out, f"data.prepared_dir={prep}")
    assert cli.main(args) == 0
    capsys.readouterr()
    # someone re-makes the run's prepared folder with another tokenizer: refused, then forced
    assert cli.main(["prepare", text, "--tokenizer", "gpt2", "--out-dir", str(prep),
                     "--no-progress"]) == 2
    assert "made with other settings (it holds 'tiny' prepared otherwise: tokenizer 'char' " \
        "-> 'gpt2')" in one_error_line(capsys, "prepare")
    assert cli.main(["prepare", text, "--tokenizer", "gpt2", "--out-dir", str(prep),
                     "--force", "--no-progress"]) == 0
    capsys.readouterr()
    before = snapshot(out)
    assert cli.main(args + ["--resume", "--set", "max_iters=6"]) == 2
    assert "made with other settings" in one_error_line(capsys, "train")
    assert cli.main(["eval", "--checkpoint", str(out), "--device", "cpu"]) == 2
    line = one_error_line(capsys, "eval")
    assert "changed since this run trained on it" in line
    assert "tokenizer 'char' -> 'gpt2'" in line
    assert cli.main(["sample", "--checkpoint", str(out), "--device", "cpu"]) == 2
    assert "changed since this run trained on it" in one_error_line(capsys, "sample")
    assert snapshot(out) == before


def test_prepare_with_another_split_makes_another_folder(world, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LLMCOURSE_CACHE_DIR", str(world["cache"]))
    default = prepare(world["text"], "char", progress=False, verbose=False)
    before = snapshot(default.path)
    assert cli.main(["prepare", str(world["text"]), "--val-fraction", "0.5",
                     "--no-progress"]) == 0
    assert "tiny-char-val0.5" in capsys.readouterr().out
    assert snapshot(default.path) == before


# ===================================================== 2. expected failures are one line

def test_diverged_run_is_one_line_naming_the_kept_checkpoint(run, capsys):
    out, args = run
    before = snapshot(out)
    capsys.readouterr()
    code = cli.main(args + ["--resume", "--set", "max_iters=8", "--set", "lr_decay_iters=8",
                            "--set", "learning_rate=1e30", "--set", "grad_clip=0"])
    assert code == 2
    line = one_error_line(capsys, "train")
    assert "training diverged" in line and f"Kept {out / 'ckpt.pt'} (iteration 4)" in line
    assert "learning_rate=1e+30, grad_clip=0" in line
    assert snapshot(out) == before  # run.json and metrics.jsonl given back too


def test_full_disk_during_a_checkpoint_save(run, capsys, monkeypatch):
    out, args = run
    before = snapshot(out)

    def full(self, data):
        self.error = OSError(errno.ENOSPC, "No space left on device")
        raise self.error

    monkeypatch.setattr(checkpoint_module._Writer, "write", full)
    capsys.readouterr()
    assert cli.main(args + ["--resume", "--set", "max_iters=6", "--set",
                            "lr_decay_iters=6"]) == 1
    line = one_error_line(capsys, "train")
    assert "no space left on the device while writing" in line and "ckpt.pt" in line
    assert snapshot(out) == before
    assert not list(out.glob("*.tmp*"))


def test_full_disk_during_prepare(world, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LLMCOURSE_CACHE_DIR", str(tmp_path / "cache"))

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(prepared_module, "_split_tail", full)
    assert cli.main(["prepare", str(world["text"]), "--no-progress"]) == 1
    line = one_error_line(capsys, "prepare")
    assert "no space left on the device while writing" in line and "tiny-char" in line
    assert not any((tmp_path / "cache" / "prepared").iterdir())  # no leftovers


def test_a_real_read_only_folder(world, tmp_path, monkeypatch, capsys):
    ro = tmp_path / "ro"
    with small_tmpfs(ro, "ro,size=64k") as mounted:
        if not mounted:
            pytest.skip("needs root and mount to make a read-only tmpfs")
        monkeypatch.setenv("LLMCOURSE_CACHE_DIR", str(world["cache"]))
        code = cli.main(train_args(world["text"], ro / "run"))
        assert code == 1
        line = one_error_line(capsys, "train")
        assert f"{ro / 'run'} is on a read-only file system" in line
        code = cli.main(["prepare", str(world["text"]), "--out-dir", str(ro / "p"),
                         "--no-progress"])
        assert code == 1
        assert f"{ro / 'p'} is on a read-only file system" in one_error_line(capsys, "prepare")


def test_full_disk_on_a_real_tmpfs(world, tmp_path, monkeypatch, capsys):
    disk = tmp_path / "small_disk"
    with small_tmpfs(disk) as mounted:
        if not mounted:
            pytest.skip("needs root and mount to make a small tmpfs")
        monkeypatch.setenv("LLMCOURSE_CACHE_DIR", str(world["cache"]))
        code = cli.main(train_args(world["text"], disk, "model.n_embd=64"))
        assert code == 1
        line = one_error_line(capsys, "train")
        assert "no space left on the device" in line and str(disk) in line
        assert not [p.name for p in disk.iterdir() if ".tmp" in p.name]
        big = tmp_path / "big.txt"
        big.write_text(TEXT * 40, encoding="utf-8")  # 2 bytes a token: more than the disk
        code = cli.main(["prepare", str(big), "--out-dir", str(disk / "prep"), "--no-progress"])
        assert code == 1
        line = one_error_line(capsys, "prepare")
        assert "no space left on the device" in line and str(disk / "prep") in line
        assert not [p.name for p in disk.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("err, words", [
    (errno.EROFS, "read-only file system"),
    (errno.EACCES, "permission denied"),
])
def test_read_only_or_forbidden_output_folder(world, tmp_path, monkeypatch, capsys, err, words):
    monkeypatch.setenv("LLMCOURSE_CACHE_DIR", str(world["cache"]))
    out = tmp_path / "ro"
    real_open = open

    def refuse(path, *a, **k):  # root ignores chmod, so the file system is simulated
        if str(path).startswith(str(out)):
            raise OSError(err, os.strerror(err), str(path))
        return real_open(path, *a, **k)

    monkeypatch.setattr("builtins.open", refuse)
    code = cli.main(train_args(world["text"], out))
    monkeypatch.setattr("builtins.open", real_open)
    assert code == 1
    line = one_error_line(capsys, "train")
    assert words in line and str(out) in line


@pytest.mark.parametrize("argv, words", [
    (["eval", "--checkpoint", "x", "--iters", "0"], "--iters: must be >= 1, got 0"),
    (["bench", "train", "--iters", "0"], "--iters: must be >= 1, got 0"),
    (["bench", "matmul", "--size", "-3"], "--size: must be >= 1"),
    (["sample", "--checkpoint", "x", "--num-samples", "0"], "--num-samples: must be >= 1"),
    (["sample", "--checkpoint", "x", "--max-new-tokens", "0"], "--max-new-tokens: must be"),
    (["eval", "--checkpoint", "x", "--batch-size", "two"], "'two' is not a whole number"),
])
def test_nonsense_counts_are_refused_up_front(capsys, argv, words):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0] and "--help" in err[0]


def test_an_internal_error_shows_its_traceback_and_asks_for_a_report(monkeypatch, capsys):
    def broken(args):
        return 1 / 0

    monkeypatch.setattr(commands, "cmd_bench", broken)
    parser = cli.build_parser()
    monkeypatch.setattr(commands, "build_parser", lambda: parser)
    for action in parser._subparsers._group_actions[0].choices.values():
        if action.prog.endswith("bench"):
            action.set_defaults(func=broken)
    assert cli.main(["bench", "matmul"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "ZeroDivisionError" in err
    assert err.strip().splitlines()[-1].startswith("llmcourse bench: error: this is a bug")


# ====================================================== 3. token ids checked where data enters

def test_a_corrupted_token_file_is_named_with_the_bad_id(world, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LLMCOURSE_CACHE_DIR", str(world["cache"]))
    out, prep = tmp_path / "run", tmp_path / "prep"
    args = train_args(world["text"], out, f"data.prepared_dir={prep}")
    assert cli.main(args) == 0
    train_bin = prep / "train.bin"
    ids = np.fromfile(train_bin, dtype=np.uint16)
    ids[10] = 999
    ids.tofile(train_bin)
    before = snapshot(out)
    capsys.readouterr()
    assert cli.main(args + ["--resume", "--set", "max_iters=6"]) == 2
    line = one_error_line(capsys, "train")
    assert str(train_bin) in line and "token id 999 at position 10" in line
    assert cli.main(["eval", "--checkpoint", str(out), "--split", "train",
                     "--device", "cpu"]) == 2
    assert "token id 999" in one_error_line(capsys, "eval")
    assert snapshot(out) == before


def test_a_prompt_that_is_not_utf8_is_one_line(run, capsys):
    out, _ = run
    capsys.readouterr()
    # a terminal passing undecodable bytes gives Python lone surrogates in sys.argv
    assert cli.main(["sample", "--checkpoint", str(out), "--device", "cpu",
                     "--prompt", "caf\udce9"]) == 2
    assert "not UTF-8 text" in one_error_line(capsys, "sample")


def test_gpt2_decode_of_a_negative_id_names_it():
    from llmcourse.tokenizers import get_tokenizer

    try:
        tok = get_tokenizer("gpt2")
    except Exception as exc:  # pragma: no cover - no tiktoken files offline
        pytest.skip(f"gpt2 encoding unavailable: {exc}")
    with pytest.raises(ValueError, match="id -1 is not in the vocabulary of 'gpt2'"):
        tok.decode([5, -1])


def test_get_batch_refuses_negative_and_too_large_ids():
    data = np.arange(200, dtype=np.int64)
    data[50:] = -1
    with pytest.raises(ValueError, match="token id -1 at position"):
        get_batch(data, 8, 16, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"token id \d+ .*\[0, 40\)"):
        get_batch(np.arange(200, dtype=np.uint16), 8, 16, vocab_size=40)


def test_a_prompt_outside_the_vocabulary_is_one_line(run, capsys):
    out, _ = run
    capsys.readouterr()
    assert cli.main(["sample", "--checkpoint", str(out), "--device", "cpu",
                     "--prompt", "Zebra€"]) == 2
    line = one_error_line(capsys, "sample")
    assert "--prompt" in line and "cannot be encoded" in line


# ====================================================== 4. concurrent prepare, leftovers

def test_concurrent_prepare_of_one_folder_is_safe(world, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMCOURSE_CACHE_DIR", str(tmp_path / "cache"))
    results, errors = [], []

    def work():
        try:
            results.append(prepare(world["text"], "char", progress=False, verbose=False))
        except Exception as exc:  # pragma: no cover - the failure this test looks for
            errors.append(exc)

    for _ in range(3):
        threads = [threading.Thread(target=work) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        shutil.rmtree(tmp_path / "cache")
    assert not errors and len(results) == 9
    assert sum(not r.reused for r in results) >= 3  # one build per round, the others reuse


def test_a_killed_prepare_is_cleaned_up_by_the_next(world, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LLMCOURSE_CACHE_DIR", str(tmp_path / "cache"))
    prep = prepare(world["text"], "char", progress=False, verbose=False)
    before = snapshot(prep.path)
    junk = prep.path.parent / f".{prep.path.name}.tmp-killed"
    junk.mkdir()
    (junk / "train.bin").write_bytes(b"\0" * 1000)
    # a kill between the two renames of a replacement: the old dataset is aside, none in place
    aside = prep.path.parent / f".{prep.path.name}.old-killed"
    os.replace(prep.path, aside)
    again = prepare(world["text"], "char", progress=False)
    err = capsys.readouterr().err
    assert "restored" in err and "removed 1 leftover" in err
    assert again.reused and snapshot(again.path) == before
    assert sorted(p.name for p in prep.path.parent.iterdir()) == [prep.path.name]


def test_leftover_checkpoint_temp_files_are_removed_by_the_next_run(run, capsys):
    out, args = run
    (out / "ckpt.pt.tmp-999-deadbeef").write_bytes(b"PK half a checkpoint")
    (out / "run.json.tmp-999").write_text("{")
    assert cli.main(args + ["--resume", "--set", "max_iters=6", "--set",
                            "lr_decay_iters=6"]) == 0
    assert not list(out.glob("*.tmp*"))


# ====================================================== 5. settings: unknown keys, nothing to do

@pytest.mark.parametrize("item, words", [
    ("data.tokeniser=gpt2", "data has no setting 'tokeniser'; did you mean 'tokenizer'?"),
    ("model.n_layers=2", "did you mean 'n_layer'?"),
    ("train.max_iter=5", "did you mean 'max_iters'?"),
    ("learnin_rate=1", "no section has a setting 'learnin_rate'; did you mean 'learning_rate'?"),
    ("train.n_layer=2", "it is a model setting: --set model.n_layer=..."),
    ("train.block_size=32", "it is a model setting: --set model.block_size=..."),
    ("modle.n_layer=2", "unknown section 'modle'; use one of data, model, train; did you mean"),
])
def test_unknown_settings_are_errors_with_a_did_you_mean(capsys, item, words):
    assert cli.main(["train", "--print-config", "--set", item]) == 2
    assert words in one_error_line(capsys, "train")


def test_a_bare_key_of_two_sections_must_name_one():
    known = {"train": {"out_dir"}, "model": set(), "data": {"out_dir"}}
    with pytest.raises(ValueError, match="setting of data and train; name the section"):
        apply_overrides(get_preset("shakespeare-char-cpu"), ["out_dir=x"], known)


def test_bare_block_size_trains_at_that_size(world, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMCOURSE_CACHE_DIR", str(world["cache"]))
    out = tmp_path / "b"
    args = train_args(world["text"], out, "block_size=128", "max_iters=1", "lr_decay_iters=1",
                      "eval_interval=1")
    assert cli.main(args) == 0
    ckpt = torch.load(out / "ckpt.pt", weights_only=True)
    assert ckpt["model_config"]["block_size"] == 128
    assert ckpt["train_config"]["block_size"] == 128
    assert ckpt["model"]["transformer.wpe.weight"].shape[0] == 128


def test_max_iters_zero_says_it_trains_nothing(world, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LLMCOURSE_CACHE_DIR", str(world["cache"]))
    out = tmp_path / "zero"
    code = cli.main(train_args(world["text"], out, "max_iters=0"))
    assert code == 2
    assert "max_iters=0 trains nothing" in one_error_line(capsys, "train")
    assert not out.exists()


@pytest.mark.parametrize("target", [4, 2])
def test_resume_to_a_target_already_reached_says_so(run, capsys, target):
    out, args = run
    before = snapshot(out)
    capsys.readouterr()
    assert cli.main(args + ["--resume", "--set", f"max_iters={target}"]) == 0
    said = capsys.readouterr().out
    assert "nothing to do" in said and "is at iteration 4" in said and f"max_iters={target}" in said
    assert snapshot(out) == before


# ====================================================== 6. a kill during the first save

def test_resume_after_a_kill_between_best_and_ckpt(run, capsys):
    out, args = run
    (out / "ckpt.pt").unlink()  # what an older llmcourse left when killed in its first save
    capsys.readouterr()
    assert cli.main(args + ["--resume", "--set", "max_iters=6", "--set",
                            "lr_decay_iters=6"]) == 0
    assert "ckpt.pt is missing (the first save was interrupted); resuming from" in \
        capsys.readouterr().err
    assert torch.load(out / "ckpt.pt", weights_only=True)["iter_num"] == 6


def test_a_kill_during_the_first_save_leaves_a_resume_point(world, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMCOURSE_CACHE_DIR", str(world["cache"]))
    out = tmp_path / "killed"
    real = checkpoint_module.save_checkpoint
    calls = []

    def killed_after_first(obj, path):
        calls.append(Path(path).name)
        if len(calls) == 2:
            raise KeyboardInterrupt("kill -9")
        return real(obj, path)

    monkeypatch.setattr("llmcourse.train.trainer.save_checkpoint", killed_after_first)
    args = train_args(world["text"], out)
    assert cli.main(args) == 130
    assert calls == ["ckpt.pt", "best.pt"] and (out / "ckpt.pt").is_file()
    monkeypatch.setattr("llmcourse.train.trainer.save_checkpoint", real)
    assert cli.main(args + ["--resume"]) == 0


def test_a_run_killed_before_any_checkpoint_starts_over_cleanly(world, tmp_path, monkeypatch,
                                                                capsys):
    monkeypatch.setenv("LLMCOURSE_CACHE_DIR", str(world["cache"]))
    out = tmp_path / "early"
    out.mkdir()
    (out / "run.json").write_text("{}")
    (out / "metrics.jsonl").write_text('{"type": "train", "iter": 0, "loss": 4.0}\n')
    args = train_args(world["text"], out)
    assert cli.main(args + ["--resume"]) == 2
    assert "nothing to resume" in one_error_line(capsys, "train")
    assert cli.main(args) == 0
    assert "stopped before its first checkpoint; starting it over" in capsys.readouterr().err


# ====================================================== damaged records

def test_damaged_records_are_named(run, capsys):
    out, args = run
    (out / "run.json").write_text("{not json")
    assert cli.main(["sample", "--checkpoint", str(out), "--device", "cpu"]) == 2
    line = one_error_line(capsys, "sample")
    assert str(out / "run.json") in line and "not valid JSON" in line


def test_damaged_meta_json_is_named(world, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LLMCOURSE_CACHE_DIR", str(tmp_path / "cache"))
    prep = prepare(world["text"], "char", progress=False, verbose=False)
    (prep.path / "meta.json").write_text('{"format_version": 1,')
    assert cli.main(["prepare", str(world["text"]), "--no-progress"]) == 2
    line = one_error_line(capsys, "prepare")
    assert str(prep.path / "meta.json") in line and "not valid JSON" in line


def test_a_text_that_is_not_utf8_is_named_with_a_fix(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LLMCOURSE_CACHE_DIR", str(tmp_path / "cache"))
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\u00e9 cr\u00e8me\n".encode("latin-1") * 50)
    assert cli.main(["prepare", str(latin), "--no-progress"]) == 2
    line = one_error_line(capsys, "prepare")
    assert str(latin) in line and "not UTF-8" in line and "iconv" in line


def test_random_bytes_as_a_checkpoint_are_not_called_dangerous(run, capsys):
    out, _ = run
    (out / "best.pt").write_bytes(os.urandom(4096))
    assert cli.main(["sample", "--checkpoint", str(out / "best.pt"), "--device", "cpu"]) == 2
    line = one_error_line(capsys, "sample")
    assert "not a PyTorch checkpoint" in line and "arbitrary code" not in line
