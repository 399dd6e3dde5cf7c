"""Text generation: sampling primitives, the decoding loop with a KV cache, streaming, beam search.

A language model gives, for every position, a vector of *logits* over the vocabulary. To write
text we repeatedly turn the logits of the last position into one next token, append it, and run
the model again. This module holds every piece of that loop:

- sampling primitives usable on their own: :func:`apply_temperature`, :func:`top_k_filter`,
  :func:`top_p_filter` and :func:`sample_next`;
- :func:`generate`: autoregressive decoding of a batch, several samples per prompt, stopping at
  an end-of-text id, reproducible with a seed, using the model's KV cache when it has one;
- :func:`stream`: the same loop as an iterator that yields each new token (or text piece);
- :func:`beam_search`: deterministic search for a high-probability continuation, with GNMT
  length normalisation.

Any model that follows the package's model contract works: ``model(idx) -> (logits, loss)`` with
``logits`` of shape ``(B, T, vocab_size)`` and a ``config`` with ``vocab_size`` and
``block_size``. Models with ``new_kv_cache`` (the GPT) are decoded incrementally; the others by
recomputing the last ``block_size`` tokens at every step.

Order of the sampling transforms (the same as common libraries): **temperature, then top-k, then
top-p**, then a draw from the softmax. Temperature 0 means greedy decoding (argmax).

Example:
    >>> import torch
    >>> logits = torch.tensor([[2.0, 1.0, 0.5, -1.0]])
    >>> sample_next(logits, temperature=0.0)
    tensor([[0]])
    >>> top_k_filter(logits, 2)
    tensor([[2., 1., -inf, -inf]])
    >>> g = torch.Generator().manual_seed(0)
    >>> sample_next(logits, top_k=1, generator=g)
    tensor([[0]])
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

__all__ = [
    "apply_temperature",
    "top_k_filter",
    "top_p_filter",
    "sample_next",
    "generate",
    "stream",
    "beam_search",
    "BeamHypothesis",
    "gnmt_length_penalty",
]

# Cumulative probabilities are compared with this slack so that a set whose mass equals p up to
# float rounding counts as "reaching p" (e.g. 0.5 + 0.2 computed as 0.6999999 for p = 0.7).
_TOP_P_TOL = 1e-6

# stream(..., decode=...): how many token ids may wait for an incomplete UTF-8 character before
# the text is emitted anyway. A UTF-8 character has at most 4 bytes, so 4 byte-level tokens
# always complete it; past that, the replacement character is genuinely in the text.
_MAX_PENDING_TOKENS = 8

Sampler = Callable[[Tensor], Tensor]


# --------------------------------------------------------------------------------------------
# Sampling primitives
# --------------------------------------------------------------------------------------------


def _check_logits(logits: Tensor, fn: str) -> None:
    if not isinstance(logits, Tensor):
        raise TypeError(f"{fn}: logits must be a torch.Tensor, got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise ValueError(
            f"{fn}: logits must be a floating-point tensor, got dtype {logits.dtype}; "
            "pass the model's raw output (e.g. logits[:, -1, :])"
        )
    if logits.dim() < 1 or logits.shape[-1] == 0:
        raise ValueError(
            f"{fn}: logits must have a non-empty last (vocabulary) dimension, got shape "
            f"{tuple(logits.shape)}"
        )


def _check_temperature(temperature: float) -> None:
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real):
        raise ValueError(f"temperature must be a number >= 0, got {temperature!r}")
    if not math.isfinite(temperature) or temperature < 0:
        raise ValueError(
            f"temperature must be a finite number >= 0 (0 = greedy, 1 = the model's own "
            f"distribution), got {temperature}"
        )


def _check_top_k(top_k: int | None) -> None:
    if top_k is None:
        return
    if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral):
        raise ValueError(f"top_k must be an int >= 1 or None (no top-k), got {top_k!r}")
    if top_k < 1:
        raise ValueError(
            f"top_k must be >= 1 (the number of most likely tokens to keep) or None to "
            f"disable it, got {top_k}"
        )


def _check_top_p(top_p: float | None) -> None:
    if top_p is None:
        return
    if isinstance(top_p, bool) or not isinstance(top_p, numbers.Real):
        raise ValueError(f"top_p must be a number in (0, 1] or None (no top-p), got {top_p!r}")
    if not (0.0 < top_p <= 1.0):
        raise ValueError(
            f"top_p must be in the interval (0, 1] (1 keeps every token), or None to disable "
            f"it, got {top_p}"
        )


def apply_temperature(logits: Tensor, temperature: float) -> Tensor:
    """Scale logits by ``1 / temperature``.

    ``softmax(logits / t)`` is sharper than the model's distribution for ``t < 1`` and flatter for
    ``t > 1``; as ``t -> inf`` it tends to the uniform distribution. ``t == 0`` is the limit
    ``t -> 0``: all the mass on the most likely token, so this returns logits where every entry
    except the argmax (the first one, on ties) is ``-inf``. ``t == 1`` returns ``logits`` itself.

    Args:
        logits: ``(..., V)`` floating-point logits.
        temperature: a finite number ``>= 0``.

    Returns:
        A tensor of the same shape (a new one unless ``temperature == 1``).

    Example:
        >>> apply_temperature(torch.tensor([2.0, 1.0]), 2.0)
        tensor([1.0000, 0.5000])
        >>> apply_temperature(torch.tensor([1.0, 3.0, 3.0]), 0)
        tensor([-inf, 3., -inf])
    """
    _check_logits(logits, "apply_temperature")
    _check_temperature(temperature)
    if temperature == 1:
        return logits
    if temperature == 0:
        keep = logits.argmax(dim=-1, keepdim=True)  # (..., 1), first maximum on ties
        out = torch.full_like(logits, float("-inf"))
        return out.scatter(-1, keep, logits.gather(-1, keep))
    return logits / temperature


def top_k_filter(logits: Tensor, k: int) -> Tensor:
    """Keep the ``k`` largest logits of each row and set the others to ``-inf``.

    Exactly ``min(k, V)`` entries are kept. Ties at the boundary are broken deterministically in
    favour of the lower token id. ``k >= V`` returns the logits unchanged (no copy).

    Args:
        logits: ``(..., V)`` floating-point logits.
        k: the number of tokens to keep, ``>= 1``.

    Example:
        >>> top_k_filter(torch.tensor([[0.1, 3.0, 0.1, 2.0]]), 3)   # tie: id 0 kept, id 2 not
        tensor([[0.1000, 3.0000,   -inf, 2.0000]])
        >>> top_k_filter(torch.tensor([[0.1, 3.0, 0.1, 2.0]]), 2)
        tensor([[-inf, 3., -inf, 2.]])
    """
    _check_logits(logits, "top_k_filter")
    _check_top_k(k)
    vocab = logits.shape[-1]
    if k >= vocab:
        return logits
    # A stable descending sort lists equal logits by increasing token id, so slicing the first k
    # keeps the lower ids on ties (torch.topk does not promise an order among equal values).
    order = torch.sort(logits, dim=-1, descending=True, stable=True).indices  # (..., V)
    keep = order[..., : int(k)]  # (..., k)
    out = torch.full_like(logits, float("-inf"))
    return out.scatter(-1, keep, logits.gather(-1, keep))


def top_p_filter(logits: Tensor, p: float) -> Tensor:
    """Nucleus filtering: keep the smallest set of most likely tokens whose probability reaches p.

    Tokens are ranked by probability (ties: lower token id first); the kept set is the shortest
    prefix of that ranking whose cumulative probability is ``>= p`` (compared with a slack of
    ``1e-6`` for float rounding). At least one token is always kept. Entries already at ``-inf``
    (e.g. removed by top-k) have probability 0 and stay removed. ``p == 1`` returns the logits
    unchanged (no copy). The probabilities are computed in float32 or wider.

    Args:
        logits: ``(..., V)`` floating-point logits.
        p: the probability mass to keep, in ``(0, 1]``.

    Example:
        >>> probs = torch.tensor([[0.1, 0.5, 0.2, 0.2]])
        >>> top_p_filter(probs.log(), 0.7).exp()   # 0.5 + 0.2 (the lower id of the tie)
        tensor([[0.0000, 0.5000, 0.2000, 0.0000]])
        >>> top_p_filter(probs.log(), 0.3).exp()   # the top token alone already has 0.5
        tensor([[0.0000, 0.5000, 0.0000, 0.0000]])
    """
    _check_logits(logits, "top_p_filter")
    _check_top_p(p)
    if p >= 1.0:
        return logits
    work = logits if logits.dtype in (torch.float32, torch.float64) else logits.float()
    sorted_logits, order = torch.sort(work, dim=-1, descending=True, stable=True)  # (..., V)
    sorted_probs = torch.softmax(sorted_logits, dim=-1)
    # Mass strictly before each token: a token is kept while the tokens ranked above it have
    # not yet reached p. The first token has 0 before it, so it is always kept.
    mass_before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs  # (..., V)
    keep_sorted = mass_before < (p - _TOP_P_TOL)
    keep_sorted[..., 0] = True
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)  # back to vocab order
    return logits.masked_fill(~keep, float("-inf"))


def sample_next(
    logits: Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Pick the next token id of each row from its logits.

    Applies temperature, then top-k, then top-p, then draws one token from the softmax.
    ``temperature == 0`` is greedy decoding: the argmax (the lowest id on ties), which top-k and
    top-p cannot change, and no random number is used.

    Args:
        logits: ``(B, V)`` logits of the last position; ``(B, T, V)`` model output is accepted
            and its last position used; ``(V,)`` is treated as one row.
        temperature: ``>= 0``; 1 samples from the model's own distribution.
        top_k: keep only the ``top_k`` most likely tokens (``>= 1``), or None.
        top_p: keep the smallest set of tokens with cumulative probability ``>= top_p``
            (``(0, 1]``), or None.
        generator: a ``torch.Generator`` on the logits' device, for reproducible draws.

    Returns:
        ``(B, 1)`` int64 token ids.

    Example:
        >>> sample_next(torch.tensor([[0.0, 5.0, 1.0]]), temperature=0)
        tensor([[1]])
    """
    _check_logits(logits, "sample_next")
    _check_temperature(temperature)
    _check_top_k(top_k)
    _check_top_p(top_p)
    if logits.dim() == 1:
        logits = logits.unsqueeze(0)  # (1, V)
    elif logits.dim() == 3:
        logits = logits[:, -1, :]  # (B, V)
    elif logits.dim() != 2:
        raise ValueError(
            f"sample_next: logits must have shape (B, V), (B, T, V) or (V,), got "
            f"{tuple(logits.shape)}"
        )
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)  # (B, 1)
    if logits.dtype not in (torch.float32, torch.float64):
        logits = logits.float()  # softmax and multinomial in at least fp32
    logits = apply_temperature(logits, temperature)
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    probs = torch.softmax(logits, dim=-1)  # (B, V)
    return torch.multinomial(probs, num_samples=1, generator=generator)  # (B, 1)


