"""Checks for day 17, "The training loop", and the reference versions the lesson runs on.

Each ``check_*`` function is differential: it runs the learner's code and the reference on a
battery of its own and compares what they do - ``evaluate`` on models in either mode and 1 to 5
batches; ``save_atomic`` as a sequence (save, save again over it, a save that crashes half way,
load; with and without an older file, path as ``Path`` and ``str``), with its renames and copies
recorded; ``save_state``/``load_state`` over a run resumed twice and compared bit for bit with
the uninterrupted one; ``EarlyStopping`` over scripted loss sequences with ties and late minima.
Each exercise has a table of typical mistakes (``EVALUATE``, ``SAVE_ATOMIC``, ``RESUME``,
``EARLY_STOPPING``) whose hints the check prints and whose entries the tests hand to the check.
It prints one line - a pass, a specific hint, or "not done yet" - and never raises.

The reference functions (:func:`reference_evaluate`, :func:`reference_save_atomic`,
:func:`reference_save_state`, :func:`reference_load_state`) are what the lesson uses after
each exercise, so a learner who skipped one can run on. :class:`ReferenceEarlyStopping` is the
answer ``check_early_stopping`` compares a learner's class with (the lesson's later runs use
the package's ``TrainConfig(patience=...)`` instead).

Example::

    >>> from llmcourse.checks import day17
    >>> class Patient(day17.ReferenceEarlyStopping):  # a learner's class may build on it
    ...     pass
    >>> ok = day17.check_early_stopping(Patient)
    ✅ EarlyStopping: passed
"""

from __future__ import annotations

import hashlib
import math
import os
import pickle
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmcourse.checks._core import (Case, CheckFailed, Mistake, as_bool, as_float, check,
                                    compare, none_hint)
from llmcourse.checks._models import ScriptedLosses

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


class _EvaluationError(RuntimeError):
    """The error a batch of the check's last evaluate() case raises."""


