"""The day-15 checks pass the solutions, catch the usual schedule mistakes, say "not done yet"
for stubs, print exactly one line and never raise."""

from __future__ import annotations

import math

import pytest

from llmcourse.checks import day15
from checklines import one_line, stub


# ---- solutions as a learner writes them ------------------------------------------------------


def warmup_lr(it, learning_rate, warmup_iters):
    if it < warmup_iters:
        return learning_rate * (it + 1) / (warmup_iters + 1)
    return learning_rate


def cosine_lr(it, learning_rate, min_lr, warmup_iters, lr_decay_iters):
    if it < warmup_iters:
        return warmup_lr(it, learning_rate, warmup_iters)
    if it >= lr_decay_iters:
        return min_lr
    progress = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    return min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (learning_rate - min_lr)


def wsd_lr(it, learning_rate, min_lr, warmup_iters, lr_decay_iters, cooldown_frac):
    if it < warmup_iters:
        return warmup_lr(it, learning_rate, warmup_iters)
    if it >= lr_decay_iters:
        return min_lr
    start = max(warmup_iters, lr_decay_iters - round(cooldown_frac * lr_decay_iters))
    if it < start:
        return learning_rate
    progress = (it - start) / (lr_decay_iters - start)
    return learning_rate + progress * (min_lr - learning_rate)


# ---- exercise 1 ------------------------------------------------------------------------------


def test_warmup_passes_and_stub(capsys):
    assert bool(day15.check_warmup(warmup_lr)) is True
    assert "passed" in one_line(capsys)
    assert bool(day15.check_warmup(stub)) is False
    assert "not done yet" in one_line(capsys)


@pytest.mark.parametrize("wrong,hint", [
    (lambda it, lr, w: lr * min(1.0, it / w) if w else lr, "it / warmup_iters variant"),
    (lambda it, lr, w: lr * min(1.0, (it + 1) / w) if w else lr, "one step early"),
    (lambda it, lr, w: lr * (it + 1) / (w + 1), "stay at learning_rate"),
    (lambda it, lr, w: lr * (it + 1) / (w + 1) if it < w else lr / 2, "should be learning_rate"),
    (lambda it, lr, w: lr * (it + 1) / (w + 1) if it < w - 1 else lr, "during the warmup"),
    (lambda it, lr, w: None, "return"),
    (lambda it, lr, w: lr * (it + 1) / (w + 1) if it < w else lr if w else 0.0, "warmup_iters=0"),
])
def test_warmup_mistakes(capsys, wrong, hint):
    assert bool(day15.check_warmup(wrong)) is False
    assert hint in one_line(capsys)


def test_warmup_division_by_zero_is_reported(capsys):
    assert bool(day15.check_warmup(lambda it, lr, w: lr * min(1.0, it / (w - 8)))) is False
    assert "ZeroDivisionError" in one_line(capsys)


# ---- exercise 2 ------------------------------------------------------------------------------


def test_cosine_passes_and_stub(capsys):
    assert bool(day15.check_cosine(cosine_lr)) is True
    assert "passed" in one_line(capsys)
    assert bool(day15.check_cosine(stub)) is False
    assert "not done yet" in one_line(capsys)


def _cos(floor_term, scale_term, progress_fn, clamp=True):
    def fn(it, lr, lo, warm, decay):
        if it < warm:
            return warmup_lr(it, lr, warm)
        if clamp and it >= decay:
            return lo
        p = progress_fn(it, warm, decay)
        return floor_term(lo) + 0.5 * (1 + math.cos(math.pi * p)) * scale_term(lr, lo)
    return fn


good_progress = lambda it, w, d: (it - w) / (d - w)


