"""One small validator for settings at the package's edges (configs, public entry points).

Every configuration (:class:`~llmcourse.model.GPTConfig`, :class:`~llmcourse.train.TrainConfig`,
the generation settings) checks its fields once, when it is made, with :func:`check_field`; the
code behind them trusts what it is given. The configs share :class:`DictConfig`, the one
``to_dict`` / ``from_dict`` / ``replace``. The error names the field, the rule and the value::

    GPTConfig.vocab_size must be a positive integer, got 0

Example:
    >>> check_field("top_k", 5, int, low=1)
    5
    >>> check_field("top_k", 0, int, low=1, what="tokens to keep")
    Traceback (most recent call last):
    ...
    ValueError: top_k must be >= 1 (tokens to keep), got 0
    >>> check_field("norm", "batchnorm", choices=("layernorm", "rmsnorm"), owner="GPTConfig")
    Traceback (most recent call last):
    ...
    ValueError: GPTConfig.norm must be one of 'layernorm', 'rmsnorm', got 'batchnorm'
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, TypeVar

__all__ = ["check_field", "DictConfig"]

_KIND_NAMES = {int: "an integer", float: "a finite number", bool: "True or False",
               str: "a non-empty string"}


def _range_text(low: Any, high: Any, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high}"
    return ""


def _is_kind(value: Any, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):  # True is an int to Python, never a count or a rate here
        return False
    if kind is int:
        return isinstance(value, numbers.Integral)
    if kind is float:
        return isinstance(value, numbers.Real) and math.isfinite(value)
    if kind is str:
        return isinstance(value, str) and value != ""
    return isinstance(value, kind)


def check_field(
    name: str,
    value: Any,
    kind: type | None = None,
    *,
    low: Any = None,
    high: Any = None,
    low_open: bool = False,
    high_open: bool = False,
    choices: tuple[Any, ...] | None = None,
    optional: bool = False,
    owner: str | None = None,
    rule: str | None = None,
    what: str | None = None,
) -> Any:
    """Return ``value`` (numpy scalars as ``int``/``float``) or raise one clear ``ValueError``.

    Args:
        name: the field's name, shown in the message (prefixed by ``owner.`` when given).
        value: what the user gave.
        kind: ``int``, ``float`` (finite), ``bool`` or ``str``; ``None`` checks only ``choices``.
        low, high: inclusive bounds (exclusive with ``low_open`` / ``high_open``).
        choices: the allowed values.
        optional: ``None`` is allowed (and returned).
        rule: the requirement as the message states it, instead of the one built from the
            kind and bounds.
        what: what the field means, added in brackets.
    """
    if optional and value is None:
        return None
    bounds = _range_text(low, high, low_open, high_open)
    ok = True
    if choices is not None:
        ok = value in choices
        default = "one of " + ", ".join(repr(c) for c in choices)
    elif kind is not None and not _is_kind(value, kind):
        ok = False
        default = f"{_KIND_NAMES.get(kind, kind.__name__)} {bounds}".strip()
    else:
        default = bounds
        if low is not None and (value < low or (low_open and value == low)):
            ok = False
        if high is not None and (value > high or (high_open and value == high)):
            ok = False
    if not ok:
        label = f"{owner}.{name}" if owner else name
        meaning = f" ({what})" if what else ""
        none = " or None" if optional else ""
        raise ValueError(f"{label} must be {rule or default}{none}{meaning}, got {value!r}")
    if kind is int:
        return int(value)
    if kind is float:
        return float(value)
    return value


_C = TypeVar("_C", bound="DictConfig")


class DictConfig:
    """``to_dict`` / ``from_dict`` / ``replace`` for a dataclass config (validated when made).

    >>> from llmcourse.model import GPTConfig
    >>> cfg = GPTConfig(vocab_size=65, block_size=32, n_layer=2, n_head=2, n_embd=16)
    >>> GPTConfig.from_dict(cfg.to_dict()) == cfg, cfg.replace(n_layer=4).n_layer
    (True, 4)
    >>> GPTConfig.from_dict({"n_layers": 4})
    Traceback (most recent call last):
    ...
    ValueError: unknown GPTConfig field(s) ['n_layers']; known fields are [...] (pass strict=False to ignore extra keys)
    """

    def to_dict(self) -> dict[str, Any]:
        """A plain ``dict`` of the fields (JSON- and checkpoint-safe)."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[_C], data: dict[str, Any], *, strict: bool = True) -> _C:
        """Build a config from a dict such as :meth:`to_dict` made; missing keys take defaults.

        An unknown key raises ``ValueError`` (usually a typo); with ``strict=False`` unknown
        keys are ignored (a checkpoint from a newer version, a dict holding other settings).
        """
        if not isinstance(data, dict):
            raise TypeError(f"{cls.__name__}.from_dict expects a dict, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - names)
        if unknown and strict:
            raise ValueError(f"unknown {cls.__name__} field(s) {unknown}; known fields are "
                             f"{sorted(names)} (pass strict=False to ignore extra keys)")
        return cls(**{k: v for k, v in data.items() if k in names})

    def replace(self: _C, **changes: Any) -> _C:
        """A copy with some fields changed (checked again)."""
        return type(self).from_dict({**self.to_dict(), **changes})
