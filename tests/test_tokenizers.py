"""Character and byte-level BPE tokenizers: behaviour, training, special tokens, save/load."""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections import Counter
from pathlib import Path

import pytest
import regex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmcourse.tokenizers import (
    ENDOFTEXT,
    GPT2_SPLIT_PATTERN,
    GPT4_SPLIT_PATTERN,
    BPETokenizer,
    CharTokenizer,
    SpecialTokenError,
    TiktokenTokenizer,
    UnknownCharacterError,
    basic,
    get_tokenizer,
    token_dtype,
)

_SHARED = Path(__file__).resolve().parents[1].parent / "shared"
if "TIKTOKEN_CACHE_DIR" not in os.environ and (_SHARED / "tiktoken_cache").is_dir():
    os.environ["TIKTOKEN_CACHE_DIR"] = str(_SHARED / "tiktoken_cache")

HYP = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def shakespeare() -> str:
    data_dir = Path(os.environ.get("LLMCOURSE_DATA_DIR", _SHARED / "data"))
    path = data_dir / "tinyshakespeare.txt"
    if not path.is_file():
        pytest.skip(f"Tiny Shakespeare not found at {path}; set LLMCOURSE_DATA_DIR")
    return path.read_text(encoding="utf-8")


# ---------------------------------------------------------------- reference implementations
def textbook_train(text: str, num_merges: int, pattern: str | None) -> list[tuple[int, int]]:
    """The package's textbook loop (tokenizers.basic), over regex chunks when there is a pattern."""
    if pattern is None:
        return list(basic.train(text, 256 + num_merges))
    seqs = [list(c.encode("utf-8")) for c in regex.findall(pattern, text)]
    merges = []
    for k in range(num_merges):
        counts: Counter[tuple[int, int]] = Counter()
        for s in seqs:
            counts.update(basic.get_stats(s))
        if not counts:
            break
        pair = min(counts, key=lambda p: (-counts[p], p))
        merges.append(pair)
        seqs = [basic.merge(s, pair, 256 + k) for s in seqs]
    return merges


def reference_encode(tok: BPETokenizer, data: bytes) -> list[int]:
    """Lowest-rank pair first, all its occurrences left to right (basic.merge)."""
    ids = [tok.byte_ids[b] for b in data]
    while len(ids) > 1:
        ranked = [(tok.merges[p], p) for p in zip(ids, ids[1:]) if p in tok.merges]
        if not ranked:
            break
        new, pair = min(ranked)
        ids = basic.merge(ids, pair, new)
    return ids


def test_textbook_bpe_makes_the_fast_trainers_merges(small_corpus):
    text = small_corpus[:5000]
    merges = basic.train(text, 256 + 60)
    fast = BPETokenizer.train(text, 256 + 60, pattern=None)
    assert list(merges) == fast.merge_list
    assert list(merges.values()) == list(range(256, 316))
    sample = small_corpus[5000:5600]
    assert basic.encode(sample, merges) == fast.encode(sample)
    assert basic.decode(basic.encode(sample, merges), merges) == sample


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet="ab c\u00e9", max_size=60), st.integers(0, 25))
def test_textbook_bpe_matches_the_fast_trainer_on_random_text(text, n):
    if not text:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short texts run out of pairs: fewer merges, warned
        fast = BPETokenizer.train(text, 256 + n, pattern=None)
    assert list(basic.train(text, 256 + n)) == fast.merge_list


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def small_corpus() -> str:
    return shakespeare()[:60_000]


@pytest.fixture(scope="module")
def bpe_gpt2(small_corpus: str) -> BPETokenizer:
    return BPETokenizer.train(small_corpus, 600, special_tokens=[ENDOFTEXT], name="shk600")


@pytest.fixture(scope="module")
def bpe_nopattern(small_corpus: str) -> BPETokenizer:
    return BPETokenizer.train(small_corpus[:8000], 300, pattern=None, name="raw300")


