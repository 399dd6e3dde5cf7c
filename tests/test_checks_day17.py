"""The day-17 checks pass the solutions, reject the mistakes of their tables, and say "not done
yet" for stubs."""

from __future__ import annotations

import math
import os
import tempfile
from os import replace as own_replace  # a learner's own name for os.replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from llmcourse.checks import day17
from llmcourse.train import checkpoint as package_checkpoint
from checklines import fails, mistake_params, one_line, passes, rejects, stub

pytestmark = pytest.mark.usefixtures("one_thread")

atomic_save = day17.reference_save_atomic  # what the notebook's save_state calls


# ---- the lesson's solutions (solutions/day17_the_training_loop.md) ------------------------------


def evaluate(model, batches):
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            losses = [model(xb, yb)[1].item() for xb, yb in batches]
    finally:
        model.train(was_training)   # put the mode back even if a batch raised
    return sum(losses) / len(losses)


def save_atomic(obj, path):
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_state(path, model, optimizer, generator, step):
    atomic_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "generator": generator.get_state(), "torch_rng": torch.get_rng_state(),
                 "step": step}, path)


def load_state(path, model, optimizer, generator):
    state = torch.load(path, weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    return state["step"]


class EarlyStopping:
    def __init__(self, patience):
        self.patience = patience
        self.best = math.inf
        self.bad_evals = 0

    def step(self, val_loss):
        if val_loss < self.best:
            self.best = val_loss
            self.bad_evals = 0
        else:
            self.bad_evals += 1
        return self.bad_evals >= self.patience


# ---- other correct variants ----------------------------------------------------------------------


def evaluate_try_finally(model, batches):
    was = model.training
    model.eval()
    total = torch.zeros(())
    try:
        with torch.no_grad():
            for x, y in batches:
                total += model(x, y)[1]
    finally:
        model.train(was)
    return total / len(batches)  # a 0-d tensor is fine


@torch.no_grad()
def evaluate_decorated(model, batches):
    was = model.training
    model.eval()
    try:
        out = sum(model(x, y)[1].item() for x, y in batches) / len(batches)
    finally:
        if was:
            model.train()
    return out


def evaluate_wraps_the_error(model, batches):  # the batch's error reaches the caller, wrapped
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            losses = [model(x, y)[1].item() for x, y in batches]
    except Exception as exc:
        raise RuntimeError(f"evaluation failed: {exc}") from exc
    finally:
        model.train(was)
    return sum(losses) / len(losses)


def evaluate_keywords(model, batches):  # the course's models take model(idx, targets=...)
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            losses = [model(idx=x, targets=y)[1].item() for x, y in batches]
    finally:
        model.train(was)
    return sum(losses) / len(losses)


def save_atomic_path_replace(obj, path):  # Path.replace is os.replace; another temporary name
    path = Path(path)
    tmp = path.parent / (path.name + ".partial")
    try:
        torch.save(obj, tmp)
    except BaseException:
        tmp.unlink()
        raise
    tmp.replace(path)


def save_atomic_mkstemp_same_dir(obj, path):  # a unique temporary name next to the target
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


class EarlyStoppingCounter:
    def __init__(self, patience):
        self.patience, self.best, self.wait = patience, float("inf"), 0

    def step(self, val_loss):
        self.wait = 0 if val_loss < self.best else self.wait + 1
        self.best = min(self.best, val_loss)
        return self.wait >= self.patience


def evaluate_inference_mode(model, batches):  # inference_mode also records no graph
    was = model.training
    model.eval()
    try:
        with torch.inference_mode():
            losses = torch.stack([model(x, y)[1] for x, y in batches])
    finally:
        model.train(was)
    return losses.mean().item()


def save_atomic_finally(obj, path):  # the temporary name from with_suffix; clean-up in finally
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_state_tuple(path, model, optimizer, generator, step):
    atomic_save((model.state_dict(), optimizer.state_dict(), generator.get_state(),
                 torch.get_rng_state(), step), path)


def load_state_tuple(path, model, optimizer, generator):  # restored in another order
    weights, moments, batches, rng, step = torch.load(path, weights_only=True)
    torch.set_rng_state(rng)
    generator.set_state(batches)
    optimizer.load_state_dict(moments)
    model.load_state_dict(weights)
    return int(step)


_HIDDEN = {"replace": os.replace}  # out of the check's sight: as if called from another module


def save_atomic_own_name(obj, path):  # ``from os import replace``: still os.replace
    tmp = Path(str(path) + ".tmp")
    try:
        torch.save(obj, tmp)
        own_replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_state_unseen_rename(path, model, optimizer, generator, step):
    # atomic, through a rename the check's spies do not see (made in another module, say): the
    # checkpoint at path is a new file each time, never rewritten in place
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "generator": generator.get_state(), "torch_rng": torch.get_rng_state(),
                "step": step}, tmp)
    _HIDDEN["replace"](tmp, path)


