"""LoRA: low-rank adapters on a frozen model (Hu et al., 2022), written from scratch.

A :class:`LoRALinear` wraps a trained ``nn.Linear`` of weight ``W`` (``(out, in)``) and leaves it
frozen; what trains is a pair of small matrices, ``A`` of shape ``(r, in)`` and ``B`` of shape
``(out, r)``, and the layer computes

    y = W x + b + (alpha / r) * B A x

``B`` starts at zero, so a fresh adapter changes nothing; ``A`` starts Kaiming-uniform, as in
the paper's code and ``peft``. :func:`apply_lora` puts adapters on the layers named in
``targets`` and freezes everything else; :func:`merge_lora` folds ``(alpha / r) B A`` into
``W`` (no extra cost at inference) and :func:`unmerge_lora` takes it out again;
the adapter files (only the adapters, a few kilobytes where the model is megabytes) are
written and read by :mod:`llmcourse.finetune.lora_files` (``save_lora``, ``load_lora``).

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
from typing import Iterator, Sequence

import torch
import torch.nn as nn

from llmcourse.finetune.settings import is_positive_finite

__all__ = [
    "LoRALinear",
    "apply_lora",
    "lora_modules",
    "merge_lora",
    "unmerge_lora",
    "unload_lora",
    "count_parameters",
    "check_lora_settings",
    "wrap_with_lora",
]

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


def lora_modules(model: nn.Module) -> Iterator[tuple[str, LoRALinear]]:
    """``(name, module)`` for every :class:`LoRALinear` inside ``model``."""
    for name, module in model.named_modules():
        if isinstance(module, LoRALinear):
            yield name, module


def _matches(name: str, targets: Sequence[str]) -> bool:
    # "c_proj" matches "transformer.h.0.attn.c_proj" and "...mlp.c_proj"; "attn.c_proj" only the first.
    return any(name == t or name.endswith("." + t) for t in targets)


def wrap_with_lora(model: nn.Module, name: str, r: int, alpha: float,
                   dropout: float = 0.0) -> LoRALinear:
    """Put a :class:`LoRALinear` around the ``nn.Linear`` called ``name`` inside ``model``."""
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    layer = LoRALinear(getattr(parent, child), r, alpha, dropout)
    setattr(parent, child, layer)
    return layer


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
    for name in names:  # the new A, B are the only trainable parameters
        wrap_with_lora(model, name, r, alpha, dropout)
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
    params = list(model.parameters())  # a shared (tied) tensor is yielded once
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)
