"""The prepared folder's life: up to date or not, whose data it holds, and its safe replacement.

:func:`llmcourse.data.prepare` never leaves a half-written dataset, nor destroys the previous
one, and never silently replaces data made with other settings:

- :func:`up_to_date`: the folder already holds data with the same fingerprint (nothing to do);
- :func:`other_settings`: why the folder holds data made otherwise (refused without ``force``);
- :func:`new_build_folder` / :func:`install`: a rebuild is written to ``.<name>.tmp-*`` next
  to the folder and swapped in only when complete, the old folder set aside as
  ``.<name>.old-*`` until the new one is in place;
- :func:`clean_leftovers`: what a killed ``prepare`` left is removed by the next one, and a swap
  cut between its two renames is undone.

All of it runs with the folder's lock held (:func:`llmcourse.atomic.folder_lock`).

Example:
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "data"
    >>> tmp = new_build_folder(out); _ = (tmp / "meta.json").write_text("{}")
    >>> install(tmp, out); sorted(p.name for p in out.iterdir())
    ['meta.json']
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from llmcourse.atomic import fsync_dir, temp_path
from llmcourse.data.prepared_format import OUR_FILES, PreparedData, read_json

__all__ = ["has_only_our_files", "up_to_date", "other_settings", "leftovers", "clean_leftovers",
           "new_build_folder", "install"]


def has_only_our_files(path: Path) -> bool:
    """Whether the folder holds nothing but a prepared dataset's files."""
    return all(p.name in OUR_FILES for p in path.iterdir())


def up_to_date(out_dir: Path, fingerprint: str) -> PreparedData | None:
    """The prepared data at ``out_dir`` if it was made from these very inputs and is whole."""
    try:
        prep = PreparedData.open(out_dir)
    except (FileNotFoundError, ValueError, json.JSONDecodeError):
        return None
    if prep.meta.get("fingerprint") != fingerprint:
        return None
    try:  # sizes only: the ids are checked when the data is loaded for use
        prep.load("train", check_ids=False)
        prep.load("val", check_ids=False)
    except (FileNotFoundError, ValueError):
        return None
    tok_file = prep.meta.get("tokenizer_file")
    if tok_file and not (out_dir / tok_file).is_file():
        return None
    prep.reused = True
    return prep


def _describe_change(key: str, old: Any, new: Any) -> str:
    if key == "sources":
        return "the text (another file or changed content)"
    if key == "tokenizer":
        def name(part: Any) -> str:
            if isinstance(part, dict):
                return str(part.get("name") or part.get("build") or part.get("type") or part)
            return str(part)
        return f"tokenizer {name(old)!r} -> {name(new)!r}"
    return f"{key} {json.dumps(old, sort_keys=True)} -> {json.dumps(new, sort_keys=True)}"


def other_settings(out: Path, fingerprint: str, inputs: dict[str, Any]) -> str | None:
    """Why ``out`` holds data made with other settings, or ``None`` when it does not.

    ``None`` also for an empty folder, and for data with these very settings (damaged
    files are rebuilt: nothing of value is lost).
    """
    if not out.is_dir() or not any(out.iterdir()):
        return None
    meta_path = out / "meta.json"
    if not meta_path.is_file():
        return f"it holds {', '.join(sorted(p.name for p in out.iterdir()))} without a meta.json"
    try:
        meta = read_json(meta_path, "prepared dataset")
    except ValueError as exc:
        raise ValueError(
            f"{exc} prepare cannot tell what {out} holds, so it will not replace it: replace "
            "it with force=True (prepare --force) or choose another folder."
        ) from None
    if meta.get("fingerprint") == fingerprint:
        return None
    old = meta.get("inputs")
    if not isinstance(old, dict):
        return f"it holds {meta.get('dataset')!r} prepared by an older llmcourse"
    changes = [_describe_change(k, old.get(k), v) for k, v in inputs.items() if old.get(k) != v]
    return (f"it holds {meta.get('dataset')!r} prepared otherwise: "
            + "; ".join(changes or ["other inputs"]))


def leftovers(out: Path) -> list[Path]:
    """The ``.<name>.tmp-*`` and ``.<name>.old-*`` folders a killed ``prepare`` left."""
    return [p for pattern in (f".{out.name}.tmp-*", f".{out.name}.old-*")
            for p in out.parent.glob(pattern) if p.is_dir()]


def clean_leftovers(out: Path, verbose: bool) -> None:
    """Remove what a killed ``prepare`` of ``out`` left (call with the folder's lock held).

    ``.<name>.tmp-*`` are unfinished builds. ``.<name>.old-*`` is the previous dataset while
    a new one was being swapped in; if the swap was cut between its two renames (no ``out``),
    the old dataset is put back.
    """
    olds = sorted(out.parent.glob(f".{out.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if olds and not out.exists():
        os.replace(olds.pop(), out)
        if verbose:
            print(f"prepare: restored {out} from an interrupted replacement", file=sys.stderr)
    stale = [p for p in out.parent.glob(f".{out.name}.tmp-*") if p.is_dir()] + olds
    if not stale:
        return
    size = sum(f.stat().st_size for p in stale for f in p.rglob("*") if f.is_file())
    for p in stale:
        shutil.rmtree(p, ignore_errors=True)
    if verbose:
        print(f"prepare: removed {len(stale)} leftover folder(s) of an interrupted prepare of "
              f"{out} ({size / 1e6:.1f} MB)", file=sys.stderr)


def new_build_folder(out: Path) -> Path:
    """A fresh, empty ``.<name>.tmp-*`` folder next to ``out`` to build a replacement in."""
    tmp = temp_path(out)
    tmp.mkdir()
    return tmp


def install(tmp: Path, out_dir: Path) -> None:
    """Put the complete directory ``tmp`` at ``out_dir``, replacing an old one last."""
    if not out_dir.exists():
        os.replace(tmp, out_dir)
        fsync_dir(out_dir.parent)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
    old.rmdir()
    os.replace(out_dir, old)  # the old dataset stays whole until the new one is in place
    try:
        os.replace(tmp, out_dir)
    except BaseException:
        os.replace(old, out_dir)
        raise
    fsync_dir(out_dir.parent)
    shutil.rmtree(old, ignore_errors=True)
