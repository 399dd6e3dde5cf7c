"""The CLI, presets and the run glue, end to end on a tiny model."""

from __future__ import annotations

import json

import pytest
import torch

from llmcourse import cli
from llmcourse.cli import commands
from llmcourse.presets import apply_overrides, get_preset, list_presets, parse_value
from llmcourse.runs import build_configs, find_checkpoint, load_trained

TINY = ["model.n_layer=1", "model.n_head=2", "model.n_embd=32", "model.block_size=32",
        "batch_size=4", "max_iters=12", "eval_interval=6", "eval_iters=2", "log_interval=3",
        "warmup_iters=2", "lr_decay_iters=12"]


@pytest.fixture()
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMCOURSE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def test_presets_match_the_issue():
    cpu = get_preset("shakespeare-char-cpu")
    assert (cpu["model"]["n_layer"], cpu["model"]["n_head"], cpu["model"]["n_embd"]) == (4, 4, 128)
    assert (cpu["model"]["block_size"], cpu["train"]["batch_size"], cpu["train"]["max_iters"]) == (64, 12, 2000)
    real = get_preset("shakespeare-char")
    assert (real["model"]["n_layer"], real["model"]["n_embd"], real["model"]["block_size"]) == (6, 384, 256)
    assert (real["model"]["dropout"], real["train"]["learning_rate"], real["train"]["max_iters"]) == (0.2, 1e-3, 5000)
    ts = get_preset("tinystories")
    assert ts["data"]["tokenizer"] == "gpt2" and ts["train"]["learning_rate"] == 6e-4
    assert {"gpt2-124m", "shakespeare-char-cpu", "shakespeare-char", "tinystories"} <= set(list_presets())


def test_every_preset_builds_valid_configs():
    for name in list_presets():
        model_cfg, train_cfg = build_configs(get_preset(name), vocab_size=65)
        assert train_cfg.block_size == model_cfg.block_size


def test_get_preset_returns_a_copy():
    a = get_preset("shakespeare-char-cpu")
    a["model"]["n_layer"] = 99
    assert get_preset("shakespeare-char-cpu")["model"]["n_layer"] == 4


def test_overrides_parse_and_route():
    p = apply_overrides(get_preset("shakespeare-char-cpu"),
                        ["max_iters=7", "model.dropout=0.1", "n_embd=64", "out_dir=out/x"])
    assert p["train"]["max_iters"] == 7 and p["model"]["dropout"] == 0.1
    assert p["model"]["n_embd"] == 64 and p["train"]["out_dir"] == "out/x"
    assert parse_value("1e-3") == 1e-3 and parse_value("False") is False and parse_value("none") is None


def test_override_keeps_the_word_none_of_a_text_setting():
    """`--set gelu_approximate=none` names the exact GELU; elsewhere `none` is Python's None."""
    out = apply_overrides({}, ["model.gelu_approximate=none", "train.grad_clip=none"])
    assert out == {"model": {"gelu_approximate": "none"}, "train": {"grad_clip": None}}


def test_override_of_known_field_not_in_preset():
    p = apply_overrides(get_preset("shakespeare-char-cpu"), ["compile=true"],
                        known={"train": {"compile"}, "model": set(), "data": set()})
    assert p["train"]["compile"] is True


@pytest.mark.parametrize("bad, words", [
    ("max_iters", "key=value"),
    ("nosuchkey=3", "no section has a setting"),
    ("wrong.section=3", "unknown section"),
])
def test_bad_overrides_say_what_to_do(bad, words):
    with pytest.raises(ValueError, match=words):
        apply_overrides(get_preset("shakespeare-char-cpu"), [bad])


def test_unknown_preset_lists_known_ones():
    with pytest.raises(KeyError, match="shakespeare-char-cpu"):
        get_preset("nope")


def test_unknown_field_in_config_is_named():
    p = apply_overrides(get_preset("shakespeare-char-cpu"), ["model.n_layerz=3"])
    with pytest.raises(ValueError, match="n_layerz"):
        build_configs(p, vocab_size=65)


