"""The day-27 checks pass the lesson's solutions, reject every mistake of their tables, refuse the
course's own references, and say "not done yet" for stubs."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

from llmcourse.checks import day27
from checklines import fails, mistake_params, one_line, passes, rejects, stub


# ---- the lesson's solutions (solutions/day27_tinystories.md) ---------------------------------


def solution_write_tokens(chunks, path):
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")    # beside path: same disk, so replace is atomic
    total = 0
    try:
        with open(tmp, "wb") as f:
            for chunk in chunks:
                chunk = np.asarray(chunk)
                if chunk.size and (chunk.min() < 0 or chunk.max() > 65535):
                    raise ValueError(f"id {int(chunk.max())} does not fit in uint16")
                chunk.astype(np.uint16).tofile(f)
                total += chunk.size
    except BaseException:
        tmp.unlink(missing_ok=True)             # a refused call leaves nothing behind
        raise
    tmp.replace(path)                           # only now is a file already at path replaced
    return total


def solution_story_lengths(ids, eot):
    ends = np.flatnonzero(np.asarray(ids) == eot)
    starts = np.concatenate([[0], ends[:-1] + 1])
    return [int(e - s) for s, e in zip(starts, ends)]


def solution_compact_vocab(ids):
    used = np.unique(np.asarray(ids)).astype(np.int64)
    new_ids = np.searchsorted(used, np.asarray(ids).astype(np.int64)).astype(np.int64)
    return new_ids, used


def solution_t4_hours(n_params, n_tokens, mfu, peak_flops=65e12):
    return 6 * n_params * n_tokens / (mfu * peak_flops) / 3600


CHECKS = [
    (day27.check_write_tokens, solution_write_tokens, day27.reference_write_tokens),
    (day27.check_story_lengths, solution_story_lengths, day27.reference_story_lengths),
    (day27.check_compact_vocab, solution_compact_vocab, day27.reference_compact_vocab),
    (day27.check_t4_hours, solution_t4_hours, day27.reference_t4_hours),
]


@pytest.mark.parametrize("check_fn, mistake", mistake_params(day27))
def test_mistake_rejected(check_fn, mistake, capsys):
    rejects(capsys, check_fn, mistake)


@pytest.mark.parametrize("check_fn, solution, reference", CHECKS)
def test_solution_passes(check_fn, solution, reference, capsys):
    passes(capsys, check_fn, solution)


@pytest.mark.parametrize("check_fn, solution, reference", CHECKS)
def test_reference_is_refused(check_fn, solution, reference, capsys):
    fails(capsys, check_fn, reference, "the course's own reference")


@pytest.mark.parametrize("check_fn, solution, reference", CHECKS)
def test_stub_is_not_done(check_fn, solution, reference, capsys):
    fails(capsys, check_fn, stub, "not done yet")


@pytest.mark.parametrize("check_fn, solution, reference", CHECKS)
def test_never_raises_on_odd_values(check_fn, solution, reference, capsys):
    for odd in (lambda *a, **k: None, lambda *a, **k: "x", lambda *a, **k: 1 / 0):
        assert bool(check_fn(odd)) is False
        assert one_line(capsys).startswith("❌")


# ---- other correct answers -------------------------------------------------------------------


def test_write_tokens_variants_pass(capsys):
    def per_item_check(chunks, path):            # checks with np.any, counts with len, mkstemp
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path))
        n = 0
        try:
            with os.fdopen(fd, "wb") as f:
                for c in chunks:
                    a = np.asarray(c, dtype=np.int64)
                    if np.any((a < 0) | (a > 65535)):
                        raise ValueError("id out of range")
                    f.write(a.astype(np.uint16).tobytes())
                    n += len(a)
        except ValueError:
            os.remove(tmp)
            raise
        os.replace(tmp, path)
        return n
    passes(capsys, day27.check_write_tokens, per_item_check)

    def id_by_id(chunks, path):                  # 2 bytes per write: the file's buffer holds some
        path = Path(path)
        tmp = path.with_suffix(".tmp")
        n = 0
        with open(tmp, "wb") as f:
            for chunk in chunks:
                ids = [int(i) for i in chunk]
                if any(i < 0 or i > 65535 for i in ids):
                    f.close()
                    tmp.unlink()
                    raise ValueError("id out of range")
                for i in ids:
                    f.write(i.to_bytes(2, "little"))
                n += len(ids)
        tmp.replace(path)
        return n
    passes(capsys, day27.check_write_tokens, id_by_id)


def test_write_tokens_refusal_keeps_the_old_file(capsys, tmp_path):
    """The lesson's solution and the reference leave an older file and no temporary file."""
    for write in (solution_write_tokens, day27.reference_write_tokens):
        path = tmp_path / "tokens.bin"
        path.write_bytes(b"old ids")
        with pytest.raises(ValueError):
            write(iter([np.arange(4), np.array([70_000])]), path)
        assert path.read_bytes() == b"old ids"
        assert [p.name for p in tmp_path.iterdir()] == ["tokens.bin"]


