"""The day-18 checks pass the solutions, reject the mistakes of their tables, and say "not done
yet" for stubs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from llmcourse.checks import day18
from checklines import fails, mistake_params, passes, rejects, stub

pytestmark = pytest.mark.usefixtures("one_thread")


# ---- the lesson's solutions (solutions/day18_training_fast.md) ---------------------------------


def mfu(tokens_per_s, n_params, n_layer, n_embd, seq_len, peak_flops):
    return (6 * n_params + 12 * n_layer * n_embd * seq_len) * tokens_per_s / peak_flops


def precision_for(capability):
    if capability >= (8, 0):
        return torch.bfloat16, False
    return torch.float16, True


def scaled_step(model, optimizer, scaler, x, y, max_norm):
    optimizer.zero_grad(set_to_none=True)
    _, loss = model(x, y)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    scaler.step(optimizer)
    scaler.update()
    return norm


def accumulate_grads(model, micro_batches):
    n = len(micro_batches)
    total = 0.0
    for xb, yb in micro_batches:
        _, loss = model(xb, yb)
        (loss / n).backward()
        total += loss.item()
    return total / n


# ---- other correct variants ----------------------------------------------------------------------


def precision_from_package(cap):
    from llmcourse.device import pick_dtype

    plan = pick_dtype("cuda", capability=cap)
    return plan.autocast_dtype, plan.use_grad_scaler


def precision_major(capability):  # major >= 8 is the same rule for every real GPU
    major, _ = capability
    return (torch.bfloat16, False) if major >= 8 else (torch.float16, True)


def accumulate_tensor_loss(model, micro_batches):  # returns a 0-d tensor
    losses = []
    for x, y in micro_batches:
        loss = model(x, y)[1] / len(micro_batches)
        loss.backward()
        losses.append(loss.detach())
    return torch.stack(losses).sum()


def scaled_step_item(model, optimizer, scaler, x, y, max_norm):
    optimizer.zero_grad()
    loss = model(x, y)[1]
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=max_norm).item()
    scaler.step(optimizer)
    scaler.update()
    return norm


def scaled_step_from_logits(model, optimizer, scaler, x, y, max_norm):  # the loss computed here
    logits, _ = model(x)
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    scaler.step(optimizer)
    scaler.update()
    return norm


def mfu_in_steps(tokens_per_s, n_params, n_layer, n_embd, seq_len, peak_flops):
    achieved = tokens_per_s * 6 * n_params + tokens_per_s * 12 * n_layer * n_embd * seq_len
    return achieved / peak_flops


# ---- every mistake of the tables is rejected with its hint ----------------------------------------


@pytest.mark.parametrize("check_fn, mistake", mistake_params(day18))
def test_mistake_rejected(check_fn, mistake, capsys):
    rejects(capsys, check_fn, mistake)


CHECKS = [(day18.check_mfu, day18.reference_mfu),
          (day18.check_precision_for, day18.reference_precision_for),
          (day18.check_scaled_step, day18.reference_scaled_step),
          (day18.check_accumulate_grads, day18.reference_accumulate_grads)]


@pytest.mark.parametrize("check_fn, reference", CHECKS)
def test_refuses_the_reference_and_stub(capsys, check_fn, reference):
    assert len(check_fn.mistakes) >= 3
    fails(capsys, check_fn, reference, "the course's own reference")
    fails(capsys, check_fn, stub, "not done yet")


@pytest.mark.parametrize("check_fn, fn", [
    (day18.check_mfu, mfu),
    (day18.check_precision_for, precision_for),
    (day18.check_precision_for, precision_from_package),
    (day18.check_precision_for, precision_major),
    (day18.check_scaled_step, scaled_step),
    (day18.check_scaled_step, scaled_step_item),
    (day18.check_scaled_step, scaled_step_from_logits),
    (day18.check_mfu, mfu_in_steps),
    (day18.check_accumulate_grads, accumulate_grads),
    (day18.check_accumulate_grads, accumulate_tensor_loss),
])
def test_passes_correct_answers(capsys, check_fn, fn):
    passes(capsys, check_fn, fn)


def test_precision_for_refuses_the_package_function(capsys):
    from llmcourse.device import pick_dtype

    fails(capsys, day18.check_precision_for, pick_dtype, "the course's own reference")


def test_mfu_hand_worked(capsys):
    # 30000 tok/s, N=800000, L=4, C=128, T=64, peak 3e11: (4.8e6 + 393216) * 3e4 / 3e11 = 0.5193216
    assert abs(mfu(30_000.0, 800_000, 4, 128, 64, 3e11) - 0.5193216) < 1e-12
    fails(capsys, day18.check_mfu, lambda *a: 0.5193216, "mfu(...) should be")
    fails(capsys, day18.check_mfu, lambda *a: None, "returned None")


def test_accumulate_grads_equals_one_big_batch(capsys):
    # independent of the check's reference: one backward over the concatenated batch
    g = torch.Generator().manual_seed(4)
    micro = [(torch.randint(13, (3, 4), generator=g), torch.randint(13, (3, 4), generator=g))
             for _ in range(3)]
    a, b = day18._TinyLM(), day18._TinyLM()
    accumulate_grads(a, micro)
    b(torch.cat([x for x, _ in micro]), torch.cat([y for _, y in micro]))[1].backward()
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p.grad, q.grad)

    def no_return(model, micro_batches):
        accumulate_grads(model, micro_batches)

    fails(capsys, day18.check_accumulate_grads, no_return, "returned None")


def test_scaled_step_garbage(capsys):
    def no_return(*args):
        scaled_step(*args)

    fails(capsys, day18.check_scaled_step, no_return, "returned None")
    fails(capsys, day18.check_scaled_step, lambda *a: "x", "one number")
