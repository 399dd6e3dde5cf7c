"""``llmcourse diff`` and ``llmcourse check``: a learner's notebook against the course's solutions.

A learner works in a copy of ``lessons/dayNN_slug.ipynb`` (Jupyter, Colab) or of its MyST text
``lessons/dayNN_slug.md``. Two commands look at that work from outside the notebook:

- ``llmcourse diff NOTEBOOK`` pairs each exercise cell of the notebook with the solution's and
  prints a unified diff per exercise (code only, outputs, comments and whitespace ignored), then
  one line counting the exercises identical to the solution, still a stub, or different; its
  exit status is ``diff``'s: 0 all identical, 1 some differ, 2 trouble.
- ``llmcourse check NOTEBOOK`` executes the notebook headless on the CPU (the learner's file is
  not changed), confined where the system allows, and prints the verdict every check recorded
  in a table; it exits with 0 only when every check passed.

The work is split by concept: reading notebooks (:mod:`llmcourse.learner_notebooks`), pairing
and diffing (:mod:`llmcourse.learner_diff`), running the checks (:mod:`llmcourse.learner_check`)
and confining the kernel (:mod:`llmcourse.learner_sandbox`); this module re-exports their
public names and holds the command line.

Example::

    >>> solution = ["def double(x):", "    # BEGIN SOLUTION", "    # STUB: raise NotImplementedError",
    ...             "    return 2 * x", "    # END SOLUTION"]
    >>> stub_and_solution(solution)
    (['def double(x):', '    raise NotImplementedError'], ['def double(x):', '    return 2 * x'])
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from llmcourse.learner_check import NotebookRunError, Row, print_table, run_checks
from llmcourse.learner_diff import (Exercise, Pairing, code_tokens, diff_notebook, find_solution,
                                    pair_exercises, solution_exercises)
from llmcourse.learner_notebooks import Cell, LearnerError, read_code_cells, stub_and_solution

__all__ = [
    "Cell",
    "Row",
    "Exercise",
    "Pairing",
    "NotebookRunError",
    "stub_and_solution",
    "read_code_cells",
    "find_solution",
    "solution_exercises",
    "pair_exercises",
    "code_tokens",
    "diff_notebook",
    "run_checks",
    "print_table",
    "add_parsers",
    "cmd_diff",
    "cmd_check",
]


# ---- the command line --------------------------------------------------------------------------------


def _colour_wanted(choice: str) -> bool:
    if choice == "always":
        return True
    if choice == "never" or os.environ.get("NO_COLOR"):
        return False
    return sys.stdout.isatty()


def cmd_diff(args: argparse.Namespace) -> int:
    """``llmcourse diff NOTEBOOK``: exit codes as ``diff``'s: 0 identical, 1 different, 2 trouble.

    0 when every exercise is identical to the solution (comments and whitespace aside, unless
    ``--exact``), 1 when any is a stub, different or missing; 2 (from the command line's error
    handling) when the notebook or the solution cannot be read.
    """
    counts = diff_notebook(Path(args.notebook), Path(args.solution) if args.solution else None,
                           colour=_colour_wanted(args.color),
                           solutions_dir=Path(args.solutions) if args.solutions else None,
                           exact=args.exact)
    return 0 if counts["same"] == sum(counts.values()) else 1


def cmd_check(args: argparse.Namespace) -> int:
    """``llmcourse check NOTEBOOK``: exit 0 only when every check passed.

    1 when a check did not pass or the notebook's kernel died, 2 (from the command line's error
    handling) when the notebook cannot be read or a cell ran over ``--timeout``, 130 on Ctrl-C.
    """
    try:
        rows = run_checks(Path(args.notebook), timeout=args.timeout)
    except NotebookRunError as exc:
        print(f"llmcourse check: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("llmcourse check: error: interrupted; your notebook was not changed", file=sys.stderr)
        return 130
    print_table(rows)
    return 0 if rows and all(r.verdict == "passed" for r in rows) else 1


def _seconds(text: str) -> int:
    """``--timeout``: a whole number of seconds above 0."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a whole number of seconds above 0, not {text!r}")
    return value


def add_parsers(sub: Any) -> None:
    """Register ``diff`` and ``check`` on the ``llmcourse`` command's subparsers."""
    p = sub.add_parser("diff", help="compare a lesson notebook's exercises with the solutions")
    p.add_argument("notebook", help="your lesson notebook (.ipynb) or its MyST text (.md)")
    p.add_argument("--solution", default=None,
                   help="the solution source to compare with (default: solutions/dayNN_*.md, found "
                        "by the day number in the notebook's name)")
    p.add_argument("--solutions", default=None, metavar="DIR",
                   help="the solutions/ folder of a clone of the course (default: searched)")
    p.add_argument("--color", choices=["auto", "always", "never"], default="auto",
                   help="colour the diff (default: on a terminal)")
    p.add_argument("--exact", action="store_true",
                   help="count and show differences in comments and whitespace too (default: ignored)")
    p.epilog = "exit status: 0 every exercise identical to the solution, 1 some differ, 2 trouble"
    p.set_defaults(func=cmd_diff)

    p = sub.add_parser("check", help="run a lesson notebook headless and list its checks' verdicts")
    p.add_argument("notebook", help="your lesson notebook (.ipynb) or its MyST text (.md)")
    p.add_argument("--timeout", type=_seconds, default=600,
                   help="seconds allowed per cell, above 0 (default 600)")
    p.set_defaults(func=cmd_check)