def test_story_lengths_variants_pass(capsys):
    def loop(ids, eot):
        out, n = [], 0
        for t in np.asarray(ids).tolist():
            if t == eot:
                out.append(n)
                n = 0
            else:
                n += 1
        return out
    passes(capsys, day27.check_story_lengths, loop)
    passes(capsys, day27.check_story_lengths,
           lambda ids, eot: np.diff(np.concatenate([[-1], np.flatnonzero(np.asarray(ids) == eot)])) - 1)


def test_compact_vocab_return_inverse_passes(capsys):
    def inverse(ids):
        used, new = np.unique(np.asarray(ids), return_inverse=True)
        return new.astype(np.int64).reshape(-1), used
    passes(capsys, day27.check_compact_vocab, inverse)


def test_t4_hours_keyword_order_passes(capsys):
    passes(capsys, day27.check_t4_hours,
           lambda n_params, n_tokens, mfu, peak_flops=65e12: n_params * n_tokens * 6 / 3600
           / (peak_flops * mfu))


# ---- messages --------------------------------------------------------------------------------


def test_crash_shows_input(capsys):
    def crash(ids, eot):
        raise IndexError("boom")
    fails(capsys, day27.check_story_lengths, crash, "IndexError: boom on story_lengths(uint16 ids")


def test_no_file_written(capsys):
    fails(capsys, day27.check_write_tokens, lambda chunks, path: 61, "no file was written")


def test_generic_mismatch_names_the_case(capsys):
    fails(capsys, day27.check_t4_hours,
          lambda n_params, n_tokens, mfu, peak_flops=65e12: 1.0, "t4_hours(1.25e7, 2e8")


def test_new_ids_as_a_list_is_refused(capsys):
    fails(capsys, day27.check_compact_vocab,
          lambda ids: (solution_compact_vocab(ids)[0].tolist(), solution_compact_vocab(ids)[1]),
          "numpy array of dtype int64")


# ---- hand-worked values ----------------------------------------------------------------------


def test_references_by_hand(tmp_path):
    assert day27.reference_story_lengths([5, 6, 9, 7, 9, 9, 4], 9) == [2, 1, 0]
    assert day27.reference_story_lengths([0, 4, 4, 0, 0, 4], 0) == [0, 2, 0]
    new, used = day27.reference_compact_vocab(np.array([50, 7, 50, 300], dtype=np.uint16))
    assert new.tolist() == [1, 0, 1, 2] and used.tolist() == [7, 50, 300] and new.dtype == np.int64
    assert day27.reference_t4_hours(1e6, 65e6, 1.0) == pytest.approx(6e12 / 65e12 / 3600 * 65)
    n = day27.reference_write_tokens(iter([[1, 65535], [], [2]]), tmp_path / "t.bin")
    assert n == 3 and (tmp_path / "t.bin").read_bytes() == bytes([1, 0, 255, 255, 2, 0])


