"""Checks for day 15, "Learning-rate schedules".

Each ``check_*`` runs the learner's schedule function over many steps, with settings unlike the
notebook's, compares it with the package's (:mod:`llmcourse.train.schedule`) and, when it
differs, first looks for the mistakes people make (an off-by-one warmup, a decay that ends at
zero or below ``min_lr``, a cosine that climbs back up after ``lr_decay_iters``, a cosine that
starts at step 0 instead of at the end of the warmup). Each prints one line and never raises.

Example::

    >>> from llmcourse.checks import day15
    >>> from llmcourse.train import warmup_lr
    >>> ok = day15.check_warmup(lambda it, lr, w: warmup_lr(it, learning_rate=lr, warmup_iters=w))
    ✅ warmup: passed
    >>> bool(ok)
    True
"""

from __future__ import annotations

import math
import traceback
from typing import Any, Callable

from llmcourse.checks._core import CheckFailed, check
from llmcourse.train.schedule import cosine_lr as _cosine
from llmcourse.train.schedule import warmup_lr as _warmup
from llmcourse.train.schedule import wsd_lr as _wsd

__all__ = ["check_warmup", "check_cosine", "check_wsd"]


def _number(value: Any, what: str) -> float:
    if value is None:
        raise CheckFailed(f"{what} returned None; did you forget the `return`?")
    if hasattr(value, "item") and getattr(value, "numel", lambda: 1)() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CheckFailed(f"{what} should return a number (a Python float), got "
                          f"{type(value).__name__}")
    return float(value)


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    """Call the learner's function; if it stops in their still-unfinished ``warmup_lr``, say so
    (instead of a "not done yet" that points at the wrong cell)."""
    try:
        return fn(*args)
    except NotImplementedError as exc:
        frames = traceback.extract_tb(exc.__traceback__)
        if frames and frames[-1].name == "warmup_lr" and getattr(fn, "__name__", "") != "warmup_lr":
            raise CheckFailed("your function calls your warmup_lr, which is still a stub: finish "
                              "exercise 1 first (or write the warmup inline)") from None
        raise


def _curve(fn: Callable[..., Any], steps: range, args: tuple, name: str) -> list[float]:
    return [_number(_call(fn, it, *args), f"{name}({it}, ...)") for it in steps]


def _same(a: list[float], b: list[float], scale: float) -> bool:
    return all(math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-9 * scale) for x, y in zip(a, b))


def _first_diff(got: list[float], want: list[float], steps: range, scale: float) -> str:
    for it, g, w in zip(steps, got, want):
        if not math.isclose(g, w, rel_tol=1e-6, abs_tol=1e-9 * scale):
            return f"at step {it} your rate is {g:.6g}, expected {w:.6g}"
    return "they agree"


# ---- exercise 1 ------------------------------------------------------------------------------


@check("warmup")
def check_warmup(warmup_lr: Callable[..., Any]) -> None:
    """Exercise 1: ``warmup_lr(it, learning_rate, warmup_iters)``, nanoGPT's convention."""
    lr, warm = 3e-3, 8
    steps = range(0, warm + 5)
    got = _curve(warmup_lr, steps, (lr, warm), "warmup_lr")
    want = [_warmup(it, learning_rate=lr, warmup_iters=warm) for it in steps]
    if _same(got, want, lr):
        if _number(warmup_lr(0, 1.0, 0), "warmup_lr(0, 1.0, 0)") != 1.0:
            raise CheckFailed("with warmup_iters=0 there is no warmup: step 0 should get the full "
                              "learning_rate")
        return
    variants = {
        "it / warmup": [lr * min(1.0, it / warm) for it in steps],
        "(it + 1) / warmup": [lr * min(1.0, (it + 1) / warm) for it in steps],
    }
    if _same(got, variants["it / warmup"], lr):
        raise CheckFailed("that is the it / warmup_iters variant: step 0 gets a rate of 0 and is "
                          "wasted; use (it + 1) / (warmup_iters + 1) like the package")
    if _same(got, variants["(it + 1) / warmup"], lr):
        raise CheckFailed("(it + 1) / warmup_iters reaches the peak one step early, at "
                          "warmup_iters - 1; divide by warmup_iters + 1")
    if any(g > lr * (1 + 1e-9) for g in got):
        raise CheckFailed("the rate goes above learning_rate: after the warmup it should stay at "
                          "learning_rate")
    if any(not math.isclose(g, lr, rel_tol=1e-6) for g in got[warm:]):
        raise CheckFailed(f"from step warmup_iters on the rate should be learning_rate; "
                          f"{_first_diff(got, want, steps, lr)}")
    raise CheckFailed(f"during the warmup the rate should be learning_rate * (it + 1) / "
                      f"(warmup_iters + 1); {_first_diff(got, want, steps, lr)}")


# ---- exercise 2 ------------------------------------------------------------------------------