def test_vocab_override_smaller_than_tokenizer_is_refused():
    p = apply_overrides(get_preset("shakespeare-char-cpu"), ["model.vocab_size=10"])
    with pytest.raises(ValueError, match="smaller than the tokenizer"):
        build_configs(p, vocab_size=65)


def test_cli_train_sample_eval_end_to_end(env, capsys):
    out = env / "run"
    args = ["train", "--preset", "shakespeare-char-cpu", "--no-progress",
            "--set", f"out_dir={out}"]
    for o in TINY:
        args += ["--set", o]
    assert cli.main(args) == 0
    assert (out / "ckpt.pt").is_file() and (out / "run.json").is_file()
    assert "val loss" in capsys.readouterr().out

    assert cli.main(["sample", "--checkpoint", str(out), "--max-new-tokens", "20",
                     "--num-samples", "2", "--prompt", "ROMEO:", "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert text.count("--- sample") == 2 and text.count("ROMEO:") >= 2

    # same seed, same text; the stream prints the same continuation as generate
    cli.main(["sample", "--checkpoint", str(out), "--max-new-tokens", "20", "--prompt", "A",
              "--device", "cpu", "--seed", "3"])
    first = capsys.readouterr().out
    cli.main(["sample", "--checkpoint", str(out), "--max-new-tokens", "20", "--prompt", "A",
              "--device", "cpu", "--seed", "3"])
    assert capsys.readouterr().out == first

    assert cli.main(["eval", "--checkpoint", str(out), "--iters", "2", "--device", "cpu"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["split"] == "val" and report["loss"] > 0
    assert report["perplexity"] == pytest.approx(torch.tensor(report["loss"]).exp().item(), rel=1e-2)

    model, tok, info = load_trained(out)
    assert not model.training and info.iter_num == 12
    assert tok.decode(tok.encode("ROMEO")) == "ROMEO"


def test_cli_resume_continues(env, capsys):
    out = env / "run"
    base = ["train", "--no-progress", "--set", f"out_dir={out}"]
    for o in TINY:
        base += ["--set", o]
    assert cli.main(base) == 0
    assert cli.main(base + ["--set", "max_iters=18", "--set", "lr_decay_iters=18", "--resume"]) == 0
    assert load_trained(out, prefer="ckpt")[2].iter_num == 18


def test_cli_refuses_to_overwrite_an_earlier_run(env, capsys):
    out = env / "run"
    base = ["train", "--no-progress", "--set", f"out_dir={out}"]
    for o in TINY:
        base += ["--set", o]
    assert cli.main(base) == 0
    before = (out / "ckpt.pt").read_bytes()
    capsys.readouterr()
    assert cli.main(base) == 2
    err = capsys.readouterr().err
    assert "--resume" in err and "overwrite" in err
    assert (out / "ckpt.pt").read_bytes() == before
    assert cli.main(base + ["--set", "overwrite=true"]) == 0


def test_cli_refuses_resume_with_overwrite(env, capsys):
    # --resume continues a run, overwrite=true replaces it: together they are refused before
    # anything is read or written, instead of one of them being silently ignored
    out = env / "run"
    base = ["train", "--no-progress", "--set", f"out_dir={out}"]
    for o in TINY:
        base += ["--set", o]
    assert cli.main(base) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    capsys.readouterr()
    assert cli.main(base + ["--resume", "--set", "train.overwrite=true"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--resume" in err[0] and "overwrite=true" in err[0] and "drop one" in err[0]
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_cli_missing_checkpoint_is_a_clear_error(env, capsys):
    code = cli.main(["sample", "--checkpoint", str(env / "nothing"), "--device", "cpu"])
    assert code == 2
    err = capsys.readouterr().err
    assert "no checkpoint" in err and "llmcourse train" in err


@pytest.mark.parametrize("flags, words", [
    (["--top-p", "1.5"], "top_p"),
    (["--temperature", "-1"], "temperature"),
    (["--top-k", "0"], "top_k"),
])
def test_cli_bad_sampling_settings_are_clear_errors(env, capsys, flags, words):
    out = env / "run"
    base = ["train", "--no-progress", "--set", f"out_dir={out}"]
    for o in TINY[:5] + ["max_iters=2", "eval_interval=2", "eval_iters=1", "warmup_iters=0",
                         "lr_decay_iters=2"]:
        base += ["--set", o]
    assert cli.main(base) == 0
    capsys.readouterr()
    code = cli.main(["sample", "--checkpoint", str(out), "--device", "cpu",
                     "--max-new-tokens", "3"] + flags)
    assert code == 2
    assert words in capsys.readouterr().err


def test_cli_unknown_dataset_is_a_clear_error(env, capsys):
    assert cli.main(["prepare", "no-such-dataset", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "shakespeare" in err and "Traceback" not in err


def test_cli_bad_override_is_a_clear_error(capsys):
    assert cli.main(["train", "--set", "max_iters"]) == 2
    assert "key=value" in capsys.readouterr().err


def test_cli_print_config(capsys):
    assert cli.main(["train", "--print-config", "--set", "max_iters=3"]) == 0
    assert json.loads(capsys.readouterr().out)["train"]["max_iters"] == 3


def test_find_checkpoint_prefers_best(tmp_path):
    (tmp_path / "ckpt.pt").write_bytes(b"x")
    assert find_checkpoint(tmp_path).name == "ckpt.pt"
    (tmp_path / "best.pt").write_bytes(b"x")
    assert find_checkpoint(tmp_path).name == "best.pt"
    assert find_checkpoint(tmp_path, prefer="ckpt").name == "ckpt.pt"


@pytest.mark.parametrize("command", ["prepare", "train", "sample", "eval", "bench"])
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([command, "--help"])
    assert exc.value.code == 0
    assert "usage: llmcourse" in capsys.readouterr().out


def test_bare_block_size_is_the_models_one_setting():
    from llmcourse.runs import known_fields

    p = apply_overrides(get_preset("shakespeare-char-cpu"), ["block_size=128"], known=known_fields())
    assert p["model"]["block_size"] == 128 and "block_size" not in p["train"]
    model_cfg, train_cfg = build_configs(p, vocab_size=65)
    assert model_cfg.block_size == train_cfg.block_size == 128


def test_train_block_size_in_a_preset_is_refused():
    p = get_preset("shakespeare-char-cpu")
    p["train"]["block_size"] = 32
    with pytest.raises(ValueError, match="Set model.block_size"):
        build_configs(p, vocab_size=65)


def test_unknown_keys_in_a_preset_have_a_did_you_mean():
    p = get_preset("shakespeare-char-cpu")
    p["data"]["tokeniser"] = "gpt2"
    with pytest.raises(ValueError, match=r"'tokeniser' \(did you mean 'tokenizer'\?\)"):
        build_configs(p, vocab_size=65)


@pytest.mark.parametrize("item, words", [
    ("data.tokeniser=gpt2", "did you mean 'tokenizer'?"),
    ("n_layerz=2", "did you mean 'n_layer'?"),
    ("train.block_size=8", "it is a model setting"),
])
def test_cli_unknown_keys_in_every_section(capsys, item, words):
    assert cli.main(["train", "--print-config", "--set", item]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0]


def test_cli_errors_of_the_machine_exit_1_naming_the_path(monkeypatch, capsys):
    import errno

    def full(args):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/out/ckpt.pt")

    parser = cli.build_parser()
    monkeypatch.setattr(commands, "build_parser", lambda: parser)
    for sub in parser._subparsers._group_actions[0].choices.values():
        if sub.prog.endswith("bench"):
            sub.set_defaults(func=full)
    assert cli.main(["bench", "matmul"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["llmcourse bench: error: no space left on the device while writing "
                   "/data/out/ckpt.pt: free some space or choose a folder on another disk "
                   "(out_dir / --out-dir)"]


@pytest.mark.parametrize("item", ["=5", " =5", "model.=4", ".n_layer=4"])
def test_override_without_a_name_says_how_to_write_one(item):
    with pytest.raises(ValueError) as e:
        apply_overrides(get_preset("shakespeare-char-cpu"), [item])
    assert str(e.value) == (f"--set {item}: the setting's name is missing; write --set name=value "
                            "(e.g. --set max_iters=500 or --set model.n_layer=4)")
