"""The training loop: :class:`Trainer`.

One optimizer step ("iteration") does, for ``grad_accum_steps`` micro-batches: draw a batch,
run forward + loss under the precision plan's autocast, divide the loss by the number of
micro-batches and backpropagate (under DDP the gradient all-reduce only happens on the last
micro-batch). Then it unscales (float16), measures and clips the global gradient norm, takes
the AdamW step with the scheduled learning rate and frees the gradients.

Around that: periodic evaluation over many batches, ``best.pt`` and ``ckpt.pt`` checkpoints
written atomically with every random state needed for an exact resume, early stopping,
a non-finite-loss guard, ``metrics.jsonl`` and a progress bar. Optionally, every
``monitor_interval`` steps, activation / gradient / update statistics
(:mod:`llmcourse.train.monitor`), and TensorBoard event files (``log="tensorboard"``).

Example (a toy model; any ``nn.Module`` whose ``forward(x, y)`` returns ``(logits, loss)``
works, the course's GPT included):

    >>> import torch, torch.nn as nn, torch.nn.functional as F, tempfile
    >>> class Bigram(nn.Module):
    ...     def __init__(self, vocab):
    ...         super().__init__()
    ...         self.table = nn.Embedding(vocab, vocab)
    ...     def forward(self, idx, targets=None):
    ...         logits = self.table(idx)
    ...         loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
    ...         return logits, loss
    >>> data = torch.arange(1000) % 7                    # a sequence with an obvious rule
    >>> def get_batch(split, generator=None):
    ...     i = torch.randint(0, len(data) - 9, (8,), generator=generator)
    ...     x = torch.stack([data[j:j + 8] for j in i])
    ...     y = torch.stack([data[j + 1:j + 9] for j in i])
    ...     return x, y
    >>> cfg = TrainConfig(out_dir=tempfile.mkdtemp(), max_iters=60, batch_size=8, block_size=8,
    ...                   learning_rate=0.1, min_lr=0.01, warmup_iters=5, eval_interval=30,
    ...                   eval_iters=4, log_interval=30, device="cpu", progress=False)
    >>> history = Trainer(Bigram(7), cfg, get_batch).fit()
    >>> history[-1]["type"], history[-1]["val_loss"] < 0.5
    ('eval', True)
"""

from __future__ import annotations

import contextlib
import inspect
import math
import random
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm.auto import tqdm

from llmcourse.device import enable_tf32, peak_flops, pick_device, pick_dtype
from llmcourse.train.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    CheckpointError,
    capture_rng_state,
    config_to_dict,
    load_checkpoint,
    load_model_state,
    model_state_dict,
    restore_rng_state,
    save_checkpoint,
    unwrap_model,
)
from llmcourse.train.config import TrainConfig
from llmcourse.train.ddp import DistInfo, all_reduce_mean, setup_distributed
from llmcourse.train.evaluate import estimate_loss, loss_from_output as _extract_loss
from llmcourse.train.metrics import MetricsLogger, TensorBoardLogger, flops_per_token, mfu
from llmcourse.train.monitor import TrainingMonitor
from llmcourse.train.optim import configure_optimizer
from llmcourse.train.schedule import get_lr

__all__ = ["Trainer", "TrainingDiverged", "GetBatch"]

GetBatch = Callable[..., tuple[torch.Tensor, torch.Tensor]]
"""``get_batch(split) -> (x, y)``, optionally ``get_batch(split, generator=g)``."""

CKPT_NAME = "ckpt.pt"
BEST_NAME = "best.pt"
METRICS_NAME = "metrics.jsonl"


