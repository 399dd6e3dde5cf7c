"""The engineered training loop: :class:`Trainer`.

The plain loop of day 17 is :func:`llmcourse.train.loop.train`; the Trainer takes the same
steps (bit for bit, on the same seed and settings) and adds what a real run needs. Its parts
live in modules of their own: the step (:mod:`.step`), the deferred non-finite checks
(:mod:`.diverged`), the checkpoint contents and exact resume (:mod:`.resume`), the logs,
monitors and progress bar (:mod:`.hooks`) and the DDP set-up (:mod:`.ddp`).

Around the step: periodic evaluation over many batches, ``best.pt`` and ``ckpt.pt`` checkpoints
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

import inspect
import math
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from llmcourse.device import enable_tf32, peak_flops, pick_dtype
from llmcourse.train.checkpoint import config_to_dict, save_checkpoint, unwrap_model
from llmcourse.train.config import TrainConfig
from llmcourse.train.ddp import estimate_loss_all_ranks, place_process
from llmcourse.train.diverged import Pending, TrainingDiverged, check_eval_losses, check_pending
from llmcourse.train.hooks import RunLog, make_monitor, progress_bar, timing
from llmcourse.train.metrics import MetricsLogger, TensorBoardLogger, flops_per_token
from llmcourse.train.monitor import TrainingMonitor
from llmcourse.train.optim import configure_optimizer
from llmcourse.train.resume import (BEST_NAME, CKPT_NAME, METRICS_NAME, ResumeState,
                                    find_resume_point, refuse_earlier_run)
from llmcourse.train.schedule import get_lr
from llmcourse.train.step import train_step

__all__ = ["Trainer", "TrainingDiverged", "GetBatch", "refuse_earlier_run",
           "CKPT_NAME", "BEST_NAME", "METRICS_NAME"]

GetBatch = Callable[..., tuple[torch.Tensor, torch.Tensor]]
"""``get_batch(split) -> (x, y)``, optionally ``get_batch(split, generator=g)``."""


def _accepts_generator(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "generator" in params or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()
    )


class Trainer(ResumeState):
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
    ``config.init_from == "resume"`` it continues from ``out_dir/ckpt.pt``. It writes
    nothing: files appear when :meth:`fit` trains.

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
        device, self.dist = place_process(config.device, config.ddp_backend)
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
            self.resume(find_resume_point(self.out_dir))

        # ---- optional monitors and TensorBoard (rank 0); none at all when not asked for ------
        self.monitor: TrainingMonitor | None = make_monitor(
            self.raw_model, config.monitor_interval, compiled=config.compile,
            is_main=self.dist.is_main)
        self._monitor_record: dict[str, Any] | None = None
        tensorboard = config.log == "tensorboard" and self.dist.is_main
        self.log = RunLog(self.metrics, self.out_dir / "tensorboard" if tensorboard else None,
                          purge_step=self.iter_num if self.resumed_from is not None else None)

    @property
    def tensorboard(self) -> TensorBoardLogger | None:
        """The TensorBoard writer, once :meth:`fit` has opened it (``None`` before or without)."""
        return self.log.tensorboard

    # ---- batches and evaluation ----------------------------------------------------------

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
        return estimate_loss_all_ranks(self._eval_model, self._batch, n, self.dist,
                                       autocast=self.precision.autocast)

    # ---- checkpoints (their contents and the resume: ResumeState) ------------------------

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

    # ---- training ------------------------------------------------------------------------

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
        loss, grad_norm, tokens, record = train_step(
            self.model, self._batch, self.optimizer, self.scaler, self.precision, self._params,
            accum=self.config.grad_accum_steps, grad_clip=self.config.grad_clip,
            need_norm=need_norm, ddp=self.dist.enabled,
            monitor=self.monitor if it is not None else None, it=it)
        if record is not None:
            self._monitor_record = record
        return loss, grad_norm, tokens

    def _flush(self, pending: Pending, log_iter: int | None = None) -> dict[str, Any] | None:
        """Check the pending steps for non-finite values (one device sync, one all-reduce
        under DDP) and return the training record of step ``log_iter`` (without timing)."""
        return check_pending(pending, self.dist, check_norms=not self.scaler.is_enabled(),
                             metrics=self.metrics, log_iter=log_iter)

    def _evaluate(self, it: int) -> dict[str, Any]:
        losses = self.estimate_loss()
        check_eval_losses(losses, it, self.metrics)
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
        if self.iter_num > 0 and self.iter_num >= cfg.max_iters:
            # A resumed run already at (or past) its target: nothing to do, nothing written.
            self.stop_reason = "max_iters"
            return history
        pending: Pending = []
        pbar = progress_bar(cfg.max_iters, self.iter_num, cfg.progress and self.dist.is_main)
        if self._fresh_log:
            self.metrics.reset()
            self._fresh_log = False
        if self._truncate_metrics_at is not None:
            self.metrics.truncate_after(self._truncate_metrics_at)
            self._truncate_metrics_at = None
        self.log.open()
        self.model.train()
        self.stop_reason = None
        world = self.dist.world_size
        peak_total = self.peak_flops * world if self.peak_flops else None
        saved_at: int | None = None
        start_iter, evaluated = self.iter_num, False
        window_start = time.perf_counter()
        window_tokens = window_steps = 0
        try:
            while True:
                it = self.iter_num
                if self._should_eval(it):
                    self._flush(pending)
                    if it > 0 and it % cfg.eval_interval != 0:
                        # The final evaluation, off the grid: an uninterrupted longer run would
                        # not make it, so the resume point keeps the state from before it.
                        self._note_final_eval(it)
                    record = self._evaluate(it)
                    evaluated = True
                    if it > 0 and (record["improved"] or cfg.always_save_checkpoint):
                        saved_at = it
                    self.log.emit(record, history, self.history)
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
                    self.log.emit(self._monitor_record, history, self.history)
                    self._monitor_record = None
                pending.append((it, loss, grad_norm, lr))
                window_tokens += tokens
                window_steps += 1
                if log_now:
                    record = self._flush(pending, it)  # waits for the device: honest clock
                    assert record is not None
                    record.update(timing(window_tokens, window_steps,
                                         time.perf_counter() - window_start, world,
                                         self._flops_per_token, peak_total))
                    self.log.emit(record, history, self.history)
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
            self.log.flush()
        return history
