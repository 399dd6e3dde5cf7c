"""Checks for day 20, "Greedy and beam search": a sequence's log-probability, a beam step, the length penalty.

The checks use a GPT and sizes unlike the notebook's (vocabulary 23, 3 beams, continuations
long enough that a product of probabilities underflows in float32) and compare with the
package (:func:`llmcourse.generate.gnmt_length_penalty`) or a direct computation.

Example::

    >>> from llmcourse.checks import day20
    >>> v = day20.check_gnmt_score(lambda lp, n, a: lp / ((5 + n) / 6) ** a)
    ✅ gnmt_score: passed
"""

from __future__ import annotations

import math

import torch

from llmcourse.checks._core import CheckFailed, as_tensor, call, check
from llmcourse.generate import gnmt_length_penalty
from llmcourse.model import GPT, GPTConfig

__all__ = ["check_sequence_log_prob", "check_beam_step", "check_gnmt_score"]


def _as_float(value, name: str) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise CheckFailed(f"{name} should be one number, got a tensor of shape "
                              f"{tuple(value.shape)}; sum the log-probabilities into one value")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CheckFailed(f"{name} should be a number, got {type(value).__name__}")
    return float(value)


@check("sequence_log_prob")
def check_sequence_log_prob(sequence_log_prob) -> None:
    """Exercise 1: sum of log P(token | everything before it) over the continuation only."""
    torch.manual_seed(20)
    model = GPT(GPTConfig(vocab_size=23, block_size=64, n_layer=2, n_head=2, n_embd=16)).eval()
    prompt = torch.tensor([5, 1, 7, 2])
    continuation = torch.randint(0, 23, (40,))  # 40 tokens: a product of probabilities underflows
    shown = "sequence_log_prob(model, prompt, continuation) with 4 prompt and 40 new tokens"
    got = _as_float(call(sequence_log_prob, model, prompt, continuation, shown=shown),
                    "sequence_log_prob's result")
    with torch.no_grad():
        ids = torch.cat([prompt, continuation])
        logits = model(ids[None])[0][0]  # (T, V)
        logp = torch.log_softmax(logits.double(), dim=-1)
        per_token = logp[:-1].gather(1, ids[1:, None])[:, 0]  # log P(ids[t+1] | ids[:t+1])
        new = per_token[len(prompt) - 1:]
        expected = float(new.sum())
        same_pos = float(logp.gather(1, ids[:, None])[:, 0][len(prompt):].sum())
        raw = float(logits.double()[:-1].gather(1, ids[1:, None])[:, 0][len(prompt) - 1:].sum())
    if got > 0:
        raise CheckFailed(f"got {got:.4g}, a positive number: log-probabilities are <= 0. Take "
                          "torch.log_softmax(logits, dim=-1), not softmax or the raw logits")
    if got == -math.inf or got == 0.0:
        raise CheckFailed(f"got {got}: the product of 40 probabilities underflows in float32; "
                          "sum the log-probabilities (log_softmax) instead of multiplying "
                          "probabilities")
    if math.isclose(got, raw, rel_tol=1e-4):
        raise CheckFailed("you summed the raw logits: normalise them first with "
                          "torch.log_softmax(logits, dim=-1)")
    if math.isclose(got, same_pos, rel_tol=1e-4):
        raise CheckFailed("off by one: the logits at position t predict token t + 1, so score "
                          "token t with logits[t - 1]")
    if math.isclose(got, float(per_token.sum()), rel_tol=1e-4):
        raise CheckFailed("you also scored the prompt's tokens: sum over the continuation only")
    if math.isclose(got, float(new.mean()), rel_tol=1e-4):
        raise CheckFailed("you took the mean: the log-probability of a sequence is the sum over "
                          "its tokens")
    if not math.isclose(got, expected, rel_tol=1e-4, abs_tol=1e-3):
        raise CheckFailed(f"got {got:.4f}, expected {expected:.4f}: run the model once on "
                          "prompt + continuation and sum log_softmax(logits)[t - 1, token t] over "
                          "the continuation's positions")


