"""The trainer's non-finite-loss guard: :class:`TrainingDiverged` and the deferred checks.

Reading a loss back from the GPU makes the CPU wait for it, so the
:class:`~llmcourse.train.Trainer` keeps each step's loss (and gradient norm) as a tensor in a
*pending* list and checks them all at once, with one device synchronisation, every
``log_interval`` steps, before each evaluation and at the end (:func:`check_pending`).
Evaluation losses are checked as they come (:func:`check_eval_losses`). The first non-finite
value raises :class:`TrainingDiverged` naming its step, after writing a ``"diverged"`` record
to the metrics log.

Example:
    >>> import torch
    >>> pending = [(0, torch.tensor(2.5), None, 1e-3), (1, torch.tensor(float("nan")), None, 1e-3)]
    >>> check_pending(pending)
    Traceback (most recent call last):
    ...
    llmcourse.train.diverged.TrainingDiverged: training diverged: the training loss is not finite (nan) at iteration 1. ...
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from llmcourse.train.ddp import DistInfo, all_reduce_mean

__all__ = ["TrainingDiverged", "Pending", "check_pending", "check_eval_losses"]

Pending = list[tuple[int, torch.Tensor, "torch.Tensor | None", float]]
"""Steps not yet checked: ``(iteration, loss tensor, gradient norm tensor or None, lr)``."""


class TrainingDiverged(RuntimeError):
    """The loss (or the weights) became NaN or infinite.

    Training stops at the first check that sees it; checkpoints already on disk are left as
    they were (the trainer never saves non-finite weights).

    Attributes:
        iteration: the optimizer step (0-based) whose loss was not finite, or the number of
            completed steps when an evaluation or the weights were found non-finite.
        value: the offending value (``nan``, ``inf`` or ``-inf``), if there is one.
        what: which quantity: ``"training loss"``, ``"gradient norm"``, ``"validation loss"``,
            ``"training-split evaluation loss"`` or ``"weights"``.
    """

    def __init__(self, iteration: int, value: float | None, what: str = "training loss",
                 kept: tuple[Path, int] | None = None, settings: str = ""):
        self.iteration = iteration
        self.value = value
        self.what = what
        self.kept = kept  # (path, iteration) of the newest checkpoint on disk, if any
        shown = "" if value is None else f" ({value})"
        if kept is None:
            on_disk = "No checkpoint was written."
        else:
            on_disk = f"Kept {kept[0]} (iteration {kept[1]}) as it was."
        super().__init__(
            f"training diverged: the {what} is not finite{shown} at iteration {iteration}. "
            f"{on_disk} Usual fixes: lower learning_rate, keep grad_clip > 0 (e.g. 1.0), use "
            "a longer warmup, or dtype='float32' / 'bfloat16' instead of float16"
            + (f" (this run: {settings})." if settings else ".")
        )


def _diverged(metrics: Any, it: int, loss: float) -> None:
    if metrics is not None:
        metrics.write({"type": "diverged", "iter": it, "loss": loss})


def check_pending(pending: Pending, dist: DistInfo | None = None, *, check_norms: bool = True,
                  metrics: Any = None, log_iter: int | None = None) -> dict[str, Any] | None:
    """Check the pending steps for non-finite values and empty the list.

    One device synchronisation (and one all-reduce under DDP, so every process agrees on the
    losses). ``check_norms=False`` leaves non-finite gradient norms alone (float16 overflow is
    the gradient scaler's business). Returns the ``"train"`` record of step ``log_interval``
    (without timing), or ``None``.
    """
    if not pending:
        return None
    losses = torch.stack([p[1].float() for p in pending])
    if dist is not None:
        losses = all_reduce_mean(losses, dist)
    loss_vals = losses.tolist()
    norms: list[float | None] = [None] * len(pending)
    with_norm = [i for i, p in enumerate(pending) if p[2] is not None]
    if with_norm:
        vals = torch.stack([pending[i][2].float() for i in with_norm]).tolist()  # type: ignore[union-attr]
        for i, v in zip(with_norm, vals):
            norms[i] = v
    for (it, _, _, _), loss, norm in zip(pending, loss_vals, norms):
        if not math.isfinite(loss):
            _diverged(metrics, it, loss)
            raise TrainingDiverged(it, loss, "training loss")
        if check_norms and norm is not None and not math.isfinite(norm):
            _diverged(metrics, it, loss)
            raise TrainingDiverged(it, norm, "gradient norm")
    record = None
    if log_iter is not None:
        pos = [p[0] for p in pending].index(log_iter)
        record = {"type": "train", "iter": log_iter, "loss": loss_vals[pos],
                  "lr": pending[pos][3], "grad_norm": norms[pos]}
    pending.clear()
    return record


def check_eval_losses(losses: dict[str, float], it: int, metrics: Any = None) -> None:
    """Raise :class:`TrainingDiverged` if an evaluation loss is not finite."""
    for split, what in (("val", "validation loss"), ("train", "training-split evaluation loss")):
        if not math.isfinite(losses[split]):
            _diverged(metrics, it, losses[split])
            raise TrainingDiverged(it, losses[split], what)
