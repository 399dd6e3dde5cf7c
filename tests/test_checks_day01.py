"""The day 01 checks pass on the solutions, reject every mistake of their tables, and never raise."""

from __future__ import annotations

import pytest

from checklines import fails, mistake_params, one_line, passes, rejects, stub
from llmcourse.checks import day01
from llmcourse.tokenizers.char import CharTokenizer

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak!\n$3&"

# ---- the lesson's solutions (solutions/day01_characters_to_numbers.md) ----------------------
chars = sorted(set(TEXT))
vocab_size = len(chars)
stoi = {ch: i for i, ch in enumerate(chars)}
itos = {i: ch for i, ch in enumerate(chars)}


def encode(s: str) -> list[int]:
    return [stoi[ch] for ch in s]


def decode(ids) -> str:
    return "".join(itos[int(i)] for i in ids)


def encode_with_unk(s: str, stoi: dict[str, int], unk_id: int) -> list[int]:
    return [stoi.get(ch, unk_id) for ch in s]


@pytest.mark.parametrize("check_fn, mistake", mistake_params(day01))
def test_mistake_rejected(check_fn, mistake, capsys):
    rejects(capsys, check_fn, mistake)


def test_every_exercise_has_three_mistakes():
    for fn in (day01.check_vocabulary, day01.check_lookup_tables, day01.check_encode_decode,
               day01.check_encode_with_unk):
        assert len(fn.mistakes) >= 3


# ---- exercise 1 -----------------------------------------------------------------------------
def test_vocabulary_passes(capsys):
    assert bool(day01.check_vocabulary(chars, vocab_size, TEXT)) is True
    assert "passed" in one_line(capsys)
    assert bool(day01.check_vocabulary("".join(chars), vocab_size, TEXT)) is True  # a string works too
    assert "passed" in one_line(capsys)


def test_vocabulary_stub(capsys):
    assert bool(day01.check_vocabulary(None, None, TEXT)) is False
    assert "not done yet" in one_line(capsys)


def test_vocabulary_odd_value(capsys):
    assert bool(day01.check_vocabulary(42, 42, TEXT)) is False
    assert one_line(capsys).startswith("❌")


# ---- exercise 2 -----------------------------------------------------------------------------
def test_lookup_tables_pass(capsys):
    assert bool(day01.check_lookup_tables(stoi, itos, chars)) is True
    assert "passed" in one_line(capsys)
    inverse = {i: ch for ch, i in stoi.items()}  # itos built from stoi
    assert bool(day01.check_lookup_tables(stoi, inverse, chars)) is True
    assert "passed" in one_line(capsys)


def test_lookup_tables_stub(capsys):
    assert bool(day01.check_lookup_tables(None, None, chars)) is False
    assert "not done yet" in one_line(capsys)


# ---- exercise 3 -----------------------------------------------------------------------------
def test_encode_decode_pass(capsys):
    assert bool(day01.check_encode_decode(encode, decode, TEXT)) is True
    assert "passed" in one_line(capsys)


def test_encode_decode_pass_on_another_text(capsys):
    other = "To be, or not to be: that is the question.\nÉtienne 👋"
    o_stoi = {ch: i for i, ch in enumerate(sorted(set(other)))}
    o_itos = {i: ch for ch, i in o_stoi.items()}
    assert bool(day01.check_encode_decode(lambda s: [o_stoi[c] for c in s],
                                          lambda ids: "".join(o_itos[i] for i in ids), other)) is True
    assert "passed" in one_line(capsys)


def test_encode_decode_stub(capsys):
    fails(capsys, lambda f: day01.check_encode_decode(f, f, TEXT), stub, "not done yet")


def test_encode_decode_refuses_the_package_reference(capsys):
    assert bool(day01.check_encode_decode(CharTokenizer.from_text, decode, TEXT)) is False
    assert "the course's own reference" in one_line(capsys)


def test_encode_with_unfinished_tables_names_exercise_2(capsys):
    stoi = None  # exercise 2 still a stub

    def encode(s):
        return [stoi[c] for c in s]

    assert bool(day01.check_encode_decode(encode, lambda ids: "", "hello")) is False
    assert "stoi / itos: not done yet — finish exercise 2 first" in one_line(capsys)


