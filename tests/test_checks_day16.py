"""The day-16 checks pass the solutions, catch the usual optimizer mistakes, say "not done yet"
for stubs, print exactly one line and never raise."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from llmcourse.checks import day16
from llmcourse.train import clip_grad_norm, param_groups
from checklines import one_line, stub


# ---- exercise 1: adam_step --------------------------------------------------------------------


def adam_step(p, g, m, v, t, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g**2
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    return p - lr * m_hat / (torch.sqrt(v_hat) + eps), m, v


def test_reference_adam_equals_torch():
    """The reference the checks compare with is torch's Adam."""
    w = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    ours, m, v = w.clone(), torch.zeros(3, 4), torch.zeros(3, 4)
    ref = nn.Parameter(w.clone())
    opt = torch.optim.Adam([ref], lr=0.05, betas=(0.8, 0.95), eps=1e-3)
    g = torch.Generator().manual_seed(1)
    for t in range(1, 7):
        grad = torch.randn(3, 4, generator=g) * 0.01
        ours, m, v = day16.reference_adam_step(ours, grad, m, v, t, 0.05, 0.8, 0.95, 1e-3)
        ref.grad = grad.clone()
        opt.step()
    assert torch.allclose(ours, ref.detach(), atol=1e-6)


def test_reference_adamw_equals_torch():
    w = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    ours, m, v = w.clone(), torch.zeros(3, 4), torch.zeros(3, 4)
    ref = nn.Parameter(w.clone())
    opt = torch.optim.AdamW([ref], lr=0.05, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.5)
    g = torch.Generator().manual_seed(1)
    for t in range(1, 6):
        grad = torch.randn(3, 4, generator=g) * 0.01
        ours, m, v = day16.reference_adamw_step(ours, grad, m, v, t, 0.05, 0.9, 0.95, 1e-8, 0.5)
        ref.grad = grad.clone()
        opt.step()
    assert torch.allclose(ours, ref.detach(), atol=1e-6)


def test_adam_passes_and_stub(capsys):
    assert bool(day16.check_adam_step(adam_step)) is True
    assert "passed" in one_line(capsys)
    assert bool(day16.check_adam_step(day16.reference_adam_step)) is True
    assert "passed" in one_line(capsys)
    assert bool(day16.check_adam_step(stub)) is False
    assert "not done yet" in one_line(capsys)


def _in_place(p, g, m, v, t, lr, beta1, beta2, eps):
    """A learner who updates the tensors in place (and returns them): also right."""
    m.mul_(beta1).add_(g, alpha=1 - beta1)
    v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
    p.addcdiv_(m / (1 - beta1**t), (v / (1 - beta2**t)).sqrt() + eps, value=-lr)
    return p, m, v


def test_adam_in_place_passes(capsys):
    assert bool(day16.check_adam_step(_in_place)) is True
    assert "passed" in one_line(capsys)


@pytest.mark.parametrize("kind,hint", [
    ("no correction", "bias correction is missing"),
    ("only m corrected", "only m"),
    ("only v corrected", "only v"),
    ("eps inside sqrt", "outside the square root"),
    ("no sqrt", "square root"),
    ("t + 1", "not t + 1"),
    ("sign", "wrong sign"),
])
def test_adam_mistakes(capsys, kind, hint):
    assert bool(day16.check_adam_step(day16._adam_variant(kind))) is False
    assert hint in one_line(capsys)


def test_adam_other_mistakes(capsys):
    def t_minus_one(p, g, m, v, t, lr, b1, b2, eps):
        return adam_step(p, g, m, v, t - 1, lr, b1, b2, eps)

    assert bool(day16.check_adam_step(t_minus_one)) is False
    assert "1 - beta**t" in one_line(capsys) or "ZeroDivision" in one_line(capsys)

    def swapped(p, g, m, v, t, lr, b1, b2, eps):
        m = b1 * g + (1 - b1) * m
        v = b2 * v + (1 - b2) * g * g
        return p - lr * (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + eps), m, v

    assert bool(day16.check_adam_step(swapped)) is False
    assert "differ from Adam's" in one_line(capsys)

    assert bool(day16.check_adam_step(lambda *a: None)) is False
    assert "returned None" in one_line(capsys)
    assert bool(day16.check_adam_step(lambda p, *a: p)) is False
    assert "tuple (p, m, v)" in one_line(capsys)


