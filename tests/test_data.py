"""Tests of llmcourse.data: registry and offline files, batches, TokenDataset, prepare."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from llmcourse.data import (
    ChecksumError,
    PreparedData,
    TokenDataset,
    UnknownDatasetError,
    dataset_path,
    get_batch,
    list_datasets,
    load_text,
    make_dataloader,
    prepare,
    token_dtype,
)
from llmcourse.data import prepared as prepare_module
from llmcourse.data.registry import CACHE_ENV, DATA_ENV

SHARED = Path(os.environ.get(DATA_ENV) or "/work/shared/data")
needs_shared = pytest.mark.skipif(
    not (SHARED / "tinyshakespeare.txt").is_file(),
    reason=f"offline data copies not found (set {DATA_ENV})",
)


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private cache; offline copies from the shared folder; never the real home cache."""
    root = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(root))
    monkeypatch.setenv(DATA_ENV, str(SHARED))
    return root


# --------------------------------------------------------------------------- registry / files


def test_registry_lists_the_course_datasets() -> None:
    assert list_datasets() == ["shakespeare", "tinystories"]


def test_unknown_dataset_lists_known_names(cache: Path) -> None:
    with pytest.raises(UnknownDatasetError, match="shakespeare, tinystories"):
        dataset_path("shakespear")
    with pytest.raises(KeyError):  # UnknownDatasetError is a KeyError too
        dataset_path("nope")


@needs_shared
def test_offline_mode_reads_shared_copies(cache: Path) -> None:
    path = dataset_path("shakespeare")
    assert path == SHARED / "tinyshakespeare.txt"
    text = load_text("shakespeare")
    assert len(text) == 1_115_394 and text.startswith("First Citizen:")
    assert dataset_path("tinystories", "valid").name == "tinystories_valid_head.txt"
    assert dataset_path("tinystories", "train").name == "tinystories_train_head.txt"
    assert not cache.exists()  # nothing was downloaded or written


def test_offline_mode_missing_file_says_where_to_put_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError) as info:
        dataset_path("tinystories", "val")
    msg = str(info.value)
    assert "tinystories_valid_head.txt" in msg and DATA_ENV in msg
    assert "TinyStories-valid.txt" in msg  # where the full file comes from


def test_offline_copy_with_wrong_content_is_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "tinyshakespeare.txt").write_text("not Shakespeare at all")
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    with pytest.raises(ChecksumError, match="size"):
        dataset_path("shakespeare")


def test_dataset_without_val_file_explains_the_split(cache: Path) -> None:
    with pytest.raises(ValueError, match="val_fraction"):
        dataset_path("shakespeare", "val")


# --------------------------------------------------------------------------- get_batch


def _memmap(tmp_path: Path, values: np.ndarray, dtype: type = np.uint16) -> np.memmap:
    path = tmp_path / "tokens.bin"
    values.astype(dtype).tofile(path)
    return np.memmap(path, dtype=dtype, mode="r")


def test_get_batch_shift_by_one_from_memmap(tmp_path: Path) -> None:
    data = _memmap(tmp_path, np.arange(5000) % 60000)
    x, y = get_batch(data, batch_size=8, block_size=16, generator=torch.Generator().manual_seed(1))
    assert x.shape == y.shape == (8, 16)
    assert x.dtype == y.dtype == torch.int64
    assert torch.equal(y[:, :-1], x[:, 1:])
    assert torch.equal(y, x + 1)  # data is consecutive integers: y is x shifted by one
    starts = x[:, 0]
    assert torch.equal(x, starts[:, None] + torch.arange(16))


@pytest.mark.parametrize("kind", ["numpy", "tensor", "tensor_uint16", "list"])
def test_get_batch_accepts_arrays_tensors_and_lists(kind: str) -> None:
    base = np.arange(300)
    data = {
        "numpy": base.astype(np.int32),
        "tensor": torch.from_numpy(base),
        "tensor_uint16": torch.from_numpy(base.astype(np.uint16)),
        "list": base.tolist(),
    }[kind]
    x, y = get_batch(data, 4, 10, generator=torch.Generator().manual_seed(0))
    assert x.dtype == torch.int64 and x.shape == (4, 10)
    assert torch.equal(y, x + 1)