# --------------------------------------------------------------------------------------------
# Shared helpers for the decoding loops
# --------------------------------------------------------------------------------------------


def _model_limits(model: nn.Module) -> tuple[int | None, int | None]:
    """(vocab_size, block_size) from ``model.config``; None where the model does not say."""
    config = getattr(model, "config", None)
    vocab = getattr(config, "vocab_size", None)
    block = getattr(config, "block_size", None)
    return (int(vocab) if vocab is not None else None, int(block) if block is not None else None)


def _model_device(model: nn.Module, fallback: torch.device) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return fallback


def _check_count(name: str, value: Any, minimum: int, meaning: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an int >= {minimum} ({meaning}), got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum} ({meaning}), got {value}")
    return int(value)


def _prepare_prompt(
    idx: Tensor | Sequence[int], vocab_size: int | None, device: torch.device
) -> Tensor:
    """Validate a prompt and return it as a ``(B, T)`` int64 tensor on ``device``."""
    if not isinstance(idx, Tensor):
        if not isinstance(idx, (list, tuple)):
            raise ValueError(
                "idx must be a torch.Tensor of token ids with shape (B, T) or (T,), or a list "
                f"of ints (or of lists of ints); got {type(idx).__name__}"
            )
        try:
            idx = torch.tensor(idx) if len(idx) else torch.zeros(0, dtype=torch.long)
        except (TypeError, ValueError, RuntimeError) as err:
            raise ValueError(
                f"idx as a list must hold ints, or equal-length lists of ints: {err}"
            ) from None
    if idx.numel() == 0:
        raise ValueError(
            f"the prompt is empty (idx shape {tuple(idx.shape)}); give at least one token per "
            "row, e.g. the end-of-text id or a newline, to start from nothing"
        )
    if idx.is_floating_point() or idx.is_complex() or idx.dtype == torch.bool:
        raise ValueError(
            f"idx must hold integer token ids (e.g. dtype torch.long), got dtype {idx.dtype}; "
            "convert with idx.long() if the values are ids"
        )
    if idx.dim() == 1:
        idx = idx.unsqueeze(0)  # (1, T): a single prompt
    if idx.dim() != 2:
        raise ValueError(
            f"idx must have shape (B, T) or (T,), got {idx.dim()} dimensions "
            f"{tuple(idx.shape)}"
        )
    idx = idx.to(device=device, dtype=torch.long)
    low, high = int(idx.min()), int(idx.max())
    if low < 0 or (vocab_size is not None and high >= vocab_size):
        valid = f"[0, {vocab_size - 1}]" if vocab_size is not None else ">= 0"
        raise ValueError(
            f"the prompt holds token ids outside the model's vocabulary {valid}: min {low}, "
            f"max {high}; encode it with the tokenizer the model was trained with"
        )
    return idx


