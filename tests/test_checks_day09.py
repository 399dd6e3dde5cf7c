"""The day-09 checks pass the solutions, catch plausible mistakes, and say "not done yet" for stubs."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from llmcourse.checks import day09
from checklines import one_line, stub


# ---- the lesson's solutions ------------------------------------------------------------------


def good_scores(q, k):
    return q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])


def good_causal_attention(q, k, v):
    T = q.shape[-2]
    scores = good_scores(q, k)
    scores = scores.masked_fill(torch.tril(torch.ones(T, T)) == 0, float("-inf"))
    weights = F.softmax(scores, dim=-1)
    return weights @ v, weights


class GoodHead(nn.Module):
    def __init__(self, n_embd, head_size):
        super().__init__()
        self.query = nn.Linear(n_embd, head_size, bias=False)
        self.key = nn.Linear(n_embd, head_size, bias=False)
        self.value = nn.Linear(n_embd, head_size, bias=False)

    def forward(self, x):
        out, _ = good_causal_attention(self.query(x), self.key(x), self.value(x))
        return out


def good_is_causal(fn, T=8, C=4):
    x = torch.randn(2, T, C)
    base = fn(x)
    for t in range(T - 1):
        x2 = x.clone()
        x2[:, t + 1:] = torch.randn(2, T - t - 1, C)
        if not torch.allclose(fn(x2)[:, : t + 1], base[:, : t + 1], atol=1e-6):
            return False
    return True


def test_solutions_pass(capsys):
    assert day09.check_attention_scores(good_scores)
    assert day09.check_causal_attention(good_causal_attention)
    assert day09.check_causal_attention(day09.reference_causal_attention)
    assert day09.check_head(GoodHead)
    assert day09.check_is_causal(good_is_causal)
    assert day09.check_is_causal(day09.reference_is_causal)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 6 and all("passed" in line for line in lines), lines


@pytest.mark.parametrize("fn", ["check_attention_scores", "check_causal_attention", "check_is_causal"])
def test_stub_functions_are_not_done(capsys, fn):
    assert not getattr(day09, fn)(stub)
    assert "not done yet" in one_line(capsys)


def test_stub_head_is_not_done(capsys):
    class StubHead(nn.Module):
        def __init__(self, n_embd, head_size):
            super().__init__()
            raise NotImplementedError

    assert not day09.check_head(StubHead)
    assert "not done yet" in one_line(capsys)

    class StubForward(GoodHead):
        def forward(self, x):
            raise NotImplementedError

    assert not day09.check_head(StubForward)
    assert "not done yet" in one_line(capsys)


# ---- plausible mistakes ----------------------------------------------------------------------


def test_scores_mistakes(capsys):
    assert not day09.check_attention_scores(lambda q, k: q @ k.transpose(-2, -1))
    assert "not scaled" in one_line(capsys)
    assert not day09.check_attention_scores(lambda q, k: q @ k.transpose(-2, -1) / q.shape[-1])
    assert "square root" in one_line(capsys)
    assert not day09.check_attention_scores(lambda q, k: good_scores(k, q))
    assert "swapped" in one_line(capsys)


def test_causal_attention_mistakes(capsys):
    def no_mask(q, k, v):
        w = good_scores(q, k).softmax(-1)
        return w @ v, w

    assert not day09.check_causal_attention(no_mask)
    assert "not masked" in one_line(capsys)

    def zero_mask(q, k, v):
        T = q.shape[-2]
        w = good_scores(q, k).masked_fill(torch.tril(torch.ones(T, T)) == 0, 0.0).softmax(-1)
        return w @ v, w

    assert not day09.check_causal_attention(zero_mask)
    assert "-inf" in one_line(capsys)

    def unscaled(q, k, v):
        return good_causal_attention(q * math.sqrt(q.shape[-1]), k, v)

    assert not day09.check_causal_attention(unscaled)
    assert "not scaled" in one_line(capsys)

    def no_diagonal(q, k, v):
        T = q.shape[-2]
        s = good_scores(q, k).masked_fill(torch.tril(torch.ones(T, T), -1) == 0, float("-inf"))
        w = s.softmax(-1)
        return w @ v, w

    assert not day09.check_causal_attention(no_diagonal)
    assert "NaN" in one_line(capsys)

    assert not day09.check_causal_attention(lambda q, k, v: good_causal_attention(q, k, v)[0])
    assert "pair" in one_line(capsys)


def test_head_mistakes(capsys):
    class Unscaled(GoodHead):
        def forward(self, x):
            q, k, v = self.query(x), self.key(x), self.value(x)
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=1.0)

    assert not day09.check_head(Unscaled)
    assert "CausalSelfAttention" in one_line(capsys)

    class ScaleByEmbd(GoodHead):
        def forward(self, x):
            q, k, v = self.query(x), self.key(x), self.value(x)
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=1 / math.sqrt(x.shape[-1]))

    assert not day09.check_head(ScaleByEmbd)
    assert "head_size" in one_line(capsys)

    class NoMask(GoodHead):
        def forward(self, x):
            return F.scaled_dot_product_attention(self.query(x), self.key(x), self.value(x))

    assert not day09.check_head(NoMask)
    assert "not masked" in one_line(capsys)

    class WithBias(GoodHead):
        def __init__(self, n_embd, head_size):
            super().__init__(n_embd, head_size)
            self.key = nn.Linear(n_embd, head_size)

    assert not day09.check_head(WithBias)
    assert "bias=False" in one_line(capsys)

    class Swapped(GoodHead):
        def forward(self, x):
            return F.scaled_dot_product_attention(self.key(x), self.query(x), self.value(x), is_causal=True)

    assert not day09.check_head(Swapped)
    assert "swapped" in one_line(capsys)


def test_is_causal_mistakes(capsys):
    def only_last_token(fn, T=8, C=4):
        x = torch.randn(2, T, C)
        x2 = x.clone()
        x2[:, -1] = torch.randn(2, C)
        return torch.allclose(fn(x)[:, :-1], fn(x2)[:, :-1])

    assert not day09.check_is_causal(only_last_token)
    assert "every cut" in one_line(capsys)

    def only_first_position(fn, T=8, C=4):
        x = torch.randn(2, T, C)
        x2 = x.clone()
        x2[:, 1:] = torch.randn(2, T - 1, C)
        return torch.allclose(fn(x)[:, 0], fn(x2)[:, 0])

    assert not day09.check_is_causal(only_first_position)
    assert "leaks the future" in one_line(capsys)

    def compares_everything(fn, T=8, C=4):
        x = torch.randn(2, T, C)
        x2 = x.clone()
        x2[:, -1] += 1
        return torch.allclose(fn(x), fn(x2))

    assert not day09.check_is_causal(compares_everything)
    assert "but it is" in one_line(capsys)

    assert not day09.check_is_causal(lambda fn, T=8, C=4: True)
    assert "leaks the future" in one_line(capsys)

    assert not day09.check_is_causal(lambda fn, T=8, C=4: torch.tensor([True, False]))
    assert "one True or False" in one_line(capsys)


def test_one_head_attention_matches_manual():
    attn = day09.one_head_attention(8)
    x = torch.randn(1, 5, 8)
    y, att = attn(x, need_weights=True)
    q, k, v = attn.c_attn(x).split(8, dim=-1)
    out, w = day09.reference_causal_attention(q, k, v)
    torch.testing.assert_close(y, out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(att[:, 0], w, atol=1e-5, rtol=1e-5)


# ---- holes found by a learner's walk-through (issue 11) ------------------------------------


@pytest.mark.parametrize("scale", [4.0, math.sqrt(16)])
def test_scores_scaled_by_a_global_or_a_typed_number(capsys, scale):
    """The lesson's head_size is 16: dividing by its root (or by 4) must not pass."""
    assert bool(day09.check_attention_scores(lambda q, k: q @ k.transpose(-2, -1) / scale)) is False
    out = one_line(capsys)
    assert "sqrt(16)" in out and "q.shape[-1]" in out


