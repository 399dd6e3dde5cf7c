"""Bad input to ``prepare`` and the dataset files (issue 24): one line, the right exit, nothing changed.

- a TinyStories file cut short and put in the cache by hand (as the offline message suggests)
  is refused, naming the file, instead of being prepared and its hash recorded as the reference;
- the offline message says how to place a good copy (the whole file, its size, a command);
- ``prepare --tokenizer bpe`` gives a command-line remedy, not Python code;
- ``prepare --tokenizer x.json`` with ``{"type": "bpe"}`` (no merges) is one line naming the file.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from llmcourse import cli
from llmcourse.data import ChecksumError, DownloadError, dataset_path, prepare, registry
from llmcourse.data.checksums import sidecar_path

from test_data_download import _Server, cache, server  # noqa: F401 - pytest fixtures
from faults_helpers import one_error_line, snapshot

STORY = "Tom had a red ball. He liked to play with it in the park.\n<|endoftext|>\n"


@pytest.fixture()
def tinystories(server: _Server, cache: Path,  # noqa: F811 - fixtures
                monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """TinyStories served locally, with small lower bounds for a complete copy's size."""
    full = (STORY * 40).encode()  # 2,800 bytes: a "complete" file here
    server.files = {"/TinyStories-train.txt": full, "/TinyStories-valid.txt": full}
    info = registry.DATASETS["tinystories"]
    assert all(f.min_size and f.size is None and f.sha256 is None for f in info.files.values())
    files = {split: dataclasses.replace(f, url=f"{server.base}/{Path(f.url).name}",
                                        min_size=2000)
             for split, f in info.files.items()}
    monkeypatch.setitem(registry.DATASETS, "tinystories", dataclasses.replace(info, files=files))
    return {"full": len(full), "min_size": 2000}


def _place_by_hand(cache: Path, name: str, data: bytes) -> Path:
    folder = cache / "datasets" / "tinystories"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    return folder / name


