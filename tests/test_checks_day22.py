"""The day-22 checks pass the solutions and the package, catch the usual top-k / top-p / min-p
mistakes and the wrong order with temperature, say "not done yet" for stubs (naming the earlier
exercise), print exactly one line and never raise."""

from __future__ import annotations

import pytest
import torch

from llmcourse.checks import day22
from llmcourse.generate import min_p_filter, top_k_filter, top_p_filter
from checklines import one_line, stub

NEG = float("-inf")


# ---- exercise 1: top_k_filter --------------------------------------------------------------------


def topk_solution(logits, k):
    k = min(k, logits.shape[-1])
    values, indices = torch.topk(logits, k, dim=-1)
    return torch.full_like(logits, NEG).scatter(-1, indices, values)


def topk_keeps_ties(logits, k):  # the nanoGPT one-liner: every logit equal to the k-th is kept
    k = min(k, logits.shape[-1])
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, NEG)


def topk_wrong_end(logits, k):
    k = min(k, logits.shape[-1])
    values, indices = torch.topk(logits, k, dim=-1, largest=False)
    return logits.scatter(-1, indices, NEG)


def topk_zero(logits, k):
    k = min(k, logits.shape[-1])
    values, indices = torch.topk(logits, k, dim=-1)
    return torch.zeros_like(logits).scatter(-1, indices, values)


def topk_probs(logits, k):
    return torch.softmax(topk_solution(logits, k), -1)


def topk_wrong_dim(logits, k):
    values, indices = torch.topk(logits, min(k, logits.shape[0]), dim=0)
    return torch.full_like(logits, NEG).scatter(0, indices, values)


def topk_no_clamp(logits, k):
    values, indices = torch.topk(logits, k, dim=-1)  # raises for k > V
    return torch.full_like(logits, NEG).scatter(-1, indices, values)


def topk_mask(logits, k):
    values, indices = torch.topk(logits, min(k, logits.shape[-1]), dim=-1)
    return torch.zeros_like(logits, dtype=torch.bool).scatter(-1, indices, True)


@pytest.mark.parametrize("fn", [topk_solution, top_k_filter], ids=["solution", "package"])
def test_top_k_passes(fn, capsys):
    assert bool(day22.check_top_k_filter(fn)) is True
    assert "passed" in one_line(capsys)


@pytest.mark.parametrize("fn, hint", [
    (topk_keeps_ties, "keep exactly k"),
    (topk_wrong_end, "the wrong end"),
    (topk_zero, "set the removed logits to 0"),
    (topk_probs, "returned probabilities"),
    (topk_wrong_dim, "expected exactly k = 4"),
    (topk_no_clamp, "your code raised"),
    (topk_mask, "not a mask"),
])
def test_top_k_hints(fn, hint, capsys):
    assert bool(day22.check_top_k_filter(fn)) is False
    assert hint in one_line(capsys)


# ---- exercise 2: top_p_filter --------------------------------------------------------------------


def topp_solution(logits, p):
    probs, order = torch.sort(torch.softmax(logits, -1), dim=-1, descending=True)
    before = probs.cumsum(-1) - probs
    keep = torch.zeros_like(before, dtype=torch.bool).scatter(-1, order, before < p)
    return logits.masked_fill(~keep, NEG)


def topp_excludes_crossing(logits, p):  # keeps only tokens whose cumulative sum is <= p
    probs, order = torch.sort(torch.softmax(logits, -1), dim=-1, descending=True)
    keep = torch.zeros_like(probs, dtype=torch.bool).scatter(-1, order, probs.cumsum(-1) <= p)
    return logits.masked_fill(~keep, NEG)


def topp_crossing_but_empty_ok(logits, p):  # same, but forces the top token: still drops the crossing one
    out = topp_excludes_crossing(logits, p)
    top = logits.argmax(-1, keepdim=True)
    return out.scatter(-1, top, logits.gather(-1, top))


