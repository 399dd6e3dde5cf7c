"""The day-18 checks pass the solutions, catch plausible mistakes, and say "not done yet" for stubs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from llmcourse.checks import day18
from checklines import one_line, stub

pytestmark = pytest.mark.usefixtures("one_thread")


# ---- exercise 1: precision_for ---------------------------------------------------------------


def test_precision_for(capsys):
    assert bool(day18.check_precision_for(day18.reference_precision_for)) is True
    assert "passed" in one_line(capsys)
    assert bool(day18.check_precision_for(stub)) is False
    assert "not done yet" in one_line(capsys)

    from llmcourse.device import pick_dtype

    def from_package(cap):
        plan = pick_dtype("cuda", capability=cap)
        return plan.autocast_dtype, plan.use_grad_scaler

    assert bool(day18.check_precision_for(from_package)) is True
    assert "passed" in one_line(capsys)


@pytest.mark.parametrize("wrong, hint", [
    (lambda cap: (torch.bfloat16, False), "no bfloat16 tensor cores"),
    (lambda cap: (torch.bfloat16, False) if cap[0] > 8 else (torch.float16, True), "not only the major"),
    (lambda cap: (torch.bfloat16, False) if cap >= (8, 0) else (torch.float16, False), "needs a GradScaler"),
    (lambda cap: (torch.bfloat16, True) if cap >= (8, 0) else (torch.float16, True), "needs no GradScaler"),
    (lambda cap: ("bf16", False), "torch dtype"),
    (lambda cap: torch.bfloat16, "pair"),
])
def test_precision_for_mistakes(capsys, wrong, hint):
    assert bool(day18.check_precision_for(wrong)) is False
    assert hint in one_line(capsys)


# ---- exercise 2: mfu -------------------------------------------------------------------------


def test_mfu(capsys):
    assert bool(day18.check_mfu(day18.reference_mfu)) is True
    assert "passed" in one_line(capsys)
    assert bool(day18.check_mfu(stub)) is False
    assert "not done yet" in one_line(capsys)


@pytest.mark.parametrize("wrong, hint", [
    (lambda s, n, L, C, T, p: 100 * day18.reference_mfu(s, n, L, C, T, p), "percentage"),
    (lambda s, n, L, C, T, p: 2 * n * s / p, "forward pass only"),
    (lambda s, n, L, C, T, p: 6 * n * s / p, "attention term"),
    (lambda s, n, L, C, T, p: p / ((6 * n + 12 * L * C * T) * s), "upside down"),
    (lambda s, n, L, C, T, p: (6 * n + 12 * L * C) * s / p, "expected"),
    (lambda s, n, L, C, T, p: None, "return"),
])
def test_mfu_mistakes(capsys, wrong, hint):
    assert bool(day18.check_mfu(wrong)) is False
    assert hint in one_line(capsys)


# ---- exercise 3: accumulate_grads --------------------------------------------------------------


def test_accumulate_grads(capsys):
    assert bool(day18.check_accumulate_grads(day18.reference_accumulate_grads)) is True
    assert "passed" in one_line(capsys)
    assert bool(day18.check_accumulate_grads(stub)) is False
    assert "not done yet" in one_line(capsys)


def _no_divide(model, micro):
    losses = []
    for x, y in micro:
        _, loss = model(x, y)
        loss.backward()
        losses.append(loss.item())
    return sum(losses) / len(losses)


def _zero_inside(model, micro):
    losses = []
    for x, y in micro:
        model.zero_grad()
        _, loss = model(x, y)
        (loss / len(micro)).backward()
        losses.append(loss.item())
    return sum(losses) / len(losses)


def _returns_scaled_loss(model, micro):
    total = 0.0
    for x, y in micro:
        _, loss = model(x, y)
        loss = loss / len(micro)
        loss.backward()
        total += loss.item()
    return total / len(micro)


def _only_first(model, micro):
    _, loss = model(*micro[0])
    loss.backward()
    return loss.item()


@pytest.mark.parametrize("wrong, hint", [
    (_no_divide, "3 times those of one big batch"),
    (_zero_inside, "only the last micro-batch"),
    (_returns_scaled_loss, "divided by the number of micro-batches once too often"),
    (_only_first, "differ from those of one big batch"),
    (lambda model, micro: None, "no .grad"),
])
def test_accumulate_grads_mistakes(capsys, wrong, hint):
    assert bool(day18.check_accumulate_grads(wrong)) is False
    assert hint in one_line(capsys)


def test_accumulate_grads_missing_return(capsys):
    def no_return(model, micro):
        day18.reference_accumulate_grads(model, micro)

    assert bool(day18.check_accumulate_grads(no_return)) is False
    assert "returned None" in one_line(capsys)


# ---- exercise 4: scaled_step -------------------------------------------------------------------


def test_scaled_step(capsys):
    assert bool(day18.check_scaled_step(day18.reference_scaled_step)) is True
    assert "passed" in one_line(capsys)
    assert bool(day18.check_scaled_step(stub)) is False
    assert "not done yet" in one_line(capsys)


def _clip_before_unscale(model, optimizer, scaler, x, y, max_norm):
    optimizer.zero_grad()
    _, loss = model(x, y)
    scaler.scale(loss).backward()
    norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    scaler.step(optimizer)
    scaler.update()
    return norm


def _optimizer_step(model, optimizer, scaler, x, y, max_norm):
    optimizer.zero_grad()
    _, loss = model(x, y)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    scaler.update()
    return norm


def _no_update(model, optimizer, scaler, x, y, max_norm):
    optimizer.zero_grad()
    _, loss = model(x, y)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    scaler.step(optimizer)
    return norm


def _no_clip(model, optimizer, scaler, x, y, max_norm):
    optimizer.zero_grad()
    _, loss = model(x, y)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    norm = torch.nn.utils.get_total_norm([p.grad for p in model.parameters()])
    scaler.step(optimizer)
    scaler.update()
    return norm


def _no_step(model, optimizer, scaler, x, y, max_norm):
    optimizer.zero_grad()
    _, loss = model(x, y)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    return nn.utils.clip_grad_norm_(model.parameters(), max_norm)


def _unscaled_backward(model, optimizer, scaler, x, y, max_norm):
    optimizer.zero_grad()
    _, loss = model(x, y)
    loss.backward()
    norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    return norm


def _optimizer_step_and_scaler_step_skipped(model, optimizer, scaler, x, y, max_norm):
    """Calls scaler.step only on the first call, optimizer.step afterwards (a mixed-up loop)."""
    optimizer.zero_grad()
    _, loss = model(x, y)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    if isinstance(model, nn.Module) and hasattr(model, "w"):  # the overflow model
        optimizer.step()
        scaler.calls.append("step")
    else:
        scaler.step(optimizer)
    scaler.update()
    return norm


@pytest.mark.parametrize("wrong, hint", [
    (_clip_before_unscale, "scaler.unscale_(optimizer) before clip_grad_norm_"),
    (_optimizer_step, "not optimizer.step()"),
    (_optimizer_step_and_scaler_step_skipped, "not optimizer.step()"),
    (_no_update, "scaler.update()"),
    (_no_clip, "clipped to max_norm"),
    (_no_step, "step through the scaler"),
    (_unscaled_backward, "scaler.scale(loss).backward()"),
    (lambda *a: day18.reference_scaled_step(*a) and None, "returned None"),
])
def test_scaled_step_mistakes(capsys, wrong, hint):
    assert bool(day18.check_scaled_step(wrong)) is False
    assert hint in one_line(capsys)