# ================================================================ character tokenizer
def test_char_vocab_is_sorted_and_round_trips():
    tok = CharTokenizer.from_text("hello world")
    assert tok.chars == sorted(set("hello world"))
    assert tok.vocab_size == 8
    assert tok.encode("lol") == [4, 5, 4]
    assert tok.decode(tok.encode("old hello")) == "old hello"
    assert tok.eot_token is None


def test_get_tokenizer_char_needs_text():
    assert get_tokenizer("char", text="ab").encode("ba") == [1, 0]
    with pytest.raises(ValueError, match="text="):
        get_tokenizer("char")


def test_char_empty_text_is_an_error():
    with pytest.raises(ValueError, match="empty text"):
        CharTokenizer.from_text("")


def test_char_unknown_character_names_it_and_its_position():
    tok = CharTokenizer.from_text("abc")
    with pytest.raises(UnknownCharacterError) as err:
        tok.encode("abcab\u00e9c")
    msg = str(err.value)
    assert "'é'" in msg and "position 5" in msg and "U+00E9" in msg
    assert "Rebuild" in msg


def test_char_decode_rejects_unknown_id():
    tok = CharTokenizer.from_text("abc")
    with pytest.raises(ValueError, match="id 7"):
        tok.decode([0, 7])


def test_char_save_load_is_readable_json(tmp_path):
    tok = CharTokenizer.from_text("To be, or not to be 😀\n", special_tokens=[ENDOFTEXT])
    path = tmp_path / "char.json"
    tok.save(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["type"] == "char" and "😀" in data["chars"]
    back = get_tokenizer(path)
    assert isinstance(back, CharTokenizer)
    assert back.chars == tok.chars and back.special_tokens == tok.special_tokens
    assert get_tokenizer(str(path)).encode("be 😀") == tok.encode("be 😀")
    assert get_tokenizer(tok.spec()).chars == tok.chars


def test_char_special_tokens():
    tok = CharTokenizer.from_text("ab|<>endoftx", special_tokens=[ENDOFTEXT])
    n = len(tok.chars)
    assert tok.eot_token == n and tok.vocab_size == n + 1
    text = "ab" + ENDOFTEXT + "ba"
    with pytest.raises(SpecialTokenError):
        tok.encode(text)
    ids = tok.encode(text, allowed_special="all")
    assert ids == tok.encode("ab") + [n] + tok.encode("ba")
    assert tok.decode(ids) == text
    assert len(tok.encode(text, allowed_special="none")) == len(text)


@HYP
@given(st.text(min_size=1))
def test_char_round_trip_arbitrary_unicode(s):
    tok = CharTokenizer.from_text(s)
    ids = tok.encode(s)
    assert len(ids) == len(s)
    assert tok.decode(ids) == s


# ================================================================ BPE training
def test_bpe_classic_example_by_hand():
    # "aaabdaaabac": aa occurs 4 times -> 256 = (a, a). The text becomes [aa a b d aa a b a c];
    # (aa, a) and (a, b) both occur twice, and ties go to the smaller pair: (97, 98) < (256, 97),
    # so 257 = (a, b). Then (aa, ab) occurs twice -> 258 = "aaab".
    tok = BPETokenizer.train("aaabdaaabac", 259, pattern=None)
    assert tok.merge_list == [(97, 97), (97, 98), (256, 257)]
    assert tok.merge_counts == [4, 2, 2]
    assert tok.vocab[258] == b"aaab"
    assert tok.encode("aaabdaaabac") == [258, 100, 258, 97, 99]
    assert tok.decode([258, 100]) == "aaabd"


def test_bpe_merges_never_cross_pretokens(small_corpus):
    tok = BPETokenizer.train(small_corpus[:20000], 500, pattern=GPT2_SPLIT_PATTERN)
    # GPT-2 pre-tokens hold a space only at their start, or are all whitespace.
    for b in tok.vocab[256:]:
        assert b.isspace() or b" " not in b[1:], b


@pytest.mark.parametrize(
    "pattern", [GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN, None], ids=["gpt2", "gpt4", "none"]
)
def test_incremental_training_matches_textbook_loop(small_corpus, pattern):
    text = small_corpus[:6000]
    tok = BPETokenizer.train(text, 256 + 120, pattern=pattern)
    assert tok.merge_list == textbook_train(text, 120, pattern)


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="ab c\n", max_size=80), st.integers(1, 30))
def test_incremental_training_matches_textbook_on_random_text(text, n):
    if not text:
        return
    want = textbook_train(text, n, GPT2_SPLIT_PATTERN)
    with pytest.warns(UserWarning) if len(want) < n else contextlib.nullcontext():
        tok = BPETokenizer.train(text, 256 + n)
    assert tok.merge_list == want


