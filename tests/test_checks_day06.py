"""The day-06 checks pass the solutions, reject every mistake of their tables, and say "not done yet" for stubs."""

from __future__ import annotations

import math
import time

import pytest
import torch
import torch.nn.functional as F

from checklines import fails, mistake_params, one_line, passes, rejects, stub
from llmcourse.checks import day06


# ---- the lesson's solutions (copied from solutions/day06_first_language_model.md) --------------


def cross_entropy(logits, targets):
    logp = F.log_softmax(logits, dim=-1)                             # (B, T, V)
    picked = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)      # (B, T)
    return -picked.mean()


def train_step(model, optimizer, x, y):
    optimizer.zero_grad(set_to_none=True)
    _, loss = model(x, y)
    loss.backward()
    optimizer.step()
    return loss.item()


def estimate_loss(model, get_batch_fn, eval_iters):
    model.eval()
    with torch.no_grad():
        losses = torch.zeros(eval_iters)
        for k in range(eval_iters):
            x, y = get_batch_fn()
            _, loss = model(x, y)
            losses[k] = loss.item()
    model.train()
    return losses.mean().item()


# ---- other correct variants -------------------------------------------------------------------


def cross_entropy_indexing(logits, targets):
    B, T, V = logits.shape
    logp = F.log_softmax(logits.view(B * T, V), dim=-1)
    return -logp[torch.arange(B * T), targets.view(-1)].mean()


def cross_entropy_logsumexp(logits, targets):
    picked = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return (torch.logsumexp(logits, dim=-1) - picked).mean()


def cross_entropy_one_hot_loop(logits, targets):  # one-hot sized by V, a loop over the batch
    V = logits.shape[-1]
    rows = [-(F.log_softmax(logits[b], dim=-1) * F.one_hot(targets[b], num_classes=V)).sum(-1)
            for b in range(logits.shape[0])]
    return torch.stack(rows).mean()


def train_step_zero_grad_last(model, optimizer, x, y):  # clears the gradients after the step instead
    _, loss = model(x, y)
    loss.backward()
    optimizer.step()
    model.zero_grad()
    return loss.item()


def estimate_loss_inference_mode(model, get_batch_fn, eval_iters):
    model.eval()
    total = 0.0
    with torch.inference_mode():
        for _ in range(eval_iters):
            total += model(*get_batch_fn())[1]
    model.train()
    return float(total / eval_iters)


def train_step_zero_grad_plain(model, optimizer, x, y):
    _, loss = model(x, y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def estimate_loss_list(model, get_batch_fn, eval_iters):
    model.eval()
    losses = []
    with torch.no_grad():
        for _ in range(eval_iters):
            losses.append(model(*get_batch_fn())[1].item())
    model.train()
    return sum(losses) / len(losses)


def estimate_loss_keywords(model, get_batch_fn, eval_iters):  # model(idx=..., targets=...) as BigramLM takes
    model.eval()
    with torch.no_grad():
        losses = [model(idx=x, targets=y)[1].item() for x, y in (get_batch_fn() for _ in range(eval_iters))]
    model.train()
    return sum(losses) / len(losses)


def estimate_loss_from_logits(model, get_batch_fn, eval_iters):  # the loss recomputed from the logits
    model.eval()
    total = 0.0
    with torch.no_grad():
        for _ in range(eval_iters):
            x, y = get_batch_fn()
            logits = model(x)[0]
            total += F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1)).item()
    model.train()
    return total / eval_iters


@pytest.mark.parametrize("check_fn, mistake", mistake_params(day06))
def test_mistake_rejected(check_fn, mistake, capsys):
    rejects(capsys, check_fn, mistake)


@pytest.mark.parametrize("check_fn, fn", [
    (day06.check_cross_entropy, cross_entropy),
    (day06.check_cross_entropy, cross_entropy_indexing),
    (day06.check_cross_entropy, cross_entropy_logsumexp),
    (day06.check_train_step, train_step),
    (day06.check_cross_entropy, cross_entropy_one_hot_loop),
    (day06.check_train_step, train_step_zero_grad_plain),
    (day06.check_train_step, train_step_zero_grad_last),
    (day06.check_estimate_loss, estimate_loss_inference_mode),
    (day06.check_estimate_loss, estimate_loss),
    (day06.check_estimate_loss, estimate_loss_list),
    (day06.check_estimate_loss, estimate_loss_keywords),
    (day06.check_estimate_loss, estimate_loss_from_logits),
])
def test_solution_passes(check_fn, fn, capsys):
    passes(capsys, check_fn, fn)


