"""The trainer's settings: :class:`TrainConfig`.

One flat dataclass, so that a preset, a command line (``--set max_iters=100``) and a lesson all
describe a run the same way. It round-trips through plain dicts (:meth:`TrainConfig.to_dict`,
:meth:`TrainConfig.from_dict`) and is stored inside every checkpoint.

Example:
    >>> cfg = TrainConfig(max_iters=200, learning_rate=1e-3, warmup_iters=20)
    >>> cfg.lr_decay_iters is None, cfg.decay_iters   # None: decay over the whole run
    (True, 200)
    >>> cfg.tokens_per_iter(world_size=1) == cfg.batch_size * cfg.block_size
    True
    >>> TrainConfig.from_dict(cfg.to_dict()) == cfg
    True
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from llmcourse.device import normalize_dtype_name

__all__ = ["TrainConfig"]

_INIT_FROM = ("scratch", "resume")
_LR_SCHEDULES = ("cosine", "linear", "constant", "wsd")
_OPTIMIZERS = ("torch", "llmcourse")


@dataclass
class TrainConfig:
    """Everything the :class:`~llmcourse.train.Trainer` needs to know about a run.

    Iterations count optimizer steps; one step sees
    ``batch_size * block_size * grad_accum_steps * world_size`` tokens.

    Attributes:
        out_dir: where checkpoints (``ckpt.pt``, ``best.pt``) and ``metrics.jsonl`` go.
        init_from: ``"scratch"`` or ``"resume"`` (continue from ``out_dir/ckpt.pt``).
        max_iters: total optimizer steps of the run (a resumed run continues up to it).
        batch_size: sequences per micro-batch (per process under DDP).
        block_size: tokens per sequence (for throughput figures; the batches decide).
        grad_accum_steps: micro-batches per optimizer step (per process).
        learning_rate: peak learning rate, reached at the end of the warmup.
        min_lr: learning rate at and after ``lr_decay_iters``.
        warmup_iters: steps of linear warmup.
        lr_decay_iters: step at which the cosine decay reaches ``min_lr``; ``None`` means
            ``max_iters`` (or ``warmup_iters`` if the run is shorter than the warmup); see
            :attr:`decay_iters`.
        decay_lr: ``False`` keeps the learning rate constant at ``learning_rate``.
        lr_schedule: the shape after the warmup (see :mod:`llmcourse.train.schedule`):
            ``"cosine"`` (default), ``"linear"``, ``"constant"`` or ``"wsd"``
            (warmup-stable-decay).
        cooldown_frac: for ``"wsd"``, the fraction of ``decay_iters`` spent in the final
            linear decay to ``min_lr``.
        weight_decay: AdamW decoupled weight decay, applied to parameters with ``dim >= 2``.
        beta1, beta2, eps: AdamW's moment coefficients and epsilon.
        grad_clip: clip the global gradient norm to this value; ``0`` disables clipping.
        eval_interval: evaluate every this many steps (and at the end of the run).
        eval_iters: batches averaged per split by an evaluation.
        log_interval: write a training record every this many steps. Non-finite losses are
            detected at these points (and before every evaluation and checkpoint).
        patience: stop after this many evaluations in a row without a new best validation
            loss; ``None`` disables early stopping.
        save_best: keep ``best.pt``, the checkpoint with the lowest validation loss.
        always_save_checkpoint: write ``ckpt.pt`` at every evaluation, not only on a new best.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
        dtype: ``"auto"``, ``"float32"``, ``"bfloat16"`` or ``"float16"``
            (see :func:`llmcourse.device.pick_dtype`).
        compile: run the model through :func:`torch.compile`.
        seed: base seed; process ``rank`` uses ``seed + rank``.
        fused_adamw: ``None`` uses the fused AdamW kernel where PyTorch has one (CUDA; CPU from
            PyTorch 2.4); ``True``/``False`` force it.
        optimizer: ``"torch"`` (``torch.optim.AdamW``, the default) or ``"llmcourse"`` (the
            from-scratch :class:`llmcourse.train.optim.AdamW`; same maths, slower).
        ddp_backend: ``"auto"`` (NCCL on CUDA, Gloo otherwise), ``"nccl"`` or ``"gloo"``.
        peak_flops: peak FLOP/s of one device for the MFU figure; ``None`` looks the GPU up in
            a small table (and reports no MFU when it is unknown).
        progress: show a tqdm progress bar (rank 0 only).
        overwrite: allow a run from scratch to replace the checkpoints of an earlier run in
            ``out_dir``; without it such a run stops before training with an error, so that no
            trained checkpoint is lost by accident.
    """

    out_dir: str = "out"
    init_from: str = "scratch"
    max_iters: int = 5000
    batch_size: int = 12
    block_size: int = 64
    grad_accum_steps: int = 1
    learning_rate: float = 6e-4
    min_lr: float = 6e-5
    warmup_iters: int = 100
    lr_decay_iters: int | None = None
    decay_lr: bool = True
    lr_schedule: str = "cosine"
    cooldown_frac: float = 0.2
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    grad_clip: float = 1.0
    eval_interval: int = 250
    eval_iters: int = 20
    log_interval: int = 10
    patience: int | None = None
    save_best: bool = True
    always_save_checkpoint: bool = False
    device: str = "auto"
    dtype: str = "auto"
    compile: bool = False
    seed: int = 1337
    fused_adamw: bool | None = None
    optimizer: str = "torch"
    ddp_backend: str = "auto"
    peak_flops: float | None = None
    progress: bool = True
    overwrite: bool = False

    def __post_init__(self) -> None:
        self.validate()

    @property
    def decay_iters(self) -> int:
        """The step where the cosine ends: ``lr_decay_iters``, or by default ``max_iters``
        (at least ``warmup_iters``)."""
        if self.lr_decay_iters is not None:
            return self.lr_decay_iters
        return max(self.max_iters, self.warmup_iters)

    # ----------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Check every field; raise :class:`ValueError` naming the field and a fix."""

        def bad(name: str, why: str) -> ValueError:
            return ValueError(
                f"TrainConfig.{name}={getattr(self, name)!r} is invalid: {why}"
            )

        def check_int(name: str, minimum: int) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise bad(name, f"expected an integer >= {minimum}")
            if value < minimum:
                raise bad(name, f"must be >= {minimum}")

        def check_float(name: str, minimum: float, strict: bool = False) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise bad(name, "expected a number")
            if not math.isfinite(value):
                raise bad(name, "must be finite")
            if value < minimum or (strict and value == minimum):
                raise bad(name, f"must be {'>' if strict else '>='} {minimum}")

        if self.init_from not in _INIT_FROM:
            raise bad("init_from", f"use one of {_INIT_FROM}")
        if not isinstance(self.out_dir, str) or not self.out_dir:
            raise bad("out_dir", "give a directory path as a non-empty string")
        check_int("max_iters", 0)
        check_int("batch_size", 1)
        check_int("block_size", 1)
        check_int("grad_accum_steps", 1)
        check_int("warmup_iters", 0)
        if self.lr_decay_iters is not None:
            check_int("lr_decay_iters", 0)
        check_int("eval_interval", 1)
        check_int("eval_iters", 1)
        check_int("log_interval", 1)
        check_int("seed", 0)
        check_float("learning_rate", 0.0, strict=True)
        check_float("min_lr", 0.0)
        check_float("weight_decay", 0.0)
        check_float("grad_clip", 0.0)
        check_float("eps", 0.0, strict=True)
        if self.min_lr > self.learning_rate:
            raise bad("min_lr", f"must not exceed learning_rate={self.learning_rate}")
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                0.0 <= value < 1.0
            ):
                raise bad(name, "must be a number in [0, 1)")
        if (
            self.decay_lr
            and self.lr_decay_iters is not None
            and self.lr_decay_iters < self.warmup_iters
        ):
            raise bad(
                "lr_decay_iters",
                f"must be >= warmup_iters={self.warmup_iters} (the cosine starts after warmup)",
            )
        if self.patience is not None:
            check_int("patience", 1)
        if self.peak_flops is not None:
            check_float("peak_flops", 0.0, strict=True)
        if self.fused_adamw is not None and not isinstance(self.fused_adamw, bool):
            raise bad("fused_adamw", "use None (automatic), True or False")
        if self.lr_schedule not in _LR_SCHEDULES:
            raise bad("lr_schedule", f"use one of {_LR_SCHEDULES}")
        check_float("cooldown_frac", 0.0)
        if self.cooldown_frac > 1.0:
            raise bad("cooldown_frac", "must be a fraction in [0, 1]")
        if self.optimizer not in _OPTIMIZERS:
            raise bad("optimizer", f"use one of {_OPTIMIZERS}")
        if self.optimizer != "torch" and self.fused_adamw:
            raise bad("fused_adamw", "the fused kernel is torch's; use optimizer='torch' "
                      "or leave fused_adamw=None")
        if self.ddp_backend not in ("auto", "nccl", "gloo"):
            raise bad("ddp_backend", "use 'auto', 'nccl' or 'gloo'")
        if not isinstance(self.device, str) or not self.device:
            raise bad("device", "use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
        try:
            self.dtype = normalize_dtype_name(self.dtype)
        except ValueError as exc:
            raise bad("dtype", str(exc)) from None
        for name in ("save_best", "always_save_checkpoint", "compile", "decay_lr", "progress"):
            if not isinstance(getattr(self, name), bool):
                raise bad(name, "expected True or False")

    # ----------------------------------------------------------------------------------------
    def tokens_per_iter(self, world_size: int = 1) -> int:
        """Tokens that one optimizer step consumes across all processes."""
        return self.batch_size * self.block_size * self.grad_accum_steps * world_size

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of the fields (JSON- and checkpoint-safe)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, strict: bool = True) -> TrainConfig:
        """Build a config from a dict such as :meth:`to_dict` made.

        With ``strict=True`` an unknown key raises (it is usually a typo); with
        ``strict=False`` unknown keys are ignored, which is what loading a checkpoint written
        by a newer version wants.
        """
        if not isinstance(data, dict):
            raise TypeError(f"TrainConfig.from_dict expects a dict, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown and strict:
            raise ValueError(
                f"unknown TrainConfig field(s) {unknown}; valid fields are {sorted(names)}"
            )
        return cls(**{k: v for k, v in data.items() if k in names})

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (validated again)."""
        data = self.to_dict()
        data.update(changes)
        return TrainConfig.from_dict(data)
