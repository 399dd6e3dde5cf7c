"""encode_file: chunked encoding equals encoding the whole text, for every tokenizer kind."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

_SHARED = Path(__file__).resolve().parents[1].parent / "shared"
if "TIKTOKEN_CACHE_DIR" not in os.environ and (_SHARED / "tiktoken_cache").is_dir():
    os.environ["TIKTOKEN_CACHE_DIR"] = str(_SHARED / "tiktoken_cache")

from llmcourse.tokenizers import (  # noqa: E402
    ENDOFTEXT,
    BPETokenizer,
    CharTokenizer,
    encode_file,
    get_tokenizer,
)


def data_file(name: str) -> Path:
    data_dir = Path(os.environ.get("LLMCOURSE_DATA_DIR", _SHARED / "data"))
    path = data_dir / name
    if not path.is_file():
        pytest.skip(f"{name} not found in {data_dir}; set LLMCOURSE_DATA_DIR")
    return path


def read(path: Path) -> str:
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()


def concat(arrays) -> list[int]:
    arrays = list(arrays)
    assert all(isinstance(a, np.ndarray) and a.ndim == 1 and a.size for a in arrays)
    return np.concatenate(arrays).tolist() if arrays else []


def reference_documents(text: str, separator: str) -> list[str]:
    """Documents as the docstring defines them, computed line by line."""
    docs, cur = [], []
    for line in text.splitlines(keepends=True):
        if line.rstrip("\n").rstrip("\r") == separator:
            docs.append("".join(cur))
            cur = []
        else:
            cur.append(line)
    docs.append("".join(cur))
    out = []
    for d in docs:
        if d.endswith("\r\n"):
            d = d[:-2]
        elif d.endswith("\n"):
            d = d[:-1]
        if d:
            out.append(d)
    return out


@pytest.fixture(scope="module")
def shakespeare_path() -> Path:
    return data_file("tinyshakespeare.txt")


@pytest.fixture(scope="module")
def our_bpe(shakespeare_path) -> BPETokenizer:
    return BPETokenizer.train(read(shakespeare_path)[:100_000], 512, special_tokens=[ENDOFTEXT])


@pytest.mark.parametrize("name", ["gpt2", "cl100k_base"])
def test_tiktoken_chunks_equal_whole_shakespeare(shakespeare_path, name):
    tok = get_tokenizer(name)
    arrays = list(encode_file(shakespeare_path, tok, chunk_bytes=3000))
    assert len(arrays) > 100
    assert arrays[0].dtype == (np.uint16 if name == "gpt2" else np.uint32)
    assert concat(arrays) == tok.encode(read(shakespeare_path))


@pytest.mark.slow
def test_our_bpe_chunks_equal_whole_shakespeare(shakespeare_path, our_bpe):
    arrays = list(encode_file(shakespeare_path, our_bpe, chunk_bytes=5000))
    assert len(arrays) > 100
    assert concat(arrays) == our_bpe.encode(read(shakespeare_path))


def test_char_chunks_split_multibyte_characters(tmp_path):
    text = "héllo wörld 😀 中文\n" * 50 + "end"
    path = tmp_path / "t.txt"
    path.write_text(text, encoding="utf-8")
    tok = CharTokenizer.from_text(text)
    for chunk in (1, 2, 3, 5, 64):
        assert concat(encode_file(path, tok, chunk_bytes=chunk)) == tok.encode(text)


SAFE_ALPHABET = st.sampled_from(list("ab .,'1\n\n  \t\r😀é中") + ["<|endoftext|>", "\n\n", "'s"])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(SAFE_ALPHABET, max_size=120).map("".join), st.integers(1, 40))
def test_random_text_any_chunk_size(tmp_path_factory, our_bpe, text, chunk):
    path = tmp_path_factory.mktemp("h") / "t.txt"
    path.write_bytes(text.encode("utf-8"))
    for tok in (get_tokenizer("gpt2"), get_tokenizer("cl100k_base"), our_bpe):
        got = concat(encode_file(path, tok, chunk_bytes=chunk, allowed_special="all"))
        assert got == tok.encode(text, allowed_special="all")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.sampled_from(["ab c", "<|endoftext|>", "", "x\r", " y", "😀"]), max_size=30),
    st.sampled_from(["<|endoftext|>", ""]),
    st.integers(1, 30),
)
def test_separator_documents_random(tmp_path_factory, our_bpe, lines, separator, chunk):
    text = "\n".join(lines)
    path = tmp_path_factory.mktemp("s") / "t.txt"
    path.write_bytes(text.encode("utf-8"))
    char = CharTokenizer.from_text("abcxy \r\n😀", special_tokens=[ENDOFTEXT])
    for tok in (get_tokenizer("gpt2"), our_bpe, char):
        want = []
        for doc in reference_documents(text, separator):
            want += tok.encode(doc, allowed_special="all") + [tok.eot_token]
        got = concat(
            encode_file(path, tok, chunk_bytes=chunk, separator=separator, allowed_special="all")
        )
        assert got == want


def test_separator_on_tinystories_blank_lines(tmp_path):
    tok = get_tokenizer("gpt2")
    text = read(data_file("tinystories_valid_head.txt"))[:200_000]
    small = tmp_path / "stories.txt"
    small.write_bytes(text.encode("utf-8"))
    got = concat(encode_file(small, tok, separator="", chunk_bytes=4096))
    docs = reference_documents(text, "")
    want = [i for d in docs for i in tok.encode(d) + [tok.eot_token]]
    assert got == want
    assert got.count(tok.eot_token) == len(docs) > 100


def test_errors(tmp_path, shakespeare_path):
    raw = BPETokenizer.train("abc abc", 258, pattern=None)
    with pytest.raises(ValueError, match="no split pattern"):
        list(encode_file(shakespeare_path, raw))
    char = CharTokenizer.from_text("abc")
    with pytest.raises(ValueError, match="end-of-text"):
        list(encode_file(shakespeare_path, char, separator=""))
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"abc\nab\xffc\n")
    with pytest.raises(ValueError, match="not valid UTF-8"):
        list(encode_file(bad, get_tokenizer("gpt2")))
    got = concat(encode_file(bad, get_tokenizer("gpt2"), errors="replace"))
    assert get_tokenizer("gpt2").decode(got) == "abc\nab\ufffdc\n"
    with pytest.raises(ValueError, match="cannot hold"):
        list(encode_file(shakespeare_path, get_tokenizer("cl100k_base"), dtype=np.uint16))
    special = tmp_path / "s.txt"
    special.write_text("a\n" + ENDOFTEXT + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="allowed_special"):
        list(encode_file(special, get_tokenizer("gpt2")))


def test_empty_file(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    assert list(encode_file(path, get_tokenizer("gpt2"))) == []
