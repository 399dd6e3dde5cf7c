"""Tokenize a text corpus once into ``train.bin`` / ``val.bin`` token files.

Training reads random windows from the token files through ``np.memmap``, so a dataset of any
size costs no RAM. :func:`prepare` writes, into one directory:

- ``train.bin``, ``val.bin``: the token ids back to back, raw ``uint16`` when the vocabulary has
  at most 65,536 entries (the GPT-2 tokenizer has 50,257), ``uint32`` otherwise;
- ``meta.json``: the tokenizer's spec, vocabulary size, dtype, token counts per split, the split
  rule, the source files with their size and sha256, a fingerprint of all inputs and the format
  version;
- ``tokenizer.json``: the tokenizer, saved (for a character or trained BPE tokenizer this is the
  only record of its vocabulary; for a tiktoken encoding it is just its name).

The split: TinyStories ships an official validation file, which becomes ``val.bin``. Any other
source is split by tokens: the last ``val_fraction`` of its tokens is the validation split (the
end of the text, so no training window overlaps a validation one).

Running :func:`prepare` again with the same inputs finds the matching fingerprint and does
nothing. A folder is never silently replaced by data made with other settings: the default
folder's name holds the settings that pick the data (``shakespeare-char``,
``shakespeare-char-val0.5``), and a folder holding data made otherwise (another text, tokenizer
or split) is refused, saying what differs, unless ``force=True``. A rebuild is written next to
the old folder and swapped in only when complete: a crash never leaves a half-written dataset,
nor destroys the previous one. A lock file (``.<folder>.lock``) serialises concurrent
``prepare`` calls for one folder: the second waits, then finds the data ready. Leftovers of a
killed ``prepare`` (``.<folder>.tmp-*``) are removed by the next one.

Example:
    >>> prep = prepare("shakespeare", "char")            # doctest: +SKIP
    >>> prep.meta["vocab_size"], prep.meta["counts"]     # doctest: +SKIP
    (65, {'train': 1003854, 'val': 111540})
    >>> train = prep.load("train")                       # np.memmap of uint16  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

try:  # POSIX; on Windows concurrent prepare calls are not serialised
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

from llmcourse.data.fetch import _read_sidecar, dataset_path, sha256_file
from llmcourse.data.registry import (
    DATASETS,
    UnknownDatasetError,
    cache_dir,
    get_dataset_info,
    list_datasets,
    normalize_split,
)
from llmcourse.tokenizers import token_dtype  # the one dtype rule, shared with encode_file

__all__ = ["FORMAT_VERSION", "PreparedData", "prepare", "token_dtype", "open_prepared"]

#: Version of the prepared-directory layout; bumped when ``meta.json`` or the files change.
FORMAT_VERSION = 1

_OUR_FILES = {"train.bin", "val.bin", "meta.json", "tokenizer.json"}
_CHUNK_CHARS = 1 << 22  # characters per read when collecting a character vocabulary


@dataclass
class PreparedData:
    """A prepared dataset directory: its path, its ``meta.json``, and accessors.

    Attributes:
        path: the directory.
        meta: the parsed ``meta.json``.
        reused: ``True`` when :func:`prepare` found it up to date and did nothing.
    """

    path: Path
    meta: dict[str, Any] = field(repr=False)
    reused: bool = False

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> PreparedData:
        """Open an existing prepared directory (one holding ``meta.json``)."""
        path = Path(path)
        meta_path = path / "meta.json"
        if not meta_path.is_file():
            raise FileNotFoundError(
                f"{path} is not a prepared dataset: it has no meta.json. "
                "Create it with llmcourse.data.prepare(dataset, tokenizer, out_dir=...)."
            )
        meta = read_json(meta_path, "prepared dataset")
        version = meta.get("format_version")
        if version != FORMAT_VERSION:
            raise ValueError(
                f"{path} was prepared in format version {version}, this llmcourse reads version "
                f"{FORMAT_VERSION}. Run prepare(...) again to rebuild it."
            )
        return cls(path, meta)

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the token files (``uint16`` or ``uint32``)."""
        return np.dtype(self.meta["dtype"])

    @property
    def vocab_size(self) -> int:
        """The tokenizer's vocabulary size."""
        return int(self.meta["vocab_size"])

    def split_path(self, split: str) -> Path:
        """The ``.bin`` file of a split (``"train"`` or ``"val"``)."""
        return self.path / f"{normalize_split(split)}.bin"

    @property
    def train_path(self) -> Path:
        return self.split_path("train")

    @property
    def val_path(self) -> Path:
        return self.split_path("val")

    def load(self, split: str, check_ids: bool = True) -> np.ndarray:
        """The tokens of a split as a read-only ``np.memmap`` (1-D, ``self.dtype``).

        An empty split (``val_fraction=0``) is returned as an empty array. With ``check_ids``
        every id is checked to lie in ``[0, vocab_size)`` (one pass over the file), so a
        damaged file or one made with another tokenizer is refused here, naming the file
        and the id, rather than failing inside the model's embedding.
        """
        split = normalize_split(split)
        path = self.split_path(split)
        if not path.is_file():
            raise FileNotFoundError(
                f"the {split} split file {path} is missing; the prepared dataset is incomplete. "
                "Run prepare(..., force=True) to rebuild it."
            )
        expected = int(self.meta["counts"][split]) * self.dtype.itemsize
        actual = path.stat().st_size
        if actual != expected:
            raise ValueError(
                f"{path} holds {actual:,} bytes but meta.json records "
                f"{self.meta['counts'][split]:,} {self.dtype} tokens ({expected:,} bytes): the "
                "file is damaged. Run prepare(..., force=True) to rebuild it."
            )
        if actual == 0:
            return np.zeros(0, dtype=self.dtype)
        data = np.memmap(path, dtype=self.dtype, mode="r")
        if check_ids:
            try:
                check_token_ids(data, self.vocab_size, str(path))
            except ValueError as exc:
                raise ValueError(f"{exc}. Run prepare(..., force=True) to rebuild it.") from None
        return data

    def tokenizer(self) -> Any:
        """Rebuild the tokenizer the data was encoded with."""
        from llmcourse.tokenizers import get_tokenizer

        tok_file = self.meta.get("tokenizer_file")
        if tok_file:
            return get_tokenizer(str(self.path / tok_file))
        return get_tokenizer(self.meta["tokenizer"])

    def get_batch_fn(
        self,
        batch_size: int,
        block_size: int,
        device: Any = "cpu",
        generator: Any = None,
    ) -> Any:
        """A ``get_batch(split) -> (x, y)`` function over this data, as the Trainer expects.

        Example:
            >>> get_batch = prep.get_batch_fn(batch_size=12, block_size=64)  # doctest: +SKIP
            >>> x, y = get_batch("train")                                    # doctest: +SKIP
        """
        from llmcourse.data.batch import get_batch

        splits: dict[str, np.ndarray] = {}

        def batch(split: str) -> tuple[Any, Any]:
            key = normalize_split(split)
            if key not in splits:
                splits[key] = self.load(key)
            return get_batch(splits[key], batch_size, block_size, device, generator,
                             vocab_size=self.vocab_size)

        return batch


