"""The settings of a sweep: a grid or named variants, checked and expanded into runs.

``--grid model.n_embd=64,128`` and ``--variant rms:model.norm=rmsnorm`` are parsed here
(:func:`parse_grid`, :func:`parse_variant`), their keys resolved against the presets' settings
with a did-you-mean (:func:`resolve_key`), and expanded into one ``(name, settings)`` pair
per point (:func:`expand_settings`). No training, no files: :mod:`llmcourse.sweep` runs them.

>>> expand_settings({"n_layer": [1, 2]})
[('n_layer=1', {'model.n_layer': 1}), ('n_layer=2', {'model.n_layer': 2})]
>>> setting_changes({"train": {"max_iters": 100}}, {"train": {"max_iters": 200}})
['train.max_iters 100 -> 200']
"""

from __future__ import annotations

import copy
import difflib
import itertools
import json
import re
from typing import Any, Iterable, Sequence

#: Settings a sweep manages itself: the seed (``seeds=``) and each run's folder.
_MANAGED = {"train.seed": "give the seeds with seeds= (CLI: --seeds)",
            "train.out_dir": "the sweep names each run's folder under its out_dir",
            "train.overwrite": "a sweep never replaces a run; give another out_dir",
            "train.init_from": "a sweep resumes interrupted runs by itself"}


def _known() -> dict[str, set[str]]:
    from llmcourse.runs import known_fields

    return known_fields()


def resolve_key(key: str, known: dict[str, set[str]] | None = None) -> str:
    """``"section.name"`` for a setting given bare (``n_embd``) or with its section.

    >>> resolve_key("n_embd"), resolve_key("train.max_iters")
    ('model.n_embd', 'train.max_iters')
    >>> resolve_key("n_emb")
    Traceback (most recent call last):
    ...
    ValueError: unknown setting 'n_emb'; did you mean 'n_embd'?
    """
    from llmcourse.presets import SECTIONS

    known = _known() if known is None else known
    key = key.strip()
    if "." in key:
        section, _, name = key.partition(".")
        if section not in SECTIONS:
            close = difflib.get_close_matches(section, SECTIONS, n=1, cutoff=0.6)
            raise ValueError(f"unknown section {section!r} in {key!r}; use one of "
                             f"{', '.join(SECTIONS)}" + (f"; did you mean {close[0]!r}?" if close else ""))
        if name not in known[section]:
            close = difflib.get_close_matches(name, sorted(known[section]), n=1, cutoff=0.6)
            raise ValueError(f"unknown setting {key!r}: {section} has no {name!r}"
                             + (f"; did you mean '{section}.{close[0]}'?" if close else ""))
        full = key
    else:
        matches = [s for s in SECTIONS if key in known[s]]
        if len(matches) > 1:
            raise ValueError(f"{key!r} is a setting of {' and '.join(matches)}; name the section, "
                             "e.g. " + " or ".join(f"{s}.{key}" for s in matches))
        if not matches:
            every = sorted(set().union(*known.values()))
            close = difflib.get_close_matches(key, every, n=1, cutoff=0.6)
            raise ValueError(f"unknown setting {key!r}" + (f"; did you mean {close[0]!r}?" if close else
                                                            "; see llmcourse train --print-config"))
        full = f"{matches[0]}.{key}"
    if full in _MANAGED:
        raise ValueError(f"{full} cannot be swept or set in a sweep: {_MANAGED[full]}")
    return full


def _label(params: dict[str, Any]) -> str:
    """``"n_embd=64,lr=0.001"``: the short names, or the full ones where two would clash."""
    names = [k.partition(".")[2] for k in params]
    return ",".join(f"{n if names.count(n) == 1 else k}={v}" for (k, v), n in zip(params.items(), names))


