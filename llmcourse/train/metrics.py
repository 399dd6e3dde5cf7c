"""Training metrics: a JSON-lines log and the throughput / MFU arithmetic.

``metrics.jsonl`` holds one JSON object per line, each with a ``"type"``:

- ``"train"``: ``iter`` (0-based index of the optimizer step), ``loss`` (mean training loss
  of that step's micro-batches, averaged over processes), ``lr``, ``grad_norm`` (global norm
  *before* clipping; ``null`` when clipping is off), ``tokens_per_s`` and ``ms_per_iter``
  (averaged since the previous record), ``mfu`` (fraction of the hardware's peak FLOP/s, or
  ``null`` when the model's FLOPs or the peak are unknown);
- ``"eval"``: ``iter`` (steps completed), ``train_loss``, ``val_loss``, ``best_val_loss``,
  ``lr`` (of the next step) and ``improved`` (a new best validation loss);
- ``"diverged"``: ``iter`` and ``loss`` (``null`` if not finite) of the first bad step;
- ``"monitor"`` (with ``monitor_interval`` set): ``iter`` and the activation (``act``),
  gradient-norm (``grad``), update-to-data (``update``) and histogram (``hist``) statistics
  of that step (see :mod:`llmcourse.train.monitor`).

With ``log="tensorboard"`` the same records also go to TensorBoard event files
(:class:`TensorBoardLogger`).

Non-finite numbers are written as ``null`` so that every line is valid JSON.

Example:
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> log = MetricsLogger(os.path.join(d, "metrics.jsonl"))
    >>> log.write({"type": "train", "iter": 0, "loss": float("nan")})
    >>> read_metrics(os.path.join(d, "metrics.jsonl"))
    [{'type': 'train', 'iter': 0, 'loss': None}]
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterable

from torch import nn

from llmcourse.atomic import write_atomic
from llmcourse.flops import mfu

__all__ = ["MetricsLogger", "TensorBoardLogger", "read_metrics", "load_records", "check_record",
           "flops_per_token", "mfu"]


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


class MetricsLogger:
    """Append records to a JSON-lines file (a no-op when ``enabled`` is False)."""

    def __init__(self, path: str | os.PathLike[str], enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        """Append one record and flush it (a crash loses at most the line being written)."""
        if not self.enabled:
            return
        line = json.dumps(_clean(record), allow_nan=False)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    def reset(self) -> None:
        """Start an empty log (a new run from scratch in the same directory)."""
        if self.enabled and self.path.exists():
            self.path.unlink()

    def truncate_after(self, iter_num: int) -> None:
        """Drop records a resumed run is about to redo.

        Keeps training records of steps ``< iter_num`` and evaluation records at
        ``<= iter_num``; a half-written last line (crash mid-write) is dropped too.
        """
        if not self.enabled or not self.path.is_file():
            return
        kept = []
        for rec in read_metrics(self.path, skip_bad_lines=True):
            it = rec.get("iter", -1)
            if (rec.get("type") == "eval" and it <= iter_num) or it < iter_num:
                kept.append(rec)
        write_atomic(self.path, "".join(json.dumps(rec, allow_nan=False) + "\n" for rec in kept))


class TensorBoardLogger:
    """Write the trainer's records as TensorBoard scalars and histograms.

    Tags: ``train/loss``, ``train/lr``, ``train/grad_norm``, ``train/tokens_per_s``,
    ``eval/train_loss``, ``eval/val_loss``, and for monitor records ``act/<layer>/<stat>``,
    ``grad_norm/<parameter>``, ``update_log10/<parameter>`` and histograms
    ``gelu_input/<layer>``. The step is the record's ``iter``.

    Args:
        log_dir: the folder for the event files (``out_dir/tensorboard`` for the trainer).
        purge_step: on a resumed run, the step it continues from: TensorBoard hides the
            events at and after it from the earlier run.

    Raises:
        ValueError: when the ``tensorboard`` package is not installed (one line saying how
            to install it).
    """

    def __init__(self, log_dir: str | os.PathLike[str], purge_step: int | None = None) -> None:
        self.check_installed()
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = Path(log_dir)
        self.writer = SummaryWriter(log_dir=str(self.log_dir), purge_step=purge_step)

    @staticmethod
    def check_installed() -> None:
        """Raise the one-line ValueError below when ``tensorboard`` cannot be imported."""
        try:
            from torch.utils.tensorboard import SummaryWriter  # noqa: F401
        except ImportError:
            raise ValueError(
                "log='tensorboard' needs the tensorboard package, which is not installed: "
                "pip install tensorboard (or pip install 'llmcourse[dev]'), or leave log='jsonl'"
            ) from None

    def write(self, record: dict[str, Any]) -> None:
        """Add one trainer record (records of other types are ignored)."""
        kind, step = record.get("type"), record.get("iter")
        if step is None:
            return

        def scalar(tag: str, value: Any) -> None:
            if isinstance(value, (int, float)) and not isinstance(value, bool) \
                    and math.isfinite(value):
                self.writer.add_scalar(tag, value, step)

        if kind == "train":
            for key in ("loss", "lr", "grad_norm", "tokens_per_s", "mfu"):
                scalar(f"train/{key}", record.get(key))
        elif kind == "eval":
            for key in ("train_loss", "val_loss"):
                scalar(f"eval/{key}", record.get(key))
        elif kind == "monitor":
            for layer, stats in record.get("act", {}).items():
                for stat, value in stats.items():
                    scalar(f"act/{layer}/{stat}", value)
            for name, value in record.get("grad", {}).items():
                scalar(f"grad_norm/{name}", value)
            for name, value in record.get("update", {}).items():
                scalar(f"update_log10/{name}", value)
            for layer, h in record.get("hist", {}).items():
                self._histogram(f"gelu_input/{layer}", h, step)

    def _histogram(self, tag: str, h: dict[str, Any], step: int) -> None:
        counts = [float(c) for c in h["counts"]]
        total = sum(counts)
        if total == 0:
            return
        lo, hi, n = float(h["lo"]), float(h["hi"]), len(counts)
        width = (hi - lo) / n
        edges = [lo + width * (i + 1) for i in range(n)]  # right edge of each bin
        centers = [lo + width * (i + 0.5) for i in range(n)]
        self.writer.add_histogram_raw(
            tag, min=lo, max=hi, num=total,
            sum=sum(c * x for c, x in zip(counts, centers)),
            sum_squares=sum(c * x * x for c, x in zip(counts, centers)),
            bucket_limits=edges, bucket_counts=counts, global_step=step)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def _numbered_records(path: str | os.PathLike[str],
                      skip_bad_lines: bool) -> list[tuple[int, Any]]:
    """``(line number, parsed JSON)`` of each non-empty line of a JSON-lines file."""
    out = []
    try:
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    out.append((n, json.loads(line)))
                except json.JSONDecodeError:
                    if skip_bad_lines:
                        continue
                    raise ValueError(f"{path}:{n} is not valid JSON: {line[:80]!r}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a metrics log: it is not UTF-8 text (JSON lines); "
                         "give a run folder or its metrics.jsonl") from None
    return out


def read_metrics(
    path: str | os.PathLike[str], *, skip_bad_lines: bool = False
) -> list[dict[str, Any]]:
    """Read a ``metrics.jsonl`` file into a list of dicts."""
    return [rec for _, rec in _numbered_records(path, skip_bad_lines)]


def check_record(record: Any, where: str) -> None:
    """Raise a one-line :class:`ValueError` (naming ``where``) for a record no plot can use.

    A record must be a JSON object; a ``"train"``, ``"eval"`` or ``"monitor"`` record must
    have an integer ``iter``.

    >>> check_record({"type": "train", "loss": 2.0}, "metrics.jsonl:3")
    Traceback (most recent call last):
    ...
    ValueError: metrics.jsonl:3: this "train" record has no integer "iter" (the step it belongs to); fix or delete that line
    """
    if not isinstance(record, dict):
        raise ValueError(f"{where}: a metrics record is a JSON object such as "
                         f'{{"type": "train", "iter": 0, "loss": 4.2}}, not '
                         f"{json.dumps(record)[:40]}; fix or delete that line")
    kind, it = record.get("type"), record.get("iter")
    if kind in ("train", "eval", "monitor") and (not isinstance(it, int) or isinstance(it, bool)):
        raise ValueError(f'{where}: this "{kind}" record has no integer "iter" (the step it '
                         "belongs to); fix or delete that line")


def load_records(source: str | os.PathLike[str] | Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records of a run, checked (:func:`check_record`), for curves and plots.

    Args:
        source: a run directory (holding ``metrics.jsonl``), the path of a log, or the list
            of records :meth:`Trainer.fit` returned. A half-written line (a crash while
            writing) is skipped.
    """
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if os.path.isdir(path):
            path = os.path.join(path, "metrics.jsonl")
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"no metrics log at {path}; pass a run's out_dir, its metrics.jsonl, or the "
                "records returned by Trainer.fit()"
            )
        numbered = [(f"{path}:{n}", rec) for n, rec in _numbered_records(path, True)]
    else:
        records = list(source)
        if not all(isinstance(r, dict) for r in records):
            raise TypeError("records must be dicts such as Trainer.fit() returns")
        numbered = [(f"record {i}", rec) for i, rec in enumerate(records)]
    for where, rec in numbered:
        check_record(rec, where)
    return [rec for _, rec in numbered]


