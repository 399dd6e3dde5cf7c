"""Checks for day 26, "Reproducing nanoGPT": tokens of a run, a time estimate, a milestone.

Each ``check_*`` prints one line (a pass, a specific hint, or "not done yet") and returns a
verdict; none raises. The references are small functions of this module, used by the lesson
after each exercise.

Example::

    >>> from llmcourse.checks import day26
    >>> day26.reference_tokens_seen({"model": {"block_size": 8}, "train": {"batch_size": 4, "max_iters": 10}})
    320
    >>> day26.reference_first_reaching([{"type": "eval", "iter": 0, "val_loss": 4.2},
    ...                                 {"type": "eval", "iter": 250, "val_loss": 1.9}], 2.0)
    250
"""

from __future__ import annotations

import math
from typing import Any, Callable

from llmcourse.checks._core import CheckFailed, as_int, call, check, kind_of

__all__ = ["reference_tokens_seen", "reference_estimate_seconds", "reference_first_reaching",
           "check_tokens_seen", "check_estimate_seconds", "check_first_reaching"]


def reference_tokens_seen(preset: dict[str, dict[str, Any]]) -> int:
    """Tokens a run trains on: steps x batch x context x micro-batches per step."""
    train = preset["train"]
    return (train["max_iters"] * train["batch_size"] * preset["model"]["block_size"]
            * train.get("grad_accum_steps", 1))


def reference_estimate_seconds(flops_per_token: float, tokens: float, peak_flops: float,
                               mfu: float) -> float:
    """Seconds to do ``flops_per_token * tokens`` at ``mfu`` of ``peak_flops`` FLOP/s."""
    return flops_per_token * tokens / (peak_flops * mfu)


def reference_first_reaching(history: list[dict[str, Any]], target: float) -> int | None:
    """The first evaluation's iteration whose validation loss is at most ``target``, or None."""
    for row in history:
        if row.get("type") == "eval" and row["val_loss"] <= target:
            return row["iter"]
    return None


@check("tokens_seen")
def check_tokens_seen(tokens_seen: Callable[[dict], Any]) -> None:
    """Exercise 1: the number of training tokens of a preset."""
    plain = {"data": {"dataset": "x"}, "model": {"block_size": 48, "n_layer": 3},
             "train": {"batch_size": 10, "max_iters": 70}}
    accum = {"data": {"dataset": "x"}, "model": {"block_size": 40},
             "train": {"batch_size": 6, "max_iters": 30, "grad_accum_steps": 5}}
    got = as_int(call(tokens_seen, plain, shown="tokens_seen(preset) with max_iters 70, batch "
                      "10, block_size 48 and no grad_accum_steps"), "tokens_seen(preset)")
    want = reference_tokens_seen(plain)
    if got == 70 * 10:
        raise CheckFailed("you counted sequences, not tokens: multiply by the context length "
                          "preset['model']['block_size'] too")
    if got != want:
        raise CheckFailed(f"tokens_seen returned {got} for 70 steps of 10 sequences of 48 tokens; "
                          f"expected {want}")
    got = as_int(call(tokens_seen, accum, shown="tokens_seen(preset) with grad_accum_steps 5"),
                 "tokens_seen(preset)")
    want = reference_tokens_seen(accum)
    if got == want // 5:
        raise CheckFailed("with grad_accum_steps 5 every step sums the gradients of 5 batches: "
                          "multiply by preset['train'].get('grad_accum_steps', 1)")
    if got != want:
        raise CheckFailed(f"tokens_seen returned {got} for 30 steps of 5 x 6 sequences of 40 "
                          f"tokens; expected {want}")


