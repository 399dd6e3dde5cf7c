"""The sentencepiece-style training options of BPETokenizer.train: max_token_length and
character_coverage (the defaults must leave training exactly as before)."""

from __future__ import annotations

import random
import warnings

import pytest

from llmcourse.tokenizers import BPETokenizer
from llmcourse.tokenizers.bpe import rare_characters

_rng = random.Random(0)
_WORDS = ["".join(_rng.choice("etaoinshrdlucmwfgyp") for _ in range(_rng.randint(2, 9)))
          for _ in range(300)]
TEXT = (" ".join(_rng.choice(_WORDS) for _ in range(6000))
        + " thethethe wonderful wonderful wonderful" * 30 + " caf\u00e9 na\u00efve \u65e5\u672c" * 2)


def test_defaults_are_unchanged():
    a = BPETokenizer.train(TEXT, 320)
    b = BPETokenizer.train(TEXT, 320, max_token_length=None, character_coverage=1.0)
    assert a.merge_list == b.merge_list


def test_max_token_length_caps_every_token():
    free = BPETokenizer.train(TEXT, 330, pattern=None)
    assert max(len(v) for v in free.vocab) > 4
    capped = BPETokenizer.train(TEXT, 330, pattern=None, max_token_length=4)
    assert max(len(v) for v in capped.vocab) <= 4
    assert len(capped.merge_list) == len(free.merge_list)          # the budget is spent elsewhere
    assert capped.decode(capped.encode(TEXT)) == TEXT
    assert len(capped.encode(TEXT)) > len(free.encode(TEXT))       # shorter tokens, more of them
    # the merges it keeps are, in order, those of free training that fit, until they differ
    first_long = next(i for i, v in enumerate(free.vocab[256:]) if len(v) > 4)
    assert capped.merge_list[:first_long] == free.merge_list[:first_long]


@pytest.mark.parametrize("bad", [0, 1, 2.5, "4"])
def test_max_token_length_validated(bad):
    with pytest.raises(ValueError, match="max_token_length"):
        BPETokenizer.train(TEXT, 300, max_token_length=bad)


def test_rare_characters():
    assert rare_characters({"aaab": 1}, 1.0) == set()
    assert rare_characters({"aaab": 1}, 0.75) == {"b"}
    assert rare_characters({"ab": 3, "c": 1}, 0.7) == {"c"}       # a 3, b 3 cover 6 of 7
    assert rare_characters({"ab": 1}, 0.5) == {"b"}                # a tie: the lower code point


def test_character_coverage_spends_no_merge_on_rare_characters():
    text = "abab abab cdcd " * 50 + "caf\u00e9 \u65e5\u672c " * 6      # the rare ones: 1.3% each

    def multibyte_merges(tok):                       # merged tokens holding a non-ASCII byte
        return [v for v in tok.vocab[256:] if any(b >= 0x80 for b in v)]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")              # the tiny corpus runs out of pairs
        full = BPETokenizer.train(text, 300)
        covered = BPETokenizer.train(text, 300, character_coverage=0.96)
    assert multibyte_merges(full)
    assert rare_characters({text: 1}, 0.96) >= {"\u00e9", "\u65e5", "\u672c"}
    assert not multibyte_merges(covered)
    for word in ["caf\u00e9", "\u65e5\u672c"]:                     # byte fallback: still lossless
        assert covered.decode(covered.encode(word)) == word
    assert len(covered.encode("\u65e5\u672c")) == 6                # 2 characters, 3 bytes each
    assert len(full.encode("\u65e5\u672c")) < 6


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5])
def test_character_coverage_validated(bad):
    with pytest.raises(ValueError, match="character_coverage"):
        BPETokenizer.train(TEXT, 300, character_coverage=bad)


# ---------------------------------------------------------------- the two tiers agree
@pytest.mark.parametrize("seed", range(5))
def test_fast_and_textbook_bpe_agree_at_the_default_options(seed):
    """basic (the textbook) and BPETokenizer.train + encode (the fast tier): same merges, same ids."""
    from llmcourse.tokenizers import basic

    rng = random.Random(seed)
    alphabet = "aabbbcd  \n\u00e9\u65e5"
    text = "".join(rng.choice(alphabet) for _ in range(rng.randint(300, 900)))
    sample = "".join(rng.choice(alphabet) for _ in range(200))
    vocab = 256 + rng.randint(10, 60)
    merges = basic.train(text, vocab)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a small text may run out of pairs
        fast = BPETokenizer.train(text, vocab, pattern=None, max_token_length=None,
                                  character_coverage=1.0)
    assert fast.merge_list == list(merges)
    assert fast.encode(sample) == basic.encode(sample, merges)
    assert fast.decode(fast.encode(sample)) == basic.decode(basic.encode(sample, merges), merges)


def test_the_options_are_beside_the_trainer_not_in_it():
    """bpe_train knows nothing of the options; bpe_options plugs in from outside."""
    import inspect

    from llmcourse.tokenizers import bpe_train

    for fn in (bpe_train.count_pretokens, bpe_train.learn_merges, bpe_train._merge_word):
        source = inspect.getsource(fn)
        assert "coverage" not in source and "max_token_length" not in source
