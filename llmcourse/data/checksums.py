"""Checking a data file: its sha256, its size, and the hash recorded next to it.

A verified download records its sha256 in ``<file>.sha256`` (the format ``sha256sum -c``
reads), so that every later use can check the file against it and a file damaged after the
download is detected.

Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"; _ = p.write_bytes(b"abc")
    >>> check_file(p, 3, None) is None
    True
    >>> check_file(p, 4, None)
    'its size is 3 bytes, expected 4'
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from llmcourse.atomic import write_atomic

__all__ = ["sha256_file", "human_size", "check_file", "read_sidecar", "write_sidecar",
           "sidecar_path"]

CHUNK = 1 << 20  # bytes per read


def sha256_file(path: str | os.PathLike[str], chunk_size: int = CHUNK) -> str:
    """The hex sha256 of a file, read in chunks (bounded memory).

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"; _ = p.write_bytes(b"abc")
        >>> sha256_file(p)[:16]
        'ba7816bf8f01cfea'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def human_size(n: int | None) -> str:
    """``1536`` -> ``'1.5 kB'``, ``None`` -> ``'an unknown size'`` (decimal units, as servers state them).

    Example:
        >>> human_size(1_915_000_000), human_size(999), human_size(None)
        ('1.9 GB', '999 bytes', 'an unknown size')
    """
    if n is None:
        return "an unknown size"
    if n < 1000:
        return f"{n} bytes"
    for unit in ("kB", "MB", "GB", "TB"):
        n_units = n / 1000.0
        if n_units < 1000 or unit == "TB":
            return f"{n_units:.1f} {unit}"
        n = int(n_units)
    return f"{n} bytes"  # pragma: no cover


def sidecar_path(dest: Path) -> Path:
    """Where the sha256 of ``dest`` is recorded: ``<dest>.sha256``."""
    return dest.with_name(dest.name + ".sha256")


def read_sidecar(dest: Path) -> str | None:
    """The sha256 recorded next to ``dest``, or ``None`` (no record, or an unreadable one)."""
    try:
        text = sidecar_path(dest).read_text(encoding="utf-8").split()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    if text and len(text[0]) == 64 and all(c in "0123456789abcdef" for c in text[0].lower()):
        return text[0].lower()
    return None


def write_sidecar(dest: Path, digest: str) -> None:
    """Record ``digest`` in ``<dest>.sha256`` (``sha256sum -c`` format); skip a read-only folder."""
    try:
        write_atomic(sidecar_path(dest), f"{digest}  {dest.name}\n")
    except OSError:
        pass


def check_file(path: Path, size: int | None, sha256: str | None) -> str | None:
    """Return ``None`` when ``path`` matches ``size``/``sha256``, else a description of the fault."""
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        return f"its size is {actual_size:,} bytes, expected {size:,}"
    if sha256 is not None:
        actual = sha256_file(path)
        if actual != sha256.lower():
            return f"its sha256 is {actual}, expected {sha256.lower()}"
    return None
