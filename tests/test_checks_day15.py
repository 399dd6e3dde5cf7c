"""The day-15 checks pass the solutions, catch the usual schedule mistakes (from the tables in
``llmcourse/checks/day15.py``), refuse the package's own schedules, say "not done yet" for stubs,
print exactly one line and never raise."""

from __future__ import annotations

import math

import pytest

from llmcourse.checks import day15
from llmcourse.train.schedule import cosine_lr as package_cosine
from llmcourse.train.schedule import warmup_lr as package_warmup
from llmcourse.train.schedule import wsd_lr as package_wsd
from checklines import fails, mistake_params, passes, rejects, stub


# ---- the lesson's solutions (solutions/day15_learning_rate_schedules.md) ---------------------


def warmup_lr(it, learning_rate, warmup_iters):
    if it < warmup_iters:
        return learning_rate * (it + 1) / (warmup_iters + 1)
    return learning_rate


def cosine_lr(it, learning_rate, min_lr, warmup_iters, lr_decay_iters):
    if it < warmup_iters:
        return learning_rate * (it + 1) / (warmup_iters + 1)
    if it >= lr_decay_iters:
        return min_lr
    progress = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    coeff = 0.5 * (1.0 + math.cos(math.pi * progress))
    return min_lr + coeff * (learning_rate - min_lr)


def wsd_lr(it, learning_rate, min_lr, warmup_iters, lr_decay_iters, cooldown_frac):
    if it < warmup_iters:
        return learning_rate * (it + 1) / (warmup_iters + 1)
    if it >= lr_decay_iters:
        return min_lr
    start = max(warmup_iters, lr_decay_iters - round(cooldown_frac * lr_decay_iters))
    if it < start:
        return learning_rate
    progress = (it - start) / (lr_decay_iters - start)
    return learning_rate + progress * (min_lr - learning_rate)


# ---- other correct variants ------------------------------------------------------------------


def cosine_calling_warmup(it, learning_rate, min_lr, warmup_iters, lr_decay_iters):
    if it < warmup_iters:
        return warmup_lr(it, learning_rate, warmup_iters)
    if it > lr_decay_iters:
        return min_lr          # > instead of >=: at lr_decay_iters the cosine is min_lr anyway
    progress = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    return min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (learning_rate - min_lr)


def warmup_with_min(it, learning_rate, warmup_iters):
    return learning_rate * min(1.0, (it + 1) / (warmup_iters + 1))


@pytest.mark.parametrize("check_fn, mistake", mistake_params(day15))
def test_mistake_rejected(check_fn, mistake, capsys):
    rejects(capsys, check_fn, mistake)


@pytest.mark.parametrize("check_fn, fn", [
    (day15.check_warmup, warmup_lr), (day15.check_warmup, warmup_with_min),
    (day15.check_cosine, cosine_lr), (day15.check_cosine, cosine_calling_warmup),
    (day15.check_wsd, wsd_lr),
])
def test_solutions_pass(capsys, check_fn, fn):
    passes(capsys, check_fn, fn)


@pytest.mark.parametrize("check_fn, fn", [
    (day15.check_warmup, package_warmup), (day15.check_cosine, package_cosine),
    (day15.check_wsd, package_wsd), (day15.check_warmup, day15._reference_warmup),
    (day15.check_cosine, day15._reference_cosine), (day15.check_wsd, day15._reference_wsd),
])
def test_refuses_the_package_reference(capsys, check_fn, fn):
    fails(capsys, check_fn, fn, "the course's own reference")


@pytest.mark.parametrize("check_fn", [day15.check_warmup, day15.check_cosine, day15.check_wsd])
def test_stub(capsys, check_fn):
    fails(capsys, check_fn, stub, "not done yet")


def test_tables_have_three_mistakes():
    for fn in (day15.check_warmup, day15.check_cosine, day15.check_wsd):
        assert len(fn.mistakes) >= 3


# ---- behaviours other than the tables' mistakes ----------------------------------------------


def test_hand_worked_values():
    # warmup_iters=3, lr=0.8: steps 0, 1, 2 get 0.2, 0.4, 0.6, then 0.8
    assert [warmup_lr(i, 0.8, 3) for i in range(5)] == pytest.approx([0.2, 0.4, 0.6, 0.8, 0.8])
    # cosine halfway between warmup 2 and decay 6 (step 4): min + 0.5 * (lr - min)
    assert cosine_lr(4, 1.0, 0.2, 2, 6) == pytest.approx(0.6)
    # wsd: 30 * 0.25 = 7.5 rounds to 8, cooldown from step 22 to 30
    assert wsd_lr(22, 1.0, 0.1, 3, 30, 0.25) == pytest.approx(1.0)
    assert wsd_lr(26, 1.0, 0.1, 3, 30, 0.25) == pytest.approx(0.55)


def test_no_warmup_case_is_named(capsys):
    def zero_without_warmup(it, lr, w):
        return lr * (it + 1) / (w + 1) if it < w else lr if w else 0.0

    fails(capsys, day15.check_warmup, zero_without_warmup, "(no warmup)")


def test_hard_coded_settings_fail(capsys):
    def notebook_cosine(it, learning_rate, min_lr, warmup_iters, lr_decay_iters):
        return cosine_lr(it, 6e-4, 6e-5, 7, 57)

    fails(capsys, day15.check_cosine, notebook_cosine, "lr[")


@pytest.mark.parametrize("value, words", [(None, "return"), ("0.1", "one number"),
                                          ([0.1], "one number")])
def test_odd_return_values(capsys, value, words):
    fails(capsys, day15.check_warmup, lambda it, lr, w: value, words)


def test_division_by_zero_is_reported(capsys):
    fails(capsys, day15.check_warmup, lambda it, lr, w: lr * min(1.0, it / (w - 8)),
          "ZeroDivisionError")


def test_blocked_by_unfinished_warmup(capsys):
    def warmup_lr(it, learning_rate, warmup_iters):   # the learner's stub of exercise 1
        raise NotImplementedError

    def cosine_using_warmup(it, lr, lo, w, d):
        if it < w:
            return warmup_lr(it, lr, w)
        return cosine_lr(it, lr, lo, w, d)

    fails(capsys, day15.check_cosine, cosine_using_warmup, "finish exercise 1")
    fails(capsys, day15.check_warmup, warmup_lr, "not done yet")
