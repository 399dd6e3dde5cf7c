"""The day-17 checks pass the solutions, catch plausible mistakes, and say "not done yet" for stubs."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch

from llmcourse.checks import day17
from checklines import one_line, stub

pytestmark = pytest.mark.usefixtures("one_thread")


# ---- exercise 1: evaluate --------------------------------------------------------------------


def test_evaluate(capsys):
    assert bool(day17.check_evaluate(day17.reference_evaluate)) is True
    assert "passed" in one_line(capsys)
    assert bool(day17.check_evaluate(stub)) is False
    assert "not done yet" in one_line(capsys)


def _loop(model, batches):
    return [model(x, y)[1].item() for x, y in batches]


@pytest.mark.parametrize("wrong, hint", [
    (lambda m, b: (lambda r: sum(r) / len(r))(_loop_no_grad(m, b)), "model.eval()"),
    (lambda m, b: _eval_with_grad(m, b), "no_grad"),
    (lambda m, b: _eval_stays_eval(m, b), "left in eval mode"),
    (lambda m, b: _eval_forces_train(m, b), "was_training"),
    (lambda m, b: _eval_sum(m, b), "sum"),
    (lambda m, b: _eval_last(m, b), "last batch"),
])
def test_evaluate_mistakes(capsys, wrong, hint):
    assert bool(day17.check_evaluate(wrong)) is False
    assert hint in one_line(capsys)


def _loop_no_grad(m, b):
    with torch.no_grad():
        return _loop(m, b)


def _eval_with_grad(m, b):
    m.eval()
    r = _loop(m, b)
    m.train()
    return sum(r) / len(r)


def _eval_stays_eval(m, b):
    m.eval()
    r = _loop_no_grad(m, b)
    return sum(r) / len(r)


def _eval_forces_train(m, b):
    m.eval()
    r = _loop_no_grad(m, b)
    m.train()
    return sum(r) / len(r)


def _eval_sum(m, b):
    was = m.training
    m.eval()
    r = _loop_no_grad(m, b)
    m.train(was)
    return sum(r)


def _eval_last(m, b):
    was = m.training
    m.eval()
    r = _loop_no_grad(m, b)
    m.train(was)
    return r[-1]


# ---- exercise 2: save_atomic -----------------------------------------------------------------


def test_save_atomic(capsys):
    assert bool(day17.check_save_atomic(day17.reference_save_atomic)) is True
    assert "passed" in one_line(capsys)
    assert bool(day17.check_save_atomic(stub)) is False
    assert "not done yet" in one_line(capsys)

    def with_path_replace(obj, path):  # Path.replace is os.replace
        path = Path(path)
        tmp = path.parent / (path.name + ".partial")
        try:
            torch.save(obj, tmp)
        except BaseException:
            tmp.unlink()
            raise
        tmp.replace(path)

    assert bool(day17.check_save_atomic(with_path_replace)) is True
    assert "passed" in one_line(capsys)


def test_save_atomic_mistakes(capsys, tmp_path):
    def direct(obj, path):
        torch.save(obj, path)

    assert bool(day17.check_save_atomic(direct)) is False
    assert "destroyed the previous checkpoint" in one_line(capsys)

    def leaves_tmp(obj, path):
        tmp = str(path) + ".tmp"
        torch.save(obj, tmp)
        os.replace(tmp, path)

    assert bool(day17.check_save_atomic(leaves_tmp)) is False
    assert "left ['ckpt.pt.tmp'] behind" in one_line(capsys)

    def elsewhere(obj, path, _dir=tmp_path):
        tmp = _dir / "elsewhere.tmp"
        try:
            torch.save(obj, tmp)
        except BaseException:
            tmp.unlink()
            raise
        os.replace(tmp, path)

    assert bool(day17.check_save_atomic(elsewhere)) is False
    assert "same directory" in one_line(capsys)

    def swallows(obj, path):
        try:
            day17.reference_save_atomic(obj, path)
        except RuntimeError:
            pass

    assert bool(day17.check_save_atomic(swallows)) is False
    assert "re-raise" in one_line(capsys)

    def renames(obj, path):
        tmp = str(path) + ".tmp"
        try:
            torch.save(obj, tmp)
        except BaseException:
            os.unlink(tmp)
            raise
        if os.path.exists(path):
            os.unlink(path)  # os.rename cannot overwrite on Windows
        os.rename(tmp, path)

    assert bool(day17.check_save_atomic(renames)) is False
    assert "os.replace, not os.rename" in one_line(capsys)

    def wrong_place(obj, path):
        day17.reference_save_atomic(obj, str(path) + ".new")

    assert bool(day17.check_save_atomic(wrong_place)) is False
    assert "must be at `path`" in one_line(capsys)


# ---- exercise 3: save_state / load_state -------------------------------------------------------


def test_resume(capsys):
    assert bool(day17.check_resume(day17.reference_save_state, day17.reference_load_state)) is True
    assert "passed" in one_line(capsys)
    assert bool(day17.check_resume(stub, day17.reference_load_state)) is False
    assert "not done yet" in one_line(capsys)
    assert bool(day17.check_resume(day17.reference_save_state, stub)) is False
    assert "not done yet" in one_line(capsys)


def _save(path, model, optimizer, generator, step, *, opt=True, gen=True, rng=True):
    state = {"model": model.state_dict(), "step": step}
    if opt:
        state["optimizer"] = optimizer.state_dict()
    if gen:
        state["generator"] = generator.get_state()
    if rng:
        state["torch_rng"] = torch.get_rng_state()
    torch.save(state, path)


def _load(path, model, optimizer, generator):
    state = torch.load(path, weights_only=True)
    model.load_state_dict(state["model"])
    if "optimizer" in state:
        optimizer.load_state_dict(state["optimizer"])
    if "generator" in state:
        generator.set_state(state["generator"])
    if "torch_rng" in state:
        torch.set_rng_state(state["torch_rng"])
    return state["step"]


@pytest.mark.parametrize("kwargs, hint", [
    ({"opt": False}, "optimizer.state_dict()"),
    ({"gen": False}, "generator.get_state()"),
    ({"rng": False}, "torch.get_rng_state()"),
])
def test_resume_missing_state(capsys, kwargs, hint):
    save = lambda *a: _save(*a, **kwargs)
    assert bool(day17.check_resume(save, _load)) is False
    assert hint in one_line(capsys)


def test_resume_other_mistakes(capsys):
    def no_return(path, model, optimizer, generator):
        _load(path, model, optimizer, generator)

    assert bool(day17.check_resume(_save, no_return)) is False
    assert "returned None" in one_line(capsys)

    def no_weights(path, model, optimizer, generator):
        state = torch.load(path, weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        return state["step"]

    assert bool(day17.check_resume(_save, no_weights)) is False
    assert "weights" in one_line(capsys)

    def off_by_one(path, model, optimizer, generator):
        return _load(path, model, optimizer, generator) + 1

    assert bool(day17.check_resume(_save, off_by_one)) is False
    assert "should return 7" in one_line(capsys)

    def rng_before_init(path, model, optimizer, generator):
        # Restores everything, then draws a random number (as re-initialising a layer would).
        step = _load(path, model, optimizer, generator)
        torch.rand(1)
        return step

    assert bool(day17.check_resume(_save, rng_before_init)) is False
    assert "torch.get_rng_state()" in one_line(capsys)


# ---- exercise 4: EarlyStopping ---------------------------------------------------------------


def test_early_stopping(capsys):
    assert bool(day17.check_early_stopping(day17.ReferenceEarlyStopping)) is True
    assert "passed" in one_line(capsys)

    class Stub:
        def __init__(self, patience):
            self.patience = patience

        def step(self, val_loss):
            raise NotImplementedError

    assert bool(day17.check_early_stopping(Stub)) is False
    assert "not done yet" in one_line(capsys)


class _Base:
    def __init__(self, patience):
        self.patience, self.best, self.bad_evals, self.last = patience, math.inf, 0, math.inf


class VsPrevious(_Base):
    def step(self, v):
        if v < self.last:
            self.bad_evals = 0
        else:
            self.bad_evals += 1
        self.last = v
        self.best = min(self.best, v)
        return self.bad_evals >= self.patience


class TooEarly(_Base):
    def step(self, v):
        if v < self.best:
            self.best, self.bad_evals = v, 0
        else:
            self.bad_evals += 1
        return self.bad_evals >= self.patience - 1 and self.bad_evals > 0


class TiesCount(_Base):
    def step(self, v):
        if v <= self.best:
            self.best, self.bad_evals = v, 0
        else:
            self.bad_evals += 1
        return self.bad_evals >= self.patience


class NoBest(_Base):
    def __init__(self, patience):
        self.patience, self.low, self.bad_evals = patience, math.inf, 0

    def step(self, v):
        if v < self.low:
            self.low, self.bad_evals = v, 0
        else:
            self.bad_evals += 1
        return self.bad_evals >= self.patience


class ReturnsNone(_Base):
    def step(self, v):
        self.best = min(self.best, v)


@pytest.mark.parametrize("cls, hint", [
    (VsPrevious, "not with the last one"),
    (TooEarly, "too early"),
    (TiesCount, "use <, not <="),
    (NoBest, "stopper.best should be 2.5"),
    (ReturnsNone, "True or False"),
])
def test_early_stopping_mistakes(capsys, cls, hint):
    assert bool(day17.check_early_stopping(cls)) is False
    assert hint in one_line(capsys)


def test_checks_never_raise_on_garbage(capsys):
    assert bool(day17.check_evaluate(lambda m, b: "x")) is False
    assert "should return a float" in one_line(capsys)
    assert bool(day17.check_save_atomic(lambda o, p: 1 / 0)) is False
    assert "ZeroDivisionError" in one_line(capsys)
    assert bool(day17.check_resume(lambda *a: None, lambda *a: 7)) is False
    assert "wrote no file" in one_line(capsys)
    assert bool(day17.check_early_stopping(42)) is False
    assert "raised TypeError" in one_line(capsys)
