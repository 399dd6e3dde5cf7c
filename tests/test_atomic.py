"""The one atomic write and folder lock (llmcourse/atomic.py)."""

import errno
import os

import pytest

from llmcourse import atomic


def test_write_replaces_and_leaves_no_temp(tmp_path):
    p = tmp_path / "x.json"
    atomic.write_json_atomic(p, {"b": 1, "a": 2})
    assert p.read_text() == '{\n  "a": 2,\n  "b": 1\n}\n'
    atomic.write_atomic(p, b"new")
    assert p.read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path)) == ["x.json"]


def test_refuses_existing_without_overwrite(tmp_path):
    p = tmp_path / "x.png"
    p.write_bytes(b"old")
    with pytest.raises(FileExistsError) as e:
        atomic.write_atomic(p, b"new", overwrite=False)
    assert str(p) in str(e.value) and "--force" in str(e.value)
    assert p.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["x.png"]


def test_failed_writer_keeps_old_file_and_names_target(tmp_path):
    p = tmp_path / "x.bin"
    p.write_bytes(b"old")

    def writer(f):
        f.write(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as e:
        atomic.write_atomic(p, writer)
    assert e.value.filename == str(p)
    assert p.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["x.bin"]


def test_callable_content_and_new_file_without_overwrite(tmp_path):
    p = tmp_path / "sub" / "y.bin"
    atomic.write_atomic(p, lambda f: f.write(b"abc"), overwrite=False)
    assert p.read_bytes() == b"abc"


def test_folder_lock_removes_its_file(tmp_path):
    out = tmp_path / "data"
    with atomic.folder_lock(out):
        assert (tmp_path / ".data.lock").exists()
    assert not (tmp_path / ".data.lock").exists()
