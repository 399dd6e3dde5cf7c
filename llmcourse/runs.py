"""Whole runs: from a preset to a trained checkpoint, and from a checkpoint back to a model.

This is the glue the CLI and the later lessons use, kept out of ``llmcourse.cli`` so it can be called
from Python:

- :func:`train_preset` - prepare the preset's data, build the GPT, train it with the
  :class:`~llmcourse.train.Trainer`, and write ``run.json`` (what was trained on what) next to
  the checkpoints;
- :func:`load_trained` - rebuild the model and its tokenizer from a run directory or a
  checkpoint file, loading the file with ``weights_only=True``;
- :func:`check_run_data` - the prepared data a run trained on, refused when it changed
  under the run (``run.json`` records its fingerprint, :func:`data_record`).

No refused or failed call changes an earlier run: :func:`train_preset` makes every check
before it writes anything (see the book's page on faults).

Example:
    >>> from llmcourse.presets import get_preset, apply_overrides           # doctest: +SKIP
    >>> p = apply_overrides(get_preset("shakespeare-char-cpu"), ["max_iters=50"])  # doctest: +SKIP
    >>> history = train_preset(p)                                            # doctest: +SKIP
    >>> model, tok, info = load_trained(p["train"]["out_dir"])               # doctest: +SKIP
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

from llmcourse.atomic import folder_lock, remove_stale_temp_files, write_atomic, write_json_atomic
from llmcourse.runs_data import (DataChanged, check_run_data, data_changes,  # noqa: F401
                                 data_record, read_json)

RUN_FILE = "run.json"
#: Settings of the ``data`` section of a preset.
DATA_FIELDS = ("dataset", "tokenizer", "val_fraction", "prepared_dir")
#: ``TrainConfig`` fields a preset does not set: ``block_size`` is the model's
#: (``model.block_size``, one source of truth for the model and its batches).
_DERIVED_TRAIN_FIELDS = {"block_size"}


class NothingToDo(Exception):
    """The run asked for is already done (``--resume`` to an iteration already reached)."""


@dataclass
class TrainedRun:
    """What :func:`load_trained` found besides the model and tokenizer."""

    checkpoint: Path
    iter_num: int
    best_val_loss: float | None
    run: dict[str, Any]


def _check_fields(section: str, values: dict[str, Any], known: set[str]) -> None:
    unknown = sorted(set(values) - known)
    if unknown:
        import difflib

        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
            hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ValueError(
            f"unknown {section} setting(s) {', '.join(hints)}; valid {section} settings are: "
            f"{', '.join(sorted(known))}"
        )


def known_fields() -> dict[str, set[str]]:
    """Every setting a preset section can hold: for ``--set``, bare or ``section.key``."""
    from llmcourse.model import GPTConfig
    from llmcourse.train import TrainConfig

    return {
        "train": {f.name for f in fields(TrainConfig)} - _DERIVED_TRAIN_FIELDS,
        "model": {f.name for f in fields(GPTConfig)},
        "data": set(DATA_FIELDS),
    }


def build_configs(preset: dict[str, dict[str, Any]], vocab_size: int) -> tuple[Any, Any]:
    """``(GPTConfig, TrainConfig)`` from a preset, with the data's vocabulary size.

    The model's ``vocab_size`` may be set larger than the tokenizer's (GPT-2 pads 50257 to
    50304 for speed); smaller is an error, since some ids could not be embedded. The
    trainer's ``block_size`` is the model's: ``model.block_size`` is the one setting of the
    context length.
    """
    from llmcourse.model import GPTConfig
    from llmcourse.train import TrainConfig

    known = known_fields()
    model_kw = dict(preset.get("model", {}))
    train_kw = dict(preset.get("train", {}))
    if "block_size" in train_kw:
        raise ValueError(
            "train.block_size is not a setting of its own: the batches use the model's context "
            "length. Set model.block_size (or a bare block_size) instead."
        )
    _check_fields("model", model_kw, known["model"])
    _check_fields("train", train_kw, known["train"])
    _check_fields("data", dict(preset.get("data", {})), known["data"])
    model_kw.setdefault("vocab_size", vocab_size)
    if model_kw["vocab_size"] < vocab_size:
        raise ValueError(
            f"model.vocab_size={model_kw['vocab_size']} is smaller than the tokenizer's "
            f"vocabulary ({vocab_size}); remove the override or make it >= {vocab_size}"
        )
    model_cfg = GPTConfig(**model_kw)
    train_kw["block_size"] = model_cfg.block_size
    return model_cfg, TrainConfig(**train_kw)


def prepare_preset_data(preset: dict[str, dict[str, Any]], progress: bool = True) -> Any:
    """Prepare (or reuse) the token files named by the preset's ``data`` section.

    ``data.prepared_dir`` chooses the folder (default: one per dataset, tokenizer and split
    in the cache); a folder holding data prepared with other settings is refused.
    """
    from llmcourse.data import prepare

    data = dict(preset.get("data", {}))
    _check_fields("data", data, set(DATA_FIELDS))
    if "dataset" not in data:
        raise ValueError("the preset's data section needs a 'dataset' (e.g. data.dataset=shakespeare)")
    return prepare(
        data["dataset"],
        data.get("tokenizer", "gpt2"),
        out_dir=data.get("prepared_dir"),
        val_fraction=data.get("val_fraction", 0.1),
        progress=progress,
        verbose=progress,  # quiet runs (lessons, tests) print the same whatever the cache holds
    )


# --------------------------------------------------------------------------------------------
# Training


def _note(message: str) -> None:
    print(f"llmcourse: {message}", file=sys.stderr)


def _remove_stale_files(out_dir: Path) -> None:
    """Temporary files of an earlier, killed run (checkpoints, run.json, metrics)."""
    for pattern in ("*.pt.tmp-*", f"{RUN_FILE}.tmp*", "metrics.jsonl.tmp*"):
        for stale in out_dir.glob(pattern):
            try:
                stale.unlink()
            except OSError:
                pass
    for name in (RUN_FILE, "metrics.jsonl", "ckpt.pt", "best.pt"):  # atomic.py's names
        remove_stale_temp_files(out_dir / name)


def train_preset(preset: dict[str, dict[str, Any]], *, resume: bool = False,
                 progress: bool = True) -> list[dict[str, Any]]:
    """Prepare data, build a GPT and train it as the preset says; return the history.

    Every check comes first (settings, data, an earlier run in ``out_dir``, the resume
    checkpoint and the data it trained on); only then is ``run.json`` written (atomically)
    and training started, so a refused command leaves ``out_dir`` as it was.

    Raises:
        NothingToDo: ``resume`` and the checkpoint already reached ``max_iters``.
        DataChanged: ``resume`` and the prepared data is not the data the run trained on.
        FileExistsError: a run from scratch into a folder holding an earlier run.
        FileNotFoundError: ``resume`` without a checkpoint.
        ValueError: bad settings (including ``max_iters`` < 1).
    """
    from llmcourse.device import pick_device
    from llmcourse.model import GPT
    from llmcourse.train import Trainer
    from llmcourse.train.hooks import check_tensorboard_dir
    from llmcourse.train.trainer import BEST_NAME, CKPT_NAME, METRICS_NAME, refuse_earlier_run

    out_dir = Path(preset.get("train", {}).get("out_dir", "out"))
    run_file = out_dir / RUN_FILE
    has_ckpt = any((out_dir / n).is_file() for n in (CKPT_NAME, BEST_NAME))
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"out_dir {out_dir} is a file; give a folder for the run")
    if not resume and not preset.get("train", {}).get("overwrite", False):
        refuse_earlier_run(out_dir)  # before any work: a refused run changes nothing
    if preset.get("train", {}).get("log") == "tensorboard":
        check_tensorboard_dir(out_dir / "tensorboard")  # before data is prepared
    earlier = read_json(run_file, "run") if resume and has_ckpt and run_file.is_file() else None
    if earlier is not None:  # a resumed run keeps its data and its model
        before = (earlier.get("preset") or {}).get("data", {})
        now = preset.get("data", {})
        changed = [f"data.{k} {before.get(k)!r} -> {now.get(k)!r}"
                   for k in sorted(set(before) | set(now)) if before.get(k) != now.get(k)]
        if changed:
            raise DataChanged(
                f"--resume keeps the data the run trained on, but the settings change it "
                f"({'; '.join(changed)}); drop those --set options, or train a new run "
                "into another out_dir"
            )

    prep = prepare_preset_data(preset, progress=progress)
    model_cfg, train_cfg = build_configs(preset, prep.vocab_size)
    if earlier is not None:
        trained = earlier.get("model_config") or {}
        changed = [f"model.{k} {trained[k]!r} -> {v!r}" for k, v in model_cfg.to_dict().items()
                   if k in trained and trained[k] != v and k != "dropout"]
        if changed:
            raise ValueError(
                f"--resume continues the model in {out_dir}, but the settings change it "
                f"({'; '.join(changed)}); drop those --set options, or train a new run "
                "into another out_dir"
            )
        check_run_data(dict(earlier, prepared_dir=str(prep.path)), "--resume")
    if train_cfg.max_iters < 1:
        raise ValueError(
            f"max_iters={train_cfg.max_iters} trains nothing and would write no checkpoint; "
            "set max_iters >= 1 (e.g. --set max_iters=100)"
        )
    if resume:
        train_cfg.init_from = "resume"
    train_cfg.progress = progress

    generator = torch.Generator()
    generator.manual_seed(train_cfg.seed)
    device = pick_device(train_cfg.device)  # batches are made where the trainer will train
    get_batch = prep.get_batch_fn(train_cfg.batch_size, model_cfg.block_size, device=device,
                                  generator=generator)
    tokenizer = prep.tokenizer()

    torch.manual_seed(train_cfg.seed)
    model = GPT(model_cfg)
    # Refuses an earlier run's checkpoints (from scratch) or loads the resume point; the
    # trainer writes nothing before fit().
    trainer = Trainer(model, train_cfg, get_batch, generator=generator)
    if resume and trainer.iter_num >= train_cfg.max_iters:
        raise NothingToDo(
            f"nothing to do: {trainer.resumed_from} is at iteration {trainer.iter_num} and "
            f"max_iters={train_cfg.max_iters}; raise max_iters (e.g. --set "
            f"max_iters={trainer.iter_num + max(train_cfg.eval_interval, 1)}) to train further"
        )
    if trainer.resumed_from is not None and trainer.resumed_from.name == BEST_NAME:
        _note(f"{out_dir / CKPT_NAME} is missing (the first save was interrupted); resuming "
              f"from {trainer.resumed_from} at iteration {trainer.iter_num}")
    if not resume and not has_ckpt and run_file.is_file():
        _note(f"{out_dir} holds an earlier run that stopped before its first checkpoint; "
              "starting it over")

    _remove_stale_files(out_dir)
    run_info = {
        "preset": preset,
        "prepared_dir": str(prep.path),
        "data": data_record(prep),
        "tokenizer": tokenizer.spec(),
        "model_config": model_cfg.to_dict(),
        "train_config": train_cfg.to_dict(),
    }
    # What a failed command must give back: the run's records as they were, unless the
    # command got as far as a new checkpoint (then they describe that checkpoint).
    records = {p: p.read_bytes() for p in (run_file, out_dir / METRICS_NAME) if p.is_file()}
    start = trainer.last_checkpoint
    write_json_atomic(run_file, run_info)
    try:
        return trainer.fit()
    except BaseException:
        if trainer.last_checkpoint == start:
            for path, data in records.items():
                write_atomic(path, data)
        raise


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
    try:
        load_model_state(model, ckpt["model"])
    except (RuntimeError, ValueError) as exc:  # e.g. torch's "size mismatch", many lines
        raise ValueError(f"{ckpt_path}: its weights do not fit its model_config "
                         f"({weights_mismatch(exc)}); the checkpoint was edited or damaged: "
                         "use the checkpoint as the trainer wrote it") from None
    model.to(device).eval()

    run_file = ckpt_path.parent / RUN_FILE
    if not run_file.is_file():
        raise FileNotFoundError(
            f"{run_file} is missing: it records the tokenizer the model was trained with. "
            "Runs started with `llmcourse train` write it; copy it next to the checkpoint."
        )
    run = read_json(run_file, "run")
    if not isinstance(run, dict) or "tokenizer" not in run:
        raise ValueError(f"{run_file} records no tokenizer; it was not written by llmcourse train")
    tokenizer = get_tokenizer(run["tokenizer"])
    if tokenizer.vocab_size > model.config.vocab_size:
        raise ValueError(
            f"{run_file} names a tokenizer of {tokenizer.vocab_size} ids but the model in "
            f"{ckpt_path} embeds only {model.config.vocab_size}: run.json does not belong to "
            "this checkpoint"
        )
    best = ckpt.get("best_val_loss")
    info = TrainedRun(ckpt_path, int(ckpt.get("iter_num", 0)),
                      None if best is None else float(best), run)
    return model, tokenizer, info


def weights_mismatch(exc: BaseException) -> str:
    """The first line of torch's ``load_state_dict`` error that names a tensor.

    >>> weights_mismatch(RuntimeError("Error(s) in loading state_dict for GPT:\\n\\tsize "
    ...                               "mismatch for wte.weight: copying a param with shape [65, 32]."))
    'size mismatch for wte.weight: copying a param with shape [65, 32]'
    """
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    detail = next((line for line in lines if line.startswith(("size mismatch", "Missing",
                                                                "Unexpected"))), None)
    detail = detail or (lines[-1] if lines else type(exc).__name__)
    return detail.split("do not fit the model: ")[-1].rstrip(".")


# Settings that say where and how fast a run goes, not what it trains: a run made on a GPU by
# `llmcourse train` is the same run for a lesson that asks for it on the CPU.
HOW_NOT_WHAT = frozenset({"out_dir", "device", "dtype", "compile", "progress", "overwrite", "log",
                          "log_interval", "monitor_interval", "fused_adamw", "ddp_backend",
                          "peak_flops", "init_from"})


_UNSET = object()


def _show(value: Any) -> str:
    return "unset" if value is _UNSET else repr(value)


def recipe_difference(earlier: dict[str, Any], preset: dict[str, Any]) -> str | None:
    """The first setting (other than :data:`HOW_NOT_WHAT`) on which two presets differ, or ``None``.

    >>> a = {"model": {"n_layer": 4}, "train": {"max_iters": 10, "device": "cuda"}}
    >>> recipe_difference(a, {"model": {"n_layer": 4}, "train": {"max_iters": 10, "device": "cpu"}})
    >>> recipe_difference(a, {"model": {"n_layer": 4}, "train": {"max_iters": 20}})
    'train.max_iters is 10 there, 20 here'
    """
    for section in sorted(set(earlier) | set(preset)):
        then, now = earlier.get(section) or {}, preset.get(section) or {}
        if not isinstance(then, dict) or not isinstance(now, dict):
            if then != now:
                return f"{section} is {then!r} there, {now!r} here"
            continue
        for key in sorted(set(then) | set(now)):
            if section == "train" and key in HOW_NOT_WHAT:
                continue
            a, b = then.get(key, _UNSET), now.get(key, _UNSET)
            if a != b:
                return f"{section}.{key} is {_show(a)} there, {_show(b)} here"
    return None


def train_or_load(preset_name: str, out_dir: str | os.PathLike[str], *,
                  overrides: dict[str, dict[str, Any]] | None = None,
                  device: str = "cpu", progress: bool = False) -> tuple[Any, Any, TrainedRun]:
    """A model to work with: the run in ``out_dir`` if it is this preset's, else trained now.

    The lessons of Weeks 4-6 sample from, fine-tune or distil a model trained earlier; this
    loads it when an earlier lesson (or ``llmcourse train``) left the same run in ``out_dir``,
    and trains it there otherwise. ``overrides`` maps sections to settings, as ``--set``
    does: ``{"train": {"max_iters": 300}, "model": {"n_layer": 2}}``.

    Raises:
        FileExistsError: ``out_dir`` holds a run made with other settings (it is never
            replaced; give another ``out_dir``).

    Returns:
        ``(model, tokenizer, info)`` as :func:`load_trained` gives them (the model in eval mode).
    """
    from llmcourse.presets import get_preset

    preset = get_preset(preset_name)
    for section, values in (overrides or {}).items():
        preset.setdefault(section, {}).update(values)
    out = Path(out_dir)
    preset.setdefault("train", {})["out_dir"] = str(out)
    preset["train"].setdefault("device", device)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Two notebooks that share a run may start at once (the tests run two at a time): the
    # second waits for the first to finish training, then loads what it wrote.
    with folder_lock(out, verbose=False):
        run_file = out / RUN_FILE
        if run_file.is_file():
            earlier = read_json(run_file, "run")
            then = earlier.get("preset") if isinstance(earlier, dict) else None
            differs = recipe_difference(then, preset) if isinstance(then, dict) else "no preset"
            if differs is None:
                try:
                    return load_trained(out, device=device)
                except FileNotFoundError:
                    pass  # the earlier run stopped before its first checkpoint: train it again
            else:
                raise FileExistsError(
                    f"{out} holds a run made with other settings than preset {preset_name!r} "
                    f"with {overrides or {}} ({differs}); give another out_dir (it is never replaced)"
                )
        train_preset(preset, progress=progress)
        return load_trained(out, device=device)
