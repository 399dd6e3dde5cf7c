"""Checkpoints that survive crashes and cannot run code.

Writing: :func:`save_checkpoint` goes through the package's one atomic write
(:func:`llmcourse.atomic.write_atomic`): a temporary file *in the same directory*, flushed and
``fsync``-ed, then renamed over the target (atomic on POSIX and Windows), and the directory
``fsync``-ed so the rename itself is durable. A crash at any moment leaves either the old
checkpoint or the new one, never a half-written file; a stray temporary file
(``.ckpt.pt.tmp-...``) is ignored by the loader and removed on the next successful save.

Reading: :func:`load_checkpoint` uses ``torch.load(weights_only=True)``, PyTorch's restricted
unpickler, which only rebuilds tensors, dicts, lists, tuples, numbers, strings and a few other
plain types. A file containing any other object (which an ordinary pickle could use to run
arbitrary code) is refused with :class:`CheckpointError`. Everything we store is therefore
plain data, including the random-number-generator states (see :func:`capture_rng_state`).

Layout of a trainer checkpoint (a dict):

``format``/``version``, ``model`` (state dict, never with ``_orig_mod.``/``module.`` prefixes),
``optimizer``, ``scaler`` (or ``None``), ``model_config`` (dict or ``None``), ``train_config``
(dict), ``iter_num``, ``best_val_loss``, ``evals_since_improvement``, ``last_eval_iter``,
``rng`` (one state per process rank), ``resume_state`` (``None``, or after a final evaluation
off the ``eval_interval`` grid the bookkeeping and random states from before it, which a resume
uses), ``world_size``, ``torch_version``.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import random
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from llmcourse.atomic import TMP_MARK, write_atomic

__all__ = [
    "CheckpointError",
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "save_checkpoint",
    "check_plain_data",
    "load_checkpoint",
    "strip_prefixes",
    "unwrap_model",
    "model_state_dict",
    "load_model_state",
    "capture_rng_state",
    "restore_rng_state",
    "config_to_dict",
    "remove_stale_temp_files",
]

CHECKPOINT_FORMAT = "llmcourse-checkpoint"
CHECKPOINT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint could not be read (missing, truncated, unsafe or not ours)."""


# --------------------------------------------------------------------------------------------
# Atomic write / safe read
# --------------------------------------------------------------------------------------------


def remove_stale_temp_files(path: str | os.PathLike[str]) -> list[Path]:
    """Delete leftover temporary files of earlier, interrupted saves of ``path``.

    Those are ``.ckpt.pt.tmp-*`` (:func:`llmcourse.atomic.write_atomic`'s names) and
    ``ckpt.pt.tmp-*`` (the names of earlier versions).
    """
    target = Path(path)
    removed = []
    if target.parent.is_dir():
        for pattern in (f"{target.name}{TMP_MARK}*", f".{target.name}{TMP_MARK}*"):
            for stale in target.parent.glob(pattern):
                try:
                    stale.unlink()
                    removed.append(stale)
                except OSError:
                    pass
    return removed


_PLAIN_SCALARS = (type(None), bool, int, float, str, torch.dtype, torch.device)


def check_plain_data(obj: Any, where: str = "checkpoint") -> None:
    """Raise :class:`TypeError` (naming the key path) if ``obj`` holds anything but plain data.

    Plain data is what ``torch.load(weights_only=True)`` rebuilds: tensors, dicts (including
    ``OrderedDict``), lists, tuples, ``None``, booleans, numbers, strings, dtypes and devices.
    Subclasses of these (``numpy.float64``, ``torch.torch_version.TorchVersion``...) are not.
    """
    if isinstance(obj, torch.Tensor):
        return
    kind = type(obj)
    if kind in _PLAIN_SCALARS or kind is torch.Size:
        return
    if kind in (dict, OrderedDict):
        for key, value in obj.items():
            if type(key) not in (str, int):
                raise TypeError(f"{where}: key {key!r} is a {type(key).__name__}, not str/int")
            check_plain_data(value, f"{where}[{key!r}]")
        return
    if kind in (list, tuple):
        for i, value in enumerate(obj):
            check_plain_data(value, f"{where}[{i}]")
        return
    raise TypeError(
        f"{where} is a {kind.__module__}.{kind.__qualname__}, which a weights-only checkpoint "
        "cannot hold; convert it to a tensor, number, string, list or dict first"
    )


class _Writer:
    """A file wrapper that keeps the ``OSError`` of a failed write (torch hides it)."""

    def __init__(self, fh: Any) -> None:
        self.fh = fh
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self.fh.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self.fh.flush()


