"""LoRA: low-rank adapters on a frozen model (Hu et al., 2022), written from scratch.

A :class:`LoRALinear` wraps a trained ``nn.Linear`` of weight ``W`` (``(out, in)``) and leaves it
frozen; what trains is a pair of small matrices, ``A`` of shape ``(r, in)`` and ``B`` of shape
``(out, r)``, and the layer computes

    y = W x + b + (alpha / r) * B A x

``B`` starts at zero, so a fresh adapter changes nothing; ``A`` starts Kaiming-uniform, as in
the paper's code and ``peft``. :func:`apply_lora` puts adapters on the layers named in
``targets`` and freezes everything else; :func:`merge_lora` folds ``(alpha / r) B A`` into
``W`` (no extra cost at inference) and :func:`unmerge_lora` takes it out again;
:func:`save_lora` / :func:`load_lora` write and read only the adapters, a file of a few
kilobytes where the model is megabytes.

Example:
    >>> import torch, torch.nn as nn
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> layer = LoRALinear(nn.Linear(6, 4), r=2, alpha=4)
    >>> tuple(layer.lora_A.shape), tuple(layer.lora_B.shape), layer.scaling
    ((2, 6), (4, 2), 2.0)
    >>> x = torch.randn(3, 6)
    >>> torch.equal(layer(x), layer.base(x))   # B = 0: the adapter starts as a no-op
    True
    >>> [n for n, p in layer.named_parameters() if p.requires_grad]
    ['lora_A', 'lora_B']
"""

from __future__ import annotations

import math
import os
import re
import warnings
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import torch
import torch.nn as nn

from llmcourse.atomic import write_atomic
from llmcourse.finetune.settings import is_positive_finite

__all__ = [
    "LoRALinear",
    "apply_lora",
    "lora_modules",
    "merge_lora",
    "unmerge_lora",
    "unload_lora",
    "lora_state_dict",
    "save_lora",
    "load_lora",
    "count_parameters",
    "check_lora_settings",
]

#: Written into every adapter file; :func:`load_lora` refuses files without it.
FORMAT = "llmcourse-lora-v1"


def check_lora_settings(base: nn.Module, r: int, alpha: float, dropout: float = 0.0) -> None:
    """Raise a one-line error unless ``LoRALinear(base, r, alpha, dropout)`` is valid."""
    if not isinstance(base, nn.Linear):
        raise TypeError(f"LoRALinear wraps an nn.Linear, got {type(base).__name__}")
    if isinstance(r, bool) or not isinstance(r, int) or not 1 <= r <= min(base.in_features,
                                                                           base.out_features):
        raise ValueError(
            f"r={r!r} is not a valid rank for a {base.out_features}x{base.in_features} layer; "
            f"use an integer from 1 to {min(base.in_features, base.out_features)}"
        )
    if not is_positive_finite(alpha):
        raise ValueError(f"alpha={alpha!r} must be a finite number > 0 (e.g. alpha = 2 * r)")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout={dropout!r} must be in [0, 1)")


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update ``(alpha / r) * B A``.

    Args:
        base: the layer to adapt; its parameters are frozen (``requires_grad = False``).
        r: the rank, ``1 <= r <= min(in_features, out_features)``.
        alpha: the scale numerator; the update is multiplied by ``alpha / r``, so changing
            ``r`` keeps the size of the update roughly the same.
        dropout: dropout on the adapter's input only (the base path sees ``x`` as it is).

    The layer keeps ``base``, ``r``, ``alpha`` and ``scaling`` (``alpha / r``), the trainable
    ``lora_A`` of shape ``(r, in)`` and ``lora_B`` of shape ``(out, r)``, and ``merged``
    (``True`` after :meth:`merge`).
    """

    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0) -> None:
        super().__init__()
        check_lora_settings(base, r, alpha, dropout)
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        self.r, self.alpha = r, float(alpha)
        self.scaling = self.alpha / r
        w = base.weight
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, device=w.device, dtype=w.dtype))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, device=w.device, dtype=w.dtype))
        # The same start as the paper's code and peft: A Kaiming-uniform, B zero.
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    @property
    def weight(self) -> torch.Tensor:
        """The base weight (merged or not), so code that reads ``layer.weight`` still works."""
        return self.base.weight

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base.bias

    def delta_weight(self) -> torch.Tensor:
        """``(alpha / r) * B @ A``, shape ``(out, in)``: what the adapter adds to ``W``."""
        return self.scaling * (self.lora_B @ self.lora_A)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x (..., in) -> (..., out)
        y = self.base(x)
        if self.merged:
            return y
        # Two thin products, (..., in) -> (..., r) -> (..., out): never the (out, in) matrix.
        return y + self.scaling * ((self.dropout(x) @ self.lora_A.T) @ self.lora_B.T)

    @torch.no_grad()
    def merge(self) -> None:
        """Add the update into the base weight: one matrix product per call, as before LoRA."""
        if self.merged:
            raise ValueError("this LoRALinear is already merged; call unmerge() first")
        self.base.weight += self.delta_weight().to(self.base.weight.dtype)
        self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Take the update out of the base weight again (equal to the original to round-off)."""
        if not self.merged:
            raise ValueError("this LoRALinear is not merged; there is nothing to unmerge")
        self.base.weight -= self.delta_weight().to(self.base.weight.dtype)
        self.merged = False

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha:g}, merged={self.merged}"


