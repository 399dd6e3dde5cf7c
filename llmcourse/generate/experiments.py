"""Measuring samples: diversity (distinct-n), repetition, the model's own loss, and a settings grid.

A sampling setting is judged by what it writes. Three numbers a sample set can be given:

- :func:`distinct_n` (Li et al., 2016): the number of *different* n-grams divided by the number
  of n-grams, over all samples of a setting. 1 means no n-gram occurs twice; a model that says
  the same thing in every sample scores low.
- :func:`repeated_ngram_rate`: the share of a sample's n-grams that already occurred earlier in
  the *same* sample - loops ("the the the", a line written twice) score high.
- :func:`sample_loss`: the model's own mean cross-entropy (at temperature 1, no filtering) on
  the tokens it sampled. Low temperature picks likely tokens (low loss, dull text); high
  temperature picks unlikely ones (high loss, noise).

N-grams never cross a sample boundary: the last tokens of one sample and the first of the next
are not an n-gram of the text. :func:`sample_grid` runs a grid of (temperature, top-k, top-p)
settings and returns one row of these measures per setting.

Example:
    >>> samples = [["to", "be", "or", "not", "to", "be"], ["to", "be", "sure"]]
    >>> distinct_n(samples, 2)   # 7 bigrams, 5 different: (to be) x3 counts once
    0.7143
    >>> repeated_ngram_rate(samples, 2)   # (to be) again in sample 1: 1 of 7
    0.1429
"""

from __future__ import annotations

import math  # noqa: F401 - used in the examples
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from llmcourse.fields import check_field

from .api import generate
from .settings import model_limits, prepare_prompt

__all__ = ["ngrams", "distinct_n", "repeated_ngram_rate", "sample_loss", "sample_grid"]


def ngrams(units: Sequence[Hashable], n: int) -> list[tuple[Hashable, ...]]:
    """The ``len(units) - n + 1`` n-grams of one sequence, in order (none if it is shorter).

    >>> ngrams("abcd", 2)
    [('a', 'b'), ('b', 'c'), ('c', 'd')]
    """
    return [tuple(units[i:i + n]) for i in range(len(units) - n + 1)]


def _check_samples(samples: Any, n: int, what: str) -> list[Sequence[Hashable]]:
    check_field("n", n, int, low=1, what="the n-gram length")
    if isinstance(samples, (str, bytes)) or not isinstance(samples, Iterable):
        raise ValueError(f"{what}: samples must be a list of samples (each a list of tokens, or a "
                         f"string), got {type(samples).__name__}; wrap one sample as [sample]")
    return [list(s) for s in samples]


def distinct_n(samples: Iterable[Sequence[Hashable]], n: int, digits: int | None = 4) -> float:
    """Different n-grams / all n-grams, over every sample (n-grams taken within each sample).

    Returns 0.0 when no sample is ``n`` units long. ``digits`` rounds the result (None: exact).

    >>> distinct_n(["aaaa", "ab"], 1)   # 6 unigrams, 2 different
    0.3333
    """
    samples = _check_samples(samples, n, "distinct_n")
    grams = [g for s in samples for g in ngrams(s, n)]
    value = len(set(grams)) / len(grams) if grams else 0.0
    return value if digits is None else round(value, digits)


def repeated_ngram_rate(samples: Iterable[Sequence[Hashable]], n: int,
                        digits: int | None = 4) -> float:
    """The share of n-grams that already occurred earlier in the same sample.

    Counted per sample, summed over samples and divided by the number of n-grams of all
    samples; an n-gram shared by two different samples is not a repeat. 0.0 without n-grams.

    >>> repeated_ngram_rate(["abab", "ab"], 2)   # ab ba ab | ab: one repeat in 4 bigrams
    0.25
    """
    samples = _check_samples(samples, n, "repeated_ngram_rate")
    repeats = total = 0
    for s in samples:
        grams = ngrams(s, n)
        repeats += len(grams) - len(set(grams))
        total += len(grams)
    value = repeats / total if total else 0.0
    return value if digits is None else round(value, digits)


