"""Checks for day 15, "Learning-rate schedules".

Each ``check_*`` runs the learner's schedule over whole runs - every step from 0 to well past
``lr_decay_iters`` - for several settings unlike the notebook's (no warmup, a decay that starts
right after the warmup, a cooldown that would start inside the warmup, ``round`` at a .5), and
compares the curve with the package's (:mod:`llmcourse.train.schedule`). When a curve differs,
the exercise's table of typical mistakes (an off-by-one warmup, a decay that ends at 0, a cosine
that climbs back up after ``lr_decay_iters`` ...) names the mistake. Each prints one line and
never raises.

Example::

    >>> from llmcourse.checks import day15
    >>> def warmup_lr(it, learning_rate, warmup_iters):
    ...     return learning_rate * (it + 1) / (warmup_iters + 1) if it < warmup_iters else learning_rate
    >>> ok = day15.check_warmup(warmup_lr)
    ✅ warmup: passed
"""

from __future__ import annotations

import math
from typing import Any, Callable

from llmcourse.checks._core import Case, Mistake, as_float, check, compare, needs_earlier
from llmcourse.train import schedule as _ref

__all__ = ["check_warmup", "check_cosine", "check_wsd"]

_TOL = dict(atol=1e-12, rtol=1e-6)


def _curve_run(impl: Callable[..., Any], case: Case) -> list[Any]:
    """The schedule at every step of the case: ``[impl(it, *args) for it in steps]``."""
    steps = case.kwargs["steps"]
    return [impl(it, *case.args) for it in steps]


def _read(name: str) -> Callable[[Any, Case], list[float]]:
    def read(curve: list[Any], case: Case) -> list[float]:
        return [as_float(v, f"{name}({it}, ...)") for it, v in zip(case.kwargs["steps"], curve)]
    return read


# ---- exercise 1: warmup ----------------------------------------------------------------------


def _reference_warmup(it, learning_rate, warmup_iters):
    return _ref.warmup_lr(it, learning_rate=learning_rate, warmup_iters=warmup_iters)


def _warmup_it_over_w(it, learning_rate, warmup_iters):
    if it < warmup_iters:
        return learning_rate * it / warmup_iters
    return learning_rate


def _warmup_early_peak(it, learning_rate, warmup_iters):
    if it < warmup_iters:
        return learning_rate * (it + 1) / warmup_iters
    return learning_rate


def _warmup_no_cap(it, learning_rate, warmup_iters):
    return learning_rate * (it + 1) / (warmup_iters + 1)


