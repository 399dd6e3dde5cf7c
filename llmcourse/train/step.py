"""One optimizer step of the :class:`~llmcourse.train.Trainer`: :func:`train_step`.

The same step as the plain loop's (:mod:`llmcourse.train.loop`), with what the engineered
trainer adds around it:

- under DDP the gradient all-reduce happens only on the last micro-batch (``no_sync`` before);
- on a monitored step the monitor's forward hooks are on for the first micro-batch, and it
  reads the gradients (before clipping) and the weights around the update;
- the loss stays a tensor on the device (checked later, all at once: :mod:`.diverged`), and the
  gradient norm is measured when it is asked for even without clipping.

Example:
    >>> import torch, torch.nn as nn, torch.nn.functional as F
    >>> from llmcourse.device import pick_dtype
    >>> model = nn.Linear(4, 3)
    >>> def loss_of(x, y):
    ...     logits = model(x)
    ...     return logits, F.cross_entropy(logits, y)
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> plan = pick_dtype(torch.device("cpu"), requested="float32")
    >>> batch = lambda split: (torch.ones(2, 4), torch.tensor([0, 1]))
    >>> loss, norm, tokens, _ = train_step(loss_of, batch, opt, plan.make_grad_scaler(), plan,
    ...                                    list(model.parameters()), accum=2, grad_clip=1.0)
    >>> loss.shape, tokens
    (torch.Size([]), 16)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from llmcourse.train.evaluate import loss_from_output

__all__ = ["train_step"]


def train_step(
    model: Callable[..., Any],
    batch: Callable[[str], tuple[torch.Tensor, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    precision: Any,
    params: list[nn.Parameter],
    *,
    accum: int,
    grad_clip: float,
    need_norm: bool = False,
    ddp: bool = False,
    monitor: Any = None,
    it: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None, int, dict[str, Any] | None]:
    """Forward, backward over ``accum`` micro-batches, clip, optimizer step, zero the grads.

    Args:
        model: called as ``model(x, y)``, returns ``(logits, loss)`` (DDP-wrapped under DDP).
        batch: ``batch("train") -> (x, y)`` on the model's device.
        precision: a :class:`~llmcourse.device.PrecisionPlan` (its ``autocast``).
        params: the parameters to clip (those that require a gradient).
        need_norm: measure the gradient norm even when ``grad_clip`` is 0.
        monitor: a :class:`~llmcourse.train.monitor.TrainingMonitor` to record step ``it``.

    Returns:
        ``(mean loss tensor, pre-clip gradient norm or None, tokens, monitor record or None)``.
    """
    scaler_on = scaler.is_enabled()
    loss_sum: torch.Tensor | None = None
    tokens = 0
    for micro in range(accum):
        x, y = batch("train")  # (B, T), (B, T)
        tokens += x.numel()
        # Under DDP, all-reduce gradients only on the last micro-batch.
        sync = model.no_sync() if ddp and micro < accum - 1 else contextlib.nullcontext()
        # Monitored step: forward hooks on for the first micro-batch only.
        watch = monitor.watch() if monitor is not None and micro == 0 else contextlib.nullcontext()
        with sync:
            with watch, precision.autocast():
                loss = loss_from_output(model(x, y))
            scaled = loss / accum if accum > 1 else loss
            if scaler_on:
                scaler.scale(scaled).backward()
            else:
                scaled.backward()
        detached = loss.detach()
        loss_sum = detached if loss_sum is None else loss_sum + detached
    assert loss_sum is not None
    mean_loss = loss_sum / accum if accum > 1 else loss_sum

    if scaler_on:
        scaler.unscale_(optimizer)
    if monitor is not None:
        monitor.read_gradients()  # before clipping
        monitor.before_update()
    grad_norm: torch.Tensor | None = None
    if grad_clip > 0:
        grad_norm = nn.utils.clip_grad_norm_(params, grad_clip)
    elif need_norm:
        grads = [p.grad for p in params if p.grad is not None]
        grad_norm = nn.utils.get_total_norm(grads) if grads else None
    if scaler_on:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    record = monitor.after_update(it) if monitor is not None and it is not None else None
    optimizer.zero_grad(set_to_none=True)
    return mean_loss, grad_norm, tokens, record
