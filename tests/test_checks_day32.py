"""The day-32 checks pass the solutions, reject every mistake of their tables with its hint, say
"not done yet" for stubs and refuse the package's own reference."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from llmcourse.checks import day32
from llmcourse.tokenizers.bpe import rare_characters as package_rare_characters
from llmcourse.train.evaluate import bits_per_byte as package_bpb
from checklines import fails, mistake_params, one_line, passes, rejects, stub

CHECKS = (day32.check_tokens_per_char, day32.check_bits_per_byte, day32.check_rare_characters)


# ---- the lesson's solutions (solutions/day32_choosing_a_tokenizer.md) and variants -----------


def tokens_per_char(tok, text):
    return len(tok.encode(text)) / len(text)


def bits_per_byte(loss, n_tokens, n_bytes):
    return loss * n_tokens / (math.log(2) * n_bytes)


def rare_characters(text, coverage):
    counts = Counter(text)
    kept, covered = set(), 0
    for ch, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if covered >= coverage * len(text):
            break
        kept.add(ch)
        covered += n
    return set(counts) - kept


@pytest.mark.parametrize("check_fn, mistake", mistake_params(day32))
def test_mistake_rejected(check_fn, mistake, capsys):
    rejects(capsys, check_fn, mistake)


def test_every_table_has_three_mistakes():
    assert all(len(fn.mistakes) >= 3 for fn in CHECKS)


@pytest.mark.parametrize("check_fn, fn", [
    (day32.check_tokens_per_char, tokens_per_char),
    (day32.check_bits_per_byte, bits_per_byte),
    (day32.check_bits_per_byte, lambda loss, n_tokens, n_bytes: package_bpb(loss, n_bytes / n_tokens)),
    (day32.check_bits_per_byte, lambda loss, t, b: loss / math.log(2) * t / b),
    (day32.check_rare_characters, rare_characters),
    (day32.check_rare_characters, lambda text, c: package_rare_characters({text: 1}, c)),
    (day32.check_rare_characters, lambda text, c: sorted(rare_characters(text, c))),  # a list is fine
])
def test_solutions_pass(check_fn, fn, capsys):
    passes(capsys, check_fn, fn)


@pytest.mark.parametrize("check_fn, fn", [
    (day32.check_tokens_per_char, day32.reference_tokens_per_char),
    (day32.check_rare_characters, day32.reference_rare_characters),
    (day32.check_rare_characters, package_rare_characters),
])
def test_package_reference_refused(check_fn, fn, capsys):
    fails(capsys, check_fn, fn, "the course's own reference")


@pytest.mark.parametrize("check_fn", CHECKS)
def test_stub(check_fn, capsys):
    fails(capsys, check_fn, stub, "not done yet")


@pytest.mark.parametrize("check_fn", CHECKS)
def test_odd_return_is_one_line(check_fn, capsys):
    assert bool(check_fn(lambda *a: [1, 2])) is False
    assert one_line(capsys).startswith("❌")


def test_raises_names_the_input(capsys):
    fails(capsys, day32.check_tokens_per_char, lambda tok, text: tok.decode(text), "your code raised")


def test_hand_worked():
    assert rare_characters("zzzzyyyxxxw", 0.6) == {"y", "w"}      # z (4), then x (ties y, x < y)
    assert math.isclose(bits_per_byte(math.log(2), 4, 2), 2.0)     # 1 bit a token, 2 tokens a byte
    assert day32.reference_rare_characters("aaab", 1.0) == set()


def test_reference_matches_package():
    for text in ["aaab", "hello world, hello there!", "x", "zzzzyyyxxxw"]:
        for c in (0.5, 0.6, 0.9, 0.99, 1.0):
            assert day32.reference_rare_characters(text, c) == package_rare_characters({text: 1}, c)


def test_checks_are_fast():
    import time
    t = time.process_time()
    for check_fn, fn in zip(CHECKS, (tokens_per_char, bits_per_byte, rare_characters)):
        check_fn(fn)
    assert time.process_time() - t < 2.0


def test_second_round_correct_variants_pass(capsys):
    passes(capsys, day32.check_bits_per_byte,
           lambda loss, n_tokens, n_bytes: loss * n_tokens * math.log2(math.e) / n_bytes)

    def rare_by_share(text, coverage):       # the share compared, not the count; a sorted list back
        counts, kept, covered = Counter(text), set(), 0
        for ch, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            if covered / len(text) >= coverage:
                break
            kept.add(ch)
            covered += n
        return sorted(set(counts) - kept)
    passes(capsys, day32.check_rare_characters, rare_by_share)
