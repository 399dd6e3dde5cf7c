"""Whole runs: from a preset to a trained checkpoint, and from a checkpoint back to a model.

This is the glue the CLI and the later lessons use, kept out of ``cli.py`` so it can be called
from Python:

- :func:`train_preset` - prepare the preset's data, build the GPT, train it with the
  :class:`~llmcourse.train.Trainer`, and write ``run.json`` (what was trained on what) next to
  the checkpoints;
- :func:`load_trained` - rebuild the model and its tokenizer from a run directory or a
  checkpoint file, loading the file with ``weights_only=True``.

Example:
    >>> from llmcourse.presets import get_preset, apply_overrides           # doctest: +SKIP
    >>> p = apply_overrides(get_preset("shakespeare-char-cpu"), ["max_iters=50"])  # doctest: +SKIP
    >>> history = train_preset(p)                                            # doctest: +SKIP
    >>> model, tok, info = load_trained(p["train"]["out_dir"])               # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

RUN_FILE = "run.json"


@dataclass
class TrainedRun:
    """What :func:`load_trained` found besides the model and tokenizer."""

    checkpoint: Path
    iter_num: int
    best_val_loss: float | None
    run: dict[str, Any]


def _check_fields(section: str, values: dict[str, Any], cls: type) -> None:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(
            f"unknown {section} setting(s) {unknown}; valid {section} settings are: "
            f"{', '.join(sorted(known))}"
        )


def known_fields() -> dict[str, set[str]]:
    """Every setting a preset section can hold: for ``--set`` with a bare key."""
    from llmcourse.model import GPTConfig
    from llmcourse.train import TrainConfig

    return {
        "train": {f.name for f in fields(TrainConfig)},
        "model": {f.name for f in fields(GPTConfig)},
        "data": {"dataset", "tokenizer", "out_dir", "val_fraction", "prepared_dir"},
    }


def build_configs(preset: dict[str, dict[str, Any]], vocab_size: int) -> tuple[Any, Any]:
    """``(GPTConfig, TrainConfig)`` from a preset, with the data's vocabulary size.

    The model's ``vocab_size`` may be set larger than the tokenizer's (GPT-2 pads 50257 to
    50304 for speed); smaller is an error, since some ids could not be embedded.
    """
    from llmcourse.model import GPTConfig
    from llmcourse.train import TrainConfig

    model_kw = dict(preset.get("model", {}))
    train_kw = dict(preset.get("train", {}))
    _check_fields("model", model_kw, GPTConfig)
    _check_fields("train", train_kw, TrainConfig)
    model_kw.setdefault("vocab_size", vocab_size)
    if model_kw["vocab_size"] < vocab_size:
        raise ValueError(
            f"model.vocab_size={model_kw['vocab_size']} is smaller than the tokenizer's "
            f"vocabulary ({vocab_size}); remove the override or make it >= {vocab_size}"
        )
    train_kw["block_size"] = model_kw.get("block_size", train_kw.get("block_size"))
    return GPTConfig(**model_kw), TrainConfig(**train_kw)


def prepare_preset_data(preset: dict[str, dict[str, Any]], progress: bool = True) -> Any:
    """Prepare (or reuse) the token files named by the preset's ``data`` section."""
    from llmcourse.data import open_prepared, prepare

    data = dict(preset.get("data", {}))
    if data.get("prepared_dir"):
        return open_prepared(data["prepared_dir"])
    if "dataset" not in data:
        raise ValueError("the preset's data section needs a 'dataset' (e.g. data.dataset=shakespeare)")
    return prepare(
        data["dataset"],
        data.get("tokenizer", "gpt2"),
        out_dir=data.get("out_dir"),
        val_fraction=data.get("val_fraction", 0.1),
        progress=progress,
    )


def train_preset(preset: dict[str, dict[str, Any]], *, resume: bool = False,
                 progress: bool = True) -> list[dict[str, Any]]:
    """Prepare data, build a GPT and train it as the preset says; return the history."""
    from llmcourse.model import GPT
    from llmcourse.train import Trainer

    prep = prepare_preset_data(preset, progress=progress)
    model_cfg, train_cfg = build_configs(preset, prep.vocab_size)
    if resume:
        train_cfg.init_from = "resume"
    train_cfg.progress = progress
    out_dir = Path(train_cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    generator = torch.Generator()
    generator.manual_seed(train_cfg.seed)
    from llmcourse.device import pick_device

    device = pick_device(train_cfg.device)  # batches are made where the trainer will train
    get_batch = prep.get_batch_fn(train_cfg.batch_size, model_cfg.block_size, device=device,
                                  generator=generator)

    tokenizer = prep.tokenizer()
    run_info = {
        "preset": preset,
        "prepared_dir": str(prep.path),
        "tokenizer": tokenizer.spec(),
        "model_config": model_cfg.to_dict(),
        "train_config": train_cfg.to_dict(),
    }
    _write_json_atomic(out_dir / RUN_FILE, run_info)

    torch.manual_seed(train_cfg.seed)
    model = GPT(model_cfg)
    trainer = Trainer(model, train_cfg, get_batch, generator=generator)
    return trainer.fit()


def _write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def find_checkpoint(path: str | os.PathLike[str], prefer: str = "best") -> Path:
    """The checkpoint file for ``path``: the file itself, or ``best.pt``/``ckpt.pt`` in a dir."""
    p = Path(path)
    if p.is_file():
        return p
    if not p.is_dir():
        raise FileNotFoundError(
            f"no checkpoint at {p}: give a run directory (holding best.pt or ckpt.pt) or a .pt file; "
            "train one with `llmcourse train --preset shakespeare-char-cpu`"
        )
    order = ["best.pt", "ckpt.pt"] if prefer == "best" else ["ckpt.pt", "best.pt"]
    for name in order:
        if (p / name).is_file():
            return p / name
    raise FileNotFoundError(
        f"{p} holds no best.pt or ckpt.pt; it is not a finished llmcourse run directory"
    )


def load_trained(path: str | os.PathLike[str], device: str | torch.device = "cpu",
                 prefer: str = "best") -> tuple[Any, Any, TrainedRun]:
    """Rebuild ``(model, tokenizer, info)`` from a run directory or a checkpoint file.

    The checkpoint is read with ``torch.load(weights_only=True)``; the tokenizer comes from the
    ``run.json`` beside it. The model is returned in eval mode on ``device``.
    """
    from llmcourse.model import GPT, GPTConfig
    from llmcourse.tokenizers import get_tokenizer
    from llmcourse.train import load_checkpoint, load_model_state

    ckpt_path = find_checkpoint(path, prefer=prefer)
    ckpt = load_checkpoint(ckpt_path, map_location="cpu")
    if not ckpt.get("model_config"):
        raise ValueError(f"{ckpt_path} carries no model_config; it was not written by llmcourse's Trainer")
    model = GPT(GPTConfig.from_dict(ckpt["model_config"]))
    load_model_state(model, ckpt["model"])
    model.to(device).eval()

    run_file = ckpt_path.parent / RUN_FILE
    if not run_file.is_file():
        raise FileNotFoundError(
            f"{run_file} is missing: it records the tokenizer the model was trained with. "
            "Runs started with `llmcourse train` write it; copy it next to the checkpoint."
        )
    run = json.loads(run_file.read_text(encoding="utf-8"))
    tokenizer = get_tokenizer(run["tokenizer"])
    best = ckpt.get("best_val_loss")
    info = TrainedRun(ckpt_path, int(ckpt.get("iter_num", 0)),
                      None if best is None else float(best), run)
    return model, tokenizer, info
