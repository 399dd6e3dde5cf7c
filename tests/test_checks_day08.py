"""The day-08 checks pass the solutions, reject every mistake of their tables, and say "not done yet" for stubs."""

from __future__ import annotations

import time

import pytest
import torch

from checklines import fails, mistake_params, passes, rejects, stub
from llmcourse.checks import day08


# ---- the lesson's solutions (copied from solutions/day08_attention_as_averaging.md) ------------


def average_past(x):
    B, T, C = x.shape
    xbow = torch.zeros_like(x)  # (B, T, C)
    for b in range(B):
        for t in range(T):
            xbow[b, t] = x[b, : t + 1].mean(dim=0)  # (C,)
    return xbow


def averaging_matrix(T):
    w = torch.tril(torch.ones(T, T))       # (T, T): 1 where s <= t
    return w / w.sum(dim=1, keepdim=True)  # each row sums to 1


def causal_softmax(scores):
    T = scores.shape[-1]
    tril = torch.tril(torch.ones(T, T, device=scores.device))      # (T, T)
    return scores.masked_fill(tril == 0, float("-inf")).softmax(dim=-1)


def similarity_average(x):
    scores = x @ x.transpose(-2, -1)      # (B, T, T)
    return causal_softmax(scores) @ x     # (B, T, T) @ (B, T, C) -> (B, T, C)


# ---- other correct variants -------------------------------------------------------------------


def average_past_cumsum(x):
    return x.cumsum(1) / torch.arange(1, x.shape[1] + 1, dtype=x.dtype).view(1, -1, 1)


def averaging_matrix_loop(T):
    w = torch.zeros(T, T)
    for t in range(T):
        w[t, : t + 1] = 1.0 / (t + 1)
    return w


def causal_softmax_bool_mask(scores):
    T = scores.size(-1)
    mask = torch.ones(T, T, dtype=torch.bool, device=scores.device).triu(1)
    return torch.softmax(scores.masked_fill(mask, -1e9), dim=-1)


def similarity_average_einsum(x):
    w = causal_softmax(torch.einsum("btc,bsc->bts", x, x))
    return torch.einsum("bts,bsc->btc", w, x)


@pytest.mark.parametrize("check_fn, mistake", mistake_params(day08))
def test_mistake_rejected(check_fn, mistake, capsys):
    rejects(capsys, check_fn, mistake)


@pytest.mark.parametrize("check_fn, fn", [
    (day08.check_average_past, average_past),
    (day08.check_average_past, average_past_cumsum),
    (day08.check_averaging_matrix, averaging_matrix),
    (day08.check_averaging_matrix, averaging_matrix_loop),
    (day08.check_causal_softmax, causal_softmax),
    (day08.check_causal_softmax, causal_softmax_bool_mask),
    (day08.check_similarity_average, similarity_average),
    (day08.check_similarity_average, similarity_average_einsum),
])
def test_solution_passes(check_fn, fn, capsys):
    passes(capsys, check_fn, fn)


@pytest.mark.parametrize("check_fn", [day08.check_average_past, day08.check_averaging_matrix,
                                      day08.check_causal_softmax, day08.check_similarity_average])
def test_stub_not_done(check_fn, capsys):
    fails(capsys, check_fn, stub, "not done yet")


@pytest.mark.parametrize("check_fn, reference", [
    (day08.check_average_past, day08.reference_average_past),
    (day08.check_averaging_matrix, day08.reference_averaging_matrix),
    (day08.check_causal_softmax, day08.reference_causal_softmax),
    (day08.check_similarity_average, day08._reference_similarity_average),
])
def test_reference_refused(check_fn, reference, capsys):
    fails(capsys, check_fn, reference, "the course's own reference")


# ---- the references, against hand-worked values -------------------------------------------------


def test_references_by_hand():
    tiny = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]]])
    assert day08.reference_average_past(tiny)[0].tolist() == [[1.0, 0.0], [0.5, 0.5], [1.0, 1.0]]
    want = [1, 0, 0, 0.5, 0.5, 0, 1 / 3, 1 / 3, 1 / 3]
    assert day08.reference_averaging_matrix(3).flatten().tolist() == pytest.approx(want)
    w = day08.reference_causal_softmax(torch.tensor([[0.0, 5.0], [0.0, 0.0]]))
    assert w.tolist() == [[1.0, 0.0], [0.5, 0.5]]


# ---- behaviours other than the tables' mistakes --------------------------------------------------


def test_similarity_average_names_unfinished_causal_softmax(capsys):
    notebook = {}
    exec("def causal_softmax(scores):\n    raise NotImplementedError\n\n"
         "def similarity_average(x):\n    return causal_softmax(x @ x.transpose(-2, -1)) @ x\n", notebook)
    fails(capsys, day08.check_similarity_average, notebook["similarity_average"],
          "causal_softmax: not done yet — finish exercise 3 first")


def test_returns_a_list(capsys):
    fails(capsys, day08.check_average_past, lambda x: average_past(x).tolist(), "should be a torch tensor")
    fails(capsys, day08.check_causal_softmax, lambda s: None, "returned None")


def test_detached_output_is_named(capsys):
    fails(capsys, day08.check_causal_softmax, lambda s: causal_softmax(s).detach(),
          "does not carry gradients")


def test_checks_are_fast(capsys):
    start = time.process_time()
    for check_fn, fn in ((day08.check_average_past, average_past),
                         (day08.check_averaging_matrix, averaging_matrix),
                         (day08.check_causal_softmax, causal_softmax),
                         (day08.check_similarity_average, similarity_average)):
        assert check_fn(fn)
    assert time.process_time() - start < 2.0
