"""``llmcourse check``: run a notebook headless and collect the verdicts its checks record.

The verdicts do not come from what the notebook prints. Each run makes a fresh private folder
with a random key in a file; the kernel's check functions (``llmcourse.checks._core``) read
that key once when they are imported, remove the file, and sign every verdict record they
append to the run's record file (``$LLMCOURSE_CHECK_LOG``). Only records whose signature is
right, written while a check cell ran, count: a cell that prints "✅ vocabulary: passed" is
not a pass. The kernel runs confined where the system allows (see
:mod:`llmcourse.learner.sandbox`); book/exercises.md states what a determined author of the
notebook can still do.

Example::

    >>> print_table([Row("vocabulary", "passed", "passed")], width=100)
    exercise    verdict     message
    vocabulary  passed
    1 of 1 checks passed
"""

from __future__ import annotations

import atexit
import dataclasses
import hmac
import json
import os
import re
import secrets
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from llmcourse.checks._core import CHECK_KEY_ENV, CHECK_LOG_ENV, sign_record
from llmcourse.learner.notebooks import LearnerError, read_code_cells
from llmcourse.learner.sandbox import Confinement, find_confinement
from llmcourse.threads import cpu_threads, kernel_env

__all__ = ["Row", "NotebookRunError", "run_checks", "print_table", "signed_records",
           "NO_CONFINEMENT"]

VERDICT_RE = re.compile(r"^(?P<mark>[✅❌⏳])\s+(?P<exercise>[^:]+?):\s*(?P<message>.*)$")
NO_CONFINEMENT = ("no confinement available here (neither bubblewrap nor an unprivileged user "
                  "namespace works): the notebook runs with your rights; check only notebooks you "
                  "trust, or install bubblewrap (bwrap)")


class NotebookRunError(RuntimeError):
    """The notebook could not be run to its end (its kernel died); the message says where."""


@dataclasses.dataclass
class Row:
    """One line of the ``llmcourse check`` table."""

    exercise: str
    verdict: str  # "passed", "hint", "not done", or "error" (the check cell raised)
    message: str


def _row(record: dict[str, Any]) -> Row:
    """The table row of a verdict record (its line is the one the check printed)."""
    match = VERDICT_RE.match(record["line"].strip())
    message = match["message"] if match else record["line"]
    if record["passed"]:
        verdict = "passed"
    elif (match and match["mark"] == "⏳") or "not done yet" in message:
        verdict = "not done"
    else:
        verdict = "hint"
    return Row(record["exercise"], verdict, message)


def signed_records(text: str, key: bytes) -> list[dict[str, Any]]:
    """The records of a record file's ``text`` that carry a right signature for ``key``.

    Example::

        >>> good = {"exercise": "add", "passed": True, "line": "✅ add: passed"}
        >>> good["sig"] = sign_record(b"key", good)
        >>> forged = dict(good, sig="0" * 64)
        >>> lines = "\\n".join(json.dumps(r) for r in (good, forged)) + "\\nnot json\\n"
        >>> [r["exercise"] for r in signed_records(lines, b"key")]
        ['add']
    """
    kept = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not (isinstance(record, dict) and isinstance(record.get("sig"), str)
                and isinstance(record.get("exercise"), str) and isinstance(record.get("line"), str)
                and isinstance(record.get("passed"), bool)):
            continue
        if hmac.compare_digest(record["sig"], sign_record(key, record)):
            kept.append(record)
    return kept


