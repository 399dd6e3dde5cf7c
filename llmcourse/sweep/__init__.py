"""Sweeps: a grid of settings times seeds, one run folder each, and a table of mean ± std.

One training run answers "what loss did this seed get"; a sweep answers "what loss does this
setting get, and how much does it move from seed to seed". :func:`run_sweep` trains every
(setting, seed) pair of a grid (or of a list of named variants) into its own run folder::

    out/sweep/
        sweep.json                  the preset and base settings every run shares
        n_embd=64/seed0/            a run folder, as `llmcourse train` writes it, plus
                     result.json    its losses, written when the run is complete
        n_embd=64/seed1/ ...
        results.json results.md results.png

and summarises them (:class:`SweepResult`). Running the same sweep again skips the finished
runs, resumes an interrupted one from its checkpoint (or restarts it when it stopped before
its first one) and never touches a folder holding a run with other settings: it is refused
before anything is trained. ``jobs=N`` trains N runs at a time in subprocesses, each limited
to its share of the CPU threads.

The pieces: :mod:`llmcourse.sweep.settings` turns a grid or variants into settings,
:mod:`llmcourse.sweep.results` holds the numbers (mean ± std, the table, the plot),
:mod:`llmcourse.sweep.runner` trains the runs, and :mod:`llmcourse.cli.sweep` is the
``llmcourse sweep`` command. Every name is importable from here, as the lessons do
(``from llmcourse.sweep import run_sweep``).

Example (the grid and the table need no training):
    >>> expand_settings({"model.n_embd": [64, 128], "learning_rate": [1e-3]})
    [('n_embd=64,learning_rate=0.001', {'model.n_embd': 64, 'train.learning_rate': 0.001}), \
('n_embd=128,learning_rate=0.001', {'model.n_embd': 128, 'train.learning_rate': 0.001})]
    >>> rows = [{"setting": "a", "params": {}, "seed": s, "val_loss": v, "train_loss": v,
    ...          "seconds": 1.0} for s, v in enumerate([2.0, 2.2, 2.4])]
    >>> s = SweepResult(rows).summary()[0]
    >>> s["n"], round(s["val_mean"], 4), round(s["val_std"], 4)
    (3, 2.2, 0.2)
    >>> run = run_sweep("shakespeare-char-cpu", "out/sweep", grid={"n_embd": [64, 128]},
    ...                 seeds=3, overrides={"train": {"max_iters": 100}})  # doctest: +SKIP
    >>> print(run.table())                                                  # doctest: +SKIP
"""

from __future__ import annotations

from llmcourse.sweep.results import SweepResult, difference_with_error, mean_std
from llmcourse.sweep.runner import MAX_BLOCK_SIZE, RunFailed, check_context, run_sweep
from llmcourse.sweep.settings import (base_preset, expand_settings, parse_grid, parse_seeds,
                                      parse_variant, resolve_key)

__all__ = ["run_sweep", "SweepResult", "RunFailed", "mean_std", "difference_with_error",
           "expand_settings", "parse_grid", "parse_variant", "parse_seeds", "resolve_key",
           "base_preset", "check_context", "MAX_BLOCK_SIZE"]
