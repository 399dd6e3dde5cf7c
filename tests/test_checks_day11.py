"""The day-11 checks pass the solutions, catch plausible mistakes, and say "not done yet" for stubs."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from llmcourse.checks import day11
from llmcourse.model import MLP, CausalSelfAttention


def _last_line(capsys: pytest.CaptureFixture[str]) -> str:
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out
    return out[0]


def _stub(*args, **kwargs):
    raise NotImplementedError


# ---- exercise 1 ------------------------------------------------------------------------------


def good_gelu(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def test_gelu(capsys):
    assert day11.check_gelu_tanh(good_gelu)
    assert "passed" in _last_line(capsys)
    assert not day11.check_gelu_tanh(_stub)
    assert "not done yet" in _last_line(capsys)


@pytest.mark.parametrize(
    "fn, expected",
    [
        (F.gelu, "exact (erf) GELU"),
        (F.relu, "ReLU"),
        (lambda x: 2 * good_gelu(x), "twice too large"),
        (lambda x: 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 2))), "x ** 3"),
        (lambda x: 0.5 * x * (1 + torch.tanh((2 / math.pi) * (x + 0.044715 * x ** 3))), "square root"),
        (lambda x: None, "None"),
    ],
)
def test_gelu_mistakes(capsys, fn, expected):
    assert not day11.check_gelu_tanh(fn)
    assert expected in _last_line(capsys)


# ---- exercise 2 ------------------------------------------------------------------------------


class GoodMLP(nn.Module):
    act = staticmethod(lambda h: F.gelu(h, approximate="tanh"))
    hidden = 4

    def __init__(self, n_embd):
        super().__init__()
        self.c_fc = nn.Linear(n_embd, self.hidden * n_embd)
        self.c_proj = nn.Linear(self.hidden * n_embd, n_embd)

    def forward(self, x):
        return self.c_proj(self.act(self.c_fc(x)))


def test_mlp(capsys):
    assert day11.check_mlp(GoodMLP)
    assert "passed" in _last_line(capsys)

    class Stub(nn.Module):
        def __init__(self, n_embd):
            super().__init__()
            raise NotImplementedError

    assert not day11.check_mlp(Stub)
    assert "not done yet" in _last_line(capsys)


@pytest.mark.parametrize(
    "attrs, expected",
    [
        ({"act": staticmethod(F.gelu)}, "exact GELU"),
        ({"act": staticmethod(F.relu)}, "ReLU"),
        ({"act": staticmethod(lambda h: h)}, "activation is missing"),
        ({"hidden": 2}, "4 * n_embd"),
    ],
)
def test_mlp_mistakes(capsys, attrs, expected):
    Wrong = type("Wrong", (GoodMLP,), attrs)
    assert not day11.check_mlp(Wrong)
    assert expected in _last_line(capsys)


# ---- exercise 3 ------------------------------------------------------------------------------


def good_layer_norm(x, weight, bias, eps=1e-5):
    mean = x.mean(-1, keepdim=True)
    var = x.var(-1, keepdim=True, unbiased=False)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def test_layer_norm(capsys):
    assert day11.check_layer_norm(good_layer_norm)
    assert "passed" in _last_line(capsys)
    assert day11.check_layer_norm(lambda x, w, b, eps=1e-5: F.layer_norm(x, (x.shape[-1],), w, b, eps))
    assert "passed" in _last_line(capsys)
    assert not day11.check_layer_norm(_stub)
    assert "not done yet" in _last_line(capsys)


def test_layer_norm_mistakes(capsys):
    def unbiased(x, weight, bias, eps=1e-5):
        return (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True) + eps) * weight + bias

    assert not day11.check_layer_norm(unbiased)
    assert "unbiased" in _last_line(capsys)

    def no_affine(x, weight, bias, eps=1e-5):
        return good_layer_norm(x, torch.ones_like(weight), torch.zeros_like(bias), eps)

    assert not day11.check_layer_norm(no_affine)
    assert "not applied" in _last_line(capsys)

    def swapped(x, weight, bias, eps=1e-5):
        return good_layer_norm(x, bias, weight, eps)

    assert not day11.check_layer_norm(swapped)
    assert "swapped" in _last_line(capsys)

    def batch_axis(x, weight, bias, eps=1e-5):
        if x.shape == (1, 4):                      # pass the worked example, fail on batches
            return good_layer_norm(x, weight, bias, eps)
        mean = x.mean(0, keepdim=True)
        var = x.var(0, keepdim=True, unbiased=False)
        return (x - mean) / torch.sqrt(var + eps) * weight + bias

    assert not day11.check_layer_norm(batch_axis)
    assert "dim=-1" in _last_line(capsys)

    def eps_outside(x, weight, bias, eps=1e-5):
        return (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True, unbiased=False) + eps) * weight + bias

    assert not day11.check_layer_norm(eps_outside)
    assert "inside the square root" in _last_line(capsys)

    def eps_ignored(x, weight, bias, eps=1e-5):
        return good_layer_norm(x, weight, bias, 1e-5)

    assert not day11.check_layer_norm(eps_ignored)
    assert "eps" in _last_line(capsys)


# ---- exercise 4 ------------------------------------------------------------------------------


class GoodBlock(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = MLP(config)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))[0]
        return x + self.mlp(self.ln_2(x))


def test_block(capsys):
    assert day11.check_block(GoodBlock)
    assert "passed" in _last_line(capsys)

    class Stub(nn.Module):
        def __init__(self, config):
            super().__init__()
            raise NotImplementedError

    assert not day11.check_block(Stub)
    assert "not done yet" in _last_line(capsys)

    class StubForward(GoodBlock):
        def forward(self, x):
            raise NotImplementedError

    assert not day11.check_block(StubForward)
    assert "not done yet" in _last_line(capsys)


def _attn(self, t):
    return self.attn(t)[0]


@pytest.mark.parametrize(
    "forward, expected",
    [
        (lambda s, x: (lambda y: s.ln_2(y + s.mlp(y)))(s.ln_1(x + _attn(s, x))), "post-norm"),
        (lambda s, x: (lambda y: y + s.mlp(s.ln_2(y)))(_attn(s, s.ln_1(x))), "attention branch"),
        (lambda s, x: s.mlp(s.ln_2(x + _attn(s, s.ln_1(x)))), "MLP branch"),
        (lambda s, x: (lambda y: y + s.mlp(s.ln_1(y)))(x + _attn(s, s.ln_1(x))), "ln_2"),
        (lambda s, x: x + _attn(s, s.ln_1(x)) + s.mlp(s.ln_2(x)), "update x first"),
    ],
)
def test_block_mistakes(capsys, forward, expected):
    Wrong = type("Wrong", (GoodBlock,), {"forward": forward})
    assert not day11.check_block(Wrong)
    assert expected in _last_line(capsys)


def test_block_forgot_tuple(capsys):
    class Tuple(GoodBlock):
        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    assert not day11.check_block(Tuple)
    assert "take [0]" in _last_line(capsys)


# ---- an unfinished earlier exercise is named (issue 11) -------------------------------------


def test_block_names_unfinished_mlp(capsys):
    class MyMLP(nn.Module):  # exercise 2, still a stub
        def __init__(self, config):
            super().__init__()
            raise NotImplementedError

    class UsesMyMLP(GoodBlock):
        def __init__(self, config):
            super().__init__(config)
            self.mlp = MyMLP(config)

    assert bool(day11.check_block(UsesMyMLP)) is False
    assert "MyMLP: not done yet — finish exercise 2 first" in _last_line(capsys)


def test_block_own_stub_is_plain_not_done(capsys):
    class MyBlock(GoodBlock):
        def forward(self, x):
            raise NotImplementedError

    assert bool(day11.check_block(MyBlock)) is False
    out = _last_line(capsys)
    assert out.startswith("⏳") and "finish exercise" not in out
