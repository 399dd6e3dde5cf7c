"""Download one URL into a file the safe way: resume, retries, checksums, an atomic rename.

:func:`download` fetches one URL into a file:

1. bytes go to ``<dest>.part``; an existing ``.part`` left by an interrupted run is resumed with
   an HTTP ``Range`` request (a server that ignores ``Range`` makes it start over);
2. network errors and server errors (5xx, 429) are retried with exponential backoff, each retry
   resuming where the last one stopped;
3. the finished ``.part`` is checked: its size against the expected size (or the size the
   server announced) and its sha256 against the expected hash. A file that fails is deleted and
   :class:`ChecksumError` is raised; an existing file at ``dest`` is left untouched;
4. only then is it flushed to disk and renamed onto ``dest`` (atomic on one file system), so
   ``dest`` never holds a partial file, and its sha256 is recorded next to it in
   ``<dest>.sha256``.

The ``.part`` file keeps a fixed name (not :func:`llmcourse.atomic.temp_path`'s unique one) so
that the next run finds it and resumes.

Example:
    >>> p = download("https://example.org/input.txt", "/tmp/input.txt")  # doctest: +SKIP
"""

from __future__ import annotations

import http.client
import os
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from pathlib import Path

from llmcourse.atomic import fsync_dir
from llmcourse.data.checksums import (
    CHUNK,
    check_file,
    human_size,
    read_sidecar,
    sha256_file,
    write_sidecar,
)
from llmcourse.data.registry import DATA_ENV

__all__ = ["DownloadError", "ChecksumError", "download", "manual_help", "DEFAULT_RETRIES",
           "DEFAULT_BACKOFF"]

#: Retries after a transient failure, and the first backoff in seconds (doubled each retry),
#: used when :func:`download` is called without them (e.g. by :func:`dataset_path`).
DEFAULT_RETRIES = 4
DEFAULT_BACKOFF = 1.0
_USER_AGENT = "llmcourse-data/1 (+urllib)"

class DownloadError(RuntimeError):
    """A file could not be downloaded (offline, not found, server kept failing)."""


class ChecksumError(RuntimeError):
    """A file's size or sha256 is not what was expected (a corrupted or changed file)."""


