"""Helpers shared by the ``tests/test_checks_dayNN.py`` files.

A check prints exactly one line and returns a verdict; these read that line and stand in for an
exercise the learner has not written yet.
"""

from __future__ import annotations

import pytest


def one_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The single line a check printed (fails if it printed none or several)."""
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out
    return out[0]


def stub(*args, **kwargs):
    """An exercise left as its stub: it raises ``NotImplementedError``."""
    raise NotImplementedError


def fails(capsys: pytest.CaptureFixture[str], check, fn, words: str) -> None:
    """``check(fn)`` fails, and its one line contains ``words``."""
    assert bool(check(fn)) is False
    line = one_line(capsys)
    assert words in line, line


def passes(capsys: pytest.CaptureFixture[str], check, fn) -> None:
    """``check(fn)`` passes and says so in its one line."""
    assert bool(check(fn)) is True
    assert "passed" in one_line(capsys)


def mistake_params(module) -> list:
    """One ``pytest.param(check, mistake)`` for every mistake in the tables of ``module``'s checks.

    Every ``check_*`` function of a day's check module made with ``@check(..., mistakes=TABLE)``
    carries its table as ``.mistakes``; a day's test file parametrizes one test over this list,
    so that each typical mistake is tested from the same table the check's hints come from::

        @pytest.mark.parametrize("check_fn, mistake", mistake_params(day07))
        def test_mistake_rejected(check_fn, mistake, capsys):
            rejects(capsys, check_fn, mistake)
    """
    params = []
    for name in sorted(dir(module)):
        fn = getattr(module, name)
        if name.startswith("check_") and callable(fn):
            for mistake in getattr(fn, "mistakes", ()):
                params.append(pytest.param(fn, mistake, id=f"{name}-{mistake.name}"))
    return params


def rejects(capsys: pytest.CaptureFixture[str], check, mistake) -> str:
    """``check(*mistake.args)`` fails with one line that contains ``mistake.expect``; returns the line."""
    assert bool(check(*mistake.args)) is False, f"{mistake.name} passed the check"
    line = one_line(capsys)
    assert line.startswith("❌"), line
    assert mistake.expect in line, f"{mistake.name}: {line!r} lacks {mistake.expect!r}"
    return line