def read_json(path: Path, what: str) -> Any:
    """Parse a JSON file; a damaged one raises :class:`ValueError` naming the file."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(
            f"{path} (the {what}'s record) is not valid JSON ({exc}): the file is damaged or "
            "was edited by hand. Restore it, or make it again."
        ) from None


def check_token_ids(ids: Any, vocab_size: int, where: str) -> None:
    """Raise :class:`ValueError` naming ``where`` and the first id outside ``[0, vocab_size)``.

    Works in chunks, so a memmap of any size is checked in bounded memory.

    >>> check_token_ids(np.array([1, 2, 70], dtype=np.uint16), 65, "train.bin")
    Traceback (most recent call last):
    ...
    ValueError: train.bin holds token id 70 at position 2, outside the vocabulary [0, 65): it was made with another tokenizer or is damaged
    """
    step = 1 << 24
    for start in range(0, len(ids), step):
        chunk = np.asarray(ids[start:start + step])
        if chunk.size == 0:
            continue
        lo, hi = chunk.min(), chunk.max()
        if lo < 0 or hi >= vocab_size:
            pos = int(np.flatnonzero((chunk < 0) | (chunk >= vocab_size))[0])
            raise ValueError(
                f"{where} holds token id {int(chunk[pos])} at position {start + pos:,}, outside "
                f"the vocabulary [0, {vocab_size}): it was made with another tokenizer or is "
                "damaged"
            )


def open_prepared(path: str | os.PathLike[str]) -> PreparedData:
    """Open a prepared dataset directory; same as :meth:`PreparedData.open`."""
    return PreparedData.open(path)


# --------------------------------------------------------------------------------------------
# Inputs


@dataclass(frozen=True)
class _Source:
    role: str  # "train", "val" or "all" (split by val_fraction)
    path: Path
    size: int
    sha256: str


def _file_sha256(path: Path) -> str:
    """The file's sha256: recorded next to it by a verified download, else computed."""
    recorded = _read_sidecar(path)
    return recorded if recorded is not None else sha256_file(path)


