"""The ``llmcourse`` command line: one module per concept.

- :mod:`llmcourse.cli.commands` - the parser, ``main`` and the commands ``prepare``, ``train``,
  ``eval`` and ``bench``;
- :mod:`llmcourse.cli.args` - what every command shares: :class:`UserError`, argument checks,
  one-line faults, Ctrl-C;
- :mod:`llmcourse.cli.sample`, :mod:`llmcourse.cli.plot`, :mod:`llmcourse.cli.sweep` - one
  command each (``diff`` and ``check`` live beside their code, in :mod:`llmcourse.learner`).

The console script ``llmcourse`` and ``python -m llmcourse`` both run :func:`main`; a notebook
can call it too and gets the exit status back::

    >>> from llmcourse import cli
    >>> cli.main(["train", "--preset", "shakespeare-char-cpu", "--print-config"])  # doctest: +SKIP
"""

from __future__ import annotations

from llmcourse.cli.args import UserError
from llmcourse.cli.commands import build_parser, main
from llmcourse.cli.sample import until_stop

__all__ = ["main", "build_parser", "UserError", "until_stop"]
