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
