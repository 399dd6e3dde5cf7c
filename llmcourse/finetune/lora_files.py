"""LoRA adapter files: save only the adapters of a model, and load them back safely.

An adapter file holds the ``lora_A`` / ``lora_B`` tensors of every
:class:`~llmcourse.finetune.lora.LoRALinear` and their ``r`` and ``alpha``: a few kilobytes where the model is megabytes. It is written
atomically (:func:`llmcourse.atomic.write_atomic`) and read with ``weights_only=True``, so a
file holding pickled code is refused, never run. :func:`load_lora` checks everything (format,
layers, shapes, ranks, depth) before it changes the model.

The adapters themselves, the reference of day 34, are in :mod:`llmcourse.finetune.lora`.

Example:
    >>> import tempfile, torch
    >>> from pathlib import Path
    >>> from llmcourse.finetune.lora import apply_lora
    >>> from llmcourse.model import GPT, GPTConfig
    >>> cfg = GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8)
    >>> tuned = apply_lora(GPT(cfg), r=2, alpha=4)
    >>> path = save_lora(tuned, Path(tempfile.mkdtemp()) / "adapter.pt")
    >>> sorted(lora_state_dict(tuned))[:2]
    ['transformer.h.0.attn.c_attn.lora_A', 'transformer.h.0.attn.c_attn.lora_B']
    >>> fresh = load_lora(GPT(cfg), path)      # the same layers get adapters, then the tensors
    >>> a = lambda m: m.transformer.h[0].attn.c_attn.lora_A
    >>> torch.equal(a(fresh), a(tuned))
    True
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any, Iterable

import torch
import torch.nn as nn

from llmcourse.atomic import write_atomic
from llmcourse.finetune.lora import check_lora_settings, lora_modules, wrap_with_lora
from llmcourse.finetune.settings import is_positive_finite

__all__ = ["FORMAT", "lora_state_dict", "save_lora", "load_lora"]

#: Written into every adapter file; :func:`load_lora` refuses files without it.
FORMAT = "llmcourse-lora-v1"


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only the adapters: ``{"<module>.lora_A": (r, in), "<module>.lora_B": (out, r)}``."""
    out = {}
    for name, module in lora_modules(model):
        out[f"{name}.lora_A"] = module.lora_A.detach().cpu().clone()
        out[f"{name}.lora_B"] = module.lora_B.detach().cpu().clone()
    if not out:
        raise ValueError("this model has no LoRA adapters; call apply_lora(model, ...) first")
    return out


def save_lora(model: nn.Module, path: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Write only the adapters of ``model`` (and their ``r``, ``alpha``) to ``path``.

    An existing file is kept unless ``overwrite=True``; the write is atomic (a crash or a full
    disk leaves the old file or none, never half of one). Returns the path.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; save_lora never replaces a file unless asked: give "
                              "a new path, or pass overwrite=True")
    state = lora_state_dict(model)
    settings = {name: {"r": m.r, "alpha": m.alpha} for name, m in lora_modules(model)}
    saved = {"format": FORMAT, "modules": settings, "state_dict": state}
    return write_atomic(path, lambda f: torch.save(saved, f), overwrite=overwrite)


