"""``llmcourse diff`` / ``llmcourse check`` on bad input, forged verdicts and hostile notebooks.

Each fault ends in one line on stderr, ``llmcourse <command>: error: ...``, with book/faults.md's
exit status (2 a mistake in what was asked, 1 a fault while running, 130 Ctrl-C), and the files
the user had stay byte-identical.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmcourse import learner
from llmcourse.cli import main
from llmcourse.learner.sandbox import find_confinement

from faults_helpers import CHECK_SETUP, error_message, notebook, snapshot

ROOT = Path(__file__).resolve().parents[1]

# ---- verdicts travel by signed records, never by printed text --------------------------------


def test_a_printed_pass_line_is_not_a_pass(tmp_path, capsys):
    nb = notebook(tmp_path / "day99_forged.ipynb", [
        CHECK_SETUP,
        "print('✅ double: passed')  # check_double(double) never called",
        "import os, json\n"  # a record without the run's key: the check cell writes it by hand
        "open(os.environ.get('LLMCOURSE_CHECK_LOG', 'x.jsonl'), 'a').write(json.dumps(\n"
        "    {'exercise': 'double', 'passed': True, 'line': '✅ double: passed', 'cpu_s': 0,\n"
        "     'source': None, 'sig': '0' * 64}) + '\\n')  # check_double",
    ])
    assert main(["check", str(nb)]) == 1
    out = capsys.readouterr().out
    assert out.strip() == "no check cell printed a verdict (is this a lesson notebook?)"


def test_a_real_check_call_is_a_pass(tmp_path, capsys):
    nb = notebook(tmp_path / "day99_real.ipynb", [CHECK_SETUP, "check_double(lambda x: 2 * x)"])
    assert main(["check", str(nb)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "1 of 1 checks passed"


def test_the_key_file_is_gone_once_the_checks_are_imported(tmp_path):
    nb = notebook(tmp_path / "day99_key.ipynb", [
        CHECK_SETUP,
        "import os\nassert 'LLMCOURSE_CHECK_KEY_FILE' not in os.environ\n"
        "assert not [p for p in os.listdir('.') if p == 'key']\ncheck_double(lambda x: 2 * x)",
    ])
    assert [r.verdict for r in learner.run_checks(nb)] == ["passed"]


# ---- confinement ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["bubblewrap", "unshare"])
def test_a_confined_notebook_cannot_delete_a_file_outside(tmp_path, capsys, monkeypatch, kind):
    monkeypatch.setenv("LLMCOURSE_CHECK_CONFINE", kind)
    if find_confinement(tmp_path) is None:
        pytest.skip(f"{kind} does not confine here (not installed, or no unprivileged user namespace)")
    victim = tmp_path / "keep.txt"
    victim.write_text("mine")
    nb = notebook(tmp_path / "day99_evil.ipynb", [
        CHECK_SETUP, f"import os\nos.remove({str(victim)!r})", "check_double(lambda x: 2 * x)",
    ])
    assert main(["check", str(nb)]) == 0  # the removal failed inside; the check still ran
    captured = capsys.readouterr()
    assert victim.read_text() == "mine"
    assert "warning" not in captured.err


@pytest.mark.parametrize("confine", ["bubblewrap", "unshare"])
def test_a_confined_notebook_can_still_write_temporary_files(tmp_path, monkeypatch, confine):
    # both confinements, each where it works: unshare once left the kernel's working folder on
    # the read-only mount under the writable bind (a relative open() failed)
    monkeypatch.setenv("LLMCOURSE_CHECK_CONFINE", confine)
    if find_confinement(tmp_path) is None:
        pytest.skip(f"{confine} does not confine on this machine")
    nb = notebook(tmp_path / "day99_tmp.ipynb", [
        CHECK_SETUP, "import tempfile\nfolder = tempfile.mkdtemp()\nopen(folder + '/x.txt', 'w').write('1')\n"
        "open('in_cwd.txt', 'w').write('1')\ncheck_double(lambda x: 2 * x)  # runs if both writes did",
    ])
    rows = learner.run_checks(nb)
    assert [r.verdict for r in rows] == ["passed"]


def test_without_confinement_one_warning_line_comes_first(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LLMCOURSE_CHECK_CONFINE", "none")
    nb = notebook(tmp_path / "day99_plain.ipynb", [CHECK_SETUP, "check_double(lambda x: 2 * x)"])
    assert main(["check", str(nb)]) == 0
    err = capsys.readouterr().err
    assert err == ("llmcourse check: warning: no confinement available here (neither bubblewrap nor an "
                   "unprivileged user namespace works): the notebook runs with your rights; check only "
                   "notebooks you trust, or install bubblewrap (bwrap)\n")


# ---- files that are not notebooks ---------------------------------------------------------------


@pytest.mark.parametrize("content, problem", [
    ("[]", "it holds no list of cells"),
    ("{}", "it holds no list of cells"),
    ('{"cells": "abc"}', "its 'cells' is not a list"),
    ('{"cells": [1]}', "its cell 1 is not a notebook cell (an object with a text 'source')"),
])
@pytest.mark.parametrize("command", ["diff", "check"])
def test_a_json_file_that_is_not_a_notebook(tmp_path, capsys, command, content, problem):
    path = tmp_path / "day01_odd.ipynb"
    path.write_text(content, encoding="utf-8")
    before = snapshot(tmp_path)
    assert main([command, str(path)]) == 2
    assert error_message(capsys.readouterr().err, command) == (
        f"{path} is not a Jupyter notebook: {problem}; save it again from Jupyter, or pass the "
        "lesson's .md text")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("command", ["diff", "check"])
def test_binary_bytes_name_the_file(tmp_path, capsys, command):
    path = tmp_path / "day01_binary.ipynb"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    assert main([command, str(path)]) == 2
    assert error_message(capsys.readouterr().err, command) == (
        f"{path} is not a notebook: its bytes are not UTF-8 text (byte 0 cannot be read); pass the "
        ".ipynb or .md file of the lesson")
    assert path.read_bytes() == b"\x89PNG\r\n\x1a\n\xff\xfe"


def test_a_lesson_saved_under_another_day_is_named(tmp_path, capsys):
    lesson = ROOT / "lessons" / "day01_characters_to_numbers.ipynb"
    if not lesson.is_file():
        pytest.skip("lessons/ is not built")
    renamed = tmp_path / "day05_embeddings.ipynb"
    renamed.write_bytes(lesson.read_bytes())
    assert main(["diff", str(renamed), "--solutions", str(ROOT / "solutions")]) == 2
    assert error_message(capsys.readouterr().err, "diff") == (
        "day05_embeddings.ipynb looks like the lesson of day 01 (its metadata names the lesson "
        "day01_characters_to_numbers), but its name says day 05: rename it day01_..., or pass "
        "--solution FILE to compare it with another lesson on purpose")
    assert renamed.read_bytes() == lesson.read_bytes()


def test_a_titled_md_saved_under_another_day_is_named(tmp_path, capsys):
    page = tmp_path / "day05_mine.md"
    page.write_text("# Day 01 - Characters to numbers\n\n```{code-cell} ipython3\nx = 1\n```\n")
    assert main(["diff", str(page)]) == 2
    assert "looks like the lesson of day 01 (its title 'Day 01 - Characters to numbers')" in \
        error_message(capsys.readouterr().err, "diff")


# ---- running: timeouts, a dying kernel, Ctrl-C ------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "-1", "1.5", "soon"])
def test_timeout_must_be_above_zero(tmp_path, capsys, value):
    nb = notebook(tmp_path / "day99_t.ipynb", ["x = 1"])
    with pytest.raises(SystemExit) as exc:
        main(["check", str(nb), f"--timeout={value}"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith(  # cli.py may add where to read more
        f"llmcourse check: error: argument --timeout: must be a whole number of seconds above 0, "
        f"not {value!r}")
    with pytest.raises(learner.LearnerError, match="--timeout must be a whole number"):
        learner.run_checks(nb, timeout=0)


def test_a_timeout_is_one_line_without_kernel_noise(tmp_path, capsys):
    nb = notebook(tmp_path / "day99_slow.ipynb", ["import time\ntime.sleep(30)"])
    assert main(["check", str(nb), "--timeout", "1"]) == 2
    assert error_message(capsys.readouterr().err, "check") == (
        "a cell ran longer than 1 s; pass --timeout SECONDS to allow more")


def test_a_kernel_that_dies_is_one_line_exit_1(tmp_path, capsys):
    nb = notebook(tmp_path / "day99_dies.ipynb", [CHECK_SETUP, "import os\nos._exit(3)",
                                                    "check_double(lambda x: 2 * x)"])
    before = snapshot(tmp_path)
    assert main(["check", str(nb)]) == 1
    assert error_message(capsys.readouterr().err, "check") == (
        "the notebook's kernel died while running code cell 2 (a call to os._exit, a crash, or "
        "the memory limit); the checks after it did not run")
    assert snapshot(tmp_path) == before


def test_ctrl_c_is_130_and_one_line(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    nb = notebook(work / "day99_long.ipynb", ["open('started', 'w').close()\nimport time\ntime.sleep(60)"])
    before = snapshot(work)
    proc = subprocess.Popen([sys.executable, "-m", "llmcourse", "check", str(nb)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, TMPDIR=str(tmp_path)))
    deadline = time.time() + 120
    while not list(tmp_path.glob("llmcourse-check-*/started")) and time.time() < deadline:
        time.sleep(0.2)  # wait until the kernel runs the long cell
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert err == "llmcourse check: error: interrupted; your notebook was not changed\n"
    assert snapshot(work) == before
    assert not list(tmp_path.glob("llmcourse-check-*"))  # the temporary folder is removed


def test_a_kernel_that_cannot_start_is_one_line_exit_1(tmp_path, capsys, monkeypatch):
    from llmcourse.learner import check as learner_check
    from llmcourse.learner.sandbox import Confinement

    broken = Confinement("bubblewrap", ("false",))  # a prefix whose command exits at once
    monkeypatch.setattr(learner_check, "find_confinement", lambda work: broken)
    nb = notebook(tmp_path / "day99_x.ipynb", [CHECK_SETUP, "check_double(lambda x: 2 * x)"])
    assert main(["check", str(nb)]) == 1
    assert error_message(capsys.readouterr().err, "check") == (
        "the Jupyter kernel 'python3' died as it started, before any cell ran (bubblewrap "
        "confinement); run `python -m ipykernel_launcher --version` to test the kernel, or set "
        "LLMCOURSE_CHECK_CONFINE=none to try without confinement")