def lora_modules(model: nn.Module) -> Iterator[tuple[str, LoRALinear]]:
    """``(name, module)`` for every :class:`LoRALinear` inside ``model``."""
    for name, module in model.named_modules():
        if isinstance(module, LoRALinear):
            yield name, module


def _matches(name: str, targets: Sequence[str]) -> bool:
    # "c_proj" matches "transformer.h.0.attn.c_proj" and "...mlp.c_proj"; "attn.c_proj" only the first.
    return any(name == t or name.endswith("." + t) for t in targets)


def _replace(model: nn.Module, names: Iterable[str], r: int, alpha: float, dropout: float) -> None:
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LoRALinear(getattr(parent, child), r, alpha, dropout))


def apply_lora(model: nn.Module, targets: Sequence[str] = ("c_attn", "c_proj"), r: int = 8,
               alpha: float = 16.0, dropout: float = 0.0) -> nn.Module:
    """Put a :class:`LoRALinear` on every ``nn.Linear`` whose name matches ``targets``.

    A target matches a module whose name is the target or ends in ``"." + target``
    (``"c_proj"`` is both ``attn.c_proj`` and ``mlp.c_proj``). Every other parameter of the
    model is frozen, so an optimizer over ``model.parameters()`` with ``requires_grad``
    trains only the adapters. The model is changed in place and returned.

    Raises:
        ValueError: nothing matched, the model already has adapters, or a bad ``r``/``alpha``.

    Example:
        >>> from llmcourse.model import GPT, GPTConfig
        >>> m = apply_lora(GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8)),
        ...                r=2, alpha=4)
        >>> [name for name, _ in lora_modules(m)][:3]
        ['transformer.h.0.attn.c_attn', 'transformer.h.0.attn.c_proj', 'transformer.h.0.mlp.c_proj']
        >>> count_parameters(m)   # (trainable, total)
        (352, 2264)
    """
    if isinstance(targets, str):
        targets = (targets,)
    if next(lora_modules(model), None) is not None:
        raise ValueError("this model already has LoRA adapters; apply_lora once per model "
                         "(merge_lora folds them in, or start from a fresh copy)")
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and _matches(n, targets)]
    if not names:
        linear = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
        raise ValueError(f"no nn.Linear matches targets {tuple(targets)}; the model's linear "
                         f"layers are named like {linear[:4]}")
    for name in names:  # every check before anything changes
        check_lora_settings(model.get_submodule(name), r, alpha, dropout)
    for p in model.parameters():
        p.requires_grad_(False)
    _replace(model, names, r, alpha, dropout)  # the new A, B are the only trainable parameters
    return model


def merge_lora(model: nn.Module) -> nn.Module:
    """Merge every adapter of ``model`` into its base weight (see :meth:`LoRALinear.merge`)."""
    for _, module in lora_modules(model):
        module.merge()
    return model


def unmerge_lora(model: nn.Module) -> nn.Module:
    """Undo :func:`merge_lora` (see :meth:`LoRALinear.unmerge`)."""
    for _, module in lora_modules(model):
        module.unmerge()
    return model


def unload_lora(model: nn.Module, merge: bool = True) -> nn.Module:
    """Put plain ``nn.Linear`` layers back in place of the adapters, in place; return the model.

    With ``merge=True`` each adapter is merged first (the model keeps what it learned, with the
    original parameter names, so a normal checkpoint loader reads it); with ``merge=False`` it
    is dropped (the original model again). The base parameters stay frozen as they were made
    by :func:`apply_lora`; call ``model.requires_grad_(True)`` to train them.
    """
    modules = list(lora_modules(model))
    if not modules:
        raise ValueError("this model has no LoRA adapters to unload")
    for name, module in modules:
        if merge and not module.merged:
            module.merge()
        elif not merge and module.merged:
            module.unmerge()
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, module.base)
    return model


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts; a tied weight is counted once."""
    seen, trainable, total = set(), 0, 0
    for p in model.parameters():  # parameters() already yields a shared tensor once
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return trainable, total


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
            _replace(model, [name], s["r"], s["alpha"], dropout)
        have = dict(lora_modules(model))
    with torch.no_grad():
        for name, module in have.items():
            module.alpha = float(settings[name]["alpha"])
            module.scaling = module.alpha / module.r
            module.lora_A.copy_(state[f"{name}.lora_A"])
            module.lora_B.copy_(state[f"{name}.lora_B"])
    return model
