"""The TinyStories path a learner runs in Colab, end to end, against a local HTTP server.

``llmcourse train --preset tinystories`` prepares its data with ``prepare_preset_data``: the
two official files are downloaded (no published checksum: the announced length is checked and
the sha256 recorded next to each file), encoded with GPT-2's tokenizer with an end-of-text id
after each story (the full files separate stories with ``<|endoftext|>`` lines), and written as
uint16 ``train.bin`` / ``val.bin``. Here the server holds small files in the real format.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from llmcourse.data import prepare, registry
from llmcourse.data.fetch import sha256_file
from llmcourse.presets import get_preset
from llmcourse.runs import prepare_preset_data
from llmcourse.tokenizers import get_tokenizer

from test_data_download import _Server, cache, server  # noqa: F401 - pytest fixtures

TRAIN_STORIES = [
    "Once upon a time, there was a little cat named Tom.\n\nTom liked to nap in the sun.",
    "One day, Lily found a red ball. She gave it to her friend Ben.",
    "Sam had a big blue kite. The wind took it up, up, up!\n\nSam laughed.",
]
VAL_STORIES = ["Anna saw a bird. The bird sang a song, and Anna sang too."]


def _release(stories: list[str]) -> bytes:
    """A file in the format of the full TinyStories release."""
    return "".join(s + "\n<|endoftext|>\n" for s in stories).encode("utf-8")


@pytest.fixture()
def tinystories(server: _Server, cache: Path, monkeypatch: pytest.MonkeyPatch) -> _Server:  # noqa: F811
    server.files = {"/TinyStories-train.txt": _release(TRAIN_STORIES),
                    "/TinyStories-valid.txt": _release(VAL_STORIES)}
    info = registry.DATASETS["tinystories"]
    files = {split: dataclasses.replace(f, url=f"{server.base}/{Path(f.url).name}")
             for split, f in info.files.items()}
    assert all(f.sha256 is None and f.size is None for f in files.values())  # as registered
    monkeypatch.setitem(registry.DATASETS, "tinystories", dataclasses.replace(info, files=files))
    return server


def test_preset_downloads_prepares_and_records_hashes(tinystories: _Server, cache: Path) -> None:
    preset = get_preset("tinystories")
    assert preset["data"] == {"dataset": "tinystories", "tokenizer": "gpt2"}
    prep = prepare_preset_data(preset, progress=False)

    folder = cache / "datasets" / "tinystories"
    for name in ("TinyStories-train.txt", "TinyStories-valid.txt"):
        path = folder / name
        assert path.read_bytes() == tinystories.files[f"/{name}"]
        recorded = (folder / f"{name}.sha256").read_text().split()[0]
        assert recorded == sha256_file(path)                # checked on every later use
        assert not (folder / f"{name}.part").exists()

    tok = get_tokenizer("gpt2")
    train = prep.load("train")
    assert isinstance(train, np.memmap) and train.dtype == np.uint16
    expected = []
    for story in TRAIN_STORIES:
        expected += tok.encode(story) + [tok.eot_token]
    assert train.tolist() == expected                       # separator lines dropped, eot added
    assert int((prep.load("val") == tok.eot_token).sum()) == len(VAL_STORIES)

    before = len(tinystories.requests)
    prep2 = prepare("tinystories", "gpt2", progress=False, verbose=False)
    assert prep2.path == prep.path and len(tinystories.requests) == before  # nothing fetched again


def test_interrupted_download_resumes(tinystories: _Server, cache: Path) -> None:
    tinystories.truncate_next = 1                           # the first response breaks off midway
    prep = prepare("tinystories", "gpt2", progress=False, verbose=False)
    ranges = [r for _, r in tinystories.requests if r]
    assert ranges, "the second attempt should resume with a Range request"
    assert prep.meta["counts"]["train"] == len(prep.load("train"))


def test_download_shows_a_progress_bar(tinystories: _Server, cache: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    prepare("tinystories", "gpt2", progress=True, verbose=False)
    err = capsys.readouterr().err
    assert "tinystories train" in err and "B/s" in err     # a tqdm bar in bytes


def test_damaged_file_is_detected(tinystories: _Server, cache: Path) -> None:
    prepare("tinystories", "gpt2", progress=False, verbose=False)
    path = cache / "datasets" / "tinystories" / "TinyStories-valid.txt"
    path.write_bytes(path.read_bytes().replace(b"bird", b"bard"))
    from llmcourse.data.fetch import dataset_path
    before = len(tinystories.requests)
    with pytest.warns(UserWarning, match="corrupted"):
        fresh = dataset_path("tinystories", "val", progress=False)   # downloaded again
    assert fresh.read_bytes() == tinystories.files["/TinyStories-valid.txt"]
    assert len(tinystories.requests) > before


def test_prepare_a_head_fetches_only_the_first_bytes(tinystories: _Server, cache: Path) -> None:
    train = tinystories.files["/TinyStories-train.txt"]
    head = train.index(b"<|endoftext|>\n") + len(b"<|endoftext|>\n") + 5  # the first story and a bit
    prep = prepare("tinystories", "gpt2", progress=False, verbose=False, max_bytes=head)
    assert prep.path.name == f"tinystories-gpt2-first{head}"  # never mixed with a full preparation
    ranges = {path: rng for path, rng in tinystories.requests}
    assert ranges["/TinyStories-train.txt"] == f"bytes=0-{head - 1}"
    assert ranges["/TinyStories-valid.txt"] == f"bytes=0-{head - 1}"
    tok = get_tokenizer("gpt2")
    assert prep.load("train").tolist() == tok.encode(TRAIN_STORIES[0]) + [tok.eot_token]  # cut at a line
    assert not (cache / "datasets" / "tinystories" / "TinyStories-train.txt").exists()