def topp_unsorted(logits, p):  # cumsum in vocabulary order
    probs = torch.softmax(logits, -1)
    before = probs.cumsum(-1) - probs
    return logits.masked_fill(before >= p, NEG)


def topp_sorted_mask_not_scattered(logits, p):
    probs, order = torch.sort(torch.softmax(logits, -1), dim=-1, descending=True)
    before = probs.cumsum(-1) - probs
    return logits.masked_fill(before >= p, NEG)  # the sorted mask applied in vocabulary order


def topp_zero(logits, p):
    out = topp_solution(logits, p)
    return torch.where(torch.isinf(out), torch.zeros_like(out), out)


def topp_renormalised(logits, p):
    return torch.softmax(topp_solution(logits, p), -1)


def topp_too_many(logits, p):  # one token more than needed
    probs, order = torch.sort(torch.softmax(logits, -1), dim=-1, descending=True)
    before = probs.cumsum(-1) - probs
    before = torch.cat([torch.zeros_like(before[..., :1]), before[..., :-1]], -1)
    keep = torch.zeros_like(before, dtype=torch.bool).scatter(-1, order, before < p)
    return logits.masked_fill(~keep, NEG)


@pytest.mark.parametrize("fn", [topp_solution, top_p_filter], ids=["solution", "package"])
def test_top_p_passes(fn, capsys):
    assert bool(day22.check_top_p_filter(fn)) is True
    assert "passed" in one_line(capsys)


@pytest.mark.parametrize("fn, hint", [
    (topp_excludes_crossing, "removed every token of a row"),
    (topp_crossing_but_empty_ok, "dropped the token that crosses p"),
    (topp_sorted_mask_not_scattered, "wrong places"),
    (topp_zero, "set the removed logits to 0"),
    (topp_renormalised, "returned probabilities"),
    (topp_too_many, "kept more tokens than needed"),
    (topp_unsorted, "❌"),
])
def test_top_p_hints(fn, hint, capsys):
    assert bool(day22.check_top_p_filter(fn)) is False
    assert hint in one_line(capsys)


# ---- exercise 3: min_p_filter --------------------------------------------------------------------


def minp_solution(logits, p):
    probs = torch.softmax(logits, -1)
    return logits.masked_fill(probs < p * probs.amax(-1, keepdim=True), NEG)


def minp_absolute(logits, p):  # relative to 1 instead of the top probability
    return logits.masked_fill(torch.softmax(logits, -1) < p, NEG)


def minp_logits(logits, p):
    return logits.masked_fill(logits < p * logits.amax(-1, keepdim=True), NEG)


def minp_global_max(logits, p):
    probs = torch.softmax(logits, -1)
    return logits.masked_fill(probs < p * probs.amax(), NEG)


def minp_zero(logits, p):
    probs = torch.softmax(logits, -1)
    return logits.masked_fill(probs < p * probs.amax(-1, keepdim=True), 0.0)


def minp_wrong_way(logits, p):
    probs = torch.softmax(logits, -1)
    return logits.masked_fill(probs >= p * probs.amax(-1, keepdim=True), NEG)


@pytest.mark.parametrize("fn", [minp_solution, min_p_filter], ids=["solution", "package"])
def test_min_p_passes(fn, capsys):
    assert bool(day22.check_min_p_filter(fn)) is True
    assert "passed" in one_line(capsys)


@pytest.mark.parametrize("fn, hint", [
    (minp_absolute, "relative to the most likely token"),
    (minp_logits, "compared the logits"),
    (minp_global_max, "one maximum for the whole batch"),
    (minp_zero, "set the removed logits to 0"),
    (minp_wrong_way, "❌"),
])
def test_min_p_hints(fn, hint, capsys):
    assert bool(day22.check_min_p_filter(fn)) is False
    assert hint in one_line(capsys)


# ---- exercise 4: next_token_probs ----------------------------------------------------------------


