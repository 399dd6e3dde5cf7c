"""Exercise checks for the course's lessons.

Each lesson ``solutions/dayNN_slug.md`` has a module ``llmcourse.checks.dayNN`` whose
``check_<exercise>(...)`` functions print one line - a pass, a specific hint, or "not done
yet" - and return a ``Verdict`` (true on a pass, shown as nothing in a notebook); they
never raise. Import the module you need::

    from llmcourse.checks import day01
    day01.check_vocabulary(chars, vocab_size, text)

The shared helpers for writing checks live in ``llmcourse/checks/_core.py`` and are
re-exported here: a check is a differential check (:func:`compare` of the learner's code with the
reference on a battery of :class:`Case` inputs), with a table of typical mistakes (:class:`Mistake`).
"""

from llmcourse.checks._core import (
    NOT_DONE,
    Case,
    CheckFailed,
    Mistake,
    Verdict,
    assert_close,
    assert_equal,
    assert_shape,
    assert_type,
    check,
    compare,
    describe,
    first_difference,
    require,
    run_check,
    to_numpy,
)

__all__ = [
    "NOT_DONE",
    "Case",
    "CheckFailed",
    "Mistake",
    "Verdict",
    "assert_close",
    "assert_equal",
    "assert_shape",
    "assert_type",
    "check",
    "compare",
    "describe",
    "first_difference",
    "require",
    "run_check",
    "to_numpy",
]
