"""The decoding loop: run the model, sample, append, repeat; with a KV cache when the model has one.

A model's positions end at ``block_size``, so once the text is longer the model sees a
*window* of the last tokens. One rule decides that window, with and without a cache:

- the window starts at the last ``block_size`` tokens of the prompt;
- when a new token would make it longer than ``block_size``, it restarts from the last
  ``window`` tokens (``keep_on_rebuild``, by default ``block_size``).

With the default the window slides by one token per step: exactly nanoGPT's
``idx[:, -block_size:]``. Without a cache every step runs the whole window; with one, the
prompt is run once (prefill), each step runs only the newest token, and a restart refills the
cache from the window. A smaller ``window`` makes restarts rare (one forward over ``window``
tokens every ``block_size - window + 1`` tokens instead of a full forward per token past
``block_size``) at the price of a shorter context just after each restart: an *approximation*
of the sliding window, whose tokens past ``block_size`` differ from nanoGPT's crop. The cache
and the recompute path still agree with each other there, because they follow the same rule.

Example:
    >>> from llmcourse.model import GPT, GPTConfig
    >>> model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8)).eval()
    >>> prompt = torch.tensor([[1, 2, 3]])
    >>> with_cache = Decoder(model, prompt, 20, use_cache=True, block_size=8, window=4)
    >>> without = Decoder(model, prompt, 20, use_cache=False, block_size=8, window=4)
    >>> for _ in range(20):   # 23 tokens: past block_size twice
    ...     a, b = with_cache.next_logits(), without.next_logits()
    ...     assert torch.allclose(a, b, atol=1e-5)
    ...     with_cache.append(a.argmax(-1)); without.append(a.argmax(-1))
    >>> with_cache.start, with_cache.length
    (15, 23)
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

from .settings import Settings, model_limits


class Decoder:
    """A growing batch of sequences and the model's view of it (window, KV cache).

    :meth:`next_logits` returns the ``(B, V)`` logits of the token after the current last one,
    running only what the model has not seen yet; :meth:`append` writes the chosen tokens;
    :meth:`reorder` keeps, copies or permutes rows (beam search). With ``compile=True`` the
    cached steps go through :class:`~llmcourse.generate.compiled.CompiledStep`, which runs the
    one-token ones compiled (that module is imported only then: the eager path never needs it).

    Attributes:
        tokens: ``(B, T + max_new_tokens)`` buffer; ``tokens[:, :length]`` are written.
        start: the first token of the model's window.
    """

    def __init__(self, model: nn.Module, prompt: Tensor, max_new_tokens: int, *,
                 use_cache: bool, block_size: int | None, window: int | None,
                 compile: bool = False) -> None:
        self.model, self.block_size, self.window = model, block_size, window
        batch, self.length = prompt.shape
        self.tokens = prompt.new_empty(batch, self.length + max_new_tokens)  # (B, T + n)
        self.tokens[:, :self.length] = prompt
        self.start = 0 if block_size is None else max(0, self.length - block_size)
        # GPT can skip the output layer for all but the last position: only that one is used.
        self.extra = {"only_last": True} if _accepts_keyword(model, "only_last") else {}
        self.cache: Any = None
        if use_cache and hasattr(model, "new_kv_cache"):
            need = self.length - self.start + max_new_tokens
            self.cache = model.new_kv_cache(batch, max_len=min(need, block_size or need),
                                            device=prompt.device)
        self.cache_start = self.start  # the token at the cache's position 0
        self.step = None  # the compiled forward, with compile=True and a cache
        if compile and self.cache is not None:
            from .compiled import CompiledStep  # here: torch.compile's machinery only when asked
            self.step = CompiledStep(model)

    def append(self, next_ids: Tensor) -> None:
        """Write ``next_ids`` ``(B,)`` after the last tokens; move the window if it is full."""
        self.tokens[:, self.length] = next_ids
        self.length += 1
        if self.block_size is not None and self.length - self.start > self.block_size:
            self.start = self.length - self.window  # the one rebuild rule, cache or not

    def next_logits(self) -> Tensor:
        """Run the model on what it has not seen of the window; ``(B, V)`` logits."""
        if self.cache is None:  # recompute: the whole window
            return _last_logits(self.model(self.tokens[:, self.start:self.length], **self.extra))
        if self.start != self.cache_start:  # the window moved on: refill the cache from it
            self.cache.reset()
            self.cache_start = self.start
        new = self.tokens[:, self.cache_start + self.cache.pos:self.length]  # usually 1 token
        forward = self.model if self.step is None else self.step
        return _last_logits(forward(new, kv_cache=self.cache, **self.extra))

    def reorder(self, index: Tensor) -> None:
        """Row ``i`` becomes old row ``index[i]``, in the tokens and in the cache."""
        self.tokens = self.tokens.index_select(0, index)
        if self.cache is not None:
            self.cache.reorder(index)
            if self.step is not None:
                self.step.new_batch()


def decode_steps(model: nn.Module, prompt: Tensor, max_new_tokens: int, settings: Settings,
                 generator: torch.Generator | None) -> Iterator[Tensor]:
    """Yield the next ids ``(B,)`` one step at a time; rows that reached ``eos_id`` repeat it.

    ``settings`` were checked against ``model`` (:meth:`Settings.checked_for`).

    Model calls run under ``torch.no_grad()``, entered and left around each call rather than
    around a ``yield``, so the caller's grad mode is never changed between steps.
    """
    if max_new_tokens == 0:
        return
    eos_id = settings.eos_id
    decoder = Decoder(model, prompt, max_new_tokens, use_cache=settings.use_cache,
                      block_size=model_limits(model)[1], window=settings.keep_on_rebuild,
                      compile=settings.compile)
    finished = torch.zeros(prompt.shape[0], dtype=torch.bool, device=prompt.device)
    for _ in range(max_new_tokens):
        with torch.no_grad():
            context = decoder.tokens[:, :decoder.length]  # (B, t): for the repetition penalty
            next_ids = settings(decoder.next_logits(), generator, context)[:, 0]  # (B,): sample
            if eos_id is not None:
                next_ids = next_ids.masked_fill(finished, eos_id)
                finished |= next_ids == eos_id
            decoder.append(next_ids)
        yield next_ids
        if eos_id is not None and bool(finished.all()):
            return


class EvalMode:
    """Puts a model in eval mode and gives every submodule its previous mode back."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.modes = [(m, m.training) for m in model.modules()]

    def __enter__(self) -> None:
        self.model.eval()

    def __exit__(self, *exc: object) -> None:
        for module, training in self.modes:
            module.training = training


def _accepts_keyword(model: nn.Module, name: str) -> bool:
    try:
        return name in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return False


def _last_logits(output: Any) -> Tensor:
    """The ``(B, V)`` logits of the last position from a model's ``(logits, loss)``."""
    logits = output[0] if isinstance(output, (tuple, list)) else output
    if not isinstance(logits, Tensor) or logits.dim() != 3:
        raise ValueError("the model must return (logits, loss) with logits of shape (B, T, "
                         f"vocab_size); got {type(logits).__name__} "
                         f"{tuple(getattr(logits, 'shape', ()))}")
    return logits[:, -1, :]