def ntp_solution(logits, temperature, top_k, top_p):
    logits = logits / temperature
    if top_k is not None:
        logits = topk_solution(logits, top_k)
    if top_p is not None:
        logits = topp_solution(logits, top_p)
    return torch.softmax(logits, -1)


def ntp_not_renormalised(logits, temperature, top_k, top_p):
    probs = torch.softmax(logits / temperature, -1)
    kept = torch.isfinite(ntp_filters(logits / temperature, top_k, top_p))
    return probs * kept


def ntp_filters(logits, top_k, top_p):
    if top_k is not None:
        logits = topk_solution(logits, top_k)
    if top_p is not None:
        logits = topp_solution(logits, top_p)
    return logits


def ntp_top_p_first(logits, temperature, top_k, top_p):
    return torch.softmax(ntp_filters(logits, top_k, top_p) / temperature, -1)


def ntp_top_p_before_top_k(logits, temperature, top_k, top_p):
    logits = logits / temperature
    if top_p is not None:
        logits = topp_solution(logits, top_p)
    if top_k is not None:
        logits = topk_solution(logits, top_k)
    return torch.softmax(logits, -1)


def ntp_times(logits, temperature, top_k, top_p):
    return torch.softmax(ntp_filters(logits * temperature, top_k, top_p), -1)


def ntp_none_crashes(logits, temperature, top_k, top_p):
    return torch.softmax(topp_solution(topk_solution(logits / temperature, top_k), top_p), -1)


def ntp_uses_stub_top_k(logits, temperature, top_k, top_p):
    return torch.softmax(top_k_stub(logits / temperature, top_k or 1), -1)


def top_k_filter_stub(logits, k):  # named like the learner's unfinished exercise 1
    raise NotImplementedError


def top_k_stub(logits, k):
    return top_k_filter_stub(logits, k)


@pytest.mark.parametrize("fn", [ntp_solution, day22.reference_next_token_probs],
                         ids=["solution", "reference"])
def test_next_token_probs_passes(fn, capsys):
    assert bool(day22.check_next_token_probs(fn)) is True
    assert "passed" in one_line(capsys)


@pytest.mark.parametrize("fn, hint", [
    (ntp_not_renormalised, "renormalise"),
    (ntp_top_p_first, "applied top-p before the temperature"),
    (ntp_top_p_before_top_k, "applied top-p before top-k"),
    (ntp_times, "multiplied the logits by the temperature"),
    (ntp_none_crashes, "your code raised"),
])
def test_next_token_probs_hints(fn, hint, capsys):
    assert bool(day22.check_next_token_probs(fn)) is False
    assert hint in one_line(capsys)


def test_next_token_probs_names_the_unfinished_top_k(capsys):
    def top_k_filter(logits, k):
        raise NotImplementedError

    def next_token_probs(logits, temperature, top_k, top_p):
        return torch.softmax(top_k_filter(logits / temperature, top_k or 3), -1)

    assert bool(day22.check_next_token_probs(next_token_probs)) is False
    line = one_line(capsys)
    assert "not done yet" in line and "exercise 1" in line


# ---- stubs, one line, never raises --------------------------------------------------------------

CHECKS = [day22.check_top_k_filter, day22.check_top_p_filter, day22.check_min_p_filter,
          day22.check_next_token_probs]


@pytest.mark.parametrize("check", CHECKS)
def test_stub_is_not_done_yet(check, capsys):
    assert bool(check(stub)) is False
    assert "not done yet" in one_line(capsys)


@pytest.mark.parametrize("check", CHECKS)
def test_garbage_never_raises(check, capsys):
    for bad in (lambda *a: 1 / 0, lambda *a: "text", lambda *a: torch.zeros(0),
                lambda *a: torch.full((2, 3, 11), float("nan"))):
        assert bool(check(bad)) is False
        assert one_line(capsys).startswith("❌")
