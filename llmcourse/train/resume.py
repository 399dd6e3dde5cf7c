"""What the :class:`~llmcourse.train.Trainer` saves for an exact resume, and how it reads it back.

A run's folder holds ``ckpt.pt`` (the resume point), ``best.pt`` (the lowest validation loss)
and ``metrics.jsonl``. :class:`ResumeState` is the part of the trainer that builds the
checkpoint dict (:meth:`~ResumeState.checkpoint_state`: weights, optimizer, scaler, counters
and every random state of every process) and restores it (:meth:`~ResumeState.resume`), so that
a resumed CPU run repeats the uninterrupted one bit for bit.

One subtlety: the final evaluation of a run whose ``max_iters`` is not a multiple of
``eval_interval`` is one a longer run would not make (it draws evaluation batches and may
update the best loss). A checkpoint written after it also carries the state from *before* it
(``resume_state``), and a resume uses that.

Example:
    >>> import tempfile
    >>> refuse_earlier_run(tempfile.mkdtemp())        # an empty folder: nothing to refuse
    >>> find_resume_point(tempfile.mkdtemp())
    Traceback (most recent call last):
    ...
    FileNotFoundError: nothing to resume in ...: it holds no ckpt.pt or best.pt ...
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from llmcourse.train.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    CheckpointError,
    capture_rng_state,
    load_checkpoint,
    load_model_state,
    model_state_dict,
    restore_rng_state,
)

__all__ = ["CKPT_NAME", "BEST_NAME", "METRICS_NAME", "refuse_earlier_run",
           "find_resume_point", "ResumeState"]

CKPT_NAME = "ckpt.pt"
BEST_NAME = "best.pt"
METRICS_NAME = "metrics.jsonl"


def refuse_earlier_run(out_dir: str | Path) -> None:
    """Raise :class:`FileExistsError` if ``out_dir`` holds an earlier run's checkpoints."""
    out_dir = Path(out_dir)
    earlier = [n for n in (CKPT_NAME, BEST_NAME) if (out_dir / n).is_file()]
    if earlier:
        raise FileExistsError(
            f"{out_dir} already holds {' and '.join(earlier)} from an earlier run, "
            "which a new run from scratch would replace. Continue that run with "
            "init_from='resume' (CLI: --resume), pick another out_dir, or set "
            "overwrite=True (CLI: --set overwrite=true) to replace it."
        )


def find_resume_point(out_dir: str | Path) -> Path:
    """``out_dir/ckpt.pt``, or ``best.pt`` when only that one exists; else FileNotFoundError."""
    out_dir = Path(out_dir)
    src = out_dir / CKPT_NAME
    if not src.is_file() and (out_dir / BEST_NAME).is_file():
        # Killed during the first save (best.pt done, ckpt.pt not): best.pt holds the
        # same full state, so it is a resume point too.
        src = out_dir / BEST_NAME
    if not src.is_file():
        raise FileNotFoundError(
            f"nothing to resume in {out_dir}: it holds no ckpt.pt or best.pt (an "
            "earlier run that stopped before its first checkpoint leaves none). Start "
            "the run again without --resume (init_from='scratch')."
        )
    return src