@check("beam_step")
def check_beam_step(beam_step) -> None:
    """Exercise 2: extend every beam by every token, keep the best ``width`` (log space)."""
    torch.manual_seed(2)
    W, V, width = 3, 23, 4  # 3 beams in, 4 out: not square, not the notebook's sizes
    beam_logp = torch.tensor([-1.0, -2.5, -4.0])
    logits = torch.randn(W, V) * 3
    logits[1, 7] = 12.0  # beam 1's token 7 beats beam 0's best: ranking across beams matters
    shown = "beam_step(beam_logp, logits, 4) with beam_logp of shape (3,) and logits (3, 23)"
    out = call(beam_step, beam_logp.clone(), logits.clone(), width, shown=shown)
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        raise CheckFailed("beam_step should return three tensors: (scores, parent, token)")
    scores = as_tensor(out[0], "scores", shape=(width,))
    parent = as_tensor(out[1], "parent", shape=(width,))
    token = as_tensor(out[2], "token", shape=(width,))
    logp = torch.log_softmax(logits, dim=-1)
    cand = (beam_logp[:, None] + logp).flatten()
    best, index = cand.topk(width)
    if torch.allclose(scores, (beam_logp[:, None] * logp).flatten().topk(width).values, atol=1e-4):
        raise CheckFailed("you multiplied log-probabilities: in log space the probabilities of "
                          "a sequence multiply, so their logs add: beam_logp[:, None] + logp")
    if (scores > 0).any():
        raise CheckFailed("some scores are positive: they should be log-probabilities (<= 0). "
                          "Add the beams' log-probabilities to log_softmax(logits), not "
                          "probabilities or raw logits")
    if torch.allclose(scores, logp.flatten().topk(width).values, atol=1e-4):
        raise CheckFailed("the scores ignore the beams' own log-probabilities: a candidate's "
                          "score is beam_logp[beam] + log P(token), summed in log space")
    if torch.allclose(scores.sort(descending=True).values,
                      (beam_logp[:, None] + logits).flatten().topk(width).values, atol=1e-4):
        raise CheckFailed("you added raw logits: normalise each row with "
                          "torch.log_softmax(logits, dim=-1) first")
    if torch.equal(parent, index % V) and torch.equal(token, index // V):
        raise CheckFailed("parent and token are swapped: in the flattened (beam, token) index, "
                          "parent = index // V and token = index % V")
    if not torch.allclose(scores, best, atol=1e-4):
        raise CheckFailed(f"the scores {[round(s, 3) for s in scores.tolist()]} are not the "
                          f"best {width} candidates, best first: expected "
                          f"{[round(s, 3) for s in best.tolist()]}; rank all W x V candidates "
                          "together (flatten, then topk)")
    if not (torch.equal(parent.long(), index // V) and torch.equal(token.long(), index % V)):
        raise CheckFailed(f"parent {parent.tolist()} and token {token.tolist()} should be "
                          f"{(index // V).tolist()} and {(index % V).tolist()}: from the "
                          "flattened index, parent = index // V and token = index % V")


@check("gnmt_score")
def check_gnmt_score(gnmt_score) -> None:
    """Exercise 3: log_prob / ((5 + length) / 6) ** alpha, against the package."""
    cases = [(-12.0, 7, 1.0), (-12.0, 7, 0.0), (-30.5, 40, 0.6), (-3.25, 2, 2.0)]
    for log_prob, length, alpha in cases:
        shown = f"gnmt_score({log_prob}, {length}, {alpha})"
        got = _as_float(call(gnmt_score, log_prob, length, alpha, shown=shown), shown)
        expected = log_prob / gnmt_length_penalty(length, alpha)
        if math.isclose(got, expected, rel_tol=1e-6):
            continue
        if alpha != 0 and math.isclose(got, log_prob, rel_tol=1e-6):
            raise CheckFailed(f"{shown} returned the log-probability itself: divide it by the "
                              "length penalty ((5 + length) / 6) ** alpha")
        if math.isclose(got, log_prob / length, rel_tol=1e-6):
            raise CheckFailed(f"{shown}: dividing by the length (a plain average) is not GNMT's "
                              "penalty; divide by ((5 + length) / 6) ** alpha")
        if math.isclose(got, log_prob / ((5 + length) / 6), rel_tol=1e-6):
            raise CheckFailed(f"{shown}: the penalty is ((5 + length) / 6) ** alpha; you left out "
                              "the exponent alpha")
        if math.isclose(got, log_prob * gnmt_length_penalty(length, alpha), rel_tol=1e-6):
            raise CheckFailed(f"{shown}: divide by the penalty, do not multiply: a longer "
                              "hypothesis's (negative) log-probability is shrunk towards 0")
        raise CheckFailed(f"{shown} should be {expected:.4f}, got {got:.4f}")
