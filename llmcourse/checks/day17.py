"""Checks for day 17, "The training loop", and the reference versions the lesson runs on.

Each ``check_*`` function runs the learner's code on small cases of its own (sizes unlike the
notebook's), prints one line - a pass, a specific hint, or "not done yet" - and never raises.

The reference functions (:func:`reference_evaluate`, :func:`reference_save_atomic`,
:func:`reference_save_state`, :func:`reference_load_state`, :class:`ReferenceEarlyStopping`)
are what the lesson uses after each exercise, so a learner who skipped one can run on.

Example::

    >>> from llmcourse.checks import day17
    >>> ok = day17.check_early_stopping(day17.ReferenceEarlyStopping)
    ✅ EarlyStopping: passed
"""

from __future__ import annotations

import copy
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmcourse.checks._core import CheckFailed, as_bool, call, check
from llmcourse.checks import day06

__all__ = [
    "check_evaluate",
    "check_save_atomic",
    "check_resume",
    "check_early_stopping",
    "reference_evaluate",
    "reference_save_atomic",
    "reference_save_state",
    "reference_load_state",
    "ReferenceEarlyStopping",
]


# ---- reference implementations -------------------------------------------------------------


def reference_evaluate(model: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Mean loss of ``model`` over ``batches`` in eval mode, without gradients; the model's
    previous train/eval mode is restored."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            total = 0.0
            for x, y in batches:
                _, loss = model(x, y)
                total += loss.item()
    finally:
        model.train(was_training)
    return total / len(batches)


def reference_save_atomic(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save(obj, path)`` through a temporary file in the same directory and
    ``os.replace``: a crash leaves the old file or the new one, never half of one."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def reference_save_state(path: str | os.PathLike[str], model: nn.Module,
                         optimizer: torch.optim.Optimizer, generator: torch.Generator,
                         step: int) -> None:
    """Everything the next step depends on: weights, optimizer moments, both random states."""
    reference_save_atomic({
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "step": step,
    }, path)


def reference_load_state(path: str | os.PathLike[str], model: nn.Module,
                         optimizer: torch.optim.Optimizer, generator: torch.Generator) -> int:
    """Put back what :func:`reference_save_state` wrote; return the step to continue from."""
    state = torch.load(path, weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    return state["step"]


class ReferenceEarlyStopping:
    """Stop after ``patience`` evaluations in a row without a new best (lowest) validation loss.

    >>> stopper = ReferenceEarlyStopping(patience=2)
    >>> [stopper.step(v) for v in [3.0, 2.5, 2.6, 2.55]]
    [False, False, False, True]
    >>> stopper.best
    2.5
    """

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best = math.inf
        self.bad_evals = 0

    def step(self, val_loss: float) -> bool:
        if val_loss < self.best:
            self.best = val_loss
            self.bad_evals = 0
        else:
            self.bad_evals += 1
        return self.bad_evals >= self.patience


# ---- exercise 1: evaluate --------------------------------------------------------------------


# The fake model that records how it is called: the one day 06 checks estimate_loss with.
_Recorder = day06._Recorder


def _as_float(value: Any, name: str) -> float:
    if value is None:
        raise CheckFailed(f"{name} returned None; did you forget the `return`?")
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise CheckFailed(f"{name} returned a tensor of shape {tuple(value.shape)}; return "
                              "the mean loss as one float")
        value = value.item()
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise CheckFailed(f"{name} should return a float, got {type(value).__name__}") from exc


@check("evaluate")
def check_evaluate(evaluate: Callable[..., Any]) -> None:
    """Exercise 1: mean loss over a list of batches, eval mode, no_grad, previous mode restored."""
    losses = [2.0, 1.0, 4.0, 5.0, 6.0]
    batches = [(torch.zeros(3, 5, dtype=torch.long), torch.zeros(3, 5, dtype=torch.long))
               for _ in range(5)]
    model = _Recorder(losses)
    model.train()
    got = _as_float(call(evaluate, model, batches, shown="evaluate(model, 5 batches)"), "evaluate")
    if model.calls != len(batches):
        raise CheckFailed(f"with 5 batches the model was called {model.calls} times; call it once "
                          "per batch")
    if any(model.modes):
        raise CheckFailed("the model was in training mode during the evaluation (dropout on): call "
                          "model.eval() before the loop")
    if any(model.grad_enabled):
        raise CheckFailed("gradients were tracked during the evaluation: run the loop under "
                          "`with torch.no_grad():` (it saves the memory of the graph)")
    if not model.training:
        raise CheckFailed("the model was left in eval mode: training would go on without dropout; "
                          "put back the mode it had before (model.train(was_training))")
    mean = sum(losses) / len(losses)
    if math.isclose(got, losses[-1]):
        raise CheckFailed("that is the loss of the last batch only; average over all the batches")
    if math.isclose(got, sum(losses)):
        raise CheckFailed("that is the sum of the losses; divide by the number of batches")
    if not math.isclose(got, mean, rel_tol=1e-6):
        raise CheckFailed(f"evaluate returned {got:.4f} for batch losses {losses}; their mean is "
                          f"{mean:.4f}")
    # A model that was in eval mode must stay in eval mode (e.g. evaluating a loaded checkpoint).
    frozen = _Recorder([1.0])
    frozen.eval()
    call(evaluate, frozen, batches[:2], shown="evaluate(model in eval mode, 2 batches)")
    if frozen.training:
        raise CheckFailed("a model that was in eval mode before evaluate() came back in training "
                          "mode: remember model.training first and restore exactly that "
                          "(model.train(was_training)), instead of always calling model.train()")


# ---- exercise 2: save_atomic ----------------------------------------------------------------


class _PowerCut:
    """Pickling this object fails, as a crash in the middle of ``torch.save`` would."""

    def __reduce__(self) -> Any:
        raise RuntimeError("simulated crash in the middle of the save")


def _loads(path: Path) -> Any:
    try:
        return torch.load(path, weights_only=True)
    except Exception:  # noqa: BLE001 - any failure means the file is broken
        return None


@check("save_atomic")
def check_save_atomic(save_atomic: Callable[..., Any]) -> None:
    """Exercise 2: temp file in the same directory + os.replace; old file intact after a crash."""
    with tempfile.TemporaryDirectory(prefix="check_day17_") as d:
        folder = Path(d) / "run"
        folder.mkdir()
        path = folder / "ckpt.pt"
        first = {"step": 100, "w": torch.arange(6.0).reshape(2, 3)}
        replaced: list[tuple[str, str]] = []
        real_replace, real_rename = os.replace, os.rename
        renamed: list[tuple[str, str]] = []

        def spy_replace(src: Any, dst: Any, *a: Any, **k: Any) -> Any:
            replaced.append((os.fspath(src), os.fspath(dst)))
            return real_replace(src, dst, *a, **k)

        def spy_rename(src: Any, dst: Any, *a: Any, **k: Any) -> Any:
            renamed.append((os.fspath(src), os.fspath(dst)))
            return real_rename(src, dst, *a, **k)

        os.replace, os.rename = spy_replace, spy_rename
        try:
            call(save_atomic, first, path, shown="save_atomic({'step': 100, 'w': ...}, path)")
            back = _loads(path)
            if back is None:
                raise CheckFailed("after save_atomic(obj, path), torch.load(path) fails: the "
                                  "finished file must be at `path` (did you os.replace the "
                                  "temporary file onto it?)")
            if back.get("step") != 100 or not torch.equal(back["w"], first["w"]):
                raise CheckFailed("torch.load(path) does not give back the object that was saved")
            if not replaced and renamed:
                raise CheckFailed("use os.replace, not os.rename: os.rename refuses to overwrite "
                                  "an existing file on Windows, os.replace overwrites atomically "
                                  "everywhere")
            for src, _ in replaced:
                if Path(src).parent.resolve() != folder.resolve():
                    raise CheckFailed(f"the temporary file was in {Path(src).parent}, not next to "
                                      "the checkpoint: os.replace is only atomic within one "
                                      "filesystem, so put it in the same directory "
                                      "(path.with_name(path.name + '.tmp'))")
            # Second save, interrupted by a crash: the first checkpoint must survive.
            crashed = False
            try:
                save_atomic({"step": 200, "w": torch.zeros(50), "boom": _PowerCut()}, path)
            except RuntimeError as exc:
                crashed = "simulated crash" in str(exc)
            if not crashed:
                raise CheckFailed("a save that crashed returned normally: let the error propagate "
                                  "(re-raise it) so the training loop knows the checkpoint was "
                                  "not written")
            back = _loads(path)
            if back is None or back.get("step") != 100:
                raise CheckFailed("a crash in the middle of the save destroyed the previous "
                                  "checkpoint (torch.load(path) now fails): write to a temporary "
                                  "file in the same directory first, then os.replace it onto path")
            left = sorted(p.name for p in folder.iterdir() if p.name != "ckpt.pt")
            if left:
                raise CheckFailed(f"the crashed save left {left} behind: delete the temporary file "
                                  "when writing fails (try/except, unlink, raise)")
        finally:
            os.replace, os.rename = real_replace, real_rename


# ---- exercise 3: exact resume -----------------------------------------------------------------


class _DropoutLM(nn.Module):
    """A tiny LM with dropout, so that a resumed run also needs torch's global random state."""

    def __init__(self, vocab: int = 11, width: int = 12, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.wte = nn.Embedding(vocab, width)
        self.drop = nn.Dropout(0.3)
        self.head = nn.Linear(width, vocab)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> Any:
        logits = self.head(self.drop(self.wte(idx)))  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        return logits, loss


_DATA = torch.arange(300) * 7 % 11  # a token stream with some structure


def _batch(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    i = torch.randint(0, len(_DATA) - 7, (5,), generator=generator)
    x = torch.stack([_DATA[j:j + 6] for j in i])  # (5, 6)
    y = torch.stack([_DATA[j + 1:j + 7] for j in i])
    return x, y


def _steps(model: nn.Module, opt: torch.optim.Optimizer, gen: torch.Generator,
           start: int, stop: int) -> list[float]:
    losses = []
    model.train()
    for _ in range(start, stop):
        x, y = _batch(gen)
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def _fresh(seed: int) -> tuple[nn.Module, torch.optim.Optimizer, torch.Generator]:
    model = _DropoutLM(seed=seed)
    opt = torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.1)
    return model, opt, torch.Generator().manual_seed(seed)


@check("save_state / load_state")
def check_resume(save_state: Callable[..., Any], load_state: Callable[..., Any]) -> None:
    """Exercise 3: a run stopped and resumed from a checkpoint repeats the uninterrupted losses
    bit for bit."""
    total, stop_at = 12, 7
    torch.manual_seed(5)
    model, opt, gen = _fresh(0)
    want = _steps(model, opt, gen, 0, total)

    with tempfile.TemporaryDirectory(prefix="check_day17_") as d:
        path = Path(d) / "state.pt"
        torch.manual_seed(5)
        model, opt, gen = _fresh(0)
        first = _steps(model, opt, gen, 0, stop_at)
        saved_weights = copy.deepcopy(model.state_dict())
        saved_gen, saved_rng = gen.get_state(), torch.get_rng_state()
        call(save_state, path, model, opt, gen, stop_at,
             shown="save_state(path, model, optimizer, generator, 7)")
        if not path.is_file():
            raise CheckFailed("save_state(path, ...) wrote no file at path")
        del model, opt, gen  # the "crash": everything in memory is gone
        torch.manual_seed(12345)  # a new process starts from another random state
        model, opt, gen = _fresh(99)
        step = call(load_state, path, model, opt, gen,
                    shown="load_state(path, model, optimizer, generator)")
        if step is None:
            raise CheckFailed("load_state returned None; return the step saved in the checkpoint "
                              "(7 here), so the loop knows where to continue")
        if isinstance(step, torch.Tensor):
            step = step.item()
        if step != stop_at:
            raise CheckFailed(f"load_state returned {step!r}; the checkpoint was saved after step "
                              f"{stop_at}, so it should return {stop_at}")
        for name, tensor in model.state_dict().items():
            if not torch.equal(tensor, saved_weights[name]):
                raise CheckFailed(f"after load_state the weights ({name}) differ from the saved "
                                  "ones: save model.state_dict() and load it with "
                                  "model.load_state_dict")
        state = opt.state_dict()["state"]
        if not state:
            raise CheckFailed("the optimizer starts empty after load_state: AdamW's moment "
                              "estimates (exp_avg, exp_avg_sq) and step counts were not restored; "
                              "save optimizer.state_dict() and load it with "
                              "optimizer.load_state_dict")
        if not torch.equal(gen.get_state(), saved_gen):
            raise CheckFailed("the batch generator was not restored, so the resumed run draws "
                              "different batches: save generator.get_state() and put it back with "
                              "generator.set_state")
        if not torch.equal(torch.get_rng_state(), saved_rng):
            raise CheckFailed("torch's global random state was not restored, so dropout drops "
                              "different units after the resume: save torch.get_rng_state() and "
                              "put it back with torch.set_rng_state")
        got = first + _steps(model, opt, gen, step, total)
    if got != want:
        k = next(i for i, (a, b) in enumerate(zip(got, want)) if a != b)
        raise CheckFailed(f"the resumed run's losses differ from the uninterrupted run's from step "
                          f"{k} on ({got[k]:.6f} vs {want[k]:.6f}); something the training step "
                          "depends on was not saved or restored")


# ---- exercise 4: early stopping ---------------------------------------------------------------


@check("EarlyStopping")
def check_early_stopping(early_stopping_cls: Callable[..., Any]) -> None:
    """Exercise 4: stop after ``patience`` evaluations in a row without a new best."""

    def run(patience: int, values: list[float]) -> list[bool]:
        stopper = call(early_stopping_cls, patience, shown=f"EarlyStopping({patience})")
        out = []
        for v in values:
            out.append(as_bool(call(stopper.step, v, shown=f"stopper.step({v})"),
                               f"stopper.step({v})"))
        return out

    # New best, then three evaluations that are not better than the best (the second of them
    # is better than the one before it, which is not what counts).
    values = [3.0, 2.5, 2.6, 2.55, 2.7, 2.4]
    got = run(3, values[:5])
    want = [False, False, False, False, True]
    if got == want:
        pass
    elif got[:4] == want[:4] and not got[4]:
        raise CheckFailed("with patience 3 and losses 3.0, 2.5, 2.6, 2.55, 2.7 training should stop "
                          "at 2.7: 2.55 beats the previous evaluation but not the best (2.5). "
                          "Compare with the best loss so far, not with the last one")
    elif got[:3] == want[:3] and got[3]:
        raise CheckFailed("stopped one evaluation too early: with patience 3, stop when 3 "
                          "evaluations in a row brought no new best (count them, then compare "
                          "count >= patience)")
    else:
        raise CheckFailed(f"with patience 3 and losses {values[:5]}, step() returned {got}; "
                          f"expected {want}")
    stopper = early_stopping_cls(3)
    for v in values[:3]:
        stopper.step(v)
    best = getattr(stopper, "best", None)
    if best is None or not math.isclose(float(best), 2.5):
        raise CheckFailed(f"after the losses 3.0, 2.5, 2.6 stopper.best should be 2.5, got {best!r}")
    # A new best resets the count.
    got = run(2, [2.0, 2.1, 1.9, 2.0, 2.2])
    if got != [False, False, False, False, True]:
        raise CheckFailed(f"with patience 2 and losses 2.0, 2.1, 1.9, 2.0, 2.2 step() returned "
                          f"{got}; expected [False, False, False, False, True]: a new best (1.9) "
                          "resets the count of evaluations without improvement")
    # Equal is not better.
    got = run(2, [1.5, 1.5, 1.5])
    if got != [False, False, True]:
        raise CheckFailed("with patience 2 and losses 1.5, 1.5, 1.5 training should stop at the "
                          "third: an equal loss is no improvement (use <, not <=)")
    got = run(1, [1.0, 1.2])
    if got != [False, True]:
        raise CheckFailed(f"with patience 1 and losses 1.0, 1.2 step() returned {got}; expected "
                          "[False, True]")
