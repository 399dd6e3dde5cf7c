"""The day-26 checks pass the lesson's solutions, reject every mistake of their tables, refuse the
course's own references, and say "not done yet" for stubs."""

from __future__ import annotations

import pytest

from llmcourse.checks import day26
from llmcourse.presets import get_preset
from checklines import fails, mistake_params, one_line, passes, rejects, stub


# ---- the lesson's solutions (solutions/day26_reproducing_nanogpt.md) -----------------------------


def solution_tokens_seen(preset):
    train = preset["train"]
    return (train["max_iters"] * train["batch_size"] * preset["model"]["block_size"]
            * train.get("grad_accum_steps", 1))


def solution_estimate_seconds(flops_per_token, tokens, peak_flops, mfu):
    return flops_per_token * tokens / (peak_flops * mfu)


def solution_first_reaching(history, target):
    for row in history:
        if row["type"] == "eval" and row["val_loss"] <= target:
            return row["iter"]
    return None


CHECKS = [
    (day26.check_tokens_seen, solution_tokens_seen, day26.reference_tokens_seen),
    (day26.check_estimate_seconds, solution_estimate_seconds, day26.reference_estimate_seconds),
    (day26.check_first_reaching, solution_first_reaching, day26.reference_first_reaching),
]


@pytest.mark.parametrize("check_fn, mistake", mistake_params(day26))
def test_mistake_rejected(check_fn, mistake, capsys):
    rejects(capsys, check_fn, mistake)


@pytest.mark.parametrize("check_fn, solution, reference", CHECKS)
def test_solution_passes(check_fn, solution, reference, capsys):
    passes(capsys, check_fn, solution)


@pytest.mark.parametrize("check_fn, solution, reference", CHECKS)
def test_reference_is_refused(check_fn, solution, reference, capsys):
    fails(capsys, check_fn, reference, "the course's own reference")


@pytest.mark.parametrize("check_fn, solution, reference", CHECKS)
def test_stub_is_not_done(check_fn, solution, reference, capsys):
    fails(capsys, check_fn, stub, "not done yet")


@pytest.mark.parametrize("check_fn, solution, reference", CHECKS)
def test_never_raises_on_odd_values(check_fn, solution, reference, capsys):
    for odd in (lambda *a: None, lambda *a: [1, 2], lambda *a: 1 / 0):
        assert bool(check_fn(odd)) is False
        assert one_line(capsys).startswith("❌")


# ---- variants a learner may write ------------------------------------------------------------


def test_tokens_seen_variants_pass(capsys):
    def with_get(preset):
        import math
        t = preset["train"]
        return math.prod([t["max_iters"], t["batch_size"], preset["model"]["block_size"],
                          t.get("grad_accum_steps", 1)])
    passes(capsys, day26.check_tokens_seen, with_get)


def test_first_reaching_variants_pass(capsys):
    def with_next(history, target):
        return next((r["iter"] for r in history
                     if r.get("type") == "eval" and r["val_loss"] <= target), None)
    passes(capsys, day26.check_first_reaching, with_next)


def test_first_reaching_numpy_iteration_passes(capsys):
    import numpy as np
    passes(capsys, day26.check_first_reaching,
           lambda h, t: (lambda v: None if v is None else np.int64(v))(solution_first_reaching(h, t)))


def test_tokens_seen_generic_message_names_the_preset(capsys):
    fails(capsys, day26.check_tokens_seen, lambda p: solution_tokens_seen(p) + 1,
          "block 40, batch 6, 300 steps")


# ---- hand-worked values of the references, independent of the checks -----------------------------


def test_references_on_the_presets():
    assert day26.reference_tokens_seen(get_preset("shakespeare-char")) == 5000 * 64 * 256
    assert day26.reference_tokens_seen(get_preset("gpt2-124m")) == 600000 * 12 * 1024 * 40
    assert day26.reference_estimate_seconds(1e6, 1e6, 1e12, 0.5) == pytest.approx(2.0)
    log = day26._log()
    assert day26.reference_first_reaching(log, 2.0) == 200      # val 2.0 at 200 (train at 100)
    assert day26.reference_first_reaching(log, 2.4) == 200
    assert day26.reference_first_reaching(log, 1.8) is None
    assert day26.reference_first_reaching(log, 5.0) == 0