def _notebook_to_run(path: Path) -> Any:
    """A fresh nbformat notebook holding the code cells (and tags) of ``path``, no outputs."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    for cell in read_code_cells(path):
        nb.cells.append(nbformat.v4.new_code_cell("\n".join(cell.lines), metadata={"tags": cell.tags}))
    return nb


def _kernel_manager(kernel: str, work: Path, box: Optional[Confinement]) -> Any:
    """A kernel manager that talks over files in ``work`` (no TCP) and starts the kernel confined."""
    from jupyter_client.manager import AsyncKernelManager

    class ConfinedKernelManager(AsyncKernelManager):
        def format_kernel_cmd(self, extra_arguments: Optional[list[str]] = None) -> list[str]:
            command = super().format_kernel_cmd(extra_arguments)
            return box.wrap(command) if box is not None else command

    return ConfinedKernelManager(kernel_name=kernel, transport="ipc", ip=str(work / "kernel"),
                                 connection_file=str(work / "kernel.json"))


def _kernel_env(work: Path, key_file: Path, log: Path, confined: bool) -> dict[str, str]:
    # the course's thread policy, as in the lessons' set-up (llmcourse/threads.py)
    env = kernel_env({k: v for k, v in os.environ.items() if k not in (CHECK_KEY_ENV, CHECK_LOG_ENV)})
    env.update({"CUDA_VISIBLE_DEVICES": "", CHECK_KEY_ENV: str(key_file), CHECK_LOG_ENV: str(log),
                "IPYTHONDIR": str(work / "ipython"), "MPLCONFIGDIR": str(work / "matplotlib"),
                "PYTHONDONTWRITEBYTECODE": "1"})
    if confined:  # only `work` is writable there: caches and temporary files go inside it
        from llmcourse.data.registry import cache_dir

        cache = work / "cache"
        cache.mkdir()
        if (cache_dir() / "datasets").is_dir():  # downloaded datasets stay readable
            (cache / "datasets").symlink_to((cache_dir() / "datasets").resolve())
        env["LLMCOURSE_CACHE_DIR"] = str(cache)
        env.setdefault("TIKTOKEN_CACHE_DIR", os.path.join(tempfile.gettempdir(), "data-gym-cache"))
        (work / "tmp").mkdir()
        env.update({"TMPDIR": str(work / "tmp"), "TORCHINDUCTOR_CACHE_DIR": str(cache / "inductor"),
                    "TRITON_CACHE_DIR": str(cache / "triton")})
    return env


def run_checks(notebook: Path, *, timeout: int = 600, kernel: str = "python3",
               warn: Optional[Callable[[str], None]] = None) -> list[Row]:
    """Execute ``notebook`` headless on the CPU and collect the signed verdict of every check cell.

    The learner's file is not changed: its code cells run in a fresh temporary folder, with
    ``CUDA_VISIBLE_DEVICES=""`` (the lessons' small CPU configuration) and the course's thread
    policy (:mod:`llmcourse.threads`, one torch thread), the kernel confined when
    the system allows it. A cell that raises does not stop the run; a check cell that raised
    without a verdict gets an ``error`` row.

    Args:
        timeout: seconds allowed per cell (a whole number > 0).
        warn: called with :data:`NO_CONFINEMENT` before the run when no confinement works here
            (default: printed on stderr as ``llmcourse check: warning: ...``).

    Raises:
        LearnerError: a bad ``timeout`` or ``$LLMCOURSE_THREADS``, a file that is not a notebook, a
            cell over the timeout, or ``nbclient`` (and a Jupyter kernel) not installed.
        NotebookRunError: the kernel died (``os._exit``, a crash, the memory limit).
    """
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout <= 0:
        raise LearnerError(f"--timeout must be a whole number of seconds above 0, not {timeout!r}")
    try:
        cpu_threads()  # a bad $LLMCOURSE_THREADS is reported before anything runs
    except ValueError as exc:
        raise LearnerError(str(exc)) from None
    try:
        from nbclient import NotebookClient
        from nbclient.exceptions import CellTimeoutError, DeadKernelError
    except ImportError as exc:
        raise LearnerError("llmcourse check runs the notebook with nbclient and a Jupyter kernel: "
                           "pip install nbclient ipykernel") from exc
    nb = _notebook_to_run(Path(notebook))
    with tempfile.TemporaryDirectory(prefix="llmcourse-check-") as tmp:
        work = Path(tmp).resolve()
        box = find_confinement(work)
        if box is None:
            (warn or _warn_on_stderr)(NO_CONFINEMENT)
        key, key_file, log = secrets.token_bytes(32), work / "key", work / "records.jsonl"
        key_file.write_bytes(key)
        log.touch()
        per_cell: dict[int, list[dict[str, Any]]] = {}
        seen, current = [0], [-1]

        def cell_started(cell: Any, cell_index: int) -> None:
            current[0] = cell_index

        def cell_executed(cell: Any, cell_index: int, execute_reply: Any) -> None:
            with open(log, "rb") as f:
                f.seek(seen[0])
                new = f.read()
            seen[0] += len(new)
            per_cell[cell_index] = signed_records(new.decode("utf-8", "replace"), key)

        client = NotebookClient(nb, km=_kernel_manager(kernel, work, box), timeout=timeout,
                                kernel_name=kernel, allow_errors=True,
                                resources={"metadata": {"path": str(work)}},
                                on_cell_start=cell_started, on_cell_executed=cell_executed)
        with open(work / "kernel.log", "wb") as kernel_log:  # the kernel's own warnings
            try:
                client.execute(cleanup_kc=True, env=_kernel_env(work, key_file, log, box is not None),
                               stdout=kernel_log, stderr=kernel_log)
            except CellTimeoutError as exc:
                _interrupted(client)
                raise LearnerError(f"a cell ran longer than {timeout} s; pass --timeout SECONDS "
                                   "to allow more") from exc
            except (DeadKernelError, RuntimeError) as exc:
                _interrupted(client)
                if "died" not in str(exc) and not isinstance(exc, DeadKernelError):
                    raise
                if current[0] < 0:
                    raise NotebookRunError(
                        f"the Jupyter kernel {kernel!r} died as it started, before any cell ran "
                        f"({box.name + ' confinement' if box else 'no confinement'}); run `python -m "
                        "ipykernel_launcher --version` to test the kernel, or set "
                        "LLMCOURSE_CHECK_CONFINE=none to try without confinement") from exc
                raise NotebookRunError(
                    f"the notebook's kernel died while running code cell {current[0] + 1} (a call "
                    "to os._exit, a crash, or the memory limit); the checks after it did not "
                    "run") from exc
            except Exception as exc:  # noqa: BLE001 - e.g. no such kernel
                _interrupted(client)
                if type(exc).__name__ == "NoSuchKernel":
                    raise LearnerError(f"no Jupyter kernel named {kernel!r}: pip install "
                                       "ipykernel") from exc
                raise
            finally:
                atexit.unregister(client._cleanup_kernel)  # nbclient's, already run or moot
            _interrupted(client)
    return _rows(nb, per_cell)


def _warn_on_stderr(message: str) -> None:
    print(f"llmcourse check: warning: {message}", file=sys.stderr)


def _interrupted(client: Any) -> None:
    """Raise ``KeyboardInterrupt`` if Ctrl-C (or SIGTERM) stopped the run.

    While it runs, nbclient answers SIGINT by shutting the kernel down instead of raising, and
    the run then ends in some other error; the future it leaves behind tells the two apart.
    """
    if getattr(client, "_async_cleanup_kernel_future", None) is not None:
        raise KeyboardInterrupt


def _rows(nb: Any, per_cell: dict[int, list[dict[str, Any]]]) -> list[Row]:
    """The table's rows: each check cell's signed verdicts, or an ``error`` row if it raised."""
    rows: list[Row] = []
    first_error = None
    for index, cell in enumerate(nb.cells):
        if first_error is None:
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error" and \
                        "raises-exception" not in cell.metadata.get("tags", []):
                    first_error = (f"code cell {index + 1} raised {output.get('ename')}: "
                                   f"{output.get('evalue')}")
                    break
        if "check_" not in cell.source:
            continue
        records = per_cell.get(index, [])
        rows.extend(_row(record) for record in records)
        error = next((f"{o.get('ename')}: {o.get('evalue')}" for o in cell.get("outputs", [])
                      if o.get("output_type") == "error"), None)
        if error and not records:
            name = re.search(r"check_(\w+)", cell.source)
            message = f"the check cell raised {error}"
            if first_error and not first_error.startswith(f"code cell {index + 1} "):
                message += f" (the first error: {first_error})"
            rows.append(Row(name.group(1) if name else f"cell {index + 1}", "error", message))
    return rows


def print_table(rows: Sequence[Row], out: Any = None, *, width: Optional[int] = None) -> None:
    """Print the rows as an aligned table and a closing count line.

    A hint is never cut: a long one wraps at word boundaries onto continuation lines under the
    message column, within ``width`` characters (default: the terminal's width, at least 100).
    """
    import textwrap

    out = out or sys.stdout
    if not rows:
        print("no check cell printed a verdict (is this a lesson notebook?)", file=out)
        return
    total = width or max(100, shutil.get_terminal_size((100, 24)).columns)
    name_width = max(len("exercise"), *(len(r.exercise) for r in rows))
    indent = name_width + 2 + 10 + 2
    print(f"{'exercise':<{name_width}}  {'verdict':<10}  message", file=out)
    for r in rows:
        message = "" if r.verdict == "passed" or r.message.startswith("not done yet — write your code") \
            else r.message
        lines = textwrap.wrap(message, width=max(40, total - indent), break_long_words=False,
                              break_on_hyphens=False) or [""]
        print(f"{r.exercise:<{name_width}}  {r.verdict:<10}  {lines[0]}".rstrip(), file=out)
        for more in lines[1:]:
            print(" " * indent + more, file=out)
    passed = sum(r.verdict == "passed" for r in rows)
    print(f"{passed} of {len(rows)} checks passed", file=out)