class ResumeState:
    """The trainer's checkpoint contents and their restoration (a part of ``Trainer``).

    Uses the trainer's ``raw_model``, ``optimizer``, ``scaler``, ``generator``, ``dist``,
    ``config``, ``precision``, ``model_config`` and its counters.
    """

    raw_model: Any
    optimizer: Any
    scaler: Any
    generator: torch.Generator
    dist: Any
    config: Any
    precision: Any
    model_config: Any
    device: torch.device
    out_dir: Path
    iter_num: int
    best_val_loss: float
    evals_since_improvement: int
    last_eval_iter: int | None
    last_checkpoint: tuple[Path, int] | None
    resumed_from: Path | None
    _final_resume_state: dict[str, Any] | None
    _truncate_metrics_at: int | None
    _fresh_log: bool

    def _weights_finite(self) -> bool:
        flags = [torch.isfinite(p).all() for p in self.raw_model.parameters()]
        return bool(torch.stack(flags).all().item()) if flags else True

    def _gather_rng(self) -> list[dict[str, Any]]:
        state = capture_rng_state({"batch": self.generator})
        if not self.dist.enabled:
            return [state]
        gathered: list[Any] = [None] * self.dist.world_size
        dist.all_gather_object(gathered, state)
        return gathered

    def _note_final_eval(self, it: int) -> None:
        """Keep the state from before a final evaluation off the ``eval_interval`` grid."""
        self._final_resume_state = {
            "iter_num": it,
            "best_val_loss": self.best_val_loss,
            "evals_since_improvement": self.evals_since_improvement,
            "last_eval_iter": self.last_eval_iter,
            "rng": self._gather_rng(),
        }

    def checkpoint_state(self) -> dict[str, Any]:
        """Everything :meth:`resume` needs, as plain data (see :mod:`~.checkpoint`)."""
        return {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "model": model_state_dict(self.raw_model),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "model_config": self.model_config,
            "train_config": self.config.to_dict(),
            "iter_num": self.iter_num,
            "best_val_loss": self.best_val_loss,
            "evals_since_improvement": self.evals_since_improvement,
            "last_eval_iter": self.last_eval_iter,
            "rng": self._gather_rng(),
            # After a final evaluation off the eval_interval grid: the state from before it,
            # so that a resume continues exactly as a run that never stopped here.
            "resume_state": (self._final_resume_state
                             if self._final_resume_state is not None
                             and self._final_resume_state["iter_num"] == self.iter_num
                             else None),
            "world_size": self.dist.world_size,
            "precision": self.precision.dtype_name,
            "torch_version": str(torch.__version__),
        }

    def resume(self, path: str | Path | None = None) -> dict[str, Any]:
        """Continue from a checkpoint written by :meth:`save` (default ``out_dir/ckpt.pt``).

        Restores the weights, optimizer and scaler states, the iteration counter, the best
        validation loss, the early-stopping counter and all random states, so that a resumed
        CPU run reproduces the uninterrupted one bit for bit. The :class:`TrainConfig` given
        to the trainer is kept (so ``max_iters`` can be raised to train longer). Records of
        ``metrics.jsonl`` after the checkpoint are dropped, as they are about to be redone.

        A checkpoint written after a final evaluation that is not on the ``eval_interval``
        grid carries the random states and bookkeeping from *before* that evaluation
        (``resume_state``), so resuming from any checkpoint the trainer writes is exact.

        Returns the loaded checkpoint dict.
        """
        src = Path(path) if path is not None else self.out_dir / CKPT_NAME
        ckpt = load_checkpoint(src, map_location=self.device)
        if ckpt.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(
                f"{src} is not an llmcourse trainer checkpoint (format={ckpt.get('format')!r})"
            )
        if int(ckpt.get("version", 0)) > CHECKPOINT_VERSION:
            raise CheckpointError(
                f"{src} was written by a newer llmcourse (checkpoint version "
                f"{ckpt['version']} > {CHECKPOINT_VERSION}); upgrade llmcourse"
            )
        try:
            load_model_state(self.raw_model, ckpt["model"])
        except (RuntimeError, ValueError) as exc:
            differs = _config_differences(ckpt.get("model_config"), self.raw_model)
            why = (f"the checkpoint's model differs in {differs}" if differs
                   else str(exc).strip().splitlines()[0][:200])
            raise CheckpointError(
                f"the weights in {src} do not fit this model ({why}); build the model with the "
                "checkpoint's settings, or train a new run into another out_dir"
            ) from exc
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if ckpt.get("scaler") is not None and self.scaler.is_enabled():
            self.scaler.load_state_dict(ckpt["scaler"])
        self.iter_num = int(ckpt["iter_num"])
        state = ckpt.get("resume_state") or ckpt
        self.best_val_loss = float(state["best_val_loss"])
        self.evals_since_improvement = int(state.get("evals_since_improvement", 0))
        last = state.get("last_eval_iter")
        self.last_eval_iter = None if last is None else int(last)
        rng_states = state.get("rng") or []
        if len(rng_states) == self.dist.world_size:
            restore_rng_state(rng_states[self.dist.rank], {"batch": self.generator})
        else:
            seed = self.config.seed + self.dist.rank + 7919 * self.iter_num
            torch.manual_seed(seed)
            self.generator.manual_seed(seed)
            warnings.warn(
                f"{src} was written by {len(rng_states)} process(es) but this run has "
                f"{self.dist.world_size}; random states were re-seeded, so the run continues "
                "correctly but not bit-identically",
                stacklevel=2,
            )
        self._truncate_metrics_at = self.iter_num  # done by fit(): resuming alone writes nothing
        self._fresh_log = False
        self.resumed_from = src
        self.last_checkpoint = (src, self.iter_num)
        return ckpt


def _config_differences(saved: Any, model: torch.nn.Module) -> str:
    """``"n_embd 16 -> 24, n_layer 1 -> 2"``: the settings a checkpoint's model had that ``model``
    (through its ``config`` dataclass) has otherwise; ``""`` when they cannot be compared."""
    current = getattr(model, "config", None)
    if not isinstance(saved, dict) or not dataclasses.is_dataclass(current):
        return ""
    now = dataclasses.asdict(current)
    return ", ".join(f"{key} {saved[key]!r} -> {now[key]!r}" for key in sorted(saved)
                     if key in now and saved[key] != now[key])
