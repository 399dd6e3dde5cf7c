"""Checks for day 26, "Reproducing nanoGPT": tokens of a run, a time estimate, a milestone.

Each ``check_*`` compares the learner's function with the reference of this module on a small
seeded battery of inputs (presets with warm-up, several batch and block sizes and
gradient-accumulation values; scripted metrics logs), prints one line (a pass, the hint of a
known mistake from the exercise's table, or "not done yet") and returns a verdict; none raises.
The references are used by the lesson after each exercise.

Example::

    >>> from llmcourse.checks import day26
    >>> day26.reference_tokens_seen({"model": {"block_size": 8}, "train": {"batch_size": 4, "max_iters": 10}})
    320
    >>> day26.reference_first_reaching([{"type": "eval", "iter": 0, "val_loss": 4.2},
    ...                                 {"type": "eval", "iter": 250, "val_loss": 1.9}], 2.0)
    250
"""

from __future__ import annotations

import copy
from typing import Any, Callable

from llmcourse.checks._core import Case, CheckFailed, Mistake, as_float, as_int, check, compare
from llmcourse.presets import get_preset

__all__ = ["reference_tokens_seen", "reference_estimate_seconds", "reference_first_reaching",
           "check_tokens_seen", "check_estimate_seconds", "check_first_reaching",
           "TOKENS_SEEN", "ESTIMATE_SECONDS", "FIRST_REACHING"]


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


# ---- exercise 1: tokens_seen -------------------------------------------------------------------


def _sequences(preset):                      # forgets the context length
    t = preset["train"]
    return t["max_iters"] * t["batch_size"] * t.get("grad_accum_steps", 1)


def _no_accum(preset):                       # forgets the micro-batches of a step
    t = preset["train"]
    return t["max_iters"] * t["batch_size"] * preset["model"]["block_size"]


def _with_warmup(preset):                    # counts the warm-up steps on top of max_iters
    t = preset["train"]
    return ((t["max_iters"] + t["warmup_iters"]) * t["batch_size"] * preset["model"]["block_size"]
            * t.get("grad_accum_steps", 1))


def _decay_iters(preset):                    # reads the schedule's length, not the run's
    t = preset["train"]
    return (t["lr_decay_iters"] * t["batch_size"] * preset["model"]["block_size"]
            * t.get("grad_accum_steps", 1))


def _train_block(preset):                    # looks for block_size in the train section
    t = preset["train"]
    return t["max_iters"] * t["batch_size"] * t["block_size"] * t.get("grad_accum_steps", 1)


def _minus_warmup(preset):                   # takes the warm-up steps out of max_iters
    t = preset["train"]
    return ((t["max_iters"] - t["warmup_iters"]) * t["batch_size"] * preset["model"]["block_size"]
            * t.get("grad_accum_steps", 1))


def _no_return(preset):
    t = preset["train"]
    t["max_iters"] * t["batch_size"] * preset["model"]["block_size"] * t.get("grad_accum_steps", 1)


def _fills_in(preset):                      # writes the missing default into the caller's preset
    t = preset["train"]
    t.setdefault("grad_accum_steps", 1)
    return t["max_iters"] * t["batch_size"] * preset["model"]["block_size"] * t["grad_accum_steps"]


def _block_plus_one(preset):                # a batch row reads block_size + 1 tokens (x and y)
    t = preset["train"]
    return (t["max_iters"] * t["batch_size"] * (preset["model"]["block_size"] + 1)
            * t.get("grad_accum_steps", 1))


