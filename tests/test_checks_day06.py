"""The day-06 checks pass the solutions, catch plausible mistakes, and say "not done yet" for stubs."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from llmcourse.checks import day06


def _last_line(capsys: pytest.CaptureFixture[str]) -> str:
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out
    return out[0]


def _stub(*args, **kwargs):
    raise NotImplementedError


# ---- exercise 1 ------------------------------------------------------------------------------


def test_baseline(capsys):
    assert day06.check_baseline(math.log(65), 65)
    assert "passed" in _last_line(capsys)
    assert not day06.check_baseline(None, 65)
    assert "not done yet" in _last_line(capsys)
    assert not day06.check_baseline(1 / 65, 65)
    assert "probability" in _last_line(capsys)
    assert not day06.check_baseline(math.log2(65), 65)
    assert "base 2" in _last_line(capsys)
    assert not day06.check_baseline(-math.log(65), 65)
    assert "sign" in _last_line(capsys)


# ---- exercise 2 ------------------------------------------------------------------------------


def good_cross_entropy(logits, targets):
    logp = F.log_softmax(logits, dim=-1)
    return -logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1).mean()


def test_cross_entropy_passes(capsys):
    assert day06.check_cross_entropy(good_cross_entropy)
    assert "passed" in _last_line(capsys)
    reference = lambda lg, t: F.cross_entropy(lg.reshape(-1, lg.size(-1)), t.reshape(-1))
    assert day06.check_cross_entropy(reference)
    assert "passed" in _last_line(capsys)
    assert not day06.check_cross_entropy(_stub)
    assert "not done yet" in _last_line(capsys)


def test_cross_entropy_mistakes(capsys):
    def unstable(logits, targets):
        p = F.softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1))
        return -torch.log(p).mean()

    assert not day06.check_cross_entropy(unstable)
    assert "log_softmax" in _last_line(capsys)

    def summed(logits, targets):
        return -F.log_softmax(logits, -1).gather(-1, targets.unsqueeze(-1)).sum()

    assert not day06.check_cross_entropy(summed)
    assert "sum" in _last_line(capsys)

    def positive(logits, targets):
        return -good_cross_entropy(logits, targets)

    assert not day06.check_cross_entropy(positive)
    assert "sign" in _last_line(capsys)

    def per_position(logits, targets):
        return -F.log_softmax(logits, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)

    assert not day06.check_cross_entropy(per_position)
    assert "single number" in _last_line(capsys)

    def wrong_dim(logits, targets):
        return -F.log_softmax(logits, dim=1).gather(-1, targets.unsqueeze(-1)).mean()

    assert not day06.check_cross_entropy(wrong_dim)
    assert "wrong dimension" in _last_line(capsys)


# ---- exercise 3 ------------------------------------------------------------------------------


def good_train_step(model, optimizer, x, y):
    optimizer.zero_grad(set_to_none=True)
    _, loss = model(x, y)
    loss.backward()
    optimizer.step()
    return loss.item()


def test_train_step_passes(capsys):
    assert day06.check_train_step(good_train_step)
    assert "passed" in _last_line(capsys)
    assert not day06.check_train_step(_stub)
    assert "not done yet" in _last_line(capsys)


def test_train_step_mistakes(capsys):
    def no_zero_grad(model, optimizer, x, y):
        _, loss = model(x, y)
        loss.backward()
        optimizer.step()
        return loss.item()

    assert not day06.check_train_step(no_zero_grad)
    assert "zero_grad" in _last_line(capsys)

    def no_step(model, optimizer, x, y):
        optimizer.zero_grad()
        _, loss = model(x, y)
        loss.backward()
        return loss.item()

    assert not day06.check_train_step(no_step)
    assert "optimizer.step()" in _last_line(capsys)

    def returns_tensor(model, optimizer, x, y):
        optimizer.zero_grad()
        _, loss = model(x, y)
        loss.backward()
        optimizer.step()
        return loss

    assert not day06.check_train_step(returns_tensor)
    assert ".item()" in _last_line(capsys)


# ---- exercise 4 ------------------------------------------------------------------------------


def good_estimate_loss(model, get_batch_fn, eval_iters):
    model.eval()
    with torch.no_grad():
        losses = torch.zeros(eval_iters)
        for k in range(eval_iters):
            x, y = get_batch_fn()
            _, loss = model(x, y)
            losses[k] = loss.item()
    model.train()
    return losses.mean().item()


def test_estimate_loss_passes(capsys):
    assert day06.check_estimate_loss(good_estimate_loss)
    assert "passed" in _last_line(capsys)
    assert day06.check_estimate_loss(day06.reference_estimate_loss)
    assert "passed" in _last_line(capsys)
    assert not day06.check_estimate_loss(_stub)
    assert "not done yet" in _last_line(capsys)


def test_estimate_loss_mistakes(capsys):
    def no_eval(model, get_batch_fn, eval_iters):
        with torch.no_grad():
            return sum(model(*get_batch_fn())[1].item() for _ in range(eval_iters)) / eval_iters

    assert not day06.check_estimate_loss(no_eval)
    assert "model.eval()" in _last_line(capsys)

    def with_grad(model, get_batch_fn, eval_iters):
        model.eval()
        out = sum(model(*get_batch_fn())[1].item() for _ in range(eval_iters)) / eval_iters
        model.train()
        return out

    assert not day06.check_estimate_loss(with_grad)
    assert "no_grad" in _last_line(capsys)

    def stays_in_eval(model, get_batch_fn, eval_iters):
        model.eval()
        with torch.no_grad():
            return sum(model(*get_batch_fn())[1].item() for _ in range(eval_iters)) / eval_iters

    assert not day06.check_estimate_loss(stays_in_eval)
    assert "model.train()" in _last_line(capsys)

    def summed(model, get_batch_fn, eval_iters):
        model.eval()
        with torch.no_grad():
            out = sum(model(*get_batch_fn())[1].item() for _ in range(eval_iters))
        model.train()
        return out

    assert not day06.check_estimate_loss(summed)
    assert "sum" in _last_line(capsys)


def test_reference_estimate_loss_restores_eval_mode():
    class M(torch.nn.Module):
        def forward(self, x, y):
            return None, torch.tensor(2.0)

    m = M().eval()
    batch = lambda: (torch.zeros(1), torch.zeros(1))
    assert day06.reference_estimate_loss(m, batch, 3) == pytest.approx(2.0)
    assert not m.training


def test_cross_entropy_crash_shows_the_shapes(capsys):
    def crash(logits, targets):
        return F.cross_entropy(logits, targets)  # (B, T, V) directly: a shape error

    assert bool(day06.check_cross_entropy(crash)) is False
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "your code raised RuntimeError" in out
    assert "cross_entropy(logits of shape (3, 5, 11), targets of shape (3, 5))" in out
