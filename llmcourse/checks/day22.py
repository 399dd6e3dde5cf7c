"""Checks for day 22, "Top-k and top-p".

Each ``check_*`` function runs the learner's code on batched inputs of its own (sizes unlike the
notebook's), prints one line - a pass, a specific hint, or "not done yet" - and never raises.
The references are the package's :mod:`llmcourse.generate.sampling` functions, and
:func:`reference_next_token_probs` (temperature, then top-k, then top-p, then the softmax).

Example::

    >>> from llmcourse.checks import day22
    >>> from llmcourse.generate import top_k_filter
    >>> ok = day22.check_top_k_filter(top_k_filter)
    ✅ top_k_filter: passed
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor

from llmcourse.checks._core import CheckFailed, as_tensor, assert_close, call, check, needs_earlier
from llmcourse.generate import sampling as ref

__all__ = ["check_top_k_filter", "check_top_p_filter", "check_min_p_filter",
           "check_next_token_probs", "reference_next_token_probs"]

NEG_INF = float("-inf")


def reference_next_token_probs(logits: Tensor, temperature: float, top_k: int | None,
                               top_p: float | None) -> Tensor:
    """Probabilities of the next token: temperature, top-k, top-p, softmax (``temperature > 0``)."""
    logits = ref.apply_temperature(logits, temperature)
    if top_k is not None:
        logits = ref.top_k_filter(logits, top_k)
    if top_p is not None:
        logits = ref.top_p_filter(logits, top_p)
    return torch.softmax(logits, dim=-1)


def _filtered(got: Any, logits: Tensor, shown: str) -> tuple[Tensor, Tensor]:
    """The learner's filtered logits and which entries it kept; the hints every filter shares."""
    got = as_tensor(got, "the result", shape=tuple(logits.shape)).detach()
    if not got.is_floating_point():
        raise CheckFailed(f"{shown} returned dtype {got.dtype}; return the logits (floats) with the "
                          "removed ones set to float('-inf'), not a mask")
    got = got.float()
    sums = got.sum(-1)
    if (got >= 0).all() and torch.allclose(sums, torch.ones_like(sums), atol=1e-4):
        raise CheckFailed(f"{shown} returned probabilities; return logits, with the removed "
                          "ones set to float('-inf') (the softmax comes after the filters)")
    zeros = (got == 0) & (logits != 0)
    if zeros.any() and not torch.isinf(got).any():
        raise CheckFailed(f"{shown} set the removed logits to 0; a logit of 0 still has probability "
                          "exp(0) > 0 after the softmax - set them to float('-inf')")
    kept = torch.isfinite(got)
    if not torch.equal(got[kept], logits[kept]):
        raise CheckFailed(f"{shown} changed the logits it kept; leave them as they are and set "
                          "only the removed ones to float('-inf') (no softmax, no renormalising here)")
    if (got[~kept] != NEG_INF).any():
        raise CheckFailed(f"{shown}: removed entries must be float('-inf') exactly (not nan or +inf)")
    return got, kept


@check("top_k_filter")
def check_top_k_filter(top_k_filter: Callable[[Tensor, int], Tensor]) -> None:
    """Exercise 1: exactly k kept per row, the largest, on a (2, 3, 11) batch with ties."""
    g = torch.Generator().manual_seed(22)
    logits = torch.randn(2, 3, 11, generator=g)  # (B, T, V)
    logits[0, 1] = torch.tensor([0.5, 2.0, 1.0, 1.0, -1.0, 1.0, 3.0, 0.0, -2.0, 1.0, -0.5])
    # ^ k = 4 cuts through the tie at 1.0 (ids 2, 3, 5, 9): only 2 of the 4 can be kept
    k = 4
    shown = f"top_k_filter(logits of shape (2, 3, 11), k={k})"
    got, kept = _filtered(call(top_k_filter, logits.clone(), k, shown=shown), logits, shown)
    counts = kept.sum(-1)
    if (counts == kept.shape[-1] - k).all():
        raise CheckFailed(f"{shown} removed the {k} largest logits and kept the rest: the wrong "
                          "end; keep the k largest (torch.topk returns the largest by default)")
    if counts[0, 1] > k and (counts.flatten() == k).sum() == counts.numel() - 1:
        raise CheckFailed(f"{shown} kept {int(counts[0, 1])} tokens in a row whose k-th largest "
                          "logit is tied (logits < kth_value keeps every tie); keep exactly k: "
                          "scatter the values of torch.topk back at its indices")
    if not (counts == k).all():
        bad = [int(i) for i in (counts != k).nonzero()[0]]
        raise CheckFailed(f"{shown} kept {int(counts[tuple(bad)])} tokens in row {tuple(bad)}, "
                          f"expected exactly k = {k}")
    lowest_kept = got.masked_fill(~kept, float("inf")).amin(-1)
    highest_dropped = logits.masked_fill(kept, NEG_INF).amax(-1)
    if (highest_dropped > lowest_kept).any():
        raise CheckFailed(f"{shown} kept {k} tokens but not the {k} largest; use "
                          "torch.topk(logits, k, dim=-1) along the last dimension")
    for k_all in (11, 15):  # k >= vocabulary size keeps every token
        every = as_tensor(call(top_k_filter, logits.clone(), k_all,
                               shown=f"top_k_filter(logits of shape (2, 3, 11), k={k_all})"),
                          "the result", shape=(2, 3, 11))
        if not torch.equal(every.float(), logits):
            raise CheckFailed(f"top_k_filter with k={k_all} >= the vocabulary size (11) should "
                              "return the logits unchanged (clamp k to the last dimension)")


