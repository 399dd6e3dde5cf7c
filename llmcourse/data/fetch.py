"""Find a registered dataset's files on disk, downloading them on first use.

:func:`dataset_path` and :func:`load_text` are what the lessons use. A file is read from the
offline copies in ``LLMCOURSE_DATA_DIR`` when that is set, else from the cache, where it is
downloaded on first use by ``llmcourse.data.downloader.download`` (resume, retries,
checksums) and checked on every later use.

    >>> from llmcourse.data import load_text
    >>> text = load_text("shakespeare")        # doctest: +SKIP
    >>> text[:14]                              # doctest: +SKIP
    'First Citizen:'
"""

from __future__ import annotations

import os
from pathlib import Path

from llmcourse.data.checksums import check_file, human_size, read_sidecar, sha256_file
from llmcourse.data.downloader import ChecksumError, DownloadError, download, manual_help
from llmcourse.data.registry import (
    CACHE_ENV,
    DATASETS,
    DATA_ENV,
    DatasetFile,
    cache_dir,
    download_url,
    get_dataset_info,
    normalize_split,
    offline_data_dir,
)

__all__ = [
    "DownloadError",
    "ChecksumError",
    "sha256_file",
    "human_size",
    "download",
    "dataset_path",
    "load_text",
]

_download_file = download  # dataset_path's ``download`` flag shadows the function's name


def _resolve_file(name: str, split: str) -> tuple[str, str, DatasetFile]:
    info = get_dataset_info(name)
    split = normalize_split(split)
    if split not in info.files:
        raise ValueError(
            f"dataset {info.name!r} has no separate {split!r} file (its files: "
            f"{', '.join(info.splits)}). Its validation split is cut from the end of the train "
            "text by prepare(..., val_fraction=...)."
        )
    return info.name, split, info.files[split]


def dataset_path(
    name: str,
    split: str = "train",
    *,
    download: bool = True,
    verify: bool = True,
    progress: bool = True,
    max_bytes: int | None = None,
) -> Path:
    """The local path of one file of a registered dataset, downloading it on first use.

    ``max_bytes=N`` asks for the file's first ``N`` bytes only (cut at a line end), downloaded
    with an HTTP ``Range`` request and cached as ``<name>.first-<N>.txt``: what a lesson on a
    CPU uses of TinyStories' 2 GB training file. The offline copies are samples already and are
    returned as they are.

    With ``LLMCOURSE_DATA_DIR`` set the offline copy in that folder is used (and checked against
    its recorded size and sha256); otherwise the file is cached under
    ``<cache>/datasets/<name>/``.

    Args:
        name: a registered dataset (see :func:`llmcourse.data.list_datasets`).
        split: ``"train"`` or ``"val"`` (``"valid"``/``"validation"`` are accepted).
        download: fetch a missing file (set ``False`` to only look).
        verify: check the file's size and sha256 (cheap for the small files; for the full
            TinyStories it hashes about 2 GB).
        progress: state the size, then show a progress bar while downloading.
        max_bytes: only the first ``max_bytes`` bytes of the file (``None``: all of it).

    Raises:
        KeyError: unknown dataset name.
        ValueError: the dataset has no file for that split.
        FileNotFoundError: the file is missing and cannot be downloaded here.
        DownloadError, ChecksumError: see :func:`download`.

    Example:
        >>> dataset_path("shakespeare").name  # doctest: +SKIP
        'tinyshakespeare.txt'
    """
    ds_name, split, spec = _resolve_file(name, split)
    offline = offline_data_dir()
    if offline is not None:
        path = offline / spec.offline_name
        if not path.is_file():
            raise FileNotFoundError(
                f"{DATA_ENV} is set to {offline}, but the {ds_name} {split} file "
                f"{spec.offline_name!r} is not there. Put the file at {path} (its full version "
                f"is at {spec.url}), or unset {DATA_ENV} to download into the cache."
            )
        if verify:
            fault = check_file(path, spec.offline_size, spec.offline_sha256)
            if fault is not None:
                raise ChecksumError(
                    f"the offline copy {path} is not the expected file: {fault}. Replace it with "
                    f"a good copy (from {spec.url}) or unset {DATA_ENV}."
                )
        return path

    if max_bytes is not None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
            raise ValueError(f"max_bytes must be a positive number of bytes, got {max_bytes!r}")
        if spec.size is not None and max_bytes >= spec.size:
            max_bytes = None  # the whole file is asked for
    filename = spec.filename
    if max_bytes is not None:
        stem, dot, suffix = spec.filename.rpartition(".")
        filename = f"{stem}.first-{max_bytes}.{suffix}" if dot else f"{spec.filename}.first-{max_bytes}"
    dest = cache_dir() / "datasets" / ds_name / filename
    help_text = (
        manual_help(spec.url, dest, spec.offline_name, _whole_size(spec))
        + f" (The cache folder is set by {CACHE_ENV}.)"
    )
    if verify and max_bytes is None and dest.is_file():
        _refuse_cut_copy(dest, spec, f"{ds_name} {split}")
    if not download:
        if not dest.is_file():
            raise FileNotFoundError(
                f"the {ds_name} {split} file is not in the cache ({dest}) and download=False. "
                + help_text
            )
        if verify:
            fault = check_file(dest, None if max_bytes else spec.size,
                                (None if max_bytes else spec.sha256) or read_sidecar(dest))
            if fault is not None:
                raise ChecksumError(f"the cached file {dest} is corrupted: {fault}. "
                                    "Delete it and call again with download=True.")
        return dest
    if dest.is_file() and not verify:
        return dest
    return _download_file(
        download_url(spec.url),
        dest,
        sha256=None if max_bytes else spec.sha256,
        size=None if max_bytes else spec.size,
        progress=progress,
        desc=f"{ds_name} {split}",
        help_text=help_text,
        head=max_bytes,
    )


