"""Checks for day 23, "Sampling experiments": distinct-n, the repeated n-gram rate, the model's own loss.

Each ``check_*`` runs the learner's function on inputs unlike the notebook's, prints one line
(a pass, a specific hint, or "not done yet") and returns a verdict. None of them raises. The
references are :mod:`llmcourse.generate.experiments`.

Example::

    >>> from llmcourse.checks import day23
    >>> from llmcourse.generate.experiments import distinct_n
    >>> ok = day23.check_distinct_n(lambda samples, n: distinct_n(samples, n, digits=None))
    ✅ distinct_n: passed
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable

import torch

from llmcourse.checks._core import CheckFailed, call, check, kind_of
from llmcourse.generate.experiments import distinct_n, ngrams, repeated_ngram_rate, sample_loss

__all__ = ["check_distinct_n", "check_repeated_ngram_rate", "check_sample_loss"]


def _number(value: Any, name: str) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise CheckFailed(f"{name} should return a number (a Python float), got {kind_of(value)}")
    return float(value)


def _close(a: float, b: float, tol: float = 1e-4) -> bool:
    return abs(a - b) <= tol


# Samples of different lengths whose n-grams repeat within and across samples, and one
# sample shorter than n: every typical mistake gives another number on them.
_SAMPLES = [
    ["to", "be", "or", "not", "to", "be", "to", "be"],
    ["be", "to", "be", "or"],
    ["or", "not"],
    ["not"],
]


@check("distinct_n")
def check_distinct_n(distinct_n_fn: Callable[[Any, int], Any]) -> None:
    """Exercise 1: different n-grams / all n-grams, n-grams within each sample."""
    for n in (2, 3, 1):
        shown = f"distinct_n(samples, {n}) with {len(_SAMPLES)} word samples"
        got = _number(call(distinct_n_fn, [list(s) for s in _SAMPLES], n, shown=shown), shown)
        want = distinct_n(_SAMPLES, n, digits=None)
        if _close(got, want):
            continue
        tokens = [t for s in _SAMPLES for t in s]
        joined = ngrams(tokens, n)
        grams = [g for s in _SAMPLES for g in ngrams(s, n)]
        if n > 1 and _close(got, len(set(tokens)) / len(tokens)):
            raise CheckFailed(f"{shown} returned {got:.4f}, the share of different single tokens; "
                              f"count n-grams: tuple(sample[i:i + n]) for every i of each sample")
        if n > 1 and _close(got, len(set(joined)) / len(joined)):
            raise CheckFailed(f"{shown} returned {got:.4f}: it counts n-grams across the end of one "
                              "sample and the start of the next; take the n-grams of each sample "
                              "separately, then pool them")
        if _close(got, len(set(grams)) / len(tokens)):
            raise CheckFailed(f"{shown} returned {got:.4f}: it divides by the number of tokens; "
                              "divide by the number of n-grams (len(sample) - n + 1 per sample)")
        per_sample = [len(set(ngrams(s, n))) / len(ngrams(s, n)) for s in _SAMPLES if len(s) >= n]
        if _close(got, sum(per_sample) / len(per_sample)):
            raise CheckFailed(f"{shown} returned {got:.4f}, the mean of each sample's own distinct-n; "
                              "pool the n-grams of all samples: a phrase every sample repeats "
                              "should lower the score")
        if got > 0 and _close(1 / got, want):
            raise CheckFailed(f"{shown} returned {got:.4f}, which is all / different; divide the "
                              "number of different n-grams by the number of all n-grams")
        raise CheckFailed(f"{shown} returned {got:.4f} but should return {want:.4f}")
    got = _number(call(distinct_n_fn, [["a"], ["b"]], 2, shown="distinct_n([['a'], ['b']], 2)"),
                  "distinct_n([['a'], ['b']], 2)")
    if got != 0:
        raise CheckFailed(f"distinct_n([['a'], ['b']], 2) returned {got}: no sample has 2 tokens, so "
                          "there are no bigrams; return 0.0")


@check("repeated_ngram_rate")
def check_repeated_ngram_rate(rate_fn: Callable[[Any, int], Any]) -> None:
    """Exercise 2: n-grams seen earlier in the same sample / all n-grams."""
    for n in (2, 1):
        shown = f"repeated_ngram_rate(samples, {n}) with {len(_SAMPLES)} word samples"
        got = _number(call(rate_fn, [list(s) for s in _SAMPLES], n, shown=shown), shown)
        want = repeated_ngram_rate(_SAMPLES, n, digits=None)
        if _close(got, want):
            continue
        grams = [g for s in _SAMPLES for g in ngrams(s, n)]
        tokens = [t for s in _SAMPLES for t in s]
        across = (len(grams) - len(set(grams))) / len(grams)
        if _close(got, across):
            raise CheckFailed(f"{shown} returned {got:.4f}: it counts an n-gram that another sample "
                              "used as a repeat; a repeat is an n-gram seen earlier in the *same* "
                              "sample (start a new set for every sample)")
        if _close(got, 1 - want):
            raise CheckFailed(f"{shown} returned {got:.4f}, the share of n-grams seen for the first "
                              "time; count the ones already seen instead")
        repeats = sum(len(ngrams(s, n)) - len(set(ngrams(s, n))) for s in _SAMPLES)
        if _close(got, repeats / len(tokens)):
            raise CheckFailed(f"{shown} returned {got:.4f}: it divides by the number of tokens; "
                              "divide by the number of n-grams")
        distinct_repeated = sum(len({g for g in set(ngrams(s, n)) if ngrams(s, n).count(g) > 1})
                                for s in _SAMPLES)
        if _close(got, distinct_repeated / len(grams)):
            raise CheckFailed(f"{shown} returned {got:.4f}: it counts each repeated n-gram once; an "
                              "n-gram written three times is two repeats")
        raise CheckFailed(f"{shown} returned {got:.4f} but should return {want:.4f}")


def _toy_model() -> torch.nn.Module:
    from llmcourse.model import GPT, GPTConfig

    torch.manual_seed(7)
    return GPT(GPTConfig(vocab_size=13, block_size=20, n_layer=1, n_head=1, n_embd=12)).eval()


@check("sample_loss")
def check_sample_loss(loss_fn: Callable[[Any, torch.Tensor, int], Any]) -> None:
    """Exercise 3: the model's mean cross-entropy on the sampled tokens (after the prompt)."""
    model = _toy_model()
    g = torch.Generator().manual_seed(3)
    rows = torch.randint(0, 13, (3, 15), generator=g)   # 3 rows: a 4-token prompt, 11 sampled
    shown = "sample_loss(model, rows of shape (3, 15), prompt_len=4)"
    got = _number(call(loss_fn, model, rows.clone(), 4, shown=shown), shown)
    want = sample_loss(model, rows, 4)
    if _close(got, want):
        return
    with torch.no_grad():
        logits, _ = model(rows)
    ce = torch.nn.functional.cross_entropy
    whole = ce(logits[:, :-1].reshape(-1, 13), rows[:, 1:].reshape(-1)).item()
    if _close(got, whole):
        raise CheckFailed(f"{shown} returned {got:.4f}, the loss on every token; count only the "
                          "sampled ones, after the prompt (targets rows[:, prompt_len:])")
    unshifted = ce(logits[:, 4:].reshape(-1, 13), rows[:, 4:].reshape(-1)).item()
    if _close(got, unshifted):
        raise CheckFailed(f"{shown} returned {got:.4f}: logits[:, t] predicts token t + 1, so the "
                          "logits for the sampled tokens are logits[:, prompt_len - 1:-1]")
    if _close(got, math.exp(want), 1e-3):
        raise CheckFailed(f"{shown} returned {got:.4f}, the perplexity exp(loss); return the mean "
                          "cross-entropy itself (nats per token)")
    raise CheckFailed(f"{shown} returned {got:.4f} but should return {want:.4f}")