# ---- exercise 2: adamw_step -------------------------------------------------------------------


def adamw_step(p, g, m, v, t, lr, beta1, beta2, eps, weight_decay):
    p = p * (1 - lr * weight_decay)
    return adam_step(p, g, m, v, t, lr, beta1, beta2, eps)


def test_adamw_passes_and_stub(capsys):
    assert bool(day16.check_adamw_step(adamw_step)) is True
    assert "passed" in one_line(capsys)
    assert bool(day16.check_adamw_step(stub)) is False
    assert "not done yet" in one_line(capsys)


@pytest.mark.parametrize("kind,hint", [
    ("L2", "L2 penalty"),
    ("no lr", "not scaled by the learning rate"),
    ("after", "after the Adam step"),
    ("none", "not decayed at all"),
    ("grad", "proportional to the gradient"),
])
def test_adamw_mistakes(capsys, kind, hint):
    assert bool(day16.check_adamw_step(day16._adamw_variant(kind))) is False
    assert hint in one_line(capsys)


def test_adamw_with_broken_adam_part(capsys):
    def broken(p, g, m, v, t, lr, b1, b2, eps, wd):
        return day16._adam_variant("no correction")(p * (1 - lr * wd), g, m, v, t, lr, b1, b2, eps)

    assert bool(day16.check_adamw_step(broken)) is False
    assert "exercise 1" in one_line(capsys)


# ---- exercise 3: param_groups -----------------------------------------------------------------