@check("estimate_seconds")
def check_estimate_seconds(estimate_seconds: Callable[..., Any]) -> None:
    """Exercise 2: compute time from FLOPs, a peak throughput and an MFU."""
    args = (7.0e7, 3.0e8, 2.0e13, 0.4)
    shown = "estimate_seconds(7e7, 3e8, peak_flops=2e13, mfu=0.4)"
    got = call(estimate_seconds, *args, shown=shown)
    if not isinstance(got, (int, float)) or isinstance(got, bool):
        raise CheckFailed(f"estimate_seconds should return a number of seconds (a float), got "
                          f"{kind_of(got)}")
    want = reference_estimate_seconds(*args)
    if math.isclose(got, want, rel_tol=1e-6):
        return
    f, d, peak, mfu = args
    if math.isclose(got, f * d / (peak / mfu), rel_tol=1e-6):
        raise CheckFailed("the time came out shorter than at peak speed: divide by the achieved "
                          "throughput peak_flops * mfu, not by peak_flops / mfu")
    if math.isclose(got, f * d / peak, rel_tol=1e-6):
        raise CheckFailed("that is the time at 100% of the peak: a real run reaches only mfu of "
                          "it, so divide by peak_flops * mfu")
    if math.isclose(got, f * d / (peak * mfu) / 60, rel_tol=1e-6):
        raise CheckFailed("return seconds, not minutes")
    if math.isclose(got, f * d / (peak * 1e-12 * mfu), rel_tol=1e-6):
        raise CheckFailed("peak_flops is already in FLOP/s (2e13 = 20 TFLOP/s); do not scale it")
    raise CheckFailed(f"{shown} returned {got:.4g}; expected {want:.4g} "
                      "(FLOPs per token x tokens / (peak_flops x mfu))")


@check("first_reaching")
def check_first_reaching(first_reaching: Callable[..., Any]) -> None:
    """Exercise 3: the first evaluation at or below a target loss, from a metrics log."""
    history = [
        {"type": "eval", "iter": 0, "train_loss": 4.2, "val_loss": 4.2},
        {"type": "train", "iter": 0, "loss": 4.2},
        {"type": "train", "iter": 40, "loss": 1.7},
        {"type": "eval", "iter": 100, "train_loss": 2.4, "val_loss": 2.5},
        {"type": "eval", "iter": 200, "train_loss": 1.9, "val_loss": 2.0},
        {"type": "eval", "iter": 300, "train_loss": 1.8, "val_loss": 1.95},
        {"type": "eval", "iter": 400, "train_loss": 1.7, "val_loss": 2.1},
        {"type": "eval", "iter": 500, "train_loss": 1.6, "val_loss": 1.9},
    ]
    shown = "first_reaching(history, {t}) on a log of 6 evaluations and 2 training lines"

    def run(target: float) -> Any:
        return call(first_reaching, history, target, shown=shown.format(t=target))

    got = run(2.0)
    if got == 40:
        raise CheckFailed("returned 40, a training line: use only the rows with type 'eval' and "
                          "their 'val_loss'")
    if got == 500:
        raise CheckFailed("returned 500, the best evaluation; the task asks for the first one at "
                          "or below the target (200)")
    if got == 300:
        raise CheckFailed("returned 300, but at 200 the loss equals the target: a loss equal to the target counts as reaching it "
                          "(use <=, not <)")
    if isinstance(got, float) and math.isclose(got, 2.0):
        raise CheckFailed("returned the loss; return the iteration ('iter') of that evaluation")
    if isinstance(got, dict):
        raise CheckFailed("returned the whole row; return its iteration, row['iter']")
    if isinstance(got, bool) or got != 200:
        raise CheckFailed(f"first_reaching(history, 2.0) returned {got!r}; expected 200")
    got = run(1.5)
    if got is not None:
        raise CheckFailed(f"first_reaching(history, 1.5) returned {got!r}, but no evaluation "
                          "reached 1.5: return None")
    got = run(5.0)
    if got is None or isinstance(got, bool) or got != 0:
        raise CheckFailed(f"first_reaching(history, 5.0) returned {got!r}; the evaluation at "
                          "iteration 0 already reaches it, so 0 (test `is None`, not falsiness)")
