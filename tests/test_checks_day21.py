"""The day-21 checks pass the solutions, catch the usual temperature / entropy / sampling
mistakes, say "not done yet" for stubs, print exactly one line and never raise."""

from __future__ import annotations

import math

import pytest
import torch

from llmcourse.checks import day21
from llmcourse.generate import apply_temperature as package_temperature
from checklines import one_line, stub


# ---- exercise 1: apply_temperature --------------------------------------------------------------


@pytest.mark.parametrize("fn", [lambda l, t: l / t, package_temperature,
                                lambda l, t: (l - l.amax(-1, keepdim=True)) / t],
                         ids=["solution", "package", "shifted"])
def test_apply_temperature_passes(fn, capsys):
    assert bool(day21.check_apply_temperature(fn)) is True
    assert "passed" in one_line(capsys)


@pytest.mark.parametrize("fn, hint", [
    (lambda l, t: l * t, "multiplied the logits by the temperature"),
    (lambda l, t: torch.softmax(l / t, -1), "returned probabilities"),
    (lambda l, t: torch.softmax(l, -1) / t, "softmax before scaling"),
    (lambda l, t: l.clone(), "left the logits unchanged"),
    (lambda l, t: l.div_(t), "changed its input in place"),
    (lambda l, t: l[0] / t, "shape"),
    (lambda l, t: (l / t).tolist(), "should be a torch tensor"),
    (lambda l, t: l / (t * t), "differs from the expected value"),
])
def test_apply_temperature_hints(fn, hint, capsys):
    assert bool(day21.check_apply_temperature(fn)) is False
    assert hint in one_line(capsys)


def test_apply_temperature_fails_a_learner_who_ignored_the_batch_dims(capsys):
    # softmax over dim 0 instead of the last dimension, then scaled: caught as wrong values
    assert bool(day21.check_apply_temperature(lambda l, t: torch.log_softmax(l, 0) / t)) is False
    assert "❌" in one_line(capsys)


# ---- exercise 2: entropy -------------------------------------------------------------------------


def test_entropy_passes(capsys):
    assert bool(day21.check_entropy(day21.reference_entropy)) is True
    assert "passed" in one_line(capsys)
    safe = lambda p: -(p * p.clamp_min(1e-30).log()).sum(-1)  # another correct way with zeros
    assert bool(day21.check_entropy(safe)) is True
    one_line(capsys)


@pytest.mark.parametrize("fn, hint", [
    (lambda p: -(p * p.log()).sum(-1), "gave nan where a probability is 0"),
    (lambda p: torch.special.xlogy(p, p).sum(-1), "the entropy is negative"),
    (lambda p: -(torch.special.xlogy(p, p) / math.log(2)).sum(-1), "in bits"),
    (lambda p: -torch.special.xlogy(p, p).mean(-1), "averaged over the vocabulary"),
    (lambda p: -torch.special.xlogy(p, p).sum(), "returned one number"),
    (lambda p: -torch.special.xlogy(p, p).sum(0), "expected (2, 3)"),
    (lambda p: None, "None"),
])
def test_entropy_hints(fn, hint, capsys):
    assert bool(day21.check_entropy(fn)) is False
    assert hint in one_line(capsys)


# ---- exercise 3: sample ----------------------------------------------------------------------------


def test_sample_passes(capsys):
    assert bool(day21.check_sample(day21.reference_sample)) is True
    assert "passed" in one_line(capsys)

    def keepdim(logits, t, generator=None):  # (B, 1) is accepted too
        return day21.reference_sample(logits, t, generator)[:, None]

    assert bool(day21.check_sample(keepdim)) is True
    one_line(capsys)


def _times(logits, t, generator=None):
    if t == 0:
        return logits.argmax(-1)
    return torch.multinomial(torch.softmax(logits * t, -1), 1, generator=generator)[:, 0]


def _no_temperature(logits, t, generator=None):
    if t == 0:
        return logits.argmax(-1)
    return torch.multinomial(torch.softmax(logits, -1), 1, generator=generator)[:, 0]


def _divides_by_zero(logits, t, generator=None):
    return torch.multinomial(torch.softmax(logits / t, -1), 1, generator=generator)[:, 0]


def _raw_logits(logits, t, generator=None):
    if t == 0:
        return logits.argmax(-1)
    return torch.multinomial(logits / t, 1, generator=generator)[:, 0]


def _always_argmax(logits, t, generator=None):
    return logits.argmax(-1)


def _first_row_only(logits, t, generator=None):
    return day21.reference_sample(logits, t, generator)[:1]


@pytest.mark.parametrize("fn, hint", [
    (_times, "softmax(logits * T)"),
    (_no_temperature, "the temperature has no effect"),
    (_divides_by_zero, "your code raised"),
    (_raw_logits, "torch.multinomial needs probabilities"),
    (_always_argmax, "that is greedy decoding"),
    (_first_row_only, "one id per row"),
])
def test_sample_hints(fn, hint, capsys):
    assert bool(day21.check_sample(fn)) is False
    assert hint in one_line(capsys)


def test_divide_by_zero_shows_the_failing_input(capsys):
    day21.check_sample(_divides_by_zero)
    line = one_line(capsys)
    assert "sample(logits of shape (2, 6), 0.0, generator)" in line


# ---- stubs, one line, never raises --------------------------------------------------------------


@pytest.mark.parametrize("check", [day21.check_apply_temperature, day21.check_entropy,
                                   day21.check_sample])
def test_stub_is_not_done_yet(check, capsys):
    assert bool(check(stub)) is False
    assert "not done yet" in one_line(capsys)


@pytest.mark.parametrize("check", [day21.check_apply_temperature, day21.check_entropy,
                                   day21.check_sample])
def test_garbage_never_raises(check, capsys):
    for bad in (lambda *a: 1 / 0, lambda *a: "text", lambda *a: torch.zeros(0)):
        assert bool(check(bad)) is False
        assert one_line(capsys).startswith("❌")
