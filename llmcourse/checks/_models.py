"""The stand-in model the checks hand to a learner's evaluation code (days 06 and 17).

An evaluation function is judged by what it does to the model (eval mode during the calls,
gradients off, the mode put back, one call per batch) as much as by the mean it returns, so the
checks give it a model that returns scripted losses and records every call.

Example::

    >>> model = ScriptedLosses([2.0, 0.5], target_of=lambda idx: idx)
    >>> x = torch.zeros(1, 3, dtype=torch.long)
    >>> logits, loss = model(x, x)
    >>> round(loss.item(), 6), round(F.cross_entropy(logits.flatten(0, 1), x.flatten()).item(), 6)
    (2.0, 2.0)
    >>> model.calls, model.modes, model.batches
    (1, [True], [0])
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["ScriptedLosses"]


class ScriptedLosses(nn.Module):
    """A model whose loss on its n-th call is ``losses[n % len(losses)]``; a ``None`` loss raises
    ``error``. Its arguments have the course's names, ``(idx, targets)``.

    Its logits are real: their cross-entropy against the batch's targets is the scripted loss,
    so a learner who recomputes the loss from ``model(x)[0]`` gets the same value as one who reads
    ``model(x, y)[1]``. ``target_of(idx)`` says which targets go with a batch (the check builds
    both), since ``model(x)`` is not given them.

    It records ``calls``; ``modes``, whether it or its dropout child was in training mode at each
    call (``model.training = False`` does not reach the child); ``grad_enabled``; and ``batches``
    and ``targets``, the first id of each batch and of the targets it was given (-1: none).
    """

    def __init__(self, losses: list[float | None], target_of: Callable[[torch.Tensor], torch.Tensor],
                 error: BaseException | None = None) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))
        self.drop = nn.Dropout(0.1)
        self.losses, self.target_of, self.error = losses, target_of, error
        self.calls = 0
        self.modes: list[bool] = []
        self.grad_enabled: list[bool] = []
        self.batches: list[int] = []
        self.targets: list[int] = []

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> Any:
        self.modes.append(self.training or self.drop.training)
        self.grad_enabled.append(torch.is_grad_enabled())
        self.batches.append(int(idx.flatten()[0]) if idx.numel() else -1)
        self.targets.append(int(targets.flatten()[0])
                            if isinstance(targets, torch.Tensor) and targets.numel() else -1)
        value = self.losses[self.calls % len(self.losses)]
        self.calls += 1
        if value is None:
            raise self.error if self.error is not None else RuntimeError("no loss scripted")
        return self._logits(self.target_of(idx), value), self.w * value

    @staticmethod
    def _logits(targets: torch.Tensor, value: float) -> torch.Tensor:
        """(B, T, V) float64 logits whose mean cross-entropy against ``targets`` is ``value``.

        Every row has logit z at its target and 0 elsewhere, so its loss is
        ``log(1 + (V - 1) e^-z)``; solving for ``value`` gives ``z = log(V - 1) - log(e^value - 1)``.
        """
        V = int(targets.max()) + 2
        z = math.log(V - 1) - math.log(math.expm1(max(value, 1e-12)))
        logits = torch.zeros(*targets.shape, V, dtype=torch.float64)
        logits.scatter_(-1, targets.long().unsqueeze(-1), z)
        return logits
