"""PyTorch's "meta" device standing in for a GPU, for the checks of days 08 and 09.

A mask built with ``torch.ones(T, T)`` lives on the CPU. On the CPU that is right; on a GPU it
meets the scores of another device and the function fails. The checks cannot count on a GPU, so
they run the learner's function once more on tensors of the "meta" device (shapes, no values):
a CPU tensor cannot meet those either. Two differences from a GPU are made up for: a 0-d CPU tensor
(``torch.tensor(float("-inf"))`` as masked_fill's value) may meet GPU tensors, so it may meet
"meta" ones here; and an operation that needs values (``.item()``) or that "meta" lacks proves
nothing, so it is not judged.

Example::

    >>> def cpu_mask(s):
    ...     return s.masked_fill(torch.tril(torch.ones(4, 4)) == 0, float("-inf"))
    >>> run_on_meta(cpu_mask, (torch.zeros(4, 4, device="meta"),), "cpu_mask(scores on meta)",
    ...             "build the mask on scores.device")
    Traceback (most recent call last):
    ...
    llmcourse.checks._core.CheckFailed: build the mask on scores.device (on cpu_mask(scores on meta))
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch.overrides import TorchFunctionMode

from llmcourse.checks._core import CheckFailed

__all__ = ["UNJUDGED", "run_on_meta"]

UNJUDGED = object()
"""What :func:`run_on_meta` returns when the "meta" device cannot judge the function."""


def _on_meta(value: Any) -> bool:
    """Whether ``value`` (looking into tuples, lists and dicts) holds a tensor on "meta"."""
    if isinstance(value, torch.Tensor):
        return value.device.type == "meta"
    if isinstance(value, (tuple, list)):
        return any(_on_meta(v) for v in value)
    if isinstance(value, dict):
        return any(_on_meta(v) for v in value.values())
    return False


def _scalar_to_meta(value: Any) -> Any:
    """``value`` with its 0-d CPU tensors moved to "meta" (in tuples, lists and dicts too)."""
    if isinstance(value, torch.Tensor):
        return value.to("meta") if value.device.type == "cpu" and value.dim() == 0 else value
    if isinstance(value, (tuple, list)):
        moved = [_scalar_to_meta(v) for v in value]
        if all(a is b for a, b in zip(moved, value)):
            return value
        return moved if isinstance(value, list) else tuple(moved)
    if isinstance(value, dict):
        return {k: _scalar_to_meta(v) for k, v in value.items()}
    return value


class _CpuScalarsFollow(TorchFunctionMode):
    """Let a 0-d CPU tensor meet "meta" tensors, as CUDA lets it meet GPU tensors: some "meta"
    operations (masked_fill's value) refuse it where a GPU takes it, e.g. torch.tensor(-inf)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if _on_meta((args, kwargs)):
            args, kwargs = _scalar_to_meta(args), _scalar_to_meta(kwargs)
        return func(*args, **kwargs)


def run_on_meta(fn: Callable[..., Any], args: tuple[Any, ...], label: str, cpu_hint: str) -> Any:
    """``fn(*args)`` with ``args`` on "meta": its result, or :data:`UNJUDGED`.

    A device clash fails with ``cpu_hint``; any other error with the learner's error, in one line
    that names ``label``.
    """
    try:
        with _CpuScalarsFollow():
            return fn(*args)
    except NotImplementedError:  # an operation PyTorch cannot run on "meta": nothing to judge
        return UNJUDGED
    except Exception as exc:  # noqa: BLE001 - the learner's code failed off the CPU
        message = " ".join(str(exc).split())
        if isinstance(exc, RuntimeError) and "device" in message:
            raise CheckFailed(f"{cpu_hint} (on {label})") from exc
        if "meta" in message:  # .item(), .numpy(), ... have no values on "meta", as they would on a GPU
            return UNJUDGED
        raise CheckFailed(f"your code raised {type(exc).__name__}: {message} on {label}") from exc