def flops_per_token(model: nn.Module, seq_len: int | None = None) -> float | None:
    """Training FLOPs (forward + backward) per token of ``model``, or ``None`` when unknown.

    The model's own ``flops_per_token`` (a number, or a method taking an optional sequence
    length) when it has one, as :class:`~llmcourse.model.GPT` does. Otherwise, for a model
    whose ``config`` has ``n_layer`` and ``n_embd``, the same formula as
    :func:`llmcourse.model.flops_per_token`, ``6 N + 12 n_layer n_embd T``, with ``N`` the
    non-embedding parameters counted the same way (lookup tables left out, a table that is
    also an output layer's weight kept).
    """
    own = getattr(model, "flops_per_token", None)
    if own is not None:
        if not callable(own):
            return float(own)
        try:
            value = own(seq_len) if seq_len is not None else own()
        except TypeError:
            value = own()
        return float(value) if value is not None else None
    cfg = getattr(model, "config", None)
    n_layer, n_embd = getattr(cfg, "n_layer", None), getattr(cfg, "n_embd", None)
    seq_len = getattr(cfg, "block_size", None) if seq_len is None else seq_len
    if not all(isinstance(v, int) for v in (n_layer, n_embd, seq_len)):
        return None
    return float(6 * _non_embedding_params(model) + 12 * n_layer * n_embd * seq_len)


def _non_embedding_params(model: nn.Module) -> int:
    linear = {id(m.weight) for m in model.modules() if isinstance(m, nn.Linear)}
    lookup = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)} - linear
    return sum(p.numel() for p in model.parameters() if id(p) not in lookup)