def test_scores_with_k_T_on_a_batch(capsys):
    assert bool(day09.check_attention_scores(lambda q, k: q @ k.T / math.sqrt(q.shape[-1]))) is False
    out = one_line(capsys)
    assert "k.T reverses" in out and "k.transpose(-2, -1)" in out
    assert "(3, 5, 12)" in out  # the failing input is shown


def _attention_with(allowed_fn, fill=float("-inf")):
    def fn(q, k, v):
        T = q.shape[-2]
        scores = good_scores(q, k).masked_fill(~allowed_fn(torch.ones(T, T).bool()), fill)
        w = scores.softmax(-1)
        return w @ v, w

    return fn


@pytest.mark.parametrize("allowed, hint", [
    (lambda m: m.tril(1), "diagonal=1"),
    (lambda m: m.triu(), "wrong side"),
])
def test_causal_attention_mask_on_the_wrong_side(capsys, allowed, hint):
    assert bool(day09.check_causal_attention(_attention_with(allowed))) is False
    out = one_line(capsys)
    assert hint in out and "mask with float('-inf')" not in out


def test_causal_attention_masked_with_zero(capsys):
    assert bool(day09.check_causal_attention(_attention_with(lambda m: m.tril(), fill=0.0))) is False
    assert "mask with float('-inf')" in one_line(capsys)


def test_causal_attention_other_stub_is_plain_not_done(capsys):
    def uses_stub(q, k, v):
        return attention_scores_stub(q, k)  # not an earlier exercise's name: plain "not done yet"

    assert bool(day09.check_causal_attention(uses_stub)) is False
    out = one_line(capsys)
    assert out.startswith("⏳") and "finish exercise" not in out


def attention_scores(q, k):  # the lesson's name, still a stub
    raise NotImplementedError


def attention_scores_stub(q, k):
    raise NotImplementedError


def causal_attention(q, k, v):  # the lesson's name, still a stub
    raise NotImplementedError


def test_causal_attention_stub_of_exercise_1_is_named(capsys):
    def calls_exercise_1(q, k, v):
        scores = attention_scores(q, k)
        return scores, scores

    assert bool(day09.check_causal_attention(calls_exercise_1)) is False
    assert "attention_scores: not done yet — finish exercise 1 first" in one_line(capsys)


def test_head_names_unfinished_causal_attention(capsys):
    class Head(GoodHead):
        def forward(self, x):
            out, _ = causal_attention(self.query(x), self.key(x), self.value(x))
            return out

    assert bool(day09.check_head(Head)) is False
    out = one_line(capsys)
    assert "causal_attention: not done yet — finish exercise 2 first" in out
    assert "write your code in the cell above" not in out


def test_head_scaled_by_n_embd(capsys):
    class Head(GoodHead):
        def forward(self, x):
            q, k, v = self.query(x), self.key(x), self.value(x)
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=1 / math.sqrt(x.shape[-1]))

    assert bool(day09.check_head(Head)) is False
    assert "sqrt(head_size)" in one_line(capsys)


def test_is_causal_ignoring_its_arguments(capsys):
    def uses_defaults(fn, T=8, C=4):
        return good_is_causal(fn)  # always T=8, C=4

    assert bool(day09.check_is_causal(uses_defaults)) is False
    out = one_line(capsys)
    assert "T=7, C=3" in out