def good_groups(model, weight_decay):
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (decay if p.dim() >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def test_param_groups_passes_and_stub(capsys):
    assert bool(day16.check_param_groups(good_groups)) is True
    assert "passed" in one_line(capsys)
    assert bool(day16.check_param_groups(param_groups)) is True      # the package's (with names)
    assert "passed" in one_line(capsys)
    assert bool(day16.check_param_groups(stub)) is False
    assert "not done yet" in one_line(capsys)


def test_param_groups_mistakes(capsys):
    def everything_decayed(model, wd):
        ps = [p for p in model.parameters() if p.requires_grad]
        return [{"params": ps, "weight_decay": wd}, {"params": [], "weight_decay": 0.0}]

    assert bool(day16.check_param_groups(everything_decayed)) is False
    assert "biases" in one_line(capsys)

    def biases_excluded_only(model, wd):
        d = [p for n, p in model.named_parameters() if p.requires_grad and not n.endswith("bias")]
        n = [p for n_, p in model.named_parameters() if p.requires_grad and n_.endswith("bias")]
        return [{"params": d, "weight_decay": wd}, {"params": n, "weight_decay": 0.0}]

    assert bool(day16.check_param_groups(biases_excluded_only)) is False
    assert "norm and gain" in one_line(capsys)

    def with_frozen(model, wd):
        d = [p for p in model.parameters() if p.dim() >= 2]
        n = [p for p in model.parameters() if p.dim() < 2]
        return [{"params": d, "weight_decay": wd}, {"params": n, "weight_decay": 0.0}]

    assert bool(day16.check_param_groups(with_frozen)) is False
    assert "frozen" in one_line(capsys)

    def by_module(model, wd):   # walks modules: the tied matrix is collected twice
        d, n = [], []
        for mod in model.modules():
            for name, p in mod.named_parameters(recurse=False):
                if not p.requires_grad:
                    continue
                (d if p.dim() >= 2 else n).append(p)
        return [{"params": d, "weight_decay": wd}, {"params": n, "weight_decay": 0.0}]

    assert bool(day16.check_param_groups(by_module)) is False
    assert "more than once" in one_line(capsys)

    def no_embedding_decay(model, wd):
        d, n = [], []
        for name, p in model.named_parameters():
            if p.requires_grad:
                (d if p.dim() >= 2 and "wte" not in name else n).append(p)
        return [{"params": d, "weight_decay": wd}, {"params": n, "weight_decay": 0.0}]

    assert bool(day16.check_param_groups(no_embedding_decay)) is False
    assert "embedding" in one_line(capsys)

    def wrong_values(model, wd):
        groups = good_groups(model, wd)
        groups[1]["weight_decay"] = wd
        return groups

    assert bool(day16.check_param_groups(wrong_values)) is False
    assert "weight_decay values" in one_line(capsys)

    assert bool(day16.check_param_groups(lambda m, wd: list(m.parameters()))) is False
    assert "list of dicts" in one_line(capsys)
    assert bool(day16.check_param_groups(lambda m, wd: None)) is False
    assert "returned None" in one_line(capsys)


# ---- exercise 4: clip_grad_norm ---------------------------------------------------------------


def good_clip(params, max_norm):
    grads = [p.grad for p in params if p.grad is not None]
    total = torch.sqrt(sum((g**2).sum() for g in grads))
    scale = min(1.0, max_norm / (total.item() + 1e-6))
    for g in grads:
        g.mul_(scale)
    return total


def test_clip_passes_and_stub(capsys):
    assert bool(day16.check_clip_grad_norm(good_clip)) is True
    assert "passed" in one_line(capsys)
    assert bool(day16.check_clip_grad_norm(clip_grad_norm)) is True
    assert "passed" in one_line(capsys)
    assert bool(day16.check_clip_grad_norm(torch.nn.utils.clip_grad_norm_)) is True
    assert "passed" in one_line(capsys)
    assert bool(day16.check_clip_grad_norm(stub)) is False
    assert "not done yet" in one_line(capsys)


def test_clip_mistakes(capsys):
    def after(params, max_norm):
        good_clip(params, max_norm)
        return torch.sqrt(sum((p.grad**2).sum() for p in params if p.grad is not None))

    assert bool(day16.check_clip_grad_norm(after)) is False
    assert "after clipping" in one_line(capsys)

    def per_tensor(params, max_norm):
        total = torch.sqrt(sum((p.grad**2).sum() for p in params if p.grad is not None))
        for p in params:
            if p.grad is not None:
                n = p.grad.norm()
                if n > max_norm:
                    p.grad.mul_(max_norm / n)
        return total

    assert bool(day16.check_clip_grad_norm(per_tensor)) is False
    assert "on its own" in one_line(capsys)

    def always_scale(params, max_norm):
        grads = [p.grad for p in params if p.grad is not None]
        total = torch.sqrt(sum((g**2).sum() for g in grads))
        for g in grads:
            g.mul_(max_norm / total)
        return total

    assert bool(day16.check_clip_grad_norm(always_scale)) is False
    assert "scaled up" in one_line(capsys)

    def squared(params, max_norm):
        total = good_clip(params, max_norm)
        return total**2

    assert bool(day16.check_clip_grad_norm(squared)) is False
    assert "squared norm" in one_line(capsys)

    def copies(params, max_norm):
        grads = [p.grad for p in params if p.grad is not None]
        total = torch.sqrt(sum((g**2).sum() for g in grads))
        _ = [g * min(1.0, max_norm / total.item()) for g in grads]
        return total

    assert bool(day16.check_clip_grad_norm(copies)) is False
    assert "in place" in one_line(capsys)

    def no_skip(params, max_norm):
        total = torch.sqrt(sum((p.grad**2).sum() for p in params))
        return total

    assert bool(day16.check_clip_grad_norm(no_skip)) is False
    assert "p.grad is None" in one_line(capsys)

    assert bool(day16.check_clip_grad_norm(lambda ps, m: None)) is False
    assert "returned None" in one_line(capsys)


def test_adamw_blocked_by_unfinished_adam(capsys):
    def adam_step(p, g, m, v, t, lr, beta1, beta2, eps):   # the learner's stub of exercise 1
        raise NotImplementedError

    def adamw_step(p, g, m, v, t, lr, beta1, beta2, eps, weight_decay):
        return adam_step(p * (1 - lr * weight_decay), g, m, v, t, lr, beta1, beta2, eps)

    assert bool(day16.check_adamw_step(adamw_step)) is False
    assert "finish exercise 1" in one_line(capsys)
    assert bool(day16.check_adam_step(adam_step)) is False
    assert "not done yet" in one_line(capsys)