@torch.no_grad()
def sample_loss(model: nn.Module, rows: torch.Tensor, prompt_len: int) -> float:
    """The model's mean cross-entropy (nats per token) on the tokens after ``prompt_len``.

    ``rows`` ``(B, T)`` are prompts followed by samples; the loss is the model's own
    distribution (temperature 1, nothing filtered), averaged over every sampled token.
    ``T`` must fit in the model's ``block_size``.

    >>> from llmcourse.model import GPT, GPTConfig
    >>> m = GPT(GPTConfig(vocab_size=5, block_size=8, n_layer=1, n_head=1, n_embd=8))
    >>> loss = sample_loss(m, torch.tensor([[0, 1, 2, 3]]), 1)  # 3 sampled tokens
    >>> abs(loss - math.log(5)) < 0.5   # untrained: about a uniform guess over 5 tokens
    True
    """
    rows = prepare_prompt(rows, model)
    _, block = model_limits(model)
    B, T = rows.shape
    prompt_len = check_field("prompt_len", prompt_len, int, low=1, high=T - 1,
                             what="tokens of each row that are prompt, not sample")
    if block is not None and T > block + 1:
        raise ValueError(f"rows of {T} tokens do not fit the model's block_size {block}: "
                         f"sample at most {block + 1 - prompt_len} new tokens")
    was_training = model.training
    model.eval()
    try:
        logits, _ = model(rows[:, :-1])  # (B, T - 1, V): logits[:, t] predicts rows[:, t + 1]
    finally:
        model.train(was_training)
    targets = rows[:, prompt_len:]  # (B, T - prompt_len), the sampled tokens
    pred = logits[:, prompt_len - 1:].float()  # (B, T - prompt_len, V)
    return F.cross_entropy(pred.reshape(-1, pred.shape[-1]), targets.reshape(-1)).item()


def sample_grid(
    model: nn.Module,
    prompt: Sequence[int],
    temperatures: Sequence[float],
    top_ks: Sequence[int | None],
    top_ps: Sequence[float | None],
    *,
    num_samples: int = 5,
    max_new_tokens: int = 100,
    seed: int = 0,
    units: Callable[[list[int]], Sequence[Hashable]] | None = None,
    distinct: Sequence[int] = (1, 2),
    repeated: int = 3,
) -> list[dict[str, Any]]:
    """Sample ``num_samples`` texts at every (temperature, top_k, top_p) and measure them.

    Every setting starts from the same ``seed``, so settings are compared on the same random
    numbers. ``units(ids)`` turns a sample's new token ids into the units n-grams are made of
    (e.g. words: ``lambda ids: tok.decode(ids).split()``); by default the ids themselves.

    Returns:
        one dict per setting, in grid order (temperature slowest): ``temperature``, ``top_k``,
        ``top_p``, ``samples`` (lists of new ids), ``distinct_<n>`` for each ``n`` of
        ``distinct``, ``repeated_<repeated>`` and ``loss`` (:func:`sample_loss`), rounded to 4
        decimals.

    Example:
        >>> from llmcourse.model import GPT, GPTConfig
        >>> m = GPT(GPTConfig(vocab_size=9, block_size=16, n_layer=1, n_head=1, n_embd=8))
        >>> rows = sample_grid(m, [0], [0.5, 1.0], [5], [0.9], num_samples=2, max_new_tokens=8)
        >>> [(r["temperature"], r["top_k"], len(r["samples"])) for r in rows]
        [(0.5, 5, 2), (1.0, 5, 2)]
        >>> sorted(rows[0])
        ['distinct_1', 'distinct_2', 'loss', 'repeated_3', 'samples', 'temperature', 'top_k', 'top_p']
    """
    prompt_ids = prepare_prompt(list(prompt) if not isinstance(prompt, torch.Tensor) else prompt,
                                model)
    if prompt_ids.shape[0] != 1:
        raise ValueError(f"sample_grid takes one prompt, got {prompt_ids.shape[0]}")
    split = units if units is not None else (lambda ids: ids)
    rows = []
    for t in temperatures:
        for k in top_ks:
            for p in top_ps:
                out = generate(model, prompt_ids, max_new_tokens, temperature=t, top_k=k,
                               top_p=p, num_samples=num_samples, seed=seed)
                new = out[:, prompt_ids.shape[1]:].tolist()  # (num_samples, max_new_tokens)
                texts = [split(ids) for ids in new]
                row: dict[str, Any] = {"temperature": t, "top_k": k, "top_p": p, "samples": new}
                for n in distinct:
                    row[f"distinct_{n}"] = distinct_n(texts, n)
                row[f"repeated_{repeated}"] = repeated_ngram_rate(texts, repeated)
                row["loss"] = round(sample_loss(model, out, prompt_ids.shape[1]), 4)
                rows.append(row)
    return rows
