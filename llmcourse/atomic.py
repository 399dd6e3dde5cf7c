"""The one way the package writes a file a user sees, and the one folder lock.

Every writer (checkpoints, run records, metrics, adapters, images, tables, prepared datasets)
goes through :func:`write_atomic`, so each has the same guarantees:

- the new content is written to a temporary file beside the target, flushed and ``fsync``-ed,
  then renamed over the target (a rename within a folder is atomic on POSIX and Windows): a
  reader sees the old file or the new one, never half of either, even after a crash or a full
  disk;
- a failed write removes its temporary file, leaves the old file byte-identical, and raises
  :class:`OSError` naming the target;
- ``overwrite=False`` refuses to replace an existing file (:class:`FileExistsError` naming it),
  checked again at the moment of the rename so that a file that appeared meanwhile is kept.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
>>> _ = write_atomic(p, "one\\n")
>>> _ = write_atomic(p, "two\\n", overwrite=False)
Traceback (most recent call last):
...
FileExistsError: [Errno 17] already exists; pass --force (overwrite=True) to replace it: ...a.txt'
>>> p.read_text()
'one\\n'
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
import uuid
from pathlib import Path
from typing import IO, Any, Callable, Iterator, Union

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

TMP_MARK = ".tmp-"  # temporary files are ``.<name>.tmp-<pid>-<hex>`` beside their target

Content = Union[bytes, str, Callable[[IO[bytes]], Any]]


def temp_path(target: Path) -> Path:
    """A fresh temporary name beside ``target`` (hidden, unique per process and call)."""
    return target.with_name(f".{target.name}{TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}")


def fsync_dir(folder: Path) -> None:
    """Make a rename inside ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _name_target(exc: BaseException, target: Path) -> None:
    if isinstance(exc, OSError) and exc.errno is not None:
        exc.filename = str(target)


def write_atomic(path: str | os.PathLike[str], content: Content, *,
                 overwrite: bool = True) -> Path:
    """Write ``content`` to ``path`` atomically and durably; return the path.

    ``content`` is bytes, text (written as UTF-8), or a function that writes to a binary file
    object (``lambda f: torch.save(obj, f)``, ``lambda f: fig.savefig(f, format="png")``).
    """
    target = Path(path)
    if not overwrite and target.exists():
        raise FileExistsError(errno.EEXIST,
                              "already exists; pass --force (overwrite=True) to replace it",
                              str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(target)
    try:
        with open(tmp, "wb") as fh:
            if isinstance(content, str):
                fh.write(content.encode("utf-8"))
            elif isinstance(content, (bytes, bytearray, memoryview)):
                fh.write(content)
            else:
                content(fh)
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, target)
        else:
            _rename_no_replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        _name_target(exc, target)
        raise
    fsync_dir(target.parent)
    return target


def _rename_no_replace(tmp: Path, target: Path) -> None:
    """Rename ``tmp`` to ``target`` unless ``target`` exists (then FileExistsError)."""
    try:
        os.link(tmp, target)  # fails with EEXIST if the target appeared meanwhile
    except FileExistsError:
        raise FileExistsError(errno.EEXIST,
                              "already exists; pass --force (overwrite=True) to replace it",
                              str(target)) from None
    except OSError:  # a file system without hard links: check, then rename
        if target.exists():
            raise FileExistsError(errno.EEXIST,
                                  "already exists; pass --force (overwrite=True) to replace it",
                                  str(target)) from None
        os.replace(tmp, target)
        return
    tmp.unlink()


def write_json_atomic(path: str | os.PathLike[str], obj: Any, *, overwrite: bool = True) -> Path:
    """:func:`write_atomic` of ``obj`` as indented, key-sorted JSON with a final newline."""
    return write_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n",
                        overwrite=overwrite)


def remove_stale_temp_files(target: Path) -> None:
    """Delete temporary files a killed writer of ``target`` left beside it."""
    for p in target.parent.glob(f".{target.name}{TMP_MARK}*"):
        with contextlib.suppress(OSError):
            if p.is_file():
                p.unlink()


@contextlib.contextmanager
def folder_lock(out: Path, verbose: bool = False, what: str = "prepare") -> Iterator[None]:
    """Hold ``.<name>.lock`` next to ``out``: one writer of that folder at a time.

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
        except OSError as exc:  # a read-only or forbidden folder: name the folder itself
            exc.filename = str(out)
            raise
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if verbose and not waited:
                print(f"{what}: waiting for another {what} of {out} to finish ...",
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
        with contextlib.suppress(OSError):
            path.unlink()
        fh.close()