def expand_settings(grid: dict[str, Sequence[Any]] | None = None,
                    variants: Sequence[tuple[str, dict[str, Any]]] | None = None
                    ) -> list[tuple[str, dict[str, Any]]]:
    """The settings of a sweep: ``[(name, {"section.key": value, ...}), ...]`` in order.

    ``grid`` gives the cross product of its value lists (the first key varies slowest);
    ``variants`` are named settings. Both together: every variant with every grid point; neither:
    one setting, ``"base"``, the preset as it is.

    Raises:
        ValueError: an unknown key (with a did-you-mean), an empty or repeated value list, a
            variant without a name, or two settings with the same name.
    """
    known = _known()
    grid = dict(grid or {})
    axes: list[list[tuple[str, Any]]] = []
    for key, values in grid.items():
        full = resolve_key(key, known)
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            values = [values]
        values = list(values)
        if not values:
            raise ValueError(f"the grid gives no values for {key!r}; give at least one, "
                             f"e.g. {key}=64,128")
        if len({repr(v) for v in values}) < len(values):
            raise ValueError(f"the grid repeats a value of {key!r} ({values}); give each once "
                             "(seeds, not repeats, measure the spread)")
        if any(full == a[0][0] for a in axes):
            raise ValueError(f"the grid names {full} twice; give all its values in one list")
        axes.append([(full, v) for v in values])
    points = [dict(p) for p in itertools.product(*axes)] if axes else [{}]

    named: list[tuple[str, dict[str, Any]]] = []
    for item in variants or []:
        if not (isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[1], dict)):
            raise ValueError(f"a variant is (name, {{key: value}}), got {item!r}")
        name, params = str(item[0]).strip(), item[1]
        if not name:
            raise ValueError("a variant needs a name, e.g. ('rmsnorm', {'model.norm': 'rmsnorm'})")
        resolved = {resolve_key(k, known): v for k, v in params.items()}
        for axis in axes:  # the grid's value would silently replace the variant's
            key = axis[0][0]
            if key in resolved:
                raise ValueError(
                    f"the variant {name!r} sets {key}={resolved[key]!r} and the grid sweeps "
                    f"{key} ({', '.join(repr(v) for _, v in axis)}); give its values in one "
                    "place, the grid or the variants")
        named.append((name, resolved))

    settings: list[tuple[str, dict[str, Any]]] = []
    for vname, vparams in named or [("", {})]:
        for point in points:
            params = dict(vparams, **point)
            label = ",".join(x for x in (vname, _label(point)) if x) or "base"
            settings.append((label, params))
    names = [s[0] for s in settings]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"two settings are both named {twice[0]!r}; give each variant its own name")
    return settings


def parse_grid(items: Sequence[str]) -> dict[str, list[Any]]:
    """``["model.n_embd=64,128"]`` (the CLI's ``--grid``) as ``{"model.n_embd": [64, 128]}``.

    >>> parse_grid(["n_embd=64,128", "learning_rate=1e-3,3e-3"])
    {'n_embd': [64, 128], 'learning_rate': [0.001, 0.003]}
    """
    from llmcourse.presets import parse_value

    grid: dict[str, list[Any]] = {}
    for item in items:
        key, eq, raw = item.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"--grid {item!r} is not of the form key=v1,v2 (e.g. model.n_embd=64,128)")
        values = [parse_value(v) for v in raw.split(",") if v.strip()]
        if not values:
            raise ValueError(f"--grid {item!r} gives no values; list them, e.g. {key.strip()}=64,128")
        if key.strip() in grid:
            raise ValueError(f"--grid names {key.strip()!r} twice; give all its values in one --grid")
        grid[key.strip()] = values
    return grid


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """``"rms:model.norm=rmsnorm,lr=2e-3"`` (the CLI's ``--variant``) as a named setting.

    >>> parse_variant("rms:model.norm=rmsnorm,learning_rate=2e-3")
    ('rms', {'model.norm': 'rmsnorm', 'learning_rate': 0.002})
    >>> parse_variant("baseline")
    ('baseline', {})
    """
    from llmcourse.presets import parse_value

    name, _, rest = text.partition(":")
    if not name.strip():
        raise ValueError(f"--variant {text!r} needs a name: NAME:key=value[,key=value]")
    params: dict[str, Any] = {}
    for part in (p for p in rest.split(",") if p.strip()):
        key, eq, raw = part.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"--variant {text!r}: {part!r} is not key=value")
        params[key.strip()] = parse_value(raw)
    return name.strip(), params


