"""The day-11 checks pass the lesson's solutions, reject every mistake of their tables with its
hint, refuse the package's own references, and say "not done yet" for stubs."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from llmcourse.checks import day11
from llmcourse.model import MLP, Block, CausalSelfAttention, GPTConfig
from llmcourse.model import functional as package_functional
from checklines import fails, mistake_params, one_line, passes, rejects, stub


# ---- the lesson's solutions (solutions/day11_transformer_block.md) ---------------------------


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


class MyMLP(nn.Module):
    def __init__(self, n_embd: int):
        super().__init__()
        self.c_fc = nn.Linear(n_embd, 4 * n_embd)
        self.c_proj = nn.Linear(4 * n_embd, n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))  # (B, T, 4C) -> (B, T, C)


def layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    mean = x.mean(dim=-1, keepdim=True)                      # (..., 1)
    var = x.var(dim=-1, keepdim=True, unbiased=False)        # (..., 1)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


class MyBlock(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))[0]     # communicate
        x = x + self.mlp(self.ln_2(x))         # compute
        return x


# ---- other correct variants -------------------------------------------------------------------


class MLPWithOwnGelu(MyMLP):
    def forward(self, x):
        return self.c_proj(gelu_tanh(self.c_fc(x)))


class MLPSequential(nn.Module):  # a learner who keeps the GELU as a module
    def __init__(self, n_embd):
        super().__init__()
        self.c_fc = nn.Linear(n_embd, 4 * n_embd)
        self.gelu = nn.GELU(approximate="tanh")
        self.c_proj = nn.Linear(4 * n_embd, n_embd)

    def forward(self, x):
        return self.c_proj(self.gelu(self.c_fc(x)))


def layer_norm_rsqrt(x, weight, bias, eps=1e-5):
    xc = x - x.mean(-1, keepdim=True)
    return xc * torch.rsqrt(xc.pow(2).mean(-1, keepdim=True) + eps) * weight + bias


class BlockReturningPair(MyBlock):  # the package's (x, weights) convention
    def forward(self, x):
        a, att = self.attn(self.ln_1(x))
        x = x + a
        return x + self.mlp(self.ln_2(x)), att


@pytest.mark.parametrize("check_fn, answer", [
    (day11.check_gelu_tanh, gelu_tanh),
    (day11.check_gelu_tanh, lambda x: F.gelu(x, approximate="tanh")),
    (day11.check_mlp, MyMLP),
    (day11.check_mlp, MLPWithOwnGelu),
    (day11.check_mlp, MLPSequential),
    (day11.check_layer_norm, layer_norm),
    (day11.check_layer_norm, layer_norm_rsqrt),
    (day11.check_layer_norm, lambda x, w, b, eps=1e-5: F.layer_norm(x, (x.shape[-1],), w, b, eps)),
    (day11.check_block, MyBlock),
    (day11.check_block, BlockReturningPair),
])
def test_solutions_pass(capsys, check_fn, answer):
    passes(capsys, check_fn, answer)


@pytest.mark.parametrize("check_fn, mistake", mistake_params(day11))
def test_mistake_rejected(check_fn, mistake, capsys):
    rejects(capsys, check_fn, mistake)


def test_every_check_has_three_mistakes():
    for name in ("check_gelu_tanh", "check_mlp", "check_layer_norm", "check_block"):
        assert len(getattr(day11, name).mistakes) >= 3, name


@pytest.mark.parametrize("check_fn, reference", [
    (day11.check_mlp, MLP),
    (day11.check_block, Block),
    (day11.check_layer_norm, day11._reference_layer_norm),
    (day11.check_gelu_tanh, day11._gelu_formula),
    (day11.check_gelu_tanh, package_functional.gelu),
])
def test_the_package_reference_is_refused(capsys, check_fn, reference):
    fails(capsys, check_fn, reference, "the course's own reference")


@pytest.mark.parametrize("check_fn", [day11.check_gelu_tanh, day11.check_layer_norm])
def test_stub_functions_are_not_done(capsys, check_fn):
    fails(capsys, check_fn, stub, "not done yet")


@pytest.mark.parametrize("check_fn, base", [(day11.check_mlp, MyMLP), (day11.check_block, MyBlock)])
def test_stub_modules_are_not_done(capsys, check_fn, base):
    class Stub(nn.Module):
        def __init__(self, arg):
            super().__init__()
            raise NotImplementedError

    fails(capsys, check_fn, Stub, "not done yet")

    class StubForward(base):
        def forward(self, x):
            raise NotImplementedError

    fails(capsys, check_fn, StubForward, "not done yet")


# ---- gradients, dropout and train/eval mode ---------------------------------------------------


def test_layer_norm_detached_statistics(capsys):
    def detached(x, weight, bias, eps=1e-5):  # right values, wrong gradient w.r.t. x
        mean = x.mean(-1, keepdim=True).detach()
        var = x.var(-1, keepdim=True, unbiased=False).detach()
        return (x - mean) / torch.sqrt(var + eps) * weight + bias

    fails(capsys, day11.check_layer_norm, detached, "['grad of x'] differs")


def test_mlp_frozen_layer_gets_no_gradient(capsys):
    class Frozen(MyMLP):
        def __init__(self, n_embd):
            super().__init__(n_embd)
            self.c_fc.requires_grad_(False)

    fails(capsys, day11.check_mlp, Frozen, "grad of c_fc.weight")


def test_mlp_functional_dropout_of_its_own_fails_in_train_mode(capsys):
    class FunctionalDropout(MyMLP):  # no nn.Dropout module to see: only train() mode shows it
        def forward(self, x):
            return F.dropout(super().forward(x), 0.1, self.training)

    fails(capsys, day11.check_mlp, FunctionalDropout, "in train() mode")


def test_mlp_dropout_with_p_zero_passes(capsys):
    class ZeroDropout(MyMLP):  # nn.Dropout(0.0), like the package's MLP at dropout=0: harmless
        def __init__(self, n_embd):
            super().__init__(n_embd)
            self.dropout = nn.Dropout(0.0)

        def forward(self, x):
            return self.dropout(super().forward(x))

    passes(capsys, day11.check_mlp, ZeroDropout)


def test_block_own_dropout_on_branches_in_eval_is_harmless_but_in_train_is_not(capsys):
    class ExtraBranchDropout(MyBlock):  # a second dropout on each branch: differs in train mode
        def __init__(self, config):
            super().__init__(config)
            self.drop = nn.Dropout(config.dropout)

        def forward(self, x):
            x = x + self.drop(self.attn(self.ln_1(x))[0])
            return x + self.drop(self.mlp(self.ln_2(x)))

    assert bool(day11.check_block(ExtraBranchDropout)) is False
    assert "train() mode" in one_line(capsys)


def test_block_always_in_train_mode(capsys):
    class IgnoresEval(MyBlock):
        def forward(self, x):
            self.train()  # dropout stays on in eval mode
            return super().forward(x)

    assert bool(day11.check_block(IgnoresEval)) is False
    assert "eval() mode" in one_line(capsys)


def test_gelu_message_names_the_input(capsys):
    fails(capsys, day11.check_gelu_tanh, lambda x: gelu_tanh(x) + 1e-3, "(on gelu_tanh(x of shape (4, 7), float32))")


def test_gelu_odd_return(capsys):
    fails(capsys, day11.check_gelu_tanh, lambda x: x.tolist(), "should be a torch tensor")


# ---- an unfinished earlier exercise is named --------------------------------------------------


def test_block_names_unfinished_mlp(capsys):
    class MyMLP(nn.Module):  # exercise 2, still a stub
        def __init__(self, config):
            super().__init__()
            raise NotImplementedError

    class UsesMyMLP(MyBlock):
        def __init__(self, config):
            super().__init__(config)
            self.mlp = MyMLP(config)

    fails(capsys, day11.check_block, UsesMyMLP, "MyMLP: not done yet — finish exercise 2 first")


def test_block_own_stub_is_plain_not_done(capsys):
    class MyBlockStub(MyBlock):
        def forward(self, x):
            raise NotImplementedError

    assert bool(day11.check_block(MyBlockStub)) is False
    out = one_line(capsys)
    assert out.startswith("⏳") and "finish exercise" not in out


# ---- hand-worked values -----------------------------------------------------------------------


def test_layer_norm_worked_example():
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0]])  # mean 2.5, biased variance 1.25
    want = (x - 2.5) / math.sqrt(1.25 + 1e-5)
    assert torch.allclose(layer_norm(x, torch.ones(4), torch.zeros(4)), want, atol=1e-6)


def test_gelu_hand_values():
    assert abs(gelu_tanh(torch.tensor(0.0)).item()) < 1e-12
    assert abs(gelu_tanh(torch.tensor(1.0)).item() - 0.5 * (1 + math.tanh(math.sqrt(2 / math.pi) * 1.044715))) < 1e-6
