"""What every ``llmcourse`` subcommand shares: its error type, argument checks, one-line faults.

This module sits below the commands (``cli.commands``, ``cli.sample``, ``cli.plot``,
``cli.sweep``): each of them imports it, and it imports none of them.

>>> count(1)("3")
3
>>> number_in(10, 600, "a resolution")("20000")
Traceback (most recent call last):
...
argparse.ArgumentTypeError: must be between 10 and 600 (a resolution), got 20000
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
from typing import Any, Callable, Iterator


class UserError(Exception):
    """An error in what the user asked for: printed as one line, without a traceback."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (and the subcommand's help hint)."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def count(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def count_upto(minimum: int, maximum: int, what: str) -> Callable[[str], int]:
    """An argparse type: an integer >= ``minimum`` and <= ``maximum`` (``what`` says why).

    >>> count_upto(1, 16384, "1 GiB a matrix")("99999")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: must be <= 16384 (1 GiB a matrix), got 99999
    """
    at_least = count(minimum)

    def parse(text: str) -> int:
        value = at_least(text)
        if value > maximum:
            raise argparse.ArgumentTypeError(f"must be <= {maximum} ({what}), got {value}")
        return value

    parse.__name__ = f"integer in [{minimum}, {maximum}]"
    return parse


#: The exit statuses of :func:`llmcourse.cli.main`, shown under a command's ``--help``.
EXIT_STATUS = ("exit status: 0 done, 2 a mistake in what was asked (one line on stderr), "
               "1 a fault of the machine (disk, permission, memory) or a bug, 130 interrupted")


#: The largest seed: torch's generators take 64-bit seeds, and sample s of ``--seed S`` uses S + s.
MAX_SEED = 2**63 - 1
#: ``--seed``: a whole number from 0 to :data:`MAX_SEED`.
seed_number = count_upto(0, MAX_SEED, "2**63 - 1, the largest seed torch takes; e.g. --seed 1337")


def non_empty_path(text: str) -> str:
    """An argparse type: a path that is not the empty string (which would mean this folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty; give a path, e.g. out/my-run")
    return text


def number_in(low: int, high: int, what: str) -> Callable[[str], int]:
    """An argparse type: a whole number in ``[low, high]`` (``what`` says what it measures)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high} ({what}), "
                                             f"got {value}")
        return value

    parse.__name__ = f"integer in [{low}, {high}]"
    return parse


def stop_string(text: str) -> str:
    """An argparse type: a non-empty stop string; ``\\n`` and ``\\t`` mean newline and tab."""
    if text == "":
        raise argparse.ArgumentTypeError("is empty; give the text that ends a sample, e.g. "
                                         "--stop '\\n\\n'")
    return text.replace("\\n", "\n").replace("\\t", "\t")


def refuse_existing(path: str, option: str = "--out") -> None:
    """Refuse, before any work, to write ``path`` when it exists (the caller checks ``--force``)."""

    if os.path.isdir(path):
        raise UserError(f"{option} {path} is a folder; give a file name")
    if os.path.lexists(path):
        raise UserError(f"{option} {path} already exists and is not replaced; give another "
                        "name, or pass --force to replace it")


def os_message(exc: OSError) -> str:
    """One line for a fault of the machine, naming the path and what to do."""
    where = exc.filename or "a file"
    if exc.errno == errno.ENOSPC:
        return f"no space left on the device while writing {where}: free some space or " \
               "choose a folder on another disk (out_dir / --out-dir)"
    if exc.errno == errno.EROFS:
        return f"{where} is on a read-only file system: choose a writable folder"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied for {where}: choose a folder you can write to, or fix its " \
               "permissions"
    if exc.errno == errno.EDQUOT:
        return f"disk quota exceeded while writing {where}: free some space"
    return f"{exc.strerror or exc} ({where})"


def file_above(path: str) -> str | None:
    """The nearest existing part of ``path`` (itself or a folder above it) that is not a folder.

    >>> file_above("/no/such/place") is None
    True
    """

    here = os.path.abspath(path)
    while True:
        if os.path.lexists(here):
            return None if os.path.isdir(here) else here
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def check_parent_folders(path: str, option: str) -> None:
    """Refuse, before any work, a path to write under a file (``afile/out.png``)."""

    blocker = file_above(os.path.dirname(os.path.abspath(path)))
    if blocker is not None:
        raise UserError(f"{option} {path}: {blocker} is a file, not a folder, so nothing can be "
                        "written inside it; choose a path in a folder")


