"""The learning-rate schedules: warmup convention, cosine, linear, constant, WSD, and the
TrainConfig fields that select them."""

from __future__ import annotations

import math

import pytest

from llmcourse.train import (
    SCHEDULES,
    TrainConfig,
    constant_lr,
    cosine_lr,
    get_lr,
    linear_lr,
    warmup_lr,
    wsd_lr,
)

PEAK, FLOOR, WARM, DECAY = 1e-3, 1e-4, 10, 110


def cfg(schedule: str, **kw) -> TrainConfig:
    base = dict(learning_rate=PEAK, min_lr=FLOOR, warmup_iters=WARM, lr_decay_iters=DECAY,
                max_iters=200, lr_schedule=schedule)
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.parametrize("schedule", list(SCHEDULES))
def test_every_schedule_shares_the_nanogpt_warmup(schedule):
    c = cfg(schedule)
    lrs = [get_lr(i, c) for i in range(WARM + 1)]
    # (it + 1) / (warmup + 1): step 0 is not zero, the peak is first reached at warmup_iters
    assert lrs[:WARM] == pytest.approx([PEAK * (i + 1) / (WARM + 1) for i in range(WARM)])
    assert lrs[WARM] == pytest.approx(PEAK)
    assert all(a < b for a, b in zip(lrs, lrs[1:]))
    assert max(get_lr(i, c) for i in range(300)) == pytest.approx(PEAK)


def test_warmup_lr_values():
    assert [warmup_lr(i, learning_rate=1.0, warmup_iters=4) for i in range(6)] == pytest.approx(
        [0.2, 0.4, 0.6, 0.8, 1.0, 1.0])
    assert warmup_lr(0, learning_rate=1.0, warmup_iters=0) == 1.0
    with pytest.raises(ValueError, match="step"):
        warmup_lr(-1, learning_rate=1.0, warmup_iters=3)


@pytest.mark.parametrize("schedule", ["cosine", "linear", "wsd"])
def test_decaying_schedules_end_at_min_lr_and_stay_there(schedule):
    c = cfg(schedule)
    lrs = [get_lr(i, c) for i in range(400)]
    assert lrs[DECAY] == pytest.approx(FLOOR)
    assert all(lr == pytest.approx(FLOOR) for lr in lrs[DECAY:])
    assert min(lrs[WARM:]) == pytest.approx(FLOOR)    # never below the floor after warmup
    after = lrs[WARM:DECAY + 1]
    assert all(a >= b for a, b in zip(after, after[1:]))  # never goes back up


def test_cosine_and_linear_shapes():
    mid = (WARM + DECAY) // 2
    assert get_lr(mid, cfg("cosine")) == pytest.approx((PEAK + FLOOR) / 2)
    assert get_lr(mid, cfg("linear")) == pytest.approx((PEAK + FLOOR) / 2)
    quarter = WARM + (DECAY - WARM) // 4
    want_cos = FLOOR + 0.5 * (1 + math.cos(math.pi * 0.25)) * (PEAK - FLOOR)
    assert get_lr(quarter, cfg("cosine")) == pytest.approx(want_cos)
    assert get_lr(quarter, cfg("linear")) == pytest.approx(PEAK - 0.25 * (PEAK - FLOOR))
    # the same functions called directly
    assert cosine_lr(quarter, learning_rate=PEAK, min_lr=FLOOR, warmup_iters=WARM,
                     lr_decay_iters=DECAY) == pytest.approx(want_cos)
    assert linear_lr(DECAY - 1, learning_rate=1.0, min_lr=0.0, warmup_iters=WARM,
                     lr_decay_iters=DECAY) == pytest.approx(1 / (DECAY - WARM))


def test_constant_ignores_decay_settings():
    c = cfg("constant", lr_decay_iters=None, max_iters=50)
    assert [get_lr(i, c) for i in (WARM, 49, 50, 10_000)] == [PEAK] * 4
    assert constant_lr(3, learning_rate=2.0, warmup_iters=3) == 2.0


def test_wsd_stable_then_linear_cooldown():
    c = cfg("wsd", cooldown_frac=0.2)                  # cooldown over the last 22 steps
    start = DECAY - round(0.2 * DECAY)
    assert start == 88
    assert all(get_lr(i, c) == PEAK for i in range(WARM, start + 1))
    assert get_lr(start + 11, c) == pytest.approx((PEAK + FLOOR) / 2)
    lrs = [get_lr(i, c) for i in range(start, DECAY + 1)]
    steps = [a - b for a, b in zip(lrs, lrs[1:])]
    assert steps == pytest.approx([steps[0]] * len(steps))  # a straight line
    # a cooldown longer than the run after warmup starts right at the end of the warmup
    assert wsd_lr(WARM, learning_rate=1.0, min_lr=0.0, warmup_iters=WARM, lr_decay_iters=DECAY,
                  cooldown_frac=1.0) == 1.0
    assert wsd_lr(WARM + 1, learning_rate=1.0, min_lr=0.0, warmup_iters=WARM,
                  lr_decay_iters=DECAY, cooldown_frac=1.0) < 1.0
    # no cooldown: straight to the floor at lr_decay_iters
    assert wsd_lr(DECAY - 1, learning_rate=1.0, min_lr=0.1, warmup_iters=0, lr_decay_iters=DECAY,
                  cooldown_frac=0.0) == 1.0
    with pytest.raises(ValueError, match="cooldown_frac"):
        wsd_lr(0, learning_rate=1.0, min_lr=0.0, warmup_iters=0, lr_decay_iters=10,
               cooldown_frac=1.5)


def test_default_decay_over_whole_run_and_decay_lr_false():
    c = TrainConfig(learning_rate=1.0, min_lr=0.0, warmup_iters=0, max_iters=100,
                    lr_schedule="linear")
    assert get_lr(50, c) == pytest.approx(0.5) and get_lr(100, c) == 0.0
    off = TrainConfig(learning_rate=3e-4, decay_lr=False, warmup_iters=10, lr_schedule="wsd")
    assert {get_lr(i, off) for i in (0, 5, 5000)} == {3e-4}


def test_config_validates_schedule_fields():
    assert TrainConfig().lr_schedule == "cosine"
    for name in SCHEDULES:
        assert TrainConfig.from_dict(TrainConfig(lr_schedule=name).to_dict()).lr_schedule == name
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(lr_schedule="cosine_with_restarts")
    with pytest.raises(ValueError, match="cooldown_frac"):
        TrainConfig(cooldown_frac=1.5)
    with pytest.raises(ValueError, match="cooldown_frac"):
        TrainConfig(cooldown_frac=-0.1)
    with pytest.raises(ValueError, match="lr_decay_iters"):
        TrainConfig(lr_schedule="wsd", warmup_iters=50, lr_decay_iters=10)


def test_get_lr_names_an_unknown_schedule():
    class Cfg:
        learning_rate, min_lr, warmup_iters, lr_decay_iters, max_iters = 1.0, 0.0, 0, 10, 10
        lr_schedule = "step"

    with pytest.raises(ValueError, match="unknown lr_schedule 'step'"):
        get_lr(0, Cfg())
