"""The command line of :mod:`llmcourse.learner`: ``llmcourse diff`` and ``llmcourse check``.

:func:`add_parsers` registers both on the ``llmcourse`` command (:mod:`llmcourse.cli.commands`);
each ``cmd_*`` function runs one and returns its exit status. The work itself is in
:mod:`llmcourse.learner.diff` and :mod:`llmcourse.learner.check`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from llmcourse.learner.check import NotebookRunError, print_table, run_checks
from llmcourse.learner.diff import diff_notebook

__all__ = ["add_parsers", "cmd_diff", "cmd_check"]


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
                   help="the solutions/ folder of a clone of the course (default: solutions/ "
                        "beside or above the notebook or the current folder)")
    p.add_argument("--color", choices=["auto", "always", "never"], default="auto",
                   help="colour the diff (default: auto, on a terminal unless NO_COLOR is set)")
    p.add_argument("--exact", action="store_true",
                   help="count and show differences in comments and whitespace too (default: ignored)")
    p.epilog = "exit status: 0 every exercise identical to the solution, 1 some differ, 2 trouble"
    p.set_defaults(func=cmd_diff)

    p = sub.add_parser("check", help="run a lesson notebook headless and list its checks' verdicts",
                       description="Run a lesson notebook headless on the CPU, in a temporary "
                                   "folder (your notebook is not changed), and print a table of "
                                   "its checks' verdicts.")
    p.add_argument("notebook", help="your lesson notebook (.ipynb) or its MyST text (.md)")
    p.add_argument("--timeout", type=_seconds, default=600,
                   help="seconds allowed per cell, above 0 (default 600)")
    p.epilog = ("exit status: 0 every check passed, 1 a check did not pass, none ran or the "
                "kernel died, 2 trouble (an unreadable notebook, a cell over --timeout)")
    p.set_defaults(func=cmd_check)
