"""The day-16 checks pass the solutions (and correct variants: in-place updates, torch's own
clipping), catch the mistakes of the tables in ``llmcourse/checks/day16.py``, refuse the
package's and the checks' own references, say "not done yet" for stubs and never raise."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from llmcourse.checks import day16
from llmcourse.train.optim import clip_grad_norm as package_clip
from llmcourse.train.optim import param_groups as package_param_groups
from checklines import fails, mistake_params, one_line, passes, rejects, stub


# ---- the lesson's solutions (solutions/day16_optimizers.md) ----------------------------------


def adam_step(p, g, m, v, t, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    m_hat = m / (1 - beta1 ** t)
    v_hat = v / (1 - beta2 ** t)
    return p - lr * m_hat / (v_hat.sqrt() + eps), m, v


def adamw_step(p, g, m, v, t, lr, beta1, beta2, eps, weight_decay):
    p = p * (1 - lr * weight_decay)
    return adam_step(p, g, m, v, t, lr, beta1, beta2, eps)


def param_groups(model, weight_decay):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.dim() >= 2:
            decay.append(p)
        else:
            no_decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def clip_grad_norm(params, max_norm):
    grads = [p.grad for p in params if p.grad is not None]
    norm = torch.sqrt(sum((g * g).sum() for g in grads))
    scale = min(1.0, max_norm / (norm.item() + 1e-6))
    for g in grads:
        g.mul_(scale)
    return norm


# ---- other correct variants ------------------------------------------------------------------


def adam_in_place(p, g, m, v, t, lr, beta1, beta2, eps):
    m.mul_(beta1).add_(g, alpha=1 - beta1)
    v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
    p.addcdiv_(m / (1 - beta1**t), (v / (1 - beta2**t)).sqrt() + eps, value=-lr)
    return p, m, v


def adamw_inline(p, g, m, v, t, lr, beta1, beta2, eps, weight_decay):
    p = p - lr * weight_decay * p
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g ** 2
    step = lr / (1 - beta1 ** t)
    return p - step * m / (v.sqrt() / (1 - beta2 ** t) ** 0.5 + eps), m, v


def adamw_paper_form(p, g, m, v, t, lr, beta1, beta2, eps, weight_decay):
    # the decay written inside the update, from the old weights: the same step as decaying first
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    update = (m / (1 - beta1 ** t)) / ((v / (1 - beta2 ** t)).sqrt() + eps)
    return p - lr * (update + weight_decay * p), m, v


def groups_from_a_set(model, weight_decay):
    trainable = [p for p in set(model.parameters()) if p.requires_grad]
    return ({"params": [p for p in trainable if p.ndim >= 2], "weight_decay": weight_decay},
            {"params": [p for p in trainable if p.ndim < 2], "weight_decay": 0})


def clip_rebinds_grad(params, max_norm):
    with_grad = [p for p in params if p.grad is not None]
    norm = torch.cat([p.grad.flatten() for p in with_grad]).norm()
    if norm > max_norm:
        for p in with_grad:
            p.grad = p.grad * (max_norm / (norm + 1e-6))
    return norm


def groups_no_decay_first(model, weight_decay):
    groups = param_groups(model, weight_decay)
    return [dict(groups[1], names="ignored"), groups[0]]


def clip_with_torch(params, max_norm):
    return torch.nn.utils.clip_grad_norm_(list(params), max_norm).item()


@pytest.mark.parametrize("check_fn, fn", [
    (day16.check_adam_step, adam_step), (day16.check_adam_step, adam_in_place),
    (day16.check_adamw_step, adamw_step), (day16.check_adamw_step, adamw_inline),
    (day16.check_adamw_step, adamw_paper_form),
    (day16.check_param_groups, param_groups), (day16.check_param_groups, groups_no_decay_first),
    (day16.check_param_groups, groups_from_a_set),
    (day16.check_clip_grad_norm, clip_grad_norm), (day16.check_clip_grad_norm, clip_with_torch),
    (day16.check_clip_grad_norm, clip_rebinds_grad),
])
def test_solutions_pass(capsys, check_fn, fn):
    passes(capsys, check_fn, fn)


@pytest.mark.parametrize("check_fn, mistake", mistake_params(day16))
def test_mistake_rejected(check_fn, mistake, capsys):
    rejects(capsys, check_fn, mistake)


@pytest.mark.parametrize("check_fn, fn", [
    (day16.check_adam_step, day16.reference_adam_step),
    (day16.check_adamw_step, day16.reference_adamw_step),
    (day16.check_param_groups, package_param_groups),
    (day16.check_clip_grad_norm, package_clip),
])
def test_refuses_the_package_reference(capsys, check_fn, fn):
    fails(capsys, check_fn, fn, "the course's own reference")


@pytest.mark.parametrize("check_fn", [day16.check_adam_step, day16.check_adamw_step,
                                      day16.check_param_groups, day16.check_clip_grad_norm])
def test_stub(capsys, check_fn):
    fails(capsys, check_fn, stub, "not done yet")


def test_tables_have_three_mistakes():
    for name in ("check_adam_step", "check_adamw_step", "check_param_groups",
                 "check_clip_grad_norm"):
        assert len(getattr(day16, name).mistakes) >= 3


# ---- independent values ----------------------------------------------------------------------


def test_first_adam_step_is_lr_times_sign():
    # hand-worked: at t = 1, m_hat = g and v_hat = g², so the step is lr * g / (|g| + eps)
    p, g = torch.tensor([1.0, 1.0]), torch.tensor([0.5, -2.0])
    new_p, m, v = adam_step(p, g, torch.zeros(2), torch.zeros(2), 1, 0.1, 0.9, 0.999, 0.0)
    assert torch.allclose(new_p, torch.tensor([0.9, 1.1]))
    assert torch.allclose(m, 0.1 * g) and torch.allclose(v, 0.001 * g * g)


def test_adamw_zero_gradient_only_decays():
    p = torch.tensor([2.0])
    new_p, _, _ = adamw_step(p, torch.zeros(1), torch.zeros(1), torch.zeros(1), 1, 0.1, 0.9,
                             0.999, 1e-8, 0.5)
    assert torch.allclose(new_p, torch.tensor([1.9]))       # 2 * (1 - 0.1 * 0.5)


def test_clip_hand_worked():
    a, b = nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(1))
    a.grad, b.grad = torch.tensor([3.0, 0.0]), torch.tensor([4.0])
    assert clip_grad_norm([a, b], 1.0).item() == pytest.approx(5.0)
    assert torch.allclose(torch.cat([a.grad, b.grad]), torch.tensor([0.6, 0.0, 0.8]), atol=1e-5)


# ---- other behaviours ------------------------------------------------------------------------


@pytest.mark.parametrize("fn, words", [
    (lambda *a: None, "returned None"),
    (lambda p, *a: p, "tuple (p, m, v)"),
    (lambda p, g, m, v, *a: (p, m.sum(), v), "has shape ()"),
    (lambda p, g, m, v, *a: (p, m, "v"), "should be a tensor"),
])
def test_adam_odd_returns(capsys, fn, words):
    fails(capsys, day16.check_adam_step, fn, words)


def test_adam_mismatch_names_the_step(capsys):
    def drifts(p, g, m, v, t, lr, b1, b2, eps):
        p, m, v = adam_step(p, g, m, v, t, lr, b1, b2, eps)
        return (p + 1e-3 if t == 3 else p), m, v

    fails(capsys, day16.check_adam_step, drifts, "['t=3']['p']")


@pytest.mark.parametrize("fn, words", [
    (lambda model, wd: None, "returned None"),
    (lambda model, wd: [list(model.parameters())], "list of dicts"),
    (lambda model, wd: [{"params": list(model.parameters()), "weight_decay": wd}], "two groups"),
    (lambda model, wd: [{"params": [torch.zeros(2)], "weight_decay": wd},
                        {"params": [], "weight_decay": 0.0}], "not parameters of the model"),
])
def test_param_groups_odd_returns(capsys, fn, words):
    fails(capsys, day16.check_param_groups, fn, words)


def test_clip_returns_none(capsys):
    fails(capsys, day16.check_clip_grad_norm, lambda ps, m: None, "return")


def test_adamw_blocked_by_unfinished_adam(capsys):
    def adam_step(p, g, m, v, t, lr, beta1, beta2, eps):   # the learner's stub of exercise 1
        raise NotImplementedError

    def adamw_step(p, g, m, v, t, lr, beta1, beta2, eps, weight_decay):
        return adam_step(p * (1 - lr * weight_decay), g, m, v, t, lr, beta1, beta2, eps)

    fails(capsys, day16.check_adamw_step, adamw_step, "finish exercise 1")
    fails(capsys, day16.check_adam_step, adam_step, "not done yet")
