"""The day-35 checks pass the solutions, reject every mistake of their tables with its hint (values
and gradients), say "not done yet" for stubs and refuse the package's own reference."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from llmcourse.checks import day35
from llmcourse.finetune.distill import distillation_loss as package_loss, soften as package_soften
from checklines import fails, mistake_params, one_line, passes, rejects, stub

pytestmark = pytest.mark.usefixtures("one_thread")

CHECKS = (day35.check_soften, day35.check_distillation_loss, day35.check_gap_closed)


# ---- the lesson's solutions (solutions/day35_distillation.md) and variants -------------------


def soften(logits, T):
    return torch.softmax(logits / T, dim=-1)


def distillation_loss(student_logits, teacher_logits, targets, T, alpha):
    V = student_logits.shape[-1]
    s = student_logits.reshape(-1, V)
    t = teacher_logits.reshape(-1, V).detach()
    y = targets.reshape(-1)
    keep = y != -1
    log_q = F.log_softmax(s / T, dim=-1)
    log_p = F.log_softmax(t / T, dim=-1)
    kl = (log_p.exp() * (log_p - log_q)).sum(-1)
    soft = kl[keep].mean() * T ** 2
    hard = F.cross_entropy(s, y, ignore_index=-1)
    return alpha * soft + (1 - alpha) * hard


def distillation_kl_div(student_logits, teacher_logits, targets, T, alpha):
    V = student_logits.shape[-1]
    s, y = student_logits.reshape(-1, V), targets.reshape(-1)
    with torch.no_grad():
        p = F.log_softmax(teacher_logits.reshape(-1, V) / T, -1)
    keep = y != -1
    soft = F.kl_div(F.log_softmax(s[keep] / T, -1), p[keep], log_target=True,
                    reduction="batchmean") * T * T
    return alpha * soft + (1 - alpha) * F.cross_entropy(s, y, ignore_index=-1)


def gap_closed(teacher_loss, student_loss, distilled_loss):
    return (student_loss - distilled_loss) / (student_loss - teacher_loss)


@pytest.mark.parametrize("check_fn, mistake", mistake_params(day35))
def test_mistake_rejected(check_fn, mistake, capsys):
    rejects(capsys, check_fn, mistake)


def test_every_table_has_three_mistakes():
    assert all(len(fn.mistakes) >= 3 for fn in CHECKS)


@pytest.mark.parametrize("check_fn, fn", [
    (day35.check_soften, soften),
    (day35.check_soften, lambda x, T: F.softmax(x / T, -1)),
    (day35.check_distillation_loss, distillation_loss),
    (day35.check_distillation_loss, distillation_kl_div),
    (day35.check_gap_closed, gap_closed),
    (day35.check_gap_closed, lambda t, s, d: torch.tensor((s - d) / (s - t))),  # a 0-d tensor is fine
])
def test_solutions_pass(check_fn, fn, capsys):
    passes(capsys, check_fn, fn)


@pytest.mark.parametrize("check_fn, fn", [
    (day35.check_soften, package_soften),
    (day35.check_distillation_loss, package_loss),
    (day35.check_gap_closed, day35.gap_closed),
])
def test_package_reference_refused(check_fn, fn, capsys):
    fails(capsys, check_fn, fn, "the course's own reference")


@pytest.mark.parametrize("check_fn", CHECKS)
def test_stub(check_fn, capsys):
    fails(capsys, check_fn, stub, "not done yet")


@pytest.mark.parametrize("check_fn", CHECKS)
def test_odd_return_is_one_line(check_fn, capsys):
    assert bool(check_fn(lambda *a: "x")) is False
    assert one_line(capsys).startswith("❌")


def test_distillation_loss_names_an_unfinished_soften(capsys):
    def uses_soften(s, t, y, T, alpha):
        def soften(x, T):
            raise NotImplementedError
        return soften(t, T)
    fails(capsys, day35.check_distillation_loss, uses_soften, "exercise 1")


def test_hand_worked():
    p = soften(torch.tensor([2.0, 0.0]), 2.0)          # softmax([1, 0]) = (e, 1) / (e + 1)
    assert math.isclose(p[0].item(), math.e / (math.e + 1), rel_tol=1e-6)
    # teacher = student: the KL is 0, the loss is (1 - alpha) * cross-entropy = 0.5 * ln 2
    s = torch.zeros(1, 2)
    loss = distillation_loss(s, s.clone(), torch.tensor([0]), 3.0, 0.5)
    assert math.isclose(loss.item(), 0.5 * math.log(2), rel_tol=1e-6)
    assert math.isclose(gap_closed(2.0, 2.5, 2.4), 0.2)


def test_checks_are_fast():
    import time
    t = time.process_time()
    for check_fn, fn in zip(CHECKS, (soften, distillation_loss, gap_closed)):
        check_fn(fn)
    assert time.process_time() - t < 2.0


def test_hard_term_at_temperature_is_named(capsys):
    def hard_at_T(student_logits, teacher_logits, targets, T, alpha):   # written as the trial did
        V = student_logits.shape[-1]
        s, y = student_logits.reshape(-1, V), targets.reshape(-1)
        t = teacher_logits.reshape(-1, V).detach()
        keep = y != -1
        log_q, log_p = F.log_softmax(s / T, -1), F.log_softmax(t / T, -1)
        soft = (log_p.exp() * (log_p - log_q)).sum(-1)[keep].mean() * T ** 2
        hard = F.cross_entropy(s / T, y, ignore_index=-1)               # should be at T = 1
        return alpha * soft + (1 - alpha) * hard

    fails(capsys, day35.check_distillation_loss, hard_at_T,
          "the hard term is the plain cross-entropy at temperature 1: use the student's raw logits")


def test_second_round_correct_variants_pass(capsys):
    def with_kl_div(student_logits, teacher_logits, targets, T, alpha):
        V = student_logits.shape[-1]
        s, t = student_logits.reshape(-1, V), teacher_logits.reshape(-1, V).detach()
        y = targets.reshape(-1)
        keep = y != -1
        soft = F.kl_div(F.log_softmax(s[keep] / T, -1), F.log_softmax(t[keep] / T, -1),
                        reduction="batchmean", log_target=True) * T * T
        return alpha * soft + (1 - alpha) * F.cross_entropy(s, y, ignore_index=-1)
    passes(capsys, day35.check_distillation_loss, with_kl_div)
    passes(capsys, day35.check_gap_closed, lambda t, s, d: 1 - (d - t) / (s - t))
