"""Reading a run's ``metrics.jsonl`` back as curves, and plotting them.

The :class:`~llmcourse.train.Trainer` appends one JSON record per logging step and per
evaluation (see :mod:`llmcourse.train.metrics`). After the run these two helpers turn the
log into something to look at:

- :func:`metrics_curves` - the columns of the log as plain lists: the training loss of the
  logged steps, the evaluated train and validation losses, the learning rate, and the best
  evaluation (the one ``best.pt`` holds);
- :func:`plot_metrics` - loss curves (training steps faint, evaluations bold, the best
  evaluation marked, the train/val gap visible) and optionally the learning rate on a second
  axis;
- :func:`plot_runs` - the curves of several runs on one axes (what ``llmcourse plot RUN ...``
  draws);
- :func:`plot_monitor` - the monitor records (``monitor_interval``) of a run: activation
  spread, dead fraction, update-to-data ratios and gradient norms per layer.

Example:
    >>> records = [
    ...     {"type": "train", "iter": 0, "loss": 4.2, "lr": 1e-4},
    ...     {"type": "eval", "iter": 0, "train_loss": 4.17, "val_loss": 4.18},
    ...     {"type": "train", "iter": 10, "loss": 3.1, "lr": 1e-3},
    ...     {"type": "eval", "iter": 20, "train_loss": 2.5, "val_loss": 2.6},
    ...     {"type": "eval", "iter": 40, "train_loss": 2.1, "val_loss": 2.7},
    ... ]
    >>> c = metrics_curves(records)
    >>> c.eval_iter, c.val_loss, c.best
    ([0, 20, 40], [4.18, 2.6, 2.7], (20, 2.6))
    >>> [round(g, 2) for g in c.gap]          # val - train at each evaluation
    [0.01, 0.1, 0.6]
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Iterable

from llmcourse.train.metrics import load_records
from llmcourse.train.monitor import monitor_curves

__all__ = ["MetricsCurves", "metrics_curves", "plot_metrics", "plot_runs", "plot_monitor"]


@dataclass
class MetricsCurves:
    """The columns of a metrics log (lists of equal length within each group).

    Attributes:
        train_iter, train_loss, lr: the logged training steps, their loss and learning rate.
        eval_iter, eval_train_loss, val_loss: the evaluations (steps completed, mean losses).
        best: ``(iter, val_loss)`` of the lowest validation loss, or ``None`` without
            evaluations.
    """

    train_iter: list[int] = field(default_factory=list)
    train_loss: list[float | None] = field(default_factory=list)
    lr: list[float | None] = field(default_factory=list)
    eval_iter: list[int] = field(default_factory=list)
    eval_train_loss: list[float | None] = field(default_factory=list)
    val_loss: list[float | None] = field(default_factory=list)
    best: tuple[int, float] | None = None

    @property
    def gap(self) -> list[float | None]:
        """Validation minus training loss at each evaluation (the generalisation gap)."""
        return [None if v is None or t is None else v - t
                for t, v in zip(self.eval_train_loss, self.val_loss)]


def metrics_curves(source: str | os.PathLike[str] | Iterable[dict[str, Any]]) -> MetricsCurves:
    """Split a metrics log into curves.

    Args:
        source: a run directory (holding ``metrics.jsonl``), the path of a log, or the list
            of records :meth:`Trainer.fit` returned.

    Records are sorted by ``iter``; a step logged twice (possible only in a hand-edited log)
    keeps its last record. Lines of other types (``"diverged"``) are ignored.
    """
    train: dict[int, dict[str, Any]] = {}
    evals: dict[int, dict[str, Any]] = {}
    for rec in load_records(source):
        kind = rec.get("type")
        if kind == "train":
            train[int(rec["iter"])] = rec
        elif kind == "eval":
            evals[int(rec["iter"])] = rec
    c = MetricsCurves()
    for it in sorted(train):
        c.train_iter.append(it)
        c.train_loss.append(train[it].get("loss"))
        c.lr.append(train[it].get("lr"))
    for it in sorted(evals):
        c.eval_iter.append(it)
        c.eval_train_loss.append(evals[it].get("train_loss"))
        c.val_loss.append(evals[it].get("val_loss"))
    finite = [(v, it) for it, v in zip(c.eval_iter, c.val_loss) if v is not None]
    if finite:
        v, it = min(finite)
        c.best = (it, v)
    return c


def plot_metrics(
    source: str | os.PathLike[str] | Iterable[dict[str, Any]] | MetricsCurves,
    *,
    ax: Any = None,
    title: str | None = None,
    show_lr: bool = False,
    logy: bool = False,
) -> Any:
    """Plot a run's losses; returns the matplotlib ``Axes``.

    Draws the logged training-step losses (thin, noisy), the evaluated train and validation
    losses (markers), and a star at the best validation loss. With ``show_lr`` the learning
    rate goes on a second y axis. Call ``plt.show()`` (or save the figure) afterwards.

    Args:
        source: what :func:`metrics_curves` accepts, or a :class:`MetricsCurves`.
        ax: draw into this ``Axes`` (default: a new figure).
        title: the axes title.
        show_lr: also plot the learning rate (right axis).
        logy: logarithmic loss axis.
    """
    import matplotlib.pyplot as plt

    c = source if isinstance(source, MetricsCurves) else metrics_curves(source)
    if not c.train_iter and not c.eval_iter:
        raise ValueError("the metrics log holds no training or evaluation records to plot")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.5))
    if c.train_iter:
        ax.plot(c.train_iter, c.train_loss, color="tab:blue", alpha=0.35, lw=1,
                label="training step loss")
    if c.eval_iter:
        ax.plot(c.eval_iter, c.eval_train_loss, "o-", color="tab:blue", ms=4,
                label="train (evaluated)")
        ax.plot(c.eval_iter, c.val_loss, "o-", color="tab:orange", ms=4, label="validation")
    if c.best is not None:
        ax.plot([c.best[0]], [c.best[1]], "*", color="k", ms=12,
                label=f"best val {c.best[1]:.3f} @ {c.best[0]}")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    handles, labels = ax.get_legend_handles_labels()
    if show_lr and c.train_iter:
        ax2 = ax.twinx()
        ax2.plot(c.train_iter, c.lr, color="tab:green", lw=1, ls="--", label="learning rate")
        ax2.set_ylabel("learning rate")
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, fontsize=8, loc="upper right")
    return ax


def plot_runs(
    sources: Iterable[str | os.PathLike[str] | Iterable[dict[str, Any]]],
    *,
    labels: Iterable[str] | None = None,
    ax: Any = None,
    title: str | None = None,
    logy: bool = False,
    train_steps: bool = True,
) -> Any:
    """Loss curves of several runs on one axes (one colour per run); returns the ``Axes``.

    Each run draws its validation loss (solid, markers) and evaluated training loss
    (dashed); with ``train_steps`` also its logged training-step losses (faint).

    Args:
        sources: run directories, ``metrics.jsonl`` paths or record lists.
        labels: a legend label per run (default: the folder's name, or ``run N``).

    Raises:
        FileNotFoundError: a folder without ``metrics.jsonl``.
        ValueError: a log without training or evaluation records, or labels that do not
            match the runs in number.
    """
    import matplotlib.pyplot as plt

    sources = list(sources)
    if not sources:
        raise ValueError("plot_runs needs at least one run")
    names = list(labels) if labels is not None else [
        os.path.basename(os.path.normpath(os.fspath(s))) if isinstance(s, (str, os.PathLike))
        else f"run {i + 1}" for i, s in enumerate(sources)]
    if len(names) != len(sources):
        raise ValueError(f"got {len(names)} labels for {len(sources)} runs; give one per run")
    curves = []
    for src, name in zip(sources, names):
        c = metrics_curves(src)
        if not c.train_iter and not c.eval_iter:
            where = os.fspath(src) if isinstance(src, (str, os.PathLike)) else name
            raise ValueError(f"{where}: its metrics log holds no training or evaluation "
                             "records yet (has the run logged a step?)")
        curves.append(c)
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (c, name) in enumerate(zip(curves, names)):
        color = colors[i % len(colors)]
        if train_steps and c.train_iter:
            ax.plot(c.train_iter, c.train_loss, color=color, alpha=0.25, lw=1)
        if c.eval_iter:
            ax.plot(c.eval_iter, c.val_loss, "o-", color=color, ms=3, label=f"{name} val")
            ax.plot(c.eval_iter, c.eval_train_loss, "--", color=color, lw=1,
                    label=f"{name} train")
        else:
            ax.plot(c.train_iter, c.train_loss, color=color, lw=1, label=f"{name} train")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=7, loc="upper right")
    return ax


def plot_monitor(source: str | os.PathLike[str] | Iterable[dict[str, Any]], *,
                 axes: Any = None, title: str | None = None) -> Any:
    """Four panels from a run's monitor records; returns the array of ``Axes``.

    Top left: the standard deviation of each MLP's GELU input; top right: the dead fraction
    (GELU inputs below -3); bottom left: ``log10`` update-to-data ratio of every 2-D weight
    (the dotted line at -3 is the usual healthy level); bottom right: gradient norm of every
    2-D weight (log scale). One line per layer or weight, over the monitored steps; the legend
    beside the bottom right panel names the weights of both bottom panels.

    Raises:
        ValueError: the log holds no monitor records (train with ``monitor_interval`` set).
    """
    import matplotlib.pyplot as plt

    m = monitor_curves(source)
    if not m["iter"]:
        raise ValueError("the metrics log holds no monitor records: train with "
                         "monitor_interval set (CLI: --set monitor_interval=100)")
    if axes is None:
        fig, axes = plt.subplots(2, 2, figsize=(10, 6))
        if title:
            fig.suptitle(title)
    flat = list(getattr(axes, "flat", axes))
    it = m["iter"]

    def lines(ax: Any, series: dict[str, list[Any]], ylabel: str) -> None:
        for name, ys in series.items():
            ax.plot(it, [float("nan") if y is None else y for y in ys], lw=1,
                    label=name.replace("transformer.", ""))
        ax.set_xlabel("iteration")
        ax.set_ylabel(ylabel)

    lines(flat[0], {k.split("/")[0]: v for k, v in m["act"].items()
                    if k.endswith("/in_std")}, "GELU input std")
    flat[0].legend(fontsize=6)
    lines(flat[1], {k.split("/")[0]: v for k, v in m["act"].items()
                    if k.endswith("/dead_frac")}, "dead fraction (input < -3)")
    flat[1].set_ylim(bottom=0)  # a fraction: no negative axis when every value is 0
    weights = [k for k in m["update"] if k.endswith(".weight") and ".ln_" not in k
               and not k.endswith("ln_f.weight")]
    lines(flat[2], {k: m["update"][k] for k in weights}, "log10 update / weight")
    flat[2].axhline(-3, color="k", ls=":", lw=1)
    lines(flat[3], {k: m["grad"][k] for k in weights if k in m["grad"]}, "gradient norm")
    flat[3].set_yscale("log")
    flat[3].legend(fontsize=6, loc="center left", bbox_to_anchor=(1.02, 0.5))   # both bottom panels
    return axes
