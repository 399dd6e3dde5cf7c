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