def test_decode_returning_none_does_not_blame_exercise_2(capsys):
    def decode_none(ids):
        "".join(itos[i] for i in ids)

    assert bool(day01.check_encode_decode(encode, decode_none, TEXT)) is False
    line = one_line(capsys)
    assert "decode returned None" in line and "return" in line and "exercise 2" not in line


def test_decode_dropping_the_last_id_shows_the_difference(capsys):
    def decode_short(ids):
        return "".join(itos[i] for i in ids[:-1])

    assert bool(day01.check_encode_decode(encode, decode_short, TEXT)) is False
    line = one_line(capsys)
    assert "dropped the last id" in line
    # the lengths and the missing last character are shown
    sample = "".join(ch for ch in day01._SAMPLE if ch in stoi)
    assert f"gave {len(sample) - 1} characters" in line and f"expected {len(sample)}" in line
    assert f"the end {sample[-1]!r} is missing" in line


def test_encode_decode_crash_is_reported(capsys):
    def crashing(s):
        return [stoi["missing key"] for _ in s]

    assert bool(day01.check_encode_decode(crashing, decode, TEXT)) is False
    assert "KeyError" in one_line(capsys)


# ---- exercise 4 -----------------------------------------------------------------------------
def test_unk_pass(capsys):
    passes(capsys, lambda f: day01.check_encode_with_unk(f, stoi), encode_with_unk)

    def variant(s, stoi, unk_id):  # an explicit loop
        out = []
        for ch in s:
            out.append(stoi[ch] if ch in stoi else unk_id)
        return out

    passes(capsys, lambda f: day01.check_encode_with_unk(f, stoi), variant)


def test_unk_global_stoi_rejected_with_a_table_unlike_the_notebook(capsys):
    notebook_stoi = {ch: i for i, ch in enumerate(sorted(set("Romeo, the rest of Shakespeare\n")))}

    def reads_global(s, table, unk_id):  # the notebook's global, not the argument
        return [notebook_stoi.get(ch, unk_id) for ch in s]

    assert bool(day01.check_encode_with_unk(reads_global, notebook_stoi)) is False
    assert "read the notebook's global `stoi`" in one_line(capsys)


def test_unk_stub(capsys):
    fails(capsys, lambda f: day01.check_encode_with_unk(f, stoi), stub, "not done yet")


def test_unk_refuses_the_package_reference(capsys):
    fails(capsys, lambda f: day01.check_encode_with_unk(f, stoi), CharTokenizer, "the course's own reference")
    fails(capsys, lambda f: day01.check_encode_with_unk(f, stoi), day01._unk_cases,
          "the course's own reference")


def test_unk_crash_shows_the_input(capsys):
    def crash(text, stoi, unk_id):
        return [1 // 0 for c in text]

    assert bool(day01.check_encode_with_unk(crash, {c: i for i, c in enumerate("Romeo")})) is False
    line = one_line(capsys)
    assert "your code raised ZeroDivisionError" in line and "encode_with_unk('Romeo" in line


def test_unk_odd_return(capsys):
    assert bool(day01.check_encode_with_unk(lambda s, t, u: "ids", stoi)) is False
    assert one_line(capsys).startswith("❌")


def test_half_done_encode_decode_names_decode(capsys):
    def decode_stub(ids):
        raise NotImplementedError

    assert bool(day01.check_encode_decode(encode, decode_stub, TEXT)) is False
    line = one_line(capsys)
    assert line.startswith("⏳") and "decode is not done yet" in line


def test_encode_decode_passes_arrays_and_loops(capsys):  # a correct answer in other styles
    import numpy as np

    def encode_loop(s):
        ids = []
        for ch in s:
            ids.append(stoi[ch])
        return ids

    passes(capsys, lambda f: day01.check_encode_decode(f, decode, TEXT), encode_loop)
    passes(capsys, lambda f: day01.check_encode_decode(f, decode, TEXT),
           lambda s: np.array([stoi[c] for c in s], dtype=np.int64))
    passes(capsys, lambda f: day01.check_encode_decode(encode, f, TEXT),
           lambda ids: "".join(map(itos.get, ids)))


def test_encode_returning_a_generator_is_named(capsys):
    fails(capsys, lambda f: day01.check_encode_decode(f, decode, TEXT),
          lambda s: (stoi[c] for c in s), "returned a generator object, not a list")