@pytest.mark.parametrize("check_fn", [day06.check_cross_entropy, day06.check_train_step,
                                      day06.check_estimate_loss])
def test_stub_not_done(check_fn, capsys):
    fails(capsys, check_fn, stub, "not done yet")


@pytest.mark.parametrize("check_fn, reference", [
    (day06.check_cross_entropy, day06._ref_cross_entropy),
    (day06.check_train_step, day06._ref_step),
    (day06.check_estimate_loss, day06.reference_estimate_loss),
    (day06.check_estimate_loss, day06._reference_el),
])
def test_reference_refused(check_fn, reference, capsys):
    fails(capsys, check_fn, reference, "the course's own reference")


# ---- exercise 1 ------------------------------------------------------------------------------


def test_baseline(capsys):
    passes(capsys, lambda b: day06.check_baseline(b, 65), math.log(65))
    passes(capsys, lambda b: day06.check_baseline(b, 65), torch.log(torch.tensor(65.0)))
    passes(capsys, lambda b: day06.check_baseline(b, 7), 1.9459101090932196)  # ln 7 by hand
    fails(capsys, lambda b: day06.check_baseline(b, 65), None, "not done yet")


def test_baseline_mistakes_for_another_vocabulary(capsys):
    fails(capsys, lambda b: day06.check_baseline(b, 7), 1 / 7, "probability 1/V")
    fails(capsys, lambda b: day06.check_baseline(b, 7), math.log2(7), "base 2")
    fails(capsys, lambda b: day06.check_baseline(b, 7), math.log(65), "V = 7")


def test_baseline_refuses_a_function(capsys):
    fails(capsys, lambda b: day06.check_baseline(b, 65), day06.reference_estimate_loss,
          "the course's own reference")


# ---- exercise 2 ------------------------------------------------------------------------------


def test_reference_cross_entropy_by_hand():
    # logits [2, 1, 0], target 0: -ln(e^2 / (e^2 + e + 1)) = 0.4076
    got = day06._ref_cross_entropy(torch.tensor([[[2.0, 1.0, 0.0]]]), torch.tensor([[0]]))
    assert got.item() == pytest.approx(-math.log(math.e ** 2 / (math.e ** 2 + math.e + 1)), abs=1e-6)


def test_cross_entropy_crash_shows_the_shapes(capsys):
    def crash(logits, targets):
        return F.cross_entropy(logits, targets)  # (B, T, V) directly: a shape error

    assert not day06.check_cross_entropy(crash)
    line = one_line(capsys)
    assert "F.cross_entropy takes the classes on dim 1" in line, line       # the mistake, named
    assert "(on cross_entropy(logits of shape (3, 5, 11), targets of shape (3, 5)))" in line, line


def test_cross_entropy_small_error_names_the_case(capsys):
    fails(capsys, day06.check_cross_entropy, lambda lg, t: cross_entropy(lg, t) * 1.01,
          "(on cross_entropy(logits of shape (3, 5, 11), targets of shape (3, 5)))")


# ---- exercise 3 ------------------------------------------------------------------------------


def test_train_step_returns_none(capsys):
    def no_return(model, optimizer, x, y):
        train_step(model, optimizer, x, y)

    fails(capsys, day06.check_train_step, no_return, "train_step returned None")


# ---- exercise 4 ------------------------------------------------------------------------------


def test_reference_estimate_loss_restores_eval_mode():
    class M(torch.nn.Module):
        def forward(self, x, y):
            return None, torch.tensor(2.0)

    m = M().eval()
    batch = lambda: (torch.zeros(1), torch.zeros(1))
    assert day06.reference_estimate_loss(m, batch, 3) == pytest.approx(2.0)
    assert not m.training


def test_estimate_loss_mean_by_hand(capsys):
    # the first case's losses are 1, 2, 4, 5: mean 3; a wrong mean names the value
    def off(model, get_batch_fn, eval_iters):
        return estimate_loss(model, get_batch_fn, eval_iters) + 0.5

    fails(capsys, day06.check_estimate_loss, off, "should be 3.0, got 3.5")


def test_checks_are_fast(capsys):
    start = time.process_time()
    assert day06.check_baseline(math.log(65), 65)
    assert day06.check_cross_entropy(cross_entropy)
    assert day06.check_train_step(train_step)
    assert day06.check_estimate_loss(estimate_loss)
    assert time.process_time() - start < 2.0
