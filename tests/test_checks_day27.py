"""The day-27 checks pass the solutions, catch plausible mistakes, and say "not done yet" for stubs."""

from __future__ import annotations

import numpy as np
import pytest

from llmcourse.checks import day27
from checklines import one_line, stub


@pytest.mark.parametrize("name", ["write_tokens", "story_lengths", "compact_vocab", "t4_hours"])
def test_reference_passes_and_stub_is_not_done(capsys, name):
    check = getattr(day27, f"check_{name}")
    assert bool(check(getattr(day27, f"reference_{name}"))) is True
    assert "passed" in one_line(capsys)
    assert bool(check(stub)) is False
    assert "not done yet" in one_line(capsys)


# ---- exercise 1: write_tokens ----------------------------------------------------------------


def _write_int64(chunks, path):
    n = 0
    with open(path, "wb") as f:
        for c in chunks:
            np.asarray(c).tofile(f)
            n += len(c)
    return n


def _write_reopening(chunks, path):
    n = 0
    for c in chunks:
        with open(path, "wb") as f:
            np.asarray(c).astype(np.uint16).tofile(f)
        n += len(c)
    return n


def _write_no_range_check(chunks, path):
    n = 0
    with open(path, "wb") as f:
        for c in chunks:
            np.asarray(c).astype(np.uint16).tofile(f)
            n += len(c)
    return n


def _write_no_return(chunks, path):
    day27.reference_write_tokens(chunks, path)


def _write_uint32(chunks, path):
    n = 0
    with open(path, "wb") as f:
        for c in chunks:
            np.asarray(c).astype(np.uint32).tofile(f)
            n += len(c)
    return n


def _write_twice_iterated(chunks, path):
    n = sum(len(c) for c in chunks)       # uses up the generator
    day27.reference_write_tokens(chunks, path)
    return n


def _write_int16(chunks, path):
    n = 0
    with open(path, "wb") as f:
        for c in chunks:
            a = np.asarray(c)
            if a.max() > 32767:
                raise ValueError("too big")
            a.astype(np.int16).tofile(f)
            n += len(c)
    return n


@pytest.mark.parametrize("wrong, hint", [
    (_write_int64, "8 bytes per id"),
    (_write_uint32, "4 bytes per id"),
    (_write_reopening, "only the last chunk"),
    (_write_no_range_check, "wraps it around"),
    (_write_no_return, "returned None"),
    (_write_twice_iterated, "expected the 61 ids"),
    (_write_int16, "raised ValueError: too big"),
])
def test_write_tokens_mistakes(capsys, wrong, hint):
    assert bool(day27.check_write_tokens(wrong)) is False
    assert hint in one_line(capsys)


# ---- exercise 2: story_lengths ---------------------------------------------------------------


def _lengths_with_eot(ids, eot):
    return [n + 1 for n in day27.reference_story_lengths(ids, eot)]


def _lengths_with_tail(ids, eot):
    out, n = [], 0
    for t in np.asarray(ids).tolist():
        if t == eot:
            out.append(n)
            n = 0
        else:
            n += 1
    return out + [n]


def _lengths_diff(ids, eot):
    return np.diff(np.flatnonzero(np.asarray(ids) == eot)).tolist()


def _lengths_split_text(ids, eot):
    return [n for n in day27.reference_story_lengths(ids, eot) if n]


def _lengths_gpt2_eot(ids, eot):
    return day27.reference_story_lengths(ids, 50256)


@pytest.mark.parametrize("wrong, hint", [
    (_lengths_with_eot, "counts the end-of-text token"),
    (_lengths_with_tail, "unfinished"),
    (_lengths_diff, "first story is missing"),
    (_lengths_split_text, "empty story"),
    (_lengths_gpt2_eot, "story_lengths returned []"),
])
def test_story_lengths_mistakes(capsys, wrong, hint):
    assert bool(day27.check_story_lengths(wrong)) is False
    assert hint in one_line(capsys)


# ---- exercise 3: compact_vocab ---------------------------------------------------------------


def _compact_first_seen(ids):
    order = list(dict.fromkeys(np.asarray(ids).tolist()))
    index = {t: i for i, t in enumerate(order)}
    return np.array([index[t] for t in np.asarray(ids).tolist()], dtype=np.int64), np.array(order)


def _compact_uint16(ids):
    new, used = day27.reference_compact_vocab(ids)
    return new.astype(np.uint16), used


def _compact_swapped(ids):
    new, used = day27.reference_compact_vocab(ids)
    return used, new


def _compact_not_unique(ids):
    return np.arange(len(ids)), np.sort(np.asarray(ids))


@pytest.mark.parametrize("wrong, hint", [
    (_compact_first_seen, "should be sorted"),
    (_compact_uint16, "should be int64"),
    (_compact_swapped, "each distinct id once"),
    (_compact_not_unique, "each distinct id once"),
    (lambda ids: np.unique(ids), "compact_vocab"),
])
def test_compact_vocab_mistakes(capsys, wrong, hint):
    assert bool(day27.check_compact_vocab(wrong)) is False
    assert hint in one_line(capsys)


# ---- exercise 4: t4_hours --------------------------------------------------------------------


@pytest.mark.parametrize("wrong, hint", [
    (lambda n, d, mfu, peak_flops=65e12: 6 * n * d / (mfu * peak_flops), "seconds"),
    (lambda n, d, mfu, peak_flops=65e12: 6 * n * d / (mfu * peak_flops) / 60, "minutes"),
    (lambda n, d, mfu, peak_flops=65e12: 2 * n * d / (mfu * peak_flops) / 3600, "6ND"),
    (lambda n, d, mfu, peak_flops=65e12: 6 * n * d * mfu / peak_flops / 3600, "mfu should divide"),
    (lambda n, d, mfu, peak_flops=65e12: 6 * n * d / (mfu * 100 * peak_flops) / 3600, "percentage"),
    (lambda n, d, mfu, peak_flops=65e12: 6 * n * d / (mfu * 65e12) / 3600, "should be"),
    (lambda n, d, mfu, peak_flops=1e12: 6 * n * d / (mfu * peak_flops) / 3600, "default"),
    (lambda n, d, mfu, peak_flops=65e12: None, "returned None"),
])
def test_t4_hours_mistakes(capsys, wrong, hint):
    assert bool(day27.check_t4_hours(wrong)) is False
    assert hint in one_line(capsys)


def test_crash_shows_input(capsys):
    def crash(ids, eot):
        raise IndexError("boom")
    assert bool(day27.check_story_lengths(crash)) is False
    line = one_line(capsys)
    assert "IndexError: boom" in line and "story_lengths(ids, eot=41000)" in line
