"""Tokenize a text corpus once into ``train.bin`` / ``val.bin`` token files: :func:`prepare`.

Training reads random windows from the token files through ``np.memmap``, so a dataset of any
size costs no RAM. The folder's layout (``train.bin``, ``val.bin``, ``meta.json``,
``tokenizer.json``) and :class:`PreparedData`, which reads it, are in
:mod:`llmcourse.data.prepared_format`.

The pipeline:

1. the inputs: the text files (each with its sha256), the tokenizer and the split rule, and
   their fingerprint (:mod:`llmcourse.data.prepare_inputs`);
2. a folder already holding data with that fingerprint is reused: nothing to do;
3. otherwise, with the folder's lock held, the text is encoded into a new folder next to the
   old one, which is swapped in only when complete (:mod:`llmcourse.data.prepared_folder`).

The split: TinyStories ships an official validation file, which becomes ``val.bin``. Any other
source is split by tokens: the last ``val_fraction`` of its tokens is the validation split (the
end of the text, so no training window overlaps a validation one).

A folder is never silently replaced by data made with other settings: the default folder's
name holds the settings that pick the data (``shakespeare-char``, ``shakespeare-char-val0.5``),
and a folder holding data made otherwise (another text, tokenizer or split) is refused, saying
what differs, unless ``force=True``. A crash never leaves a half-written dataset, nor destroys
the previous one. A lock file (``.<folder>.lock``) serialises concurrent ``prepare`` calls for
one folder: the second waits, then finds the data ready. Leftovers of a killed ``prepare``
(``.<folder>.tmp-*``) are removed by the next one.

Example:
    >>> prep = prepare("shakespeare", "char")            # doctest: +SKIP
    >>> prep.meta["vocab_size"], prep.meta["counts"]     # doctest: +SKIP
    (65, {'train': 1003854, 'val': 111540})
    >>> train = prep.load("train")                       # np.memmap of uint16  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from llmcourse.atomic import folder_lock, write_atomic
from llmcourse.data.prepare_inputs import (
    Source,
    fingerprint_inputs,
    resolve_sources,
    safe_name,
    tokenizer_request,
)
from llmcourse.data.prepared_folder import (
    clean_leftovers,
    has_only_our_files,
    install,
    leftovers,
    new_build_folder,
    other_settings,
    up_to_date,
)
from llmcourse.data.prepared_format import (  # re-exported: imported from here by other modules
    FORMAT_VERSION,
    OUR_FILES,
    PreparedData,
    check_token_ids,
    open_prepared,
    read_json,
)
from llmcourse.data.registry import cache_dir
from llmcourse.tokenizers import token_dtype  # the one dtype rule, shared with encode_file

__all__ = ["FORMAT_VERSION", "PreparedData", "prepare", "token_dtype", "open_prepared",
           "read_json", "check_token_ids"]

_CHUNK_CHARS = 1 << 22  # characters per read when collecting a character vocabulary


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
        raise ValueError(f"val_fraction must be a number in [0, 1) (the share of tokens kept for "
                         f"validation), got {val_fraction!r}")
    if not 0.0 <= float(val_fraction) < 1.0:
        raise ValueError(
            f"val_fraction must be in [0, 1), got {val_fraction}: it is the share of the tokens "
            "kept for validation, e.g. 0.1"
        )
    # The tokenizer first: a bad one is refused before any dataset is downloaded.
    tok_part, tok_name, tok = tokenizer_request(tokenizer)
    label, sources, dataset_separator = resolve_sources(dataset, progress, max_bytes)
    if separator == "auto":
        has_eot = tok is not None and getattr(tok, "eot_token", None) is not None
        separator = dataset_separator if has_eot else None
    official = [s.role for s in sources] == ["train", "val"]
    split_rule: dict[str, Any] = (
        {"rule": "official_files"}
        if official
        else {"rule": "tail_fraction", "val_fraction": float(val_fraction)}
    )
    fingerprint, inputs = fingerprint_inputs(sources, tok_part, split_rule, allowed_special,
                                             separator)

    if out_dir is not None:
        out = Path(out_dir).expanduser()
    else:  # one folder per choice of data: dataset, tokenizer and a non-default split
        name = f"{safe_name(label)}-{safe_name(tok_name)}"
        if not official and float(val_fraction) != 0.1:
            name += f"-val{float(val_fraction):g}"
        if max_bytes is not None:
            name += f"-first{max_bytes}"
        out = cache_dir() / "prepared" / name
    if not force:  # fast path, without the lock (works in a read-only cache too)
        existing = up_to_date(out, fingerprint)
        if existing is not None:
            if leftovers(out):
                try:
                    with folder_lock(out, verbose):
                        clean_leftovers(out, verbose)
                except OSError:  # a read-only cache: leave them
                    pass
            if verbose:
                print(f"prepare: {out} is up to date (same inputs); nothing to do.")
            return existing
    out.parent.mkdir(parents=True, exist_ok=True)
    with folder_lock(out, verbose):
        return _prepare_locked(out, label, sources, tok, tok_name, official, val_fraction,
                               split_rule, allowed_special, separator, fingerprint, inputs,
                               force, progress, verbose)


def _prepare_locked(out: Path, label: str, sources: list[Source], tok: Any, tok_name: str,
                    official: bool, val_fraction: float, split_rule: dict[str, Any],
                    allowed_special: Any, separator: str | None, fingerprint: str,
                    inputs: dict[str, Any], force: bool, progress: bool,
                    verbose: bool) -> PreparedData:
    """The part of :func:`prepare` that runs with the folder's lock held."""
    clean_leftovers(out, verbose)
    if not force:  # another prepare may have finished it while we waited
        existing = up_to_date(out, fingerprint)
        if existing is not None:
            if verbose:
                print(f"prepare: {out} is ready (prepared by another process); nothing to do.")
            return existing
    if out.exists():
        if not out.is_dir():
            raise ValueError(f"out_dir {out} exists and is a file; pass a directory path")
        if not has_only_our_files(out):
            extra = sorted(p.name for p in out.iterdir() if p.name not in OUR_FILES)
            raise ValueError(
                f"out_dir {out} already holds files that are not part of a prepared dataset "
                f"({', '.join(extra[:5])}{', ...' if len(extra) > 5 else ''}); prepare would "
                "replace the whole folder. Choose an empty or new out_dir."
            )
        why = None if force else other_settings(out, fingerprint, inputs)
        if why is not None:
            raise FileExistsError(
                f"{out} already holds a prepared dataset made with other settings ({why}); "
                "runs trained on it would see different data. Choose another folder "
                "(prepare --out-dir, or --set data.prepared_dir=... for train), or replace it "
                "with force=True (prepare --force)."
            )

    tmp = new_build_folder(out)
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
        write_atomic(tmp / "meta.json", json.dumps(meta, indent=2, default=str) + "\n")
        install(tmp, out)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and exc.errno is not None and (
                exc.filename is None or str(exc.filename).startswith(str(tmp))):
            exc.filename = str(out)  # name the folder asked for, not its temporary build
        raise
    if verbose:
        print(
            f"prepare: wrote {out} ({n_train:,} train + {n_val:,} val tokens, {dtype.name}, "
            f"vocab {vocab_size:,}) in {time.perf_counter() - started:.1f}s"
        )
    return PreparedData(out, meta)


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


def _build_char_tokenizer(sources: list[Source]) -> Any:
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
    sources: list[Source],
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
        out.flush()
        os.fsync(out.fileno())  # on disk before the folder is swapped in
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
        dst.flush()
        os.fsync(dst.fileno())
    with open(all_path, "r+b") as f:
        f.truncate(n_train * itemsize)
        os.fsync(f.fileno())

