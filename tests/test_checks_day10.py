"""The day-10 checks pass the solutions, catch plausible mistakes, and say "not done yet" for stubs."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from llmcourse.checks import day10


def _last_line(capsys: pytest.CaptureFixture[str]) -> str:
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out
    return out[0]


def _stub(*args, **kwargs):
    raise NotImplementedError


# ---- references ------------------------------------------------------------------------------


def test_reference_split_merge_by_hand():
    x = torch.arange(8.0).view(1, 2, 4)           # positions [0..3], [4..7]
    h = day10.split_heads(x, 2)
    assert h.shape == (1, 2, 2, 2)
    assert h[0, 0].tolist() == [[0.0, 1.0], [4.0, 5.0]]   # head 0: channels 0-1 of both positions
    assert h[0, 1].tolist() == [[2.0, 3.0], [6.0, 7.0]]
    assert torch.equal(day10.merge_heads(h), x)
    with pytest.raises(RuntimeError):  # the package's reference trusts its caller: view() refuses
        day10.split_heads(x, 3)


# ---- exercise 1 ------------------------------------------------------------------------------


def test_split_heads(capsys):
    def good(t, n_head):
        B, T, C = t.shape
        return t.view(B, T, n_head, C // n_head).transpose(1, 2)

    assert day10.check_split_heads(good)
    assert "passed" in _last_line(capsys)
    assert not day10.check_split_heads(_stub)
    assert "not done yet" in _last_line(capsys)

    def no_transpose(t, n_head):
        B, T, C = t.shape
        return t.view(B, T, n_head, C // n_head)

    assert not day10.check_split_heads(no_transpose)
    assert "transpose(1, 2)" in _last_line(capsys)

    def flat_view(t, n_head):
        B, T, C = t.shape
        return t.view(B, n_head, T, C // n_head)

    assert not day10.check_split_heads(flat_view)
    assert "mixes positions" in _last_line(capsys)


# ---- exercise 2 ------------------------------------------------------------------------------


def test_merge_heads(capsys):
    def good(y):
        B, nh, T, hs = y.shape
        return y.transpose(1, 2).reshape(B, T, nh * hs)

    assert day10.check_merge_heads(good)
    assert "passed" in _last_line(capsys)
    assert not day10.check_merge_heads(_stub)
    assert "not done yet" in _last_line(capsys)

    def no_transpose(y):
        B, nh, T, hs = y.shape
        return y.reshape(B, T, nh * hs)

    assert not day10.check_merge_heads(no_transpose)
    assert "head axis back" in _last_line(capsys)

    def no_contiguous(y):
        B, nh, T, hs = y.shape
        return y.transpose(1, 2).view(B, T, nh * hs)

    assert not day10.check_merge_heads(no_contiguous)
    assert ".contiguous()" in _last_line(capsys)


# ---- exercise 3 ------------------------------------------------------------------------------


class GoodAttention(nn.Module):
    """The lesson's solution, with knobs for the mistakes the check must catch."""

    scale_by = "hs"
    causal = True
    project = True

    def __init__(self, n_embd, n_head):
        super().__init__()
        if n_embd % n_head:
            raise ValueError("n_embd must be divisible by n_head")
        self.n_head = n_head
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)

    def forward(self, x):
        B, T, C = x.shape
        hs = C // self.n_head
        q, k, v = self.c_attn(x).split(C, dim=-1)
        q, k, v = (t.view(B, T, self.n_head, hs).transpose(1, 2) for t in (q, k, v))
        scale = {"hs": 1 / math.sqrt(hs), "C": 1 / math.sqrt(C), "none": 1.0}[self.scale_by]
        att = q @ k.transpose(-2, -1) * scale
        if self.causal:
            att = att.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
        y = F.softmax(att, dim=-1) @ v
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y) if self.project else y


def test_attention_module_passes(capsys):
    assert day10.check_attention_module(GoodAttention)
    assert "passed" in _last_line(capsys)

    class WithSDPA(GoodAttention):
        def forward(self, x):
            B, T, C = x.shape
            q, k, v = (day10.split_heads(t, self.n_head) for t in self.c_attn(x).split(C, dim=-1))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.c_proj(day10.merge_heads(y)), None   # the package's (y, weights) form

    assert day10.check_attention_module(WithSDPA)
    assert "passed" in _last_line(capsys)


def test_attention_module_not_done(capsys):
    class Stub(nn.Module):
        def __init__(self, n_embd, n_head):
            super().__init__()
            raise NotImplementedError

    assert not day10.check_attention_module(Stub)
    assert "not done yet" in _last_line(capsys)

    class StubForward(GoodAttention):
        def forward(self, x):
            raise NotImplementedError

    assert not day10.check_attention_module(StubForward)
    assert "not done yet" in _last_line(capsys)


@pytest.mark.parametrize(
    "knob, value, expected",
    [
        ("causal", False, "causal mask"),
        ("scale_by", "none", "not scaled"),
        ("scale_by", "C", "head size"),
        ("project", False, "c_proj"),
    ],
)
def test_attention_module_mistakes(capsys, knob, value, expected):
    Wrong = type("Wrong", (GoodAttention,), {knob: value})
    assert not day10.check_attention_module(Wrong)
    assert expected in _last_line(capsys)


def test_attention_module_structure_mistakes(capsys):
    class NoBias(GoodAttention):
        def __init__(self, n_embd, n_head):
            super().__init__(n_embd, n_head)
            self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=False)

    assert not day10.check_attention_module(NoBias)
    assert "bias" in _last_line(capsys)

    class NoValidation(GoodAttention):
        def __init__(self, n_embd, n_head):
            nn.Module.__init__(self)
            self.n_head = n_head
            self.c_attn = nn.Linear(n_embd, 3 * n_embd)
            self.c_proj = nn.Linear(n_embd, n_embd)

    assert not day10.check_attention_module(NoValidation)
    assert "ValueError" in _last_line(capsys)


# ---- an unfinished earlier exercise is named (issue 11) -------------------------------------


def test_attention_module_names_unfinished_split_heads(capsys):
    notebook = {"torch": torch}  # the learner's namespace: split_heads is still a stub
    exec("def split_heads(t, n_head):\n    raise NotImplementedError\n", notebook)

    class UsesSplitHeads(GoodAttention):
        def forward(self, x):
            q, k, v = self.c_attn(x).split(x.shape[-1], dim=-1)
            notebook["split_heads"](q, self.n_head)

    assert bool(day10.check_attention_module(UsesSplitHeads)) is False
    assert "split_heads: not done yet — finish exercise 1 first" in _last_line(capsys)


def test_split_heads_returns_a_list(capsys):
    assert bool(day10.check_split_heads(lambda x, nh: list(x.unbind(-1)))) is False
    out = _last_line(capsys)
    assert "should be a torch tensor, got a list" in out
