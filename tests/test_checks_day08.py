"""The day-08 checks pass the solutions, catch plausible mistakes, and say "not done yet" for stubs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from llmcourse.checks import day08
from checklines import one_line, stub


# ---- the lesson's solutions ------------------------------------------------------------------


def good_average_past(x):
    B, T, C = x.shape
    xbow = torch.zeros_like(x)
    for b in range(B):
        for t in range(T):
            xbow[b, t] = x[b, : t + 1].mean(dim=0)
    return xbow


def good_averaging_matrix(T):
    w = torch.tril(torch.ones(T, T))
    return w / w.sum(dim=1, keepdim=True)


def good_causal_softmax(scores):
    T = scores.shape[-1]
    tril = torch.tril(torch.ones(T, T, device=scores.device))
    return scores.masked_fill(tril == 0, float("-inf")).softmax(dim=-1)


def good_similarity_average(x):
    return good_causal_softmax(x @ x.transpose(-2, -1)) @ x


def test_solutions_pass(capsys):
    assert day08.check_average_past(good_average_past)
    assert "passed" in one_line(capsys)
    assert day08.check_averaging_matrix(good_averaging_matrix)
    assert "passed" in one_line(capsys)
    assert day08.check_causal_softmax(good_causal_softmax)
    assert "passed" in one_line(capsys)
    assert day08.check_similarity_average(good_similarity_average)
    assert "passed" in one_line(capsys)


def test_references_pass(capsys):
    assert day08.check_average_past(day08.reference_average_past)
    assert day08.check_averaging_matrix(day08.reference_averaging_matrix)
    assert day08.check_causal_softmax(day08.reference_causal_softmax)
    assert all("passed" in line for line in capsys.readouterr().out.splitlines())


@pytest.mark.parametrize("fn", ["check_average_past", "check_averaging_matrix",
                                "check_causal_softmax", "check_similarity_average"])
def test_stubs_are_not_done(capsys, fn):
    assert not getattr(day08, fn)(stub)
    assert "not done yet" in one_line(capsys)


# ---- plausible mistakes ----------------------------------------------------------------------


def test_average_past_mistakes(capsys):
    def excludes_self(x):
        out = torch.zeros_like(x)
        for t in range(x.shape[1]):
            out[:, t] = x[:, :t].mean(dim=1)
        return out

    assert not day08.check_average_past(excludes_self)
    assert "t + 1" in one_line(capsys)
    assert not day08.check_average_past(lambda x: x.mean(1, keepdim=True).expand_as(x))
    assert "future" in one_line(capsys)
    assert not day08.check_average_past(lambda x: x.cumsum(1))
    assert "running sum" in one_line(capsys)


def test_averaging_matrix_mistakes(capsys):
    assert not day08.check_averaging_matrix(lambda T: good_averaging_matrix(T).T)
    assert "LOWER" in one_line(capsys)
    assert not day08.check_averaging_matrix(lambda T: torch.tril(torch.ones(T, T)))
    assert "normalised" in one_line(capsys)

    def column_norm(T):
        w = torch.tril(torch.ones(T, T))
        return w / w.sum(dim=0, keepdim=True)

    assert not day08.check_averaging_matrix(column_norm)
    assert "columns" in one_line(capsys)


def test_causal_softmax_mistakes(capsys):
    def zero_mask(s):
        T = s.shape[-1]
        return s.masked_fill(torch.tril(torch.ones(T, T)) == 0, 0.0).softmax(-1)

    assert not day08.check_causal_softmax(zero_mask)
    assert "-inf" in one_line(capsys)
    assert not day08.check_causal_softmax(lambda s: s.softmax(-1))
    assert "not masked" in one_line(capsys)

    def mask_after(s):
        T = s.shape[-1]
        return s.softmax(-1) * torch.tril(torch.ones(T, T))

    assert not day08.check_causal_softmax(mask_after)
    assert "BEFORE" in one_line(capsys)

    def no_diagonal(s):
        T = s.shape[-1]
        return s.masked_fill(torch.tril(torch.ones(T, T), -1) == 0, float("-inf")).softmax(-1)

    assert not day08.check_causal_softmax(no_diagonal)
    assert "NaN" in one_line(capsys)

    def wrong_dim(s):
        T = s.shape[-1]
        return s.masked_fill(torch.tril(torch.ones(T, T)) == 0, float("-inf")).softmax(-2).nan_to_num(0.0)

    assert not day08.check_causal_softmax(wrong_dim)
    assert "dim=-2" in one_line(capsys)


def test_similarity_average_mistakes(capsys):
    assert not day08.check_similarity_average(day08.reference_average_past)
    assert "uniform" in one_line(capsys)
    assert not day08.check_similarity_average(lambda x: (x @ x.transpose(-2, -1)).softmax(-1) @ x)
    assert "not masked" in one_line(capsys)
    assert not day08.check_similarity_average(
        lambda x: F.scaled_dot_product_attention(x, x, x, is_causal=True))
    assert "sqrt" in one_line(capsys)
    assert not day08.check_similarity_average(lambda x: good_causal_softmax(x @ x.transpose(-2, -1)))
    assert "shape" in one_line(capsys)


def test_similarity_average_names_unfinished_causal_softmax(capsys):
    notebook = {}
    exec("def causal_softmax(scores):\n    raise NotImplementedError\n\n"
         "def similarity_average(x):\n    return causal_softmax(x @ x.transpose(-2, -1)) @ x\n", notebook)
    assert bool(day08.check_similarity_average(notebook["similarity_average"])) is False
    assert "causal_softmax: not done yet — finish exercise 3 first" in one_line(capsys)
