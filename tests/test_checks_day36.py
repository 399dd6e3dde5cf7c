"""The day-36 checks pass the solutions, reject every mistake of their tables with its hint (values
and gradients), say "not done yet" for stubs and refuse the package's own reference."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from llmcourse.checks import day36
from llmcourse.finetune import dpo_loss as package_dpo, sequence_logps as package_logps
from checklines import fails, mistake_params, one_line, passes, rejects, stub

pytestmark = pytest.mark.usefixtures("one_thread")

CHECKS = (day36.check_sequence_logps, day36.check_dpo_loss, day36.check_frozen_copy)


# ---- the lesson's solutions (solutions/day36_preferences_and_what_comes_next.md) and variants ----


def sequence_logps(logits, input_ids, prompt_len):
    logp = F.log_softmax(logits[:, prompt_len - 1:-1], dim=-1)
    targets = input_ids[:, prompt_len:]
    return logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1).sum(-1)


def sequence_logps_ce(logits, input_ids, prompt_len):
    lg = logits[:, prompt_len - 1:-1]
    ce = F.cross_entropy(lg.reshape(-1, lg.shape[-1]), input_ids[:, prompt_len:].reshape(-1),
                         reduction="none")
    return -ce.view(lg.shape[0], -1).sum(-1)


def dpo_loss(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta):
    chosen_rewards = beta * (policy_chosen_logps - ref_chosen_logps)
    rejected_rewards = beta * (policy_rejected_logps - ref_rejected_logps)
    loss = -F.logsigmoid(chosen_rewards - rejected_rewards).mean()
    return loss, chosen_rewards.detach(), rejected_rewards.detach()


def dpo_loss_softplus(pc, pr, rc, rr, beta):  # -logsigmoid(m) = softplus(-m)
    c, r = beta * (pc - rc), beta * (pr - rr)
    return F.softplus(-(c - r)).mean(), c.detach(), r.detach()


def frozen_copy(model):
    ref = copy.deepcopy(model).eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    return ref


@pytest.mark.parametrize("check_fn, mistake", mistake_params(day36))
def test_mistake_rejected(check_fn, mistake, capsys):
    rejects(capsys, check_fn, mistake)


def test_every_table_has_three_mistakes():
    assert all(len(fn.mistakes) >= 3 for fn in CHECKS)


@pytest.mark.parametrize("check_fn, fn", [
    (day36.check_sequence_logps, sequence_logps),
    (day36.check_sequence_logps, sequence_logps_ce),
    (day36.check_dpo_loss, dpo_loss),
    (day36.check_dpo_loss, dpo_loss_softplus),
    (day36.check_frozen_copy, frozen_copy),
    (day36.check_frozen_copy, lambda m: copy.deepcopy(m).requires_grad_(False).eval()),
])
def test_solutions_pass(check_fn, fn, capsys):
    passes(capsys, check_fn, fn)


@pytest.mark.parametrize("check_fn, fn", [
    (day36.check_sequence_logps, package_logps),
    (day36.check_dpo_loss, package_dpo),
    (day36.check_frozen_copy, day36.frozen_copy),
])
def test_package_reference_refused(check_fn, fn, capsys):
    fails(capsys, check_fn, fn, "the course's own reference")


@pytest.mark.parametrize("check_fn", CHECKS)
def test_stub(check_fn, capsys):
    fails(capsys, check_fn, stub, "not done yet")


@pytest.mark.parametrize("check_fn", CHECKS)
def test_odd_return_is_one_line(check_fn, capsys):
    assert bool(check_fn(lambda *a: None)) is False
    assert one_line(capsys).startswith("❌")


def test_dpo_loss_two_things(capsys):
    fails(capsys, day36.check_dpo_loss, lambda *a: dpo_loss(*a)[0], "should return three things")


def test_dpo_rewards_must_be_detached(capsys):
    # 31c #12: the lesson says "detach them"; an earlier version of this file accepted them undetached
    def undetached(pc, pr, rc, rr, beta):
        c, r = beta * (pc - rc), beta * (pr - rr)
        return F.softplus(-(c - r)).mean(), c, r

    assert not day36.check_dpo_loss(undetached)
    assert one_line(capsys) == ("❌ dpo_loss: chosen_rewards still requires gradients: return the "
                                "rewards detached (.detach()): they are for watching, not for backward")

    def rejected_only(pc, pr, rc, rr, beta):
        loss, c, r = dpo_loss(pc, pr, rc, rr, beta)
        return loss, c, beta * (pr - rr)

    fails(capsys, day36.check_dpo_loss, rejected_only, "rejected_rewards still requires gradients")


def test_hand_worked():
    logits = torch.zeros(1, 4, 2)                      # uniform over 2 tokens: log p = -log 2 each
    ids = torch.tensor([[0, 1, 1, 0]])
    assert math.isclose(sequence_logps(logits, ids, 2).item(), -2 * math.log(2), rel_tol=1e-6)
    one = torch.tensor([0.0])
    loss, c, r = dpo_loss(one, one, one, one, 0.3)     # margin 0: -log sigmoid(0) = log 2
    assert math.isclose(loss.item(), math.log(2), rel_tol=1e-6)
    m = nn.Linear(2, 2)
    ref = frozen_copy(m)
    assert ref is not m and not ref.training and not any(p.requires_grad for p in ref.parameters())


def test_checks_are_fast():
    import time
    t = time.process_time()
    for check_fn, fn in zip(CHECKS, (sequence_logps, dpo_loss, frozen_copy)):
        check_fn(fn)
    assert time.process_time() - t < 2.0


def test_second_round_correct_variants_pass(capsys):
    passes(capsys, day36.check_sequence_logps, lambda logits, ids, P: -F.cross_entropy(
        logits[:, P - 1:-1].transpose(1, 2), ids[:, P:], reduction="none").sum(-1))

    def dpo_softplus(pc, pr, rc, rr, beta):
        c, r = beta * (pc - rc), beta * (pr - rr)
        return F.softplus(r - c).mean(), c.detach(), r.detach()
    passes(capsys, day36.check_dpo_loss, dpo_softplus)


def test_third_round_correct_variants_pass(capsys):
    def dpo_bce(pc, pr, rc, rr, beta):       # rewards under no_grad, the loss from the margin itself
        margin = beta * ((pc - rc) - (pr - rr))
        loss = F.binary_cross_entropy_with_logits(margin, torch.ones_like(margin))
        with torch.no_grad():
            return loss, beta * (pc - rc), beta * (pr - rr)
    passes(capsys, day36.check_dpo_loss, dpo_bce)

    def logps_masked(logits, ids, P):        # every position's log-prob, the prompt's masked out
        tok = logits.log_softmax(-1)[:, :-1].gather(-1, ids[:, 1:, None])[..., 0]
        return (tok * (torch.arange(ids.shape[1] - 1) >= P - 1)).sum(-1)
    passes(capsys, day36.check_sequence_logps, logps_masked)