TOKENS_SEEN = [
    Mistake("block_size + 1", _block_plus_one,
            hint="a row of a batch is trained on block_size tokens (its targets are the same "
                 "tokens shifted by one, not extra ones): multiply by block_size, not "
                 "block_size + 1"),
    Mistake("grad_accum_steps as a key", lambda p: p["train"]["max_iters"] * p["train"]["batch_size"]
            * p["model"]["block_size"] * p["train"]["grad_accum_steps"],
            hint="a preset may have no grad_accum_steps (it then means 1): read it with "
                 "preset['train'].get('grad_accum_steps', 1)"),
    Mistake("counts sequences", _sequences, hint="you counted sequences, not tokens: multiply by "
            "the context length preset['model']['block_size'] too"),
    Mistake("no grad_accum_steps", _no_accum, hint="with grad_accum_steps > 1 every step sums the "
            "gradients of several batches: multiply by preset['train'].get('grad_accum_steps', 1)"),
    Mistake("adds warmup_iters", _with_warmup, hint="the warm-up steps are the first warmup_iters "
            "of the max_iters steps, not extra ones: do not add warmup_iters"),
    Mistake("lr_decay_iters", _decay_iters, hint="lr_decay_iters is the length of the learning-rate "
            "schedule, not of the run: the run takes preset['train']['max_iters'] steps"),
    Mistake("block_size in train", _train_block,
            hint="block_size belongs to the model: preset['model']['block_size']; batch_size, "
                 "max_iters and grad_accum_steps are under preset['train']"),
    Mistake("no return", _no_return, expect="returned None"),
    Mistake("fills in the preset", _fills_in, expect="leave the preset as it was: read with .get(...)"),
    Mistake("warm-up subtracted", _minus_warmup,
            hint="the warm-up steps are training steps too, counted in max_iters: the run sees "
                 "max_iters * batch_size * block_size * grad_accum_steps tokens"),
]


def _preset(block, batch, iters, warmup, decay, accum=None, **model):
    train = {"batch_size": batch, "max_iters": iters, "learning_rate": 6e-4, "min_lr": 6e-5,
             "lr_decay_iters": decay, "warmup_iters": warmup, "eval_interval": 250,
             "eval_iters": 20, "log_interval": 10, "weight_decay": 0.1, "grad_clip": 1.0}
    if accum is not None:
        train["grad_accum_steps"] = accum
    return {"data": {"dataset": "tinystories", "tokenizer": "gpt2"},
            "model": {"n_layer": 3, "n_head": 2, "n_embd": 48, "block_size": block,
                      "dropout": 0.0, **model},
            "train": train}


def _tokens_cases() -> list[Case]:
    presets = [
        ("block 40, batch 6, 300 steps (30 of warm-up), grad_accum_steps 5",
         _preset(40, 6, 300, 30, 280, 5)),
        ("block 48, batch 10, 70 steps (7 of warm-up), no grad_accum_steps",
         _preset(48, 10, 70, 7, 90)),
        ("block 1024, batch 12, 600 steps (20 of warm-up), grad_accum_steps 3",
         _preset(1024, 12, 600, 20, 500, 3)),
        ("block 7, batch 1, 1 step (no warm-up), grad_accum_steps 1",
         _preset(7, 1, 1, 0, 1, 1)),
    ]
    cases = [Case(f"tokens_seen(preset) with {label}", p) for label, p in presets]
    return cases + [Case("tokens_seen(get_preset('gpt2-124m')): 2000 warm-up steps, "
                         "grad_accum_steps 40", get_preset("gpt2-124m"))]


def _count(value, case):
    return as_int(value, "tokens_seen(preset)")


def _first_change(before: Any, after: Any, where: str = "preset") -> str | None:
    """Where ``after`` first differs from ``before`` (``"preset['train']['max_iters']"``), or None."""
    if isinstance(before, dict) and isinstance(after, dict):
        for key in list(before) + [k for k in after if k not in before]:
            here = f"{where}[{key!r}]"
            if key not in after:
                return f"{here} was removed"
            if key not in before:
                return f"{here} was added"
            change = _first_change(before[key], after[key], here)
            if change:
                return change
        return None
    return None if before == after else f"{where} was changed"


def _copy_run(impl, case):
    """Call ``impl`` on a fresh copy of the preset, and fail if it changed that copy."""
    preset = copy.deepcopy(case.args[0])
    result = impl(preset)
    change = _first_change(case.args[0], preset)
    if change:
        raise CheckFailed(f"tokens_seen changed the preset it was given ({change}): leave the "
                          "preset as it was: read with .get(...), do not write into it "
                          f"(on {case.label})")
    return result


