"""Every exercise check is a differential check with a table of typical mistakes.

The tables themselves are exercised by each day's ``tests/test_checks_dayNN.py`` (one test per
mistake, from ``checklines.mistake_params``); this file only holds the whole course to the
rules: every ``check_*`` of every day is made with ``@check``, keeps at least three mistakes,
each with the words its line must contain, and none of its wrong answers is a package function.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import llmcourse.checks as checks_pkg
from llmcourse.checks._core import Mistake, _package_object

DAYS = sorted(m.name for m in pkgutil.iter_modules(checks_pkg.__path__) if m.name.startswith("day"))


def _checks(day: str) -> list[tuple[str, object]]:
    module = importlib.import_module(f"llmcourse.checks.{day}")
    return [(name, getattr(module, name)) for name in sorted(dir(module))
            if name.startswith("check_") and callable(getattr(module, name))
            and getattr(getattr(module, name), "__module__", "") == module.__name__]


def test_all_36_days_have_checks():
    assert DAYS == [f"day{n:02d}" for n in range(1, 37)]


@pytest.mark.parametrize("day", DAYS)
def test_every_check_has_a_table_of_mistakes(day):
    found = _checks(day)
    assert found, f"{day} has no check_* function"
    for name, fn in found:
        table = getattr(fn, "mistakes", None)
        assert table is not None, f"{day}.{name} is not made with @check(...)"
        assert len(table) >= 3, f"{day}.{name} lists {len(table)} mistakes; at least 3 are required"
        for mistake in table:
            assert isinstance(mistake, Mistake), (day, name, mistake)
            assert mistake.expect, (day, name, mistake.name)
            for arg in mistake.args:
                assert _package_object(arg) is None, f"{day}.{name}: {mistake.name} hands the check a package object"
        names = [m.name for m in table]
        assert len(set(names)) == len(names), f"{day}.{name}: mistake names repeat: {names}"


def test_count_of_checks():
    total = sum(len(_checks(day)) for day in DAYS)
    assert total >= 114, total
