"""The day-20 checks pass the solutions, catch plausible mistakes, and say "not done yet" for stubs."""

from __future__ import annotations

import pytest
import torch

from llmcourse.checks import day20
from llmcourse.generate import gnmt_length_penalty
from checklines import one_line, stub


# ---- exercise 1 ------------------------------------------------------------------------------


def log_prob(model, prompt, continuation, *, mistake=None):
    ids = torch.cat([prompt, continuation])
    with torch.no_grad():
        logits = model(ids[None])[0][0]
    logp = torch.log_softmax(logits, dim=-1)
    if mistake == "product":
        probs = torch.softmax(logits, -1)[:-1].gather(1, ids[1:, None])[:, 0]
        return torch.log(probs[len(prompt) - 1:].prod())
    if mistake == "probs":
        return torch.softmax(logits, -1)[:-1].gather(1, ids[1:, None])[:, 0][len(prompt) - 1:].sum()
    if mistake == "logits":
        return logits[:-1].gather(1, ids[1:, None])[:, 0][len(prompt) - 1:].sum()
    if mistake == "off_by_one":
        return logp.gather(1, ids[:, None])[:, 0][len(prompt):].sum()
    per_token = logp[:-1].gather(1, ids[1:, None])[:, 0]
    if mistake == "prompt_too":
        return per_token.sum()
    if mistake == "mean":
        return per_token[len(prompt) - 1:].mean()
    return per_token[len(prompt) - 1:].sum()


def test_sequence_log_prob_passes_solution(capsys):
    assert bool(day20.check_sequence_log_prob(log_prob)) is True
    assert one_line(capsys) == "✅ sequence_log_prob: passed"
    assert bool(day20.check_sequence_log_prob(lambda *a: float(log_prob(*a)))) is True
    assert "passed" in one_line(capsys)


@pytest.mark.parametrize("mistake, hint", [
    ("product", "underflows"),
    ("probs", "positive"),
    ("logits", "raw logits"),
    ("off_by_one", "off by one"),
    ("prompt_too", "prompt's tokens"),
    ("mean", "mean"),
])
def test_sequence_log_prob_catches_mistakes(capsys, mistake, hint):
    assert bool(day20.check_sequence_log_prob(
        lambda m, p, c: log_prob(m, p, c, mistake=mistake))) is False
    line = one_line(capsys)
    assert line.startswith("❌") and hint in line, line


def test_sequence_log_prob_stub_and_vector(capsys):
    assert bool(day20.check_sequence_log_prob(stub)) is False
    assert "not done yet" in one_line(capsys)
    assert bool(day20.check_sequence_log_prob(lambda m, p, c: torch.zeros(3))) is False
    assert "one number" in one_line(capsys)


# ---- exercise 2 ------------------------------------------------------------------------------


def beam_step(beam_logp, logits, width, *, mistake=None):
    V = logits.shape[-1]
    logp = torch.log_softmax(logits, dim=-1)
    if mistake == "probs":
        cand = beam_logp.exp()[:, None] * logp.exp()
    elif mistake == "multiply":
        cand = beam_logp[:, None] * logp
    elif mistake == "not_summed":
        cand = logp
    elif mistake == "raw_logits":
        cand = beam_logp[:, None] + logits
    else:
        cand = beam_logp[:, None] + logp
    scores, index = cand.flatten().topk(width)
    if mistake == "swapped":
        return scores, index % V, index // V
    if mistake == "one_per_beam":
        best, tok = cand.max(dim=1)
        return best, torch.arange(len(best)), tok
    return scores, index // V, index % V


def test_beam_step_passes_solution(capsys):
    assert bool(day20.check_beam_step(beam_step)) is True
    assert one_line(capsys) == "✅ beam_step: passed"


@pytest.mark.parametrize("mistake, hint", [
    ("probs", "positive"),
    ("multiply", "you multiplied log-probabilities"),
    ("not_summed", "ignore the beams' own log-probabilities"),
    ("raw_logits", "raw logits"),
    ("swapped", "swapped"),
    ("one_per_beam", "shape"),
])
def test_beam_step_catches_mistakes(capsys, mistake, hint):
    assert bool(day20.check_beam_step(lambda b, l, w: beam_step(b, l, w, mistake=mistake))) is False
    line = one_line(capsys)
    assert line.startswith("❌") and hint in line, line


def test_beam_step_stub(capsys):
    assert bool(day20.check_beam_step(stub)) is False
    assert "not done yet" in one_line(capsys)


# ---- exercise 3 ------------------------------------------------------------------------------


@pytest.mark.parametrize("fn, hint", [
    (lambda lp, n, a: lp, "log-probability itself"),
    (lambda lp, n, a: lp / n, "plain average"),
    (lambda lp, n, a: lp / ((5 + n) / 6), "exponent"),
    (lambda lp, n, a: lp * ((5 + n) / 6) ** a, "do not multiply"),
    (lambda lp, n, a: lp / ((1 + n) / 6) ** a, "should be"),
])
def test_gnmt_score_catches_mistakes(capsys, fn, hint):
    assert bool(day20.check_gnmt_score(fn)) is False
    line = one_line(capsys)
    assert line.startswith("❌") and hint in line, line


def test_gnmt_score_passes_and_stub(capsys):
    assert bool(day20.check_gnmt_score(lambda lp, n, a: lp / ((5 + n) / 6) ** a)) is True
    assert one_line(capsys) == "✅ gnmt_score: passed"
    assert bool(day20.check_gnmt_score(lambda lp, n, a: lp / gnmt_length_penalty(n, a))) is True
    assert "passed" in one_line(capsys)
    assert bool(day20.check_gnmt_score(stub)) is False
    assert "not done yet" in one_line(capsys)