def test_training_is_deterministic(small_corpus):
    a = BPETokenizer.train(small_corpus[:20000], 400)
    b = BPETokenizer.train(small_corpus[:20000], 400)
    assert a.merge_list == b.merge_list


def test_training_accepts_documents_and_keeps_them_apart():
    with pytest.warns(UserWarning, match="only supports 2 merges"):
        tok = BPETokenizer.train(["xy", "xy", "zx"], 260, pattern=None)
    # Documents are separate sequences: "yz" never appears, "xy" twice.
    assert tok.merge_list[0] == (ord("x"), ord("y"))
    assert (ord("y"), ord("z")) not in tok.merges


def test_training_errors():
    with pytest.raises(ValueError, match="vocab_size >= 256"):
        BPETokenizer.train("hello", 100)
    with pytest.raises(ValueError, match=r"vocab_size >= 258"):
        BPETokenizer.train("hello", 257, special_tokens=["<a>", "<b>"])
    with pytest.raises(ValueError, match="empty"):
        BPETokenizer.train("", 300)
    with pytest.warns(UserWarning, match="only supports"):
        tok = BPETokenizer.train("abab", 1000)
    assert tok.vocab_size < 1000


def test_special_tokens_are_cut_out_of_training_text():
    text = ("story" + ENDOFTEXT) * 50
    with pytest.warns(UserWarning):  # "story" alone only supports 4 merges
        tok = BPETokenizer.train(text, 300, special_tokens=[ENDOFTEXT])
    assert not any(b"endoftext" in b or b"<|" in b for b in tok.vocab)
    assert tok.eot_token == tok.vocab_size - 1


# ================================================================ BPE encode / decode
@HYP
@given(st.text())
def test_bpe_round_trip_arbitrary_unicode(bpe_gpt2, bpe_nopattern, s):
    for tok in (bpe_gpt2, bpe_nopattern):
        assert tok.decode(tok.encode(s, allowed_special="none")) == s


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab c\né😀")), max_size=300))
def test_long_sequence_encoder_matches_reference(bpe_nopattern, s):
    data = s.encode("utf-8")
    assert bpe_nopattern._encode_bytes(data) == reference_encode(bpe_nopattern, data)


def test_encode_matches_reference_on_real_text(bpe_gpt2, small_corpus):
    for chunk in set(regex.findall(GPT2_SPLIT_PATTERN, small_corpus[:5000])):
        data = chunk.encode("utf-8")
        assert bpe_gpt2._encode_bytes(data) == reference_encode(bpe_gpt2, data)


def test_every_token_encodes_to_itself(bpe_gpt2):
    for i, b in enumerate(bpe_gpt2.vocab):
        assert bpe_gpt2._encode_bytes(b) == [i]


def test_decode_replaces_invalid_utf8():
    tok = BPETokenizer([], pattern=None)
    assert tok.decode([0xFF, ord("a")]) == "\ufffda"
    assert tok.decode(list("é".encode("utf-8"))[:1]) == "\ufffd"
    assert tok.decode([]) == ""


def test_lone_surrogates_are_replaced_like_tiktoken(bpe_gpt2):
    assert bpe_gpt2.decode(bpe_gpt2.encode("a\ud800b")) == "a\ufffdb"


