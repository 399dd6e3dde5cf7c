"""The day-34 checks pass the solutions, catch plausible mistakes, and say "not done yet" for stubs."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from llmcourse.checks import day34
from llmcourse.finetune import LoRALinear
from checklines import one_line, stub

pytestmark = pytest.mark.usefixtures("one_thread")


# ---- exercise 1: instruction_pair ------------------------------------------------------------


def test_instruction_pair(capsys):
    assert bool(day34.check_instruction_pair(day34.reference_instruction_pair)) is True
    assert "passed" in one_line(capsys)
    assert bool(day34.check_instruction_pair(stub)) is False
    assert "not done yet" in one_line(capsys)


def _pair(mask, shift=True, fill=-1):
    def fn(p, r):
        ids = list(p) + list(r)
        x = torch.tensor(ids[:-1] if shift else ids)
        y = torch.tensor(ids[1:] if shift else ids[1:] + [0])
        y[mask(len(p), len(ids))] = fill
        return x, y
    return fn


@pytest.mark.parametrize("wrong, hint", [
    (_pair(lambda n, L: slice(0, 0)), "nothing is masked"),
    (_pair(lambda n, L: slice(0, n - 1), fill=0), "are 0"),
    (_pair(lambda n, L: slice(0, n)), "one target too many"),
    (_pair(lambda n, L: slice(0, n - 2)), "one prompt target is left"),
    (_pair(lambda n, L: slice(n - 1, L)), "the response is masked"),
    (_pair(lambda n, L: slice(0, n - 1), shift=False), "ids[:-1]"),
    (lambda p, r: (torch.tensor(p + r)[:-1].float(), torch.tensor(p + r)[1:]), "int64"),
    (lambda p, r: ((p + r)[:-1], (p + r)[1:]), "torch tensor"),
    (lambda p, r: torch.tensor(p + r), "pair"),
    (_pair(lambda n, L: slice(1, n - 1)), "should be"),
])
def test_instruction_pair_mistakes(capsys, wrong, hint):
    assert bool(day34.check_instruction_pair(wrong)) is False
    assert hint in one_line(capsys)


# ---- exercise 2: LoRALinear -------------------------------------------------------------------


class _LoRA(nn.Module):
    """A configurable LoRA layer for the mistakes."""

    def __init__(self, base, r, alpha, *, factor=None, transpose=False, a_zero=False,
                 b_random=False, freeze=True, param=True, merge_in_forward=False):
        super().__init__()
        self.base = base
        if freeze:
            base.requires_grad_(False)
        a = torch.zeros(r, base.in_features)
        if not a_zero:
            nn.init.kaiming_uniform_(a, a=math.sqrt(5))
        b = torch.randn(base.out_features, r) if b_random else torch.zeros(base.out_features, r)
        if transpose:
            a, b = a.T.contiguous(), b.T.contiguous()
        self.lora_A = nn.Parameter(a) if param else a
        self.lora_B = nn.Parameter(b) if param else b
        self.factor = alpha / r if factor is None else factor(alpha, r)
        self.merge_in_forward = merge_in_forward

    def forward(self, x):
        if self.merge_in_forward:
            with torch.no_grad():
                self.base.weight += self.factor * self.lora_B @ self.lora_A
            return self.base(x)
        return self.base(x) + self.factor * x @ self.lora_A.T @ self.lora_B.T


def test_lora_linear(capsys):
    assert bool(day34.check_lora_linear(LoRALinear)) is True
    assert "passed" in one_line(capsys)
    assert bool(day34.check_lora_linear(_LoRA)) is True
    assert "passed" in one_line(capsys)


class _StubLoRA(nn.Module):
    def __init__(self, base, r, alpha):
        super().__init__()
        raise NotImplementedError


def test_lora_linear_stub(capsys):
    assert bool(day34.check_lora_linear(_StubLoRA)) is False
    assert "not done yet" in one_line(capsys)


def _variant(**kw):
    return lambda base, r, alpha: _LoRA(base, r, alpha, **kw)


@pytest.mark.parametrize("wrong, hint", [
    (_variant(transpose=True), "transposed"),
    (_variant(a_zero=True), "all zeros"),
    (_variant(b_random=True), "start at zero"),
    (_variant(freeze=False), "still trains"),
    (_variant(param=False), "nn.Parameter"),
    (_variant(factor=lambda a, r: 1.0), "not scaled"),
    (_variant(factor=lambda a, r: a), "scaled by alpha"),
    (_variant(factor=lambda a, r: r / a), "r / alpha"),
    (_variant(factor=lambda a, r: 0.0), "not added"),
    (_variant(merge_in_forward=True), "changed the base weight"),
    (lambda base, r, alpha: _LoRA(nn.Linear(10, 6), r, alpha), "passed in"),
])
def test_lora_linear_mistakes(capsys, wrong, hint):
    assert bool(day34.check_lora_linear(wrong)) is False
    assert hint in one_line(capsys)


# ---- exercise 3: training_bytes ---------------------------------------------------------------


def test_training_bytes(capsys):
    assert bool(day34.check_training_bytes(day34.reference_training_bytes)) is True
    assert "passed" in one_line(capsys)
    assert bool(day34.check_training_bytes(stub)) is False
    assert "not done yet" in one_line(capsys)


def _bytes(params=1, extra=3, only_trainable=True, per=None):
    def fn(model):
        total = 0
        for p in model.parameters():
            size = p.numel() * (p.element_size() if per is None else per)
            total += params * size + (extra * size if (p.requires_grad or not only_trainable) else 0)
        return total
    return fn


@pytest.mark.parametrize("wrong, hint", [
    (_bytes(per=1), "not bytes"),
    (_bytes(only_trainable=False), "frozen parameters"),
    (_bytes(per=4), "bfloat16"),
    (_bytes(extra=1), "AdamW's state is missing"),
    (_bytes(extra=2), "one copy short"),
    (_bytes(extra=0), "only the parameters"),
    (_bytes(extra=4), "expected"),
    (lambda m: "12", "should return an int"),
])
def test_training_bytes_mistakes(capsys, wrong, hint):
    assert bool(day34.check_training_bytes(wrong)) is False
    assert hint in one_line(capsys)
