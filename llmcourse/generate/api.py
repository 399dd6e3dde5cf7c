"""The front-ends: :func:`generate` (a batch, all at once) and :func:`stream` (one sequence, token by token).

Both check their arguments once (:class:`~llmcourse.generate.settings.Settings`), put the model
in eval mode and run :func:`~llmcourse.generate.decoding.decode_steps`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

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
    min_p: float | None = None,
    repetition_penalty: float = 1.0,
    compile: bool = False,
) -> Tensor:
    """Continue each prompt with up to ``max_new_tokens`` sampled tokens.

    The model is put in eval mode for the call and given back its previous mode afterwards; all
    model calls run under ``torch.no_grad()`` (not ``inference_mode``, so the result can be used
    in later autograd code).

    **Decoding.** A model with ``new_kv_cache`` (and ``use_cache=True``) is run once over the
    prompt (prefill) and then on one new token per step; other models, or ``use_cache=False``,
    run the whole window at every step. A model's positions end at ``config.block_size``: past
    it the model sees a window of the last tokens, by one rule for both paths (see
    :mod:`llmcourse.generate.decoding`). By default the window slides by one token (the last
    ``block_size`` tokens, as nanoGPT crops; with a cache that is one full forward per token
    past ``block_size``). ``keep_on_rebuild=k`` instead restarts the window from the last ``k``
    tokens when it is full: one forward over ``k`` tokens every ``block_size - k + 1`` new
    tokens, much faster, and the cache and recompute paths still give the same tokens.

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
        temperature, top_k, top_p, min_p: see :func:`sample_next` (applied in that order).
        repetition_penalty: the CTRL penalty (see :func:`sample_next`) on every id of the
            row so far, prompt included; 1 is off.
        eos_id: end-of-text id to stop at, or None to always produce ``max_new_tokens``.
        num_samples: samples per prompt, ``>= 1``.
        use_cache: use the model's KV cache when it has one.
        generator, seed: randomness (at most one of them).
        keep_on_rebuild: tokens kept when the window is full, in ``[1, block_size]``
            (default ``block_size``: a sliding window).
        compile: run the cached one-token steps through ``torch.compile`` (see
            :mod:`llmcourse.generate.compiled`): on a CPU about 2-3x faster per token for the
            course's models, after a compilation of some seconds on the first call for a model
            (kept for the later ones). The tokens agree with the eager ones up to rounding
            (greedy: except at a near tie). Needs a C++ compiler on the CPU.

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
    settings = Settings.for_model(model, max_new_tokens, temperature, top_k, top_p, eos_id,
                                  use_cache, keep_on_rebuild, min_p=min_p,
                                  repetition_penalty=repetition_penalty, compile=compile)
    num_samples = check_field("num_samples", num_samples, int, low=1, what="samples per prompt")
    prompt = prepare_prompt(idx, model)
    rng = make_generator(generator, seed, prompt.device)
    prompt = prompt.repeat_interleave(num_samples, dim=0)  # (B * num_samples, T)
    with EvalMode(model), torch.no_grad():
        steps = list(decode_steps(model, prompt, settings, rng))
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
    min_p: float | None = None,
    repetition_penalty: float = 1.0,
    compile: bool = False,
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
    settings = Settings.for_model(model, max_new_tokens, temperature, top_k, top_p, eos_id,
                                  use_cache, keep_on_rebuild, min_p=min_p,
                                  repetition_penalty=repetition_penalty, compile=compile)
    if decode is not None and not callable(decode):
        raise ValueError(f"decode must be a function from a list of ids to str, got {decode!r}")
    prompt = prepare_prompt(idx, model)
    if prompt.shape[0] != 1:
        raise ValueError(f"stream decodes one sequence, got a batch of {prompt.shape[0]} prompts; "
                         "stream them one at a time, or use generate() for a batch")
    ids = _stream_ids(model, prompt, settings, make_generator(generator, seed, prompt.device))
    return ids if decode is None else _stream_text(ids, decode)


def _stream_ids(model: nn.Module, prompt: Tensor, settings: Settings,
                rng: torch.Generator | None) -> Iterator[int]:
    mode = EvalMode(model)
    mode.__enter__()
    try:
        for next_ids in decode_steps(model, prompt, settings, rng):
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
