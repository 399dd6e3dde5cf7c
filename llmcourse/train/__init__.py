"""The trainer: configuration, schedule, optimizer set-up, checkpoints, DDP and the loop.

Typical use::

    from llmcourse.train import Trainer, TrainConfig
    cfg = TrainConfig(out_dir="out/run1", max_iters=2000, learning_rate=1e-3)
    history = Trainer(model, cfg, get_batch).fit()

Modules, the plain references first:

- :mod:`~llmcourse.train.loop` - :func:`~llmcourse.train.loop.train`, the plain training loop
  of day 17 (the :class:`Trainer` takes the same steps, bit for bit);
- :mod:`~llmcourse.train.config` - :class:`TrainConfig`;
- :mod:`~llmcourse.train.schedule` - :func:`get_lr` (warmup + cosine, linear, constant, WSD);
- :mod:`~llmcourse.train.optim` - from-scratch SGD, Adam, AdamW, :func:`clip_grad_norm`,
  weight-decay groups;
- :mod:`~llmcourse.train.checkpoint` - atomic, code-free checkpoints and RNG states;
- :mod:`~llmcourse.train.metrics` - ``metrics.jsonl``, tokens/s and MFU;
- :mod:`~llmcourse.train.evaluate` - :func:`estimate_loss`, perplexity, bits per token and byte;
- :mod:`~llmcourse.train.ddp` - ``torchrun`` / DistributedDataParallel helpers;
- :mod:`~llmcourse.train.trainer` - :class:`Trainer`, the engineered loop, with its parts:
  :mod:`~llmcourse.train.step` (one optimizer step), :mod:`~llmcourse.train.diverged`
  (:class:`TrainingDiverged`, the deferred non-finite checks), :mod:`~llmcourse.train.resume`
  (checkpoint contents, exact resume), :mod:`~llmcourse.train.hooks` (logs, TensorBoard,
  monitors, progress bar);
- :mod:`~llmcourse.train.monitor` and :mod:`~llmcourse.train.plots` - training monitors and
  the curves of a run.
"""

from llmcourse.train.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_model_state,
    model_state_dict,
    save_checkpoint,
    strip_prefixes,
    unwrap_model,
)
from llmcourse.train.config import TrainConfig
from llmcourse.train.ddp import DistInfo, cleanup_distributed, dist_info_from_env
from llmcourse.train.evaluate import (
    SHAKESPEARE_CHAR_MILESTONES,
    bits_per_byte,
    bits_per_token,
    bytes_per_token,
    estimate_loss,
    milestone_table,
    perplexity,
)
from llmcourse.train.metrics import read_metrics
from llmcourse.train.optim import (
    SGD,
    Adam,
    AdamW,
    clip_grad_norm,
    configure_optimizer,
    param_groups,
)
from llmcourse.train.schedule import (
    SCHEDULES,
    constant_lr,
    cosine_lr,
    get_lr,
    linear_lr,
    warmup_lr,
    wsd_lr,
)
from llmcourse.train.trainer import Trainer, TrainingDiverged

__all__ = [
    "Trainer",
    "TrainConfig",
    "TrainingDiverged",
    "CheckpointError",
    "get_lr",
    "cosine_lr",
    "linear_lr",
    "constant_lr",
    "wsd_lr",
    "warmup_lr",
    "SCHEDULES",
    "param_groups",
    "configure_optimizer",
    "AdamW",
    "Adam",
    "SGD",
    "clip_grad_norm",
    "save_checkpoint",
    "load_checkpoint",
    "load_model_state",
    "model_state_dict",
    "strip_prefixes",
    "unwrap_model",
    "read_metrics",
    "estimate_loss",
    "perplexity",
    "bits_per_token",
    "bits_per_byte",
    "bytes_per_token",
    "milestone_table",
    "SHAKESPEARE_CHAR_MILESTONES",
    "DistInfo",
    "dist_info_from_env",
    "cleanup_distributed",
]
