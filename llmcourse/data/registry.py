"""The registry of the course's datasets and where their files live on disk.

Two real, public corpora are known by name:

- ``shakespeare``: Tiny Shakespeare, the char-rnn corpus (one 1,115,394-byte file; the
  validation split is cut from its end by :func:`llmcourse.data.prepare`).
- ``tinystories``: TinyStories (Eldan & Li, 2023), with its official train and validation files.

Each file is described by a :class:`DatasetFile`: where to download it, its size and sha256 where
they are known, and the name of its offline copy.

Where the files are read from
-----------------------------
- ``LLMCOURSE_DATA_DIR`` set: *offline mode*. Files are read from that folder under their
  offline names (``tinyshakespeare.txt``, ``tinystories_train_head.txt``,
  ``tinystories_valid_head.txt``) and checked against the size and sha256 recorded for those
  copies. Nothing is downloaded. The TinyStories copies are samples (the first stories of each
  split), so their recorded hashes are the samples' hashes.
- Otherwise files are downloaded on first use into ``<cache>/datasets/<name>/``, where
  ``<cache>`` is ``LLMCOURSE_CACHE_DIR`` or ``~/.cache/llmcourse``.

Checksums
---------
Tiny Shakespeare has a well-known sha256, which every download is checked against. TinyStories
publishes no checksum, and its exact size is not recorded here either, so for it the download
is checked against the length the server announces, and the sha256 computed on the first
complete download is written next to the file (``<file>.sha256``, the format ``sha256sum -c``
reads). Every later use checks the file against that recorded hash, so a file corrupted after
download is detected. A copy put in the cache by hand has no recorded hash: it is checked
against a lower bound of the published size (``min_size``; the files are about 1.9 GB and
19 MB), so that a copy cut short is refused rather than recorded as the reference.

Example:
    >>> from llmcourse.data.registry import get_dataset_info
    >>> info = get_dataset_info("shakespeare")
    >>> info.splits
    ('train',)
    >>> info.files["train"].size
    1115394
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "UnknownDatasetError",
    "DatasetFile",
    "DatasetInfo",
    "DATASETS",
    "CACHE_ENV",
    "DATA_ENV",
    "cache_dir",
    "download_url",
    "MIRROR_ENV",
    "offline_data_dir",
    "get_dataset_info",
    "list_datasets",
    "normalize_split",
]

#: Environment variable naming the download/preparation cache (default ``~/.cache/llmcourse``).
CACHE_ENV = "LLMCOURSE_CACHE_DIR"
MIRROR_ENV = "LLMCOURSE_DATA_MIRROR"
"""A base URL that replaces every registered download address's folder (same file names): a
local mirror, a classroom server, or ``tools/colab_rehearsal.py``'s local HTTP server."""
#: Environment variable naming a folder of offline copies; when set, nothing is downloaded.
DATA_ENV = "LLMCOURSE_DATA_DIR"


class UnknownDatasetError(KeyError, ValueError):
    """An unknown dataset name. Its message lists the registered names."""

    def __str__(self) -> str:  # KeyError would show the repr of the message
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class DatasetFile:
    """One file of a dataset: where it comes from and how to check it.

    Attributes:
        url: where to download the full file.
        filename: the name of the downloaded file in the cache.
        size: its size in bytes, or ``None`` where it is not recorded (then the size the server
            announces is checked instead).
        sha256: its hex sha256, or ``None`` where the publisher gives none (then the hash
            computed on first download is recorded next to the file and checked afterwards).
        offline_name: the file's name in ``LLMCOURSE_DATA_DIR``.
        offline_size: size of the offline copy in bytes.
        offline_sha256: sha256 of the offline copy (which may be a sample of the full file).
        min_size: where ``size`` is not known, a size every complete copy exceeds (the
            published file is larger): a copy put in the cache by hand that is smaller is
            refused as cut short, before its hash is recorded as the reference.
    """

    url: str
    filename: str
    size: int | None
    sha256: str | None
    offline_name: str
    offline_size: int | None = None
    offline_sha256: str | None = None
    min_size: int | None = None


@dataclass(frozen=True)
class DatasetInfo:
    """A named dataset: a description, its files by split (``"train"``, maybe ``"val"``) and
    the line, if any, that separates its documents."""

    name: str
    description: str
    license: str
    files: dict[str, DatasetFile] = field(default_factory=dict)
    #: A line that separates documents in the full release (``None``: no such line).
    separator: str | None = None

    @property
    def splits(self) -> tuple[str, ...]:
        """The splits that have their own file, e.g. ``("train", "val")``."""
        return tuple(self.files)

    @property
    def has_official_val(self) -> bool:
        """Whether the publisher ships a separate validation file."""
        return "val" in self.files


_SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
_TINYSTORIES_BASE = "https://huggingface.co/datasets/roneneldan/TinyStories/resolve/main"

DATASETS: dict[str, DatasetInfo] = {
    "shakespeare": DatasetInfo(
        name="shakespeare",
        description="Tiny Shakespeare: about 40,000 lines of Shakespeare's plays (char-rnn corpus)",
        license="public domain (Shakespeare's text)",
        files={
            "train": DatasetFile(
                url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/"
                "tinyshakespeare/input.txt",
                filename="tinyshakespeare.txt",
                size=1_115_394,
                sha256=_SHAKESPEARE_SHA256,
                offline_name="tinyshakespeare.txt",
                offline_size=1_115_394,
                offline_sha256=_SHAKESPEARE_SHA256,
            ),
        },
    ),
    "tinystories": DatasetInfo(
        name="tinystories",
        description="TinyStories (V1): short synthetic stories in simple English, "
        "stories separated by <|endoftext|> lines",
        license="CDLA-Sharing-1.0",
        files={
            # No official checksum or exact size is published for these files: see the module doc.
            "train": DatasetFile(
                url=f"{_TINYSTORIES_BASE}/TinyStories-train.txt",
                filename="TinyStories-train.txt",
                size=None,
                sha256=None,
                offline_name="tinystories_train_head.txt",
                offline_size=944_426,
                offline_sha256="c56cfd24fb1c542b141a396184b822a4db3672abdb4c49c6aa843171c5e822a5",
                min_size=1_800_000_000,  # the published file is about 1.9 GB
            ),
            "val": DatasetFile(
                url=f"{_TINYSTORIES_BASE}/TinyStories-valid.txt",
                filename="TinyStories-valid.txt",
                size=None,
                sha256=None,
                offline_name="tinystories_valid_head.txt",
                offline_size=794_375,
                offline_sha256="5fc1fb0113df62b567fb271806cd645ce8d75f59c58ca0b764c03d3b6ff34ca6",
                min_size=18_000_000,  # the published file is about 19 MB
            ),
        },
        # The offline samples have no such lines: a single line break ends a story, blank lines
        # separate the paragraphs inside one.
        separator="<|endoftext|>",
    ),
}

_SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
}


def list_datasets() -> list[str]:
    """The names of the registered datasets, sorted."""
    return sorted(DATASETS)


def get_dataset_info(name: str) -> DatasetInfo:
    """Look up a registered dataset by name (case-insensitive).

    Raises:
        UnknownDatasetError: (a ``KeyError``) for an unknown name; the message lists the known
            ones.
    """
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a str, got {type(name).__name__}")
    key = name.strip().lower()
    if key not in DATASETS:
        raise UnknownDatasetError(
            f"unknown dataset {name!r}. Known datasets: {', '.join(list_datasets())}. "
            "To use your own text, pass the path of a UTF-8 text file instead."
        )
    return DATASETS[key]


def normalize_split(split: str) -> str:
    """Map ``"train"``/``"val"`` and their spellings (``"valid"``, ``"validation"``) to one name."""
    key = str(split).strip().lower()
    if key not in _SPLIT_ALIASES:
        raise ValueError(f"unknown split {split!r}: use 'train' or 'val'")
    return _SPLIT_ALIASES[key]


def cache_dir() -> Path:
    """The cache root: ``$LLMCOURSE_CACHE_DIR`` or ``~/.cache/llmcourse`` (not created here)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "llmcourse"


def download_url(url: str) -> str:
    """``url``, or the same file name under ``$LLMCOURSE_DATA_MIRROR`` when that is set.

    Example:
        >>> download_url("https://example.org/data/input.txt")  # doctest: +SKIP
        'http://127.0.0.1:8000/input.txt'
    """
    mirror = os.environ.get(MIRROR_ENV)
    if not mirror:
        return url
    return mirror.rstrip("/") + "/" + url.rstrip("/").rsplit("/", 1)[-1]


def offline_data_dir() -> Path | None:
    """The offline data folder from ``$LLMCOURSE_DATA_DIR``, or ``None`` when it is not set."""
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else None