def check_writable_folder(folder: str) -> None:
    """Raise the ``OSError`` that writing into ``folder`` would raise (read-only, no
    permission), before any work; a folder that does not exist yet is left to the writer."""

    if not os.path.isdir(folder):
        return
    if hasattr(os, "statvfs") and os.statvfs(folder).f_flag & getattr(os, "ST_RDONLY", 1):
        raise OSError(errno.EROFS, "Read-only file system", folder)
    if not os.access(folder, os.W_OK):
        raise PermissionError(errno.EACCES, "Permission denied", folder)


def path_message(exc: OSError) -> str | None:
    """A line saying what to do for the operating system's own error about a path.

    None for an error llmcourse raised with its own message (it has no ``errno``): that
    message already says what to do.
    """

    path = exc.filename
    if exc.errno is None or not path:
        return None
    path = os.fspath(path)
    if exc.errno == errno.ENOTDIR or (exc.errno == errno.EEXIST and os.path.isfile(path)):
        blocker = file_above(path) or path
        return f"{path}: {blocker} is a file, not a folder, so nothing can be made inside it; " \
               "move that file or choose another path"
    if exc.errno == errno.ENOENT:
        return f"{path} does not exist; check the path"
    if exc.errno == errno.EISDIR:
        return f"{path} is a folder where a file is needed; give a file"
    return None


#: What to make smaller, per command, when the memory runs out.
MEMORY_HINTS = {
    "train": "use smaller settings: batch_size, block_size, n_embd or n_layer (--set ...)",
    "sweep": "use smaller settings: batch_size, block_size, n_embd or n_layer (--set, --grid)",
    "eval": "give a smaller --batch-size",
    "sample": "give a smaller --max-new-tokens or use a smaller model",
    "bench": "give a smaller --size or --iters",
}


def out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` says that an allocation failed (CPU or GPU memory)."""
    if isinstance(exc, MemoryError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and (
        type(exc).__name__ == "OutOfMemoryError" or "can't allocate memory" in text
        or "out of memory" in text.lower())


def memory_message(exc: BaseException, command: str) -> str:
    """One line for an allocation that failed: how much was asked, and what to make smaller.

    >>> memory_message(MemoryError("Unable to allocate 3.17 GiB for an array"), "eval")
    'not enough memory: an allocation of 3.17 GiB failed; give a smaller --batch-size'
    """
    import re

    found = re.search(r"allocate (\d+) bytes|allocate ([\d.]+ ?[KMGT]i?B)", str(exc))
    size = ""
    if found:
        size = f"{int(found[1]) / 2**30:.1f} GiB" if found[1] else found[2].replace(". ", " ")
        size = f": an allocation of {size} failed"
    hint = MEMORY_HINTS.get(command, "ask for less, or free some memory")
    return f"not enough memory{size}; {hint}"


def one_line(message: Any) -> str:
    """``message`` as one line: an error's further lines joined by semicolons."""
    lines = [part.strip() for part in str(message).splitlines() if part.strip()]
    return "; ".join(lines)


@contextlib.contextmanager
def prompt_interrupt(on_stuck: Callable[[], None], grace: float = 2.0) -> Iterator[None]:
    """Make Ctrl-C end the program within ``grace`` seconds, even inside one long operation.

    Python handles a signal between two bytecodes, so a single long torch operation (an
    attention over a huge context) can hold back the ``KeyboardInterrupt`` for minutes. Here a
    thread learns of the signal through :func:`signal.set_wakeup_fd`; when the main thread has
    not started handling it ``grace`` seconds later, the thread calls ``on_stuck()`` (which
    prints the one-line error) and exits the process with status 130, as ``kill -9`` would:
    every file the package writes is renamed into place complete, so none is left half-written.

    Only for the command-line program: a notebook that calls ``cli.main([...])`` keeps its
    kernel (``main`` uses this only when it reads ``sys.argv`` itself).
    """
    import signal
    import threading

    if os.name != "posix" or threading.current_thread() is not threading.main_thread():
        yield
        return
    handled = threading.Event()
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)

    def on_sigint(signum: int, frame: Any) -> None:
        handled.set()
        raise KeyboardInterrupt

    def watch() -> None:
        while True:
            try:
                data = os.read(read_fd, 64)
            except OSError:
                return
            if not data:  # the command ended: the pipe is closed
                return
            if signal.SIGINT in data and not handled.wait(grace):
                on_stuck()
                os._exit(130)

    old_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    old_handler = signal.signal(signal.SIGINT, on_sigint)
    thread = threading.Thread(target=watch, name="llmcourse-interrupt", daemon=True)
    thread.start()
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old_handler)
        signal.set_wakeup_fd(old_fd)
        os.close(write_fd)
        thread.join(timeout=1.0)
        os.close(read_fd)
