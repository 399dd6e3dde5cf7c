"""What the fault tests (``tests/test_faults*.py``) and ``tests/faults_probe.py`` share.

A tiny text and the settings of a tiny run, the ``--set`` arguments that train it, a snapshot of
every file under some folders (what a refused command must leave as it was), the check that
stderr is the one line of rule 1, a notebook builder for ``llmcourse check`` / ``diff``, and a
small tmpfs for a real full disk or read-only folder (root only).

    >>> sets(["max_iters=4", "log=jsonl"])
    ['--set', 'max_iters=4', '--set', 'log=jsonl']
    >>> error_line("llmcourse plot: error: no such run\\n", "plot")
    'llmcourse plot: error: no such run'
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

from llmcourse import cli

TEXT = "".join(f"{w} the quick brown fox, {i}; jumps over the lazy dog!\n"
               for i, w in enumerate(["ROMEO:", "JULIET:", "NURSE:"] * 60))
TINY = ["model.n_layer=1", "model.n_head=2", "model.n_embd=16", "model.block_size=16",
        "batch_size=4", "max_iters=4", "eval_interval=2", "eval_iters=1", "log_interval=1",
        "warmup_iters=0", "lr_decay_iters=4"]
# The set-up cell of a one-check notebook: check_double(fn) passes when fn(21) == 42.
CHECK_SETUP = ("from llmcourse.checks._core import assert_equal, check\n\n"
               "@check('double')\ndef check_double(fn):\n    assert_equal(fn(21), 42, 'double(21)')\n")


def sets(items) -> list[str]:
    """``["a=1", "b=2"]`` -> ``["--set", "a=1", "--set", "b=2"]``."""
    return [a for item in items for a in ("--set", item)]


def train_args(text, out, *settings: str) -> list[str]:
    """The arguments of ``llmcourse train`` for a TINY run on ``text`` into ``out``."""
    return ["train", "--no-progress"] + sets(TINY + [*settings, f"data.dataset={text}",
                                                     f"out_dir={out}"])


def snapshot(*folders) -> dict[str, bytes]:
    """Every file under the folders, by path: what must not change. A missing folder has none."""
    return {str(p): p.read_bytes() for d in folders if Path(d).exists()
            for p in sorted(Path(d).rglob("*")) if p.is_file()}


def error_line(err: str, command: str) -> str:
    """Check that ``err`` (what went to stderr) is rule 1's one line, and return that line."""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"llmcourse {command}: error: "), err
    assert "Traceback" not in lines[0]
    return lines[0]


def one_error_line(capsys, command: str) -> str:
    """The one error line a command just wrote to stderr (read from pytest's ``capsys``)."""
    return error_line(capsys.readouterr().err, command)


def error_message(err: str, command: str) -> str:
    """What follows ``llmcourse COMMAND: error: `` in the one line of ``err``."""
    return error_line(err, command)[len(f"llmcourse {command}: error: "):]


def prepared_dir(out: Path) -> Path:
    """The prepared-data folder that the run in ``out`` trained on (from its run.json)."""
    return Path(json.loads((Path(out) / "run.json").read_text())["prepared_dir"])


def notebook(path: Path, cells: list[str], title: str = "# Day 99") -> Path:
    """Write a notebook: a markdown title, then one code cell per string in ``cells``."""
    nb = {"cells": [{"cell_type": "markdown", "id": "title", "metadata": {}, "source": title}]
          + [{"cell_type": "code", "id": f"cell-{i}", "metadata": {}, "execution_count": None,
              "outputs": [], "source": c} for i, c in enumerate(cells)],
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                      "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb), encoding="utf-8")
    return path


def mount_tmpfs(where: Path, options: str = "size=256k") -> bool:
    """Mount a small tmpfs on ``where`` (made if missing); False where that is not possible."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                          capture_output=True)
    return done.returncode == 0


@contextmanager
def small_tmpfs(where: Path, options: str = "size=256k"):
    """A small tmpfs on ``where`` for the block (see :func:`mount_tmpfs`), unmounted after it.

    Yields whether it is mounted: without root the block runs with ``False`` and should skip.
    """
    mounted = mount_tmpfs(where, options)
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", str(where)], check=False)


@contextmanager
def cache_dir(path: Path):
    """Set ``LLMCOURSE_CACHE_DIR`` to ``path`` inside the block, and put the old value back."""
    old = os.environ.get("LLMCOURSE_CACHE_DIR")
    os.environ["LLMCOURSE_CACHE_DIR"] = str(path)
    try:
        yield path
    finally:
        if old is None:
            os.environ.pop("LLMCOURSE_CACHE_DIR", None)
        else:
            os.environ["LLMCOURSE_CACHE_DIR"] = old


def finished_run(root: Path, *settings: str):
    """A fixture body: TEXT in ``root``, a cache, and one finished TINY run with ``settings``.

    Yields ``{"root", "text", "cache", "base"}`` with ``LLMCOURSE_CACHE_DIR`` set to the cache.
    """
    text = root / "tiny.txt"
    text.write_text(TEXT, encoding="utf-8")
    base = root / "base"
    with cache_dir(root / "cache") as cache:
        assert cli.main(train_args(text, base, *settings)) == 0
        yield {"root": root, "text": text, "cache": cache, "base": base}


def copy_of_run(world: dict, tmp_path: Path, monkeypatch, *settings: str):
    """A fresh copy of ``world``'s finished run, and the arguments that trained it."""
    monkeypatch.setenv("LLMCOURSE_CACHE_DIR", str(world["cache"]))
    out = tmp_path / "run"
    shutil.copytree(world["base"], out)
    return out, train_args(world["text"], out, *settings)