def _looks_like_path(text: str) -> bool:
    return any(sep in text for sep in ("/", "\\")) or "." in Path(text).name


def _resolve_sources(
    dataset: str | os.PathLike[str], progress: bool, max_bytes: int | None = None
) -> tuple[str, list[_Source], str | None]:
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
        sources.append(_Source(role, path.resolve(), size, _file_sha256(path)))
    return label, sources, separator


def _is_tokenizer_instance(obj: Any) -> bool:
    return hasattr(obj, "encode") and hasattr(obj, "vocab_size") and not isinstance(obj, Mapping)


def _tokenizer_request(tokenizer: Any) -> tuple[Any, str, Any]:
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
    if isinstance(tokenizer, (str, os.PathLike, Mapping)):
        from llmcourse.tokenizers import get_tokenizer

        tok = get_tokenizer(tokenizer if not isinstance(tokenizer, os.PathLike) else str(tokenizer))
        spec = tok.spec() if callable(getattr(tok, "spec", None)) else {"name": tok.name}
        return spec, str(tok.name), tok
    raise TypeError(
        "tokenizer must be a name ('char', 'gpt2', 'cl100k_base', ...), a path to a saved "
        f"tokenizer, a spec dict or a tokenizer object; got {type(tokenizer).__name__}"
    )


