"""metrics_curves / plot_metrics read a Trainer's metrics.jsonl back into curves and plots."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from llmcourse.train.plots import MetricsCurves, metrics_curves, plot_metrics  # noqa: E402

RECORDS = [
    {"type": "eval", "iter": 0, "train_loss": 4.2, "val_loss": 4.21, "improved": True},
    {"type": "train", "iter": 0, "loss": 4.25, "lr": 1e-4},
    {"type": "train", "iter": 10, "loss": 3.0, "lr": 1e-3},
    {"type": "eval", "iter": 20, "train_loss": 2.4, "val_loss": 2.5, "improved": True},
    {"type": "train", "iter": 20, "loss": 2.3, "lr": 9e-4},
    {"type": "eval", "iter": 40, "train_loss": 1.9, "val_loss": 2.6, "improved": False},
    {"type": "diverged", "iter": 41, "loss": None},
]


def test_curves_from_records():
    c = metrics_curves(RECORDS)
    assert c.train_iter == [0, 10, 20]
    assert c.train_loss == [4.25, 3.0, 2.3]
    assert c.lr == [1e-4, 1e-3, 9e-4]
    assert c.eval_iter == [0, 20, 40]
    assert c.val_loss == [4.21, 2.5, 2.6]
    assert c.best == (20, 2.5)
    assert c.gap == pytest.approx([0.01, 0.1, 0.7])


def test_curves_from_a_run_directory_and_file(tmp_path):
    log = tmp_path / "metrics.jsonl"
    # Out of order, with a half-written last line (a crash mid-write).
    lines = [json.dumps(r) for r in reversed(RECORDS)] + ['{"type": "tra']
    log.write_text("\n".join(lines) + "\n")
    for source in (tmp_path, log, str(log)):
        c = metrics_curves(source)
        assert c.eval_iter == [0, 20, 40] and c.best == (20, 2.5)


def test_null_losses_are_skipped_for_the_best():
    c = metrics_curves([{"type": "eval", "iter": 0, "train_loss": None, "val_loss": None},
                        {"type": "eval", "iter": 5, "train_loss": 2.0, "val_loss": 3.0}])
    assert c.best == (5, 3.0)
    assert c.gap == [None, 1.0]
    assert metrics_curves([]).best is None


def test_missing_log_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no metrics log"):
        metrics_curves(tmp_path)
    with pytest.raises(TypeError, match="records must be dicts"):
        metrics_curves([1, 2])


def test_plot_metrics_draws_every_curve():
    ax = plot_metrics(RECORDS, title="run", show_lr=True)
    labels = ax.get_legend_handles_labels()[1]
    assert "validation" in labels and "train (evaluated)" in labels
    assert any(lab.startswith("best val 2.500 @ 20") for lab in labels)
    assert ax.get_title() == "run"
    assert len(ax.figure.axes) == 2  # the learning-rate axis
    plt.close(ax.figure)
    fig, ax0 = plt.subplots()
    assert plot_metrics(metrics_curves(RECORDS), ax=ax0, logy=True) is ax0
    assert ax0.get_yscale() == "log"
    plt.close(fig)
    with pytest.raises(ValueError, match="no training or evaluation"):
        plot_metrics(MetricsCurves())


def test_plot_of_a_real_trainer_log(tmp_path):
    import torch

    from llmcourse.train import TrainConfig, Trainer
    from train_helpers import TinyLM

    data = torch.arange(400) % 5

    def get_batch(split, generator=None):
        i = torch.randint(0, len(data) - 9, (4,), generator=generator)
        return (torch.stack([data[j:j + 8] for j in i]), torch.stack([data[j + 1:j + 9] for j in i]))

    cfg = TrainConfig(out_dir=str(tmp_path), max_iters=20, batch_size=4, block_size=8,
                      learning_rate=0.05, min_lr=0.005, warmup_iters=2, eval_interval=10,
                      eval_iters=2, log_interval=5, device="cpu", progress=False)
    torch.manual_seed(0)
    Trainer(TinyLM(), cfg, get_batch).fit()
    c = metrics_curves(tmp_path)
    assert c.eval_iter == [0, 10, 20] and c.train_iter == [0, 5, 10, 15]
    ax = plot_metrics(tmp_path)
    plt.close(ax.figure)
