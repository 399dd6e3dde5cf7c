"""``python -m llmcourse.sweep --worker SPEC``: one run of a sweep, in the child process that
:func:`llmcourse.sweep.run_sweep` starts for each run when ``jobs=N``. Not a command for people:
``llmcourse sweep --help`` is."""

import sys

from llmcourse.sweep.runner import worker_main

if __name__ == "__main__":  # pragma: no cover - the child process of run_sweep(jobs=N)
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        sys.exit(worker_main(sys.argv[2]))
    print("usage: llmcourse sweep --help (this module's own entry is for run_sweep's workers)",
          file=sys.stderr)
    sys.exit(2)