def save_checkpoint(obj: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``obj`` to ``path`` atomically and durably (see the module docstring).

    ``obj`` must hold only plain data (see :func:`check_plain_data`) so that
    :func:`load_checkpoint` can read it back with ``weights_only=True``; anything else raises
    :class:`TypeError` before the file is touched.

    Returns the final path. A failed write (a full disk, a read-only folder) raises
    :class:`OSError` naming ``path``, and the previous file at ``path`` is left as it was.
    """
    check_plain_data(dict(obj))
    target = Path(path)
    writers: list[_Writer] = []

    def write(fh: Any) -> None:
        writers.append(_Writer(fh))
        torch.save(dict(obj), writers[-1])

    try:
        write_atomic(target, write)  # temporary file, fsync, rename; removed on failure
    except RuntimeError:
        failed = writers[-1].error if writers else None
        if failed is not None:
            # torch reports a failed write (disk full...) as a RuntimeError: give the OSError.
            raise OSError(failed.errno, failed.strerror, str(target)) from None
        raise
    remove_stale_temp_files(target)
    return target


def _first_reason(text: str) -> str:
    """The line of torch's long unpickling message that names the refused object."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if "Unsupported global" in line or "Unsupported operand" in line:
            return line
    return lines[0] if lines else text


def load_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device | None = "cpu"
) -> dict[str, Any]:
    """Read a checkpoint safely with ``torch.load(weights_only=True)``.

    Raises:
        CheckpointError: if the file is missing, not a zip archive (random bytes, cut short),
            unreadable, or contains objects other than plain data (a pickle that could
            execute code).
    """
    src = Path(path)
    if not src.is_file():
        hint = ""
        if src.parent.is_dir():
            found = sorted(p.name for p in src.parent.glob("*.pt"))
            hint = f" (*.pt files in {src.parent}: {found or 'none'})"
        raise CheckpointError(f"no checkpoint at {src}{hint}")
    if not zipfile.is_zipfile(src):
        raise CheckpointError(
            f"could not read checkpoint {src}: it is not a PyTorch checkpoint (torch.save "
            f"writes a zip archive; these {src.stat().st_size:,} bytes are not one, or the "
            "file was cut short). Use another checkpoint, e.g. the run's best.pt or ckpt.pt."
        )
    try:
        data = torch.load(src, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"refusing to load {src}: it contains objects that are not plain data (tensors, "
            "dicts, lists, numbers, strings), and loading those could run arbitrary code. "
            "llmcourse checkpoints never contain such objects, so this file was written by "
            "something else. Only if you wrote it yourself and trust it, load it with "
            f"torch.load(path, weights_only=False) and re-save the plain parts. Details: "
            f"{_first_reason(str(exc))}"
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"could not read checkpoint {src}: the file is truncated or not a PyTorch "
            f"checkpoint ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(data, dict):
        raise CheckpointError(
            f"{src} holds a {type(data).__name__}, not a checkpoint dict"
        )
    return data


# --------------------------------------------------------------------------------------------
# Model state (compile / DDP wrappers)
# --------------------------------------------------------------------------------------------


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain module under ``DistributedDataParallel`` and ``torch.compile`` wrappers."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod  # torch.compile's OptimizedModule
        else:
            return model


def strip_prefixes(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Remove the ``_orig_mod.`` (torch.compile) and leading ``module.`` (DDP) key parts.

    >>> strip_prefixes({"_orig_mod.wte.weight": 1, "module.h.0._orig_mod.w": 2})
    {'wte.weight': 1, 'h.0.w': 2}
    """
    out: dict[str, Any] = {}
    for key, value in state_dict.items():
        new = key
        while new.startswith("module."):
            new = new[len("module."):]
        new = new.replace("_orig_mod.", "")
        if new in out:
            raise ValueError(f"state dict keys {key!r} and another map to the same name {new!r}")
        out[new] = value
    return out


def model_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict of the unwrapped model: no ``_orig_mod.`` or ``module.`` prefixes."""
    return strip_prefixes(unwrap_model(model).state_dict())


def load_model_state(
    model: nn.Module, state_dict: Mapping[str, Any], strict: bool = True, *,
    source: str | os.PathLike[str] | None = None,
) -> Any:
    """Load a state dict into ``model`` (wrapped or not), stripping wrapper prefixes first.

    A tensor whose shape differs from the model's raises :class:`ValueError` naming
    ``source`` (the checkpoint file, when given), the first such tensor and both shapes,
    before anything is loaded: the model was built from a ``model_config`` that does not
    describe these weights.

    >>> load_model_state(nn.Linear(2, 3), {"weight": torch.zeros(3, 4), "bias": torch.zeros(3)},
    ...                  source="ckpt.pt")
    Traceback (most recent call last):
    ...
    ValueError: ckpt.pt: its weights do not fit the model built from its model_config: tensor 'weight' is (3, 4) in the checkpoint but (3, 2) in the model. Was model_config edited? Put back the values the weights were trained with, or use another checkpoint
    """
    state = strip_prefixes(state_dict)
    own = unwrap_model(model).state_dict()
    for name, tensor in state.items():
        if name in own and isinstance(tensor, torch.Tensor) and tensor.shape != own[name].shape:
            shapes = (f"tensor {name!r} is {tuple(tensor.shape)} in the checkpoint but "
                      f"{tuple(own[name].shape)} in the model")
            if source is None:
                raise ValueError(f"the weights do not fit the model: {shapes}")
            raise ValueError(
                f"{source}: its weights do not fit the model built from its model_config: "
                f"{shapes}. Was model_config edited? Put back the values the weights were "
                "trained with, or use another checkpoint")
    return unwrap_model(model).load_state_dict(state, strict=strict)


def config_to_dict(config: Any) -> dict[str, Any] | None:
    """A model/train config as a plain dict, or ``None`` if there is none.

    Uses ``config.to_dict()`` when present, else :func:`dataclasses.asdict`, else ``vars``.
    Values that are not plain data are converted to strings so the checkpoint stays loadable
    with ``weights_only=True``.
    """
    if config is None:
        return None
    if hasattr(config, "to_dict"):
        data = config.to_dict()
    elif dataclasses.is_dataclass(config) and not isinstance(config, type):
        data = dataclasses.asdict(config)
    elif isinstance(config, Mapping):
        data = dict(config)
    else:
        data = dict(vars(config))
    return {str(k): _plain(v) for k, v in data.items()}


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


# --------------------------------------------------------------------------------------------
# RNG state as plain data
# --------------------------------------------------------------------------------------------


def capture_rng_state(generators: Mapping[str, torch.Generator] | None = None) -> dict[str, Any]:
    """Every random state a training step can touch, as plain data.

    Covers PyTorch's CPU generator (dropout and ``torch.rand*`` on the CPU), every CUDA
    device's generator (when CUDA has been initialised), the MPS generator, NumPy's global
    ``RandomState``, Python's :mod:`random`, and the named :class:`torch.Generator` objects
    passed in (such as the trainer's batch sampler).
    """
    np_state = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch_cpu": torch.get_rng_state(),
        "cuda": (
            torch.cuda.get_rng_state_all()
            if torch.cuda.is_available() and torch.cuda.is_initialized()
            else []
        ),
        "mps": None,
        "numpy": {
            "bit_generator": str(np_state[0]),
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": {
            "version": int(py_version),
            "internal": [int(v) for v in py_internal],
            "gauss_next": py_gauss,
        },
        "generators": {name: g.get_state() for name, g in (generators or {}).items()},
    }
    mps = getattr(torch, "mps", None)
    backend = getattr(torch.backends, "mps", None)
    if mps is not None and backend is not None and backend.is_available():
        state["mps"] = mps.get_rng_state()
    return state


def restore_rng_state(
    state: Mapping[str, Any], generators: Mapping[str, torch.Generator] | None = None
) -> None:
    """Put back a state made by :func:`capture_rng_state`.

    CUDA states are restored for as many devices as both the checkpoint and this machine
    have; a generator named in ``generators`` but missing from ``state`` raises.
    """
    torch.set_rng_state(state["torch_cpu"].cpu())
    cuda_states = state.get("cuda") or []
    if cuda_states and torch.cuda.is_available():
        n = min(len(cuda_states), torch.cuda.device_count())
        for i in range(n):
            torch.cuda.set_rng_state(cuda_states[i].cpu(), i)
    if state.get("mps") is not None:
        mps = getattr(torch, "mps", None)
        backend = getattr(torch.backends, "mps", None)
        if mps is not None and backend is not None and backend.is_available():
            mps.set_rng_state(state["mps"].cpu())
    npd = state["numpy"]
    np.random.set_state(
        (
            npd["bit_generator"],
            npd["keys"].cpu().numpy().astype(np.uint32),
            int(npd["pos"]),
            int(npd["has_gauss"]),
            float(npd["cached_gaussian"]),
        )
    )
    pyd = state["python"]
    internal = tuple(int(v) for v in pyd["internal"])
    random.setstate((int(pyd["version"]), internal, pyd["gauss_next"]))
    saved = state.get("generators", {})
    for name, gen in (generators or {}).items():
        if name not in saved:
            raise CheckpointError(
                f"the checkpoint has no state for the random generator {name!r} (it has "
                f"{sorted(saved)}); it was written by a different set-up"
            )
        gen.set_state(saved[name].cpu())