def parse_seeds(seeds: int | str | Sequence[int]) -> list[int]:
    """``3`` -> ``[0, 1, 2]``; a list (or ``"0,5,7"``) is kept as given.

    >>> parse_seeds(3), parse_seeds("1,5")
    ([0, 1, 2], [1, 5])
    """
    if isinstance(seeds, str):
        parts = [p.strip() for p in seeds.split(",") if p.strip()]
        try:
            numbers = [int(p) for p in parts]
        except ValueError:
            raise ValueError(f"seeds {seeds!r}: give a count (3) or a list of whole numbers (0,1,5)") from None
        seeds = numbers[0] if len(parts) == 1 and "," not in seeds else numbers
    if isinstance(seeds, bool):
        raise ValueError(f"seeds={seeds!r}: give a count (e.g. 3) or a list of seeds")
    if isinstance(seeds, int):
        if seeds < 1:
            raise ValueError(f"seeds={seeds}: a sweep needs at least one seed (e.g. seeds=3)")
        return list(range(seeds))
    out = list(seeds)
    if not out or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in out):
        raise ValueError(f"seeds={out!r}: give a count (e.g. 3) or a non-empty list of whole numbers >= 0")
    if len(set(out)) < len(out):
        raise ValueError(f"seeds={out!r} repeats a seed; give each once")
    return out


def base_preset(preset_name: str, overrides: Any) -> dict[str, dict[str, Any]]:
    """The preset with the sweep-wide overrides (a ``{section: {...}}`` dict, flat keys or
    ``["key=value", ...]`` as ``--set`` takes them)."""
    from llmcourse.presets import apply_overrides, get_preset

    try:
        preset = get_preset(preset_name)
    except KeyError as exc:
        raise ValueError(exc.args[0]) from None
    known = _known()
    if overrides is None:
        return preset
    if isinstance(overrides, (list, tuple)):
        for item in overrides:
            key = str(item).partition("=")[0]
            if "=" in str(item):
                resolve_key(key, known)  # refuses the settings the sweep manages
        return apply_overrides(preset, list(overrides), known=known)
    if not isinstance(overrides, dict):
        raise ValueError(f"overrides must be a dict or a list of 'key=value', got {type(overrides).__name__}")
    flat: dict[str, Any] = {}
    for key, value in overrides.items():
        if isinstance(value, dict):
            for name, v in value.items():
                flat[resolve_key(f"{key}.{name}", known)] = v
        else:
            flat[resolve_key(key, known)] = value
    return with_settings(preset, flat)


def with_settings(preset: dict[str, dict[str, Any]],
                  params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A copy of ``preset`` with ``{"section.key": value}`` settings applied."""
    out = copy.deepcopy(preset)
    for full, value in params.items():
        section, _, name = full.partition(".")
        out.setdefault(section, {})[name] = value
    return out


def jsonable(obj: Any) -> Any:
    """``obj`` as it reads back from JSON (tuples as lists, paths as strings)."""
    return json.loads(json.dumps(obj, default=str))


def folder_name(label: str) -> str:
    """A setting's name as a folder name: characters other than ``A-Za-z0-9._=,+-`` become ``_``."""
    safe = re.sub(r"[^A-Za-z0-9._=,+-]", "_", label)
    return safe if safe not in ("", ".", "..") else "setting"


def without_folder(preset: dict[str, Any]) -> dict[str, Any]:
    """A run's preset without its folder: what must match for a run to be this sweep's."""
    p = copy.deepcopy(preset)
    p.get("train", {}).pop("out_dir", None)
    return p


def setting_changes(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """``["section.key old -> new", ...]``: the settings that differ between two presets."""
    changes = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key, "(unset)"), new.get(key, "(unset)")
        name = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            changes += setting_changes(a, b, prefix=f"{name}.")
        elif a != b:
            changes.append(f"{name} {a!r} -> {b!r}")
    return changes