def _fingerprint(sources: list[_Source], tok_part: Any, split_rule: Mapping[str, Any],
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


def _other_settings(out: Path, fingerprint: str, inputs: dict[str, Any]) -> str | None:
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


@contextlib.contextmanager
def _folder_lock(out: Path, verbose: bool) -> Iterator[None]:
    """Hold ``.<name>.lock`` next to ``out``: one ``prepare`` of a folder at a time.

    The holder deletes the lock file when done; a waiter that then wakes up on the deleted
    file sees that it is no longer the one at the path and locks afresh.
    """
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    path = out.parent / f".{out.name}.lock"
    waited = False
    while True:
        try:
            fh = open(path, "a+b")
        except OSError as exc:  # a read-only or forbidden folder: name the dataset's folder
            exc.filename = str(out)
            raise
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if verbose and not waited:
                print(f"prepare: waiting for another prepare of {out} to finish ...",
                      file=sys.stderr)
            waited = True
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            same = os.stat(path).st_ino == os.fstat(fh.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        fh.close()  # the holder removed that file: lock the new one
    try:
        yield
    finally:
        try:
            path.unlink()
        except OSError:
            pass
        fh.close()


def _leftovers(out: Path) -> list[Path]:
    return [p for pattern in (f".{out.name}.tmp-*", f".{out.name}.old-*")
            for p in out.parent.glob(pattern) if p.is_dir()]


def _clean_leftovers(out: Path, verbose: bool) -> None:
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


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", text).strip("._") or "tokenizer"


# --------------------------------------------------------------------------------------------
# Building


@contextlib.contextmanager
def _utf8_errors(path: Path) -> Iterator[None]:
    """Turn a ``UnicodeDecodeError`` while reading ``path`` into an error naming the file."""
    try:
        yield
    except UnicodeDecodeError as exc:
        bad = exc.object[exc.start:exc.start + 1].hex()
        raise ValueError(
            f"{path} is not UTF-8 text (byte 0x{bad}: {exc.reason}). Convert it to UTF-8 "
            f"first, e.g. `iconv -f latin1 -t utf-8 {path.name} > {path.stem}.utf8.txt`."
        ) from None


def _build_char_tokenizer(sources: list[_Source]) -> Any:
    """A character tokenizer over every character of every source, read in bounded memory."""
    from llmcourse.tokenizers import get_tokenizer

    chars: set[str] = set()
    for src in sources:
        # newline="" keeps "\r" characters, so the vocabulary is a superset whatever the
        # tokenizer's reader does with line endings.
        with open(src.path, encoding="utf-8", newline="") as f, _utf8_errors(src.path):
            while chunk := f.read(_CHUNK_CHARS):
                chars.update(chunk)
    if not chars:
        raise ValueError("the text is empty: a character vocabulary needs at least one character")
    return get_tokenizer("char", text="".join(sorted(chars)))


def _encode_chunks(
    path: Path, tok: Any, allowed_special: Any, separator: str | None
) -> Iterator[np.ndarray]:
    from llmcourse.tokenizers import encode_file

    kwargs: dict[str, Any] = {"allowed_special": allowed_special}
    if separator is not None:
        kwargs["separator"] = separator
    for ids in encode_file(path, tok, **kwargs):
        yield np.asarray(ids)


def _write_tokens(
    path: Path,
    sources: list[_Source],
    tok: Any,
    dtype: np.dtype,
    allowed_special: Any,
    separator: str | None,
    progress: bool,
    desc: str,
) -> int:
    """Encode ``sources`` in order into the raw token file ``path``; return the token count."""
    from tqdm.auto import tqdm

    vocab_size = int(tok.vocab_size)
    count = 0
    with open(path, "wb") as out, tqdm(
        desc=desc, unit="tok", unit_scale=True, disable=not progress, leave=False
    ) as bar:
        for src in sources:
            with _utf8_errors(src.path):
                for ids in _encode_chunks(src.path, tok, allowed_special, separator):
                    if ids.size == 0:
                        continue
                    lo, hi = int(ids.min()), int(ids.max())
                    if lo < 0 or hi >= vocab_size:
                        raise ValueError(
                            f"the tokenizer {getattr(tok, 'name', tok)!r} produced id "
                            f"{hi if hi >= vocab_size else lo} outside its vocabulary "
                            f"[0, {vocab_size}) while encoding {src.path}; its vocab_size is wrong."
                        )
                    out.write(ids.astype(dtype, copy=False).tobytes())
                    count += int(ids.size)
                    bar.update(int(ids.size))
    return count


def _split_tail(all_path: Path, val_path: Path, n: int, n_val: int, dtype: np.dtype) -> None:
    """Move the last ``n_val`` tokens of ``all_path`` into ``val_path``; truncate the rest."""
    itemsize = dtype.itemsize
    n_train = n - n_val
    block = 1 << 24  # bytes per copy
    with open(all_path, "rb") as src, open(val_path, "wb") as dst:
        src.seek(n_train * itemsize)
        while data := src.read(block):
            dst.write(data)
    with open(all_path, "r+b") as f:
        f.truncate(n_train * itemsize)


def _has_only_our_files(path: Path) -> bool:
    return all(p.name in _OUR_FILES for p in path.iterdir())


def _up_to_date(out_dir: Path, fingerprint: str) -> PreparedData | None:
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


def _install(tmp: Path, out_dir: Path) -> None:
    """Put the complete directory ``tmp`` at ``out_dir``, replacing an old one last."""
    if not out_dir.exists():
        os.replace(tmp, out_dir)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
    old.rmdir()
    os.replace(out_dir, old)  # the old dataset stays whole until the new one is in place
    try:
        os.replace(tmp, out_dir)
    except BaseException:
        os.replace(old, out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)


def prepare(
    dataset: str | os.PathLike[str],
    tokenizer: Any = "gpt2",
    out_dir: str | os.PathLike[str] | None = None,
    val_fraction: float = 0.1,
    *,
    force: bool = False,
    allowed_special: Any = "all",
    separator: str | None = "auto",
    progress: bool = True,
    verbose: bool = True,
    max_bytes: int | None = None,
) -> PreparedData:
    """Tokenize a dataset into ``train.bin`` / ``val.bin`` / ``meta.json`` (once).

    Args:
        dataset: a registered name (``"shakespeare"``, ``"tinystories"``) or the path of a UTF-8
            text file. Registered files are downloaded on first use (or read from
            ``LLMCOURSE_DATA_DIR``).
        tokenizer: ``"char"`` (a character tokenizer built from the whole dataset and saved as
            ``tokenizer.json``), a tokenizer name (``"gpt2"``, ``"cl100k_base"``, ...), a path
            to a saved tokenizer, a spec dict, or a tokenizer object.
        out_dir: where to write; default ``<cache>/prepared/<dataset>-<tokenizer name>``,
            with ``-val<fraction>`` appended for a ``val_fraction`` other than 0.1.
        val_fraction: for a dataset without an official validation file, the fraction of
            tokens, taken from the end, that forms the validation split (``0 <= f < 1``;
            ``0`` gives an empty ``val.bin``). Ignored when the dataset has a validation file.
        force: rebuild even when the directory is up to date, and replace a directory holding
            data prepared with other settings (refused without it).
        allowed_special: which special-token texts in the data (e.g. TinyStories'
            ``<|endoftext|>`` separators) become special tokens; passed to the tokenizer.
        separator: a line that ends a document; each document is then followed by the
            tokenizer's end-of-text id and the separator lines are dropped (see
            :func:`llmcourse.tokenizers.encode_file`). ``"auto"``: the dataset's own separator
            (``<|endoftext|>`` for TinyStories) when the tokenizer has an end-of-text token,
            else none; ``None``: never.
        progress: show progress bars.
        verbose: print what was done (or that nothing needed doing).
        max_bytes: for a registered dataset, use only the first ``max_bytes`` bytes of each
            of its files (downloaded with an HTTP ``Range`` request, cut at a line end; see
            :func:`llmcourse.data.dataset_path`): a sample for a CPU, where the full TinyStories
            would be a 2 GB download. The default folder name then ends in ``-first<N>``.

    Returns:
        A :class:`PreparedData` for the directory.

    Raises:
        UnknownDatasetError: ``dataset`` is neither a registered name nor a file.
        ValueError: empty text, text that is not UTF-8, bad ``val_fraction``, too little text
            for the split, vocabulary too large for uint32, ``out_dir`` holding files that are
            not a prepared dataset, or a damaged ``meta.json`` there.
        FileExistsError: ``out_dir`` holds data prepared with other settings (the message
            says which); pass ``force=True`` to replace it.
        OSError: a full disk or a read-only folder, naming the folder; nothing is left behind.
    """
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)):
        raise TypeError(f"val_fraction must be a number, got {val_fraction!r}")
    if not 0.0 <= float(val_fraction) < 1.0:
        raise ValueError(
            f"val_fraction must be in [0, 1), got {val_fraction}: it is the share of the tokens "
            "kept for validation, e.g. 0.1"
        )
    label, sources, dataset_separator = _resolve_sources(dataset, progress, max_bytes)
    tok_part, tok_name, tok = _tokenizer_request(tokenizer)
    if separator == "auto":
        has_eot = tok is not None and getattr(tok, "eot_token", None) is not None
        separator = dataset_separator if has_eot else None
    official = [s.role for s in sources] == ["train", "val"]
    split_rule: dict[str, Any] = (
        {"rule": "official_files"}
        if official
        else {"rule": "tail_fraction", "val_fraction": float(val_fraction)}
    )
    fingerprint, inputs = _fingerprint(sources, tok_part, split_rule, allowed_special,
                                       separator)

    if out_dir is not None:
        out = Path(out_dir).expanduser()
    else:  # one folder per choice of data: dataset, tokenizer and a non-default split
        name = f"{_safe_name(label)}-{_safe_name(tok_name)}"
        if not official and float(val_fraction) != 0.1:
            name += f"-val{float(val_fraction):g}"
        if max_bytes is not None:
            name += f"-first{max_bytes}"
        out = cache_dir() / "prepared" / name
    if not force:  # fast path, without the lock (works in a read-only cache too)
        existing = _up_to_date(out, fingerprint)
        if existing is not None:
            if _leftovers(out):
                try:
                    with _folder_lock(out, verbose):
                        _clean_leftovers(out, verbose)
                except OSError:  # a read-only cache: leave them
                    pass
            if verbose:
                print(f"prepare: {out} is up to date (same inputs); nothing to do.")
            return existing
    out.parent.mkdir(parents=True, exist_ok=True)
    with _folder_lock(out, verbose):
        return _prepare_locked(out, label, sources, tok, tok_name, official, val_fraction,
                               split_rule, allowed_special, separator, fingerprint, inputs,
                               force, progress, verbose)


