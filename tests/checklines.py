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
