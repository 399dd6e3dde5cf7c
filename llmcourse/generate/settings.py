"""The generation settings, declared once: the frozen :class:`Settings`, checked when made.

:class:`Settings` is the sampling settings (:class:`~llmcourse.generate.sampling.Sampling`) plus
what the loop needs: where to stop, the cache, the window rule past ``block_size`` and the
compiled step. ``generate``, ``stream`` and ``beam_search`` take their options as keywords and
build a ``Settings`` from them (:meth:`Settings.make`), or take a ``Settings`` you made once;
:meth:`Settings.checked_for` then checks it against the model (its vocabulary and
``block_size``). :func:`prepare_prompt` turns a prompt (tensor or lists of ids) into a checked
``(B, T)`` tensor, and :func:`end_of_text_id` finds a tokenizer's id to stop at.

Example:
    >>> from types import SimpleNamespace
    >>> model = torch.nn.Linear(1, 1)
    >>> model.config = SimpleNamespace(vocab_size=4, block_size=8)
    >>> Settings(top_k=2).checked_for(model).keep_on_rebuild
    8
    >>> Settings(eos_id=4).checked_for(model)
    Traceback (most recent call last):
    ...
    ValueError: eos_id must be a token id in [0, 3] or None, got 4
    >>> Settings.make(topk=2)
    Traceback (most recent call last):
    ...
    TypeError: unknown generation setting 'topk'; the settings are temperature, top_k, top_p, min_p, repetition_penalty, eos_id, use_cache, keep_on_rebuild, compile
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from llmcourse.fields import check_field

from .sampling import Sampling


@dataclass(frozen=True)
class Settings(Sampling):
    """The sampling settings (inherited from ``Sampling``) and the loop's, checked once.

    Attributes:
        temperature, top_k, top_p, min_p, repetition_penalty: see
            ``sample_next`` (applied in that order).
        eos_id: the id that ends a row (kept, then repeated as padding), or None.
        use_cache: run the model with its KV cache when it has one.
        keep_on_rebuild: tokens kept when the context would pass ``block_size`` (None:
            ``block_size``, a window sliding by one token, exactly nanoGPT's crop; a smaller
            value restarts the window from its last ``keep_on_rebuild`` tokens, faster but an
            approximation of the sliding window). The same rule with and without a cache.
        compile: run the cached one-token steps through ``torch.compile``
            (:mod:`llmcourse.generate.compiled`); needs ``use_cache``.

    >>> Settings(temperature=0.8, top_k=40).top_k
    40
    """

    eos_id: int | None = None
    use_cache: bool = True
    keep_on_rebuild: int | None = None
    compile: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "eos_id", check_field(
            "eos_id", self.eos_id, int, low=0, optional=True, rule="a token id >= 0"))
        object.__setattr__(self, "use_cache", bool(self.use_cache))
        object.__setattr__(self, "keep_on_rebuild", check_field(
            "keep_on_rebuild", self.keep_on_rebuild, int, low=1, optional=True,
            what="tokens kept when the context passes block_size; None = a sliding window"))
        object.__setattr__(self, "compile", check_field(
            "compile", self.compile, bool, what="compile the decoding step"))
        if self.compile and not self.use_cache:
            raise ValueError("compile=True compiles the KV-cached decoding step; it needs "
                             "use_cache=True (or drop compile=True to recompute every step)")

    @classmethod
    def make(cls, settings: "Settings | None" = None, **options: Any) -> "Settings":
        """``settings`` (default: the defaults) with ``options`` replacing its fields.

        An unknown option is a ``TypeError`` that lists the valid names.
        """
        if settings is not None and not isinstance(settings, Settings):
            raise TypeError(f"settings must be a Settings, got {settings!r}; give the sampling "
                            "options by keyword, e.g. generate(model, idx, 100, temperature=0.8)")
        names = [f.name for f in dataclasses.fields(cls)]
        for name in options:
            if name not in names:
                raise TypeError(f"unknown generation setting {name!r}; the settings are "
                                + ", ".join(names))
        if settings is None:
            return cls(**options)
        return dataclasses.replace(settings, **options) if options else settings

    def checked_for(self, model: nn.Module) -> "Settings":
        """Check ``eos_id`` and ``keep_on_rebuild`` against ``model.config``; fill in the window.

        Returns these settings with ``keep_on_rebuild`` set to the model's ``block_size`` when
        it was None (and the model has one).
        """
        vocab, block = model_limits(model)
        if vocab is not None:
            check_field("eos_id", self.eos_id, int, low=0, high=vocab - 1, optional=True,
                        rule=f"a token id in [0, {vocab - 1}]")
        if block is None:
            return self
        keep = check_field("keep_on_rebuild", block if self.keep_on_rebuild is None
                           else self.keep_on_rebuild, int, low=1, high=block,
                           what="tokens kept when the context passes block_size; block_size = "
                           "a sliding window")
        return self if keep == self.keep_on_rebuild else dataclasses.replace(self, keep_on_rebuild=keep)


def end_of_text_id(tokenizer: Any) -> int:
    """The tokenizer's end-of-text id, to pass as ``eos_id``; a ``ValueError`` when it has none.

    >>> from llmcourse.tokenizers import CharTokenizer
    >>> end_of_text_id(CharTokenizer.from_text("ab"))
    Traceback (most recent call last):
    ...
    ValueError: the tokenizer 'char' has no end-of-text token, so there is no id to stop at; stop at a string instead, or use a tokenizer that has <|endoftext|> (e.g. gpt2)
    """
    eot = getattr(tokenizer, "eot_token", None)
    if eot is None:
        name = getattr(tokenizer, "name", None) or type(tokenizer).__name__
        raise ValueError(f"the tokenizer {name!r} has no end-of-text token, so there is no id to "
                         "stop at; stop at a string instead, or use a tokenizer that has "
                         "<|endoftext|> (e.g. gpt2)")
    return int(eot)


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
    if generator is not None and generator.device.type != device.type:
        raise ValueError(f"the generator is on {generator.device} but the model is on {device}; "
                         f"pass seed=... instead, or torch.Generator(device={str(device)!r})")
    if seed is None:
        return generator
    return torch.Generator(device=device).manual_seed(check_field("seed", seed, int))
