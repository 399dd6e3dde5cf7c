"""``llmcourse sweep``: a grid of settings times seeds from the command line.

::

    llmcourse sweep --preset shakespeare-char-cpu --grid model.n_embd=64,128 --seeds 3 \\
        --set max_iters=300 --out-dir out/sweep

The runner is :func:`llmcourse.sweep.run_sweep`; this module parses the options, prints the
table and says where the results are.
"""

from __future__ import annotations

from typing import Any

from llmcourse.cli.args import EXIT_STATUS, check_parent_folders, count, non_empty_path
from llmcourse.sweep import parse_grid, parse_seeds, parse_variant, run_sweep

#: ``--seeds N``: at most this many seeds per setting (each one is a training run).
MAX_SEEDS = 1000


def cmd_sweep(args: Any) -> int:
    """``llmcourse sweep``: run the sweep, print the table, say where the results are."""
    grid = parse_grid(args.grid or [])
    variants = [parse_variant(v) for v in args.variant or []]
    check_parent_folders(args.out_dir, "--out-dir")
    result = run_sweep(args.preset, args.out_dir, grid=grid, variants=variants or None,
                       seeds=args.seeds, overrides=list(args.set or []),
                       jobs=args.jobs, progress=not args.no_progress, plot=not args.no_plot)
    print(result.table())
    trained = sum(r["status"] == "trained" for r in result.rows)
    files = "results.json, results.md" + ("" if args.no_plot else ", results.png")
    print(f"{len(result.rows)} runs ({trained} trained, {len(result.rows) - trained} skipped); "
          f"{files} in {args.out_dir}")
    return 0


def add_parser(sub: Any) -> None:
    """Add the ``sweep`` subcommand to the CLI's subparsers."""
    import argparse

    from llmcourse.presets import list_presets

    def seeds(text: str) -> list[int]:
        if text.strip().isdigit() and int(text) > MAX_SEEDS:  # before a list of that length
            raise argparse.ArgumentTypeError(
                f"{text.strip()} seeds would train {text.strip()} runs per setting; give at most "
                f"{MAX_SEEDS} (3 to 5 measure the spread)")
        try:
            return parse_seeds(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    p = sub.add_parser("sweep", help="train a grid of settings times seeds; table of mean ± std",
                       description="Train every setting (--grid, --variant; neither: the preset "
                                   "as it is) with every seed into --out-dir/<setting>/seed<k>, "
                                   "print a table of mean ± std and write sweep.json, "
                                   "results.json, results.md and results.png there. Rerun with "
                                   "the same settings, finished runs are skipped and unfinished "
                                   "ones resumed; a folder holding other runs is refused, never "
                                   "replaced.",
                       epilog=EXIT_STATUS)
    p.add_argument("--preset", default="shakespeare-char-cpu", choices=list_presets(),
                   help="starting configuration (default: shakespeare-char-cpu)")
    p.add_argument("--grid", action="append", metavar="KEY=V1,V2",
                   help="a setting and its values, e.g. --grid model.n_embd=64,128; repeat for a "
                        "cross product")
    p.add_argument("--variant", action="append", metavar="NAME:KEY=V[,KEY=V]",
                   help="a named setting, e.g. --variant rms:model.norm=rmsnorm; repeatable")
    p.add_argument("--seeds", default=[0, 1, 2], type=seeds, metavar="N|S1,S2",
                   help="seeds per setting: a count (3 = seeds 0,1,2) or a list of seeds with "
                        "a comma (5,7) (default: 3)")
    p.add_argument("--out-dir", required=True, type=non_empty_path,
                   help="the sweep's folder (one run folder per setting and seed inside)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a setting for every run, e.g. --set max_iters=200 (a --grid "
                        "value of the same key replaces it in the runs that vary it)")
    p.add_argument("--jobs", type=count(1), default=1, metavar="N",
                   help="runs trained at a time, each in its own process (default: 1)")
    p.add_argument("--no-plot", action="store_true", help="do not write results.png")
    p.add_argument("--no-progress", action="store_true",
                   help="no line per finished run, no progress bar while preparing data")
    p.set_defaults(func=cmd_sweep)
