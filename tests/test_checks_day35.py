"""The day-35 checks pass the solutions, catch plausible mistakes, and say "not done yet" for stubs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from llmcourse.checks import day35
from llmcourse.finetune import distillation_loss, soften
from checklines import one_line, stub


# ---- exercise 1: soften ----------------------------------------------------------------------


def test_soften_passes_and_stub(capsys):
    assert bool(day35.check_soften(lambda x, T: torch.softmax(x / T, dim=-1))) is True
    assert "passed" in one_line(capsys)
    assert bool(day35.check_soften(soften)) is True
    one_line(capsys)
    assert bool(day35.check_soften(stub)) is False
    assert "not done yet" in one_line(capsys)


@pytest.mark.parametrize("wrong, hint", [
    (lambda x, T: torch.softmax(x * T, -1), "multiplies the logits by T"),
    (lambda x, T: torch.softmax(x, -1), "ignores T"),
    (lambda x, T: x / T, "apply the softmax"),
    (lambda x, T: torch.log_softmax(x / T, -1), "log-probabilities"),
    (lambda x, T: torch.softmax(x / T, 0), "sum to 1"),
])
def test_soften_mistakes(capsys, wrong, hint):
    assert bool(day35.check_soften(wrong)) is False
    assert hint in one_line(capsys)


# ---- exercise 2: distillation_loss -------------------------------------------------------------


def _make(kind):
    def loss(s, t, y, T, alpha):
        V = s.shape[-1]
        s2, t2, y2 = s.reshape(-1, V), t.reshape(-1, V), y.reshape(-1)
        keep = y2 != -1
        hard = F.cross_entropy(s2, y2, ignore_index=-1)
        lt = F.log_softmax(t2 / T, -1)
        ls = F.log_softmax(s2 / (1 if kind == "unsoft" else T), -1)
        if kind == "reverse":
            rows = (ls.exp() * (ls - lt)).sum(-1)
        else:
            rows = (lt.exp() * (lt - ls)).sum(-1)
        kl = rows.mean() if kind == "all_positions" else rows[keep].mean()
        scale = {"no_T2": 1, "T": T, "vocab_mean": T * T / V}.get(kind, T * T)
        a = 1 - alpha if kind == "swapped" else alpha
        if kind == "item":
            return (a * kl * scale + (1 - a) * hard).item()
        return a * kl * scale + (1 - a) * hard
    return loss


def test_distillation_loss_passes_and_stub(capsys):
    assert bool(day35.check_distillation_loss(distillation_loss)) is True
    assert "passed" in one_line(capsys)
    assert bool(day35.check_distillation_loss(_make("right"))) is True
    one_line(capsys)
    assert bool(day35.check_distillation_loss(stub)) is False
    assert "not done yet" in one_line(capsys)


def test_distillation_loss_names_an_unfinished_soften(capsys):
    def uses_soften(s, t, y, T, alpha):
        def soften(x, T):
            raise NotImplementedError
        return soften(t, T)
    assert bool(day35.check_distillation_loss(uses_soften)) is False
    assert "exercise 1" in one_line(capsys)


@pytest.mark.parametrize("kind, hint", [
    ("no_T2", "leaves out the T**2"),
    ("T", "the factor is T ** 2"),
    ("swapped", "swaps the weights"),
    ("reverse", "KL(student || teacher)"),
    ("unsoft", "softens only the teacher"),
    ("vocab_mean", "averages the KL over the vocabulary"),
    ("all_positions", "target is -1 too"),
    ("item", "no gradient"),
])
def test_distillation_loss_mistakes(capsys, kind, hint):
    assert bool(day35.check_distillation_loss(_make(kind))) is False
    assert hint in one_line(capsys)


def test_distillation_loss_targets_not_ignored(capsys):
    def no_ignore(s, t, y, T, alpha):
        return F.cross_entropy(s.reshape(-1, s.shape[-1]), y.reshape(-1))
    assert bool(day35.check_distillation_loss(no_ignore)) is False
    assert "ignore_index=-1" in one_line(capsys)


# ---- exercise 3: gap_closed ----------------------------------------------------------------------


def test_gap_closed_passes_and_stub(capsys):
    assert bool(day35.check_gap_closed(lambda t, s, d: (s - d) / (s - t))) is True
    assert "passed" in one_line(capsys)
    assert bool(day35.check_gap_closed(stub)) is False
    assert "not done yet" in one_line(capsys)


@pytest.mark.parametrize("wrong, hint", [
    (lambda t, s, d: 100 * (s - d) / (s - t), "percentage"),
    (lambda t, s, d: (d - t) / (s - t), "still open"),
    (lambda t, s, d: (s - t) / (s - d), "upside down"),
    (lambda t, s, d: (s - d) / s, "divides by the student's loss"),
    (lambda t, s, d: "0.25", "should return a number"),
])
def test_gap_closed_mistakes(capsys, wrong, hint):
    assert bool(day35.check_gap_closed(wrong)) is False
    assert hint in one_line(capsys)
