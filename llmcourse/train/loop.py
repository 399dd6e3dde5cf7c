"""The training loop of days 17 and 18, plain: one function to read top to bottom.

Each iteration sets the scheduled learning rate, draws a batch, runs the forward pass,
backpropagates, clips the gradient norm and takes the optimizer step; every ``eval_interval``
steps (and at the end) it estimates the train and validation losses over ``eval_iters`` batches
each. Day 18's speed-ups are already in it: the forward pass under autocast, a ``GradScaler``
for float16 and gradient accumulation over ``grad_accum_steps`` micro-batches. In float32 with
``grad_accum_steps=1`` (the default) all three do nothing, and what is left is day 17's loop.

This is the reference for the concept. :class:`~llmcourse.train.Trainer` is the engineered
version built beside it (checkpoints, exact resume, early stopping, monitors, DDP, a log file)
and, with the same seed and settings, trains to the same losses and weights bit for bit
(``tests/test_train_loop.py`` checks it).

Example (a toy bigram model; the course's GPT works the same way):

    >>> import torch, torch.nn as nn, torch.nn.functional as F
    >>> from llmcourse.train import TrainConfig
    >>> class Bigram(nn.Module):
    ...     def __init__(self, vocab):
    ...         super().__init__()
    ...         self.table = nn.Embedding(vocab, vocab)
    ...     def forward(self, idx, targets):
    ...         logits = self.table(idx)                                   # (B, T, V)
    ...         return logits, F.cross_entropy(logits.flatten(0, 1), targets.flatten())
    >>> data = torch.arange(1000) % 7                    # a sequence with an obvious rule
    >>> def get_batch(split, generator):
    ...     i = torch.randint(0, len(data) - 9, (8,), generator=generator)
    ...     return (torch.stack([data[j:j + 8] for j in i]),
    ...             torch.stack([data[j + 1:j + 9] for j in i]))
    >>> cfg = TrainConfig(max_iters=60, learning_rate=0.1, min_lr=0.01, warmup_iters=5,
    ...                   eval_interval=30, eval_iters=4, log_interval=30, device="cpu")
    >>> history = train(Bigram(7), get_batch, cfg, verbose=False)
    >>> history[-1]["type"], history[-1]["val_loss"] < 0.5
    ('eval', True)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from llmcourse.device import pick_device, pick_dtype
from llmcourse.train.config import TrainConfig
from llmcourse.train.evaluate import estimate_loss
from llmcourse.train.optim import configure_optimizer
from llmcourse.train.schedule import get_lr

__all__ = ["train"]


def train(model: nn.Module, get_batch: Callable[..., tuple[torch.Tensor, torch.Tensor]],
          cfg: TrainConfig, *, verbose: bool = True) -> list[dict[str, Any]]:
    """Train ``model`` for ``cfg.max_iters`` optimizer steps; return the loss records.

    Args:
        model: ``model(x, y) -> (logits, loss)``, the loss a mean cross-entropy.
        get_batch: ``get_batch(split, generator) -> (x, y)``, both ``(B, T)`` token ids, with
            ``split`` in ``{"train", "val"}``; its random offsets come from ``generator``.
        cfg: the run's settings (the fields the Trainer reads for the same things).
        verbose: print each evaluation and each ``log_interval``-th step.

    Returns:
        ``{"type": "train", "iter", "loss", "lr"}`` every ``log_interval`` steps and
        ``{"type": "eval", "iter", "train_loss", "val_loss"}`` at each evaluation.
    """
    device = pick_device(cfg.device)
    precision = pick_dtype(device, requested=cfg.dtype)  # float32, or bfloat16/float16 autocast
    model.to(device)
    optimizer = configure_optimizer(
        model, learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay,
        betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, device_type=device.type,
        fused=cfg.fused_adamw, optimizer=cfg.optimizer)
    scaler = precision.make_grad_scaler()  # scales float16 losses; does nothing otherwise
    torch.manual_seed(cfg.seed)  # dropout draws from PyTorch's global generator
    generator = torch.Generator().manual_seed(cfg.seed)  # the batch offsets: our own

    def batch(split: str) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = get_batch(split, generator=generator)  # (B, T), (B, T)
        return x.to(device), y.to(device)

    history: list[dict[str, Any]] = []
    model.train()
    for it in range(cfg.max_iters + 1):
        # Every eval_interval steps, and once at the end: the mean loss over fixed-size
        # samples of both splits (eval mode, no gradients). The batches are fresh ones from the
        # training generator, as nanoGPT does (and the Trainer, bit for bit); to compare two
        # estimates, give estimate_loss the same fixed batches instead (day 13).
        if it % cfg.eval_interval == 0 or it == cfg.max_iters:
            losses = estimate_loss(model, batch, cfg.eval_iters, autocast=precision.autocast)
            history.append({"type": "eval", "iter": it, "train_loss": losses["train"],
                            "val_loss": losses["val"]})
            if verbose:
                print(f"step {it}: train loss {losses['train']:.4f}, "
                      f"val loss {losses['val']:.4f}")
        if it == cfg.max_iters:
            break

        lr = get_lr(it, cfg)  # warmup, then decay to min_lr
        for group in optimizer.param_groups:
            group["lr"] = lr

        # Gradient accumulation: the mean loss of grad_accum_steps micro-batches.
        loss_sum = 0.0
        for _ in range(cfg.grad_accum_steps):
            x, y = batch("train")
            with precision.autocast():
                _, loss = model(x, y)  # logits (B, T, V), loss: a scalar
            loss_sum = loss_sum + loss.detach()
            scaler.scale(loss / cfg.grad_accum_steps).backward()  # gradients add up

        scaler.unscale_(optimizer)  # true gradients before measuring them (float16)
        if cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        scaler.step(optimizer)  # optimizer.step(), skipped by the scaler on inf/NaN
        scaler.update()
        optimizer.zero_grad(set_to_none=True)

        if it % cfg.log_interval == 0:
            loss_value = (loss_sum / cfg.grad_accum_steps).item()
            history.append({"type": "train", "iter": it, "loss": loss_value, "lr": lr})
            if verbose:
                print(f"iter {it}: loss {loss_value:.4f}, lr {lr:.2e}")
    return history
