"""The day-20 checks pass the solutions, reject the mistakes of their tables, and say "not done
yet" for stubs."""

from __future__ import annotations

import math

import pytest
import torch

from llmcourse.checks import day20
from llmcourse.generate import gnmt_length_penalty
from llmcourse.generate.beam import beam_search
from checklines import fails, mistake_params, passes, rejects, stub

pytestmark = pytest.mark.usefixtures("one_thread")


# ---- the lesson's solutions (solutions/day20_greedy_and_beam_search.md) -------------------------


def sequence_log_prob(model, prompt, continuation):
    ids = torch.cat([prompt, continuation])                          # (T,)
    with torch.no_grad():
        logits = model(ids[None])[0][0]                              # (T, V)
    logp = torch.log_softmax(logits.float(), dim=-1)                 # (T, V)
    per_token = logp[:-1].gather(1, ids[1:, None])[:, 0]             # (T - 1,) log P(ids[t+1])
    return per_token[len(prompt) - 1:].sum().item()


def beam_step(beam_logp, logits, width):
    V = logits.shape[-1]
    cand = beam_logp[:, None] + torch.log_softmax(logits, dim=-1)     # (W, V)
    scores, index = cand.flatten().topk(width)                        # (width,) best first
    return scores, index // V, index % V


def gnmt_score(log_prob, length, alpha):
    return log_prob / ((5 + length) / 6) ** alpha


# ---- other correct variants ----------------------------------------------------------------------


def sequence_log_prob_tensor(model, prompt, continuation):  # a 0-d tensor, float64 sum
    ids = torch.cat([prompt, continuation])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids[None])[0][0].double(), -1)
    n = len(continuation)
    return logp[-n - 1:-1].gather(1, continuation[:, None]).sum()


def beam_step_sort(beam_logp, logits, width):  # sort instead of topk, divmod by hand
    V = logits.shape[-1]
    cand = (beam_logp.unsqueeze(1) + logits.log_softmax(-1)).reshape(-1)
    scores, index = cand.sort(descending=True)
    index = index[:width]
    return scores[:width], torch.div(index, V, rounding_mode="floor"), index - (index // V) * V


def gnmt_via_package(log_prob, length, alpha):
    return log_prob / gnmt_length_penalty(length, alpha)


# ---- every mistake of the tables is rejected with its hint ----------------------------------------


def sequence_log_prob_loop(model, prompt, continuation):  # a loop over the new tokens
    ids = torch.cat([prompt, continuation])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids.unsqueeze(0))[0].squeeze(0), dim=-1)
    total = 0.0
    for i, token in enumerate(continuation.tolist()):
        total += logp[len(prompt) - 1 + i, token].item()
    return total


def sequence_log_prob_cross_entropy(model, prompt, continuation):  # minus the mean NLL, times n
    ids = torch.cat([prompt, continuation])
    with torch.no_grad():
        logits = model(ids[None])[0][0]
    nll = torch.nn.functional.cross_entropy(logits[len(prompt) - 1:-1], continuation)
    return -nll * len(continuation)


def beam_step_transposed(beam_logp, logits, width):  # the (V, W) table, unravel_index
    cand = (beam_logp[:, None] + torch.log_softmax(logits, dim=-1)).T     # (V, W)
    scores, index = cand.flatten().topk(width)
    token, parent = torch.unravel_index(index, cand.shape)
    return scores, parent, token


def gnmt_negative_power(log_prob, length, alpha):
    return log_prob * ((5 + length) / 6) ** -alpha


@pytest.mark.parametrize("check_fn, mistake", mistake_params(day20))
def test_mistake_rejected(check_fn, mistake, capsys):
    rejects(capsys, check_fn, mistake)


@pytest.mark.parametrize("check_fn, fn", [
    (day20.check_sequence_log_prob, sequence_log_prob),
    (day20.check_sequence_log_prob, sequence_log_prob_tensor),
    (day20.check_beam_step, beam_step),
    (day20.check_beam_step, beam_step_sort),
    (day20.check_gnmt_score, gnmt_score),
    (day20.check_gnmt_score, gnmt_via_package),
    (day20.check_sequence_log_prob, sequence_log_prob_loop),
    (day20.check_sequence_log_prob, sequence_log_prob_cross_entropy),
    (day20.check_beam_step, beam_step_transposed),
    (day20.check_gnmt_score, gnmt_negative_power),
])
def test_passes_correct_answers(capsys, check_fn, fn):
    passes(capsys, check_fn, fn)


@pytest.mark.parametrize("check_fn, reference", [
    (day20.check_sequence_log_prob, day20._reference_log_prob),
    (day20.check_beam_step, day20._reference_beam_step),
    (day20.check_beam_step, beam_search),
    (day20.check_gnmt_score, gnmt_length_penalty),
])
def test_refuses_the_package_reference(capsys, check_fn, reference):
    assert len(check_fn.mistakes) >= 3
    fails(capsys, check_fn, reference, "the course's own reference")


@pytest.mark.parametrize("check_fn", [day20.check_sequence_log_prob, day20.check_beam_step,
                                      day20.check_gnmt_score])
def test_stub(capsys, check_fn):
    fails(capsys, check_fn, stub, "not done yet")


# ---- hand-worked and independent values ---------------------------------------------------------


def test_gnmt_hand_worked(capsys):
    assert gnmt_score(-12.0, 7, 1.0) == -6.0          # (5 + 7) / 6 = 2
    assert gnmt_score(-12.0, 7, 0.0) == -12.0
    assert gnmt_score(-3.25, 1, 2.0) == -3.25         # length 1: penalty 1
    fails(capsys, day20.check_gnmt_score, lambda lp, n, a: -6.5, "should be -6")


def test_beam_step_hand_worked(capsys):
    # two beams over a vocabulary of 2 with equal logits: log P = log 0.5 for every token
    scores, parent, token = beam_step(torch.tensor([0.0, -1.0]), torch.zeros(2, 2), 3)
    assert torch.allclose(scores, torch.tensor([math.log(0.5)] * 2 + [-1 + math.log(0.5)]))
    assert parent.tolist()[2] == 1 and sorted(parent.tolist()[:2]) == [0, 0]
    fails(capsys, day20.check_beam_step, lambda b, l, w: None, "returned None")
    fails(capsys, day20.check_beam_step, lambda b, l, w: (b, l), "three tensors")


def test_sequence_log_prob_by_hand(capsys):
    # independent: the log-probability as a sum of per-step log_softmax over growing prefixes
    model = day20._model()
    prompt, cont = torch.tensor([5, 1]), torch.tensor([7, 2, 9])
    with torch.no_grad():
        want = sum(torch.log_softmax(model(torch.cat([prompt, cont[:i]])[None])[0][0, -1], -1)[cont[i]]
                   for i in range(3)).item()
    assert abs(sequence_log_prob(model, prompt, cont) - want) < 1e-4
    fails(capsys, day20.check_sequence_log_prob, lambda m, p, c: torch.zeros(3), "one number")
