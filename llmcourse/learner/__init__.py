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

The work is split by concept: reading notebooks (:mod:`llmcourse.learner.notebooks`), pairing
and diffing (:mod:`llmcourse.learner.diff`), running the checks (:mod:`llmcourse.learner.check`),
confining the kernel (:mod:`llmcourse.learner.sandbox`) and the two commands
(:mod:`llmcourse.learner.commands`); this package re-exports their public names.

Example::

    >>> solution = ["def double(x):", "    # BEGIN SOLUTION", "    # STUB: raise NotImplementedError",
    ...             "    return 2 * x", "    # END SOLUTION"]
    >>> stub_and_solution(solution)
    (['def double(x):', '    raise NotImplementedError'], ['def double(x):', '    return 2 * x'])
"""

from __future__ import annotations

from llmcourse.learner.check import NotebookRunError, Row, print_table, run_checks
from llmcourse.learner.commands import add_parsers, cmd_check, cmd_diff
from llmcourse.learner.diff import (Exercise, Pairing, code_tokens, diff_notebook, find_solution,
                                    pair_exercises, solution_exercises)
from llmcourse.learner.notebooks import Cell, LearnerError, read_code_cells, stub_and_solution

__all__ = [
    "Cell",
    "Row",
    "Exercise",
    "Pairing",
    "NotebookRunError",
    "LearnerError",
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