class TrainingDiverged(RuntimeError):
    """The loss (or the weights) became NaN or infinite.

    Training stops at the first check that sees it; checkpoints already on disk are left as
    they were (the trainer never saves non-finite weights).

    Attributes:
        iteration: the optimizer step (0-based) whose loss was not finite, or the number of
            completed steps when an evaluation or the weights were found non-finite.
        value: the offending value (``nan``, ``inf`` or ``-inf``), if there is one.
        what: which quantity: ``"training loss"``, ``"gradient norm"``, ``"validation loss"``,
            ``"training-split evaluation loss"`` or ``"weights"``.
    """

    def __init__(self, iteration: int, value: float | None, what: str = "training loss",
                 kept: tuple[Path, int] | None = None, settings: str = ""):
        self.iteration = iteration
        self.value = value
        self.what = what
        self.kept = kept  # (path, iteration) of the newest checkpoint on disk, if any
        shown = "" if value is None else f" ({value})"
        if kept is None:
            on_disk = "No checkpoint was written."
        else:
            on_disk = f"Kept {kept[0]} (iteration {kept[1]}) as it was."
        super().__init__(
            f"training diverged: the {what} is not finite{shown} at iteration {iteration}. "
            f"{on_disk} Usual fixes: lower learning_rate, keep grad_clip > 0 (e.g. 1.0), use "
            "a longer warmup, or dtype='float32' / 'bfloat16' instead of float16"
            + (f" (this run: {settings})." if settings else ".")
        )


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


def _accepts_generator(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "generator" in params or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()
    )