def test_get_batch_is_reproducible_with_a_generator() -> None:
    data = np.random.default_rng(0).integers(0, 1000, size=10_000)
    a = get_batch(data, 6, 32, generator=torch.Generator().manual_seed(123))
    b = get_batch(data, 6, 32, generator=torch.Generator().manual_seed(123))
    c = get_batch(data, 6, 32, generator=torch.Generator().manual_seed(124))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_get_batch_reaches_both_ends_of_the_data() -> None:
    data = np.arange(12)  # block_size 10: offsets 0 and 1 are the only valid ones
    g = torch.Generator().manual_seed(0)
    firsts = {int(get_batch(data, 1, 10, generator=g)[0][0, 0]) for _ in range(50)}
    assert firsts == {0, 1}
    x, y = get_batch(np.arange(11), 3, 10)  # exactly block_size + 1 tokens: one window
    assert torch.equal(x, torch.arange(10).expand(3, 10))
    assert int(y[0, -1]) == 10


def test_get_batch_bad_input_errors() -> None:
    data = np.arange(100)
    with pytest.raises(ValueError, match=r"block_size \(100\) must be smaller.*100"):
        get_batch(data, 2, 100)
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        get_batch(data, 0, 8)
    with pytest.raises(ValueError, match="block_size must be at least 1"):
        get_batch(data, 2, 0)
    with pytest.raises(TypeError, match="batch_size must be an int"):
        get_batch(data, 2.5, 8)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="1-D"):
        get_batch(data.reshape(10, 10), 2, 4)
    with pytest.raises(TypeError, match="integer token ids"):
        get_batch(data.astype(np.float32), 2, 4)
    with pytest.raises(TypeError, match="generator by keyword"):
        get_batch(data, 2, 4, torch.Generator())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        get_batch(np.zeros(0, dtype=np.uint16), 2, 4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_get_batch_on_cuda_matches_cpu() -> None:
    data = np.random.default_rng(0).integers(0, 50_000, size=10_000).astype(np.uint16)
    xc, yc = get_batch(data, 4, 32, generator=torch.Generator().manual_seed(5))
    xg, yg = get_batch(data, 4, 32, "cuda", generator=torch.Generator().manual_seed(5))
    assert xg.device.type == "cuda" and xg.dtype == torch.int64
    assert torch.equal(xg.cpu(), xc) and torch.equal(yg.cpu(), yc)
    xt, _ = get_batch(torch.from_numpy(data.astype(np.int64)).cuda(), 4, 32, "cuda")
    assert xt.device.type == "cuda"


# --------------------------------------------------------------------------- TokenDataset


@pytest.mark.parametrize(
    ("n", "block", "stride"),
    [(11, 10, None), (100, 10, None), (101, 10, None), (100, 10, 1), (100, 7, 3), (50, 8, 100)],
)
def test_token_dataset_length_and_items(n: int, block: int, stride: int | None) -> None:
    ds = TokenDataset(np.arange(n), block, stride)
    step = stride or block
    expected_starts = [s for s in range(0, n, step) if s + block + 1 <= n]
    assert len(ds) == len(expected_starts)
    for i, s in enumerate(expected_starts):
        x, y = ds[i]
        assert x.dtype == torch.int64 and x.shape == (block,)
        assert x.tolist() == list(range(s, s + block))
        assert y.tolist() == list(range(s + 1, s + block + 1))
    assert torch.equal(ds[-1][0], ds[len(ds) - 1][0])
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_token_dataset_errors() -> None:
    with pytest.raises(ValueError, match="block_size"):
        TokenDataset(np.arange(10), 10)
    with pytest.raises(ValueError, match="stride must be at least 1"):
        TokenDataset(np.arange(10), 4, stride=0)


def test_token_dataset_pickles_memmap_by_reference(tmp_path: Path) -> None:
    data = _memmap(tmp_path, np.arange(200_000) % 50_000)
    ds = TokenDataset(data, 64)
    blob = pickle.dumps(ds)
    assert len(blob) < 10_000  # the 400 kB of tokens are not copied
    clone = pickle.loads(blob)
    assert len(clone) == len(ds)
    assert torch.equal(clone[100][0], ds[100][0])


def test_make_dataloader_batches_and_seed() -> None:
    data = np.arange(1000)
    loader = make_dataloader(data, block_size=8, batch_size=5, seed=0)
    batches = list(loader)
    assert len(batches) == (len(TokenDataset(data, 8)) // 5)
    x, y = batches[0]
    assert x.shape == y.shape == (5, 8) and torch.equal(y, x + 1)
    again = next(iter(make_dataloader(data, block_size=8, batch_size=5, seed=0)))
    assert torch.equal(again[0], x)
    with pytest.raises(ValueError, match="fewer than batch_size"):
        make_dataloader(np.arange(20), block_size=8, batch_size=5)


# --------------------------------------------------------------------------- prepare


def test_token_dtype_boundaries() -> None:
    assert token_dtype(65) == np.uint16
    assert token_dtype(65_536) == np.uint16  # ids 0..65535 fit
    assert token_dtype(65_537) == np.uint32
    assert token_dtype(2**32) == np.uint32
    with pytest.raises(ValueError, match="too large"):
        token_dtype(2**32 + 1)
    with pytest.raises(ValueError, match="at least 1"):
        token_dtype(0)


TEXT = "hello world, the quick brown fox jumps over the lazy dog.\n" * 40


@pytest.fixture()
def text_file(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def test_prepare_char_on_a_text_file(cache: Path, text_file: Path) -> None:
    prep = prepare(text_file, "char", val_fraction=0.25, progress=False, verbose=False)
    assert prep.path == cache / "prepared" / "corpus-char-val0.25"  # not the default split
    assert sorted(p.name for p in prep.path.iterdir()) == [
        "meta.json", "tokenizer.json", "train.bin", "val.bin"]
    meta = json.loads((prep.path / "meta.json").read_text())
    assert meta["dtype"] == "uint16" and meta["vocab_size"] == len(set(TEXT))
    n = len(TEXT)
    assert meta["counts"] == {"train": n - n // 4, "val": n // 4}
    assert meta["split"] == {"rule": "tail_fraction", "val_fraction": 0.25}
    assert meta["sources"][0]["sha256"] and meta["sources"][0]["size"] == n
    assert meta["format_version"] == prepare_module.FORMAT_VERSION
    train, val = prep.load("train"), prep.load("val")
    assert isinstance(train, np.memmap) and train.dtype == np.uint16
    tok = prep.tokenizer()
    assert tok.decode(train.tolist()) + tok.decode(val.tolist()) == TEXT  # val is the tail
    x, y = prep.get_batch_fn(batch_size=3, block_size=8)("val")
    assert x.shape == (3, 8) and torch.equal(y[:, :-1], x[:, 1:])


def test_prepare_is_idempotent(cache: Path, text_file: Path, capsys: pytest.CaptureFixture) -> None:
    first = prepare(text_file, "char", progress=False, verbose=False)
    stamps = {p.name: p.stat().st_mtime_ns for p in first.path.iterdir()}
    second = prepare(text_file, "char", progress=False)
    assert "up to date" in capsys.readouterr().out
    assert second.reused and not first.reused
    assert {p.name: p.stat().st_mtime_ns for p in second.path.iterdir()} == stamps
    assert second.meta["fingerprint"] == first.meta["fingerprint"]


def test_prepare_never_silently_replaces_other_settings(cache: Path, text_file: Path) -> None:
    first = prepare(text_file, "char", val_fraction=0.1, progress=False, verbose=False)
    before = {p.name: p.read_bytes() for p in first.path.iterdir()}
    # another split: another folder, the first one untouched
    second = prepare(text_file, "char", val_fraction=0.5, progress=False, verbose=False)
    assert second.path == first.path.with_name("corpus-char-val0.5") and not second.reused
    assert second.meta["counts"]["val"] == len(TEXT) // 2
    assert {p.name: p.read_bytes() for p in first.path.iterdir()} == before
    # the same folder with other inputs: refused, saying what differs, unless force=True
    text_file.write_text(TEXT + "new text!", encoding="utf-8")
    with pytest.raises(FileExistsError, match="other settings.*the text.*force=True"):
        prepare(text_file, "char", val_fraction=0.1, progress=False, verbose=False)
    with pytest.raises(FileExistsError, match="split"):
        prepare(text_file, "char", out_dir=first.path, val_fraction=0.2, progress=False,
                verbose=False)
    assert {p.name: p.read_bytes() for p in first.path.iterdir()} == before
    third = prepare(text_file, "char", val_fraction=0.1, force=True, progress=False,
                    verbose=False)
    assert sum(third.meta["counts"].values()) == len(TEXT) + 9
    assert sorted(p.name for p in third.path.parent.iterdir()) == [
        "corpus-char", "corpus-char-val0.5"]  # no leftovers, no lock files


def test_failed_rebuild_keeps_the_old_dataset(
    cache: Path, text_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = prepare(text_file, "char", val_fraction=0.1, progress=False, verbose=False)
    before = {p.name: p.read_bytes() for p in good.path.iterdir()}
    real_write = prepare_module._write_tokens

    def crash(path: Path, *args: object, **kwargs: object) -> int:
        real_write(path, *args, **kwargs)  # a half-built directory exists at this point
        raise KeyboardInterrupt("simulated crash")

    monkeypatch.setattr(prepare_module, "_write_tokens", crash)
    with pytest.raises(KeyboardInterrupt):
        prepare(text_file, "char", val_fraction=0.1, force=True, progress=False, verbose=False)
    assert {p.name: p.read_bytes() for p in good.path.iterdir()} == before
    assert sorted(p.name for p in good.path.parent.iterdir()) == ["corpus-char"]
    assert PreparedData.open(good.path).meta["counts"] == good.meta["counts"]


def test_prepare_refuses_a_folder_of_other_files(cache: Path, text_file: Path,
                                                 tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="notes.txt"):
        prepare(text_file, "char", out_dir=out, progress=False, verbose=False)
    assert (out / "notes.txt").read_text() == "keep me"


def test_prepare_bad_inputs(cache: Path, text_file: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty"):
        prepare(empty, "char", progress=False, verbose=False)
    with pytest.raises(ValueError, match=r"val_fraction must be in \[0, 1\)"):
        prepare(text_file, "char", val_fraction=1.0, progress=False, verbose=False)
    with pytest.raises(UnknownDatasetError, match="shakespeare, tinystories"):
        prepare("tiny_stories", "char", progress=False, verbose=False)
    with pytest.raises(FileNotFoundError, match="no text file"):
        prepare(tmp_path / "missing.txt", "char", progress=False, verbose=False)
    short = tmp_path / "short.txt"
    short.write_text("abcd")
    with pytest.raises(ValueError, match="no validation token"):
        prepare(short, "char", val_fraction=0.1, progress=False, verbose=False)
    assert not (cache / "prepared" / "short-char").exists()
    pd = prepare(text_file, "char", val_fraction=0.1, progress=False, verbose=False)
    pd.val_path.unlink()
    with pytest.raises(FileNotFoundError, match="val split file"):
        pd.load("val")


def _shifted_char_tokenizer(text: str, shift: int):  # noqa: ANN202 - test helper
    """A character tokenizer whose ids start at ``shift`` (to exercise wide id ranges)."""
    from llmcourse.tokenizers import CharTokenizer

    class Shifted(CharTokenizer):
        @property
        def vocab_size(self) -> int:
            return super().vocab_size + shift

        def encode_ordinary(self, text: str) -> list[int]:
            return [i + shift for i in super().encode_ordinary(text)]

        def decode(self, ids):  # noqa: ANN001, ANN202
            return super().decode([i - shift for i in ids])

    return Shifted.from_text(text, name=f"shifted{shift}")


def test_prepare_uses_uint32_above_65536_ids(cache: Path, text_file: Path) -> None:
    tok = _shifted_char_tokenizer(TEXT, 70_000)
    prep = prepare(text_file, tok, val_fraction=0.1, progress=False, verbose=False)
    assert prep.meta["dtype"] == "uint32" and prep.load("train").dtype == np.uint32
    train = prep.load("train")
    assert int(train.max()) >= 70_000  # the ids survived without wrapping around
    assert tok.decode(train.tolist()) == TEXT[: len(train)]


def test_prepare_rejects_vocabulary_beyond_uint32(cache: Path, text_file: Path) -> None:
    tok = _shifted_char_tokenizer(TEXT, 2**32)
    with pytest.raises(ValueError, match="too large"):
        prepare(text_file, tok, progress=False, verbose=False)
    assert not (cache / "prepared").exists() or not any((cache / "prepared").iterdir())


@needs_shared
def test_prepare_shakespeare_char_offline(cache: Path) -> None:
    prep = prepare("shakespeare", "char", progress=False, verbose=False)
    assert prep.path == cache / "prepared" / "shakespeare-char"
    meta = prep.meta
    assert meta["vocab_size"] == 65 and meta["dtype"] == "uint16"
    assert meta["counts"] == {"train": 1_003_855, "val": 111_539}
    assert meta["sources"][0]["sha256"].startswith("86c4e6aa")


@needs_shared
def test_prepare_tinystories_uses_the_official_val_file(cache: Path) -> None:
    prep = prepare("tinystories", "gpt2", progress=False, verbose=False)
    meta = prep.meta
    assert meta["split"] == {"rule": "official_files"}
    assert meta["separator"] == "<|endoftext|>" and meta["eot_token"] == 50_256
    assert int(prep.load("val")[-1]) == 50_256  # each file ends its last document
    assert meta["dtype"] == "uint16" and meta["vocab_size"] == 50_257
    assert [s["role"] for s in meta["sources"]] == ["train", "val"]
    val_text = (SHARED / "tinystories_valid_head.txt").read_text(encoding="utf-8")
    tok = prep.tokenizer()
    assert tok.decode(prep.load("val")[:200].tolist()) == tok.decode(
        tok.encode(val_text)[:200])


def test_prepare_document_separator(cache: Path, tmp_path: Path) -> None:
    from llmcourse.tokenizers import get_tokenizer

    path = tmp_path / "stories.txt"
    path.write_text("Once upon a time.\n<|endoftext|>\nThe end.\n<|endoftext|>\n" * 30)
    tok = get_tokenizer("gpt2")
    prep = prepare(path, "gpt2", val_fraction=0.0, separator="<|endoftext|>", progress=False,
                   verbose=False)
    doc = tok.encode("Once upon a time.") + [50_256] + tok.encode("The end.") + [50_256]
    assert prep.load("train").tolist() == doc * 30
    assert prep.meta["counts"]["val"] == 0 and len(prep.load("val")) == 0
    # Without a separator the marker lines are encoded as they stand (allowed_special="all").
    plain = prepare(path, "gpt2", out_dir=tmp_path / "plain", val_fraction=0.0, progress=False,
                    verbose=False)
    assert plain.meta["separator"] is None
    assert plain.load("train").tolist() == tok.encode(path.read_text(), allowed_special="all")
