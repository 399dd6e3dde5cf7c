"""Distributed data parallel (DDP) plumbing for runs launched with ``torchrun``.

``torchrun --nproc_per_node=N script.py`` starts N copies of the script and tells each one who
it is through environment variables (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``,
``MASTER_ADDR``, ``MASTER_PORT``). Each process then joins a *process group* (NCCL between
GPUs, Gloo between CPU processes), holds a full copy of the model, trains on its own batches,
and ``DistributedDataParallel`` averages the gradients across processes during ``backward``.
So N processes with ``grad_accum_steps=a`` take the same steps as one process with
``grad_accum_steps=N*a`` seeing the same samples.

The Trainer evaluates with :func:`estimate_loss_all_ranks`: the mean losses of
:func:`~llmcourse.train.estimate_loss`, averaged over the processes.

The trainer calls :func:`place_process` (which joins the group with :func:`setup_distributed`)
itself; a script only has to be launched by ``torchrun`` (and may call
:func:`cleanup_distributed` at the end).

Example:
    >>> info = dist_info_from_env({})        # not launched by torchrun
    >>> info.enabled, info.rank, info.world_size, info.is_main
    (False, 0, 1, True)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ContextManager

import torch
import torch.distributed as dist

from llmcourse.device import pick_device
from llmcourse.train.evaluate import loss_from_output

__all__ = [
    "DistInfo",
    "dist_info_from_env",
    "setup_distributed",
    "place_process",
    "cleanup_distributed",
    "all_reduce_mean",
    "estimate_loss_all_ranks",
]


@dataclass(frozen=True)
class DistInfo:
    """Who this process is in a (possibly one-process) run."""

    enabled: bool = False
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs and writes checkpoints."""
        return self.rank == 0


def dist_info_from_env(env: Mapping[str, str] | None = None) -> DistInfo:
    """Read ``RANK``/``LOCAL_RANK``/``WORLD_SIZE`` (set by ``torchrun``).

    DDP is enabled when ``RANK`` is set and ``WORLD_SIZE > 1``; a one-process ``torchrun`` is
    treated as a plain run.
    """
    env = os.environ if env is None else env
    if "RANK" not in env:
        return DistInfo()
    try:
        rank = int(env["RANK"])
        world = int(env.get("WORLD_SIZE", "1"))
        local = int(env.get("LOCAL_RANK", str(rank)))
    except ValueError as exc:
        raise ValueError(
            f"bad torchrun environment (RANK={env.get('RANK')!r}, "
            f"WORLD_SIZE={env.get('WORLD_SIZE')!r}): {exc}"
        ) from None
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"inconsistent torchrun environment: RANK={rank}, WORLD_SIZE={world}")
    return DistInfo(enabled=world > 1, rank=rank, local_rank=local, world_size=world)


def setup_distributed(device_type: str, backend: str = "auto") -> DistInfo:
    """Join the process group if launched by ``torchrun`` with more than one process.

    Args:
        device_type: ``"cuda"`` uses one GPU per process (``cuda:LOCAL_RANK``) and, with
            ``backend="auto"``, NCCL; anything else uses Gloo.
        backend: ``"auto"``, ``"nccl"`` or ``"gloo"``.

    Calling it again when the group already exists is harmless.
    """
    info = dist_info_from_env()
    if not info.enabled:
        return info
    if backend == "auto":
        backend = "nccl" if device_type == "cuda" else "gloo"
    if device_type == "cuda":
        if torch.cuda.device_count() <= info.local_rank:
            raise RuntimeError(
                f"LOCAL_RANK={info.local_rank} but only {torch.cuda.device_count()} CUDA "
                "device(s) are visible; launch at most that many processes per node"
            )
        torch.cuda.set_device(info.local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    if dist.get_world_size() != info.world_size or dist.get_rank() != info.rank:
        raise RuntimeError(
            "the existing process group does not match RANK/WORLD_SIZE from the environment"
        )
    return info


def place_process(preference: str, backend: str = "auto") -> tuple[torch.device, DistInfo]:
    """This process's training device, after joining the process group under ``torchrun``.

    ``preference`` is what :func:`~llmcourse.device.pick_device` accepts. Under DDP on GPUs
    each process takes ``cuda:LOCAL_RANK``; a plain ``cuda`` becomes the current device.
    """
    device = pick_device(preference)
    info = setup_distributed(device.type, backend)
    if info.enabled and device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
    elif device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device, info


def cleanup_distributed() -> None:
    """Leave the process group (no-op when there is none)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_mean(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Average ``tensor`` over all processes, in place (no-op without DDP); returns it."""
    if info.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        tensor.div_(info.world_size)
    return tensor


@torch.no_grad()
def estimate_loss_all_ranks(
    model: torch.nn.Module,
    get_batch: Callable[[str], tuple[torch.Tensor, torch.Tensor]],
    eval_iters: int,
    info: DistInfo,
    splits: Sequence[str] = ("train", "val"),
    *,
    autocast: Callable[[], ContextManager[Any]] | None = None,
) -> dict[str, float]:
    """The Trainer's evaluation: :func:`~llmcourse.train.estimate_loss`, over all ranks.

    Each process computes, on its own batches, exactly what ``estimate_loss`` computes (the
    same batches in the same order, the same float32 sums, so the same numbers in a one-process
    run: ``tests/test_train_evaluate.py`` checks it bit for bit). What this version adds for
    the Trainer: the model may return the loss alone
    (:func:`~llmcourse.train.evaluate.loss_from_output`), the sums stay on the device until one
    all-reduce averages the ``(len(splits),)`` means over the processes
    (:func:`all_reduce_mean`, a no-op without DDP), and they are read back once.

    >>> import torch.nn as nn
    >>> class Half(nn.Module):                  # a model whose loss is always 0.5
    ...     def forward(self, x, y):
    ...         return torch.tensor(0.5)
    >>> batch = lambda split: (torch.zeros(1, 2), torch.zeros(1, 2))
    >>> estimate_loss_all_ranks(Half(), batch, 3, DistInfo())
    {'train': 0.5, 'val': 0.5}
    """
    context = autocast if autocast is not None else contextlib.nullcontext
    was_training = model.training
    model.eval()
    try:
        means = []
        for split in splits:
            total = 0
            for _ in range(eval_iters):
                x, y = get_batch(split)  # (B, T), (B, T)
                with context():
                    total = total + loss_from_output(model(x, y)).float()
            means.append(total / eval_iters)
        values = all_reduce_mean(torch.stack(means), info).tolist()  # one device sync
    finally:
        model.train(was_training)
    return dict(zip(splits, values))
