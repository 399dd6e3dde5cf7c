"""The course's one thread policy (llmcourse/threads.py) and the places that must use it."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
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
    """One place decides: tools/nb/ and llmcourse check start kernels with kernel_env."""
    assert "kernel_env(" in (ROOT / "tools" / "nb" / "execute.py").read_text(encoding="utf-8")
    assert "kernel_env(" in (ROOT / "llmcourse" / "learner" / "check.py").read_text(encoding="utf-8")


# Files that still set a thread pool by hand for a child process (reported, not yet ours to fix).
HAND_SET = {"llmcourse/sweep/runner.py":
            "the parent's threads split between parallel sweep workers"}
HAND_SET_RE = re.compile(r"""(OMP|MKL)_NUM_THREADS["']?\]?\s*[=,:]\s*["']?(\d|str\()""")


def test_no_child_process_gets_a_hand_set_thread_count():
    """Outside threads.py, nothing in the package, tools/ or benchmarks/ types a thread count
    for a child process: they pass kernel_env (or, in a shell script, its --export line)."""
    found = []
    for path in [*ROOT.glob("llmcourse/**/*.py"), *ROOT.glob("tools/*"), *ROOT.glob("tools/nb/*.py"), *ROOT.glob("benchmarks/*.*")]:
        rel = path.relative_to(ROOT).as_posix()
        if path.is_file() and rel != "llmcourse/threads.py" and rel not in HAND_SET:
            text = path.read_text(encoding="utf-8", errors="replace")
            found += [f"{rel}: {m.group()}" for m in HAND_SET_RE.finditer(text)]
    assert not found, found


def _without_pools(**extra):
    env = {k: v for k, v in os.environ.items() if k not in threads.POOLS and k != threads.ENV_VAR}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return dict(env, **extra)


def test_the_export_line_follows_the_policy():
    assert threads.shell_exports({}) == "export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1"
    assert threads.shell_exports({"LLMCOURSE_THREADS": "3", "MKL_NUM_THREADS": "2 4"}) == (
        "export OMP_NUM_THREADS=3 MKL_NUM_THREADS='2 4'")
    done = subprocess.run([sys.executable, "-m", "llmcourse.threads", "--export"], cwd=ROOT,
                          env=_without_pools(LLMCOURSE_THREADS="3"), capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, "export OMP_NUM_THREADS=3 MKL_NUM_THREADS=3\n", "")


@pytest.mark.parametrize("argv, env, words", [
    (["--export"], {"LLMCOURSE_THREADS": "many"}, "LLMCOURSE_THREADS='many' is not a whole number"),
    ([], {}, "the only option is --export"),
])
def test_the_export_command_refuses_in_one_line(argv, env, words):
    done = subprocess.run([sys.executable, "-m", "llmcourse.threads", *argv], cwd=ROOT,
                          env=_without_pools(**env), capture_output=True, text=True)
    assert done.returncode == 2 and done.stdout == "", done
    assert done.stderr.startswith("llmcourse.threads: error: ") and done.stderr.count("\n") == 1
    assert words in done.stderr


def _run_sh_policy() -> str:
    """The lines of tools/run.sh's test job that set the thread pools."""
    text = (ROOT / "tools" / "run.sh").read_text(encoding="utf-8")
    lines = [line.strip() for line in text.splitlines()
             if "llmcourse.threads --export" in line or line.strip() == 'eval "$threads"']
    assert len(lines) == 2, "tools/run.sh no longer takes its thread count from llmcourse.threads"
    return "\n".join(lines)


def test_run_sh_exports_the_policy():
    script = "set -euo pipefail\n" + _run_sh_policy() + '\necho "$OMP_NUM_THREADS $MKL_NUM_THREADS"'
    done = subprocess.run(["bash", "-c", script], cwd=ROOT, env=_without_pools(LLMCOURSE_THREADS="3"),
                          capture_output=True, text=True)
    assert (done.returncode, done.stdout) == (0, "3 3\n"), done.stderr
    bad = subprocess.run(["bash", "-c", script], cwd=ROOT, env=_without_pools(LLMCOURSE_THREADS="0"),
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stdout == "" and bad.stderr.count("\n") == 1, bad


def test_day24_runs_the_learners_script_with_the_policy(tmp_path, monkeypatch):
    from llmcourse.checks import day24

    script = tmp_path / "show.py"
    script.write_text("import os\nprint(os.environ['OMP_NUM_THREADS'], os.environ['MKL_NUM_THREADS'])\n")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    monkeypatch.setenv("LLMCOURSE_THREADS", "3")
    assert day24._run(script, [], timeout=60).stdout == "3 3\n"


def _check_times():
    spec = importlib.util.spec_from_file_location("check_times", ROOT / "benchmarks" / "check_times.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_check_times_starts_its_kernels_with_the_policy(tmp_path, monkeypatch):
    import nbclient

    seen = []

    class Client:                       # records the kernel's environment instead of starting one
        def __init__(self, nb, **kwargs):
            pass

        def execute(self, env):
            seen.append(env)

    monkeypatch.setattr(nbclient, "NotebookClient", Client)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "2")           # a caller's own setting wins
    monkeypatch.setenv("LLMCOURSE_THREADS", "3")
    _check_times().run_notebooks(["day01"], tmp_path / "log.jsonl")
    assert len(seen) == 1 and seen[0]["OMP_NUM_THREADS"] == "3" and seen[0]["MKL_NUM_THREADS"] == "2"
    assert seen[0]["LLMCOURSE_CHECK_LOG"] == str(tmp_path / "log.jsonl")


def test_check_times_refuses_a_bad_override_before_running(monkeypatch, capsys):
    check_times = _check_times()
    monkeypatch.setattr(check_times, "run_notebooks", lambda *a: pytest.fail("ran notebooks"))
    monkeypatch.setattr(check_times.tempfile, "mkdtemp", lambda **k: pytest.fail("made a folder"))
    monkeypatch.setenv("LLMCOURSE_THREADS", "1.5")
    assert check_times.main([]) == 2
    assert capsys.readouterr().err == (
        "check_times.py: error: LLMCOURSE_THREADS='1.5' is not a whole number of threads of at least 1; "
        "unset it to use the course's policy of 1\n")


def test_check_starts_its_kernel_with_one_thread(tmp_path, monkeypatch):
    from llmcourse.learner import check as learner_check

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