def _prepare_locked(out: Path, label: str, sources: list[_Source], tok: Any, tok_name: str,
                    official: bool, val_fraction: float, split_rule: dict[str, Any],
                    allowed_special: Any, separator: str | None, fingerprint: str,
                    inputs: dict[str, Any], force: bool, progress: bool,
                    verbose: bool) -> PreparedData:
    """The part of :func:`prepare` that runs with the folder's lock held."""
    _clean_leftovers(out, verbose)
    if not force:  # another prepare may have finished it while we waited
        existing = _up_to_date(out, fingerprint)
        if existing is not None:
            if verbose:
                print(f"prepare: {out} is ready (prepared by another process); nothing to do.")
            return existing
    if out.exists():
        if not out.is_dir():
            raise ValueError(f"out_dir {out} exists and is a file; pass a directory path")
        if not _has_only_our_files(out):
            extra = sorted(p.name for p in out.iterdir() if p.name not in _OUR_FILES)
            raise ValueError(
                f"out_dir {out} already holds files that are not part of a prepared dataset "
                f"({', '.join(extra[:5])}{', ...' if len(extra) > 5 else ''}); prepare would "
                "replace the whole folder. Choose an empty or new out_dir."
            )
        why = None if force else _other_settings(out, fingerprint, inputs)
        if why is not None:
            raise FileExistsError(
                f"{out} already holds a prepared dataset made with other settings ({why}); "
                "runs trained on it would see different data. Choose another folder "
                "(prepare --out-dir, or --set data.prepared_dir=... for train), or replace it "
                "with force=True (prepare --force)."
            )

    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    started = time.perf_counter()
    try:
        if tok is None:
            tok = _build_char_tokenizer(sources)
            tok_name = str(getattr(tok, "name", tok_name))
        vocab_size = int(tok.vocab_size)
        dtype = token_dtype(vocab_size)

        if official:
            train_src = [s for s in sources if s.role == "train"]
            val_src = [s for s in sources if s.role == "val"]
            n_train = _write_tokens(tmp / "train.bin", train_src, tok, dtype, allowed_special,
                                    separator, progress, f"{label} train")
            n_val = _write_tokens(tmp / "val.bin", val_src, tok, dtype, allowed_special,
                                  separator, progress, f"{label} val")
        else:
            n = _write_tokens(tmp / "train.bin", sources, tok, dtype, allowed_special,
                              separator, progress, label)
            n_val = int(n * float(val_fraction))
            if val_fraction > 0 and n_val == 0:
                raise ValueError(
                    f"the text has only {n:,} tokens, so val_fraction={val_fraction} leaves no "
                    "validation token. Use more text, a larger val_fraction, or val_fraction=0."
                )
            n_train = n - n_val
            _split_tail(tmp / "train.bin", tmp / "val.bin", n, n_val, dtype)
        if n_train < 2:
            raise ValueError(
                f"the training split has only {n_train} token(s); at least 2 are needed for one "
                "(input, target) pair. Use a longer text."
            )

        tokenizer_file = None
        if callable(getattr(tok, "save", None)):
            tok.save(tmp / "tokenizer.json")
            tokenizer_file = "tokenizer.json"
        spec = tok.spec() if callable(getattr(tok, "spec", None)) else {"name": tok_name}

        from llmcourse import __version__

        meta = {
            "format_version": FORMAT_VERSION,
            "dataset": label,
            "sources": [
                {"role": s.role, "path": str(s.path), "size": s.size, "sha256": s.sha256}
                for s in sources
            ],
            "tokenizer": spec,
            "tokenizer_name": tok_name,
            "tokenizer_file": tokenizer_file,
            "vocab_size": vocab_size,
            "eot_token": getattr(tok, "eot_token", None),
            "dtype": dtype.name,
            "counts": {"train": n_train, "val": n_val},
            "split": split_rule,
            "allowed_special": sorted(allowed_special)
            if isinstance(allowed_special, (set, frozenset, list, tuple))
            else allowed_special,
            "separator": separator,
            "fingerprint": fingerprint,
            "inputs": inputs,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "llmcourse_version": __version__,
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, default=str) + "\n",
                                       encoding="utf-8")
        _install(tmp, out)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and exc.filename is None and exc.errno is not None:
            exc.filename = str(out)
        raise
    if verbose:
        print(
            f"prepare: wrote {out} ({n_train:,} train + {n_val:,} val tokens, {dtype.name}, "
            f"vocab {vocab_size:,}) in {time.perf_counter() - started:.1f}s"
        )
    return PreparedData(out, meta)

