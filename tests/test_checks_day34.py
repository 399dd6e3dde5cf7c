"""The day-34 checks pass the solutions, reject every mistake of their tables with its hint, say
"not done yet" for stubs and refuse the package's own reference."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from llmcourse.checks import day34
from llmcourse.finetune import LoRALinear as package_lora
from checklines import fails, mistake_params, one_line, passes, rejects, stub

pytestmark = pytest.mark.usefixtures("one_thread")


# ---- the lesson's solutions (solutions/day34_fine_tuning.md) --------------------------------


def solution_instruction_pair(prompt_ids, response_ids):
    # The lesson's code with the empty-prompt fix (max(..., 0)); see test_lesson_solution_empty_prompt.
    ids = list(prompt_ids) + list(response_ids)
    x = torch.tensor(ids[:-1], dtype=torch.long)
    y = torch.tensor(ids[1:], dtype=torch.long)
    y[: max(len(prompt_ids) - 1, 0)] = -1
    return x, y


def lesson_instruction_pair(prompt_ids, response_ids):  # without max(..., 0), as a learner writes it
    ids = list(prompt_ids) + list(response_ids)
    x = torch.tensor(ids[:-1], dtype=torch.long)
    y = torch.tensor(ids[1:], dtype=torch.long)
    y[: len(prompt_ids) - 1] = -1
    return x, y


def clone_variant(prompt_ids, response_ids):  # one tensor, sliced and cloned
    ids = torch.tensor(list(prompt_ids) + list(response_ids))
    x, y = ids[:-1].clone(), ids[1:].clone()
    if len(prompt_ids) > 1:
        y[: len(prompt_ids) - 1] = -1
    return x, y


class SolutionLoRA(nn.Module):
    def __init__(self, base, r, alpha):
        super().__init__()
        self.base = base
        base.requires_grad_(False)
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r))
        self.scaling = alpha / r

    def forward(self, x):
        return self.base(x) + self.scaling * (x @ self.lora_A.T) @ self.lora_B.T


class MergedProductLoRA(SolutionLoRA):  # x @ (B A).T: the same function, another order
    def forward(self, x):
        return self.base(x) + self.scaling * x @ (self.lora_B @ self.lora_A).T


def solution_training_bytes(model):
    total = 0
    for p in model.parameters():
        size = p.numel() * p.element_size()
        total += size + (3 * size if p.requires_grad else 0)
    return total


def sum_variant(model):
    return sum(4 * p.numel() * p.element_size() if p.requires_grad else p.numel() * p.element_size()
               for p in model.parameters())


# ---- every mistake of the tables ------------------------------------------------------------


@pytest.mark.parametrize("check_fn, mistake", mistake_params(day34))
def test_mistake_rejected(check_fn, mistake, capsys):
    rejects(capsys, check_fn, mistake)


def test_named_mistakes_are_in_the_tables():
    names = {m.name for fn in (day34.check_instruction_pair, day34.check_lora_linear,
                               day34.check_training_bytes) for m in fn.mistakes}
    assert {"masks by token value", "-100", "y a view of x", "empty prompt", "tied counted twice",
            "base detached", "update under no_grad", "A detached", "A std 1"} <= names
    for fn in (day34.check_instruction_pair, day34.check_lora_linear, day34.check_training_bytes):
        assert len(fn.mistakes) >= 3


# ---- exercise 1: instruction_pair ------------------------------------------------------------


@pytest.mark.parametrize("fn", [solution_instruction_pair, clone_variant])
def test_instruction_pair_passes(fn, capsys):
    passes(capsys, day34.check_instruction_pair, fn)


def test_lesson_solution_empty_prompt(capsys):
    """The lesson's y[:len(prompt) - 1] masks all but the last target of an empty prompt."""
    fails(capsys, day34.check_instruction_pair, lesson_instruction_pair,
          "with an empty prompt len(prompt) - 1 is -1")


def test_instruction_pair_hand_worked():
    x, y = day34.reference_instruction_pair([7, 3, 9], [3, 12])
    assert x.tolist() == [7, 3, 9, 3] and y.tolist() == [-1, -1, 3, 12]
    x, y = day34.reference_instruction_pair([], [5, 8, 2])
    assert x.tolist() == [5, 8] and y.tolist() == [8, 2]


def test_instruction_pair_stub_and_reference(capsys):
    fails(capsys, day34.check_instruction_pair, stub, "not done yet")
    fails(capsys, day34.check_instruction_pair, day34.reference_instruction_pair,
          "the course's own reference")


@pytest.mark.parametrize("odd", [lambda p, r: None, lambda p, r: (None, None), lambda p, r: 3])
def test_instruction_pair_odd_returns(odd, capsys):
    assert bool(day34.check_instruction_pair(odd)) is False
    assert one_line(capsys).startswith("❌")


# ---- exercise 2: LoRALinear -------------------------------------------------------------------


@pytest.mark.parametrize("cls", [SolutionLoRA, MergedProductLoRA])
def test_lora_linear_passes(cls, capsys):
    passes(capsys, day34.check_lora_linear, cls)