def test_more_correct_spellings_pass(capsys):
    def compact_with_a_dict(ids):                # a dict from id to rank, a list pair
        used = np.unique(ids)
        rank = {int(u): i for i, u in enumerate(used)}
        return [np.array([rank[int(t)] for t in ids], dtype=np.int64), used]
    passes(capsys, day27.check_compact_vocab, compact_with_a_dict)
    passes(capsys, day27.check_t4_hours,
           lambda n_params, n_tokens, mfu, peak_flops=65e12:
           6 * n_params * n_tokens / mfu / peak_flops / 60 / 60)


def test_story_lengths_on_a_list_is_named(capsys):
    def literal(ids, eot):                       # np.flatnonzero(ids == eot) with ids a list
        ends = np.flatnonzero(ids == eot)
        return [int(e - s) for s, e in zip(np.concatenate([[0], ends[:-1] + 1]), ends)]
    fails(capsys, day27.check_story_lengths, literal, "np.asarray(ids) == eot")
    assert solution_story_lengths([0, 4, 4, 0, 0, 4], 0) == [0, 2, 0]   # by hand


def test_write_tokens_refusing_65535_is_named(capsys, tmp_path):
    def refuses_largest(chunks, path):
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        total = 0
        try:
            with open(tmp, "wb") as f:
                for chunk in chunks:
                    chunk = np.asarray(chunk)
                    if chunk.size and not (0 <= chunk.min() and chunk.max() < 65535):
                        raise ValueError("out of range")
                    chunk.astype(np.uint16).tofile(f)
                    total += chunk.size
        except ValueError:
            tmp.unlink(missing_ok=True)
            raise
        tmp.replace(path)
        return total
    fails(capsys, day27.check_write_tokens, refuses_largest, "not >= 65535")


# ---- a new learner's wrong answers (red-team round of ms27) ----------------------------------


def _write_lazily(chunks, path):
    """Opens the temporary file at the first chunk, so no chunks leave no file (and a crash)."""
    path = Path(path)
    tmp, f, total = path.with_name(path.name + ".tmp"), None, 0
    for chunk in chunks:
        chunk = np.asarray(chunk)
        if chunk.size and (chunk.min() < 0 or chunk.max() > 65535):
            if f is not None:
                f.close()
                tmp.unlink()
            raise ValueError("that id is no uint16")
        if f is None:
            f = open(tmp, "wb")
        chunk.astype(np.uint16).tofile(f)
        total += chunk.size
    f.close()
    tmp.replace(path)
    return total


def test_write_tokens_without_chunks_writes_an_empty_file(capsys, tmp_path):
    fails(capsys, day27.check_write_tokens, _write_lazily, "on write_tokens(no chunks at all, path)")
    path = tmp_path / "t.bin"
    path.write_bytes(b"old")
    assert solution_write_tokens(iter([]), path) == 0 and path.read_bytes() == b""


def test_write_tokens_other_error_type_is_named(capsys):
    def index_error(chunks, path):               # the lesson's solution, raising IndexError
        def checked():
            for chunk in chunks:
                chunk = np.asarray(chunk)
                if chunk.size and (chunk.min() < 0 or chunk.max() > 65535):
                    raise IndexError("that id is no uint16")
                yield chunk
        return solution_write_tokens(checked(), path)
    fails(capsys, day27.check_write_tokens, index_error,
          "raise ValueError (the task asks for it) for an id outside 0..65535, not IndexError")


def test_compact_vocab_swapped_and_list_used_are_named(capsys):
    fails(capsys, day27.check_compact_vocab,
          lambda ids: (np.unique(ids), np.searchsorted(np.unique(ids), ids).astype(np.int64)),
          "new_ids and used are swapped")
    fails(capsys, day27.check_compact_vocab,
          lambda ids: (solution_compact_vocab(ids)[0], sorted(set(np.asarray(ids).tolist()))),
          "used should be a numpy array")
