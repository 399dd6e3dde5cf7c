"""The day 01 checks pass on the solutions, catch plausible mistakes, and never raise."""

from __future__ import annotations

import pytest

from llmcourse.checks import day01

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak!\n$3&"
CHARS = sorted(set(TEXT))
STOI = {ch: i for i, ch in enumerate(CHARS)}
ITOS = {i: ch for i, ch in enumerate(CHARS)}


def encode(s):
    return [STOI[ch] for ch in s]


def decode(ids):
    return "".join(ITOS[i] for i in ids)


def encode_with_unk(s, stoi, unk_id):
    return [stoi.get(ch, unk_id) for ch in s]


def todo(*args, **kwargs):
    raise NotImplementedError


def verdict(capsys) -> str:
    out = capsys.readouterr().out
    assert out.count("\n") == 1, out  # exactly one line of feedback
    return out


# ---- exercise 1: vocabulary ----------------------------------------------------------------
def test_vocabulary_passes(capsys):
    assert bool(day01.check_vocabulary(CHARS, len(CHARS), TEXT)) is True
    assert verdict(capsys).startswith("✅")


@pytest.mark.parametrize(
    "chars, size, hint",
    [
        (list(reversed(CHARS)), len(CHARS), "sort"),  # right set, wrong order
        (set(CHARS), len(CHARS), "set"),
        (CHARS[1:], len(CHARS) - 1, "misses"),
        (CHARS + [CHARS[0]], len(CHARS) + 1, "duplicates"),
        (CHARS, len(CHARS) + 1, "len(chars)"),
    ],
)
def test_vocabulary_wrong(capsys, chars, size, hint):
    assert bool(day01.check_vocabulary(chars, size, TEXT)) is False
    out = verdict(capsys)
    assert out.startswith("❌") and hint in out


def test_vocabulary_stub(capsys):
    assert bool(day01.check_vocabulary(None, None, TEXT)) is False
    assert "not done yet" in verdict(capsys)


# ---- exercise 2: lookup tables -------------------------------------------------------------
def test_lookup_tables_pass(capsys):
    assert bool(day01.check_lookup_tables(STOI, ITOS, CHARS)) is True
    assert verdict(capsys).startswith("✅")


def test_lookup_tables_off_by_one(capsys):
    stoi = {ch: i + 1 for i, ch in enumerate(CHARS)}
    itos = {i + 1: ch for i, ch in enumerate(CHARS)}
    assert bool(day01.check_lookup_tables(stoi, itos, CHARS)) is False
    assert "start at 1" in verdict(capsys)


def test_lookup_tables_swapped(capsys):
    assert bool(day01.check_lookup_tables(ITOS, STOI, CHARS)) is False
    assert "looks like `itos`" in verdict(capsys)


def test_lookup_tables_bad_inverse(capsys):
    itos = dict(ITOS)
    itos[0], itos[1] = itos[1], itos[0]
    assert bool(day01.check_lookup_tables(STOI, itos, CHARS)) is False
    assert "itos[0]" in verdict(capsys)


def test_lookup_tables_stub(capsys):
    assert bool(day01.check_lookup_tables(None, None, CHARS)) is False
    assert "not done yet" in verdict(capsys)


# ---- exercise 3: encode / decode -----------------------------------------------------------
def test_encode_decode_pass(capsys):
    assert bool(day01.check_encode_decode(encode, decode, TEXT)) is True
    assert verdict(capsys).startswith("✅")


def test_encode_off_by_one(capsys):
    assert bool(day01.check_encode_decode(lambda s: [STOI[c] + 1 for c in s], decode, TEXT)) is False
    assert "was encoded as" in verdict(capsys)


def test_decode_returns_list(capsys):
    assert bool(day01.check_encode_decode(encode, lambda ids: [ITOS[i] for i in ids], TEXT)) is False
    assert "join" in verdict(capsys)


def test_encode_drops_spaces(capsys):
    bad = lambda s: [STOI[c] for c in s if c != " "]  # noqa: E731
    assert bool(day01.check_encode_decode(bad, decode, TEXT)) is False
    assert "one id per character" in verdict(capsys)


def test_encode_decode_stub(capsys):
    assert bool(day01.check_encode_decode(todo, todo, TEXT)) is False
    assert "not done yet" in verdict(capsys)


def test_encode_decode_learner_crash_is_reported(capsys):
    def crashing(s):
        return [STOI["missing key"]]

    assert bool(day01.check_encode_decode(crashing, decode, TEXT)) is False
    assert "KeyError" in verdict(capsys)


# ---- exercise 4: <unk> ---------------------------------------------------------------------
def test_unk_pass(capsys):
    assert bool(day01.check_encode_with_unk(encode_with_unk, STOI)) is True
    assert verdict(capsys).startswith("✅")


def test_unk_dropped(capsys):
    bad = lambda s, stoi, unk: [stoi[c] for c in s if c in stoi]  # noqa: E731
    assert bool(day01.check_encode_with_unk(bad, STOI)) is False
    assert "dropped" in verdict(capsys)


def test_unk_hard_coded(capsys):
    bad = lambda s, stoi, unk: [stoi.get(c, len(stoi)) for c in s]  # noqa: E731
    assert bool(day01.check_encode_with_unk(bad, STOI)) is False
    assert "unk_id" in verdict(capsys)


def test_unk_missing_return(capsys):
    assert bool(day01.check_encode_with_unk(lambda s, stoi, unk: None, STOI)) is False
    assert "return" in verdict(capsys)


def test_unk_stub(capsys):
    assert bool(day01.check_encode_with_unk(todo, STOI)) is False
    assert "not done yet" in verdict(capsys)


def test_encode_with_unfinished_tables_names_exercise_2(capsys):
    stoi = None  # exercise 2 still a stub

    def encode(s):
        return [stoi[c] for c in s]

    assert bool(day01.check_encode_decode(encode, lambda ids: "", "hello")) is False
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "stoi / itos: not done yet — finish exercise 2 first" in out


def test_encode_with_unk_crash_shows_the_input(capsys):
    def crash(text, stoi, unk_id):
        return [stoi[c] for c in text]  # KeyError on 'é'

    assert bool(day01.check_encode_with_unk(crash, {c: i for i, c in enumerate("Romeo")})) is False
    out = capsys.readouterr().out
    assert "your code raised KeyError" in out and "encode_with_unk('Romeo" in out