def test_lora_linear_refuses_the_package_reference(capsys):
    fails(capsys, day34.check_lora_linear, package_lora, "the course's own reference")


class _StubLoRA(nn.Module):
    def __init__(self, base, r, alpha):
        super().__init__()
        raise NotImplementedError


class _HalfLoRA(SolutionLoRA):  # __init__ written, forward still the stub
    def forward(self, x):
        raise NotImplementedError


def test_lora_linear_stub(capsys):
    fails(capsys, day34.check_lora_linear, _StubLoRA, "not done yet")
    assert bool(day34.check_lora_linear(_HalfLoRA)) is False
    line = one_line(capsys)
    assert line.startswith("⏳") and "forward is not done yet" in line, line


def test_lora_kaiming_bound_hand_worked():
    a = torch.empty(4, 48)
    nn.init.kaiming_uniform_(a, a=math.sqrt(5))
    assert a.abs().max() <= 1 / math.sqrt(48)


# ---- exercise 3: training_bytes ---------------------------------------------------------------


@pytest.mark.parametrize("fn", [solution_training_bytes, sum_variant])
def test_training_bytes_passes(fn, capsys):
    passes(capsys, day34.check_training_bytes, fn)


def test_training_bytes_stub_and_reference(capsys):
    fails(capsys, day34.check_training_bytes, stub, "not done yet")
    fails(capsys, day34.check_training_bytes, day34.reference_training_bytes,
          "the course's own reference")


def test_training_bytes_hand_worked():
    # Embedding(13, 6) tied with the head (78 floats, trainable) + LayerNorm(6) (12 floats):
    # 90 float32 parameters, all trainable, 4 copies of 4 bytes each.
    assert day34.reference_training_bytes(day34._Tied(13, 6)) == 90 * 4 * 4
    # Frozen: Linear(7, 5) 40 x 4 bytes, Embedding(11, 4) bf16 44 x 2; trainable Linear(5, 3) 15 x 4 x 4.
    assert day34.reference_training_bytes(day34._Mixed()) == 160 + 88 + 240


def test_checks_are_fast():
    import time
    t = time.process_time()
    day34.check_instruction_pair(solution_instruction_pair)
    day34.check_lora_linear(SolutionLoRA)
    day34.check_training_bytes(solution_training_bytes)
    assert time.process_time() - t < 2.0


def test_second_round_correct_variants_pass(capsys):
    class LoRAFreezeAfter(nn.Module):        # freezes everything, then unfreezes A and B; F.linear
        def __init__(self, base, r, alpha):
            super().__init__()
            self.base = base
            self.lora_A = nn.Parameter(torch.empty(r, base.in_features))
            nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
            self.lora_B = nn.Parameter(torch.zeros(base.out_features, r))
            self.scaling = alpha / r
            for p in self.parameters():
                p.requires_grad_(False)
            self.lora_A.requires_grad_(True)
            self.lora_B.requires_grad_(True)

        def forward(self, x):
            update = nn.functional.linear(nn.functional.linear(x, self.lora_A), self.lora_B)
            return self.base(x) + update * self.scaling
    passes(capsys, day34.check_lora_linear, LoRAFreezeAfter)
    passes(capsys, day34.check_training_bytes, lambda model: sum(
        p.nbytes * (4 if p.requires_grad else 1) for _, p in model.named_parameters()))


def test_lora_a_initialised_with_a_5_is_rejected(capsys):
    class LoRAWithA5(nn.Module):             # a=5 instead of a=math.sqrt(5): within the bound, too small
        def __init__(self, base, r, alpha):
            super().__init__()
            self.base = base.requires_grad_(False)
            self.lora_A = nn.Parameter(torch.empty(r, base.in_features))
            nn.init.kaiming_uniform_(self.lora_A, a=5)
            self.lora_B = nn.Parameter(torch.zeros(base.out_features, r))
            self.scaling = alpha / r

        def forward(self, x):
            return self.base(x) + self.scaling * (x @ self.lora_A.T) @ self.lora_B.T
    fails(capsys, day34.check_lora_linear, LoRAWithA5, "lora_A is too small")


def test_third_round_correct_variants_pass(capsys):
    class LoRAUniformByHand(SolutionLoRA):   # U(-1/sqrt(in), 1/sqrt(in)) written out: the same law
        def __init__(self, base, r, alpha):
            super().__init__(base, r, alpha)
            k = 1 / math.sqrt(base.in_features)
            with torch.no_grad():
                self.lora_A.uniform_(-k, k)
    passes(capsys, day34.check_lora_linear, LoRAUniformByHand)

    def bytes_by_module(model):              # each module's own parameters, a tied one once
        seen, total = set(), 0
        for m in model.modules():
            for p in m.parameters(recurse=False):
                if id(p) not in seen:
                    seen.add(id(p))
                    total += p.numel() * p.element_size() * (4 if p.requires_grad else 1)
        return total
    passes(capsys, day34.check_training_bytes, bytes_by_module)
