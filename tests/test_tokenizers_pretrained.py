"""Our BPE loaded with GPT-2 / cl100k merges reproduces tiktoken's ids; GPT-2's file format."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

_SHARED = Path(__file__).resolve().parents[1].parent / "shared"
if "TIKTOKEN_CACHE_DIR" not in os.environ and (_SHARED / "tiktoken_cache").is_dir():
    os.environ["TIKTOKEN_CACHE_DIR"] = str(_SHARED / "tiktoken_cache")

import tiktoken  # noqa: E402

from llmcourse.tokenizers import (  # noqa: E402
    ENDOFTEXT,
    BPETokenizer,
    bytes_to_unicode,
    get_tokenizer,
    load_gpt2_files,
    merges_from_ranks,
)

TRICKY = [
    "",
    " ",
    "   ",
    "\n",
    "\n\n\n",
    "  \n  \n",
    "hello  world\n\n  x",
    "trailing spaces   ",
    "\t\ttabs\tand\u00a0nbsp\u2003em space",
    "1234567890 12 3.14159 1,000,000",
    "I'm you're they'LL WE'VE he'd It'S",
    "😀🎉 emoji 👩‍👩‍👧 family, flags 🇫🇷",
    "中文字符测试，日本語のテキスト、한국어 텍스트",
    "ﬁ ligature, ǅ titlecase, 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "\r\n\r\n a\r\nb\rc",
    "!!!??? ... --- ***",
    "x" * 300,
    "<|endoftext|>",
    "a<|endoftext|>b <|endoftext|>\n",
    "def f(x):\n    return x**2  # comment\n",
]


def shakespeare() -> str:
    data_dir = Path(os.environ.get("LLMCOURSE_DATA_DIR", _SHARED / "data"))
    path = data_dir / "tinyshakespeare.txt"
    if not path.is_file():
        pytest.skip(f"Tiny Shakespeare not found at {path}; set LLMCOURSE_DATA_DIR")
    return path.read_text(encoding="utf-8")


@pytest.fixture(scope="module", params=["gpt2", "cl100k_base"])
def pair(request):
    return BPETokenizer.from_tiktoken(request.param), tiktoken.get_encoding(request.param)


def test_merges_from_ranks_by_hand():
    ranks = {bytes([i]): i for i in range(256)}
    ranks.update({b"ab": 256, b"cd": 257, b"abcd": 258, b"abc": 259})
    byte_ids, merges = merges_from_ranks(ranks)
    assert byte_ids == list(range(256))
    # "abcd" is ab + cd; "abc" is ab + c (its bytes with ranks < 259 end as [ab, c]).
    assert merges == [(97, 98), (99, 100), (256, 257), (256, 99)]


def test_merges_from_ranks_rejects_unbuildable_tokens():
    ranks = {bytes([i]): i for i in range(256)}
    ranks[b"xyz"] = 256  # no "xy" or "yz" token to build it from
    with pytest.raises(ValueError, match="cannot be built"):
        merges_from_ranks(ranks)


def test_parity_on_tricky_strings(pair):
    ours, enc = pair
    assert ours.vocab_size == enc.n_vocab
    assert ours.eot_token == enc.eot_token
    for s in TRICKY:
        assert ours.encode(s, allowed_special="all") == enc.encode(s, allowed_special="all"), s
        assert ours.encode_ordinary(s) == enc.encode_ordinary(s), s
        ids = ours.encode(s, allowed_special="all")
        assert ours.decode(ids) == enc.decode(ids) == s


@pytest.mark.slow
def test_parity_on_all_of_tiny_shakespeare(pair):
    ours, enc = pair
    text = shakespeare()
    assert ours.encode(text) == enc.encode(text)


# Code points unassigned in Python's Unicode tables are left out: the `regex` module and tiktoken's
# Rust regex ship different Unicode versions, so a code point that only the newer one knows as a
# letter (e.g. U+3D000) is split differently by the pattern. Assigned characters agree.
ASSIGNED_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cn")))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ASSIGNED_TEXT)
def test_parity_on_arbitrary_text(pair, s):
    ours, enc = pair
    assert ours.encode_ordinary(s) == enc.encode_ordinary(s)


def test_spec_of_pretrained_is_small_and_rebuilds():
    tok = get_tokenizer("gpt2", implementation="python")
    assert isinstance(tok, BPETokenizer)
    assert tok.spec() == {"type": "bpe", "pretrained": "gpt2", "name": "gpt2"}
    assert get_tokenizer(tok.spec()).encode("Hello world") == [15496, 995]


def test_bytes_to_unicode_by_hand():
    m = bytes_to_unicode()
    assert len(set(m.values())) == 256
    # Printable Latin-1 maps to itself; the 68 others go to chr(256...) in byte order:
    # 0..32 -> 256..288 (so the space is "Ġ"), 127 -> 289, 128..160 -> 290..322, 173 -> 323.
    assert all(m[b] == chr(b) for b in [33, 65, 126, 161, 172, 174, 255])
    assert (m[0], m[10], m[32], m[127], m[128], m[160], m[173]) == (
        "Ā", "Ċ", "Ġ", "ġ", "Ģ", "ł", "Ń"
    )



def write_gpt2_files(tok: BPETokenizer, directory) -> tuple:
    """``tok`` in GPT-2's original format (encoder.json, vocab.bpe): test data for the reader."""
    b2u = bytes_to_unicode()

    def show(b: bytes) -> str:
        return "".join(b2u[x] for x in b)

    encoder = {show(b): i for i, b in enumerate(tok.vocab)}
    encoder.update(tok.special_tokens)
    enc_path, bpe_path = directory / "encoder.json", directory / "vocab.bpe"
    enc_path.write_text(json.dumps(encoder, ensure_ascii=False), encoding="utf-8")
    lines = [f"{show(tok.vocab[a])} {show(tok.vocab[b])}" for a, b in tok.merge_list]
    bpe_path.write_text("#version: 0.2\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return enc_path, bpe_path


def test_gpt2_files_round_trip(tmp_path):
    gpt2 = BPETokenizer.from_tiktoken("gpt2")
    enc_path, bpe_path = write_gpt2_files(gpt2, tmp_path)
    encoder = json.loads(enc_path.read_text(encoding="utf-8"))
    assert encoder["Ġthe"] == 262 and encoder[ENDOFTEXT] == 50256  # GPT-2's well-known ids
    assert bpe_path.read_text(encoding="utf-8").splitlines()[:2] == ["#version: 0.2", "Ġ t"]
    # tiktoken's own reader of GPT-2's original files agrees with the files we wrote...
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks

    ranks = data_gym_to_mergeable_bpe_ranks(str(bpe_path), str(enc_path))
    assert ranks == tiktoken.get_encoding("gpt2")._mergeable_ranks
    # ... and loading them gives tiktoken's ids.
    loaded = load_gpt2_files(enc_path, bpe_path)
    assert loaded.special_tokens == {ENDOFTEXT: 50256}
    assert loaded.merge_list == gpt2.merge_list
    enc = tiktoken.get_encoding("gpt2")
    for s in TRICKY:
        assert loaded.encode(s, allowed_special="all") == enc.encode(s, allowed_special="all")


def test_gpt2_files_errors(tmp_path):
    enc_path, bpe_path = write_gpt2_files(BPETokenizer.train("abcabcabc", 258, pattern=None), tmp_path)
    lines = bpe_path.read_text(encoding="utf-8").splitlines()
    bpe_path.write_text("\n".join(lines[:1] + [lines[2], lines[1]]) + "\n", encoding="utf-8")
    with pytest.raises(ValueError):
        load_gpt2_files(enc_path, bpe_path)
    bpe_path.write_text("#version: 0.2\nab\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not two tokens"):
        load_gpt2_files(enc_path, bpe_path)


def test_no_import_cycle_inside_tokenizers():
    """Every import between the tokenizers' modules, function-level ones too, goes one way."""
    import ast
    from pathlib import Path

    import llmcourse.tokenizers as pkg

    folder = Path(pkg.__file__).parent
    graph = {}
    for f in folder.glob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
                deps.add(node.module.split(".")[0])
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(
                    "llmcourse.tokenizers."):
                deps.add(node.module.split(".")[2])
        graph[f.stem] = deps - {f.stem}
    done, active = set(), []

    def visit(m):
        assert m not in active, f"import cycle: {' -> '.join(active[active.index(m):] + [m])}"
        if m in done or m == "__init__":
            return
        active.append(m)
        for d in graph.get(m, ()):
            visit(d)
        active.pop()
        done.add(m)

    for m in graph:
        visit(m)
    assert "pretrained" not in graph["bpe"] and "pretrained" not in graph["tiktoken_bridge"]