def _warmup_int_division(it, learning_rate, warmup_iters):
    if it < warmup_iters:
        return learning_rate * ((it + 1) // (warmup_iters + 1))
    return learning_rate


def _warmup_it_over_w_plus_1(it, learning_rate, warmup_iters):
    if it < warmup_iters:
        return learning_rate * it / (warmup_iters + 1)
    return learning_rate


def _warmup_no_learning_rate(it, learning_rate, warmup_iters):
    if it < warmup_iters:
        return (it + 1) / (warmup_iters + 1)
    return learning_rate


WARMUP = [
    Mistake("it / warmup_iters", _warmup_it_over_w,
            hint="that is the it / warmup_iters variant: step 0 gets a rate of 0 and is wasted; use "
                 "learning_rate * (it + 1) / (warmup_iters + 1) like the package"),
    Mistake("(it + 1) / warmup_iters", _warmup_early_peak,
            hint="(it + 1) / warmup_iters reaches the peak one step early, at warmup_iters - 1; "
                 "divide by warmup_iters + 1"),
    Mistake("no cap", _warmup_no_cap,
            hint="the rate keeps rising after the warmup and goes above learning_rate: from step "
                 "warmup_iters on return learning_rate itself"),
    Mistake("it / (warmup_iters + 1)", _warmup_it_over_w_plus_1,
            hint="the numerator is it + 1, not it: learning_rate * (it + 1) / (warmup_iters + 1), so "
                 "step 0 already gets a small rate"),
    Mistake("learning_rate left out", _warmup_no_learning_rate,
            hint="during the warmup you return the fraction alone; multiply it by the peak: "
                 "learning_rate * (it + 1) / (warmup_iters + 1)"),
    Mistake("integer division", _warmup_int_division,
            hint="(it + 1) // (warmup_iters + 1) is an integer division (0 during the whole warmup); "
                 "use / for a fraction"),
]


def _warmup_cases() -> list[Case]:
    return [
        Case("warmup_lr(it, 3e-3, warmup_iters=8) for it = 0..20", 3e-3, 8, steps=range(21)),
        Case("warmup_lr(it, 1.0, warmup_iters=1) for it = 0..5", 1.0, 1, steps=range(6)),
        Case("warmup_lr(it, 0.5, warmup_iters=0) (no warmup) for it = 0..5", 0.5, 0,
             steps=range(6)),
        Case("warmup_lr(it, 6e-4, warmup_iters=100) for it = 0..130", 6e-4, 100,
             steps=range(131)),
    ]


@check("warmup", mistakes=WARMUP)
def check_warmup(warmup_lr: Callable[..., Any]) -> None:
    """Exercise 1: ``warmup_lr(it, learning_rate, warmup_iters)``, nanoGPT's convention."""
    compare(warmup_lr, _reference_warmup, _warmup_cases(), name="lr", run=_curve_run,
            mistakes=WARMUP, read=_read("warmup_lr"), **_TOL)


# ---- exercise 2: warmup + cosine -------------------------------------------------------------


def _reference_cosine(it, learning_rate, min_lr, warmup_iters, lr_decay_iters):
    return _ref.cosine_lr(it, learning_rate=learning_rate, min_lr=min_lr,
                          warmup_iters=warmup_iters, lr_decay_iters=lr_decay_iters)


def _warm(it, learning_rate, warmup_iters):
    return learning_rate * (it + 1) / (warmup_iters + 1)


def _cosine_to_zero(it, learning_rate, min_lr, warmup_iters, lr_decay_iters):
    if it < warmup_iters:
        return _warm(it, learning_rate, warmup_iters)
    if it >= lr_decay_iters:
        return min_lr
    progress = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    return 0.5 * (1 + math.cos(math.pi * progress)) * learning_rate


def _cosine_scaled_by_lr(it, learning_rate, min_lr, warmup_iters, lr_decay_iters):
    if it < warmup_iters:
        return _warm(it, learning_rate, warmup_iters)
    if it >= lr_decay_iters:
        return min_lr
    progress = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    return min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * learning_rate


def _cosine_from_zero(it, learning_rate, min_lr, warmup_iters, lr_decay_iters):
    if it < warmup_iters:
        return _warm(it, learning_rate, warmup_iters)
    if it >= lr_decay_iters:
        return min_lr
    progress = it / lr_decay_iters
    return min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (learning_rate - min_lr)


def _cosine_no_floor(it, learning_rate, min_lr, warmup_iters, lr_decay_iters):
    if it < warmup_iters:
        return _warm(it, learning_rate, warmup_iters)
    progress = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    return min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (learning_rate - min_lr)


def _cosine_no_half(it, learning_rate, min_lr, warmup_iters, lr_decay_iters):
    if it < warmup_iters:
        return _warm(it, learning_rate, warmup_iters)
    if it >= lr_decay_iters:
        return min_lr
    progress = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    return min_lr + math.cos(math.pi * progress) * (learning_rate - min_lr)


def _cosine_bad_warmup(it, learning_rate, min_lr, warmup_iters, lr_decay_iters):
    if it < warmup_iters:
        return learning_rate * it / warmup_iters
    if it >= lr_decay_iters:
        return min_lr
    progress = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    return min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (learning_rate - min_lr)


def _cosine_with(coeff_of: Callable[[float], float], *, progress_of: Any = None) -> Callable[..., float]:
    def cosine(it, learning_rate, min_lr, warmup_iters, lr_decay_iters):
        if it < warmup_iters:
            return _warm(it, learning_rate, warmup_iters)
        if it >= lr_decay_iters:
            return min_lr
        if progress_of is None:
            progress = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
        else:
            progress = progress_of(it, warmup_iters, lr_decay_iters)
        return min_lr + coeff_of(progress) * (learning_rate - min_lr)
    return cosine


def _half_cosine(progress: float) -> float:
    return 0.5 * (1 + math.cos(math.pi * progress))


COSINE = [
    Mistake("decays to 0", _cosine_to_zero,
            hint="your decay ends at 0, not at min_lr: use min_lr + coeff * (learning_rate - min_lr)"),
    Mistake("scaled by learning_rate", _cosine_scaled_by_lr,
            hint="the rate starts the decay above learning_rate: scale coeff by "
                 "(learning_rate - min_lr), not by learning_rate"),
    Mistake("cosine from step 0", _cosine_from_zero,
            hint="the cosine starts at step 0 instead of at the end of the warmup: "
                 "progress = (it - warmup_iters) / (lr_decay_iters - warmup_iters)"),
    Mistake("no floor after decay", _cosine_no_floor,
            hint="after lr_decay_iters the rate should stay at min_lr (a cosine left running "
                 "climbs back up); return min_lr for it >= lr_decay_iters"),
    Mistake("no 0.5 * (1 + cos)", _cosine_no_half,
            hint="cos(pi * progress) goes from 1 to -1, below min_lr; use coeff = 0.5 * (1 + "
                 "cos(pi * progress)), which goes from 1 to 0"),
    Mistake("1 + cos without the 0.5", _cosine_with(lambda x: 1 + math.cos(math.pi * x)),
            hint="1 + cos(pi * progress) goes from 2 to 0, so the decay starts at twice the peak: "
                 "halve it, coeff = 0.5 * (1 + cos(pi * progress)), which goes from 1 to 0"),
    Mistake("cos(2 pi progress)", _cosine_with(lambda x: 0.5 * (1 + math.cos(2 * math.pi * x))),
            hint="cos(2 * pi * progress) is a full period, down and back up to the peak: the "
                 "decay is half a period, cos(pi * progress)"),
    Mistake("cos without pi", _cosine_with(lambda x: 0.5 * (1 + math.cos(x))),
            hint="cos(progress) only bends a little over progress 0..1: the angle is pi * progress, "
                 "coeff = 0.5 * (1 + math.cos(math.pi * progress))"),
    Mistake("1 - cos", _cosine_with(lambda x: 0.5 * (1 - math.cos(math.pi * x))),
            hint="0.5 * (1 - cos(pi * progress)) goes from 0 up to 1, so the rate climbs from "
                 "min_lr after the warmup; use 0.5 * (1 + cos(pi * progress)), from 1 down to 0"),
    Mistake("progress over lr_decay_iters", _cosine_with(_half_cosine, progress_of=lambda it, w, d: (it - w) / d),
            hint="progress must reach 1 at lr_decay_iters: divide by the decay's length, "
                 "(it - warmup_iters) / (lr_decay_iters - warmup_iters), not by lr_decay_iters"),
    Mistake("integer division", _cosine_with(_half_cosine, progress_of=lambda it, w, d: (it - w) // (d - w)),
            hint="(it - warmup_iters) // (lr_decay_iters - warmup_iters) is an integer division "
                 "(0 for the whole decay); use / for a fraction"),
    Mistake("it / warmup_iters warmup", _cosine_bad_warmup,
            hint="the warmup part is off: use exercise 1's rule, learning_rate * (it + 1) / "
                 "(warmup_iters + 1)"),
]


def _cosine_cases() -> list[Case]:
    return [
        Case("cosine_lr(it, 6e-4, min_lr=6e-5, warmup_iters=7, lr_decay_iters=57) for it = 0..96",
             6e-4, 6e-5, 7, 57, steps=range(97)),
        Case("cosine_lr(it, 1.0, min_lr=0.0, warmup_iters=0, lr_decay_iters=20) for it = 0..30",
             1.0, 0.0, 0, 20, steps=range(31)),
        Case("cosine_lr(it, 3e-4, min_lr=1e-4, warmup_iters=10, lr_decay_iters=11) for it = 0..20",
             3e-4, 1e-4, 10, 11, steps=range(21)),
    ]


@check("cosine schedule", mistakes=COSINE)
@needs_earlier(warmup_lr=1)
def check_cosine(cosine_lr: Callable[..., Any]) -> None:
    """Exercise 2: ``cosine_lr(it, learning_rate, min_lr, warmup_iters, lr_decay_iters)``."""
    compare(cosine_lr, _reference_cosine, _cosine_cases(), name="lr", run=_curve_run,
            mistakes=COSINE, read=_read("cosine_lr"), **_TOL)


# ---- exercise 3: warmup-stable-decay ---------------------------------------------------------


def _reference_wsd(it, learning_rate, min_lr, warmup_iters, lr_decay_iters, cooldown_frac):
    return _ref.wsd_lr(it, learning_rate=learning_rate, min_lr=min_lr, warmup_iters=warmup_iters,
                       lr_decay_iters=lr_decay_iters, cooldown_frac=cooldown_frac)


def _wsd_with(start_of: Callable[..., int], *, end_offset: int = 0, to_zero: bool = False,
              cosine: bool = False) -> Callable[..., float]:
    def wsd(it, learning_rate, min_lr, warmup_iters, lr_decay_iters, cooldown_frac):
        if it < warmup_iters:
            return _warm(it, learning_rate, warmup_iters)
        if it >= lr_decay_iters:
            return min_lr
        start = start_of(warmup_iters, lr_decay_iters, cooldown_frac)
        if it < start:
            return learning_rate
        progress = min(1.0, (it - start) / (lr_decay_iters - start - end_offset))
        floor = 0.0 if to_zero else min_lr
        if cosine:
            return floor + 0.5 * (1 + math.cos(math.pi * progress)) * (learning_rate - floor)
        return learning_rate + progress * (floor - learning_rate)
    return wsd


def _start(w, d, f):
    return max(w, d - round(f * d))


_wsd_no_max = _wsd_with(lambda w, d, f: d - round(f * d))
_wsd_int = _wsd_with(lambda w, d, f: max(w, d - int(f * d)))
_wsd_early = _wsd_with(_start, end_offset=1)
_wsd_to_zero = _wsd_with(_start, to_zero=True)
_wsd_cosine = _wsd_with(_start, cosine=True)
_wsd_ceil = _wsd_with(lambda w, d, f: max(w, d - math.ceil(f * d)))
_wsd_frac_after_warmup = _wsd_with(lambda w, d, f: max(w, d - round(f * (d - w))))
_wsd_frac_as_start = _wsd_with(lambda w, d, f: max(w, round(f * d)))
_wsd_unrounded = _wsd_with(lambda w, d, f: max(w, d * (1 - f)))


def _wsd_no_floor(it, learning_rate, min_lr, warmup_iters, lr_decay_iters, cooldown_frac):
    if it < warmup_iters:
        return _warm(it, learning_rate, warmup_iters)
    start = _start(warmup_iters, lr_decay_iters, cooldown_frac)
    if it < start:
        return learning_rate
    progress = (it - start) / (lr_decay_iters - start)   # above 1 after lr_decay_iters
    return learning_rate + progress * (min_lr - learning_rate)


def _wsd_progress_plus_one(it, learning_rate, min_lr, warmup_iters, lr_decay_iters, cooldown_frac):
    if it < warmup_iters:
        return _warm(it, learning_rate, warmup_iters)
    if it >= lr_decay_iters:
        return min_lr
    start = _start(warmup_iters, lr_decay_iters, cooldown_frac)
    if it < start:
        return learning_rate
    progress = (it - start + 1) / (lr_decay_iters - start)   # already below the peak at `start`
    return learning_rate + progress * (min_lr - learning_rate)


WSD = [
    Mistake("cooldown inside the warmup", _wsd_no_max,
            hint="the cooldown starts inside the warmup here; start it at max(warmup_iters, "
                 "lr_decay_iters - round(cooldown_frac * lr_decay_iters))"),
    Mistake("int instead of round", _wsd_int,
            hint="int(cooldown_frac * lr_decay_iters) truncates (7.5 -> 7); the cooldown length "
                 "is round(cooldown_frac * lr_decay_iters)"),
    Mistake("floor one step early", _wsd_early,
            hint="the cooldown reaches min_lr one step early; progress = (it - start) / "
                 "(lr_decay_iters - start), which is 1 only at lr_decay_iters"),
    Mistake("cooldown to 0", _wsd_to_zero,
            hint="the cooldown should end at min_lr, not at 0: learning_rate + progress * "
                 "(min_lr - learning_rate)"),
    Mistake("cosine cooldown", _wsd_cosine,
            hint="the cooldown is a straight line from learning_rate to min_lr, not a cosine: "
                 "learning_rate + progress * (min_lr - learning_rate)"),
    Mistake("fraction of the steps after warmup", _wsd_frac_after_warmup,
            hint="the cooldown is cooldown_frac of ALL the lr_decay_iters steps, not of the steps "
                 "after the warmup: start = max(warmup_iters, lr_decay_iters - round(cooldown_frac "
                 "* lr_decay_iters))"),
    Mistake("cooldown_frac read as the start", _wsd_frac_as_start,
            hint="cooldown_frac is the share of the run spent cooling down, at its END: the "
                 "cooldown starts at lr_decay_iters - round(cooldown_frac * lr_decay_iters), not "
                 "at round(cooldown_frac * lr_decay_iters)"),
    Mistake("progress one step ahead", _wsd_progress_plus_one,
            hint="the cooldown's first step is already below learning_rate: progress = (it - start) "
                 "/ (lr_decay_iters - start), which is 0 at it = start"),
    Mistake("ceil instead of round", _wsd_ceil,
            hint="the cooldown is one step too long: math.ceil(cooldown_frac * lr_decay_iters) "
                 "rounds up (12.3 -> 13), as does int(lr_decay_iters * (1 - cooldown_frac)) for the "
                 "start; the cooldown length is round(cooldown_frac * lr_decay_iters)"),
    Mistake("start not rounded", _wsd_unrounded,
            hint="the cooldown's start is not a whole step (lr_decay_iters * (1 - cooldown_frac) "
                 "need not be an integer): start = max(warmup_iters, lr_decay_iters - "
                 "round(cooldown_frac * lr_decay_iters))"),
    Mistake("no floor after lr_decay_iters", _wsd_no_floor,
            hint="after lr_decay_iters the line keeps falling below min_lr; return min_lr for "
                 "it >= lr_decay_iters"),
]


def _wsd_cases() -> list[Case]:
    return [
        Case("wsd_lr(it, 2e-3, min_lr=2e-4, warmup_iters=5, lr_decay_iters=60, cooldown_frac=0.2) "
             "for it = 0..79", 2e-3, 2e-4, 5, 60, 0.2, steps=range(80)),
        Case("wsd_lr(it, 1.0, min_lr=0.1, warmup_iters=3, lr_decay_iters=30, cooldown_frac=0.25) "
             "(round(7.5) = 8) for it = 0..40", 1.0, 0.1, 3, 30, 0.25, steps=range(41)),
        Case("wsd_lr(it, 1.0, min_lr=0.0, warmup_iters=10, lr_decay_iters=20, cooldown_frac=0.9) "
             "for it = 0..24", 1.0, 0.0, 10, 20, 0.9, steps=range(25)),
        Case("wsd_lr(it, 1.0, min_lr=0.1, warmup_iters=2, lr_decay_iters=41, cooldown_frac=0.3) "
             "(round(12.3) = 12) for it = 0..45", 1.0, 0.1, 2, 41, 0.3, steps=range(46)),
        Case("wsd_lr(it, 5e-4, min_lr=5e-5, warmup_iters=0, lr_decay_iters=12, cooldown_frac=0.0) "
             "(no cooldown) for it = 0..15", 5e-4, 5e-5, 0, 12, 0.0, steps=range(16)),
    ]


@check("warmup-stable-decay", mistakes=WSD)
@needs_earlier(warmup_lr=1)
def check_wsd(wsd_lr: Callable[..., Any]) -> None:
    """Exercise 3: ``wsd_lr(it, learning_rate, min_lr, warmup_iters, lr_decay_iters,
    cooldown_frac)``: warmup, flat, then a straight line to ``min_lr``."""
    compare(wsd_lr, _reference_wsd, _wsd_cases(), name="lr", run=_curve_run, mistakes=WSD,
            read=_read("wsd_lr"), **_TOL)