class Trainer:
    """Train a language model.

    Args:
        model: any ``nn.Module`` with ``forward(x, y) -> (logits, loss)`` (the loss being the
            mean cross-entropy). It is moved to the training device.
        config: the run's :class:`TrainConfig`.
        get_batch: ``get_batch(split) -> (x, y)`` with ``split`` in ``{"train", "val"}``. If it
            accepts a ``generator`` keyword, the trainer passes its own
            :class:`torch.Generator` (seeded with ``seed + rank``), whose state is then saved
            in checkpoints so that a resumed run draws exactly the same batches. Tensors are
            moved to the device if they are not there yet.
        generator: use this generator (instead of a new one) for batch sampling; its state is
            checkpointed. Useful when ``get_batch`` closes over its own generator. Under DDP it
            is re-seeded with ``seed + rank`` so that every rank draws different batches.
        model_config: the model's configuration to store in checkpoints; by default
            ``model.config`` (via its ``to_dict()`` or as a dataclass).

    Creating a trainer seeds PyTorch, NumPy and :mod:`random` with ``config.seed + rank``
    (after the model exists, so it does not change the model's initialisation). With
    ``config.init_from == "resume"`` it continues from ``out_dir/ckpt.pt``.

    Checkpoints (rank 0 only, written atomically; see :mod:`llmcourse.train.checkpoint`):

    - ``ckpt.pt``: the resume point, written after an evaluation with a new best validation
      loss (or after every evaluation with ``always_save_checkpoint``) and at the end of
      :meth:`fit`;
    - ``best.pt``: the lowest validation loss so far (with ``save_best``), written after
      ``ckpt.pt`` so that a kill between the two leaves a resume point. ``init_from="resume"``
      continues from ``ckpt.pt``, or from ``best.pt`` when only that one exists.

    Resuming from any checkpoint the trainer writes continues exactly as the uninterrupted
    run would (bitwise on the CPU), also from a run that stopped off the evaluation grid.

    Non-finite losses raise :class:`TrainingDiverged` at the next check (every
    ``log_interval`` steps, before each evaluation and at the end), naming the first bad
    iteration; nothing non-finite is ever saved.
    """

    def __init__(
        self,
        model: nn.Module,
        config: TrainConfig,
        get_batch: GetBatch,
        *,
        generator: torch.Generator | None = None,
        model_config: Any = None,
    ) -> None:
        if not isinstance(config, TrainConfig):
            raise TypeError(
                f"config must be a TrainConfig, got {type(config).__name__}; build one with "
                "TrainConfig(...) or TrainConfig.from_dict(d)"
            )
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not callable(get_batch):
            raise TypeError("get_batch must be callable: get_batch(split) -> (x, y)")
        self.config = config
        self.get_batch = get_batch
        self.out_dir = Path(config.out_dir)
        if config.init_from == "scratch" and not config.overwrite:
            refuse_earlier_run(self.out_dir)

        # ---- where and how -----------------------------------------------------------------
        device = pick_device(config.device)
        self.dist: DistInfo = setup_distributed(device.type, config.ddp_backend)
        if self.dist.enabled and device.type == "cuda":
            device = torch.device("cuda", self.dist.local_rank)
        elif device.type == "cuda" and device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        self.device = device
        self.precision = pick_dtype(device, requested=config.dtype)
        if device.type == "cuda":
            enable_tf32()

        # ---- randomness: different per rank, so ranks draw different batches ----------------
        seed = config.seed + self.dist.rank
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        random.seed(seed)
        if generator is None:
            generator = torch.Generator()
            generator.manual_seed(seed)
        elif self.dist.enabled:
            # Identical generators on every rank would make all ranks draw the same batches.
            generator.manual_seed(seed)
        self.generator = generator
        self._pass_generator = _accepts_generator(get_batch)

        # ---- model, optimizer, scaler ------------------------------------------------------
        self.raw_model: nn.Module = unwrap_model(model)
        self.raw_model.to(device)
        self.model_config = config_to_dict(
            model_config if model_config is not None else getattr(self.raw_model, "config", None)
        )
        self.optimizer = configure_optimizer(
            self.raw_model,
            learning_rate=config.learning_rate,
            weight_decay=config.weight_decay,
            betas=(config.beta1, config.beta2),
            eps=config.eps,
            device_type=device.type,
            fused=config.fused_adamw,
            optimizer=config.optimizer,
        )
        self.scaler = self.precision.make_grad_scaler()
        self._params = [p for p in self.raw_model.parameters() if p.requires_grad]

        model_fwd: nn.Module = self.raw_model
        if config.compile:
            model_fwd = torch.compile(self.raw_model)  # type: ignore[assignment]
        self._eval_model = model_fwd  # evaluation needs no gradient all-reduce
        if self.dist.enabled:
            model_fwd = nn.parallel.DistributedDataParallel(
                model_fwd, device_ids=[device.index] if device.type == "cuda" else None
            )
        self.model = model_fwd

        # ---- bookkeeping ---------------------------------------------------------------------
        self.iter_num = 0
        self.best_val_loss = math.inf
        self.evals_since_improvement = 0
        self.last_eval_iter: int | None = None
        self.stop_reason: str | None = None
        self.history: list[dict[str, Any]] = []
        self.metrics = MetricsLogger(self.out_dir / METRICS_NAME, enabled=self.dist.is_main)
        self._fresh_log = True  # a run from scratch starts a new metrics.jsonl
        self._flops_per_token = flops_per_token(self.raw_model, config.block_size)
        peak = config.peak_flops
        if peak is None and device.type == "cuda":
            peak = peak_flops(torch.cuda.get_device_name(device), self.precision.dtype_name)
        self.peak_flops = peak

        # The newest checkpoint this run has on disk: (path, iteration); named on divergence.
        self.last_checkpoint: tuple[Path, int] | None = None
        self.resumed_from: Path | None = None
        self._truncate_metrics_at: int | None = None
        self._final_resume_state: dict[str, Any] | None = None

        if config.init_from == "resume":
            src = self.out_dir / CKPT_NAME
            if not src.is_file() and (self.out_dir / BEST_NAME).is_file():
                # Killed during the first save (best.pt done, ckpt.pt not): best.pt holds the
                # same full state, so it is a resume point too.
                src = self.out_dir / BEST_NAME
            if not src.is_file():
                raise FileNotFoundError(
                    f"nothing to resume in {self.out_dir}: it holds no ckpt.pt or best.pt (an "
                    "earlier run that stopped before its first checkpoint leaves none). Start "
                    "the run again without --resume (init_from='scratch')."
                )
            self.resume(src)

        # ---- optional monitors and TensorBoard (rank 0); none at all when not asked for ------
        self.monitor: TrainingMonitor | None = None
        if config.monitor_interval is not None and self.dist.is_main:
            self.monitor = TrainingMonitor(self.raw_model, config.monitor_interval,
                                           activations=not config.compile)
        self._monitor_record: dict[str, Any] | None = None
        self.tensorboard: TensorBoardLogger | None = None
        if config.log == "tensorboard" and self.dist.is_main:
            self.tensorboard = TensorBoardLogger(
                self.out_dir / "tensorboard",
                purge_step=self.iter_num if self.resumed_from is not None else None)

    # ========================================================================================
    # Batches and evaluation
    # ========================================================================================

    def _batch(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        if self._pass_generator:
            x, y = self.get_batch(split, generator=self.generator)
        else:
            x, y = self.get_batch(split)
        if x.device != self.device:
            x = x.to(self.device, non_blocking=True)
            y = y.to(self.device, non_blocking=True)
        return x, y

    @torch.no_grad()
    def estimate_loss(self, eval_iters: int | None = None) -> dict[str, float]:
        """Mean loss over ``eval_iters`` batches of each split, with the model in eval mode.

        Dropout is off during the estimate and the model's train/eval mode is restored
        afterwards. Under DDP the result is averaged over processes (all ranks agree).

        Returns ``{"train": float, "val": float}``.
        """
        n = self.config.eval_iters if eval_iters is None else int(eval_iters)
        if n < 1:
            raise ValueError(f"eval_iters must be >= 1, got {n}")
        return estimate_loss(self._eval_model, self._batch, n, ("train", "val"),
                             autocast=self.precision.autocast,
                             reduce=lambda t: all_reduce_mean(t, self.dist))

    # ========================================================================================
    # Checkpoints
    # ========================================================================================

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

    def save(self, path: str | Path | None = None) -> Path | None:
        """Write a checkpoint (default ``out_dir/ckpt.pt``); returns its path on rank 0.

        Under DDP every rank must call it (the random states of all ranks are gathered);
        only rank 0 writes. Raises :class:`TrainingDiverged` instead of saving non-finite
        weights.
        """
        target = Path(path) if path is not None else self.out_dir / CKPT_NAME
        written = self._save_to([target])
        return written[0] if written else None

    def _save_to(self, targets: list[Path]) -> list[Path]:
        """Build the checkpoint once and write it to each target (rank 0 only)."""
        if not self._weights_finite():
            raise TrainingDiverged(self.iter_num, None, "weights")
        state = self.checkpoint_state()
        if not self.dist.is_main:
            return []
        written = [save_checkpoint(state, t) for t in targets]
        self.last_checkpoint = (written[0], self.iter_num)
        return written

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
        except RuntimeError as exc:
            raise CheckpointError(
                f"the weights in {src} do not fit this model (was it built with the same "
                f"config? checkpoint model_config={ckpt.get('model_config')}): {exc}"
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

    # ========================================================================================
    # Training
    # ========================================================================================

    def _should_eval(self, it: int) -> bool:
        if it == self.last_eval_iter:  # just evaluated (e.g. right before this checkpoint)
            return False
        return it % self.config.eval_interval == 0 or it >= self.config.max_iters

    def _train_step(
        self, need_norm: bool, it: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None, int]:
        """One optimizer step; returns (mean loss tensor, pre-clip grad norm or None, tokens).

        With ``it`` given (a monitored step), the monitor's record of that step is left in
        ``self._monitor_record``."""
        cfg = self.config
        accum = cfg.grad_accum_steps
        model = self.model
        scaler_on = self.scaler.is_enabled()
        ddp = self.dist.enabled
        mon = self.monitor if it is not None else None
        loss_sum: torch.Tensor | None = None
        tokens = 0
        for micro in range(accum):
            x, y = self._batch("train")
            tokens += x.numel()
            # Under DDP, all-reduce gradients only on the last micro-batch.
            sync = model.no_sync() if ddp and micro < accum - 1 else contextlib.nullcontext()
            # Monitored step: forward hooks on for the first micro-batch only.
            watch = mon.watch() if mon is not None and micro == 0 else contextlib.nullcontext()
            with sync:
                with watch, self.precision.autocast():
                    loss = _extract_loss(model(x, y))
                scaled = loss / accum if accum > 1 else loss
                if scaler_on:
                    self.scaler.scale(scaled).backward()
                else:
                    scaled.backward()
            detached = loss.detach()
            loss_sum = detached if loss_sum is None else loss_sum + detached
        assert loss_sum is not None
        mean_loss = loss_sum / accum if accum > 1 else loss_sum

        if scaler_on:
            self.scaler.unscale_(self.optimizer)
        if mon is not None:
            mon.read_gradients()  # before clipping
            mon.before_update()
        grad_norm: torch.Tensor | None = None
        if cfg.grad_clip > 0:
            grad_norm = nn.utils.clip_grad_norm_(self._params, cfg.grad_clip)
        elif need_norm:
            grads = [p.grad for p in self._params if p.grad is not None]
            grad_norm = nn.utils.get_total_norm(grads) if grads else None
        if scaler_on:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        if mon is not None and it is not None:
            self._monitor_record = mon.after_update(it)
        self.optimizer.zero_grad(set_to_none=True)
        return mean_loss, grad_norm, tokens

    def _flush(
        self,
        pending: list[tuple[int, torch.Tensor, torch.Tensor | None, float]],
        log_iter: int | None = None,
    ) -> dict[str, Any] | None:
        """Check the pending steps for non-finite values (one device sync, one all-reduce
        under DDP) and return the training record of step ``log_iter`` (without timing)."""
        if not pending:
            return None
        losses = all_reduce_mean(torch.stack([p[1].float() for p in pending]), self.dist)
        loss_vals = losses.tolist()
        norms: list[float | None] = [None] * len(pending)
        with_norm = [i for i, p in enumerate(pending) if p[2] is not None]
        if with_norm:
            norm_tensors = [pending[i][2] for i in with_norm]
            vals = torch.stack([n.float() for n in norm_tensors if n is not None]).tolist()
            for i, v in zip(with_norm, vals):
                norms[i] = v
        check_norms = not self.scaler.is_enabled()  # float16 overflow is the scaler's job
        for (it, _, _, _), loss, norm in zip(pending, loss_vals, norms):
            if not math.isfinite(loss):
                self.metrics.write({"type": "diverged", "iter": it, "loss": loss})
                raise TrainingDiverged(it, loss, "training loss")
            if check_norms and norm is not None and not math.isfinite(norm):
                self.metrics.write({"type": "diverged", "iter": it, "loss": loss})
                raise TrainingDiverged(it, norm, "gradient norm")
        record = None
        if log_iter is not None:
            pos = [p[0] for p in pending].index(log_iter)
            record = {
                "type": "train",
                "iter": log_iter,
                "loss": loss_vals[pos],
                "lr": pending[pos][3],
                "grad_norm": norms[pos],
            }
        pending.clear()
        return record

    def _evaluate(self, it: int) -> dict[str, Any]:
        losses = self.estimate_loss()
        checks = (("val", "validation loss"), ("train", "training-split evaluation loss"))
        for split, what in checks:
            if not math.isfinite(losses[split]):
                self.metrics.write({"type": "diverged", "iter": it, "loss": losses[split]})
                raise TrainingDiverged(it, losses[split], what)
        improved = losses["val"] < self.best_val_loss
        if improved:
            self.best_val_loss = losses["val"]
            self.evals_since_improvement = 0
        else:
            self.evals_since_improvement += 1
        self.last_eval_iter = it
        record = {
            "type": "eval",
            "iter": it,
            "train_loss": losses["train"],
            "val_loss": losses["val"],
            "best_val_loss": self.best_val_loss,
            "lr": get_lr(min(it, self.config.max_iters), self.config),
            "improved": improved,
        }
        if it > 0:
            # ckpt.pt first: a kill between the two writes leaves a resume point.
            targets = []
            if improved or self.config.always_save_checkpoint:
                targets.append(self.out_dir / CKPT_NAME)
            if improved and self.config.save_best:
                targets.append(self.out_dir / BEST_NAME)
            if targets:
                self._save_to(targets)
        return record

    def fit(self) -> list[dict[str, Any]]:
        """Train until ``max_iters`` (or early stopping); return this call's records.

        The records are the dicts also written to ``out_dir/metrics.jsonl`` (see
        :mod:`llmcourse.train.metrics`). ``self.stop_reason`` tells why training stopped:
        ``"max_iters"`` or ``"early_stopping"``.

        Raises:
            TrainingDiverged: on a non-finite loss (the last good checkpoint is kept).
        """
        cfg = self.config
        history: list[dict[str, Any]] = []
        pending: list[tuple[int, torch.Tensor, torch.Tensor | None, float]] = []
        pbar = tqdm(
            total=cfg.max_iters,
            initial=min(self.iter_num, cfg.max_iters),
            disable=not (cfg.progress and self.dist.is_main),
            desc="train",
            dynamic_ncols=True,
            # In a log file (CI, nohup) a redraw every 0.1 s floods it; update rarely there.
            mininterval=0.1 if (sys.stderr.isatty() or "ipykernel" in sys.modules) else 15.0,
        )

        def emit(record: dict[str, Any] | None) -> None:
            if record is None:
                return
            history.append(record)
            self.history.append(record)
            self.metrics.write(record)
            if self.tensorboard is not None:
                self.tensorboard.write(record)

        if self.iter_num > 0 and self.iter_num >= cfg.max_iters:
            # A resumed run already at (or past) its target: nothing to do, nothing written.
            self.stop_reason = "max_iters"
            return history
        if self._fresh_log:
            self.metrics.reset()
            self._fresh_log = False
        if self._truncate_metrics_at is not None:
            self.metrics.truncate_after(self._truncate_metrics_at)
            self._truncate_metrics_at = None
        self.model.train()
        self.stop_reason = None
        world = self.dist.world_size
        peak_total = self.peak_flops * world if self.peak_flops else None
        saved_at: int | None = None
        start_iter, evaluated = self.iter_num, False
        window_start = time.perf_counter()
        window_tokens = 0
        window_steps = 0
        try:
            while True:
                it = self.iter_num
                if self._should_eval(it):
                    self._flush(pending)
                    if it > 0 and it % cfg.eval_interval != 0:
                        # The final evaluation, off the grid: an uninterrupted longer run would
                        # not make it, so the resume point keeps the state from before it.
                        self._final_resume_state = {
                            "iter_num": it,
                            "best_val_loss": self.best_val_loss,
                            "evals_since_improvement": self.evals_since_improvement,
                            "last_eval_iter": self.last_eval_iter,
                            "rng": self._gather_rng(),
                        }
                    record = self._evaluate(it)
                    evaluated = True
                    if it > 0 and (record["improved"] or cfg.always_save_checkpoint):
                        saved_at = it
                    emit(record)
                    pbar.set_postfix(val=f"{record['val_loss']:.4f}", refresh=False)
                    if cfg.patience is not None and self.evals_since_improvement >= cfg.patience:
                        self.stop_reason = "early_stopping"
                        break
                    window_start = time.perf_counter()  # keep evaluation out of tokens/s
                    window_tokens = window_steps = 0
                if it >= cfg.max_iters:
                    self.stop_reason = "max_iters"
                    break

                lr = get_lr(it, cfg)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                log_now = it % cfg.log_interval == 0
                monitored = self.monitor is not None and self.monitor.wants(it)
                loss, grad_norm, tokens = self._train_step(
                    need_norm=log_now, it=it if monitored else None)
                self.iter_num = it + 1
                if monitored:
                    emit(self._monitor_record)
                    self._monitor_record = None
                pending.append((it, loss, grad_norm, lr))
                window_tokens += tokens
                window_steps += 1
                if log_now:
                    record = self._flush(pending, it)  # waits for the device: honest clock
                    elapsed = time.perf_counter() - window_start
                    assert record is not None
                    tok_s = window_tokens * world / elapsed if elapsed > 0 else 0.0
                    record["tokens_per_s"] = tok_s
                    record["ms_per_iter"] = 1000.0 * elapsed / window_steps
                    record["mfu"] = mfu(self._flops_per_token, tok_s, peak_total)
                    emit(record)
                    pbar.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{lr:.2e}", refresh=False)
                    window_start = time.perf_counter()
                    window_tokens = window_steps = 0
                pbar.update(1)

            # Final check of the last steps, then the resume point (after the final evaluation).
            self._flush(pending)
            worked = evaluated or self.iter_num != start_iter
            if worked and self.iter_num > 0 and saved_at != self.iter_num:
                self.save(self.out_dir / CKPT_NAME)
        except TrainingDiverged as exc:
            cfg_text = f"learning_rate={cfg.learning_rate:g}, grad_clip={cfg.grad_clip:g}"
            raise TrainingDiverged(exc.iteration, exc.value, exc.what, self.last_checkpoint,
                                   cfg_text) from None
        finally:
            pbar.close()
            if self.tensorboard is not None:
                self.tensorboard.flush()
        return history
