"""Learning-rate schedule: linear warmup, then cosine decay to a floor.

The shape used by GPT-2/GPT-3-style training (and nanoGPT):

- steps ``0 .. warmup_iters - 1``: the rate climbs linearly towards ``learning_rate``
  (step ``it`` gets ``learning_rate * (it + 1) / (warmup_iters + 1)``, so step 0 is not wasted
  with a zero rate);
- steps ``warmup_iters .. lr_decay_iters``: half a cosine from ``learning_rate`` down to
  ``min_lr``;
- after ``lr_decay_iters``: ``min_lr``.

:func:`get_lr` is a pure function of the step and the settings, so a lesson can plot it and a
resumed run picks up exactly where it left off.

Example:
    >>> from llmcourse.train import TrainConfig
    >>> cfg = TrainConfig(learning_rate=1e-3, min_lr=1e-4, warmup_iters=10, lr_decay_iters=110)
    >>> get_lr(10, cfg), get_lr(110, cfg), get_lr(500, cfg)
    (0.001, 0.0001, 0.0001)
    >>> round(get_lr(60, cfg), 6)     # half-way through the cosine: the mid-point
    0.00055
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["get_lr", "cosine_lr"]


def cosine_lr(
    it: int,
    *,
    learning_rate: float,
    min_lr: float,
    warmup_iters: int,
    lr_decay_iters: int,
) -> float:
    """Warmup + cosine learning rate at step ``it`` (see the module docstring).

    >>> cosine_lr(0, learning_rate=1.0, min_lr=0.0, warmup_iters=3, lr_decay_iters=10)
    0.25
    """
    if it < 0:
        raise ValueError(f"step must be >= 0, got {it}")
    if lr_decay_iters < warmup_iters:
        raise ValueError(
            f"lr_decay_iters ({lr_decay_iters}) must be >= warmup_iters ({warmup_iters})"
        )
    if it < warmup_iters:
        return learning_rate * (it + 1) / (warmup_iters + 1)
    if it >= lr_decay_iters:
        return min_lr
    progress = (it - warmup_iters) / (lr_decay_iters - warmup_iters)  # in [0, 1)
    coeff = 0.5 * (1.0 + math.cos(math.pi * progress))  # 1 -> 0
    return min_lr + coeff * (learning_rate - min_lr)


def get_lr(it: int, cfg: Any) -> float:
    """Learning rate at step ``it`` for a :class:`~llmcourse.train.TrainConfig` (or any object
    with ``learning_rate``, ``min_lr``, ``warmup_iters``, ``lr_decay_iters`` and optionally
    ``decay_lr``, ``max_iters``).

    With ``decay_lr=False`` the rate is constant. ``lr_decay_iters=None`` means ``max_iters``
    (or ``warmup_iters`` when that is longer).
    """
    if not getattr(cfg, "decay_lr", True):
        return float(cfg.learning_rate)
    decay_iters = cfg.lr_decay_iters
    if decay_iters is None:  # the whole run, but never shorter than the warmup
        decay_iters = max(int(cfg.max_iters), int(cfg.warmup_iters))
    return cosine_lr(
        it,
        learning_rate=float(cfg.learning_rate),
        min_lr=float(cfg.min_lr),
        warmup_iters=int(cfg.warmup_iters),
        lr_decay_iters=int(decay_iters),
    )
