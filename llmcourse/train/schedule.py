"""Learning-rate schedules: a linear warmup, then cosine, linear, constant or warmup-stable-decay.

Every schedule starts with the same warmup and differs in what follows it:

- warmup, steps ``0 .. warmup_iters - 1``: the rate climbs linearly towards ``learning_rate``;
  step ``it`` gets ``learning_rate * (it + 1) / (warmup_iters + 1)`` (as in nanoGPT), so step 0
  is not wasted with a zero rate and the peak is first reached at step ``warmup_iters``;
- ``"cosine"`` (the default; GPT-2/GPT-3 style): half a cosine from ``learning_rate`` at
  ``warmup_iters`` down to ``min_lr`` at ``lr_decay_iters``, then ``min_lr``;
- ``"linear"``: a straight line over the same span, then ``min_lr``;
- ``"constant"``: ``learning_rate`` after the warmup, for ever (``min_lr`` and
  ``lr_decay_iters`` are not used);
- ``"wsd"`` (warmup-stable-decay): ``learning_rate`` until the last ``cooldown_frac`` of the
  steps before ``lr_decay_iters``, then a straight line down to ``min_lr`` at
  ``lr_decay_iters`` (the "cooldown"), then ``min_lr``. Because the rate stays at its peak until
  the cooldown, a run can be stopped (or extended) at any point of the stable phase and only the
  short cooldown has to be added.

All of them are pure functions of the step and the settings, so a lesson can plot them and a
resumed run picks up exactly where it left off. :func:`get_lr` reads the settings from a
:class:`~llmcourse.train.TrainConfig`.

Example:
    >>> from llmcourse.train import TrainConfig
    >>> cfg = TrainConfig(learning_rate=1e-3, min_lr=1e-4, warmup_iters=10, lr_decay_iters=110)
    >>> get_lr(10, cfg), get_lr(110, cfg), get_lr(500, cfg)
    (0.001, 0.0001, 0.0001)
    >>> round(get_lr(60, cfg), 6)     # half-way through the cosine: the mid-point
    0.00055
    >>> wsd = cfg.replace(lr_schedule="wsd", cooldown_frac=0.2)   # cooldown: steps 88 .. 110
    >>> get_lr(87, wsd), round(get_lr(99, wsd), 6), get_lr(110, wsd)
    (0.001, 0.00055, 0.0001)
"""

from __future__ import annotations

import math
from typing import Any, Callable

__all__ = [
    "get_lr",
    "warmup_lr",
    "cosine_lr",
    "linear_lr",
    "constant_lr",
    "wsd_lr",
    "SCHEDULES",
]


def _check_steps(it: int, warmup_iters: int, lr_decay_iters: int | None = None) -> None:
    if it < 0:
        raise ValueError(f"step must be >= 0, got {it}")
    if warmup_iters < 0:
        raise ValueError(f"warmup_iters must be >= 0, got {warmup_iters}")
    if lr_decay_iters is not None and lr_decay_iters < warmup_iters:
        raise ValueError(
            f"lr_decay_iters ({lr_decay_iters}) must be >= warmup_iters ({warmup_iters})"
        )


def warmup_lr(it: int, *, learning_rate: float, warmup_iters: int) -> float:
    """The warmup part alone: ``learning_rate * (it + 1) / (warmup_iters + 1)`` for
    ``it < warmup_iters``, ``learning_rate`` from then on.

    >>> [warmup_lr(i, learning_rate=1.0, warmup_iters=4) for i in range(6)]
    [0.2, 0.4, 0.6, 0.8, 1.0, 1.0]
    """
    _check_steps(it, warmup_iters)
    if it < warmup_iters:
        return learning_rate * (it + 1) / (warmup_iters + 1)
    return learning_rate


def cosine_lr(
    it: int,
    *,
    learning_rate: float,
    min_lr: float,
    warmup_iters: int,
    lr_decay_iters: int,
) -> float:
    """Warmup, then half a cosine from ``learning_rate`` to ``min_lr`` at ``lr_decay_iters``.

    >>> cosine_lr(0, learning_rate=1.0, min_lr=0.0, warmup_iters=3, lr_decay_iters=10)
    0.25
    """
    _check_steps(it, warmup_iters, lr_decay_iters)
    if it < warmup_iters:
        return warmup_lr(it, learning_rate=learning_rate, warmup_iters=warmup_iters)
    if it >= lr_decay_iters:
        return min_lr
    progress = (it - warmup_iters) / (lr_decay_iters - warmup_iters)  # in [0, 1)
    coeff = 0.5 * (1.0 + math.cos(math.pi * progress))  # 1 -> 0
    return min_lr + coeff * (learning_rate - min_lr)