def _part(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def manual_help(url: str, dest: Path, offline_name: str | None = None,
                size: str | None = None) -> str:
    """What to do when a file cannot be downloaded here: how to place a good copy by hand.

    ``size`` describes the whole file (``"1,115,394 bytes"``, ``"about 1.9 GB"``), so that a
    copy cut short can be told from a complete one.
    """
    whole = f"the whole file ({size})" if size else "the whole file"
    text = (f"Download {whole} yourself from {url} and save it as {dest} once it is complete "
            f"(e.g. curl -L -o '{dest}' '{url}')")
    if offline_name is not None:
        text += (f", or put a copy named {offline_name!r} in a folder and set {DATA_ENV} to "
                 "that folder")
    return text + "."


def _is_transient_http(code: int) -> bool:
    return code == 429 or code == 408 or 500 <= code < 600


def _announce(desc: str, url: str, total: int | None, head: int | None, offset: int) -> None:
    """Say how much is about to be downloaded, before the first byte (on stderr)."""
    host = urllib.parse.urlsplit(url).netloc or url
    if head is not None:
        whole = f" ({human_size(total)} in all)" if total is not None else ""
        what = f"the first {human_size(head)} of {desc}{whole}"
    else:
        what = f"{desc}: {human_size(total)}"
    resume = f", resuming after {human_size(offset)}" if offset else ""
    print(f"downloading {what} from {host}{resume}", file=sys.stderr, flush=True)


def _fetch_once(
    url: str, part: Path, timeout: float, progress: bool, desc: str, head: int | None = None,
    size: int | None = None,
) -> int | None:
    """One attempt: append the rest of ``url`` to ``part``. Return the announced total size.

    With ``head``, only the file's first ``head`` bytes are fetched (an HTTP ``Range`` request;
    from a server that ignores it, the reading stops after ``head`` bytes). With ``progress``,
    the size is stated on stderr before the first byte (``size``, the registry's, or the server's
    answer) and a progress bar follows.

    Raises the network's exceptions unchanged; the caller decides what to retry.
    """
    offset = part.stat().st_size if part.exists() else 0
    if head is not None and offset >= head:
        return None
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    if head is not None:
        request.add_header("Range", f"bytes={offset}-{head - 1}")
    elif offset > 0:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset > 0:
            # Range not satisfiable: the part file already holds the whole file (or is
            # longer than it). Let the caller's checks decide; report the part's size.
            err.close()
            return offset
        raise
    with response:
        status = getattr(response, "status", 200)
        length = response.headers.get("Content-Length")
        total: int | None = None
        mode = "ab"
        if offset > 0 and status == 206:
            content_range = response.headers.get("Content-Range", "")
            # "bytes START-END/TOTAL"
            try:
                span, _, total_text = content_range.partition(" ")[2].partition("/")
                start = int(span.split("-")[0])
                total = int(total_text) if total_text not in ("", "*") else None
            except ValueError:
                start = -1
            if start != offset:  # the server resumed from elsewhere: start over
                response.close()
                part.unlink(missing_ok=True)
                return _fetch_once(url, part, timeout, progress, desc, head, size)
        elif head is not None and status == 206:
            offset, mode = 0, "wb"
            total_text = response.headers.get("Content-Range", "").rpartition("/")[2]
            total = int(total_text) if total_text.isdigit() else None
        else:
            # 200: the whole file from byte 0 (a server without Range support).
            offset = 0
            mode = "wb"
            total = int(length) if length is not None else None
        expected_body = None if length is None else int(length)
        limit = None if head is None else head - offset  # bytes still wanted of a head
        if head is not None and status != 206:
            expected_body = None if expected_body is None else min(expected_body, limit)
        if progress:
            _announce(desc, url, size if size is not None else total, head, offset)

        from tqdm.auto import tqdm

        received = 0
        with open(part, mode) as f, tqdm(
            total=total if head is None else min(head, total or head),
            initial=offset,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=desc,
            disable=not progress,
            leave=False,
        ) as bar:
            while block := response.read(CHUNK if limit is None else min(CHUNK, limit - received)):
                f.write(block)
                received += len(block)
                bar.update(len(block))
                if limit is not None and received >= limit:
                    break
        if expected_body is not None and received < expected_body:
            raise http.client.IncompleteRead(b"", expected_body - received)
        return total


def download(
    url: str,
    dest: str | os.PathLike[str],
    *,
    sha256: str | None = None,
    size: int | None = None,
    retries: int | None = None,
    backoff: float | None = None,
    timeout: float = 60.0,
    progress: bool = True,
    force: bool = False,
    desc: str | None = None,
    help_text: str | None = None,
    head: int | None = None,
) -> Path:
    """Download ``url`` to ``dest`` with resume, retries, verification and an atomic rename.

    With ``progress``, the size is stated (on stderr) before the first byte: the registry's
    ``size`` or the server's answer, and a progress bar follows. With ``head=N`` only the first
    ``N`` bytes are fetched (an HTTP ``Range`` request, so a 2 GB file is not read to use its
    start), cut back to the last complete line so that a text file ends cleanly.

    Args:
        url: what to fetch (``http``, ``https`` or ``file`` URL).
        dest: the final path. Its folder is created.
        sha256: expected hex sha256, or ``None``. Without it, a hash recorded earlier in
            ``<dest>.sha256`` is used to check an existing ``dest``.
        size: expected size in bytes, or ``None`` (then the size the server announces is used).
        retries: how many times to retry after a transient failure (so ``retries + 1`` tries);
            default :data:`DEFAULT_RETRIES`.
        backoff: seconds before the first retry, doubled on each later one; default
            :data:`DEFAULT_BACKOFF`.
        timeout: socket timeout per request, in seconds.
        progress: show a tqdm progress bar.
        force: download even if ``dest`` exists and verifies. ``dest`` is replaced only by a
            complete, verified download.
        desc: label for the progress bar (defaults to the file name).
        help_text: extra advice appended to a :class:`DownloadError`.
        head: fetch only the first ``head`` bytes (``size`` and ``sha256`` then describe that
            sample, if given).

    Returns:
        ``dest`` as a :class:`~pathlib.Path`.

    Raises:
        DownloadError: the file could not be fetched (offline, HTTP 404, retries exhausted).
        ChecksumError: the download's size or sha256 is wrong; the bad data is deleted.
    """
    dest = Path(dest)
    retries = DEFAULT_RETRIES if retries is None else int(retries)
    backoff = DEFAULT_BACKOFF if backoff is None else float(backoff)
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    if head is not None and (isinstance(head, bool) or not isinstance(head, int) or head < 1):
        raise ValueError(f"head must be a positive number of bytes, got {head!r}")
    expected_sha = sha256.lower() if sha256 else None

    if dest.exists() and not force:
        recorded = read_sidecar(dest)
        fault = check_file(dest, size, expected_sha or recorded)
        if fault is None:
            if recorded is None or (expected_sha is not None and recorded != expected_sha):
                # A file put there by hand (or an old cache): record its hash from now on, so
                # that later corruption is detected.
                write_sidecar(dest, expected_sha or sha256_file(dest))
            return dest
        warnings.warn(
            f"the cached file {dest} is corrupted ({fault}); downloading it again. "
            "It is replaced only once the new download has been verified.",
            stacklevel=2,
        )

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = _part(dest)
    help_text = help_text or manual_help(url, dest)
    label = desc or dest.name

    announced: int | None = None
    last_error: BaseException | None = None
    for attempt in range(retries + 1):
        if attempt > 0:
            time.sleep(backoff * (2 ** (attempt - 1)))
        try:
            announced = _fetch_once(url, part, timeout, progress, label, head, size)
            last_error = None
            break
        except urllib.error.HTTPError as err:
            if not _is_transient_http(err.code):
                raise DownloadError(
                    f"could not download {url}: HTTP {err.code} {err.reason}. {help_text}"
                ) from err
            last_error = err
        except (urllib.error.URLError, http.client.HTTPException, socket.timeout,
                ConnectionError, TimeoutError) as err:
            last_error = err
        except OSError as err:  # e.g. connection reset while reading
            if isinstance(err, (FileNotFoundError, PermissionError, IsADirectoryError)):
                raise
            last_error = err
    if last_error is not None:
        reason = getattr(last_error, "reason", None) or last_error
        kept = (
            f" The {part.stat().st_size:,} bytes received so far are kept in {part} and the "
            "next attempt resumes from there."
            if part.exists() and part.stat().st_size > 0
            else ""
        )
        raise DownloadError(
            f"could not download {url} after {retries + 1} attempts (last error: {reason}). "
            f"Are you offline?{kept} {help_text}"
        ) from last_error

    if head is not None:
        _cut_to_last_line(part, head, announced)
        announced = None  # the server announced the whole file's size, not the sample's
    want_size = size if size is not None else announced
    fault = check_file(part, want_size, None)
    if fault is None:
        actual_sha = sha256_file(part)
        if expected_sha is not None and actual_sha != expected_sha:
            fault = f"its sha256 is {actual_sha}, expected {expected_sha}"
    if fault is not None:
        part.unlink(missing_ok=True)
        kept = (
            f" The existing file at {dest} was left as it was."
            if dest.exists()
            else ""
        )
        raise ChecksumError(
            f"the download of {url} is corrupted: {fault}. The bad download was deleted.{kept} "
            "Try again; if it keeps failing the file on the server has changed or a proxy is "
            f"altering it. {help_text}"
        )
    with open(part, "rb+") as f:  # on disk before the rename, as llmcourse.atomic does
        os.fsync(f.fileno())
    os.replace(part, dest)
    fsync_dir(dest.parent)
    write_sidecar(dest, actual_sha)
    return dest


def _cut_to_last_line(part: Path, head: int, total: int | None) -> None:
    """Cut a head sample back to its last complete line (unless it holds the whole file)."""
    size = part.stat().st_size
    if size < head or (total is not None and size >= total):
        return  # the whole file: nothing was cut
    with open(part, "rb+") as f:
        f.seek(max(0, size - (1 << 20)))
        tail = f.read()
        cut = tail.rfind(b"\n")
        if cut >= 0:
            f.truncate(size - len(tail) + cut + 1)

