"""Named run configurations ("presets") for the CLI and the lessons.

A preset bundles three things: which data to train on, the model's shape and the trainer's
settings. ``llmcourse train --preset NAME --set key=value`` starts from one and overrides single
fields; a bare key is looked up in the sections ``data``, ``model`` and ``train`` and must
belong to exactly one of them, or is addressed explicitly as ``model.n_layer=8``. A key that
no section has is an error with a did-you-mean.

Example:
    >>> p = get_preset("shakespeare-char-cpu")
    >>> p["model"]["n_layer"], p["train"]["batch_size"], p["model"]["block_size"]
    (4, 12, 64)
    >>> p = apply_overrides(p, ["max_iters=10", "model.dropout=0.1"])
    >>> p["train"]["max_iters"], p["model"]["dropout"]
    (10, 0.1)
"""

from __future__ import annotations

import ast
import copy
import difflib
from typing import Any

Preset = dict[str, dict[str, Any]]

_PRESETS: dict[str, Preset] = {
    # nanoGPT's CPU recipe for character-level Tiny Shakespeare: a few minutes on a laptop.
    "shakespeare-char-cpu": {
        "data": {"dataset": "shakespeare", "tokenizer": "char"},
        "model": {"n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 64, "dropout": 0.0},
        "train": {
            "batch_size": 12, "max_iters": 2000, "learning_rate": 1e-3, "min_lr": 1e-4,
            "lr_decay_iters": 2000, "warmup_iters": 100, "eval_interval": 250, "eval_iters": 20,
            "log_interval": 50, "weight_decay": 0.1, "beta2": 0.99, "grad_clip": 1.0,
            "out_dir": "out/shakespeare-char-cpu",
        },
    },
    # Our fastest CPU route to a validation loss of 1.88 on character-level Tiny Shakespeare:
    # nanoGPT's CPU shape with RoPE, RMSNorm, SwiGLU and no biases, twice the learning rate and
    # a schedule that ends at 800 steps. Measured by benchmarks/bench_train.py (race).
    "shakespeare-char-fast": {
        "data": {"dataset": "shakespeare", "tokenizer": "char"},
        "model": {
            "n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 64, "dropout": 0.0,
            "pos": "rope", "norm": "rmsnorm", "mlp": "swiglu", "bias": False,
        },
        "train": {
            "batch_size": 12, "max_iters": 800, "learning_rate": 2e-3, "min_lr": 1e-4,
            "lr_decay_iters": 800, "warmup_iters": 50, "eval_interval": 200, "eval_iters": 20,
            "log_interval": 50, "weight_decay": 0.1, "beta2": 0.99, "grad_clip": 1.0,
            "out_dir": "out/shakespeare-char-fast",
        },
    },
    # The real character-level run (nanoGPT's shakespeare_char config): for a GPU.
    "shakespeare-char": {
        "data": {"dataset": "shakespeare", "tokenizer": "char"},
        "model": {"n_layer": 6, "n_head": 6, "n_embd": 384, "block_size": 256, "dropout": 0.2},
        "train": {
            "batch_size": 64, "max_iters": 5000, "learning_rate": 1e-3, "min_lr": 1e-4,
            "lr_decay_iters": 5000, "warmup_iters": 100, "eval_interval": 250, "eval_iters": 200,
            "log_interval": 10, "weight_decay": 0.1, "beta2": 0.99, "grad_clip": 1.0,
            "out_dir": "out/shakespeare-char",
        },
    },
    # A ~30M-parameter model on TinyStories with the GPT-2 tokenizer (its T4 time: llmcourse.gpu_figures).
    "tinystories": {
        "data": {"dataset": "tinystories", "tokenizer": "gpt2"},
        "model": {"n_layer": 6, "n_head": 6, "n_embd": 384, "block_size": 256, "dropout": 0.0},
        "train": {
            "batch_size": 64, "max_iters": 5000, "learning_rate": 6e-4, "min_lr": 6e-5,
            "lr_decay_iters": 5000, "warmup_iters": 200, "eval_interval": 500, "eval_iters": 100,
            "log_interval": 10, "weight_decay": 0.1, "beta2": 0.95, "grad_clip": 1.0,
            "out_dir": "out/tinystories",
        },
    },
    # GPT-2 small's shape (124M parameters) with its published training hyperparameters.
    "gpt2-124m": {
        "data": {"dataset": "tinystories", "tokenizer": "gpt2"},
        "model": {
            "n_layer": 12, "n_head": 12, "n_embd": 768, "block_size": 1024, "dropout": 0.0,
            "vocab_size": 50304,
        },
        "train": {
            "batch_size": 12, "grad_accum_steps": 40, "max_iters": 600000,
            "learning_rate": 6e-4, "min_lr": 6e-5, "lr_decay_iters": 600000,
            "warmup_iters": 2000, "eval_interval": 1000, "eval_iters": 200, "log_interval": 10,
            "weight_decay": 0.1, "beta2": 0.95, "grad_clip": 1.0, "out_dir": "out/gpt2-124m",
        },
    },
}

SECTIONS = ("data", "model", "train")


def list_presets() -> list[str]:
    """Names of the presets, sorted."""
    return sorted(_PRESETS)


def get_preset(name: str) -> Preset:
    """A deep copy of the preset called ``name``.

    Raises:
        KeyError: for an unknown name; the message lists the known ones.
    """
    try:
        return copy.deepcopy(_PRESETS[name])
    except KeyError:
        raise KeyError(
            f"unknown preset {name!r}; choose one of: {', '.join(list_presets())}"
        ) from None


TEXT_SETTINGS = {"gelu_approximate"}
"""Settings whose values are words, one of them ``none``: ``--set`` keeps their text as it is."""


def parse_value(text: str) -> Any:
    """Turn the text of ``--set key=value`` into a Python value.

    Numbers, booleans (``true``/``false`` too), ``None`` and quoted strings are parsed; anything
    else stays a string.

    >>> parse_value("3e-4"), parse_value("true"), parse_value("none"), parse_value("out/x")
    (0.0003, True, None, 'out/x')
    """
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _did_you_mean(word: str, candidates: Any) -> str:
    close = difflib.get_close_matches(word, sorted(candidates), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def apply_overrides(preset: Preset, overrides: list[str],
                    known: dict[str, set[str]] | None = None) -> Preset:
    """Return a copy of ``preset`` with ``key=value`` overrides applied.

    ``section.key`` addresses one section (``data``, ``model`` or ``train``). A bare key is
    looked up in every section: among ``known[section]`` (all valid settings of the section,
    e.g. the fields of ``TrainConfig``; see :func:`llmcourse.runs.known_fields`) when ``known``
    is given, else among the keys the preset sets. It must match exactly one section.

    Raises:
        ValueError: for text without ``=``, an unknown section, a key no section has (with a
            did-you-mean) or, for a bare key, one that several sections have.

    >>> known = {"train": {"max_iters", "out_dir"}, "model": {"n_layer"}, "data": {"tokenizer"}}
    >>> apply_overrides({"train": {}}, ["n_layer=2"], known)["model"]
    {'n_layer': 2}
    >>> apply_overrides({}, ["model.gelu_approximate=none"])["model"]
    {'gelu_approximate': 'none'}
    >>> apply_overrides({}, ["data.tokeniser=gpt2"], known)
    Traceback (most recent call last):
    ...
    ValueError: --set data.tokeniser=gpt2: data has no setting 'tokeniser'; did you mean 'tokenizer'?
    """
    out = copy.deepcopy(preset)

    def keys_of(section: str) -> set[str]:
        if known is not None:
            return set(known.get(section, ()))
        return set(out.get(section, {}))

    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not of the form key=value (e.g. max_iters=500)")
        key, _, raw = item.partition("=")
        key = key.strip()
        if not key or key.endswith(".") or key.startswith("."):
            raise ValueError(f"--set {item}: the setting's name is missing; write --set name=value "
                             "(e.g. --set max_iters=500 or --set model.n_layer=4)")
        value = parse_value(raw)
        if key.rpartition(".")[2] in TEXT_SETTINGS:
            value = raw.strip()   # gelu_approximate=none is the word "none", not Python's None
        if "." in key:
            section, _, name = key.partition(".")
            if section not in SECTIONS:
                raise ValueError(
                    f"--set {item}: unknown section {section!r}; use one of "
                    f"{', '.join(SECTIONS)}{_did_you_mean(section, SECTIONS)}"
                )
            if known is not None and name not in keys_of(section):
                elsewhere = [s for s in SECTIONS if name in keys_of(s)]
                hint = (f"; it is a {elsewhere[0]} setting: --set {elsewhere[0]}.{name}=..."
                        if elsewhere else _did_you_mean(name, keys_of(section)))
                raise ValueError(f"--set {item}: {section} has no setting {name!r}{hint}")
            out.setdefault(section, {})[name] = value
            continue
        matches = [s for s in SECTIONS if key in keys_of(s)]
        if len(matches) > 1:
            raise ValueError(
                f"--set {item}: {key!r} is a setting of {' and '.join(matches)}; name the "
                f"section: " + " or ".join(f"--set {s}.{key}=..." for s in matches)
            )
        if not matches:
            every = set().union(*(keys_of(s) for s in SECTIONS))
            raise ValueError(
                f"--set {item}: no section has a setting {key!r}{_did_you_mean(key, every)}"
                + ("" if known is not None else
                   f" (name its section to add it, e.g. train.{key}=...)")
            )
        out.setdefault(matches[0], {})[key] = value
    return out