def _make_generator(
    generator: torch.Generator | None, seed: int | None, device: torch.device
) -> torch.Generator | None:
    if generator is not None and seed is not None:
        raise ValueError("give either generator or seed, not both")
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise ValueError(f"seed must be an int, got {seed!r}")
        return torch.Generator(device=device).manual_seed(int(seed))
    return generator


def _resolve_keep(keep_on_rebuild: int | None, block_size: int | None) -> int | None:
    if block_size is None:
        return None
    if keep_on_rebuild is None:
        return max(1, block_size // 2)
    if isinstance(keep_on_rebuild, bool) or not isinstance(keep_on_rebuild, numbers.Integral):
        raise ValueError(f"keep_on_rebuild must be an int or None, got {keep_on_rebuild!r}")
    if not 1 <= keep_on_rebuild <= block_size:
        raise ValueError(
            f"keep_on_rebuild must be in [1, block_size={block_size}] (block_size gives the "
            f"same tokens as recomputing without a cache), got {keep_on_rebuild}"
        )
    return int(keep_on_rebuild)


def _accepts_keyword(model: nn.Module, name: str) -> bool:
    try:
        return name in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return False


def _last_logits(output: Any) -> Tensor:
    """The ``(B, V)`` logits of the last position from a model's ``(logits, loss)`` output."""
    logits = output[0] if isinstance(output, (tuple, list)) else output
    if not isinstance(logits, Tensor) or logits.dim() != 3:
        raise ValueError(
            "the model must return (logits, loss) with logits of shape (B, T, vocab_size); got "
            f"{type(logits).__name__} {tuple(getattr(logits, 'shape', ()))}"
        )
    return logits[:, -1, :]


class _Context:
    """Runs the model over a growing batch of sequences, with or without a KV cache.

    Holds the tokens in a preallocated ``(B, T + max_new_tokens)`` buffer. :meth:`prefill` and
    :meth:`next_logits` return the ``(B, V)`` logits for the token after the current last one.

    With a cache, :meth:`prefill` runs the prompt (its last ``block_size`` tokens) once and each
    later step feeds only the newest token (``T == 1``). When the cache already holds
    ``block_size`` positions it cannot take another one; it is then reset and re-prefilled with
    the last ``keep`` tokens. That rebuild is one forward over ``keep`` tokens, once every
    ``block_size - keep + 1`` new tokens; with the default ``keep = block_size // 2`` that is
    about one extra token's worth of work per generated token (amortised, and a forward over
    many tokens at once is cheaper per token than single steps), instead of a full
    ``block_size`` forward per token. ``keep = block_size`` reproduces the recompute path exactly
    (the model always sees the last ``block_size`` tokens) at the recompute path's cost.

    Without a cache, every step recomputes the last ``block_size`` tokens.
    """

    def __init__(
        self,
        model: nn.Module,
        prompt: Tensor,
        max_new_tokens: int,
        *,
        use_cache: bool,
        block_size: int | None,
        keep: int | None,
    ) -> None:
        self.model = model
        self.block_size = block_size
        self.keep = keep
        batch, length = prompt.shape
        self.tokens = torch.empty(
            batch, length + max_new_tokens, dtype=torch.long, device=prompt.device
        )  # (B, T + max_new_tokens)
        self.tokens[:, :length] = prompt
        self.length = length  # tokens written so far
        self.cache_start = 0  # the token held at the cache's position 0
        # Models that can skip the output layer for all but the last position (GPT's
        # `only_last=True`) are asked to: only the last position's logits are ever used.
        self.extra = {"only_last": True} if _accepts_keyword(model, "only_last") else {}
        self.cache: Any = None
        if use_cache and hasattr(model, "new_kv_cache"):
            max_len = min(length, block_size or length) + max_new_tokens
            if block_size is not None:
                max_len = min(max_len, block_size)
            self.cache = model.new_kv_cache(batch, max_len=max_len, device=prompt.device)

    def _start(self, window: int | None) -> int:
        return 0 if window is None else max(0, self.length - window)

    def _run(self, start: int) -> Tensor:
        chunk = self.tokens[:, start : self.length]  # (B, t)
        kwargs: dict[str, Any] = dict(self.extra)
        if self.cache is not None:
            kwargs["kv_cache"] = self.cache
        return _last_logits(self.model(chunk, **kwargs))

    def _refill(self, window: int | None) -> Tensor:
        start = self._start(window)
        if self.cache is not None:
            self.cache.reset()
            self.cache_start = start
        return self._run(start)

    def prefill(self) -> Tensor:
        """Run the prompt (its last ``block_size`` tokens); logits ``(B, V)``."""
        return self._refill(self.block_size)

    def append(self, next_ids: Tensor) -> None:
        """Write ``next_ids`` ``(B,)`` after the current last tokens (no model call)."""
        self.tokens[:, self.length] = next_ids
        self.length += 1

    def next_logits(self) -> Tensor:
        """Run what the model has not seen yet; logits ``(B, V)`` for the following token."""
        if self.cache is None:
            return self._run(self._start(self.block_size))
        pos = int(self.cache.pos)
        if self.block_size is not None and self.length - self.cache_start > self.block_size:
            # The cache cannot hold the newest token: restart it from the last `keep` tokens.
            return self._refill(self.keep)
        return self._run(self.cache_start + pos)  # normally just the newest token

    def reorder(self, index: Tensor) -> None:
        """Keep rows ``index`` ``(B,)`` of the tokens and of the cache (beam search)."""
        self.tokens = self.tokens.index_select(0, index)
        if self.cache is not None:
            self.cache.reorder(index)


def _sampler(
    temperature: float, top_k: int | None, top_p: float | None, generator: torch.Generator | None
) -> Sampler:
    def sample(logits: Tensor) -> Tensor:  # (B, V) -> (B,)
        return sample_next(logits, temperature, top_k, top_p, generator)[:, 0]

    return sample


class _EvalMode:
    """Puts a model in eval mode and gives back its previous mode (the model's own flags)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.modes = [(m, m.training) for m in model.modules()]

    def __enter__(self) -> None:
        self.model.eval()

    def __exit__(self, *exc: object) -> None:
        for module, training in self.modes:
            module.training = training


def _check_eos(eos_id: int | None, vocab_size: int | None) -> int | None:
    if eos_id is None:
        return None
    if isinstance(eos_id, bool) or not isinstance(eos_id, numbers.Integral):
        raise ValueError(f"eos_id must be an int token id or None, got {eos_id!r}")
    if eos_id < 0 or (vocab_size is not None and eos_id >= vocab_size):
        valid = f"[0, {vocab_size - 1}]" if vocab_size is not None else ">= 0"
        raise ValueError(f"eos_id must be a token id in {valid}, got {eos_id}")
    return int(eos_id)


def _decode_steps(
    model: nn.Module,
    prompt: Tensor,
    max_new_tokens: int,
    sample: Sampler,
    *,
    eos_id: int | None,
    use_cache: bool,
    block_size: int | None,
    keep: int | None,
) -> Iterator[Tensor]:
    """Yield the next ids ``(B,)`` one step at a time; finished rows get ``eos_id``.

    Every model call runs under ``torch.no_grad()``, entered and left around the call rather than
    around a ``yield``, so that the caller's own grad mode is never changed between steps.
    """
    if max_new_tokens == 0:
        return
    with torch.no_grad():
        ctx = _Context(
            model, prompt, max_new_tokens, use_cache=use_cache, block_size=block_size, keep=keep
        )
        logits = ctx.prefill()  # (B, V)
        finished = torch.zeros(prompt.shape[0], dtype=torch.bool, device=prompt.device)
    for step in range(max_new_tokens):
        with torch.no_grad():
            next_ids = sample(logits)  # (B,)
            if eos_id is not None:
                next_ids = next_ids.masked_fill(finished, eos_id)
                finished |= next_ids == eos_id
            ctx.append(next_ids)
        yield next_ids
        if step == max_new_tokens - 1 or (eos_id is not None and bool(finished.all())):
            return
        with torch.no_grad():
            logits = ctx.next_logits()


def generate(
    model: nn.Module,
    idx: Tensor | Sequence[int],
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    eos_id: int | None = None,
    num_samples: int = 1,
    use_cache: bool = True,
    generator: torch.Generator | None = None,
    seed: int | None = None,
    *,
    keep_on_rebuild: int | None = None,
) -> Tensor:
    """Continue each prompt with up to ``max_new_tokens`` sampled tokens.

    The model is put in eval mode for the call and given back its previous mode afterwards; all
    model calls run under ``torch.no_grad()`` (not ``inference_mode``, so the result can be used
    in later autograd code).

    **Decoding.** A model with ``new_kv_cache`` (and ``use_cache=True``) is run once over the
    prompt (prefill) and then on one new token per step. A model's positions end at
    ``config.block_size``: when the cache is full it is rebuilt from the last
    ``keep_on_rebuild`` tokens (default ``block_size // 2``), one forward over those tokens every
    ``block_size - keep_on_rebuild + 1`` new tokens. Past ``block_size`` the model therefore sees
    between ``keep_on_rebuild`` and ``block_size`` tokens of context, whereas the recompute path
    always sees the last ``block_size``; ``keep_on_rebuild=block_size`` makes the two identical
    (one full forward per token, as slow as recomputing). Other models, or
    ``use_cache=False``, recompute the last ``block_size`` tokens at every step.

    **Samples and stopping.** Each prompt row is repeated ``num_samples`` times: output row
    ``b * num_samples + s`` is sample ``s`` of prompt ``b``. With ``eos_id``, a row stops at its
    first ``eos_id`` (which it keeps) and is padded with ``eos_id`` afterwards; the loop ends
    early once every row has stopped, so the output can be shorter than
    ``T + max_new_tokens``.

    **Randomness.** ``seed`` (an int) or ``generator`` (a ``torch.Generator`` on the model's
    device) make the draws reproducible: the same seed, model and arguments give the same
    tokens. With neither, torch's global generator is used. ``temperature=0`` is greedy and
    deterministic.

    Args:
        model: a language model following the package contract (see the module docstring).
        idx: prompt token ids: an int tensor ``(B, T)``, or ``(T,)`` for one prompt, or the
            same as (nested) lists of ints; moved to the model's device. Non-empty, with ids in
            ``[0, vocab_size)``.
        max_new_tokens: number of tokens to add, ``>= 0``.
        temperature, top_k, top_p: see :func:`sample_next`.
        eos_id: end-of-text id to stop at, or None to always produce ``max_new_tokens``.
        num_samples: samples per prompt, ``>= 1``.
        use_cache: use the model's KV cache when it has one.
        generator, seed: randomness (at most one of them).
        keep_on_rebuild: tokens kept when a full cache is rebuilt, in ``[1, block_size]``.

    Returns:
        ``(B * num_samples, T + n)`` int64 tensor, prompt included, with ``n <= max_new_tokens``
        (``n < max_new_tokens`` only when every row reached ``eos_id``). Always 2-D.

    Example:
        >>> from llmcourse.model import GPT, GPTConfig
        >>> cfg = GPTConfig(vocab_size=65, block_size=16, n_layer=2, n_head=2, n_embd=32)
        >>> model = GPT(cfg)
        >>> out = generate(model, torch.zeros(1, 1, dtype=torch.long), 20, top_k=10, seed=0)
        >>> out.shape
        torch.Size([1, 21])
        >>> torch.equal(out, generate(model, [0], 20, top_k=10, seed=0))
        True
        >>> generate(model, [[0], [1]], 5, num_samples=3).shape
        torch.Size([6, 6])
    """
    vocab_size, block_size = _model_limits(model)
    max_new_tokens = _check_count("max_new_tokens", max_new_tokens, 0, "tokens to generate")
    num_samples = _check_count("num_samples", num_samples, 1, "samples per prompt")
    _check_temperature(temperature)
    _check_top_k(top_k)
    _check_top_p(top_p)
    eos_id = _check_eos(eos_id, vocab_size)
    keep = _resolve_keep(keep_on_rebuild, block_size)
    device = _model_device(model, idx.device if isinstance(idx, Tensor) else torch.device("cpu"))
    prompt = _prepare_prompt(idx, vocab_size, device)
    rng = _make_generator(generator, seed, device)
    if num_samples > 1:
        prompt = prompt.repeat_interleave(num_samples, dim=0)  # (B * num_samples, T)
    sample = _sampler(temperature, top_k, top_p, rng)
    with _EvalMode(model), torch.no_grad():
        steps = list(
            _decode_steps(
                model, prompt, max_new_tokens, sample, eos_id=eos_id,
                use_cache=use_cache, block_size=block_size, keep=keep,
            )
        )
    if not steps:
        return prompt.clone()
    return torch.cat([prompt, torch.stack(steps, dim=1)], dim=1)  # (B * num_samples, T + n)


def stream(
    model: nn.Module,
    idx: Tensor | Sequence[int],
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    eos_id: int | None = None,
    use_cache: bool = True,
    generator: torch.Generator | None = None,
    seed: int | None = None,
    decode: Callable[[list[int]], str] | None = None,
    *,
    keep_on_rebuild: int | None = None,
) -> Iterator[int] | Iterator[str]:
    """Generate token by token, yielding each new token as soon as it is sampled.

    The same loop as :func:`generate` for a single sequence (one prompt row, one sample); the
    arguments mean the same. Arguments are checked when ``stream`` is called, before the first
    ``next()``. The model is in eval mode while the iterator runs and gets its previous mode
    back when the iterator is exhausted or closed (``it.close()``, or leaving a ``for`` loop over
    it then dropping it). The caller's grad mode is not changed between steps.

    The ``eos_id`` token ends the stream and is **not** yielded.

    Without ``decode``, yields ``int`` token ids. With ``decode`` (a function from a list of ids
    to text, e.g. ``tokenizer.decode``), yields ``str`` pieces whose concatenation is the decoded
    text of all new tokens. With byte-level tokenizers one token may hold only part of a
    multi-byte UTF-8 character: ids are held back while their text ends with the replacement
    character U+FFFD, up to 8 ids, then emitted anyway (the text really contains an invalid
    sequence). Pieces are decoded separately, which is exact for tokenizers whose decoding is
    concatenation (character, byte-level BPE, tiktoken).

    Example:
        >>> for piece in stream(model, tok.encode("Once"), 50, decode=tok.decode):  # doctest: +SKIP
        ...     print(piece, end="", flush=True)
    """
    vocab_size, block_size = _model_limits(model)
    max_new_tokens = _check_count("max_new_tokens", max_new_tokens, 0, "tokens to generate")
    _check_temperature(temperature)
    _check_top_k(top_k)
    _check_top_p(top_p)
    eos_id = _check_eos(eos_id, vocab_size)
    if decode is not None and not callable(decode):
        raise ValueError(f"decode must be a function from a list of ids to str, got {decode!r}")
    keep = _resolve_keep(keep_on_rebuild, block_size)
    device = _model_device(model, idx.device if isinstance(idx, Tensor) else torch.device("cpu"))
    prompt = _prepare_prompt(idx, vocab_size, device)
    if prompt.shape[0] != 1:
        raise ValueError(
            f"stream decodes one sequence, got a batch of {prompt.shape[0]} prompts; stream "
            "them one at a time, or use generate() for a batch"
        )
    rng = _make_generator(generator, seed, device)
    sample = _sampler(temperature, top_k, top_p, rng)
    ids = _stream_ids(model, prompt, max_new_tokens, sample, eos_id, use_cache, block_size, keep)
    return ids if decode is None else _stream_text(ids, decode)


def _stream_ids(
    model: nn.Module,
    prompt: Tensor,
    max_new_tokens: int,
    sample: Sampler,
    eos_id: int | None,
    use_cache: bool,
    block_size: int | None,
    keep: int | None,
) -> Iterator[int]:
    mode = _EvalMode(model)
    mode.__enter__()
    try:
        for next_ids in _decode_steps(
            model, prompt, max_new_tokens, sample, eos_id=eos_id,
            use_cache=use_cache, block_size=block_size, keep=keep,
        ):
            token = int(next_ids[0])
            if token == eos_id:
                return
            yield token
    finally:
        mode.__exit__()


def _stream_text(ids: Iterator[int], decode: Callable[[list[int]], str]) -> Iterator[str]:
    pending: list[int] = []
    try:
        for token in ids:
            pending.append(token)
            text = decode(pending)
            if text.endswith("\ufffd") and len(pending) < _MAX_PENDING_TOKENS:
                continue  # maybe the start of a multi-byte character: wait for its other bytes
            pending = []
            if text:
                yield text
        if pending:
            text = decode(pending)
            if text:
                yield text
    finally:
        close = getattr(ids, "close", None)
        if close is not None:
            close()


# --------------------------------------------------------------------------------------------
# Beam search
# --------------------------------------------------------------------------------------------


def gnmt_length_penalty(length: int, alpha: float) -> float:
    """The GNMT length normalisation ``((5 + length) / 6) ** alpha``.

    From Wu et al. 2016, "Google's Neural Machine Translation System" (arXiv:1609.08144),
    section 7: a hypothesis is scored ``log P(Y) / lp(Y)``. ``alpha = 0`` scores by the raw
    log-probability, which favours short outputs since every token adds a negative term; larger
    ``alpha`` favours longer ones (the paper tuned ``alpha`` in ``[0.6, 0.7]``).

    Example:
        >>> gnmt_length_penalty(1, 1.0), gnmt_length_penalty(7, 1.0), gnmt_length_penalty(7, 0.0)
        (1.0, 2.0, 1.0)
    """
    return ((5.0 + length) / 6.0) ** alpha


@dataclass(frozen=True)
class BeamHypothesis:
    """One result of :func:`beam_search`.

    Attributes:
        tokens: ``(T + n,)`` int64 token ids, the prompt included (and ``eos_id`` last when
            ``finished``).
        score: the ranking score ``log_prob / gnmt_length_penalty(n, length_penalty)``.
        log_prob: the sum of the natural-log probabilities of the ``n`` new tokens.
        finished: True when the hypothesis ended with ``eos_id``, False when it was cut at
            ``max_new_tokens``.
        num_new_tokens: ``n``, the number of tokens beam search added.
    """

    tokens: Tensor
    score: float
    log_prob: float
    finished: bool
    num_new_tokens: int


def beam_search(
    model: nn.Module,
    idx: Tensor | Sequence[int],
    beam_width: int,
    max_new_tokens: int,
    length_penalty: float = 1.0,
    eos_id: int | None = None,
    *,
    num_return: int = 1,
    use_cache: bool = True,
    keep_on_rebuild: int | None = None,
) -> list[BeamHypothesis]:
    """Search for the continuation with the best length-normalised log-probability.

    Keeps the ``beam_width`` best partial sequences. At every step each is extended by every
    token; the candidates are ranked by total log-probability and the best ``beam_width`` that do
    not end in ``eos_id`` become the next beams. A candidate ending in ``eos_id`` that ranks in
    the top ``beam_width`` is set aside as a finished hypothesis. Finished hypotheses are
    compared by the GNMT score ``log_prob / ((5 + n) / 6) ** length_penalty`` (see
    :func:`gnmt_length_penalty`; ``n`` counts the new tokens including ``eos_id``). The search
    stops at ``max_new_tokens``, or earlier when ``beam_width`` hypotheses have finished and no
    live beam can still beat the worst of them (a bound: log-probabilities only go down, and
    the penalty is monotonic in the length). Live beams at the end are candidates too
    (``finished=False``).

    ``beam_width=1`` is greedy decoding. Ties are broken by beam order, then lower token id, so
    the result is deterministic. With ``new_kv_cache``, the beams share one batched cache that
    is re-indexed with ``cache.reorder`` at each step; past ``block_size`` the cache is rebuilt
    as in :func:`generate`.

    Only one prompt is searched (its beams form the batch): ``idx`` of shape ``(T,)`` or
    ``(1, T)``. The model is in eval mode during the call and under ``torch.no_grad()``.

    Args:
        model: a language model following the package contract.
        idx: one prompt, non-empty, ids in ``[0, vocab_size)``.
        beam_width: number of beams, ``>= 1``.
        max_new_tokens: the most tokens to add, ``>= 0``.
        length_penalty: GNMT ``alpha`` (a finite float; 0 = raw log-probability).
        eos_id: end-of-text id that finishes a hypothesis, or None.
        num_return: how many hypotheses to return, in ``[1, beam_width]``.
        use_cache: use the model's KV cache when it has one.
        keep_on_rebuild: see :func:`generate`.

    Returns:
        ``num_return`` :class:`BeamHypothesis`, best first.

    Example:
        >>> best = beam_search(model, prompt, beam_width=4, max_new_tokens=20)[0]  # doctest: +SKIP
        >>> best.tokens, best.score   # doctest: +SKIP
    """
    vocab_size, block_size = _model_limits(model)
    beam_width = _check_count("beam_width", beam_width, 1, "the number of beams")
    max_new_tokens = _check_count("max_new_tokens", max_new_tokens, 0, "most tokens to add")
    num_return = _check_count("num_return", num_return, 1, "hypotheses to return")
    if num_return > beam_width:
        raise ValueError(
            f"num_return must be <= beam_width={beam_width} (beam search keeps only that many), "
            f"got {num_return}"
        )
    if (
        isinstance(length_penalty, bool)
        or not isinstance(length_penalty, numbers.Real)
        or not math.isfinite(length_penalty)
    ):
        raise ValueError(
            f"length_penalty must be a finite number (GNMT alpha, e.g. 0.6-1.0; 0 = none), got "
            f"{length_penalty!r}"
        )
    eos_id = _check_eos(eos_id, vocab_size)
    keep = _resolve_keep(keep_on_rebuild, block_size)
    device = _model_device(model, idx.device if isinstance(idx, Tensor) else torch.device("cpu"))
    prompt = _prepare_prompt(idx, vocab_size, device)
    if prompt.shape[0] != 1:
        raise ValueError(
            f"beam_search takes one prompt, got a batch of {prompt.shape[0]}; call it once per "
            "prompt"
        )
    with _EvalMode(model), torch.no_grad():
        return _beam_search(
            model, prompt, beam_width, max_new_tokens, float(length_penalty), eos_id,
            num_return, use_cache, block_size, keep,
        )


def _beam_search(
    model: nn.Module,
    prompt: Tensor,
    width: int,
    max_new_tokens: int,
    alpha: float,
    eos_id: int | None,
    num_return: int,
    use_cache: bool,
    block_size: int | None,
    keep: int | None,
) -> list[BeamHypothesis]:
    prompt_len = prompt.shape[1]
    if max_new_tokens == 0:
        return [BeamHypothesis(prompt[0].clone(), 0.0, 0.0, False, 0)]

    def hypothesis(tokens: Tensor, log_prob: float, finished: bool) -> BeamHypothesis:
        n = tokens.shape[0] - prompt_len
        return BeamHypothesis(
            tokens, log_prob / gnmt_length_penalty(n, alpha), log_prob, finished, n
        )

    # One row to start with; the first step's reorder expands it into up to `width` beams
    # (the cache's reorder accepts a new batch size), so the prompt is prefilled only once.
    ctx = _Context(
        model, prompt, max_new_tokens, use_cache=use_cache, block_size=block_size, keep=keep
    )
    beam_logp = torch.zeros(1, device=prompt.device)  # (W_cur,) log-probability of each beam
    logits = ctx.prefill()  # (W_cur, V)
    done: list[BeamHypothesis] = []  # finished hypotheses, best first, at most `width`
    stopped_early = False
    neg_inf = float("-inf")

    for step in range(max_new_tokens):
        n_new = step + 1  # length of every candidate of this step
        logp = torch.log_softmax(logits.float(), dim=-1)  # (W, V)
        vocab = logp.shape[-1]
        cand = (beam_logp[:, None] + logp).reshape(-1)  # (W * V,), ordered by (beam, token)
        # Stable sort: among equal scores the lower (beam, token) pair comes first.
        n_cand = min(cand.numel(), 2 * width)
        top_scores, top_index = torch.sort(cand, descending=True, stable=True)
        top_scores = top_scores[:n_cand].tolist()
        top_index = top_index[:n_cand].tolist()

        next_beam: list[int] = []
        next_token: list[int] = []
        next_logp: list[float] = []
        for rank, (score, flat) in enumerate(zip(top_scores, top_index)):
            if score == neg_inf or len(next_beam) == width:
                break
            beam, token = divmod(flat, vocab)
            if eos_id is not None and token == eos_id:
                if rank < width:  # only an end that ranks among the best `width` counts
                    tokens = torch.cat([ctx.tokens[beam, : ctx.length], prompt.new_tensor([token])])
                    done.append(hypothesis(tokens, score, True))
                continue
            next_beam.append(beam)
            next_token.append(token)
            next_logp.append(score)
        done.sort(key=lambda h: h.score, reverse=True)
        del done[width:]

        if not next_beam:  # every candidate ended: nothing left to extend
            stopped_early = True
            break
        live = len(next_beam)
        # Pad to `width` rows with dead copies of the first beam (log-probability -inf, never
        # chosen again) so that the batch keeps one size from here on.
        next_beam += [next_beam[0]] * (width - live)
        next_token += [next_token[0]] * (width - live)
        next_logp += [neg_inf] * (width - live)
        index = torch.tensor(next_beam, device=prompt.device)
        ctx.reorder(index)
        ctx.append(torch.tensor(next_token, device=prompt.device))
        beam_logp = torch.tensor(next_logp, device=prompt.device)

        if n_new == max_new_tokens:
            break
        if len(done) >= width:
            # log_prob can only fall from here; the penalty is monotonic in the length, so the
            # best reachable score of a beam is at the next length or at max_new_tokens.
            best = next_logp[0]
            bound = max(
                best / gnmt_length_penalty(n_new + 1, alpha),
                best / gnmt_length_penalty(max_new_tokens, alpha),
            )
            if bound <= done[-1].score:
                stopped_early = True
                break
        logits = ctx.next_logits()

    # Beams cut at max_new_tokens compete with the finished hypotheses (after an early stop
    # they cannot win, and are not complete, so they are left out).
    results = list(done)
    for row, log_prob in enumerate(beam_logp.tolist()):
        if not stopped_early and log_prob != neg_inf and ctx.length > prompt_len:
            results.append(hypothesis(ctx.tokens[row, : ctx.length].clone(), log_prob, False))
    results.sort(key=lambda h: h.score, reverse=True)
    return results[:num_return]
