"""The generation settings, checked once at the public entry (``generate``, ``stream``, ``beam_search``).

:class:`Settings` is frozen: after :meth:`Settings.for_model` has checked every argument
against the model (its vocabulary and ``block_size``), the decoding loop trusts it.
:func:`prepare_prompt` turns a prompt (tensor or lists of ids) into a checked ``(B, T)`` tensor.

Example:
    >>> from types import SimpleNamespace
    >>> model = torch.nn.Linear(1, 1)
    >>> model.config = SimpleNamespace(vocab_size=4, block_size=8)
    >>> Settings.for_model(model, 5, top_k=2).window
    8
    >>> Settings.for_model(model, 5, eos_id=4)
    Traceback (most recent call last):
    ...
    ValueError: eos_id must be a token id in [0, 3] or None, got 4
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from llmcourse.fields import check_field

from .sampling import Sampling


@dataclass(frozen=True)
class Settings:
    """Everything the decoding loop needs to know, already checked.

    Attributes:
        max_new_tokens: tokens to add, ``>= 0``.
        sampling: the :class:`~llmcourse.generate.sampling.Sampling` transforms.
        eos_id: the id that ends a row, or None.
        use_cache: run the model with its KV cache when it has one.
        block_size: the model's longest context, or None (no limit).
        window: the context kept when it would pass ``block_size`` (``keep_on_rebuild``);
            the same rule with and without a cache. None without a ``block_size``.
        compile: run the cached one-token steps through the compiled forward
            (:mod:`llmcourse.generate.compiled`).
    """

    max_new_tokens: int
    sampling: Sampling
    eos_id: int | None
    use_cache: bool
    block_size: int | None
    window: int | None
    compile: bool = False

    @classmethod
    def for_model(
        cls,
        model: nn.Module,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        eos_id: int | None = None,
        use_cache: bool = True,
        keep_on_rebuild: int | None = None,
        *,
        min_p: float | None = None,
        repetition_penalty: float = 1.0,
        compile: bool = False,
    ) -> "Settings":
        """Check the arguments of a public entry against ``model.config``; see :func:`generate`."""
        vocab, block = model_limits(model)
        max_new_tokens = check_field("max_new_tokens", max_new_tokens, int, low=0,
                                     what="tokens to generate")
        eos_rule = f"a token id in [0, {vocab - 1}]" if vocab is not None else "a token id >= 0"
        eos_id = check_field("eos_id", eos_id, int, low=0, high=None if vocab is None else vocab - 1,
                             optional=True, rule=eos_rule)
        window = None
        if block is not None:
            window = check_field("keep_on_rebuild", block if keep_on_rebuild is None else keep_on_rebuild,
                                 int, low=1, high=block, what="tokens kept when the context passes "
                                 "block_size; block_size = a sliding window")
        sampling = Sampling(temperature, top_k, top_p, min_p, repetition_penalty)
        compile = check_field("compile", compile, bool, what="compile the decoding step")
        if compile and not use_cache:
            raise ValueError("compile=True compiles the KV-cached decoding step; it needs "
                             "use_cache=True (or drop compile=True to recompute every step)")
        return cls(max_new_tokens, sampling, eos_id, bool(use_cache), block, window, compile)


def model_limits(model: nn.Module) -> tuple[int | None, int | None]:
    """``(vocab_size, block_size)`` from ``model.config``; None where the model does not say."""
    config = getattr(model, "config", None)
    vocab, block = getattr(config, "vocab_size", None), getattr(config, "block_size", None)
    return (None if vocab is None else int(vocab)), (None if block is None else int(block))


def model_device(model: nn.Module, idx: object) -> torch.device:
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return idx.device if isinstance(idx, Tensor) else torch.device("cpu")


def prepare_prompt(idx: Tensor | Sequence[int], model: nn.Module) -> Tensor:
    """Check a prompt and return it as a ``(B, T)`` int64 tensor on the model's device."""
    vocab_size, _ = model_limits(model)
    device = model_device(model, idx)
    if not isinstance(idx, Tensor):
        if not isinstance(idx, (list, tuple)):
            raise ValueError("idx must be a torch.Tensor of token ids with shape (B, T) or (T,), "
                             f"or a list of ints (or of lists of ints); got {type(idx).__name__}")
        try:
            idx = torch.tensor(idx) if len(idx) else torch.zeros(0, dtype=torch.long)
        except (TypeError, ValueError, RuntimeError) as err:
            raise ValueError(f"idx as a list must hold ints, or equal-length lists of ints: {err}") from None
    if idx.numel() == 0:
        raise ValueError(f"the prompt is empty (idx shape {tuple(idx.shape)}); give at least one token "
                         "per row, e.g. the end-of-text id or a newline, to start from nothing")
    if idx.is_floating_point() or idx.is_complex() or idx.dtype == torch.bool:
        raise ValueError(f"idx must hold integer token ids (e.g. dtype torch.long), got dtype "
                         f"{idx.dtype}; convert with idx.long() if the values are ids")
    if idx.dim() not in (1, 2):
        raise ValueError(f"idx must have shape (B, T) or (T,), got {idx.dim()} dimensions "
                         f"{tuple(idx.shape)}")
    idx = idx.reshape(1, -1) if idx.dim() == 1 else idx
    idx = idx.to(device=device, dtype=torch.long)
    low, high = int(idx.min()), int(idx.max())
    if low < 0 or (vocab_size is not None and high >= vocab_size):
        valid = f"[0, {vocab_size - 1}]" if vocab_size is not None else ">= 0"
        raise ValueError(f"the prompt holds token ids outside the model's vocabulary {valid}: min "
                         f"{low}, max {high}; encode it with the tokenizer the model was trained with")
    return idx


def make_generator(generator: torch.Generator | None, seed: int | None,
                   device: torch.device) -> torch.Generator | None:
    """The random generator of a call: ``generator``, a new one seeded with ``seed``, or None."""
    if generator is not None and seed is not None:
        raise ValueError("give either generator or seed, not both")
    if seed is None:
        return generator
    return torch.Generator(device=device).manual_seed(check_field("seed", seed, int))