def test_decode_rejects_unknown_id(bpe_gpt2):
    with pytest.raises(ValueError, match="not in the vocabulary"):
        bpe_gpt2.decode([10**6])


def test_encode_rejects_non_text(bpe_gpt2):
    with pytest.raises(TypeError, match="decode bytes first"):
        bpe_gpt2.encode(b"bytes")  # type: ignore[arg-type]


def test_encode_cache_is_bounded(small_corpus):
    tok = BPETokenizer.train(small_corpus[:5000], 300)
    tok.cache_size = 10
    ids = tok.encode(small_corpus[:5000])
    assert len(tok._cache) <= 10
    uncached = BPETokenizer.from_spec(tok.to_dict())
    uncached.cache_size = 0
    assert uncached.encode(small_corpus[:5000]) == ids and not uncached._cache


# ================================================================ special tokens
def test_disallowed_special_raises_with_guidance(bpe_gpt2):
    with pytest.raises(SpecialTokenError) as err:
        bpe_gpt2.encode("Hello" + ENDOFTEXT)
    msg = str(err.value)
    assert repr(ENDOFTEXT) in msg and "character 5" in msg
    assert "allowed_special" in msg and "'none'" in msg


def test_allowed_special_variants(bpe_gpt2):
    eot = bpe_gpt2.eot_token
    text = "Hi" + ENDOFTEXT + " there"
    base = bpe_gpt2.encode("Hi") + [eot] + bpe_gpt2.encode(" there")
    assert bpe_gpt2.encode(text, allowed_special="all") == base
    assert bpe_gpt2.encode(text, allowed_special={ENDOFTEXT}) == base
    plain = bpe_gpt2.encode(text, allowed_special="none")
    assert eot not in plain and plain == bpe_gpt2.encode_ordinary(text)
    assert bpe_gpt2.decode(plain) == text == bpe_gpt2.decode(base)
    with pytest.raises(ValueError, match="not a special token"):
        bpe_gpt2.encode(text, allowed_special={"<|pad|>"})
    with pytest.raises(ValueError, match="not understood"):
        bpe_gpt2.encode(text, allowed_special="some")  # type: ignore[arg-type]


def test_only_some_specials_allowed():
    tok = BPETokenizer.train("abc " * 20, 261, special_tokens=["<|a|>", "<|b|>"])
    a, b = tok.special_tokens["<|a|>"], tok.special_tokens["<|b|>"]
    assert tok.encode("<|a|>x", allowed_special={"<|a|>"})[0] == a
    with pytest.raises(SpecialTokenError, match="<|b|>"):
        tok.encode("<|a|>x<|b|>", allowed_special={"<|a|>"})
    assert tok.encode("<|b|>", allowed_special="all") == [b]