def _whole_size(spec: DatasetFile) -> str | None:
    """The size of the published file in words: exact where known, else its lower bound."""
    if spec.size is not None:
        return f"{spec.size:,} bytes"
    if spec.min_size is not None:
        return f"over {human_size(spec.min_size)}"
    return None


def _refuse_cut_copy(dest: Path, spec: DatasetFile, what: str) -> None:
    """Refuse a copy put in the cache by hand that is smaller than any complete copy.

    Where the publisher gives no size or hash (TinyStories), a copy placed by hand (it has no
    ``.sha256`` record, which only a verified download writes) cannot be checked exactly; a
    copy cut short is at least caught by its size, before its hash becomes the reference.
    """
    if spec.size is not None or spec.sha256 is not None or spec.min_size is None:
        return  # checked exactly by the download's size and hash instead
    if read_sidecar(dest) is not None:
        return  # downloaded and verified here: checked against its recorded hash
    size = dest.stat().st_size
    if size < spec.min_size:
        raise ChecksumError(
            f"the {what} file {dest} holds {size:,} bytes, but the published file is over "
            f"{human_size(spec.min_size)}: it is a copy cut short (an interrupted download "
            f"or copy?). Delete it and run again to download it, or save the whole file from "
            f"{spec.url} at that path once it is complete."
        )


def load_text(name: str | os.PathLike[str], split: str = "train", **kw: object) -> str:
    """The whole text of a registered dataset's file (or of a text file path), as one string.

    Example:
        >>> text = load_text("shakespeare")  # doctest: +SKIP
        >>> len(text)                        # doctest: +SKIP
        1115394
    """
    if isinstance(name, str) and (
        name.strip().lower() in DATASETS or not _looks_like_path(name)
    ):
        path = dataset_path(name, split, **kw)  # type: ignore[arg-type]
    else:
        path = Path(name)
        if not path.is_file():
            raise FileNotFoundError(f"no text file at {path}")
    return path.read_text(encoding="utf-8")


def _looks_like_path(name: str) -> bool:
    return os.sep in name or "/" in name or name.endswith(".txt") or Path(name).is_file()
