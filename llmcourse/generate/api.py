"""The front-ends: :func:`generate` (a batch, all at once) and :func:`stream` (one sequence, token by token).

Both take their options once, as a :class:`~llmcourse.generate.settings.Settings` or as its
field names by keyword, check them against the model, put the model in eval mode and run
:func:`~llmcourse.generate.decoding.decode_steps`. Read :mod:`llmcourse.generate.reference`
first: the same loop in 30 lines, without the engineering.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from llmcourse.fields import check_field

from .decoding import EvalMode, decode_steps
from .settings import Settings, make_generator, prepare_prompt

# stream(..., decode=...): how many token ids may wait for an incomplete UTF-8 character before
# the text is emitted anyway. A UTF-8 character has at most 4 bytes, so 4 byte-level tokens
# always complete it; past that, the replacement character is genuinely in the text.
_MAX_PENDING_TOKENS = 8


def generate(
    model: nn.Module,
    idx: Tensor | Sequence[int],
    max_new_tokens: int,
    settings: Settings | None = None,
    *,
    num_samples: int = 1,
    generator: torch.Generator | None = None,
    seed: int | None = None,
    **options: Any,
) -> Tensor:
    """Continue each prompt with up to ``max_new_tokens`` sampled tokens.

    The engineered version of :func:`llmcourse.generate.reference.sample` (read that first):
    the same tokens, with the model's KV cache, a batch, several samples per prompt, a stop id.

    Args:
        model: ``model(idx) -> (logits, loss)`` with a ``config`` (``vocab_size``,
            ``block_size``); put in eval mode for the call, run under ``torch.no_grad()``.
        idx: prompt ids: ``(B, T)`` or ``(T,)`` tensor, or (nested) lists of ints.
        max_new_tokens: tokens to add, ``>= 0``.
        settings: a :class:`~llmcourse.generate.settings.Settings`; ``**options`` (its field
            names: ``temperature``, ``top_k``, ``top_p``, ``min_p``, ``repetition_penalty``,
            ``eos_id``, ``use_cache``, ``keep_on_rebuild``, ``compile``) replace its fields.
        num_samples: samples per prompt: output row ``b * num_samples + s`` is sample ``s`` of
            prompt ``b``.
        generator, seed: for reproducible draws (at most one); ``temperature=0`` is greedy.

    Returns:
        ``(B * num_samples, T + n)`` int64, prompt included; ``n < max_new_tokens`` only when
        every row reached ``eos_id`` (a row keeps its ``eos_id`` and is padded with it).

    Example:
        >>> from llmcourse.model import GPT, GPTConfig
        >>> model = GPT(GPTConfig(vocab_size=65, block_size=16, n_layer=2, n_head=2, n_embd=32))
        >>> out = generate(model, torch.zeros(1, 1, dtype=torch.long), 20, top_k=10, seed=0)
        >>> out.shape
        torch.Size([1, 21])
        >>> torch.equal(out, generate(model, [0], 20, Settings(top_k=10), seed=0))
        True
        >>> generate(model, [[0], [1]], 5, num_samples=3).shape
        torch.Size([6, 6])
    """
    settings = Settings.make(settings, **options).checked_for(model)
    max_new_tokens = check_field("max_new_tokens", max_new_tokens, int, low=0,
                                 what="tokens to generate")
    num_samples = check_field("num_samples", num_samples, int, low=1, what="samples per prompt")
    prompt = prepare_prompt(idx, model)
    rng = make_generator(generator, seed, prompt.device)
    prompt = prompt.repeat_interleave(num_samples, dim=0)  # (B * num_samples, T)
    with EvalMode(model), torch.no_grad():
        steps = list(decode_steps(model, prompt, max_new_tokens, settings, rng))
    if not steps:
        return prompt.clone()
    return torch.cat([prompt, torch.stack(steps, dim=1)], dim=1)  # (B * num_samples, T + n)


def stream(
    model: nn.Module,
    idx: Tensor | Sequence[int],
    max_new_tokens: int,
    settings: Settings | None = None,
    *,
    generator: torch.Generator | None = None,
    seed: int | None = None,
    decode: Callable[[list[int]], str] | None = None,
    **options: Any,
) -> Iterator[int] | Iterator[str]:
    """Generate for one prompt token by token, yielding each new token as soon as it is sampled.

    The arguments mean what they mean for :func:`generate` and are checked when ``stream`` is
    called. The model is in eval mode while the iterator runs (its mode comes back when the
    iterator is exhausted or closed). The ``eos_id`` token ends the stream and is not yielded.

    Without ``decode``, yields ``int`` ids. With ``decode`` (e.g. ``tokenizer.decode``), yields
    ``str`` pieces whose concatenation is the text of the new tokens: ids whose text ends with
    U+FFFD (part of a multi-byte character) wait for the next ids, up to 8 of them.

    Example:
        >>> from llmcourse.model import GPT, GPTConfig
        >>> from llmcourse.tokenizers import CharTokenizer
        >>> tok = CharTokenizer.from_text("abcdefgh ")
        >>> model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=8, n_layer=1, n_head=1,
        ...                       n_embd=8))
        >>> pieces = list(stream(model, tok.encode("ab"), 12, decode=tok.decode, seed=0))
        >>> len("".join(pieces)), all(isinstance(p, str) for p in pieces)
        (12, True)
        >>> ids = list(stream(model, tok.encode("ab"), 12, seed=0))   # past block_size too
        >>> ids == generate(model, tok.encode("ab"), 12, seed=0)[0, 2:].tolist()
        True
    """
    settings = Settings.make(settings, **options).checked_for(model)
    max_new_tokens = check_field("max_new_tokens", max_new_tokens, int, low=0,
                                 what="tokens to generate")
    if decode is not None and not callable(decode):
        raise ValueError(f"decode must be a function from a list of ids to str, got {decode!r}")
    prompt = prepare_prompt(idx, model)
    if prompt.shape[0] != 1:
        raise ValueError(f"stream decodes one sequence, got a batch of {prompt.shape[0]} prompts; "
                         "stream them one at a time, or use generate() for a batch")
    rng = make_generator(generator, seed, prompt.device)
    ids = _stream_ids(model, prompt, max_new_tokens, settings, rng)
    return ids if decode is None else _stream_text(ids, decode)


def _stream_ids(model: nn.Module, prompt: Tensor, max_new_tokens: int, settings: Settings,
                rng: torch.Generator | None) -> Iterator[int]:
    mode = EvalMode(model)
    mode.__enter__()
    try:
        for next_ids in decode_steps(model, prompt, max_new_tokens, settings, rng):
            token = int(next_ids[0])
            if token == settings.eos_id:
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