def save_state_own_name(path, model, optimizer, generator, step):
    save_atomic_own_name({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                          "generator": generator.get_state(), "torch_rng": torch.get_rng_state(),
                          "step": step}, path)


class EarlyStoppingHistory:  # keeps every loss; best is a property
    def __init__(self, patience):
        self.patience, self.history = patience, []

    @property
    def best(self):
        return min(self.history, default=math.inf)

    def step(self, val_loss):
        self.history.append(val_loss)
        since_best = len(self.history) - 1 - self.history.index(min(self.history))
        return since_best >= self.patience


# ---- every mistake of the tables is rejected with its hint ----------------------------------------


@pytest.mark.parametrize("check_fn, mistake", mistake_params(day17))
def test_mistake_rejected(check_fn, mistake, capsys):
    rejects(capsys, check_fn, mistake)


def test_every_exercise_has_at_least_three_mistakes():
    for fn in (day17.check_evaluate, day17.check_save_atomic, day17.check_resume,
               day17.check_early_stopping):
        assert len(fn.mistakes) >= 3, fn.__name__


# ---- exercise 1: evaluate --------------------------------------------------------------------


def evaluate_from_logits(model, batches):  # the loss recomputed from the logits, as day 06 did
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            losses = [F.cross_entropy(model(x)[0].flatten(0, 1), y.flatten()).item()
                      for x, y in batches]
    finally:
        model.train(was)
    return sum(losses) / len(losses)


@pytest.mark.parametrize("fn", [evaluate, evaluate_try_finally, evaluate_decorated, evaluate_wraps_the_error,
                                evaluate_keywords, evaluate_inference_mode, evaluate_from_logits])
def test_evaluate_passes_correct_answers(capsys, fn):
    passes(capsys, day17.check_evaluate, fn)


def test_evaluate_refuses_the_reference(capsys):
    fails(capsys, day17.check_evaluate, day17.reference_evaluate, "the course's own reference")


def test_evaluate_stub_and_garbage(capsys):
    fails(capsys, day17.check_evaluate, stub, "not done yet")
    fails(capsys, day17.check_evaluate, lambda m, b: "x", "one number")
    fails(capsys, day17.check_evaluate, lambda m, b: None, "returned None")


def test_evaluate_mean_from_the_batches(capsys):
    # hand-worked: the recorder's losses 1.5 and 0.25 average to 0.875; 0.8 is off by 0.075
    def off(model, batches):
        return evaluate(model, batches) - (0.075 if len(batches) == 2 else 0.0)

    fails(capsys, day17.check_evaluate, off, "should be 0.875")


# ---- exercise 2: save_atomic -----------------------------------------------------------------


@pytest.mark.parametrize("fn", [save_atomic, save_atomic_path_replace, save_atomic_mkstemp_same_dir,
                                save_atomic_finally, save_atomic_own_name])
def test_save_atomic_passes_correct_answers(capsys, fn):
    passes(capsys, day17.check_save_atomic, fn)


