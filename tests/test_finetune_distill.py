"""distillation_loss: the alpha edge cases, the T^2 scaling, a hand computation, ignored targets."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from llmcourse.finetune import distillation_loss, soften


def _logits(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_alpha_zero_is_the_cross_entropy():
    s, t = _logits(2, 5, 7), _logits(2, 5, 7, seed=1)
    y = torch.randint(0, 7, (2, 5), generator=torch.Generator().manual_seed(2))
    got = distillation_loss(s, t, y, T=3.0, alpha=0.0)
    assert torch.allclose(got, F.cross_entropy(s.reshape(-1, 7), y.reshape(-1)))


def test_alpha_one_T_one_is_the_kl_to_the_teacher():
    s, t = _logits(6, 4), _logits(6, 4, seed=1)
    got = distillation_loss(s, t, None, T=1.0, alpha=1.0)
    want = F.kl_div(F.log_softmax(s, -1), F.log_softmax(t, -1), log_target=True,
                    reduction="batchmean")
    assert torch.allclose(got, want, atol=1e-6)


def test_student_equal_to_teacher_pays_no_soft_loss():
    s = _logits(3, 9)
    assert distillation_loss(s, s.clone(), None, T=4.0, alpha=1.0).abs().item() < 1e-6


def test_a_hand_computation():
    # one position, V = 2: teacher logits (2, 0), student (0, 0), target 0, T = 2, alpha = 0.25
    s, t, y = torch.tensor([[0.0, 0.0]]), torch.tensor([[2.0, 0.0]]), torch.tensor([0])
    p = [math.exp(1) / (math.exp(1) + 1), 1 / (math.exp(1) + 1)]       # softmax((2, 0) / 2)
    kl = sum(pi * math.log(pi / 0.5) for pi in p)
    want = 0.25 * 4 * kl + 0.75 * math.log(2)
    assert distillation_loss(s, t, y, T=2.0, alpha=0.25).item() == pytest.approx(want, rel=1e-5)


def test_T_squared_keeps_the_soft_gradient_on_one_scale():
    # Hinton et al.: at high T the soft term's gradient is about (z - v) / (V T^2) for zero-mean
    # logits; times T^2 it is (z - v) / V whatever T.
    V = 10
    z = _logits(1, V) * 0.5
    v = _logits(1, V, seed=1) * 0.5
    z, v = z - z.mean(), v - v.mean()
    grads = []
    for T in (20.0, 40.0):
        zs = z.clone().requires_grad_(True)
        distillation_loss(zs, v, None, T=T, alpha=1.0).backward()
        grads.append(zs.grad)
        assert torch.allclose(zs.grad, (z - v) / V, atol=2e-3)
    assert torch.allclose(grads[0], grads[1], atol=1e-3)
    # without the T^2 the gradient would have shrunk 4 times from T=20 to T=40
    zs = z.clone().requires_grad_(True)
    (distillation_loss(zs, v, None, T=40.0, alpha=1.0) / 40.0 ** 2).backward()
    assert zs.grad.abs().max() < grads[0].abs().max() / 100


def test_ignored_targets_leave_both_terms():
    s, t = _logits(1, 4, 6), _logits(1, 4, 6, seed=1)
    y = torch.tensor([[1, -1, 3, -1]])
    got = distillation_loss(s, t, y, T=2.0, alpha=0.5)
    keep = torch.tensor([0, 2])
    want = distillation_loss(s[0, keep], t[0, keep], y[0, keep], T=2.0, alpha=0.5)
    assert torch.allclose(got, want, atol=1e-6)


def test_no_gradient_reaches_the_teacher():
    s = _logits(3, 5).requires_grad_(True)
    t = _logits(3, 5, seed=1).requires_grad_(True)
    distillation_loss(s, t, torch.tensor([0, 1, 2]), T=2.0, alpha=0.5).backward()
    assert s.grad is not None and t.grad is None


def test_soften_flattens_and_keeps_order():
    x = torch.tensor([3.0, 1.0, 0.0])
    p1, p4 = soften(x, 1.0), soften(x, 4.0)
    assert torch.allclose(p1, torch.softmax(x, -1))
    assert p4.max() < p1.max() and torch.equal(p4.argsort(), p1.argsort())


@pytest.mark.parametrize("kwargs, match", [
    (dict(T=0.0), "T must be > 0"),
    (dict(alpha=1.5), "alpha must lie in"),
])
def test_bad_settings_are_refused(kwargs, match):
    s = _logits(2, 3)
    args = dict(T=2.0, alpha=0.5) | kwargs
    with pytest.raises(ValueError, match=match):
        distillation_loss(s, s, torch.tensor([0, 1]), **args)


def test_shape_mismatch_and_missing_targets_are_refused():
    with pytest.raises(ValueError, match="differ"):
        distillation_loss(_logits(2, 3), _logits(2, 4), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="targets=None"):
        distillation_loss(_logits(2, 3), _logits(2, 3), None, alpha=0.5)
    with pytest.raises(ValueError, match="every target is -1"):
        distillation_loss(_logits(2, 3), _logits(2, 3), torch.tensor([-1, -1]))


def test_training_on_the_soft_term_moves_the_student_to_the_teacher():
    torch.manual_seed(0)
    teacher = _logits(16, 5, seed=3)                               # fixed teacher logits
    student = torch.nn.Parameter(torch.zeros(16, 5))
    opt = torch.optim.SGD([student], lr=20.0)
    first = None
    for _ in range(200):
        loss = distillation_loss(student, teacher, None, T=2.0, alpha=1.0)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.01 * first
    assert torch.equal(student.detach().argmax(-1), teacher.argmax(-1))
