"""What the :class:`~llmcourse.train.Trainer` reports besides its checkpoints.

- :class:`RunLog`: every record goes to the run's ``history``, to ``metrics.jsonl`` and, with
  ``log="tensorboard"``, to TensorBoard event files, which are opened only when the first
  record is written (a run that trains nothing writes nothing);
- :func:`check_tensorboard_dir`: the event-file folder is checked when the trainer is built,
  before anything is written;
- :func:`make_monitor`: the activation / gradient / update monitor, when asked for;
- :func:`progress_bar`: the tqdm bar (updated rarely when the output is a log file);
- :func:`timing`: tokens per second, milliseconds per step and MFU of a window of steps.

Example:
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> (folder / "tensorboard").write_text("not a folder")
    12
    >>> check_tensorboard_dir(folder / "tensorboard")
    Traceback (most recent call last):
    ...
    NotADirectoryError: .../tensorboard is a file, but log='tensorboard' writes its event files into a folder of that name: move or delete that file, or set log='jsonl'
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from llmcourse.train.metrics import MetricsLogger, TensorBoardLogger, mfu
from llmcourse.train.monitor import TrainingMonitor

__all__ = ["RunLog", "check_tensorboard_dir", "make_monitor", "progress_bar", "timing"]


def check_tensorboard_dir(path: Path) -> None:
    """Refuse an event-file folder that cannot be one (a file is in the way)."""
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                raise NotADirectoryError(
                    f"{p} is a file, but log='tensorboard' writes its event files into a "
                    "folder of that name: move or delete that file, or set log='jsonl'")
            return


class RunLog:
    """Send the trainer's records to ``history``, ``metrics.jsonl`` and TensorBoard.

    Args:
        metrics: the run's :class:`~llmcourse.train.metrics.MetricsLogger`.
        tensorboard_dir: where the event files go, or ``None`` for no TensorBoard.
        purge_step: for a resumed run, the step it continues from (TensorBoard then hides
            the earlier run's events from that step on).
    """

    def __init__(self, metrics: MetricsLogger, tensorboard_dir: Path | None = None,
                 purge_step: int | None = None) -> None:
        self.metrics = metrics
        self.tensorboard_dir = tensorboard_dir
        self.purge_step = purge_step
        self.tensorboard: TensorBoardLogger | None = None
        if tensorboard_dir is not None:
            check_tensorboard_dir(tensorboard_dir)
            TensorBoardLogger.check_installed()

    def open(self) -> None:
        """Open the TensorBoard writer (creates its event file) if it is wanted."""
        if self.tensorboard_dir is not None and self.tensorboard is None:
            self.tensorboard = TensorBoardLogger(self.tensorboard_dir, purge_step=self.purge_step)

    def emit(self, record: dict[str, Any] | None, *histories: list[dict[str, Any]]) -> None:
        """Append ``record`` to each history and write it out (``None``: nothing to do)."""
        if record is None:
            return
        for history in histories:
            history.append(record)
        self.metrics.write(record)
        if self.tensorboard is not None:
            self.tensorboard.write(record)

    def flush(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.flush()


def make_monitor(model: Any, interval: int | None, *, compiled: bool,
                 is_main: bool) -> TrainingMonitor | None:
    """A :class:`TrainingMonitor` on rank 0 when ``interval`` is set; otherwise none at all."""
    if interval is None or not is_main:
        return None
    return TrainingMonitor(model, interval, activations=not compiled)


def progress_bar(total: int, initial: int, enabled: bool) -> Any:
    """The training progress bar (redrawn rarely when stderr is a log file, not a terminal)."""
    return tqdm(
        total=total,
        initial=min(initial, total),
        disable=not enabled,
        desc="train",
        dynamic_ncols=True,
        # In a log file (CI, nohup) a redraw every 0.1 s floods it; update rarely there.
        mininterval=0.1 if (sys.stderr.isatty() or "ipykernel" in sys.modules) else 15.0,
    )


def timing(tokens: int, steps: int, elapsed: float, world: int,
           flops_per_token: float | None, peak_total: float | None) -> dict[str, Any]:
    """``tokens_per_s``, ``ms_per_iter`` and ``mfu`` of ``steps`` steps that took ``elapsed`` s.

    >>> timing(tokens=1000, steps=4, elapsed=0.5, world=1, flops_per_token=None, peak_total=None)
    {'tokens_per_s': 2000.0, 'ms_per_iter': 125.0, 'mfu': None}
    """
    tok_s = tokens * world / elapsed if elapsed > 0 else 0.0
    return {"tokens_per_s": tok_s, "ms_per_iter": 1000.0 * elapsed / steps,
            "mfu": mfu(flops_per_token, tok_s, peak_total)}
