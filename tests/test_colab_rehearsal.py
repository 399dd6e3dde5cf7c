"""tools/colab_rehearsal.py's parts, quickly (the whole rehearsal runs as a stage of tools/test_notebooks.sh)."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import nbformat
import pytest

from tools import colab_rehearsal as rehearsal

ROOT = Path(__file__).resolve().parents[1]


def test_sample_is_one_lesson_a_week():
    weeks = {rehearsal_week(day) for day in rehearsal.SAMPLE}  # the weeks as the toc groups them
    assert weeks == {1, 2, 3, 4, 5, 6}
    names = {p.name[:5] for p in (ROOT / "lessons").glob("day*.ipynb")}
    assert set(rehearsal.SAMPLE) <= names


def rehearsal_week(day: str) -> int:
    from tools.nb import lesson_week

    return lesson_week(int(day[3:]))


def test_prepared_notebook_installs_from_the_clone_as_colab(tmp_path):
    lesson = sorted((ROOT / "lessons").glob("day01_*.ipynb"))[0]
    clone = tmp_path / "repository.git"
    path = rehearsal.prepared_notebook(lesson, clone, tmp_path / "colab")
    nb = nbformat.read(str(path), as_version=4)
    assert nb.cells[1].source == rehearsal.FAKE_COLAB
    setup = nb.cells[2].source
    assert f'"git+file://{clone}@v' in setup and "github.com" not in setup
    original = json.loads(lesson.read_text(encoding="utf-8"))
    assert len(nb.cells) == len(original["cells"]) + 1  # nothing else changed


def test_mirror_serves_offline_copies_under_their_download_names(tmp_path):
    (tmp_path / "tinyshakespeare.txt").write_bytes(b"First Citizen:\nBefore we proceed\n")
    server, base = rehearsal.start_mirror(tmp_path)
    try:
        with urllib.request.urlopen(base + "input.txt") as r:  # the registered URL's file name
            assert r.read() == b"First Citizen:\nBefore we proceed\n"
        request = urllib.request.Request(base + "input.txt", headers={"Range": "bytes=0-4"})
        with urllib.request.urlopen(request) as r:
            assert r.status == 206 and r.read() == b"First"
    finally:
        server.shutdown()


def test_mirror_without_offline_copies_is_a_clear_error(tmp_path):
    with pytest.raises(rehearsal.RehearsalError, match="set LLMCOURSE_DATA_DIR"):
        rehearsal.start_mirror(tmp_path)


def test_command_line_refuses_unknown_lessons(capsys):
    with pytest.raises(SystemExit) as info:
        rehearsal.main(["day99"])
    assert info.value.code == 2 and "no lesson notebook for day99" in capsys.readouterr().err


def _repo(tmp_path: Path) -> Path:
    import subprocess

    root = tmp_path / "repo"
    (root / "llmcourse").mkdir(parents=True)
    (root / "llmcourse" / "__init__.py").write_text('__version__ = "1.2.0"\n')
    (root / "README.md").write_text("one\n")
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], check=True)
    return root


def _git(root: Path, *args: str) -> None:
    import subprocess

    subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@localhost", *args],
                   check=True, capture_output=True)


def test_covers_only_when_the_rehearsal_installs_this_checkouts_package(tmp_path):
    root = _repo(tmp_path)
    assert rehearsal.installs_this_checkout(root)            # no tag yet: the rehearsal tags HEAD
    _git(root, "tag", "v1.2.0")
    assert rehearsal.installs_this_checkout(root)            # the tag is HEAD
    (root / "README.md").write_text("two\n")                 # not the package: still this checkout's
    _git(root, "commit", "-q", "-am", "two")
    assert not rehearsal.installs_this_checkout(root)        # the release is another commit
    _git(root, "tag", "-d", "v1.2.0")
    assert rehearsal.installs_this_checkout(root)
    (root / "llmcourse" / "__init__.py").write_text('__version__ = "1.2.0"\nX = 1\n')
    assert not rehearsal.installs_this_checkout(root)        # uncommitted package changes
    assert not rehearsal.installs_this_checkout(tmp_path / "not-a-repository")


def test_covers_prints_the_sample_notebooks(capsys, monkeypatch):
    monkeypatch.setattr(rehearsal, "installs_this_checkout", lambda root=None: True)
    assert rehearsal.main(["--sample", "--covers"]) == 0
    printed = capsys.readouterr().out.split()
    assert [p[len("lessons/"):][:5] for p in printed] == rehearsal.SAMPLE
    assert all((ROOT / p).is_file() for p in printed)
    monkeypatch.setattr(rehearsal, "installs_this_checkout", lambda root=None: False)
    assert rehearsal.main(["--sample", "--covers"]) == 0
    assert capsys.readouterr().out == ""