def test_a_cut_copy_placed_by_hand_is_refused_and_nothing_changes(
    tinystories: dict[str, int], server: _Server, cache: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    good = _place_by_hand(cache, "TinyStories-valid.txt", (STORY * 40).encode())
    cut = _place_by_hand(cache, "TinyStories-train.txt", (STORY * 40).encode()[:1234])
    before = snapshot(cache)

    assert cli.main(["prepare", "tinystories", "--tokenizer", "gpt2", "--no-progress"]) == 2
    line = one_error_line(capsys, "prepare")
    assert line == (
        f"llmcourse prepare: error: the tinystories train file {cut} holds 1,234 bytes, but the "
        "published file is over 2.0 kB: it is a copy cut short (an interrupted download or "
        "copy?). Delete it and run again to download it, or save the whole file from "
        f"{server.base}/TinyStories-train.txt at that path once it is complete."
    )
    assert snapshot(cache) == before                     # no hash recorded, nothing prepared
    assert not sidecar_path(cut).exists() and not (cache / "prepared").exists()
    assert server.requests == []                         # and nothing was downloaded over it
    with pytest.raises(ChecksumError, match="copy cut short"):
        dataset_path("tinystories", "train", download=False)
    assert snapshot(cache) == before
    assert good.is_file()


def test_a_whole_copy_placed_by_hand_is_used_and_its_hash_recorded(
    tinystories: dict[str, int], server: _Server, cache: Path,  # noqa: F811
) -> None:
    for name in ("TinyStories-train.txt", "TinyStories-valid.txt"):
        _place_by_hand(cache, name, (STORY * 40).encode())
    prep = prepare("tinystories", "gpt2", progress=False, verbose=False)
    assert prep.meta["counts"]["train"] > 0 and server.requests == []
    path = cache / "datasets" / "tinystories" / "TinyStories-train.txt"
    assert sidecar_path(path).is_file()                  # checked against it from now on


def test_the_offline_message_says_how_to_place_a_good_copy(
    tinystories: dict[str, int], server: _Server, cache: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from llmcourse.data import downloader

    monkeypatch.setattr(downloader, "DEFAULT_RETRIES", 0)
    server.fail_next = 100                               # offline, in effect
    with pytest.raises(DownloadError) as info:
        dataset_path("tinystories", "train", progress=False)
    msg = str(info.value)
    dest = cache / "datasets" / "tinystories" / "TinyStories-train.txt"
    url = f"{server.base}/TinyStories-train.txt"
    assert "\n" not in msg                                # one line, for the command line
    assert (f"Download the whole file (over 2.0 kB) yourself from {url} and save it as {dest} "
            f"once it is complete (e.g. curl -L -o '{dest}' '{url}'), or put a copy named "
            f"'tinystories_train_head.txt' in a folder and set {registry.DATA_ENV} to that "
            "folder.") in msg
    assert not dest.exists() and not sidecar_path(dest).exists()


def test_the_offline_message_of_prepare_is_one_line(
    tinystories: dict[str, int], server: _Server, cache: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    from llmcourse.data import downloader

    monkeypatch.setattr(downloader, "DEFAULT_RETRIES", 0)
    server.fail_next = 100
    assert cli.main(["prepare", "tinystories", "--tokenizer", "gpt2", "--no-progress"]) == 2
    line = one_error_line(capsys, "prepare")
    assert "Are you offline?" in line and "curl -L -o" in line
    assert not (cache / "prepared").exists()


def test_the_registered_sizes_describe_the_published_files() -> None:
    files = registry.DATASETS["tinystories"].files
    assert files["train"].min_size == 1_800_000_000 and files["val"].min_size == 18_000_000
    shakespeare = registry.DATASETS["shakespeare"].files["train"]
    assert shakespeare.size == 1_115_394 and shakespeare.min_size is None  # known exactly


def test_prepare_tokenizer_bpe_gives_a_command_line_remedy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(registry.CACHE_ENV, str(tmp_path / "cache"))
    text = tmp_path / "t.txt"
    text.write_text("some text to tokenize\n" * 20)
    before = snapshot(tmp_path)
    assert cli.main(["prepare", str(text), "--tokenizer", "bpe", "--no-progress"]) == 2
    line = one_error_line(capsys, "prepare")
    assert line == (
        "llmcourse prepare: error: tokenizer 'bpe' has to be trained before it can tokenize a "
        "dataset, and prepare does not train one: pass the JSON file of a trained BPE tokenizer "
        "(--tokenizer path/to/tokenizer.json, the file a tokenizer's save() writes, as on day "
        "2), or a ready tokenizer: --tokenizer gpt2, cl100k_base or char"
    )
    assert "text=" not in line and "get_tokenizer(" not in line   # no Python code
    assert snapshot(tmp_path) == before


def test_prepare_with_a_bpe_file_without_merges_is_one_line(
    tinystories: dict[str, int], server: _Server, cache: Path, tmp_path: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = tmp_path / "x.json"
    bad.write_text(json.dumps({"type": "bpe"}))
    before = snapshot(tmp_path)
    assert cli.main(["prepare", "tinystories", "--tokenizer", str(bad), "--no-progress"]) == 2
    line = one_error_line(capsys, "prepare")
    assert str(bad) in line and "merges" in line and "Traceback" not in line
    assert snapshot(tmp_path) == before                  # x.json as it was, no cache written
    assert server.requests == []                         # refused before any download


@pytest.mark.parametrize("spec", [{"type": "bpe"}, {"type": "char"}])
def test_the_prepare_api_refuses_a_broken_tokenizer_spec_with_a_value_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec: dict[str, str],
) -> None:
    monkeypatch.setenv(registry.CACHE_ENV, str(tmp_path / "cache"))
    text = tmp_path / "t.txt"
    text.write_text("abc\n" * 20)
    with pytest.raises(ValueError, match="tokenizer"):
        prepare(text, spec, progress=False, verbose=False)
    assert not (tmp_path / "cache").exists()


def test_a_full_disk_while_writing_meta_names_the_folder_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    import errno

    from llmcourse.data import prepared as prepared_module

    monkeypatch.setenv(registry.CACHE_ENV, str(tmp_path / "cache"))
    text = tmp_path / "t.txt"
    text.write_text("some text to tokenize\n" * 20)

    def full(path: Path, content: object, **kw: object) -> None:  # as write_atomic reports it
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(prepared_module, "write_atomic", full)
    assert cli.main(["prepare", str(text), "--no-progress"]) == 1
    line = one_error_line(capsys, "prepare")
    out = tmp_path / "cache" / "prepared" / "t-char"
    assert f"no space left on the device while writing {out}" in line and ".tmp-" not in line
    assert list((tmp_path / "cache" / "prepared").iterdir()) == []   # no half-built folder
