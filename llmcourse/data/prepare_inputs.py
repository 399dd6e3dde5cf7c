"""What a preparation is made from: the text files, the tokenizer, and their fingerprint.

:func:`llmcourse.data.prepare` takes a dataset (a registered name or a text file) and a
tokenizer request. This module turns them into the :class:`Source` files (each with its size and
sha256), the tokenizer, and the fingerprint: the sha256 of every input that decides the token
files. Two preparations with the same fingerprint write the same tokens, so a folder whose
``meta.json`` holds it is up to date.

Example:
    >>> part, name, tok = tokenizer_request("char")
    >>> part, name, tok
    ({'build': 'char'}, 'char', None)
    >>> safe_name("gpt2/../x y")
    'gpt2_.._x_y'
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmcourse.data.checksums import read_sidecar, sha256_file
from llmcourse.data.fetch import dataset_path
from llmcourse.data.prepared_format import FORMAT_VERSION
from llmcourse.data.registry import (
    DATASETS,
    UnknownDatasetError,
    get_dataset_info,
    list_datasets,
)

__all__ = ["Source", "resolve_sources", "tokenizer_request", "fingerprint_inputs", "safe_name"]


@dataclass(frozen=True)
class Source:
    """One text file a preparation reads, with its size and sha256."""

    role: str  # "train", "val" or "all" (split by val_fraction)
    path: Path
    size: int
    sha256: str


def _file_sha256(path: Path) -> str:
    """The file's sha256: recorded next to it by a verified download, else computed."""
    recorded = read_sidecar(path)
    return recorded if recorded is not None else sha256_file(path)


def _looks_like_path(text: str) -> bool:
    return any(sep in text for sep in ("/", "\\")) or "." in Path(text).name


def resolve_sources(
    dataset: str | os.PathLike[str], progress: bool, max_bytes: int | None = None
) -> tuple[str, list[Source], str | None]:
    """Return (label, sources, document separator) for a registry name or a text file path."""
    files: dict[str, Path]
    separator = None
    registered = isinstance(dataset, str) and dataset.strip().lower() in DATASETS
    if isinstance(dataset, os.PathLike) or (
        isinstance(dataset, str)
        and not registered
        and (Path(dataset).is_file() or _looks_like_path(dataset))
    ):
        path = Path(dataset).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"no text file at {path}. Pass an existing UTF-8 text file or one of the "
                f"registered datasets: {', '.join(list_datasets())}."
            )
        label, files = path.stem, {"all": path}
    elif isinstance(dataset, str):
        try:
            info = get_dataset_info(dataset)
        except UnknownDatasetError as err:
            raise UnknownDatasetError(
                f"{err} (No file named {dataset!r} exists either.)"
            ) from None
        label, separator = info.name, info.separator
        if info.has_official_val:
            files = {s: dataset_path(info.name, s, progress=progress, max_bytes=max_bytes)
                     for s in ("train", "val")}
        else:
            files = {"all": dataset_path(info.name, "train", progress=progress, max_bytes=max_bytes)}
    else:
        raise TypeError(
            f"dataset must be a registered name or a path, got {type(dataset).__name__}"
        )
    sources = []
    for role, path in files.items():
        size = path.stat().st_size
        if size == 0:
            raise ValueError(
                f"the text file {path} is empty: there is nothing to tokenize. "
                "Check the file (an interrupted copy?) or pass another one."
            )
        sources.append(Source(role, path.resolve(), size, _file_sha256(path)))
    return label, sources, separator


def _is_tokenizer_instance(obj: Any) -> bool:
    return hasattr(obj, "encode") and hasattr(obj, "vocab_size") and not isinstance(obj, Mapping)


def tokenizer_request(tokenizer: Any) -> tuple[Any, str, Any]:
    """Return ``(fingerprint_part, display_name, instance_or_None)``.

    A ``"char"`` request is built later from the data (the vocabulary depends on it); its
    fingerprint part is the request itself, which together with the source hashes fixes it.
    """
    if _is_tokenizer_instance(tokenizer):
        spec = tokenizer.spec() if callable(getattr(tokenizer, "spec", None)) else None
        name = str(getattr(tokenizer, "name", type(tokenizer).__name__))
        return (spec if spec is not None else {"name": name}), name, tokenizer
    if isinstance(tokenizer, str) and tokenizer.strip().lower() == "char":
        return {"build": "char"}, "char", None
    if isinstance(tokenizer, str) and tokenizer.strip().lower() == "bpe":
        raise ValueError(
            "tokenizer 'bpe' has to be trained before it can tokenize a dataset, and prepare "
            "does not train one: pass the JSON file of a trained BPE tokenizer (--tokenizer "
            "path/to/tokenizer.json, the file a tokenizer's save() writes, as on day 2), or a "
            "ready tokenizer: --tokenizer gpt2, cl100k_base or char"
        )
    if isinstance(tokenizer, (str, os.PathLike, Mapping)):
        from llmcourse.tokenizers import get_tokenizer

        try:
            tok = get_tokenizer(tokenizer if not isinstance(tokenizer, os.PathLike)
                                else str(tokenizer))
        except (KeyError, TypeError, AttributeError, IndexError) as exc:
            raise ValueError(_unusable_tokenizer(tokenizer, exc)) from None
        spec = tok.spec() if callable(getattr(tok, "spec", None)) else {"name": tok.name}
        return spec, str(tok.name), tok
    raise TypeError(
        "tokenizer must be a name ('char', 'gpt2', 'cl100k_base', ...), a path to a saved "
        f"tokenizer, a spec dict or a tokenizer object; got {type(tokenizer).__name__}"
    )


def _unusable_tokenizer(request: Any, exc: BaseException) -> str:
    """The one-line error for a tokenizer file or spec whose content cannot be loaded."""
    what = "the tokenizer spec" if isinstance(request, Mapping) else f"the tokenizer file {request}"
    detail = (f"it has no {exc.args[0]!r} entry" if isinstance(exc, KeyError) and exc.args
              else f"{type(exc).__name__}: {exc}")
    return (f"{what} cannot be loaded ({detail}): it is damaged or was not written by a "
            "tokenizer's save(). Pass a file that save() wrote, or a tokenizer name such as "
            "gpt2 or char")


def fingerprint_inputs(sources: list[Source], tok_part: Any, split_rule: Mapping[str, Any],
                       allowed_special: Any, separator: str | None) -> tuple[str, dict[str, Any]]:
    """The sha256 of every input that decides the token files, and those inputs."""
    payload = {
        "separator": separator,
        "format_version": FORMAT_VERSION,
        "sources": [{"role": s.role, "sha256": s.sha256, "size": s.size} for s in sources],
        "tokenizer": tok_part,
        "split": dict(split_rule),
        "allowed_special": sorted(allowed_special)
        if isinstance(allowed_special, (set, frozenset, list, tuple))
        else allowed_special,
    }
    payload = json.loads(json.dumps(payload, default=str))  # as meta.json will hold it
    blob = json.dumps(payload, sort_keys=True).encode("utf-8")
    return hashlib.sha256(blob).hexdigest(), payload


def safe_name(text: str) -> str:
    """``text`` made safe as part of a folder name (runs of other characters become ``_``)."""
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", text).strip("._") or "tokenizer"
