"""``llmcourse plot RUN [RUN ...] --out curves.png``: loss curves (or monitors) as an image.

The drawing is :func:`llmcourse.train.plots.plot_runs` and :func:`~llmcourse.train.plots.plot_monitor`;
this module is the command around them. The image is written through
:func:`llmcourse.atomic.write_atomic`: a full disk or Ctrl-C leaves the old file as it was, and
an existing file is replaced only with ``--force``.
"""

from __future__ import annotations

import os
from typing import Any

from llmcourse.cli.args import (EXIT_STATUS, UserError, check_parent_folders,
                                check_writable_folder, number_in, refuse_existing)

#: Image formats by file name ending, as matplotlib names them.
IMAGE_FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg", ".jpg": "jpeg", ".jpeg": "jpeg"}
#: ``--dpi`` range: below 10 the text is unreadable; above 600 a 10x6-inch figure is
#: 6000x3600 pixels, more than any screen or print needs (and 20000 exhausts the memory).
DPI_RANGE = (10, 600)


def cmd_plot(args: Any) -> int:
    """``llmcourse plot``: the loss curves (or, with ``--monitor``, the monitors) as an image."""
    from matplotlib.figure import Figure  # no pyplot: works without a display

    from llmcourse.atomic import write_atomic
    from llmcourse.train.plots import plot_monitor, plot_runs

    out = os.fspath(args.out)
    suffix = os.path.splitext(out)[1].lower()
    if suffix not in IMAGE_FORMATS:
        raise ValueError(f"--out {out}: give an image file name ending in "
                         f"{', '.join(IMAGE_FORMATS)} (e.g. --out curves.png)")
    check_parent_folders(out, "--out")  # not "appeared while drawing" after the work
    if os.path.isdir(out):
        raise IsADirectoryError(f"--out {out} is a folder; give a file name such as curves.png")
    if not args.force:
        refuse_existing(out, "--out")  # before any work: a refused command costs nothing
    check_writable_folder(os.path.dirname(os.path.abspath(out)))  # read-only: fail before drawing
    labels = args.labels.split(",") if args.labels else None
    if args.monitor:
        if len(args.runs) != 1:
            raise ValueError("--monitor plots one run; give a single RUN folder")
        fig = Figure(figsize=(10, 6), layout="constrained")
        plot_monitor(args.runs[0], axes=fig.subplots(2, 2), title=args.title)
        if args.title:
            fig.suptitle(args.title)
    else:
        fig = Figure(figsize=(7, 4), layout="constrained")
        plot_runs(args.runs, labels=labels, ax=fig.subplots(), title=args.title,
                  logy=args.logy, train_steps=not args.no_train_steps)
    try:
        write_atomic(out, lambda f: fig.savefig(f, format=IMAGE_FORMATS[suffix], dpi=args.dpi),
                     overwrite=args.force)
    except FileExistsError:  # it appeared while drawing: kept
        raise UserError(f"--out {out} appeared while drawing and is not replaced; give another "
                        "name, or pass --force to replace it") from None
    what = "monitors of 1 run" if args.monitor else \
        f"loss curves of {len(args.runs)} run{'s' if len(args.runs) > 1 else ''}"
    print(f"wrote {out} ({what})")
    return 0


def add_parser(sub: Any) -> None:
    """Register ``llmcourse plot`` on the CLI's sub-parsers."""
    p = sub.add_parser("plot", help="draw the loss curves of one or more runs into an image",
                       description="Draw the loss curves of one or more runs (or, with "
                                   "--monitor, the monitors of one run) into the image --out; "
                                   "an existing image is replaced only with --force.",
                       epilog=EXIT_STATUS)
    p.add_argument("runs", nargs="+", metavar="RUN",
                   help="run folders (out_dir, holding metrics.jsonl) or metrics.jsonl files")
    p.add_argument("--out", default="curves.png",
                   help=f"image to write, ending in {', '.join(IMAGE_FORMATS)} "
                        "(default: curves.png)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--labels", help="comma-separated legend labels, one per run (default: each "
                                    "RUN's name; not with --monitor)")
    p.add_argument("--title", help="title of the plot")
    p.add_argument("--logy", action="store_true",
                   help="logarithmic loss axis (not with --monitor)")
    p.add_argument("--no-train-steps", action="store_true",
                   help="draw only the evaluations, not every logged training step (not with "
                        "--monitor)")
    p.add_argument("--monitor", action="store_true",
                   help="draw the monitors of one run (trained with --set monitor_interval=N)")
    p.add_argument("--dpi", type=number_in(*DPI_RANGE, "dots per inch"), default=120,
                   help=f"resolution, {DPI_RANGE[0]} to {DPI_RANGE[1]} (default: 120)")
    p.set_defaults(func=cmd_plot)
