"""The day-09 checks pass the lesson's solutions, reject every mistake of their tables with its
hint, refuse the package's own references, and say "not done yet" for stubs."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from llmcourse.checks import day09
from llmcourse.model import CausalSelfAttention
from checklines import fails, mistake_params, one_line, passes, rejects, stub


# ---- the lesson's solutions (solutions/day09_scaled_dot_product_attention.md) ----------------


def attention_scores(q, k):
    return q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])   # (..., T, T)


def causal_attention(q, k, v):
    T = q.shape[-2]
    scores = attention_scores(q, k)                                     # (..., T, T)
    tril = torch.tril(torch.ones(T, T, device=q.device))
    weights = scores.masked_fill(tril == 0, float("-inf")).softmax(dim=-1)
    return weights @ v, weights                                         # (..., T, d_v), (..., T, T)


class Head(nn.Module):
    def __init__(self, n_embd, head_size):
        super().__init__()
        self.query = nn.Linear(n_embd, head_size, bias=False)
        self.key = nn.Linear(n_embd, head_size, bias=False)
        self.value = nn.Linear(n_embd, head_size, bias=False)

    def forward(self, x):
        out, _ = causal_attention(self.query(x), self.key(x), self.value(x))   # (B, T, hs)
        return out


def is_causal(fn, T=8, C=4):
    x = torch.randn(2, T, C)
    with torch.no_grad():
        base = fn(x)
        for t in range(T - 1):
            x2 = x.clone()
            x2[:, t + 1:] = torch.randn(2, T - t - 1, C)     # a different future
            if not torch.allclose(fn(x2)[:, : t + 1], base[:, : t + 1], atol=1e-6):
                return False
    return True


# ---- other correct variants a learner may write ----------------------------------------------


def scores_with_matmul(q, k):
    return torch.matmul(q, k.transpose(-1, -2)) * q.size(-1) ** -0.5


def causal_attention_bool_mask(q, k, v):
    T = q.shape[-2]
    mask = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
    future = torch.zeros(T, T, device=q.device).masked_fill(~mask, float("-inf"))
    w = F.softmax((q @ k.mT) / math.sqrt(q.shape[-1]) + future, dim=-1)
    return w @ v, w


class HeadWithSDPA(Head):
    def forward(self, x):
        return F.scaled_dot_product_attention(self.query(x), self.key(x), self.value(x), is_causal=True)


class HeadWithBuffer(Head):
    def __init__(self, n_embd, head_size, block_size=32):
        super().__init__(n_embd, head_size)
        self.register_buffer("tril", torch.tril(torch.ones(block_size, block_size)))

    def forward(self, x):
        T = x.shape[1]
        q, k, v = self.query(x), self.key(x), self.value(x)
        wei = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5
        wei = wei.masked_fill(self.tril[:T, :T] == 0, float("-inf")).softmax(-1)
        return wei @ v


def scores_einsum_ellipsis(q, k):  # einsum over any leading dimensions, scale as a power
    return torch.einsum("...td,...sd->...ts", q, k) * q.shape[-1] ** -0.5


def causal_attention_sdpa_out(q, k, v):  # the fused kernel for out, the weights written out
    scores = attention_scores(q, k)
    allowed = torch.ones_like(scores, dtype=torch.bool).tril()
    weights = torch.where(allowed, scores, float("-inf")).softmax(-1)
    return F.scaled_dot_product_attention(q, k, v, is_causal=True), weights


def is_causal_last_position_of_each_cut(fn, T=8, C=4):  # compares only position t, one batch row
    x = torch.randn(1, T, C)
    base = fn(x)
    for t in range(T - 1):
        x2 = x.clone()
        x2[:, t + 1:] = torch.randn(1, T - t - 1, C)
        if not torch.allclose(fn(x2)[:, t], base[:, t], atol=1e-6):
            return False
    return True


@pytest.mark.parametrize("check_fn, answer", [
    (day09.check_attention_scores, attention_scores),
    (day09.check_attention_scores, scores_einsum_ellipsis),
    (day09.check_causal_attention, causal_attention_sdpa_out),
    (day09.check_is_causal, is_causal_last_position_of_each_cut),
    (day09.check_attention_scores, scores_with_matmul),
    (day09.check_causal_attention, causal_attention),
    (day09.check_causal_attention, causal_attention_bool_mask),
    (day09.check_head, Head),
    (day09.check_head, HeadWithSDPA),
    (day09.check_head, HeadWithBuffer),
    (day09.check_is_causal, is_causal),
])
def test_solutions_pass(capsys, check_fn, answer):
    passes(capsys, check_fn, answer)


@pytest.mark.parametrize("check_fn, mistake", mistake_params(day09))
def test_mistake_rejected(check_fn, mistake, capsys):
    rejects(capsys, check_fn, mistake)


def test_every_check_has_three_mistakes():
    for name in ("check_attention_scores", "check_causal_attention", "check_head", "check_is_causal"):
        assert len(getattr(day09, name).mistakes) >= 3, name


@pytest.mark.parametrize("check_fn, reference", [
    (day09.check_attention_scores, day09._reference_scores),
    (day09.check_causal_attention, day09.reference_causal_attention),
    (day09.check_head, CausalSelfAttention),
    (day09.check_is_causal, day09.reference_is_causal),
])
def test_the_package_reference_is_refused(capsys, check_fn, reference):
    fails(capsys, check_fn, reference, "the course's own reference")


@pytest.mark.parametrize("check_fn", [day09.check_attention_scores, day09.check_causal_attention,
                                      day09.check_is_causal])
def test_stub_functions_are_not_done(capsys, check_fn):
    fails(capsys, check_fn, stub, "not done yet")


def test_stub_head_is_not_done(capsys):
    class StubHead(nn.Module):
        def __init__(self, n_embd, head_size):
            super().__init__()
            raise NotImplementedError

    fails(capsys, day09.check_head, StubHead, "not done yet")

    class StubForward(Head):
        def forward(self, x):
            raise NotImplementedError

    fails(capsys, day09.check_head, StubForward, "not done yet")


# ---- messages: the failing input, the largest difference, an unfinished earlier exercise -----


def test_scores_message_names_the_input(capsys):
    fails(capsys, day09.check_attention_scores, lambda q, k: attention_scores(q, k) + 0.1,
          "(on attention_scores(q, k) with q, k of shape (3, 5, 12))")


def test_scores_wrong_only_on_uneven_lengths(capsys):
    def square_only(q, k):  # builds the (T, T) matrix from q's length
        return (q @ k[..., : q.shape[-2], :].transpose(-2, -1)) / math.sqrt(q.shape[-1])

    assert bool(day09.check_attention_scores(square_only)) is False
    line = one_line(capsys)
    assert "(2, 3, 8)" in line and "(2, 6, 8)" in line, line


def test_causal_attention_wrong_gradient_is_named(capsys):
    class Leaky(torch.autograd.Function):  # right values, a gradient that skips v
        @staticmethod
        def forward(ctx, w, v):
            return w @ v

        @staticmethod
        def backward(ctx, g):
            return None, None

    def wrong_grad(q, k, v):
        _, w = causal_attention(q, k, v)
        return Leaky.apply(w, v), w

    assert bool(day09.check_causal_attention(wrong_grad)) is False
    assert "grad of" in one_line(capsys)


def attention_scores_stub(q, k):
    raise NotImplementedError


def test_causal_attention_other_stub_is_plain_not_done(capsys):
    def uses_stub(q, k, v):
        return attention_scores_stub(q, k)  # not an earlier exercise's name: plain "not done yet"

    assert bool(day09.check_causal_attention(uses_stub)) is False
    out = one_line(capsys)
    assert out.startswith("⏳") and "finish exercise" not in out


def test_causal_attention_stub_of_exercise_1_is_named(capsys):
    def attention_scores(q, k):  # the lesson's name, still a stub
        raise NotImplementedError

    def calls_exercise_1(q, k, v):
        scores = attention_scores(q, k)
        return scores, scores

    fails(capsys, day09.check_causal_attention, calls_exercise_1,
          "attention_scores: not done yet — finish exercise 1 first")


def test_head_names_unfinished_causal_attention(capsys):
    def causal_attention(q, k, v):  # the lesson's name, still a stub
        raise NotImplementedError

    class Unfinished(Head):
        def forward(self, x):
            out, _ = causal_attention(self.query(x), self.key(x), self.value(x))
            return out

    assert bool(day09.check_head(Unfinished)) is False
    out = one_line(capsys)
    assert "causal_attention: not done yet — finish exercise 2 first" in out
    assert "write your code in the cell above" not in out


def test_head_frozen_weight_gets_no_gradient(capsys):
    class Frozen(Head):
        def __init__(self, n_embd, head_size):
            super().__init__(n_embd, head_size)
            self.value.weight.requires_grad_(False)

    fails(capsys, day09.check_head, Frozen, "grad of value.weight")


@pytest.mark.parametrize("value", [None, [True], "yes"])
def test_is_causal_odd_return_values(capsys, value):
    assert bool(day09.check_is_causal(lambda fn, T=8, C=4: value)) is False
    assert one_line(capsys).startswith("❌")


def test_is_causal_message_names_the_sizes(capsys):
    fails(capsys, day09.check_is_causal, lambda fn, T=8, C=4: is_causal(fn), "T=7, C=3")


# ---- the references, against hand-worked values -----------------------------------------------


def test_reference_causal_attention_by_hand():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    k = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    out, w = day09.reference_causal_attention(q, k, torch.eye(3))
    s = 1 / math.sqrt(2)
    row1 = torch.softmax(torch.tensor([0.0, s]), 0)  # query 1 against keys 0, 1
    assert torch.allclose(w[1], torch.cat([row1, torch.zeros(1)]), atol=1e-6)
    assert torch.equal(w[0], torch.tensor([1.0, 0.0, 0.0]))
    assert torch.allclose(out, w)  # one-hot values: the output is the weights


def test_one_head_attention_matches_sdpa():
    attn = day09.one_head_attention(8)
    x = torch.randn(1, 5, 8)
    y, _ = attn(x)
    q, k, v = attn.c_attn(x).split(8, dim=-1)
    torch.testing.assert_close(y, F.scaled_dot_product_attention(q, k, v, is_causal=True), atol=1e-5, rtol=1e-5)


def test_reference_is_causal_tells_apart():
    assert day09.reference_is_causal(lambda x: x.cumsum(1))
    assert not day09.reference_is_causal(lambda x: x.flip(1).cumsum(1))


def test_causal_attention_reading_a_value_is_not_blamed_on_the_device(capsys):
    def reads_a_value(q, k, v):  # correct on a CPU and on a GPU; only "meta" has no values to read
        out, weights = causal_attention(q, k, v)
        if torch.isnan(weights).any().item():
            raise ValueError("NaN weights")
        return out, weights

    passes(capsys, day09.check_causal_attention, reads_a_value)


def test_causal_attention_cpu_scalar_fill_value_passes(capsys):
    # a 0-d CPU tensor as masked_fill's value works on a GPU; "meta" alone refuses it
    def scalar_fill(q, k, v):
        T = q.shape[-2]
        scores = q @ k.transpose(-2, -1) / torch.sqrt(torch.tensor(q.shape[-1], dtype=torch.float32))
        mask = torch.ones(T, T, device=q.device).tril() == 0
        weights = scores.masked_fill(mask, torch.tensor(float("-inf"))).softmax(-1)
        return weights @ v, weights

    passes(capsys, day09.check_causal_attention, scalar_fill)


def test_causal_attention_result_moved_to_the_cpu_is_named(capsys):
    def returns_on_cpu(q, k, v):
        out, weights = causal_attention(q, k, v)
        if out.device.type == "meta":
            return torch.zeros(out.shape), torch.zeros(weights.shape)
        return out, weights

    fails(capsys, day09.check_causal_attention, returns_on_cpu, "keep the results on q.device")
