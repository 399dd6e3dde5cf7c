"""A prepared dataset on disk: its files, its ``meta.json``, and how they are read and checked.

:func:`llmcourse.data.prepare` writes, into one folder:

- ``train.bin``, ``val.bin``: the token ids back to back, raw ``uint16`` when the vocabulary has
  at most 65,536 entries (the GPT-2 tokenizer has 50,257), ``uint32`` otherwise;
- ``meta.json``: the tokenizer's spec, vocabulary size, dtype, token counts per split, the split
  rule, the source files with their size and sha256, a fingerprint of all inputs and the format
  version;
- ``tokenizer.json``: the tokenizer, saved (for a character or trained BPE tokenizer this is the
  only record of its vocabulary; for a tiktoken encoding it is just its name).

:class:`PreparedData` opens such a folder and reads a split as a ``np.memmap`` (a dataset of any
size costs no RAM), checking its size against ``meta.json`` and its ids against the vocabulary.

Example:
    >>> prep = open_prepared("~/.cache/llmcourse/prepared/shakespeare-char")  # doctest: +SKIP
    >>> prep.vocab_size, prep.dtype                                           # doctest: +SKIP
    (65, dtype('uint16'))
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from llmcourse.data.registry import normalize_split

__all__ = ["FORMAT_VERSION", "OUR_FILES", "PreparedData", "open_prepared", "read_json",
           "check_token_ids"]

#: Version of the prepared-directory layout; bumped when ``meta.json`` or the files change.
FORMAT_VERSION = 1

#: The files of a prepared folder (a folder holding others is never replaced).
OUR_FILES = frozenset({"train.bin", "val.bin", "meta.json", "tokenizer.json"})


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
