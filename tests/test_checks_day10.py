"""The day-10 checks pass the lesson's solutions, reject every mistake of their tables with its
hint, refuse the package's own references, and say "not done yet" for stubs."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from llmcourse.checks import day10
from llmcourse.model import CausalSelfAttention
from llmcourse.model import layers as package_layers
from checklines import fails, mistake_params, one_line, passes, rejects, stub


# ---- the lesson's solutions (solutions/day10_multi_head_attention.md) ------------------------


def split_heads(t: torch.Tensor, n_head: int) -> torch.Tensor:
    """(B, T, C) -> (B, n_head, T, C // n_head)."""
    B, T, C = t.shape
    return t.view(B, T, n_head, C // n_head).transpose(1, 2)


def merge_heads(y: torch.Tensor) -> torch.Tensor:
    """(B, nh, T, hs) -> (B, T, nh * hs)."""
    B, nh, T, hs = y.shape
    return y.transpose(1, 2).contiguous().view(B, T, nh * hs)


def manual_attention(q, k, v):  # the lesson's worked example (not an exercise)
    T, hs = q.shape[-2], q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(hs)
    mask = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
    scores = scores.masked_fill(~mask, float("-inf"))
    weights = F.softmax(scores, dim=-1)
    return weights @ v, weights


class MyCausalSelfAttention(nn.Module):
    def __init__(self, n_embd: int, n_head: int):
        super().__init__()
        if n_embd % n_head != 0:
            raise ValueError(f"n_embd ({n_embd}) must be divisible by n_head ({n_head})")
        self.n_head = n_head
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=-1)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y, _ = manual_attention(q, k, v)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


# ---- other correct variants -------------------------------------------------------------------


def split_heads_reshape(t, n_head):
    B, T, C = t.shape
    return t.reshape(B, T, n_head, -1).permute(0, 2, 1, 3)


def merge_heads_reshape(y):
    B, nh, T, hs = y.shape
    return y.transpose(1, 2).reshape(B, T, nh * hs)


class WithSDPA(MyCausalSelfAttention):
    def forward(self, x):
        B, T, C = x.shape
        q, k, v = (split_heads(t, self.n_head) for t in self.c_attn(x).split(C, dim=-1))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(merge_heads(y)), None   # the package's (y, weights) form


def split_heads_slices(t, n_head):  # head h = the consecutive channels h * hs .. (h + 1) * hs - 1
    hs = t.shape[-1] // n_head
    return torch.stack([t[..., h * hs:(h + 1) * hs] for h in range(n_head)], dim=1)


def merge_heads_cat(y):  # the heads' outputs side by side, head 0 first
    return torch.cat(y.unbind(1), dim=-1)


class ChunkedViewThree(MyCausalSelfAttention):  # c_attn's output viewed as (B, T, 3, C); chunk to heads
    def __init__(self, n_embd, n_head):
        if n_embd % n_head:
            raise ValueError("n_embd must be divisible by n_head")
        super().__init__(n_embd, n_head)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).view(B, T, 3, C).unbind(2)
        q, k, v = (t.unflatten(-1, (self.n_head, -1)).permute(0, 2, 1, 3) for t in (q, k, v))
        y, _ = manual_attention(q, k, v)
        return self.c_proj(y.permute(0, 2, 1, 3).reshape(B, T, C))


@pytest.mark.parametrize("check_fn, answer", [
    (day10.check_split_heads, split_heads),
    (day10.check_split_heads, split_heads_slices),
    (day10.check_merge_heads, merge_heads_cat),
    (day10.check_attention_module, ChunkedViewThree),
    (day10.check_split_heads, split_heads_reshape),
    (day10.check_merge_heads, merge_heads),
    (day10.check_merge_heads, merge_heads_reshape),
    (day10.check_attention_module, MyCausalSelfAttention),
    (day10.check_attention_module, WithSDPA),
])
def test_solutions_pass(capsys, check_fn, answer):
    passes(capsys, check_fn, answer)


@pytest.mark.parametrize("check_fn, mistake", mistake_params(day10))
def test_mistake_rejected(check_fn, mistake, capsys):
    rejects(capsys, check_fn, mistake)


def test_every_check_has_three_mistakes():
    for name in ("check_split_heads", "check_merge_heads", "check_attention_module"):
        assert len(getattr(day10, name).mistakes) >= 3, name


@pytest.mark.parametrize("check_fn, reference", [
    (day10.check_split_heads, day10.split_heads),
    (day10.check_split_heads, package_layers.split_heads),
    (day10.check_merge_heads, day10.merge_heads),
    (day10.check_attention_module, CausalSelfAttention),
])
def test_the_package_reference_is_refused(capsys, check_fn, reference):
    fails(capsys, check_fn, reference, "the course's own reference")


@pytest.mark.parametrize("check_fn", [day10.check_split_heads, day10.check_merge_heads])
def test_stub_functions_are_not_done(capsys, check_fn):
    fails(capsys, check_fn, stub, "not done yet")