@check("cosine schedule")
def check_cosine(cosine_lr: Callable[..., Any]) -> None:
    """Exercise 2: ``cosine_lr(it, learning_rate, min_lr, warmup_iters, lr_decay_iters)``."""
    lr, floor, warm, decay = 6e-4, 6e-5, 7, 57
    steps = range(0, decay + 40)
    args = (lr, floor, warm, decay)
    got = _curve(cosine_lr, steps, args, "cosine_lr")
    want = [_cosine(it, learning_rate=lr, min_lr=floor, warmup_iters=warm, lr_decay_iters=decay)
            for it in steps]
    if _same(got, want, lr):
        return

    def cos_from(prog: Callable[[int], float], lo: float, hi: float) -> list[float]:
        out = []
        for it, w in zip(steps, want):
            if it < warm:
                out.append(w)
            else:
                out.append(lo + 0.5 * (1 + math.cos(math.pi * prog(it))) * (hi - lo))
        return out

    progress = lambda it: (it - warm) / (decay - warm)
    hints = [
        (cos_from(progress, 0.0, lr),
         "your decay ends at 0, not at min_lr: use min_lr + coeff * (learning_rate - min_lr)"),
        ([w if it < warm else floor + 0.5 * (1 + math.cos(math.pi * progress(it))) * lr
          for it, w in zip(steps, want)],
         "the rate starts the decay above learning_rate: scale coeff by "
         "(learning_rate - min_lr), not by learning_rate"),
        (cos_from(lambda it: it / decay, floor, lr),
         "the cosine starts at step 0 instead of at the end of the warmup: "
         "progress = (it - warmup_iters) / (lr_decay_iters - warmup_iters)"),
    ]
    decay_part = slice(warm, decay)
    for variant, hint in hints:
        if _same(got[decay_part], variant[decay_part], lr):
            raise CheckFailed(hint)
    if not _same(got[:warm], want[:warm], lr):
        raise CheckFailed("the warmup part is off (exercise 1's rule: learning_rate * (it + 1) / "
                          f"(warmup_iters + 1)); {_first_diff(got, want, steps, lr)}")
    if not math.isclose(got[warm], lr, rel_tol=1e-6):
        raise CheckFailed(f"at it = warmup_iters the rate should be the peak learning_rate "
                          f"{lr:g}, got {got[warm]:.6g}")
    tail = got[decay:]
    if any(t < floor * (1 - 1e-6) for t in tail):
        raise CheckFailed("after lr_decay_iters your rate drops below min_lr; return min_lr for "
                          "it >= lr_decay_iters")
    if any(not math.isclose(t, floor, rel_tol=1e-6) for t in tail):
        raise CheckFailed("after lr_decay_iters the rate should stay at min_lr (a cosine left "
                          "running climbs back up); return min_lr for it >= lr_decay_iters")
    if min(got[decay_part]) < floor * (1 - 1e-6):
        raise CheckFailed("during the decay the rate goes below min_lr: the cosine's phase is "
                          "off; use coeff = 0.5 * (1 + cos(pi * progress)), which goes 1 -> 0")
    raise CheckFailed(f"the decay between warmup_iters and lr_decay_iters is off: "
                      f"{_first_diff(got, want, steps, lr)}")


# ---- exercise 3 ------------------------------------------------------------------------------


@check("warmup-stable-decay")
def check_wsd(wsd_lr: Callable[..., Any]) -> None:
    """Exercise 3: ``wsd_lr(it, learning_rate, min_lr, warmup_iters, lr_decay_iters,
    cooldown_frac)``: warmup, flat, then a straight line to ``min_lr``."""
    lr, floor, warm, decay, frac = 2e-3, 2e-4, 5, 60, 0.2       # cooldown: steps 48 .. 60
    steps = range(0, decay + 20)
    args = (lr, floor, warm, decay, frac)
    got = _curve(wsd_lr, steps, args, "wsd_lr")
    want = [_wsd(it, learning_rate=lr, min_lr=floor, warmup_iters=warm, lr_decay_iters=decay,
                 cooldown_frac=frac) for it in steps]
    if _same(got, want, lr):
        # a second setting where the cooldown would start inside the warmup
        args2 = (1.0, 0.0, 10, 20, 0.9)
        got2 = [_number(_call(wsd_lr, it, *args2), f"wsd_lr({it}, ...)") for it in range(25)]
        want2 = [_wsd(it, learning_rate=1.0, min_lr=0.0, warmup_iters=10, lr_decay_iters=20,
                      cooldown_frac=0.9) for it in range(25)]
        if not _same(got2, want2, 1.0):
            raise CheckFailed("with cooldown_frac=0.9, warmup_iters=10, lr_decay_iters=20 the "
                              "cooldown would start inside the warmup; start it at "
                              "max(warmup_iters, lr_decay_iters - cooldown_iters). "
                              + _first_diff(got2, want2, range(25), 1.0))
        return
    start = decay - round(frac * decay)
    if not _same(got[:warm], want[:warm], lr):
        raise CheckFailed("the warmup part is off (exercise 1's rule: learning_rate * (it + 1) / "
                          f"(warmup_iters + 1)); {_first_diff(got, want, steps, lr)}")
    if any(not math.isclose(t, floor, rel_tol=1e-6) for t in got[decay:]):
        raise CheckFailed("from lr_decay_iters on the rate should stay at min_lr; "
                          + _first_diff(got[decay:], want[decay:], steps[decay:], lr))
    stable = got[warm:start + 1]
    if any(not math.isclose(s, lr, rel_tol=1e-6) for s in stable):
        raise CheckFailed(f"the stable phase should hold learning_rate from warmup_iters to the "
                          f"start of the cooldown (step lr_decay_iters - round(cooldown_frac * "
                          f"lr_decay_iters) = {start} here); {_first_diff(got, want, steps, lr)}")
    cool = got[start:decay + 1]
    if min(cool) < floor * (1 - 1e-6):
        raise CheckFailed("the cooldown goes below min_lr; it should end exactly at min_lr at "
                          "lr_decay_iters")
    if math.isclose(got[decay - 1], floor, rel_tol=1e-6):
        raise CheckFailed("the cooldown reaches min_lr one step early; progress = (it - start) / "
                          "(lr_decay_iters - start), which is 1 only at lr_decay_iters")
    raise CheckFailed(f"the cooldown should be a straight line from learning_rate at step {start} "
                      f"to min_lr at lr_decay_iters; {_first_diff(got, want, steps, lr)}")
