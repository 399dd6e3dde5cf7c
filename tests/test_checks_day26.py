"""The day-26 checks pass the references, catch plausible mistakes, and say "not done yet" for stubs."""

from __future__ import annotations

import pytest

from llmcourse.checks import day26
from llmcourse.presets import get_preset
from checklines import one_line, stub


def test_references_on_the_presets():
    assert day26.reference_tokens_seen(get_preset("shakespeare-char")) == 5000 * 64 * 256
    assert day26.reference_tokens_seen(get_preset("gpt2-124m")) == 600000 * 12 * 1024 * 40
    assert day26.reference_estimate_seconds(1e6, 1e6, 1e12, 0.5) == pytest.approx(2.0)


def test_tokens_seen(capsys):
    assert bool(day26.check_tokens_seen(day26.reference_tokens_seen)) is True
    assert "passed" in one_line(capsys)
    assert bool(day26.check_tokens_seen(stub)) is False
    assert "not done yet" in one_line(capsys)


@pytest.mark.parametrize("wrong, hint", [
    (lambda p: p["train"]["max_iters"] * p["train"]["batch_size"], "counted sequences"),
    (lambda p: p["train"]["max_iters"] * p["train"]["batch_size"] * p["model"]["block_size"],
     "grad_accum_steps"),
    (lambda p: p["train"]["max_iters"] * p["train"]["batch_size"] * p["train"]["block_size"],
     "KeyError"),
    (lambda p: None, "None"),
    (lambda p: p["train"]["max_iters"] * p["model"]["block_size"], "expected 33600"),
])
def test_tokens_seen_mistakes(capsys, wrong, hint):
    assert bool(day26.check_tokens_seen(wrong)) is False
    assert hint in one_line(capsys)


def test_estimate_seconds(capsys):
    assert bool(day26.check_estimate_seconds(day26.reference_estimate_seconds)) is True
    assert "passed" in one_line(capsys)
    assert bool(day26.check_estimate_seconds(stub)) is False
    assert "not done yet" in one_line(capsys)


@pytest.mark.parametrize("wrong, hint", [
    (lambda f, d, p, m: f * d / (p / m), "peak_flops * mfu, not by peak_flops / mfu"),
    (lambda f, d, p, m: f * d / p, "100% of the peak"),
    (lambda f, d, p, m: f * d / (p * m) / 60, "seconds, not minutes"),
    (lambda f, d, p, m: f * d / (p * 1e-12 * m), "already in FLOP/s"),
    (lambda f, d, p, m: f / (p * m), "expected"),
    (lambda f, d, p, m: "1 hour", "should return a number"),
])
def test_estimate_seconds_mistakes(capsys, wrong, hint):
    assert bool(day26.check_estimate_seconds(wrong)) is False
    assert hint in one_line(capsys)


def test_first_reaching(capsys):
    assert bool(day26.check_first_reaching(day26.reference_first_reaching)) is True
    assert "passed" in one_line(capsys)
    assert bool(day26.check_first_reaching(stub)) is False
    assert "not done yet" in one_line(capsys)


def _any_row(history, target):
    for row in history:
        if row.get("val_loss", row.get("loss")) <= target:
            return row["iter"]
    return None


def _best(history, target):
    rows = [r for r in history if r["type"] == "eval" and r["val_loss"] <= target]
    return min(rows, key=lambda r: r["val_loss"])["iter"] if rows else None


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


def _falsy(history, target):
    return day26.reference_first_reaching(history, target) or None


@pytest.mark.parametrize("wrong, hint", [
    (_any_row, "a training line"),
    (_best, "the best evaluation"),
    (_strict, "use <=, not <"),
    (_loss, "returned the loss"),
    (_row, "the whole row"),
    (_minus_one, "return None"),
    (_falsy, "is None"),
    (lambda h, t: h[0]["loss"], "KeyError"),
])
def test_first_reaching_mistakes(capsys, wrong, hint):
    assert bool(day26.check_first_reaching(wrong)) is False
    assert hint in one_line(capsys)