def test_attention_module_not_done(capsys):
    class Stub(nn.Module):
        def __init__(self, n_embd, n_head):
            super().__init__()
            raise NotImplementedError

    fails(capsys, day10.check_attention_module, Stub, "not done yet")

    class StubForward(MyCausalSelfAttention):
        def forward(self, x):
            raise NotImplementedError

    fails(capsys, day10.check_attention_module, StubForward, "not done yet")


def test_attention_module_names_unfinished_split_heads(capsys):
    notebook = {"torch": torch}  # the learner's namespace: split_heads is still a stub
    exec("def split_heads(t, n_head):\n    raise NotImplementedError\n", notebook)

    class UsesSplitHeads(MyCausalSelfAttention):
        def forward(self, x):
            q, k, v = self.c_attn(x).split(x.shape[-1], dim=-1)
            notebook["split_heads"](q, self.n_head)

    fails(capsys, day10.check_attention_module, UsesSplitHeads,
          "split_heads: not done yet — finish exercise 1 first")


def test_split_heads_returns_a_list(capsys):
    fails(capsys, day10.check_split_heads, lambda x, nh: list(x.unbind(-1)),
          "should be a torch tensor, got a list")


def test_split_heads_detached(capsys):
    fails(capsys, day10.check_split_heads, lambda t, n: split_heads(t, n).detach(),
          "does not carry gradients")


def test_attention_generic_mismatch_names_the_input(capsys):
    class Off(MyCausalSelfAttention):
        def forward(self, x):
            return super().forward(x) * 1.01

    assert bool(day10.check_attention_module(Off)) is False
    line = one_line(capsys)
    assert "(on MyCausalSelfAttention(24, 4) on x of shape (2, 7, 24))" in line and "differs by up to" in line


def test_attention_frozen_projection_gets_no_gradient(capsys):
    class Frozen(MyCausalSelfAttention):
        def __init__(self, n_embd, n_head):
            super().__init__(n_embd, n_head)
            self.c_proj.requires_grad_(False)

    fails(capsys, day10.check_attention_module, Frozen, "grad of c_proj.weight")


def test_attention_value_error_subclass_passes(capsys):
    class SizeError(ValueError):
        pass

    class OwnError(MyCausalSelfAttention):  # a subclass of ValueError is a ValueError
        def __init__(self, n_embd, n_head):
            if n_embd % n_head:
                raise SizeError("n_head must divide n_embd")
            super().__init__(n_embd, n_head)

    passes(capsys, day10.check_attention_module, OwnError)


# ---- the references, against hand-worked values -----------------------------------------------


def test_reference_split_merge_by_hand():
    x = torch.arange(8.0).view(1, 2, 4)           # positions [0..3], [4..7]
    h = day10.split_heads(x, 2)
    assert h.shape == (1, 2, 2, 2)
    assert h[0, 0].tolist() == [[0.0, 1.0], [4.0, 5.0]]   # head 0: channels 0-1 of both positions
    assert h[0, 1].tolist() == [[2.0, 3.0], [6.0, 7.0]]
    assert torch.equal(day10.merge_heads(h), x)


# ---- masks a learner trial wrote (written independently of the table's _Attention) ------------


class DiagonalMasked(MyCausalSelfAttention):
    """triu() as the forbidden set: position 0 sees no key at all (a row of NaN)."""

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = (split_heads(t, self.n_head) for t in self.c_attn(x).split(C, dim=-1))
        s = q @ k.transpose(-2, -1) / math.sqrt(C // self.n_head)
        s = s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(), float("-inf"))
        return self.c_proj(merge_heads(F.softmax(s, -1) @ v))


class DiagonalMaskedZeroed(DiagonalMasked):
    def forward(self, x):
        B, T, C = x.shape
        q, k, v = (split_heads(t, self.n_head) for t in self.c_attn(x).split(C, dim=-1))
        s = q @ k.transpose(-2, -1) / math.sqrt(C // self.n_head)
        s = s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(), float("-inf"))
        return self.c_proj(merge_heads(F.softmax(s, -1).nan_to_num(0.0) @ v))


class MaskedAfterSoftmax(MyCausalSelfAttention):
    def forward(self, x):
        B, T, C = x.shape
        q, k, v = (split_heads(t, self.n_head) for t in self.c_attn(x).split(C, dim=-1))
        w = F.softmax(q @ k.transpose(-2, -1) / math.sqrt(C // self.n_head), -1)
        w = w.masked_fill(torch.ones(T, T).tril() == 0, 0.0)   # rows no longer sum to 1
        return self.c_proj(merge_heads(w @ v))


@pytest.mark.parametrize("wrong", [DiagonalMasked, DiagonalMaskedZeroed])
def test_attention_diagonal_masked_is_named(capsys, wrong):
    fails(capsys, day10.check_attention_module, wrong, "the diagonal is masked too")


def test_attention_mask_after_softmax_is_named(capsys):
    fails(capsys, day10.check_attention_module, MaskedAfterSoftmax,
          "mask the scores with -inf BEFORE the softmax")
