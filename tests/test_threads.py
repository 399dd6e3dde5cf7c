"""The course's one thread policy (llmcourse/threads.py) and the places that must use it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from llmcourse import threads
from llmcourse.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def keep_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def test_policy_is_one_thread_unless_overridden():
    assert threads.cpu_threads({}) == 1
    assert threads.cpu_threads({"LLMCOURSE_THREADS": " 3 "}) == 3


@pytest.mark.parametrize("bad", ["0", "-1", "two", "1.5"])
def test_a_bad_override_is_one_clear_error(bad):
    with pytest.raises(ValueError, match=r"LLMCOURSE_THREADS=.* is not a whole number of threads of at least 1; unset it"):
        threads.cpu_threads({"LLMCOURSE_THREADS": bad})


def test_limit_threads_sets_torch_on_the_cpu_only(keep_threads, monkeypatch):
    torch.set_num_threads(2)
    assert threads.limit_threads("cuda") is None and torch.get_num_threads() == 2
    monkeypatch.setenv("LLMCOURSE_THREADS", "1")
    assert threads.limit_threads(torch.device("cpu")) == 1 and torch.get_num_threads() == 1
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    torch.set_num_threads(2)
    assert threads.limit_threads() == 1 and torch.get_num_threads() == 1


def test_kernel_env_sets_the_pools_and_keeps_what_the_caller_set():
    env = threads.kernel_env({"PATH": "/bin"})
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "1" and env["PATH"] == "/bin"
    assert threads.kernel_env({"OMP_NUM_THREADS": "4"})["OMP_NUM_THREADS"] == "4"


def test_the_build_and_the_check_use_the_policy():
    """One place decides: tools/nb.py and llmcourse check start kernels with kernel_env."""
    assert "kernel_env(" in (ROOT / "tools" / "nb.py").read_text(encoding="utf-8")
    assert "kernel_env(" in (ROOT / "llmcourse" / "learner_check.py").read_text(encoding="utf-8")


def test_check_starts_its_kernel_with_one_thread(tmp_path, monkeypatch):
    from llmcourse import learner_check

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "3")   # a caller's own setting wins
    env = learner_check._kernel_env(tmp_path, tmp_path / "key", tmp_path / "log", False)
    assert env["OMP_NUM_THREADS"] == "1" and env["MKL_NUM_THREADS"] == "3"


def test_check_refuses_a_bad_thread_override_before_running(tmp_path, capsys, monkeypatch):
    import nbformat

    path = tmp_path / "day99_x.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), str(path))
    before = path.read_bytes()
    monkeypatch.setenv("LLMCOURSE_THREADS", "zero")
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "LLMCOURSE_THREADS='zero' is not a whole number" in err, err
    assert path.read_bytes() == before
