"""``llmcourse plot``: loss curves of runs as an image, and its clear errors."""

from __future__ import annotations

import json

import pytest

from llmcourse import cli
from llmcourse.train.plots import plot_monitor, plot_runs

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def fake_run(folder, offset=0.0, monitor=False):
    folder.mkdir(parents=True)
    lines = []
    for it in range(0, 40, 10):
        lines.append({"type": "train", "iter": it, "loss": 4.0 - it / 20 + offset, "lr": 1e-3})
        lines.append({"type": "eval", "iter": it, "train_loss": 4.0 - it / 20 + offset,
                      "val_loss": 4.1 - it / 25 + offset})
        if monitor:
            lines.append({"type": "monitor", "iter": it,
                          "act": {"h.0.mlp": {"in_std": 1.0, "dead_frac": 0.01 * it}},
                          "grad": {"transformer.h.0.mlp.c_fc.weight": 0.5},
                          "update": {"transformer.h.0.mlp.c_fc.weight": -3.1}})
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return folder


def test_plot_two_runs_writes_a_png(tmp_path, capsys):
    a, b = fake_run(tmp_path / "a"), fake_run(tmp_path / "b", offset=0.3)
    out = tmp_path / "figs" / "curves.png"
    assert cli.main(["plot", str(a), str(b / "metrics.jsonl"), "--out", str(out),
                     "--labels", "small,big"]) == 0
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert "wrote" in capsys.readouterr().out


def test_plot_monitor_writes_a_png(tmp_path):
    run = fake_run(tmp_path / "m", monitor=True)
    out = tmp_path / "mon.png"
    assert cli.main(["plot", str(run), "--monitor", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize("make, extra, words", [
    (lambda p: p.mkdir(), [], "no metrics log"),
    (lambda p: (p.mkdir(), (p / "metrics.jsonl").write_text("")), [], "no training or evaluation"),
    (lambda p: fake_run(p), ["--monitor"], "no monitor records"),
    (lambda p: fake_run(p), ["--labels", "x,y"], "2 labels for 1 runs"),
    (lambda p: fake_run(p), ["--out", "metrics.jsonl"], "image file name"),
])
def test_plot_errors_are_one_line(tmp_path, capsys, make, extra, words):
    run = tmp_path / "run"
    make(run)
    args = ["plot", str(run), "--out", str(tmp_path / "x.png")] + extra
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and err.count("\n") == 0 and err.startswith("llmcourse plot: error:")
    assert not (tmp_path / "x.png").exists()


def test_plot_functions_take_records():
    import matplotlib

    matplotlib.use("Agg")
    recs = [{"type": "eval", "iter": 0, "train_loss": 3.0, "val_loss": 3.1}]
    ax = plot_runs([recs, recs], labels=["a", "b"])
    assert len(ax.get_lines()) == 4
    with pytest.raises(ValueError, match="no monitor records"):
        plot_monitor(recs)


def test_plot_has_help(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["plot", "--help"])
    assert exc.value.code == 0 and "--out" in capsys.readouterr().out


TINY = ["model.n_layer=1", "model.n_head=2", "model.n_embd=32", "model.block_size=32",
        "batch_size=4", "max_iters=8", "eval_interval=4", "eval_iters=2", "log_interval=2",
        "warmup_iters=2", "lr_decay_iters=8"]


def test_cli_train_with_monitors_and_tensorboard_then_plot(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LLMCOURSE_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "run"
    args = ["train", "--preset", "shakespeare-char-cpu", "--no-progress",
            "--set", f"out_dir={out}", "--set", "monitor_interval=4", "--set", "log=tensorboard"]
    for o in TINY:
        args += ["--set", o]
    assert cli.main(args) == 0
    recs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in recs if r["type"] == "monitor"] == [0, 4]
    assert any(p.name.startswith("events.out.tfevents") for p in (out / "tensorboard").iterdir())
    capsys.readouterr()
    assert cli.main(["plot", str(out), "--monitor", "--out", str(tmp_path / "m.png")]) == 0
    assert (tmp_path / "m.png").read_bytes()[:8] == PNG_MAGIC


def test_cli_bad_monitor_setting_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LLMCOURSE_CACHE_DIR", str(tmp_path / "cache"))
    args = ["train", "--preset", "shakespeare-char-cpu", "--no-progress",
            "--set", f"out_dir={tmp_path / 'run'}", "--set", "log=wandb"] + \
        [x for o in TINY for x in ("--set", o)]
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "log" in err and "tensorboard" in err and err.count("\n") == 0
