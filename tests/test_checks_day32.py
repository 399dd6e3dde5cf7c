"""The day-32 checks pass the solutions, catch plausible mistakes, and say "not done yet" for stubs."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from llmcourse.checks import day32
from llmcourse.tokenizers.bpe import rare_characters as package_rare_characters
from llmcourse.train.evaluate import bits_per_byte as package_bpb
from checklines import fails, passes, stub


# ---- exercise 1 ------------------------------------------------------------------------------


def test_tokens_per_char(capsys):
    passes(capsys, day32.check_tokens_per_char, lambda tok, text: len(tok.encode(text)) / len(text))
    passes(capsys, day32.check_tokens_per_char, day32.reference_tokens_per_char)
    fails(capsys, day32.check_tokens_per_char, stub, "not done yet")


@pytest.mark.parametrize("fn, hint", [
    (lambda tok, text: len(text) / len(tok.encode(text)), "characters per token"),
    (lambda tok, text: len(tok.encode(text)) / len(text.encode("utf-8")), "UTF-8 bytes"),
    (lambda tok, text: len(tok.encode(text)), "expected"),
    (lambda tok, text: None, "return"),
    (lambda tok, text: tok.decode(text), "your code raised"),
])
def test_tokens_per_char_mistakes(capsys, fn, hint):
    fails(capsys, day32.check_tokens_per_char, fn, hint)


# ---- exercise 2 ------------------------------------------------------------------------------


def test_bits_per_byte(capsys):
    passes(capsys, day32.check_bits_per_byte,
           lambda loss, n_tokens, n_bytes: loss * n_tokens / (math.log(2) * n_bytes))
    passes(capsys, day32.check_bits_per_byte,
           lambda loss, n_tokens, n_bytes: package_bpb(loss, n_bytes / n_tokens))
    fails(capsys, day32.check_bits_per_byte, stub, "not done yet")


@pytest.mark.parametrize("fn, hint", [
    (lambda l, t, b: l * t / b, "nats per byte"),
    (lambda l, t, b: l / math.log(2), "bits per token"),
    (lambda l, t, b: l * t / (math.log(10) * b), "math.log(10)"),
    (lambda l, t, b: l * b / (math.log(2) * t), "swapped"),
    (lambda l, t, b: l * t * math.log(2) / b, "multiplied by ln 2"),
    (lambda l, t, b: str(l), "float"),
    (lambda l, t, b: l, "expected"),
])
def test_bits_per_byte_mistakes(capsys, fn, hint):
    fails(capsys, day32.check_bits_per_byte, fn, hint)


# ---- exercise 3 ------------------------------------------------------------------------------


def test_rare_characters(capsys):
    passes(capsys, day32.check_rare_characters, day32.reference_rare_characters)
    passes(capsys, day32.check_rare_characters,
           lambda text, c: package_rare_characters({text: 1}, c))
    passes(capsys, day32.check_rare_characters,
           lambda text, c: sorted(day32.reference_rare_characters(text, c)))   # a list is fine
    fails(capsys, day32.check_rare_characters, stub, "not done yet")


def _kept(text, coverage):
    return set(Counter(text)) - day32.reference_rare_characters(text, coverage)


def _strict(text, coverage):                     # drops the character that crosses the line
    kept, covered = set(), 0
    for ch, n in Counter(text).most_common():
        if covered + n > coverage * len(text):
            break
        kept.add(ch)
        covered += n
    return set(text) - kept


def _distinct(text, coverage):
    ranked = [ch for ch, _ in Counter(text).most_common()]
    return set(ranked[int(coverage * len(ranked)):])


def _ascending(text, coverage):
    ranked = sorted(Counter(text).items(), key=lambda kv: kv[1])
    kept, covered = set(), 0
    for ch, n in ranked:
        if covered >= coverage * len(text):
            break
        kept.add(ch)
        covered += n
    return set(text) - kept


@pytest.mark.parametrize("fn, hint", [
    (_kept, "kept (frequent)"),
    (_strict, "crosses 90%"),
    (_distinct, "distinct characters"),
    (_ascending, "most frequent first"),
    (lambda text, c: None, "return"),
])
def test_rare_characters_mistakes(capsys, fn, hint):
    fails(capsys, day32.check_rare_characters, fn, hint)


def test_reference_matches_package():
    for text in ["aaab", "hello world, hello there!", "x"]:
        for c in (0.5, 0.9, 0.99, 1.0):
            assert day32.reference_rare_characters(text, c) == package_rare_characters({text: 1}, c)