def test_save_atomic_refuses_the_references(capsys):
    fails(capsys, day17.check_save_atomic, day17.reference_save_atomic, "the course's own reference")
    fails(capsys, day17.check_save_atomic, package_checkpoint.save_checkpoint,
          "the course's own reference")


def test_save_atomic_puts_the_learners_own_names_back(capsys):
    passes(capsys, day17.check_save_atomic, save_atomic_own_name)
    assert own_replace is os.replace and save_atomic_own_name.__globals__["own_replace"] is os.replace


def test_save_atomic_stub_and_crash(capsys):
    fails(capsys, day17.check_save_atomic, stub, "not done yet")
    fails(capsys, day17.check_save_atomic, lambda o, p: 1 / 0, "ZeroDivisionError")


def test_save_atomic_leaves_the_check_folder_alone(capsys):
    before = set(os.listdir(tempfile.gettempdir()))
    passes(capsys, day17.check_save_atomic, save_atomic)
    assert not {n for n in set(os.listdir(tempfile.gettempdir())) - before if "check_day17" in n}


# ---- exercise 3: save_state / load_state -------------------------------------------------------


def _resume_line(capsys, save, load):
    verdict = day17.check_resume(save, load)
    return bool(verdict), one_line(capsys)


def test_resume_passes_the_solution(capsys):
    ok, line = _resume_line(capsys, save_state, load_state)
    assert ok and "passed" in line, line


def test_resume_passes_a_tuple_checkpoint(capsys):
    ok, line = _resume_line(capsys, save_state_tuple, load_state_tuple)
    assert ok and "passed" in line, line


@pytest.mark.parametrize("save", [save_state_unseen_rename, save_state_own_name])
def test_resume_passes_a_rename_under_another_name(capsys, save):
    ok, line = _resume_line(capsys, save, load_state)
    assert ok and "passed" in line, line


@pytest.mark.parametrize("save, load", [(day17.reference_save_state, load_state),
                                        (save_state, day17.reference_load_state)])
def test_resume_refuses_the_references(capsys, save, load):
    ok, line = _resume_line(capsys, save, load)
    assert not ok and "the course's own reference" in line, line


@pytest.mark.parametrize("save, load", [(stub, load_state), (save_state, stub)])
def test_resume_stubs(capsys, save, load):
    ok, line = _resume_line(capsys, save, load)
    assert not ok and "not done yet" in line, line


def test_resume_never_raises_on_garbage(capsys):
    ok, line = _resume_line(capsys, lambda *a: None, lambda *a: 7)
    assert not ok and "wrote no file" in line, line


# ---- exercise 4: EarlyStopping ---------------------------------------------------------------


@pytest.mark.parametrize("cls", [EarlyStopping, EarlyStoppingCounter, EarlyStoppingHistory])
def test_early_stopping_passes_correct_answers(capsys, cls):
    passes(capsys, day17.check_early_stopping, cls)


def test_early_stopping_refuses_the_reference(capsys):
    fails(capsys, day17.check_early_stopping, day17.ReferenceEarlyStopping,
          "the course's own reference")


def test_early_stopping_stub_and_garbage(capsys):
    class Stub:
        def __init__(self, patience):
            self.patience = patience

        def step(self, val_loss):
            raise NotImplementedError

    fails(capsys, day17.check_early_stopping, Stub, "not done yet")
    fails(capsys, day17.check_early_stopping, 42, "raised TypeError")


def test_early_stopping_scripted_sequence_by_hand(capsys):
    # patience 2 over 2.0, 2.1, 2.2: the third evaluation is the second without a new best.
    stopper = EarlyStopping(2)
    assert [stopper.step(v) for v in (2.0, 2.1, 2.2)] == [False, False, True]

    class StopsAtThird:  # right on that sequence, wrong on ties
        def __init__(self, patience):
            self.patience, self.best, self.n = patience, math.inf, 0

        def step(self, v):
            self.n = 0 if v <= self.best else self.n + 1
            self.best = min(self.best, v)
            return self.n >= self.patience

    fails(capsys, day17.check_early_stopping, StopsAtThird, "use <, not <=")