@check("top_p_filter")
def check_top_p_filter(top_p_filter: Callable[[Tensor, float], Tensor]) -> None:
    """Exercise 2: the fewest most likely tokens whose mass reaches p, on a (3, 2, 13) batch."""
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(3, 2, 13, generator=g) * 1.5  # (B, T, V), no ties
    logits[2, 0, 4] = 9.0  # a confident row: the top token alone is over p
    p = 0.72
    shown = f"top_p_filter(logits of shape (3, 2, 13), p={p})"
    got, kept = _filtered(call(top_p_filter, logits.clone(), p, shown=shown), logits, shown)
    want = torch.isfinite(ref.top_p_filter(logits, p))
    if torch.equal(kept, want):
        return
    n_kept, n_want = kept.sum(-1), want.sum(-1)
    if (n_kept == 0).any():
        raise CheckFailed(f"{shown} removed every token of a row whose top token alone has "
                          "probability > p; always keep the token that crosses p (the first one)")
    if torch.equal(n_kept, n_want):
        raise CheckFailed(f"{shown} kept the right number of tokens in the wrong places: after "
                          "sorting, put the mask back in vocabulary order (scatter it with the "
                          "sort's indices) before masking the logits")
    if ((kept & ~want).sum() == 0) and (n_kept >= n_want - 1).all():
        raise CheckFailed(f"{shown} dropped the token that crosses p, so the kept mass is below p; "
                          "keep a token when the mass *before* it is < p (cumsum - probs < p)")
    if (n_kept > n_want).any():
        raise CheckFailed(f"{shown} kept more tokens than needed: keep the fewest most likely "
                          "tokens whose total probability reaches p (sort by probability first)")
    raise CheckFailed(f"{shown} kept other tokens than the most likely ones whose probability "
                      "reaches p; sort the probabilities in descending order and take the "
                      "cumulative sum")


@check("min_p_filter")
def check_min_p_filter(min_p_filter: Callable[[Tensor, float], Tensor]) -> None:
    """Exercise 3: keep probabilities >= p * the top one's, on a (2, 3, 10) batch."""
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 3, 10, generator=g) + 1.0  # (B, T, V); positive and negative
    logits[1, 2, 6] = 5.0  # a confident row keeps only its top token
    for p in (0.15, 0.4):
        shown = f"min_p_filter(logits of shape (2, 3, 10), p={p})"
        got, kept = _filtered(call(min_p_filter, logits.clone(), p, shown=shown), logits, shown)
        want = torch.isfinite(ref.min_p_filter(logits, p))
        if torch.equal(kept, want):
            continue
        probs = torch.softmax(logits, -1)
        if torch.equal(kept, probs >= p):
            raise CheckFailed(f"{shown} kept the tokens with probability >= p: the threshold is "
                              "relative to the most likely token, probs >= p * probs.max(dim=-1)")
        if torch.equal(kept, logits >= p * logits.amax(-1, keepdim=True)):
            raise CheckFailed(f"{shown} compared the logits with p * the top logit; compare "
                              "probabilities: softmax(logits) >= p * its maximum")
        if torch.equal(kept, probs >= p * probs.amax()):
            raise CheckFailed(f"{shown} used one maximum for the whole batch; take the maximum of "
                              "each row: probs.amax(dim=-1, keepdim=True)")
        raise CheckFailed(f"{shown} kept {int(kept.sum())} tokens in all, expected "
                          f"{int(want.sum())}: keep softmax(logits) >= p * its row maximum")


@check("next_token_probs")
@needs_earlier(top_k_filter=1, top_p_filter=2)
def check_next_token_probs(next_token_probs: Callable[..., Tensor]) -> None:
    """Exercise 4: temperature, then top-k, then top-p, then the softmax, on (5, 17) logits."""
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(5, 17, generator=g) * 2.0  # (B, V)
    cases = [(0.5, 6, 0.8), (1.8, None, 0.6), (1.3, 9, None), (1.0, None, None), (2.5, 12, 0.5)]
    for t, k, p in cases:
        shown = f"next_token_probs(logits of shape (5, 17), temperature={t}, top_k={k}, top_p={p})"
        got = as_tensor(call(next_token_probs, logits.clone(), t, k, p, shown=shown),
                        "the probabilities", shape=(5, 17)).detach().float()
        want = reference_next_token_probs(logits, t, k, p)
        if torch.allclose(got, want, atol=1e-5):
            continue
        sums = got.sum(-1)
        if torch.isnan(got).any():
            raise CheckFailed(f"{shown} gave nan; filter the logits with -inf and apply the "
                              "softmax once, at the end")
        if not torch.allclose(sums, torch.ones_like(sums), atol=1e-4):
            raise CheckFailed(f"{shown}: the probabilities sum to {float(sums[0]):.3f}, not 1 - "
                              "renormalise: softmax of the filtered logits (not the softmax of "
                              "all logits with the removed tokens set to 0)")
        if p is not None:
            early = logits if k is None else ref.top_k_filter(logits, k)
            early = ref.top_p_filter(early, p)  # the filters before the temperature
            if torch.allclose(got, torch.softmax(ref.apply_temperature(early, t), -1), atol=1e-5):
                raise CheckFailed(f"{shown} applied top-p before the temperature; the order is "
                                  "temperature, then top-k, then top-p (the nucleus is chosen "
                                  "on the tempered distribution)")
            if k is not None:
                swapped = ref.top_k_filter(ref.top_p_filter(logits / t, p), k)
                if torch.allclose(got, torch.softmax(swapped, -1), atol=1e-5):
                    raise CheckFailed(f"{shown} applied top-p before top-k; the order is "
                                      "temperature, then top-k, then top-p")
        if torch.allclose(got, reference_next_token_probs(logits * t, 1.0, k, p), atol=1e-5):
            raise CheckFailed(f"{shown} multiplied the logits by the temperature; divide them")
        assert_close(got, want, "next_token_probs(...)")