# ================================================================ save / load / export
def test_bpe_save_load_round_trip(tmp_path, bpe_gpt2, small_corpus):
    path = tmp_path / "tok.json"
    bpe_gpt2.save(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["type"] == "bpe" and data["pattern"] == GPT2_SPLIT_PATTERN
    assert data["merges"][0] == list(bpe_gpt2.merge_list[0])
    assert data["special_tokens"] == {ENDOFTEXT: 600 - 1}
    assert data["vocab"][ord("a")] == "a"
    back = get_tokenizer(path)
    assert isinstance(back, BPETokenizer)
    assert back.merge_list == bpe_gpt2.merge_list and back.special_tokens == bpe_gpt2.special_tokens
    text = small_corpus[:3000] + ENDOFTEXT
    assert back.encode(text, allowed_special="all") == bpe_gpt2.encode(text, allowed_special="all")
    assert get_tokenizer(bpe_gpt2.spec()).merge_list == bpe_gpt2.merge_list
    assert json.loads(json.dumps(bpe_gpt2.spec())) == bpe_gpt2.spec()


def test_bad_files_and_specs(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"type": "wordpiece"}', encoding="utf-8")
    with pytest.raises(ValueError, match="wordpiece"):
        get_tokenizer(bad)
    with pytest.raises(ValueError, match="unknown tokenizer"):
        get_tokenizer("no-such-tokenizer")
    with pytest.raises(ValueError, match="does not exist yet"):
        BPETokenizer([(256, 1)])


def test_to_tiktoken_parity_on_shakespeare():
    text = shakespeare()
    tok = BPETokenizer.train(text, 4096, special_tokens=[ENDOFTEXT])
    enc = tok.to_tiktoken()
    assert enc.n_vocab == tok.vocab_size
    assert enc.encode_ordinary(text) == tok.encode(text)
    sample = text[:500] + ENDOFTEXT + text[500:900]
    assert enc.encode(sample, allowed_special="all") == tok.encode(sample, allowed_special="all")
    fast = get_tokenizer(tok.spec(), fast=True)
    assert isinstance(fast, TiktokenTokenizer)
    assert fast.encode(text[:2000]) == tok.encode(text[:2000])


@HYP
@given(st.text(st.characters(blacklist_categories=("Cs", "Cn"))))
def test_to_tiktoken_parity_arbitrary_text(bpe_gpt2, s):
    # Unassigned code points are left out: see test_tokenizers_pretrained.ASSIGNED_TEXT.
    enc = _export(bpe_gpt2)
    assert enc.encode_ordinary(s) == bpe_gpt2.encode_ordinary(s)


_EXPORTS: dict[int, object] = {}


def _export(tok):
    if id(tok) not in _EXPORTS:
        _EXPORTS[id(tok)] = tok.to_tiktoken()
    return _EXPORTS[id(tok)]


# ================================================================ tiktoken-backed tokenizers
def test_named_tiktoken_tokenizers():
    tok = get_tokenizer("gpt2")
    assert isinstance(tok, TiktokenTokenizer)
    assert tok.vocab_size == 50257 and tok.eot_token == 50256
    assert tok.encode("Hello world") == [15496, 995]
    assert tok.spec() == {"type": "tiktoken", "name": "gpt2"}
    assert get_tokenizer(tok.spec()).encode("x y") == tok.encode("x y")
    with pytest.raises(SpecialTokenError, match="allowed_special"):
        tok.encode("a" + ENDOFTEXT)
    assert tok.encode(ENDOFTEXT, allowed_special="all") == [50256]
    assert 50256 not in tok.encode(ENDOFTEXT, allowed_special="none")
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tok.decode([60000])
    cl = get_tokenizer("cl100k_base")
    assert cl.eot_token == 100257 and cl.vocab_size == 100277
    assert get_tokenizer("r50k_base").encode("Hello world") == [15496, 995]


# ================================================================ documentation examples
@pytest.mark.parametrize(
    "module", ["__init__", "base", "char", "bpe", "bpe_train", "bpe_options", "patterns", "pretrained",
               "ranks", "registry"]
)
def test_docstring_examples(module):
    import doctest
    import importlib

    mod = importlib.import_module(
        "llmcourse.tokenizers" + ("" if module == "__init__" else f".{module}")
    )
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_special_ids_may_not_take_ordinary_ids():
    with pytest.raises(ValueError, match="already the ordinary token 'b'"):
        CharTokenizer(["a", "b"], special_tokens={"<|x|>": 1})
    with pytest.raises(ValueError, match=r"already the ordinary token b'\\x05'"):
        BPETokenizer([], special_tokens={"<|x|>": 5})
    assert CharTokenizer(["a"], special_tokens={"<|x|>": 1}).vocab_size == 2


def test_one_token_dtype_for_files_and_streams(tmp_path):
    import numpy as np

    from llmcourse.data import token_dtype as data_token_dtype
    from llmcourse.tokenizers import encode_file

    assert data_token_dtype is token_dtype
    path = tmp_path / "t.txt"
    path.write_text("abcabc")
    tok = CharTokenizer.from_text("abc")
    (arr,) = list(encode_file(path, tok))
    assert arr.dtype == token_dtype(tok.vocab_size) == np.uint16
