"""The day-36 checks pass the solutions, catch plausible mistakes, and say "not done yet" for stubs."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from llmcourse.checks import day36
from llmcourse.finetune import dpo_loss, sequence_logps
from checklines import one_line, stub


# ---- exercise 1: sequence_logps ------------------------------------------------------------------


def _logps(kind):
    def fn(logits, ids, P):
        logp = F.log_softmax(logits, -1)
        if kind == "unshifted":
            return logp.gather(-1, ids[..., None]).squeeze(-1)[:, P:].sum(-1)
        tok = logp[:, :-1].gather(-1, ids[:, 1:, None]).squeeze(-1)     # tok[:, t-1] is token t
        start = {"right": P - 1, "prompt": 0, "early": P - 2, "late": P}[kind] if kind != "mean" else P - 1
        if kind == "mean":
            return tok[:, start:].mean(-1)
        if kind == "no_sum":
            return tok[:, P - 1:]
        return tok[:, start:].sum(-1)
    return fn


def test_sequence_logps_passes_and_stub(capsys):
    assert bool(day36.check_sequence_logps(_logps("right"))) is True
    assert "passed" in one_line(capsys)
    assert bool(day36.check_sequence_logps(sequence_logps)) is True
    one_line(capsys)
    assert bool(day36.check_sequence_logps(stub)) is False
    assert "not done yet" in one_line(capsys)


@pytest.mark.parametrize("kind, hint", [
    ("unshifted", "predicts token t + 1"),
    ("prompt", "sums the prompt tokens too"),
    ("early", "starts one token early"),
    ("late", "starts one token late"),
    ("mean", "averages over the response"),
])
def test_sequence_logps_mistakes(capsys, kind, hint):
    assert bool(day36.check_sequence_logps(_logps(kind))) is False
    assert hint in one_line(capsys)


def test_sequence_logps_wrong_shape_and_probabilities(capsys):
    def no_sum(logits, ids, P):
        tok = F.log_softmax(logits, -1)[:, :-1].gather(-1, ids[:, 1:, None]).squeeze(-1)
        return tok[:, P - 1:]
    assert bool(day36.check_sequence_logps(no_sum)) is False
    assert "shape (B,)" in one_line(capsys)
    assert bool(day36.check_sequence_logps(lambda l, i, P: sequence_logps(l, i, P).exp())) is False
    assert "probabilities" in one_line(capsys)


# ---- exercise 2: dpo_loss --------------------------------------------------------------------------


def _dpo(kind):
    def fn(pc, pr, rc, rr, beta):
        b = 1.0 if kind == "no_beta" else beta
        c = b * (pc - (0 if kind == "no_ref" else rc))
        r = b * (pr - (0 if kind == "no_ref" else rr))
        m = c - r
        loss = {
            "swapped": lambda: -F.logsigmoid(-m).mean(),
            "sum": lambda: -F.logsigmoid(m).sum(),
            "no_minus": lambda: F.logsigmoid(m).mean(),
            "beta_outside": lambda: -beta * F.logsigmoid(m / beta).mean(),
            "no_log": lambda: -torch.sigmoid(m).mean(),
            "item": lambda: torch.tensor((-F.logsigmoid(m).mean()).item()),
        }.get(kind, lambda: -F.logsigmoid(m).mean())()
        if kind == "pair":
            return loss, c
        if kind == "per_pair":
            return -F.logsigmoid(m), c, r
        return loss, c, r
    return fn


def test_dpo_loss_passes_and_stub(capsys):
    assert bool(day36.check_dpo_loss(dpo_loss)) is True
    assert "passed" in one_line(capsys)
    assert bool(day36.check_dpo_loss(_dpo("right"))) is True
    one_line(capsys)
    assert bool(day36.check_dpo_loss(stub)) is False
    assert "not done yet" in one_line(capsys)


@pytest.mark.parametrize("kind, hint", [
    ("no_beta", "leave out beta"),
    ("no_ref", "leave out the reference"),
    ("swapped", "sign swapped"),
    ("sum", "sums over the pairs"),
    ("no_minus", "missing the minus sign"),
    ("beta_outside", "beta outside the log-sigmoid"),
    ("no_log", "leaves out the log"),
    ("item", "no gradient"),
    ("pair", "three things"),
    ("per_pair", "mean over the pairs"),
])
def test_dpo_loss_mistakes(capsys, kind, hint):
    assert bool(day36.check_dpo_loss(_dpo(kind))) is False
    assert hint in one_line(capsys)


# ---- exercise 3: frozen_copy -------------------------------------------------------------------------


def test_frozen_copy_passes_and_stub(capsys):
    assert bool(day36.check_frozen_copy(day36.frozen_copy)) is True
    assert "passed" in one_line(capsys)
    assert bool(day36.check_frozen_copy(stub)) is False
    assert "not done yet" in one_line(capsys)


def _freeze_in_place(m):
    m.eval()
    for p in m.parameters():
        p.requires_grad_(False)
    return m


@pytest.mark.parametrize("wrong, hint", [
    (_freeze_in_place, "the policy itself"),
    (lambda m: copy.copy(m), "shares its weights"),
    (lambda m: copy.deepcopy(m).eval(), "still require gradients"),
    (lambda m: _freeze_in_place(copy.deepcopy(m)).train(), "training mode"),
    (lambda m: (m.eval(), day36.frozen_copy(m))[1], "changed the policy"),
    (lambda m: "ref", "should return a model"),
])
def test_frozen_copy_mistakes(capsys, wrong, hint):
    assert bool(day36.check_frozen_copy(wrong)) is False
    assert hint in one_line(capsys)