def _read_adapter(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``(settings, state)`` of an adapter file, refusing anything save_lora did not write."""
    if not path.is_file():
        raise FileNotFoundError(f"no adapter file at {path}; save one with save_lora(model, path)")
    try:
        with warnings.catch_warnings():  # torch's note on a foreign pickle protocol: noise here
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            saved = torch.load(path, map_location="cpu", weights_only=True)
    except OSError:
        raise
    except Exception:  # not a torch file, or one holding pickled objects (possibly code)
        raise ValueError(f"{path} is not an llmcourse LoRA adapter file and was not loaded; do "
                         "not load it with torch.load(weights_only=False), which runs any code "
                         "the file holds: use only adapters written by save_lora") from None
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise ValueError(f"{path} is not a LoRA adapter file written by save_lora "
                         f"(a full checkpoint loads with load_state_dict instead)")
    settings, state = saved.get("modules"), saved.get("state_dict")
    if not _well_formed(settings, state):
        raise ValueError(f"{path} is a damaged LoRA adapter file (settings or tensors missing or "
                         "invalid); save the adapter again with save_lora(model, path)")
    return settings, state


def _well_formed(settings: Any, state: Any) -> bool:
    """``{name: {"r": int, "alpha": > 0}}`` and, for each name, its two tensors."""
    if not (isinstance(settings, dict) and settings and isinstance(state, dict)):
        return False
    for name, s in settings.items():
        if not (isinstance(s, dict) and isinstance(s.get("r"), int) and not isinstance(s["r"], bool)
                and is_positive_finite(s.get("alpha"))):
            return False
        if not all(isinstance(state.get(f"{name}.lora_{x}"), torch.Tensor) for x in "AB"):
            return False
    return True


def _kind(name: str) -> str:
    """A layer's name with its block numbers replaced: ``h.0.attn.c_attn -> h.*.attn.c_attn``."""
    return re.sub(r"\.\d+(?=\.|$)", ".*", name)


def _blocks(names: Iterable[str]) -> int:
    return len({m.group(1) for n in names if (m := re.search(r"\.(\d+)(?:\.|$)", n))})


def load_lora(model: nn.Module, path: str | os.PathLike[str], dropout: float = 0.0) -> nn.Module:
    """Load adapters saved by :func:`save_lora` into ``model`` (in place) and return it.

    A model without adapters gets them first, on exactly the layers the file names, with the
    file's ``r`` and ``alpha``. Every check is made before anything changes, and each failure
    is one line: a file that is not an adapter file, a layer the model lacks or that would be
    left without its adapter, a shape or rank that does not fit, adapters that are merged.
    """
    path = Path(path)
    settings, state = _read_adapter(path)
    have = dict(lora_modules(model))
    if have and set(have) != set(settings):
        extra = sorted(set(settings) ^ set(have))
        raise ValueError(f"the adapters in {path} are on other layers than this model's "
                         f"(differing: {extra[:3]}); load into a model without adapters")
    for name, s in settings.items():
        module = have.get(name)
        if module is None:
            try:
                module = model.get_submodule(name)
            except AttributeError:
                raise ValueError(f"{path} has an adapter for {name!r}, which this model does not "
                                 f"have; is it the model the adapter was trained on?") from None
            if not isinstance(module, nn.Linear):
                raise ValueError(f"{path} has an adapter for {name!r}, which is a "
                                 f"{type(module).__name__} here, not an nn.Linear")
        else:
            if module.merged:
                raise ValueError(f"the adapter on {name!r} is merged; call unmerge_lora(model) "
                                 f"before loading another adapter")
            if module.r != s["r"]:
                raise ValueError(f"{name!r}: the file's rank is {s['r']}, the model's adapter has "
                                 f"r={module.r}; load into a model without adapters")
        in_f, out_f = module.in_features, module.out_features
        a, b = state[f"{name}.lora_A"], state[f"{name}.lora_B"]
        if tuple(a.shape) != (s["r"], in_f) or tuple(b.shape) != (out_f, s["r"]):
            raise ValueError(f"{name!r}: the file's adapter is for a {b.shape[0]}x{a.shape[1]} "
                             f"layer, this model's is {out_f}x{in_f}; another model size?")
    if not have:
        # The same kind of layer in more blocks than the file covers: a deeper model.
        kinds = {_kind(n) for n in settings}
        like = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and _kind(n) in kinds]
        missing = [n for n in like if n not in settings]
        if missing:
            raise ValueError(f"{path} holds adapters for {_blocks(settings)} block(s) "
                             f"({len(settings)} layers), this model has {_blocks(like)} "
                             f"({len(like)} such layers): {missing[0]!r} would get none; load it "
                             "into a model of the depth (n_layer) it was trained on")
        for name, s in settings.items():
            check_lora_settings(model.get_submodule(name), s["r"], s["alpha"], dropout)
        for p in model.parameters():
            p.requires_grad_(False)
        for name, s in settings.items():
            wrap_with_lora(model, name, s["r"], s["alpha"], dropout)
        have = dict(lora_modules(model))
    with torch.no_grad():
        for name, module in have.items():
            module.alpha = float(settings[name]["alpha"])
            module.scaling = module.alpha / module.r
            module.lora_A.copy_(state[f"{name}.lora_A"])
            module.lora_B.copy_(state[f"{name}.lora_B"])
    return model