def linear_lr(
    it: int,
    *,
    learning_rate: float,
    min_lr: float,
    warmup_iters: int,
    lr_decay_iters: int,
) -> float:
    """Warmup, then a straight line from ``learning_rate`` to ``min_lr`` at ``lr_decay_iters``.

    >>> linear_lr(5, learning_rate=1.0, min_lr=0.0, warmup_iters=0, lr_decay_iters=10)
    0.5
    """
    _check_steps(it, warmup_iters, lr_decay_iters)
    if it < warmup_iters:
        return warmup_lr(it, learning_rate=learning_rate, warmup_iters=warmup_iters)
    if it >= lr_decay_iters:
        return min_lr
    progress = (it - warmup_iters) / (lr_decay_iters - warmup_iters)  # in [0, 1)
    return learning_rate + progress * (min_lr - learning_rate)


def constant_lr(it: int, *, learning_rate: float, warmup_iters: int, **_: Any) -> float:
    """Warmup, then ``learning_rate`` at every step (other settings are ignored).

    >>> constant_lr(1000, learning_rate=3e-4, warmup_iters=10, min_lr=0.0)
    0.0003
    """
    return warmup_lr(it, learning_rate=learning_rate, warmup_iters=warmup_iters)


def wsd_lr(
    it: int,
    *,
    learning_rate: float,
    min_lr: float,
    warmup_iters: int,
    lr_decay_iters: int,
    cooldown_frac: float = 0.2,
) -> float:
    """Warmup-stable-decay: warmup, ``learning_rate`` until the cooldown, then a straight line
    to ``min_lr`` at ``lr_decay_iters``.

    The cooldown is the last ``round(cooldown_frac * lr_decay_iters)`` steps before
    ``lr_decay_iters``, but never starts before the warmup has ended.

    >>> [wsd_lr(i, learning_rate=1.0, min_lr=0.0, warmup_iters=0, lr_decay_iters=10,
    ...         cooldown_frac=0.4) for i in (0, 5, 6, 7, 8, 9, 10)]
    [1.0, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0]
    """
    _check_steps(it, warmup_iters, lr_decay_iters)
    if not 0.0 <= cooldown_frac <= 1.0:
        raise ValueError(f"cooldown_frac must be in [0, 1], got {cooldown_frac}")
    if it < warmup_iters:
        return warmup_lr(it, learning_rate=learning_rate, warmup_iters=warmup_iters)
    if it >= lr_decay_iters:
        return min_lr
    cooldown_start = max(warmup_iters, lr_decay_iters - round(cooldown_frac * lr_decay_iters))
    if it < cooldown_start:
        return learning_rate
    progress = (it - cooldown_start) / (lr_decay_iters - cooldown_start)  # in [0, 1)
    return learning_rate + progress * (min_lr - learning_rate)


SCHEDULES: dict[str, Callable[..., float]] = {
    "cosine": cosine_lr,
    "linear": linear_lr,
    "constant": constant_lr,
    "wsd": wsd_lr,
}
"""The schedules by the name ``TrainConfig.lr_schedule`` uses."""


def get_lr(it: int, cfg: Any) -> float:
    """Learning rate at step ``it`` for a :class:`~llmcourse.train.TrainConfig` (or any object
    with ``learning_rate``, ``min_lr``, ``warmup_iters``, ``lr_decay_iters`` and optionally
    ``lr_schedule``, ``cooldown_frac``, ``decay_lr``, ``max_iters``).

    ``lr_schedule`` picks the shape (``"cosine"`` when absent). With ``decay_lr=False`` the
    rate is ``learning_rate`` at every step (no warmup either). ``lr_decay_iters=None`` means
    ``max_iters`` (or ``warmup_iters`` when that is longer).
    """
    if not getattr(cfg, "decay_lr", True):
        return float(cfg.learning_rate)
    name = getattr(cfg, "lr_schedule", "cosine")
    if name not in SCHEDULES:
        raise ValueError(f"unknown lr_schedule {name!r}; use one of {', '.join(SCHEDULES)}")
    decay_iters = cfg.lr_decay_iters
    if decay_iters is None:  # the whole run, but never shorter than the warmup
        decay_iters = max(int(cfg.max_iters), int(cfg.warmup_iters))
    kwargs: dict[str, Any] = {
        "learning_rate": float(cfg.learning_rate),
        "min_lr": float(cfg.min_lr),
        "warmup_iters": int(cfg.warmup_iters),
        "lr_decay_iters": int(decay_iters),
    }
    if name == "wsd":
        kwargs["cooldown_frac"] = float(getattr(cfg, "cooldown_frac", 0.2))
    return SCHEDULES[name](it, **kwargs)
