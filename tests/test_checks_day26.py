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


# ---- holes a learner trial found --------------------------------------------------------------


def test_tokens_seen_that_fills_in_the_preset_is_named(capsys):
    def fills_in(preset):
        preset["train"].setdefault("grad_accum_steps", 1)
        t = preset["train"]
        return t["max_iters"] * t["batch_size"] * preset["model"]["block_size"] * t["grad_accum_steps"]

    fails(capsys, day26.check_tokens_seen, fills_in,
          "tokens_seen changed the preset it was given (preset['train']['grad_accum_steps'] was "
          "added): leave the preset as it was: read with .get(...), do not write into it (on "
          "tokens_seen(preset) with block 48, batch 10, 70 steps")


def test_tokens_seen_that_changes_a_value_is_named(capsys):
    def minus_warmup_in_place(preset):
        t = preset["train"]
        t["max_iters"] -= 0                  # same value: not a change
        t["warmup_iters"] = t["warmup_iters"] * 1
        value = solution_tokens_seen(preset)
        preset["model"]["block_size"] += 1   # the right count, then a write into the preset
        return value

    fails(capsys, day26.check_tokens_seen, minus_warmup_in_place,
          "(preset['model']['block_size'] was changed)")


def test_tokens_seen_check_gives_a_preset_it_can_compare():
    preset = day26._preset(40, 6, 300, 30, 280)
    assert day26._first_change(preset, day26.copy.deepcopy(preset)) is None
    changed = day26.copy.deepcopy(preset)
    del changed["data"]["tokenizer"]
    assert day26._first_change(preset, changed) == "preset['data']['tokenizer'] was removed"


def test_estimate_seconds_whole_seconds_are_named(capsys):
    for rounded in (lambda f, t, p, m: int(f * t / (m * p)), lambda f, t, p, m: round(f * t / (m * p))):
        fails(capsys, day26.check_estimate_seconds, rounded,
              "do not round: return the float number of seconds")


def test_first_reaching_rounded_compare_is_named(capsys):
    def rounded(history, target):      # the trial's answer, written independently of the table
        for r in history:
            if r["type"] == "eval" and round(r["val_loss"], 2) <= target:
                return r["iter"]
    fails(capsys, day26.check_first_reaching, rounded,
          "compare the loss itself, not a rounded copy")


def test_first_reaching_just_above_the_target_is_not_reached():
    near = day26._reaching_cases()[-1]
    history, target = near.args
    assert target == 1.88 and [r["val_loss"] for r in history if r["type"] == "eval"][2:4] == [1.8857, 1.8849]
    assert day26.reference_first_reaching(history, target) is None
    assert solution_first_reaching(history, target) is None


def test_estimate_seconds_other_spellings_pass(capsys):
    for right in (lambda f, t, p, m: f * t / p / m,                    # two divisions
                  lambda f, t, p, m: (f * t) / (m * p)):               # factors swapped
        passes(capsys, day26.check_estimate_seconds, right)


def test_estimate_seconds_precedence_slip_is_named(capsys):
    # x / peak * mfu multiplies by mfu: at mfu 0.4, 7e7 * 3e8 / 2e13 * 0.4 = 420 s instead of 2625 s
    fails(capsys, day26.check_estimate_seconds, lambda f, t, p, m: f * t / p * m,
          "in parentheses")