def _carries(exc: BaseException, kind: type) -> bool:
    """Whether ``exc`` is a ``kind``, or was raised from or while handling one."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, kind):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _ev_no_finally(model, batches):  # the mode is put back only when nothing raised
    was = model.training
    model.eval()
    with torch.no_grad():
        losses = _ev_loop(model, batches)
    model.train(was)
    return sum(losses) / len(losses)


def _ev_swallows(model, batches):  # try/except that hides the error
    was = model.training
    model.eval()
    losses = []
    try:
        with torch.no_grad():
            for x, y in batches:
                losses.append(model(x, y)[1].item())
    except Exception:  # noqa: BLE001 - the mistake
        pass
    finally:
        model.train(was)
    return sum(losses) / max(1, len(losses))


def _ev_flag_only(model, batches):  # sets the flag of the top module only
    was = model.training
    model.training = False
    try:
        with torch.no_grad():
            losses = _ev_loop(model, batches)
    finally:
        model.train(was)
    return sum(losses) / len(losses)


def _ev_loop(model: nn.Module, batches: Any) -> list[float]:
    return [model(x, y)[1].item() for x, y in batches]


def _ev_no_eval(model, batches):  # no_grad, but dropout stays on
    with torch.no_grad():
        losses = _ev_loop(model, batches)
    return sum(losses) / len(losses)


def _ev_with_grad(model, batches):  # eval mode, but the graph is recorded
    was = model.training
    model.eval()
    losses = _ev_loop(model, batches)
    model.train(was)
    return sum(losses) / len(losses)


def _ev_stays_eval(model, batches):  # never switches back
    model.eval()
    with torch.no_grad():
        losses = _ev_loop(model, batches)
    return sum(losses) / len(losses)


def _ev_forces_train(model, batches):  # model.train() instead of model.train(was_training)
    model.eval()
    with torch.no_grad():
        losses = _ev_loop(model, batches)
    model.train()
    return sum(losses) / len(losses)


def _ev_sum(model, batches):
    was = model.training
    model.eval()
    with torch.no_grad():
        losses = _ev_loop(model, batches)
    model.train(was)
    return sum(losses)


def _ev_last(model, batches):
    was = model.training
    model.eval()
    with torch.no_grad():
        for x, y in batches:
            loss = model(x, y)[1].item()
    model.train(was)
    return loss


def _ev_fixed_count(model, batches):  # divides by the notebook's 5 batches
    was = model.training
    model.eval()
    with torch.no_grad():
        losses = _ev_loop(model, batches)
    model.train(was)
    return sum(losses) / 5


def _ev_grad_left_off(model, batches):  # torch.set_grad_enabled(False) and never back on
    was = model.training
    model.eval()
    torch.set_grad_enabled(False)
    losses = _ev_loop(model, batches)
    model.train(was)
    return sum(losses) / len(losses)


EVALUATE = [
    Mistake("no model.eval()", _ev_no_eval, hint="the model was in training mode during the "
            "evaluation (dropout on): call model.eval() before the loop (it switches every "
            "submodule; setting model.training = False changes only the top one)"),
    Mistake("model.training = False", _ev_flag_only, expect="call model.eval() before the loop"),
    Mistake("no try/finally", _ev_no_finally, hint="an error in the middle of the evaluation left "
            "the model in eval mode: put model.train(was_training) in the finally: of a try around "
            "the loop"),
    Mistake("error swallowed", _ev_swallows, hint="an error in the middle of the evaluation was "
            "swallowed and evaluate() returned a number anyway: use try/finally without an except, "
            "so the error reaches the caller and the mode is still put back"),
    Mistake("no no_grad", _ev_with_grad, hint="gradients were tracked during the evaluation: run "
            "the loop under `with torch.no_grad():` (it saves the memory of the graph)"),
    Mistake("left in eval mode", _ev_stays_eval, hint="the model was left in eval mode: training "
            "would go on without dropout; put back the mode it had before "
            "(model.train(was_training))"),
    Mistake("always model.train()", _ev_forces_train, hint="a model that was in eval mode before "
            "evaluate() came back in training mode: remember model.training first and restore "
            "exactly that (model.train(was_training)), instead of always calling model.train()"),
    Mistake("sum", _ev_sum, hint="that is the sum of the losses; divide by the number of batches"),
    Mistake("last batch", _ev_last, hint="that is the loss of the last batch only; average over "
            "all the batches"),
    Mistake("divides by 5", _ev_fixed_count, hint="divide by the number of batches given, "
            "len(batches), not a fixed number"),
    Mistake("gradients left off", _ev_grad_left_off, hint="gradients were still off after "
            "evaluate() returned, so the training that follows learns nothing: turn them off only "
            "inside `with torch.no_grad():`, not with torch.set_grad_enabled(False)"),
]


def _evaluate_cases() -> list[Case]:
    return [
        Case("evaluate(model in training mode, 5 batches of (3, 5))", True, [2.0, 1.0, 4.0, 5.0, 6.0]),
        Case("evaluate(model in eval mode, 2 batches)", False, [1.5, 0.25]),
        Case("evaluate(model in training mode, 3 batches)", True, [0.75, 3.0, 1.25]),
        Case("evaluate(model in eval mode, 1 batch)", False, [2.5]),
        Case("evaluate(model in training mode, 3 batches, the second raises an error)", True,
             [1.0, None, 2.0]),
    ]


def _run_evaluate(evaluate: Callable[..., Any], case: Case) -> dict[str, Any]:
    training, losses = case.args
    model = ScriptedLosses(list(losses), target_of=torch.zeros_like,
                           error=_EvaluationError("out of memory (an error the check raises on purpose)"))
    model.train(training)
    batches = [(torch.zeros(3, 5, dtype=torch.long), torch.zeros(3, 5, dtype=torch.long))
               for _ in losses]
    torch.set_grad_enabled(True)  # as in the training loop that calls evaluate()
    try:
        got: Any = as_float(evaluate(model, batches), "evaluate")
    except Exception as exc:  # noqa: BLE001 - the batch's error, or one that wraps it (raise ... from)
        if not _carries(exc, _EvaluationError):
            raise
        got = "raised the batch's error"
    grad_after = torch.is_grad_enabled()
    torch.set_grad_enabled(True)
    return {"the mean loss evaluate returned": got,
            "gradients on again afterwards": grad_after,
            "the model called once per batch": model.calls == len(losses),
            "in eval mode during the evaluation": not any(model.modes),
            "gradients off during the evaluation": not any(model.grad_enabled),
            "mode afterwards as before": model.training == training and model.drop.training == training}


@check("evaluate", mistakes=EVALUATE)
def check_evaluate(evaluate: Callable[..., Any]) -> None:
    """Exercise 1: mean loss over a list of batches, eval mode, no_grad, previous mode restored."""
    compare(evaluate, reference_evaluate, _evaluate_cases(), name="evaluate", run=_run_evaluate,
            mistakes=EVALUATE, rtol=1e-6)


# ---- exercise 2: save_atomic ----------------------------------------------------------------


class _PowerCut:
    """Pickling this object fails, as a crash in the middle of ``torch.save`` would."""

    def __reduce__(self) -> Any:
        raise RuntimeError("simulated crash in the middle of the save")


def _sa_str_concat(obj, path):  # path + ".tmp" works only when path is a str
    tmp = path + ".tmp"
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _sa_replace_in_finally(obj, path):  # the rename runs even when the save failed
    tmp = str(path) + ".tmp"
    try:
        torch.save(obj, tmp)
    finally:
        os.replace(tmp, path)


def _sa_direct(obj, path):  # no temporary file at all
    torch.save(obj, path)


def _sa_swapped(obj, path):  # os.replace(dst, src)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(path, tmp)


def _sa_never_overwrites(obj, path):  # "do not clobber a good checkpoint"
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(obj, tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if not path.exists():
        os.replace(tmp, path)
    else:
        tmp.unlink()


def _sa_copyfile(obj, path):  # a copy writes the target piece by piece
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(obj, tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    shutil.copyfile(tmp, path)
    tmp.unlink()


def _sa_tmp_move(obj, path):  # temporary file in /tmp, moved with shutil.move
    fd, tmp = tempfile.mkstemp(suffix=".pt")
    os.close(fd)
    try:
        torch.save(obj, tmp)
    except BaseException:
        os.unlink(tmp)
        raise
    shutil.move(tmp, path)


def _sa_tmp_replace(obj, path):  # temporary file in /tmp, os.replace
    fd, tmp = tempfile.mkstemp(suffix=".pt")
    os.close(fd)
    try:
        torch.save(obj, tmp)
    except BaseException:
        os.unlink(tmp)
        raise
    os.replace(tmp, path)


def _sa_leaves_tmp(obj, path):  # no clean-up after a crash
    tmp = str(path) + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _sa_swallows(obj, path):  # the error never reaches the caller
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except Exception:
        tmp.unlink(missing_ok=True)


def _sa_unlink_rename(obj, path):  # os.rename cannot overwrite on Windows, so delete first
    tmp = str(path) + ".tmp"
    try:
        torch.save(obj, tmp)
    except BaseException:
        os.unlink(tmp)
        raise
    if os.path.exists(path):
        os.unlink(path)
    os.rename(tmp, path)


def _sa_rename(obj, path):  # Path.rename is os.rename
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(obj, tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.rename(path)


def _sa_move_same_folder(obj, path):  # shutil.move next to the target
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(obj, tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    shutil.move(tmp, path)


def _sa_wrong_place(obj, path):  # saves next to the checkpoint, under another name
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(obj, tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path.with_name(path.name + ".new"))


def _sa_unlink_first(obj, path):  # "make room" for the new checkpoint: the old one is gone first
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.unlink(missing_ok=True)
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _sa_copy(obj, path):  # shutil.copy, then the temporary file removed
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(obj, tmp)
        shutil.copy(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _sa_unlinks_path(obj, path):  # the clean-up deletes the checkpoint, not the temporary file
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _sa_other_error(obj, path):  # the crash comes back as an error of another kind
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise OSError("the checkpoint could not be saved") from None


_SA_OTHER_FOLDER = ("the temporary file was in another folder, not next to the checkpoint: a "
                    "rename is atomic only within one filesystem, and shutil.move (or os.replace) "
                    "from /tmp across filesystems copies or fails; create the temporary file in "
                    "the same folder as the target (path.with_name(path.name + '.tmp')) and "
                    "os.replace it onto path")

_SA_RENAME = ("use os.replace, not os.rename: os.rename refuses to overwrite an existing file on "
              "Windows (and deleting the old file first leaves a moment with no checkpoint at "
              "all); os.replace overwrites atomically everywhere")

SAVE_ATOMIC = [
    Mistake("torch.save directly", _sa_direct, hint="a crash in the middle of the save destroyed "
            "the previous checkpoint: write to a temporary file in the same directory first, "
            "then os.replace it onto path"),
    Mistake("os.replace arguments swapped", _sa_swapped, hint="os.replace(src, dst) moves src onto "
            "dst: you swapped them, moving the checkpoint onto the temporary file; write "
            "os.replace(tmp, path)"),
    Mistake("never overwrites", _sa_never_overwrites, hint="a second save did not replace the "
            "checkpoint that was already there: os.replace(tmp, path) must overwrite the existing "
            "file every time (it is atomic, so the old file is safe until then)"),
    Mistake("shutil.copyfile", _sa_copyfile, hint="shutil.copyfile writes the target piece by "
            "piece, so a crash during the copy leaves half a checkpoint: rename the temporary "
            "file onto path with os.replace(tmp, path), which is atomic"),
    Mistake("tmp in /tmp + shutil.move", _sa_tmp_move, hint=_SA_OTHER_FOLDER),
    Mistake("tmp in /tmp + os.replace", _sa_tmp_replace, hint=_SA_OTHER_FOLDER),
    Mistake("temporary file left after a crash", _sa_leaves_tmp, hint="the crashed save left its "
            "temporary file behind: delete it when writing fails (try/except BaseException: "
            "tmp.unlink(missing_ok=True); raise)"),
    Mistake("error swallowed", _sa_swallows, hint="a save that crashed returned normally: let the "
                                                   "error propagate (re-raise it) so the training "
                                                   "loop knows the checkpoint was not written"),
    Mistake("unlink + os.rename", _sa_unlink_rename, hint=_SA_RENAME),
    Mistake("os.rename", _sa_rename, hint=_SA_RENAME),
    Mistake("shutil.move next to the target", _sa_move_same_folder, hint="use os.replace(tmp, "
            "path), not shutil.move: shutil.move falls back to copying the file when a rename "
            "fails (across filesystems, or onto an existing file on Windows), and a copy is not "
            "atomic"),
    Mistake("deletes the old checkpoint first", _sa_unlink_first, hint="the previous checkpoint was "
            "deleted before the new one was safely written, so a crash mid-save left no checkpoint "
            "at all: never delete path; os.replace(tmp, path) overwrites it atomically once the "
            "temporary file is complete"),
    Mistake("shutil.copy", _sa_copy, hint="shutil.copy writes the target piece by piece, so a "
            "crash during the copy leaves half a checkpoint: rename the temporary file onto path "
            "with os.replace(tmp, path), which is atomic"),
    Mistake("path + '.tmp'", _sa_str_concat, hint="path may be a pathlib.Path, and a Path + str "
            "raises TypeError: build the name with Path(path).with_name(Path(path).name + '.tmp') "
            "or str(path) + '.tmp'"),
    Mistake("os.replace in finally", _sa_replace_in_finally, hint="the half-written temporary file "
            "was moved onto the checkpoint after torch.save failed: call os.replace(tmp, path) "
            "only after torch.save returned (inside the try, not in finally:)"),
    Mistake("clean-up deletes path", _sa_unlinks_path, hint="after a crashed save the previous "
            "checkpoint was gone and the temporary file left: on failure delete the temporary "
            "file (tmp.unlink(missing_ok=True)), never path, which still holds the last good "
            "checkpoint"),
    Mistake("another error raised", _sa_other_error, hint="the crash reached the caller as an "
            "error of another kind: after deleting the temporary file, re-raise the original "
            "error with a bare `raise`"),
    Mistake("saved under another name", _sa_wrong_place, hint="after save_atomic(obj, path) the "
            "finished file must be at `path`: os.replace the temporary file onto path itself"),
]


class _FileOps:
    """Records the renames, moves and copies made while it is active (not their inner calls)."""

    PATCHED = [(os, "replace", "os.replace"), (os, "rename", "os.rename"),
               (shutil, "move", "shutil.move"), (shutil, "copyfile", "shutil.copyfile"),
               (shutil, "copy", "shutil.copy"), (shutil, "copy2", "shutil.copy2")]

    def __init__(self, folder: Path, fn: Any = None) -> None:
        self.folder = folder.resolve()
        self.ops: list[str] = []
        self.depth = 0
        self.saved: list[tuple[Any, str, Any]] = []
        # the learner's own names for these functions (``from os import replace``) are spied on too
        self.scope: dict[str, Any] = getattr(fn, "__globals__", {})
        self.saved_names: list[tuple[str, Any]] = []

    def _spy(self, real: Callable[..., Any], label: str) -> Callable[..., Any]:
        def spy(src: Any, dst: Any, *args: Any, **kwargs: Any) -> Any:
            if self.depth == 0:
                where = ("next to the checkpoint" if Path(os.fspath(src)).resolve().parent == self.folder
                         else "from another folder")
                self.ops.append(f"{label} {where}")
            self.depth += 1
            try:
                return real(src, dst, *args, **kwargs)
            finally:
                self.depth -= 1
        return spy

    def __enter__(self) -> "_FileOps":
        for module, attr, label in self.PATCHED:
            real = getattr(module, attr)
            self.saved.append((module, attr, real))
            spy = self._spy(real, label)
            setattr(module, attr, spy)
            for name, value in list(self.scope.items()):
                if value is real:
                    self.saved_names.append((name, real))
                    self.scope[name] = spy
        return self

    def __exit__(self, *exc: Any) -> None:
        for module, attr, real in self.saved:
            setattr(module, attr, real)
        for name, real in self.saved_names:
            self.scope[name] = real


def _on_disk(folder: Path, name: str) -> dict[str, Any]:
    path = folder / name
    if not path.exists():
        at = "no file"
    else:
        try:
            state = torch.load(path, weights_only=True)
            ok = torch.equal(state["w"], torch.arange(6.0).reshape(2, 3) * state["step"])
            at = state["step"] if ok else "a damaged checkpoint"
        except Exception:  # noqa: BLE001 - any failure means the file is broken
            at = "a file torch.load cannot read"
    others = sorted(p.name for p in folder.iterdir() if p.name != name)
    return {"the checkpoint at path (its step)": at, "other files left in the folder": len(others)}


def _without_folder(exc: Exception, folder: str) -> Exception:
    """The same error with the check's random temporary folder shown as ``<tmp>``, so that a
    learner's crash and a table mistake's crash read alike."""
    text = str(exc).replace(os.path.realpath(folder), "<tmp>").replace(folder, "<tmp>")
    try:
        return type(exc)(text)
    except Exception:  # noqa: BLE001 - an exception type with other arguments
        return exc


def _run_save_atomic(save_atomic: Callable[..., Any], case: Case) -> list[dict[str, Any]]:
    """The sequence: [old checkpoint], save, save again over it, a crash mid-save, load."""
    name, as_str, old = case.args
    transcript = []
    with tempfile.TemporaryDirectory(prefix="check_day17_") as d:
        folder = Path(d) / "run"
        folder.mkdir()
        path = folder / name
        if old:
            torch.save({"step": 0, "w": torch.zeros(2, 3)}, path)
        steps = [(1, "save"), (2, "save again over it"), (3, "a save that crashes half way")]
        for step, what in steps:
            obj: dict[str, Any] = {"step": step, "w": torch.arange(6.0).reshape(2, 3) * step}
            if step == 3:
                obj["boom"] = _PowerCut()
            with _FileOps(folder, save_atomic) as ops:
                try:
                    save_atomic(obj, str(path) if as_str else path)
                    outcome = "returned"
                except Exception as exc:  # noqa: BLE001 - the crash is part of the transcript
                    if isinstance(exc, (NotImplementedError, AssertionError)):
                        raise
                    if step != 3:
                        raise _without_folder(exc, d) from exc
                    outcome = f"raised {type(exc).__name__}"
            transcript.append({"what happened": f"{what}: {outcome}", **_on_disk(folder, name),
                               "renames and copies": ops.ops})
    return transcript


def _save_atomic_cases() -> list[Case]:
    return [
        Case("save_atomic: save, save again, a crash mid-save, load (ckpt.pt, no file before)",
             "ckpt.pt", False, False),
        Case("save_atomic: the same over an older best.pt, path given as a str",
             "best.pt", True, True),
    ]


@check("save_atomic", mistakes=SAVE_ATOMIC)
def check_save_atomic(save_atomic: Callable[..., Any]) -> None:
    """Exercise 2: temp file in the same directory + os.replace; old file intact after a crash."""
    compare(save_atomic, reference_save_atomic, _save_atomic_cases(), name="the transcript",
            run=_run_save_atomic, mistakes=SAVE_ATOMIC)


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


def _fresh(seed: int, optimizer: str) -> tuple[nn.Module, torch.optim.Optimizer, torch.Generator]:
    model = _DropoutLM(seed=seed)
    if optimizer == "AdamW":
        opt: torch.optim.Optimizer = torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.1)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    return model, opt, torch.Generator().manual_seed(seed)


def _opt_moments(opt: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [t.clone() for s in opt.state.values() for t in s.values() if torch.is_tensor(t)]


def _run_resume(pair: Any, case: Case) -> dict[str, Any]:
    """Train with a save at each stop, 'crash', rebuild with other seeds, load; twice."""
    save_state, load_state = pair
    optimizer, stops, total = case.args
    transcript: dict[str, Any] = {"steps load_state returned": [], "after each load": []}
    with tempfile.TemporaryDirectory(prefix="check_day17_") as d:
        path = Path(d) / "state.pt"
        torch.manual_seed(5)
        model, opt, gen = _fresh(0, optimizer)
        losses, start = [], 0
        for k, stop in enumerate(stops):
            losses += _steps(model, opt, gen, start, stop)
            saved = ({n: t.clone() for n, t in model.state_dict().items()}, _opt_moments(opt),
                     gen.get_state(), torch.get_rng_state())
            before = _stat(path)
            with _FileOps(Path(d), save_state) as ops:
                save_state(path, model, opt, gen, stop)
            after = _stat(path)
            # written in place: the same file (inode) as before, new contents, and no rename seen.
            # A rename gives path the temporary file's inode, which tells an atomic save apart
            # even when the rename was not seen (made in another module, out of the spies' sight);
            # the first save, onto no file, cannot tell, so it is judged at the next one
            if (not ops.ops and before is not None and after is not None
                    and after[0] == before[0] and after != before):
                raise CheckFailed(_RS_NOT_ATOMIC)
            if not path.is_file():
                raise CheckFailed(f"save_state(path, ..., step={stop}) wrote no file at path")
            del model, opt, gen  # the "crash": everything in memory is gone
            torch.manual_seed(12345 + k)  # a new process starts from another random state
            model, opt, gen = _fresh(99 + k, optimizer)
            try:
                step = load_state(path, model, opt, gen)
            except pickle.UnpicklingError as exc:
                raise CheckFailed(_RS_OBJECTS) from exc
            if step is None:
                raise none_hint("load_state", f"the step saved in the checkpoint ({stop} here)")
            if isinstance(step, torch.Tensor) and step.numel() == 1:
                step = step.item()
            moments = _opt_moments(opt)
            transcript["after each load"].append({
                "weights restored": all(torch.equal(t, saved[0][n])
                                        for n, t in model.state_dict().items()),
                "optimizer state restored": len(moments) == len(saved[1]) and all(
                    torch.equal(a, b) for a, b in zip(moments, saved[1])),
                "batch generator restored": torch.equal(gen.get_state(), saved[2]),
                "torch's global random state restored": torch.equal(torch.get_rng_state(), saved[3]),
            })
            transcript["steps load_state returned"].append(step)
            start = int(step) if isinstance(step, (int, float)) and 0 <= step <= total else stop
        losses += _steps(model, opt, gen, start, total)
    transcript["the losses of the run, step by step"] = losses
    return transcript


def _rs_save(path, model, optimizer, generator, step, *, opt=True, gen=True, rng=True):
    state = {"model": model.state_dict(), "step": step}
    if opt:
        state["optimizer"] = optimizer.state_dict()
    if gen:
        state["generator"] = generator.get_state()
    if rng:
        state["torch_rng"] = torch.get_rng_state()
    reference_save_atomic(state, path)


def _rs_load(path, model, optimizer, generator):
    state = torch.load(path, weights_only=True)
    model.load_state_dict(state["model"])
    if "optimizer" in state:
        optimizer.load_state_dict(state["optimizer"])
    if "generator" in state:
        generator.set_state(state["generator"])
    if "torch_rng" in state:
        torch.set_rng_state(state["torch_rng"])
    return state["step"]


def _rs_save_no_opt(path, model, optimizer, generator, step):
    _rs_save(path, model, optimizer, generator, step, opt=False)


def _rs_save_no_gen(path, model, optimizer, generator, step):
    _rs_save(path, model, optimizer, generator, step, gen=False)


def _rs_save_no_rng(path, model, optimizer, generator, step):
    _rs_save(path, model, optimizer, generator, step, rng=False)


def _rs_load_no_return(path, model, optimizer, generator):
    _rs_load(path, model, optimizer, generator)


def _rs_load_no_weights(path, model, optimizer, generator):
    state = torch.load(path, weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    return state["step"]


def _rs_load_next_step(path, model, optimizer, generator):
    return _rs_load(path, model, optimizer, generator) + 1


def _rs_load_then_draws(path, model, optimizer, generator):
    step = _rs_load(path, model, optimizer, generator)
    torch.rand(1)  # e.g. re-initialising a layer after the restore
    return step


def _rs_load_reseeds(path, model, optimizer, generator):  # a new seed instead of the saved state
    state = torch.load(path, weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    generator.set_state(state["generator"])
    torch.manual_seed(state["step"])
    return state["step"]


def _rs_save_objects(path, model, optimizer, generator, step):  # the objects, not their states
    reference_save_atomic({"model": model.state_dict(), "optimizer": optimizer.state,
                           "generator": generator, "torch_rng": torch.get_rng_state(),
                           "step": step}, path)


def _stat(path: Path) -> Any:
    """What changes when a file is written: its inode first, then its modification time, size
    and contents (the contents too, since two writes can fall within one tick of the clock)."""
    try:
        st = path.stat()
        contents = path.read_bytes()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size, hashlib.sha256(contents).hexdigest()


def _rs_save_direct(path, model, optimizer, generator, step):  # torch.save straight onto path
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "generator": generator.get_state(), "torch_rng": torch.get_rng_state(),
                "step": step}, path)


_RS_NOT_ATOMIC = ("save_state wrote the checkpoint with torch.save straight onto path, so a crash "
                  "mid-save would destroy the last good one: save the dict with "
                  "atomic_save(state, path) (exercise 2's temporary file + os.replace)")

_RS_OBJECTS = ("torch.load(path, weights_only=True) refused the checkpoint: save the states, which "
               "are tensors, numbers and dicts (model.state_dict(), optimizer.state_dict(), "
               "generator.get_state(), torch.get_rng_state()), not objects such as the Generator "
               "or optimizer.state")


def _rs_save_first_only(path, model, optimizer, generator, step):  # keeps the first checkpoint
    if not Path(path).exists():
        _rs_save(path, model, optimizer, generator, step)


RESUME = [
    Mistake("optimizer state not saved", (_rs_save_no_opt, _rs_load), args=(_rs_save_no_opt, _rs_load),
            hint="the optimizer starts empty after load_state: AdamW's moment estimates "
            "(exp_avg, exp_avg_sq) and step counts were not restored; save "
            "optimizer.state_dict() and load it with optimizer.load_state_dict into the optimizer "
            "passed to load_state (not a new one)"),
    Mistake("batch generator not saved", (_rs_save_no_gen, _rs_load), args=(_rs_save_no_gen, _rs_load),
            hint="the batch generator was not restored, so the resumed run draws different "
            "batches: save generator.get_state() and put it back with generator.set_state on the "
            "generator passed to load_state (not on a new one)"),
    Mistake("torch RNG not saved", (_rs_save_no_rng, _rs_load), args=(_rs_save_no_rng, _rs_load),
            hint="torch's global random state was not restored, so dropout drops different units "
            "after the resume: save torch.get_rng_state() and put it back with torch.set_rng_state"),
    Mistake("load_state returns None", (_rs_save, _rs_load_no_return), args=(_rs_save, _rs_load_no_return),
            expect="load_state returned None"),
    Mistake("weights not loaded", (_rs_save, _rs_load_no_weights), args=(_rs_save, _rs_load_no_weights),
            hint="after load_state the weights differ from the saved ones: save "
            "model.state_dict() and load it with model.load_state_dict"),
    Mistake("returns step + 1", (_rs_save, _rs_load_next_step), args=(_rs_save, _rs_load_next_step),
            hint="load_state should return the step saved in the checkpoint as it is: it counts "
            "the steps already done, which is where the loop goes on from"),
    Mistake("random number drawn after the restore", (_rs_save, _rs_load_then_draws), args=(_rs_save, _rs_load_then_draws),
            hint="torch's global random state moved after load_state put it back (a random draw "
            "after torch.set_rng_state): save torch.get_rng_state() and restore it last, with "
            "nothing random after it"),
    Mistake("torch.manual_seed instead of the saved state", (_rs_save, _rs_load_reseeds),
            args=(_rs_save, _rs_load_reseeds),
            hint="torch.manual_seed starts a new random stream, not the one the run was in: put "
            "the saved state back with torch.set_rng_state(state[...]) (saved with "
            "torch.get_rng_state())"),
    Mistake("torch.save without atomic_save", (_rs_save_direct, _rs_load),
            args=(_rs_save_direct, _rs_load), expect=_RS_NOT_ATOMIC),
    Mistake("objects saved, not their states", (_rs_save_objects, _rs_load),
            args=(_rs_save_objects, _rs_load), expect=_RS_OBJECTS),
    Mistake("second save does not overwrite", (_rs_save_first_only, _rs_load), args=(_rs_save_first_only, _rs_load),
            hint="the second resume loaded the first checkpoint: save_state must overwrite the "
            "file at path every time it is called"),
]


def _resume_cases() -> list[Case]:
    return [
        Case("AdamW, 14 steps: stopped after 7 and resumed, stopped after 11 and resumed again",
             "AdamW", (7, 11), 14),
        Case("SGD with momentum, 9 steps: resumed after 3 and after 6", "SGD", (3, 6), 9),
    ]


@check("save_state / load_state", mistakes=RESUME)
def check_resume(save_state: Callable[..., Any], load_state: Callable[..., Any]) -> None:
    """Exercise 3: a run stopped and resumed from a checkpoint, twice, repeats the uninterrupted
    losses bit for bit."""
    compare((save_state, load_state), (reference_save_state, reference_load_state),
            _resume_cases(), name="the resumed run", run=_run_resume, mistakes=RESUME,
            atol=0.0, rtol=0.0)


# ---- exercise 4: early stopping ---------------------------------------------------------------


class _EsBase:
    def __init__(self, patience):
        self.patience = patience
        self.best = math.inf
        self.bad_evals = 0


class _EsVsPrevious(_EsBase):  # compares with the last loss, not the best
    def __init__(self, patience):
        super().__init__(patience)
        self.last = math.inf

    def step(self, val_loss):
        if val_loss < self.last:
            self.bad_evals = 0
        else:
            self.bad_evals += 1
        self.last = val_loss
        self.best = min(self.best, val_loss)
        return self.bad_evals >= self.patience


class _EsBestIsLast(_EsBase):  # self.best = val_loss on every evaluation
    def step(self, val_loss):
        if val_loss < self.best:
            self.bad_evals = 0
        else:
            self.bad_evals += 1
        self.best = val_loss
        return self.bad_evals >= self.patience


class _EsLate(_EsBase):  # > instead of >=
    def step(self, val_loss):
        if val_loss < self.best:
            self.best, self.bad_evals = val_loss, 0
        else:
            self.bad_evals += 1
        return self.bad_evals > self.patience


class _EsEarly(_EsBase):  # counts the evaluation that set the best
    def step(self, val_loss):
        if val_loss < self.best:
            self.best, self.bad_evals = val_loss, 0
        else:
            self.bad_evals += 1
        return self.bad_evals >= self.patience - 1 and self.bad_evals > 0


class _EsNeverUpdatesBest(_EsBase):  # forgets self.best = val_loss
    def step(self, val_loss):
        if val_loss < self.best:
            self.bad_evals = 0
        else:
            self.bad_evals += 1
        return self.bad_evals >= self.patience


class _EsTiesImprove(_EsBase):  # <= instead of <
    def step(self, val_loss):
        if val_loss <= self.best:
            self.best, self.bad_evals = val_loss, 0
        else:
            self.bad_evals += 1
        return self.bad_evals >= self.patience


class _EsNoReset(_EsBase):  # a new best does not reset the count
    def step(self, val_loss):
        if val_loss < self.best:
            self.best = val_loss
        else:
            self.bad_evals += 1
        return self.bad_evals >= self.patience


class _EsNoBestAttribute:  # keeps the best under another name
    def __init__(self, patience):
        self.patience, self.lowest, self.bad_evals = patience, math.inf, 0

    def step(self, val_loss):
        if val_loss < self.lowest:
            self.lowest, self.bad_evals = val_loss, 0
        else:
            self.bad_evals += 1
        return self.bad_evals >= self.patience


class _EsMargin(_EsBase):  # "an improvement must be worth it": a relative margin
    def step(self, val_loss):
        if val_loss < self.best * 0.999:
            self.best = val_loss
            self.bad_evals = 0
        else:
            self.bad_evals += 1
        return self.bad_evals >= self.patience


class _EsSharedHistory:  # the history lives in the class, shared by every instance
    history: list[float] = []

    def __init__(self, patience):
        self.patience = patience
        self.best = math.inf

    def step(self, val_loss):
        self.history.append(val_loss)
        self.best = min(self.best, val_loss)
        return len(self.history) - 1 - self.history.index(min(self.history)) >= self.patience


_ES_SHARED = ("a new EarlyStopping started with the history of an earlier one: keep its state in "
              "attributes set in __init__ (self.best = math.inf, self.bad_evals = 0), not in a class "
              "attribute such as a list, which every instance shares")


class _EsBestBeforeCompare(_EsBase):  # self.best updated before the comparison
    def step(self, val_loss):
        self.best = min(self.best, val_loss)
        if val_loss < self.best:
            self.bad_evals = 0
        else:
            self.bad_evals += 1
        return self.bad_evals >= self.patience


class _EsFixedPatience(_EsBase):  # the notebook's patience typed in
    def step(self, val_loss):
        if val_loss < self.best:
            self.best, self.bad_evals = val_loss, 0
        else:
            self.bad_evals += 1
        return self.bad_evals >= 3


class _EsStartsAtZero(_EsBase):  # self.best = 0: no loss is ever below it
    def __init__(self, patience):
        super().__init__(patience)
        self.best = 0.0

    def step(self, val_loss):
        if val_loss < self.best:
            self.best, self.bad_evals = val_loss, 0
        else:
            self.bad_evals += 1
        return self.bad_evals >= self.patience


class _EsHigherIsBetter(_EsBase):  # keeps the highest loss
    def __init__(self, patience):
        super().__init__(patience)
        self.best = -math.inf

    def step(self, val_loss):
        if val_loss > self.best:
            self.best, self.bad_evals = val_loss, 0
        else:
            self.bad_evals += 1
        return self.bad_evals >= self.patience


class _EsReturnsNone(_EsBase):
    def step(self, val_loss):
        self.best = min(self.best, val_loss)


EARLY_STOPPING = [
    Mistake("compares with the last loss", _EsVsPrevious, hint="a loss better than the previous "
            "evaluation but not than the best reset the count: compare with the best loss so "
            "far (self.best), not with the last one"),
    Mistake("best overwritten by every loss", _EsBestIsLast, hint="self.best was set to every loss, "
            "even a worse one: update self.best only when val_loss beats it (inside the `if`)"),
    Mistake("ties count as improvement", _EsTiesImprove, hint="a loss equal to the best is no "
            "improvement (use <, not <=): it must add to the count"),
    Mistake("stops one evaluation late", _EsLate, hint="stopped one evaluation too late: with "
            "patience p, stop as soon as p evaluations in a row brought no new best "
            "(count >= patience, not count > patience)"),
    Mistake("stops one evaluation early", _EsEarly, hint="stopped one evaluation too early: "
            "with patience p, stop when p evaluations in a row brought no new best (count them, "
            "then compare count >= patience)"),
    Mistake("never updates best", _EsNeverUpdatesBest, hint="self.best never changes, so every "
            "loss looks like a new best: when a loss beats self.best, set self.best = val_loss "
            "(and reset the count)"),
    Mistake("new best does not reset the count", _EsNoReset, hint="a new best must reset the count "
            "of evaluations without improvement to 0"),
    Mistake("no best attribute", _EsNoBestAttribute, hint="keep the lowest loss so far in the "
            "attribute `best` (self.best, starting at math.inf)"),
    Mistake("step returns None", _EsReturnsNone, expect="True or False"),
    Mistake("improvement by a margin", _EsMargin, hint="a loss only slightly below the best is still "
            "a new best: compare val_loss < self.best with no margin"),
    Mistake("history in a class attribute", _EsSharedHistory, expect=_ES_SHARED),
    Mistake("best updated before the comparison", _EsBestBeforeCompare, hint="self.best was "
            "updated before the comparison, so val_loss < self.best is never true and a new best "
            "never resets the count: compare first, then set self.best = val_loss inside the `if`"),
    Mistake("fixed patience", _EsFixedPatience, hint="use the patience given to __init__ "
            "(self.patience), not a fixed number"),
    Mistake("best starts at 0", _EsStartsAtZero, hint="self.best starts at 0, which no loss is "
            "below, so nothing ever counts as an improvement: start it at math.inf"),
    Mistake("higher loss counted as better", _EsHigherIsBetter, hint="a LOWER validation loss is "
            "the improvement: keep the lowest loss (val_loss < self.best, starting at math.inf)"),
]

_MISSING = "<no attribute best>"


def _run_early_stopping(cls: Any, case: Case) -> list[dict[str, Any]]:
    patience, losses = case.args
    stopper = cls(patience)
    out = []
    for v in losses:
        stop = as_bool(stopper.step(v), f"stopper.step({v})")
        best = getattr(stopper, "best", _MISSING)
        if isinstance(best, torch.Tensor) and best.numel() == 1:
            best = best.item()
        out.append({"val_loss": v, "stop": stop, "best": best})
        if stop:
            break
    return out


def _early_stopping_cases() -> list[Case]:
    cases = [
        (6, [2.0, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7]),     # a long patience, then only worse
        (2, [2.0, 2.1, 2.2, 2.3, 2.4]),                        # only worse
        (2, [1.5, 1.5, 1.5]),                                  # ties with the best
        (3, [3.0, 2.5, 2.6, 2.55, 2.7, 2.4]),                  # better than the last, not the best
        (2, [2.0, 2.1, 1.9, 2.0, 2.2]),                        # a new best resets the count
        (4, [5.0, 4.0, 4.0, 4.5, 4.2, 3.9, 4.0, 4.0, 3.9, 4.1, 3.95]),  # late minimum, tie later
        (3, [0.9, 1.0, 0.5, 0.5, 0.6, 0.7]),                   # late minimum then a tie
        (1, [1.0, 1.2]),
        (5, [4.0, 3.0, 2.0, 1.0]),                             # always improving: never stops
        (2, [2.0, 1.999, 2.1, 2.2]),                           # a tiny improvement is one
    ]
    return [Case(f"EarlyStopping({p}) over the losses {vs}", p, vs) for p, vs in cases]


@check("EarlyStopping", mistakes=EARLY_STOPPING)
def check_early_stopping(early_stopping_cls: Callable[..., Any]) -> None:
    """Exercise 4: stop after ``patience`` evaluations in a row without a new best."""
    first = early_stopping_cls(2)
    for v in (1.0, 2.0, 3.0):
        first.step(v)
    fresh = early_stopping_cls(2).step(10.0)  # a new stopper never stops at its first evaluation
    if fresh is True or (isinstance(fresh, torch.Tensor) and fresh.numel() == 1 and bool(fresh)):
        raise CheckFailed(_ES_SHARED)
    compare(early_stopping_cls, ReferenceEarlyStopping, _early_stopping_cases(),
            name="the evaluations (stop, best)", run=_run_early_stopping, mistakes=EARLY_STOPPING)
