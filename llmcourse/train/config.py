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

from dataclasses import dataclass
from typing import Any

from llmcourse.device import normalize_dtype_name
from llmcourse.fields import DictConfig, check_field

__all__ = ["TrainConfig"]

_INIT_FROM = ("scratch", "resume")
_LR_SCHEDULES = ("cosine", "linear", "constant", "wsd")
_OPTIMIZERS = ("torch", "llmcourse")
_DDP_BACKENDS = ("auto", "nccl", "gloo")
_LOGS = ("jsonl", "tensorboard")


@dataclass
class TrainConfig(DictConfig):
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
        monitor_interval: every this many steps, record activation, gradient and
            update-to-data statistics (a ``"monitor"`` record, see
            :mod:`llmcourse.train.monitor`); ``None`` (default) records none and costs nothing.
        log: where records go besides ``metrics.jsonl``: ``"jsonl"`` (only there) or
            ``"tensorboard"`` (also TensorBoard event files in ``out_dir/tensorboard``; needs
            the ``tensorboard`` package).
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
    monitor_interval: int | None = None
    log: str = "jsonl"

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
        """Check every field; raise :class:`ValueError` naming the field, the rule and the value."""

        def field(name: str, kind: type | None = None, **rule: Any) -> None:
            check_field(name, getattr(self, name), kind, owner="TrainConfig", **rule)

        field("out_dir", str, rule="a directory path (a non-empty string)")
        for name, choices in (("init_from", _INIT_FROM), ("lr_schedule", _LR_SCHEDULES),
                              ("optimizer", _OPTIMIZERS), ("ddp_backend", _DDP_BACKENDS),
                              ("log", _LOGS)):
            field(name, choices=choices)
        for name, low in (("max_iters", 0), ("batch_size", 1), ("block_size", 1),
                          ("grad_accum_steps", 1), ("warmup_iters", 0), ("eval_interval", 1),
                          ("eval_iters", 1), ("log_interval", 1)):
            field(name, int, low=low)
        field("seed", int, low=0, high=2**63 - 1)  # torch's generators take 64-bit seeds
        field("lr_decay_iters", int, low=0, optional=True)
        field("monitor_interval", int, low=1, optional=True, what="None switches monitors off")
        field("patience", int, low=1, optional=True, what="None disables early stopping")
        for name in ("learning_rate", "eps"):
            field(name, float, low=0, low_open=True)
        field("peak_flops", float, low=0, low_open=True, optional=True)
        for name in ("min_lr", "weight_decay", "grad_clip"):
            field(name, float, low=0)
        field("min_lr", float, high=self.learning_rate,
              rule=f"<= learning_rate={self.learning_rate}")
        for name in ("beta1", "beta2"):
            field(name, float, low=0, high=1, high_open=True)
        field("cooldown_frac", float, low=0, high=1, what="a fraction of the run")
        if self.decay_lr and self.lr_decay_iters is not None:
            field("lr_decay_iters", int, low=self.warmup_iters,
                  rule=f">= warmup_iters={self.warmup_iters} (the cosine starts after warmup)")
        field("fused_adamw", bool, optional=True, what="None: automatic")
        if self.optimizer != "torch" and self.fused_adamw:
            raise ValueError("TrainConfig.fused_adamw=True needs optimizer='torch' (the fused "
                             "kernel is torch's); leave fused_adamw=None")
        field("device", str, rule="'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
        for name in ("save_best", "always_save_checkpoint", "compile", "decay_lr", "progress",
                     "overwrite"):
            field(name, bool)
        try:
            self.dtype = normalize_dtype_name(self.dtype)
        except ValueError as exc:
            raise ValueError(f"TrainConfig.dtype={self.dtype!r} is invalid: {exc}") from None

    # ----------------------------------------------------------------------------------------
    def tokens_per_iter(self, world_size: int = 1) -> int:
        """Tokens that one optimizer step consumes across all processes."""
        return self.batch_size * self.block_size * self.grad_accum_steps * world_size