@check("tokens_seen", mistakes=TOKENS_SEEN)
def check_tokens_seen(tokens_seen: Callable[[dict], Any]) -> None:
    """Exercise 1: the number of training tokens of a preset (with warm-up, accumulation or not)."""
    compare(tokens_seen, reference_tokens_seen, _tokens_cases(), name="tokens_seen(preset)",
            run=_copy_run, mistakes=TOKENS_SEEN, read=_count)


# ---- exercise 2: estimate_seconds ----------------------------------------------------------------


_NOT_ROUNDED = ("the time was rounded to whole seconds: do not round: return the float number of "
                "seconds (no int(), round() or //; round only where you print it)")

ESTIMATE_SECONDS = [
    Mistake("hours", lambda f, t, peak, mfu: f * t / (peak * mfu) / 3600,
            hint="that is in hours; return seconds, flops_per_token * tokens / (peak_flops * mfu) "
                 "(the lesson converts afterwards)"),
    Mistake("6 times again", lambda f, t, peak, mfu: 6 * f * t / (peak * mfu),
            hint="flops_per_token already counts the forward and backward pass (about 6 N): do not "
                 "multiply by 6 again"),
    Mistake("divides by peak / mfu", lambda f, d, peak, mfu: f * d / (peak / mfu),
            hint="the time came out shorter than at peak speed: divide by the achieved "
                 "throughput (peak_flops * mfu), in parentheses: x / peak_flops * mfu multiplies "
                 "by mfu, like x / (peak_flops / mfu)"),
    Mistake("floor division", lambda f, d, peak, mfu: f * d // (peak * mfu), hint=_NOT_ROUNDED),
    Mistake("ignores mfu", lambda f, d, peak, mfu: f * d / peak,
            hint="that is the time at 100% of the peak: a real run reaches only mfu of it, so "
                 "divide by peak_flops * mfu"),
    Mistake("minutes", lambda f, d, peak, mfu: f * d / (peak * mfu) / 60,
            hint="return seconds, not minutes"),
    Mistake("rescales peak", lambda f, d, peak, mfu: f * d / (peak * 1e-12 * mfu),
            hint="peak_flops is already in FLOP/s (2e13 = 20 TFLOP/s); do not scale it"),
    Mistake("mfu in percent", lambda f, d, peak, mfu: f * d / (peak * mfu * 100),
            hint="mfu is a fraction (0.4 means 40%), not a percentage: do not multiply it by 100"),
    Mistake("forgets the tokens", lambda f, d, peak, mfu: f / (peak * mfu),
            hint="that is the time of one token: multiply flops_per_token by tokens"),
    Mistake("int", lambda f, d, peak, mfu: int(f * d / (peak * mfu)), hint=_NOT_ROUNDED),
    Mistake("round", lambda f, d, peak, mfu: round(f * d / (peak * mfu)), hint=_NOT_ROUNDED),
    Mistake("text", lambda f, d, peak, mfu: f"{f * d / (peak * mfu):.0f} s",
            expect="should return one number"),
]


def _seconds_cases() -> list[Case]:
    return [Case("estimate_seconds(7e7, 3e8, 2e13, 0.4)", 7.0e7, 3.0e8, 2.0e13, 0.4),
            Case("estimate_seconds(1.3e9, 5e10, 3.12e14, 0.55)", 1.3e9, 5.0e10, 3.12e14, 0.55),
            Case("estimate_seconds(4.5e5, 1, 6.5e13, 0.15)", 4.5e5, 1, 6.5e13, 0.15),
            Case("estimate_seconds(2e6, 1e7, 1e12, 1.0)", 2.0e6, 1.0e7, 1.0e12, 1.0)]


@check("estimate_seconds", mistakes=ESTIMATE_SECONDS)
def check_estimate_seconds(estimate_seconds: Callable[..., Any]) -> None:
    """Exercise 2: compute time from FLOPs, a peak throughput and an MFU."""
    compare(estimate_seconds, reference_estimate_seconds, _seconds_cases(),
            name="estimate_seconds(...)", mistakes=ESTIMATE_SECONDS,
            read=lambda v, case: as_float(v, "estimate_seconds(...)"), rtol=1e-6, atol=0.0)


# ---- exercise 3: first_reaching ----------------------------------------------------------------


def _train_loss(history, target):            # reads the training loss of the eval rows
    for row in history:
        if row["type"] == "eval" and row["train_loss"] <= target:
            return row["iter"]
    return None


def _any_row(history, target):               # training lines count too
    for row in history:
        if row.get("val_loss", row.get("loss")) <= target:
            return row["iter"]
    return None


def _best(history, target):                  # the best evaluation, not the first
    rows = [r for r in history if r["type"] == "eval" and r["val_loss"] <= target]
    return min(rows, key=lambda r: r["val_loss"])["iter"] if rows else None


def _last(history, target):                  # keeps overwriting: the last evaluation reaching it
    found = None
    for row in history:
        if row["type"] == "eval" and row["val_loss"] <= target:
            found = row["iter"]
    return found


def _strict(history, target):
    for row in history:
        if row["type"] == "eval" and row["val_loss"] < target:
            return row["iter"]
    return None


def _loss(history, target):
    for row in history:
        if row["type"] == "eval" and row["val_loss"] <= target:
            return row["val_loss"]
    return None


def _row(history, target):
    for row in history:
        if row["type"] == "eval" and row["val_loss"] <= target:
            return row
    return None


def _minus_one(history, target):
    for row in history:
        if row["type"] == "eval" and row["val_loss"] <= target:
            return row["iter"]
    return -1


def _falsy(history, target):                 # `found or None` loses iteration 0
    found = None
    for row in history:
        if row["type"] == "eval" and row["val_loss"] <= target:
            found = row["iter"]
            break
    return found or None


def _no_type(history, target):              # training lines have no 'val_loss'
    for row in history:
        if row["val_loss"] <= target:
            return row["iter"]
    return None


def _position(history, target):              # the row's index in the log, not its iteration
    for i, row in enumerate(history):
        if row["type"] == "eval" and row["val_loss"] <= target:
            return i
    return None


def _rounded(history, target):               # compares a rounded copy of the loss
    for row in history:
        if row["type"] == "eval" and round(row["val_loss"], 2) <= target:
            return row["iter"]
    return None


def _truncated(history, target):             # cuts the loss to 2 decimals (1.8857 -> 1.88)
    for row in history:
        if row["type"] == "eval" and int(row["val_loss"] * 100) / 100 <= target:
            return row["iter"]
    return None


_NOT_A_COPY = ("compare the loss itself, not a rounded copy: 1.8857 and 1.8849 are both above "
               "1.88, though 2 decimals make one of them 1.88")

def _next_no_default(history, target):  # next() without a default: StopIteration when never
    return next(row["iter"] for row in history
                if row["type"] == "eval" and row["val_loss"] <= target)


FIRST_REACHING = [
    Mistake("next() without a default", _next_no_default,
            hint="next(...) without a default raises StopIteration when no evaluation reaches "
                 "the target: give it one, next((row['iter'] for row in history if ...), None)"),
    Mistake("train_loss", _train_loss, hint="that is where the TRAINING loss first reached the "
            "target: the milestone is about the validation loss, row['val_loss']"),
    Mistake("training lines", _any_row, hint="that iteration is a training line: use only the rows "
            "with type 'eval' and their 'val_loss'"),
    Mistake("best evaluation", _best, hint="that is the best evaluation; the task asks for the "
            "first one at or below the target"),
    Mistake("last evaluation", _last, hint="that is the last evaluation at or below the target; "
            "return the first one (return as soon as you find it)"),
    Mistake("strict <", _strict, hint="a loss equal to the target counts as reaching it (use <=, "
            "not <)"),
    Mistake("returns the loss", _loss, hint="returned the loss; return the iteration ('iter') of "
            "that evaluation"),
    Mistake("returns the row", _row, hint="returned the whole row; return its iteration, "
            "row['iter']"),
    Mistake("-1 when never", _minus_one, hint="no evaluation reached the target: return None, "
            "not -1"),
    Mistake("falsy 0", _falsy, hint="the evaluation at iteration 0 already reaches the target, so "
            "the answer is 0: test `is None`, not falsiness (`or None` turns 0 into None)"),
    Mistake("no type filter", _no_type,
            hint="training rows have no 'val_loss': look only at the rows with row['type'] == "
                 "'eval' (test the type first)"),
    Mistake("rounded loss", _rounded, hint=_NOT_A_COPY),
    Mistake("truncated loss", _truncated, hint=_NOT_A_COPY),
    Mistake("row index", _position, hint="that is the row's position in the log; return its "
            "iteration, row['iter']"),
]


def _log() -> list[dict[str, Any]]:
    """A metrics log where the training and validation losses cross each target at different rows."""
    return [
        {"type": "eval", "iter": 0, "train_loss": 4.25, "val_loss": 4.25},
        {"type": "train", "iter": 0, "loss": 4.3},
        {"type": "train", "iter": 40, "loss": 1.7},
        {"type": "eval", "iter": 100, "train_loss": 1.95, "val_loss": 2.5},
        {"type": "train", "iter": 150, "loss": 2.25},
        {"type": "eval", "iter": 200, "train_loss": 1.875, "val_loss": 2.0},
        {"type": "eval", "iter": 300, "train_loss": 1.75, "val_loss": 1.9375},
        {"type": "eval", "iter": 400, "train_loss": 1.625, "val_loss": 2.125},
        {"type": "eval", "iter": 500, "train_loss": 1.5, "val_loss": 1.875},
        {"type": "eval", "iter": 600, "train_loss": 1.375, "val_loss": 1.9},
    ]


def _reaching_cases() -> list[Case]:
    log = _log()
    late = [{"type": "eval", "iter": 0, "train_loss": 3.0, "val_loss": 3.0},
            {"type": "train", "iter": 10, "loss": 2.5},
            {"type": "eval", "iter": 50, "train_loss": 2.75, "val_loss": 2.875},
            {"type": "eval", "iter": 100, "train_loss": 2.5, "val_loss": 2.75},
            {"type": "eval", "iter": 150, "train_loss": 2.25, "val_loss": 2.5}]
    near = [{"type": "eval", "iter": 0, "train_loss": 4.25, "val_loss": 4.25},  # just above 1.88
            {"type": "train", "iter": 0, "loss": 4.3},
            {"type": "eval", "iter": 2000, "train_loss": 1.5, "val_loss": 1.95},
            {"type": "eval", "iter": 2500, "train_loss": 1.25, "val_loss": 1.8857},
            {"type": "train", "iter": 2600, "loss": 1.2},
            {"type": "eval", "iter": 3000, "train_loss": 1.125, "val_loss": 1.8849},
            {"type": "eval", "iter": 3500, "train_loss": 1.0, "val_loss": 1.9}]
    n = f"a log of {len(log)} rows (7 evaluations, 3 training lines)"
    return [
        Case(f"first_reaching(history, 2.0) on {n}; val_loss is exactly 2.0 at iteration 200",
             log, 2.0),
        Case(f"first_reaching(history, 2.4) on {n}; the train loss gets there at 100",
             log, 2.4),
        Case(f"first_reaching(history, 1.8) on {n}: never reached", log, 1.8),
        Case(f"first_reaching(history, 5.0) on {n}: already at iteration 0", log, 5.0),
        Case("first_reaching(history, 2.75) on a log of 5 rows: val_loss 2.75 at iteration 100",
             late, 2.75),
        Case("first_reaching([], 3.0): an empty log", [], 3.0),
        Case("first_reaching(history, 1.88) on a log of 7 rows: val_loss 1.8857 at iteration 2500, "
             "1.8849 at 3000, never 1.88 or below", near, 1.88),
    ]


def _iteration(value, case):
    """The learner's answer as a Python int or None (numpy integers count)."""
    try:
        import numpy as np

        if isinstance(value, np.integer):
            return int(value)
    except ImportError:  # pragma: no cover
        pass
    return value


@check("first_reaching", mistakes=FIRST_REACHING)
def check_first_reaching(first_reaching: Callable[..., Any]) -> None:
    """Exercise 3: the first evaluation at or below a target validation loss, from a metrics log."""
    compare(first_reaching, reference_first_reaching, _reaching_cases(),
            name="first_reaching(history, target)", mistakes=FIRST_REACHING, read=_iteration)