@pytest.mark.parametrize("wrong,hint", [
    (_cos(lambda lo: 0.0, lambda lr, lo: lr, good_progress), "ends at 0"),
    (_cos(lambda lo: lo, lambda lr, lo: lr, good_progress), "above learning_rate"),
    (_cos(lambda lo: lo, lambda lr, lo: lr - lo, lambda it, w, d: it / d), "starts at step 0"),
    (_cos(lambda lo: lo, lambda lr, lo: lr - lo, good_progress, clamp=False), "climbs back up"),
    (lambda it, lr, lo, w, d: cosine_lr(it, lr, lo, w, d) if it < d else 0.0, "below min_lr"),
    (lambda it, lr, lo, w, d: (lr * it / w if it < w else cosine_lr(it, lr, lo, w, d)),
     "warmup part"),
    (lambda it, lr, lo, w, d: (warmup_lr(it, lr, w) if it < w else
                               lo + math.cos(math.pi * (it - w) / (d - w)) * (lr - lo)
                               if it < d else lo), "phase"),
    (lambda it, lr, lo, w, d: (warmup_lr(it, lr, w) if it < w else
                               lo + math.cos(0.5 * math.pi * (it - w) / (d - w)) * (lr - lo)
                               if it < d else lo), "the decay between"),
])
def test_cosine_mistakes(capsys, wrong, hint):
    assert bool(day15.check_cosine(wrong)) is False
    assert hint in one_line(capsys)


# ---- exercise 3 ------------------------------------------------------------------------------


def test_wsd_passes_and_stub(capsys):
    assert bool(day15.check_wsd(wsd_lr)) is True
    assert "passed" in one_line(capsys)
    assert bool(day15.check_wsd(stub)) is False
    assert "not done yet" in one_line(capsys)


def _wsd_variant(start_fn=None, end_early=False, floor=True, clamp=True):
    def fn(it, lr, lo, warm, decay, frac):
        if it < warm:
            return warmup_lr(it, lr, warm)
        if clamp and it >= decay:
            return lo
        start = (start_fn or (lambda: max(warm, decay - round(frac * decay))))()
        if it < start:
            return lr
        span = decay - start - (1 if end_early else 0)
        progress = (it - start) / span if not clamp else min(1.0, (it - start) / span)
        return lr + progress * ((lo if floor else 0.0) - lr)
    return fn


@pytest.mark.parametrize("wrong,hint", [
    (_wsd_variant(end_early=True), "one step early"),
    (_wsd_variant(floor=False), "below min_lr"),
    (_wsd_variant(clamp=False, floor=True), "stay at min_lr"),
    (lambda it, lr, lo, w, d, f: (warmup_lr(it, lr, w) if it < w else lo if it >= d else lr
                                  if it < d - round(f * (d - w)) else
                                  lr + (it - (d - round(f * (d - w)))) / round(f * (d - w))
                                  * (lo - lr)), "from learning_rate at step 48"),
    (lambda it, lr, lo, w, d, f: (warmup_lr(it, lr, w) if it < w else lo if it >= d else lr
                                  if it < d - round(f * d) else
                                  lr + (it - (d - round(f * d))) / round(f * d) * (lo - lr)),
     "inside the warmup"),
    (lambda it, lr, lo, w, d, f: cosine_lr(it, lr, lo, w, d), "stable phase"),
])
def test_wsd_mistakes(capsys, wrong, hint):
    assert bool(day15.check_wsd(wrong)) is False
    assert hint in one_line(capsys)


def test_blocked_by_unfinished_warmup(capsys):
    def warmup_lr(it, learning_rate, warmup_iters):   # the learner's stub of exercise 1
        raise NotImplementedError

    def cosine_using_warmup(it, lr, lo, w, d):
        if it < w:
            return warmup_lr(it, lr, w)
        return cosine_lr(it, lr, lo, w, d)

    assert bool(day15.check_cosine(cosine_using_warmup)) is False
    assert "finish exercise 1" in one_line(capsys)
    assert bool(day15.check_warmup(warmup_lr)) is False
    assert "not done yet" in one_line(capsys)
