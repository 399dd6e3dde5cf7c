"""The data a run trained on: its fingerprint in ``run.json``, and the refusal when it changed.

A run records the prepared dataset it trained on (:func:`data_record`); ``sample``, ``eval``
and ``--resume`` then refuse a folder whose data changed under the run
(:func:`check_run_data`), instead of measuring the model on other text.

>>> data_changes({"dataset": "shakespeare", "tokenizer": "char", "vocab_size": 65,
...               "split": None, "counts": None}, type("P", (), {"meta": {
...     "dataset": "shakespeare", "tokenizer_name": "gpt2", "vocab_size": 50257}, "path": "x"})())
["tokenizer 'char' -> 'gpt2'", 'vocab_size 65 -> 50257']
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


class DataChanged(ValueError):
    """The prepared data under a run is not the data the run was trained on."""


def read_json(path: Path, what: str) -> Any:
    """Parse a JSON file; a damaged one raises :class:`ValueError` naming it."""
    from llmcourse.data.prepared import read_json as read

    return read(path, what)


def data_record(prep: Any) -> dict[str, Any]:
    """The fingerprint of a prepared dataset that a run records in ``run.json``.

    The tokenizer, the split rule, the token counts, the inputs' fingerprint and the sha256
    of ``meta.json`` (its content without the creation time, so that re-making the same
    data gives the same record).
    """
    meta = dict(prep.meta)
    content = {k: v for k, v in meta.items() if k not in ("created", "llmcourse_version")}
    blob = json.dumps(content, sort_keys=True, default=str).encode("utf-8")
    return {
        "path": str(prep.path),
        "dataset": meta.get("dataset"),
        "tokenizer": meta.get("tokenizer_name"),
        "vocab_size": meta.get("vocab_size"),
        "split": meta.get("split"),
        "counts": meta.get("counts"),
        "fingerprint": meta.get("fingerprint"),
        "meta_sha256": hashlib.sha256(blob).hexdigest(),
    }


def data_changes(recorded: dict[str, Any], prep: Any) -> list[str]:
    """What differs between a run's recorded data and the prepared folder now (``[]``: none)."""
    now = data_record(prep)
    changes = [
        f"{key} {recorded.get(key)!r} -> {now[key]!r}"
        for key in ("dataset", "tokenizer", "vocab_size", "split", "counts")
        if recorded.get(key) != now[key]
    ]
    if not changes and recorded.get("meta_sha256") not in (None, now["meta_sha256"]):
        changes.append("meta.json (same sizes, other content: another text or tokenizer file)")
    return changes


def check_run_data(run: dict[str, Any], what: str, need: bool = True) -> Any:
    """Open the prepared data a run trained on, refusing when it changed under the run.

    Returns the :class:`~llmcourse.data.PreparedData`, or ``None`` when the folder is gone
    and ``need`` is false (sampling needs only the tokenizer, which ``run.json`` holds).

    Raises:
        DataChanged: the folder now holds other data; the message says what changed.
        FileNotFoundError: the folder is gone (and ``need``).
    """
    from llmcourse.data import open_prepared

    path = run.get("prepared_dir")
    if not path or not (Path(path) / "meta.json").is_file():
        if not need:
            return None
        raise FileNotFoundError(
            f"the prepared data this run trained on ({path}) is gone; {what} needs it. "
            "Prepare it again with the run's settings (see data in its run.json)."
        )
    prep = open_prepared(path)
    recorded = run.get("data")
    if isinstance(recorded, dict):
        changes = data_changes(recorded, prep)
        if changes:
            raise DataChanged(
                f"the prepared data in {path} changed since this run trained on it "
                f"({'; '.join(changes)}), so {what} would not measure the run on its own "
                "data. Prepare the run's data again (its settings are in run.json) into "
                "another folder, or train a new run on the new data."
            )
    return prep
