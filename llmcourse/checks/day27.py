"""Checks for day 27, "TinyStories", and the reference versions the lesson runs on.

Each ``check_*`` function compares the learner's code with the reference on a small seeded
battery (int64, int32 and uint16 token ids, uint16 memmaps read from a file as train.bin is,
empty chunks and stories, ids at the edge of 16 bits, an end-of-text id unlike GPT-2's,
non-default arguments), prints one line - a pass, the hint of a known mistake from the
exercise's table, or "not done yet" - and never raises.

Example::

    >>> from llmcourse.checks import day27
    >>> ok = day27.check_story_lengths(lambda ids, eot: day27.reference_story_lengths(ids, eot))
    ✅ story_lengths: passed
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from llmcourse.atomic import write_atomic
from llmcourse.checks._core import (Case, CheckFailed, Mistake, Raised, as_float, as_int,
                                    as_int_list, as_pair, check, compare, kind_of)

__all__ = [
    "check_write_tokens",
    "check_story_lengths",
    "check_compact_vocab",
    "check_t4_hours",
    "reference_write_tokens",
    "reference_story_lengths",
    "reference_compact_vocab",
    "reference_t4_hours",
    "WRITE_TOKENS", "STORY_LENGTHS", "COMPACT_VOCAB", "T4_HOURS",
]

_UINT16_MAX = np.iinfo(np.uint16).max


# ---- reference implementations -------------------------------------------------------------


def reference_write_tokens(chunks: Iterable[Any], path: str | os.PathLike[str]) -> int:
    """Write each chunk of token ids to ``path`` as raw uint16, in order; return the count.

    Memory stays bounded by one chunk. Ids that do not fit in 16 bits raise ``ValueError``
    (``astype`` would silently wrap them around). The ids go to a temporary file beside
    ``path``, which replaces ``path`` only after the last chunk: a refused call leaves a file
    already at ``path`` as it was (``write_atomic`` also removes the temporary file).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.bin"
    >>> reference_write_tokens(iter([[1, 2], [3]]), p), p.stat().st_size
    (3, 6)
    """
    total = 0

    def write_chunks(f: Any) -> None:
        nonlocal total
        for chunk in chunks:
            arr = np.asarray(chunk)
            if arr.size and (arr.min() < 0 or arr.max() > _UINT16_MAX):
                raise ValueError(f"token id {int(arr.max())} does not fit in uint16 "
                                 f"(0..{_UINT16_MAX}); store this vocabulary as uint32")
            arr.astype(np.uint16).tofile(f)
            total += arr.size

    write_atomic(path, write_chunks)
    return total


def reference_story_lengths(ids: Any, eot: int) -> list[int]:
    """The number of tokens of each story, the end-of-text ``eot`` after it not counted.

    Every story is followed by ``eot``; tokens after the last ``eot`` (an unfinished story) are
    not a story yet and are left out.

    >>> reference_story_lengths([5, 6, 9, 7, 9, 9, 4], eot=9)
    [2, 1, 0]
    """
    ends = np.flatnonzero(np.asarray(ids) == eot)          # positions of the eot tokens
    starts = np.concatenate([[0], ends[:-1] + 1]) if len(ends) else ends
    return [int(e - s) for s, e in zip(starts, ends)]


def reference_compact_vocab(ids: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(new_ids, used)``: ``used`` the sorted distinct ids, ``new_ids`` each id's index in it.

    ``used[new_ids]`` gives back ``ids``; ``new_ids`` is int64, as ``nn.Embedding`` wants.

    >>> new, used = reference_compact_vocab(np.array([50, 7, 50, 300], dtype=np.uint16))
    >>> new.tolist(), used.tolist()
    ([1, 0, 1, 2], [7, 50, 300])
    """
    used = np.unique(np.asarray(ids)).astype(np.int64)
    return np.searchsorted(used, np.asarray(ids).astype(np.int64)).astype(np.int64), used


def reference_t4_hours(n_params: float, n_tokens: float, mfu: float,
                       peak_flops: float = 65e12) -> float:
    """Hours to train on ``n_tokens``: ``6 N D`` FLOPs at ``mfu`` of ``peak_flops`` per second.

    >>> round(reference_t4_hours(30e6, 82e6, mfu=0.3), 3)
    0.21
    """
    return 6.0 * n_params * n_tokens / (mfu * peak_flops) / 3600.0


def _uint16_file(ids: np.ndarray, folder: str, name: str = "ids.bin") -> np.memmap:
    """``ids`` written as raw uint16 and opened again as a read-only memmap, as train.bin is."""
    path = Path(folder) / name
    np.asarray(ids, dtype=np.uint16).tofile(path)
    return np.memmap(path, dtype=np.uint16, mode="r")


# ---- exercise 1: write_tokens ----------------------------------------------------------------


def _write_int64(chunks, path):              # no astype: the chunk's own dtype is written
    n = 0
    with open(path, "wb") as f:
        for c in chunks:
            c = np.asarray(c)
            if c.size and (c.min() < 0 or c.max() > 65535):
                raise ValueError("too big")
            c.tofile(f)
            n += c.size
    return n


def _write_uint32(chunks, path):
    n = 0
    with open(path, "wb") as f:
        for c in chunks:
            c = np.asarray(c)
            if c.size and (c.min() < 0 or c.max() > 65535):
                raise ValueError("too big")
            c.astype(np.uint32).tofile(f)
            n += c.size
    return n


def _write_reopening(chunks, path):          # "wb" inside the loop empties the file each time
    n = 0
    for c in chunks:
        c = np.asarray(c)
        if c.size and (c.min() < 0 or c.max() > 65535):
            raise ValueError("too big")
        with open(path, "wb") as f:
            c.astype(np.uint16).tofile(f)
        n += c.size
    return n


def _write_appending(chunks, path):          # "ab": an old file's ids stay in front
    n = 0
    with open(path, "ab") as f:
        for c in chunks:
            c = np.asarray(c)
            if c.size and (c.min() < 0 or c.max() > 65535):
                raise ValueError("too big")
            c.astype(np.uint16).tofile(f)
            n += c.size
    return n


def _write_no_range_check(chunks, path):
    n = 0
    with open(path, "wb") as f:
        for c in chunks:
            np.asarray(c).astype(np.uint16).tofile(f)
            n += len(c)
    return n


def _write_only_max(chunks, path):           # forgets negative ids
    n = 0
    with open(path, "wb") as f:
        for c in chunks:
            c = np.asarray(c)
            if c.size and c.max() > 65535:
                raise ValueError("too big")
            c.astype(np.uint16).tofile(f)
            n += c.size
    return n


def _write_min_of_empty(chunks, path):       # .min() of an empty chunk raises
    n = 0
    with open(path, "wb") as f:
        for c in chunks:
            c = np.asarray(c)
            if c.min() < 0 or c.max() > 65535:
                raise ValueError("too big")
            c.astype(np.uint16).tofile(f)
            n += c.size
    return n


def _write_overflow_error(chunks, path):
    n = 0
    with open(path, "wb") as f:
        for c in chunks:
            c = np.asarray(c)
            if c.size and (c.min() < 0 or c.max() > 65535):
                raise OverflowError("too big")
            c.astype(np.uint16).tofile(f)
            n += c.size
    return n


def _write_twice_iterated(chunks, path):     # uses up the generator before writing
    n = sum(len(c) for c in chunks)
    with open(path, "wb") as f:
        for c in chunks:
            np.asarray(c).astype(np.uint16).tofile(f)
    return n


def _write_limit_2_16(chunks, path):         # > 2**16 lets 65536 through (it wraps to 0)
    total = 0
    with open(path, "wb") as f:
        for chunk in chunks:
            arr = np.asarray(chunk)
            if arr.size and (arr.min() < 0 or arr.max() > 2 ** 16):
                raise ValueError("token id does not fit in uint16")
            arr.astype(np.uint16).tofile(f)
            total += arr.size
    return total


def _write_refuses_65535(chunks, path):      # >= 65535: the largest id uint16 holds is refused
    total = 0
    with open(path, "wb") as f:
        for chunk in chunks:
            arr = np.asarray(chunk)
            if arr.size and (arr.min() < 0 or arr.max() >= 65535):
                raise ValueError("token id does not fit in uint16")
            arr.astype(np.uint16).tofile(f)
            total += arr.size
    return total


def _write_counts_chunks(chunks, path):
    n = 0
    with open(path, "wb") as f:
        for c in chunks:
            c = np.asarray(c)
            if c.size and (c.min() < 0 or c.max() > 65535):
                raise ValueError("too big")
            c.astype(np.uint16).tofile(f)
            n += 1
    return n


def _write_all_at_once(chunks, path):       # every chunk in memory first: not bounded by one
    ids = np.concatenate([np.asarray(chunk, dtype=np.int64) for chunk in chunks])
    if ids.size and (ids.min() < 0 or ids.max() > _UINT16_MAX):
        raise ValueError("id out of range")
    tmp = Path(path).with_name(Path(path).name + ".tmp")
    ids.astype(np.uint16).tofile(tmp)
    tmp.replace(path)
    return int(ids.size)


def _write_counts_bytes(chunks, path):      # nbytes of the chunk as given (8 per int64 id)
    tmp = Path(path).with_name(Path(path).name + ".tmp")
    total = 0
    with open(tmp, "wb") as f:
        for chunk in chunks:
            arr = np.asarray(chunk)
            if arr.size and (arr.min() < 0 or arr.max() > _UINT16_MAX):
                f.close()
                tmp.unlink()
                raise ValueError("id out of range")
            arr.astype(np.uint16).tofile(f)
            total += arr.nbytes
    tmp.replace(path)
    return total


def _write_checks_first(chunks, path):      # a first loop checks the ids and uses up the generator
    for c in chunks:
        c = np.asarray(c)
        if c.size and (c.min() < 0 or c.max() > 65535):
            raise ValueError("too big")
    n = 0
    with open(path, "wb") as f:
        for c in chunks:                     # nothing left: the file stays empty
            np.asarray(c).astype(np.uint16).tofile(f)
            n += len(c)
    return n


def _write_counts_file_bytes(chunks, path):  # f.tell(): the bytes written, 2 per id
    with open(path, "wb") as f:
        for c in chunks:
            c = np.asarray(c)
            if c.size and (c.min() < 0 or c.max() > 65535):
                raise ValueError("too big")
            c.astype(np.uint16).tofile(f)
        return f.tell()


def _write_no_return(chunks, path):
    with open(path, "wb") as f:
        for c in chunks:
            c = np.asarray(c)
            if c.size and (c.min() < 0 or c.max() > 65535):
                raise ValueError("too big")
            c.astype(np.uint16).tofile(f)


def _write_in_place(chunks, path):         # the earlier chunks replace the old file, then it raises
    n = 0
    with open(path, "wb") as f:
        for c in chunks:
            c = np.asarray(c)
            if c.size and (c.min() < 0 or c.max() > 65535):
                raise ValueError("too big")
            c.astype(np.uint16).tofile(f)
            n += c.size
    return n


def _write_temp_chunks(chunks, f):          # the loop of the temporary-file answers below
    n = 0
    for c in chunks:
        c = np.asarray(c)
        if c.size and (c.min() < 0 or c.max() > 65535):
            raise ValueError("too big")
        c.astype(np.uint16).tofile(f)
        n += c.size
    return n


def _write_temp_left(chunks, path):         # no clean-up: the temporary file stays on an error
    tmp = Path(str(path) + ".tmp")
    with open(tmp, "wb") as f:
        n = _write_temp_chunks(chunks, f)
    os.replace(tmp, path)
    return n


def _write_never_replaces(chunks, path):    # the ids stay in the temporary file
    tmp = Path(str(path) + ".tmp")
    with open(tmp, "wb") as f:
        return _write_temp_chunks(chunks, f)


def _write_replaces_in_finally(chunks, path):   # the partial file replaces path even on an error
    tmp = Path(str(path) + ".tmp")
    try:
        with open(tmp, "wb") as f:
            n = _write_temp_chunks(chunks, f)
    finally:
        os.replace(tmp, path)
    return n


def _write_deletes_path(chunks, path):      # "clean-up" that removes the user's file
    tmp = Path(str(path) + ".tmp")
    try:
        with open(tmp, "wb") as f:
            n = _write_temp_chunks(chunks, f)
    except ValueError:
        tmp.unlink()
        Path(path).unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    return n


def _write_copies_temp(chunks, path):       # a copy leaves the temporary file behind
    import shutil
    tmp = Path(str(path) + ".tmp")
    try:
        with open(tmp, "wb") as f:
            n = _write_temp_chunks(chunks, f)
    except ValueError:
        tmp.unlink()
        raise
    shutil.copyfile(tmp, path)
    return n


_IN_PLACE = ("a refused call changed the file already at path (the chunks before the bad id "
             "were written over it): write to a temporary file beside path and os.replace it "
             "onto path only after the last chunk")
_TEMP_LEFT = ("a temporary file was left beside path after the ValueError: on an error remove "
              "the temporary file (tmp.unlink()), then raise")
_NEVER_REPLACED = ("path has no file but a temporary file beside it holds the ids: after the last "
                   "chunk, os.replace(tmp, path)")
_REFUSES_65535 = ("refused a chunk of valid ids: 65535 is the largest id uint16 holds; raise "
                  "ValueError only for an id below 0 or above 65535 (> 65535, not >= 65535)")
_DELETED = ("a refused call deleted the file already at path: on an error remove only your "
            "temporary file, and leave path as it was")
_NOT_VALUE_ERROR = "raise ValueError (the task asks for it) for an id outside 0..65535, not "
_COPY_LEFT = ("a temporary file was left beside path after a successful call: "
              "os.replace(tmp, path) moves it onto path (a copy leaves it behind)")


WRITE_TOKENS = [
    Mistake("int64 on disk", _write_int64, hint="the file holds the chunks' own dtype (int64: 8 "
            "bytes per id): convert each chunk with .astype(np.uint16) before writing, 2 bytes per id"),
    Mistake("uint32 on disk", _write_uint32, hint="the file holds 4 bytes per id: store uint16 "
            "(2 bytes), as train.bin does for GPT-2's 50,257 ids"),
    Mistake("reopens per chunk", _write_reopening, hint="only the last chunk is in the file: "
            "opening with 'wb' inside the loop empties the file each time; open it once, before the loop"),
    Mistake("appends", _write_appending, hint="the file already held ids from an earlier run and "
            "yours were added after them: open it with 'wb', which replaces the file, not 'ab'"),
    Mistake("negative ids", _write_only_max, hint="a negative id was written without an error: "
            "astype(np.uint16) turns -1 into 65535; raise ValueError for ids below 0 too"),
    Mistake("limit 2**16", _write_limit_2_16, hint="65536 was written without an error (it wraps to "
            "0): uint16 holds 0 .. 65535, so refuse ids > 65535 (>= 2**16), not > 2**16"),
    Mistake("refuses 65535", _write_refuses_65535, expect=_REFUSES_65535),
    Mistake("no range check", _write_no_range_check, hint="an id above 65535 was written without "
            "an error: astype(np.uint16) wraps it around (65553 becomes 17, a different token); "
            "raise ValueError when an id is above 65535"),
    Mistake("min of an empty chunk", _write_min_of_empty, hint="an empty chunk has no min() or "
            "max() (numpy raises ValueError): test the range only when chunk.size > 0"),
    Mistake("OverflowError", _write_overflow_error, hint=_NOT_VALUE_ERROR + "OverflowError"),
    Mistake("iterates twice", _write_twice_iterated, hint="chunks is an iterator (a generator, as "
            "encode_file gives): it can be gone through only once; count the ids in the same loop "
            "that writes them"),
    Mistake("counts chunks", _write_counts_chunks, hint="write_tokens returned the number of chunks; "
            "return the number of ids written (add up chunk.size)"),
    Mistake("all chunks read first", _write_all_at_once, hint="a chunk was not yet in the file "
            "beside path when the next one was read: write each chunk as it comes to the "
            "temporary file beside path, path.with_name(path.name + '.tmp') (not one elsewhere); "
            "reading them all first (a list, np.concatenate) holds the whole file in memory"),
    Mistake("checks all, then writes", _write_checks_first, hint="the file is empty and 0 ids "
            "were counted: a first loop that checks the chunks uses up the iterator, so the "
            "second loop gets nothing; check, write and count each chunk in one loop"),
    Mistake("counts the file's bytes", _write_counts_file_bytes, hint="write_tokens returned the "
            "bytes written (2 per id, f.tell()); return the number of ids written (add up "
            "chunk.size)"),
    Mistake("counts bytes", _write_counts_bytes, hint="write_tokens returned a number of bytes "
            "(chunk.nbytes); return the number of ids written (add up chunk.size)"),
    Mistake("no return", _write_no_return, expect="returned None"),
    Mistake("writes over path", _write_in_place, expect=_IN_PLACE),
    Mistake("replaces in finally", _write_replaces_in_finally, expect=_IN_PLACE),
    Mistake("temporary file left on error", _write_temp_left, expect=_TEMP_LEFT),
    Mistake("never replaces", _write_never_replaces, expect=_NEVER_REPLACED),
    Mistake("deletes path on error", _write_deletes_path, expect=_DELETED),
    Mistake("copies the temporary file", _write_copies_temp, expect=_COPY_LEFT),
]


def _write_buffer() -> int:
    """At most how many written bytes a file that ``open(path, "wb")`` gave may still hold in its
    buffer (Python's: the folder's block size, at least io.DEFAULT_BUFFER_SIZE), capped at 1 MiB."""
    try:
        block = os.stat(tempfile.gettempdir()).st_blksize
    except (OSError, AttributeError):
        block = 0
    return min(max(io.DEFAULT_BUFFER_SIZE, block, 8192), 1 << 20)


_BUFFER = _write_buffer()
_STREAMED = max(5000, _BUFFER)  # ids per chunk: 2 bytes each, so a chunk is twice any buffer


def _write_cases() -> list[Case]:
    rng = np.random.default_rng(27)
    ints64 = [rng.integers(0, 50_300, size=n).astype(np.int64) for n in (13, 1, 40, 7)]
    ints64[1][0] = 65_535                                   # the largest id uint16 holds
    ints32 = [rng.integers(0, 65_536, size=n).astype(np.int32) for n in (9, 0, 21)]
    stored = rng.integers(0, 65_536, size=300).astype(np.uint16)
    lists = [[0, 5, 65_535], [17], [2, 2, 2, 2]]
    return [
        Case("write_tokens(4 int64 chunks of 13, 1, 40 and 7 ids, path; the chunk of 1 is "
             "[65535], the largest id uint16 holds)", ints64, None, holds_65535=True),
        Case("write_tokens(3 int32 chunks of 9, 0 and 21 ids, path) over an older file of "
             "100 ids", ints32, 100),
        Case("write_tokens(chunks of 64 ids sliced from a uint16 memmap of 300 ids, path)",
             "memmap", stored),
        Case("write_tokens(3 chunks as Python lists, path)", lists, None, holds_65535=True),
        Case("write_tokens(no chunks at all, path) over an older file of 100 ids: an empty file, "
             "0 ids", [], 100),
        Case(f"write_tokens(3 int64 chunks of {_STREAMED:,} ids, path): each chunk in the file "
             "before the next is read", [rng.integers(0, 50_257, size=_STREAMED) for _ in range(3)],
             None, streamed=True),
        Case("write_tokens([int64 [3, 65553, 4]], path): 65553 does not fit in 16 bits",
             [np.array([3, 65_553, 4], dtype=np.int64)], None, refused=True),
        Case("write_tokens([int64 [1, 65536]], path): 65536 = 2**16 is one past uint16's largest",
             [np.array([1, 65_536], dtype=np.int64)], None, refused=True),
        Case("write_tokens([int64 [8, -1, 9]], path): -1 is no token id",
             [np.array([8, -1, 9], dtype=np.int64)], None, refused=True),
        Case("write_tokens([int64 [0..4], [3, 65553, 4]], path) over an older file of 100 ids: the "
             "second chunk is refused",
             [np.arange(5, dtype=np.int64), np.array([3, 65_553, 4], dtype=np.int64)], 100,
             refused=True),
    ]


def _write_run(impl: Any, case: Case) -> Any:
    """Run ``impl`` on a one-pass generator into a fresh folder; observe its count and file.

    A refused call (the case's ``refused``) must leave an older file at path byte-identical, and
    no call may leave a temporary file behind; both are named here, as they show in no count.
    """
    (parts, extra), kwargs = case.fresh()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tokens.bin"
        if isinstance(extra, int):                          # an older, longer file at path
            np.full(extra, 7, dtype=np.uint16).tofile(path)
        before = path.read_bytes() if path.is_file() else None
        if isinstance(parts, str):                          # slices of a uint16 memmap
            stored = _uint16_file(extra, tmp, "stored.bin")
            parts = [stored[i:i + 64] for i in range(0, len(stored), 64)]

        on_disk: list[bool] = []     # before each later chunk: are the earlier ones written?

        def chunks():
            for i, part in enumerate(parts):
                if i and kwargs.get("streamed"):
                    size = sum(p.stat().st_size for p in Path(tmp).iterdir() if p.is_file()
                               and p.name != "stored.bin")
                    # a writer's buffer (f.write of each id, say) may hold up to _BUFFER bytes
                    on_disk.append(size >= 2 * sum(len(q) for q in parts[:i]) - _BUFFER)
                yield part

        def left_over() -> list[str]:
            mine = ("tokens.bin", "stored.bin")
            return sorted(p.name for p in Path(tmp).iterdir() if p.name not in mine)

        try:
            count = impl(chunks(), path)
        except ValueError as exc:
            if kwargs.get("refused"):
                where = f"on {case.label}"
                if before is not None and not path.is_file():
                    raise CheckFailed(f"{_DELETED} ({where})") from None
                if before is not None and path.read_bytes() != before:
                    raise CheckFailed(f"{_IN_PLACE} ({where})") from None
                if left_over():
                    raise CheckFailed(f"{_TEMP_LEFT} (left: {left_over()[0]}; {where})") from None
            elif kwargs.get("holds_65535"):
                raise CheckFailed(f"{_REFUSES_65535} (on {case.label})") from None
            return Raised(exc)
        except (NotImplementedError, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - a refused chunk that raised something else
            if not kwargs.get("refused"):
                raise
            raise CheckFailed(f"{_NOT_VALUE_ERROR}{type(exc).__name__} (yours said: {exc}; on "
                              f"{case.label})") from None
        if left_over():
            why = _NEVER_REPLACED if not path.is_file() else _COPY_LEFT
            raise CheckFailed(f"{why} (left: {left_over()[0]}; on {case.label})")
        if isinstance(count, (np.integer, float)) and float(count).is_integer():
            count = int(count)
        data = np.fromfile(path, dtype=np.uint8) if path.is_file() else None
        obs = {"returned": count, "bytes in the file": None if data is None else int(data.size),
               "ids in the file (read as uint16)":
                   None if data is None or data.size % 2 else data.view(np.uint16).copy()}
        if kwargs.get("streamed"):
            obs["each chunk written before the next is read"] = all(on_disk)
        return obs


def _write_read(obs: Any, case: Case) -> Any:
    if isinstance(obs, dict):
        if obs["bytes in the file"] is None:
            raise CheckFailed("no file was written at path: write each chunk.astype(np.uint16) "
                              "to a temporary file beside path, then os.replace(tmp, path)")
        if obs["returned"] is None:
            raise CheckFailed("write_tokens returned None; did you forget the `return`? It should "
                              "return the number of ids written")
        obs = dict(obs, returned=as_int(obs["returned"], "write_tokens(chunks, path)"))
    return obs


@check("write_tokens", mistakes=WRITE_TOKENS)
def check_write_tokens(write_tokens: Callable[..., Any]) -> None:
    """Exercise 1: stream chunks of ids into a raw uint16 file, refusing ids outside 16 bits."""
    compare(write_tokens, reference_write_tokens, _write_cases(), name="write_tokens",
            run=_write_run, mistakes=WRITE_TOKENS, read=_write_read)


# ---- exercise 2: story_lengths ---------------------------------------------------------------


def _lengths_with_eot(ids, eot):
    ends = np.flatnonzero(np.asarray(ids) == eot)
    starts = np.concatenate([[0], ends[:-1] + 1])
    return [int(e - s) + 1 for s, e in zip(starts, ends)]


def _lengths_with_tail(ids, eot):
    out, n = [], 0
    for t in np.asarray(ids).tolist():
        if t == eot:
            out.append(n)
            n = 0
        else:
            n += 1
    return out + [n]


def _lengths_diff(ids, eot):                 # gaps between markers: the first story is lost
    return (np.diff(np.flatnonzero(np.asarray(ids) == eot)) - 1).tolist()


def _lengths_drop_empty(ids, eot):
    ends = np.flatnonzero(np.asarray(ids) == eot)
    starts = np.concatenate([[0], ends[:-1] + 1])
    return [int(e - s) for s, e in zip(starts, ends) if e > s]


def _lengths_gpt2_eot(ids, eot):             # GPT-2's <|endoftext|> written in
    ends = np.flatnonzero(np.asarray(ids) == 50256)
    starts = np.concatenate([[0], ends[:-1] + 1])
    return [int(e - s) for s, e in zip(starts, ends)]


def _lengths_first_short(ids, eot):         # np.diff(pos, prepend=0) - 1: one short at the start
    pos = np.flatnonzero(np.asarray(ids) == eot)
    return (np.diff(pos, prepend=0) - 1).tolist()


def _lengths_split(ids, eot):                # np.split keeps the marker at each piece's end
    ends = np.flatnonzero(np.asarray(ids) == eot)
    return [len(p) for p in np.split(np.asarray(ids), ends + 1)[:-1]]


def _lengths_list_compared(ids, eot):        # list == eot is one False, not a mask
    ends = np.flatnonzero(ids == eot)
    starts = np.concatenate([[0], ends[:-1] + 1])
    return [int(e - s) for s, e in zip(starts, ends)]


def _lengths_later_count_eot(ids, eot):     # np.diff(pos, prepend=0): from one marker to the next
    return np.diff(np.flatnonzero(np.asarray(ids) == eot), prepend=0).tolist()


def _lengths_split_tail(ids, eot):           # pieces ending with eot, less 1, and the tail's piece
    ids = np.asarray(ids)
    return [len(p) - 1 for p in np.split(ids, np.flatnonzero(ids == eot) + 1)]


STORY_LENGTHS = [
    Mistake("a list compared with ==", _lengths_list_compared,
            hint="ids may be a Python list, and [0, 4, 4] == 0 is one False, not a mask: turn it "
                 "into an array first, np.flatnonzero(np.asarray(ids) == eot)"),
    Mistake("counts the eot", _lengths_with_eot, hint="each length counts the end-of-text token "
            "too: a story of 3 tokens and its eot should give 3, not 4"),
    Mistake("counts the tail", _lengths_with_tail, hint="the tokens after the last eot were counted "
            "as a story: they are an unfinished one; count only stories that end with eot"),
    Mistake("first story lost", _lengths_diff, hint="the first story is missing: it starts at "
            "position 0, before any eot"),
    Mistake("drops empty stories", _lengths_drop_empty, hint="an empty story (two eot in a row) "
            "was dropped: report it as 0"),
    Mistake("eot 50256 written in", _lengths_gpt2_eot, hint="use the argument eot, not GPT-2's "
            "50256: the check passes another end-of-text id"),
    Mistake("first story one short", _lengths_first_short, hint="the first story is one token "
            "short: it starts at position 0, so its length is the first eot's position (as if a "
            "marker stood at -1: np.diff(pos, prepend=-1) - 1)"),
    Mistake("later stories count an eot", _lengths_later_count_eot, hint="each story after the "
            "first counts the eot before it: a story starts just after its marker (pos + 1), only "
            "the first one at 0"),
    Mistake("np.split keeps the tail", _lengths_split_tail, hint="the tokens after the last eot "
            "were counted as a story (np.split's last piece): they are an unfinished one; count "
            "only stories that end with eot"),
    Mistake("np.split pieces", _lengths_split, hint="each length counts the end-of-text token "
            "too: a story of 3 tokens and its eot should give 3, not 4"),
]


def _lengths_cases() -> list[Case]:
    rng = np.random.default_rng(2027)
    eot = 41_000                                            # not GPT-2's 50256
    stories = [[5, 6, 7], [8], [], [9, 10, 11, 12, 13]]
    ids: list[int] = []
    for s in stories:
        ids += s + [eot]
    small = np.array(ids + [14, 15], dtype=np.uint16)       # an unfinished story at the end
    big: list[int] = []
    for n in rng.integers(0, 30, size=25):
        big += rng.integers(0, 60_000, size=int(n)).tolist() + [65_535]
    big += [3, 4, 5]                                        # an unfinished story
    return [
        Case("story_lengths(uint16 ids of 14 tokens, eot=41000): stories of 3, 1, 0 and 5 tokens "
             "and an unfinished one", small, eot),
        Case("story_lengths(a uint16 memmap of 25 stories with eot=65535, eot=65535)",
             "memmap", np.array(big, dtype=np.uint16), 65_535),
        Case("story_lengths([0, 4, 4, 0, 0, 4], eot=0): starts with an eot", [0, 4, 4, 0, 0, 4], 0),
        Case("story_lengths(int64 ids with no eot, eot=9)", np.array([1, 2, 3], dtype=np.int64), 9),
        Case("story_lengths(uint16 [eot], eot=50256): one empty story",
             np.array([50_256], dtype=np.uint16), 50_256),
    ]


def _lengths_run(impl: Any, case: Case) -> Any:
    args, _ = case.fresh()
    if isinstance(args[0], str):                            # a memmap read back from a file
        with tempfile.TemporaryDirectory() as tmp:
            ids = _uint16_file(args[1], tmp)
            out = impl(ids, args[2])
            return np.array(out).tolist() if isinstance(out, np.ndarray) else out
    return impl(*args)


@check("story_lengths", mistakes=STORY_LENGTHS)
def check_story_lengths(story_lengths: Callable[..., Any]) -> None:
    """Exercise 2: tokens per story, from the end-of-text positions."""
    compare(story_lengths, reference_story_lengths, _lengths_cases(), name="story_lengths",
            run=_lengths_run, mistakes=STORY_LENGTHS,
            read=lambda v, case: as_int_list(v, "story_lengths(ids, eot)"))


# ---- exercise 3: compact_vocab ---------------------------------------------------------------


def _compact_first_seen(ids):
    order = list(dict.fromkeys(np.asarray(ids).tolist()))
    index = {t: i for i, t in enumerate(order)}
    return np.array([index[t] for t in np.asarray(ids).tolist()], dtype=np.int64), np.array(order)


def _compact_uint16(ids):                    # keeps the input's dtype (uint16 for train.bin)
    used = np.unique(ids)
    return np.searchsorted(used, ids).astype(np.asarray(ids).dtype), used


def _compact_int32(ids):
    used = np.unique(np.asarray(ids)).astype(np.int64)
    return np.searchsorted(used, np.asarray(ids)).astype(np.int32), used


def _compact_swapped(ids):
    new, used = reference_compact_vocab(ids)
    return used, new


def _compact_positions(ids):                 # new_ids numbered by position, not by id
    return np.arange(len(ids), dtype=np.int64), np.unique(np.asarray(ids)).astype(np.int64)


def _compact_no_unique(ids):                 # sorted, but every occurrence kept
    used = np.sort(np.asarray(ids)).astype(np.int64)
    return np.searchsorted(used, np.asarray(ids).astype(np.int64)).astype(np.int64), used


def _compact_from_1(ids):                   # side="right" (or + 1): every new id one too large
    used = np.unique(np.asarray(ids))
    return np.searchsorted(used, np.asarray(ids), side="right").astype(np.int64), used


def _compact_from_set(ids):  # list(set(...)): the distinct ids in the set's own order
    used = list(set(np.asarray(ids).tolist()))
    new_ids = np.array([used.index(i) for i in np.asarray(ids).tolist()], dtype=np.int64)
    return new_ids, np.array(used, dtype=np.int64)


def _compact_sorted_arguments(ids):          # np.searchsorted(ids, used): the arguments swapped
    used = np.unique(np.asarray(ids)).astype(np.int64)
    return np.searchsorted(np.asarray(ids), used).astype(np.int64), used


COMPACT_VOCAB = [
    Mistake("first-seen order", _compact_first_seen, hint="used should be sorted: np.unique sorts, "
            "and np.searchsorted needs the order"),
    Mistake("uint16 new_ids", _compact_uint16, hint="new_ids should be int64 (nn.Embedding and "
            "cross_entropy want torch.long): add .astype(np.int64)"),
    Mistake("int32 new_ids", _compact_int32, hint="new_ids should be int64 (nn.Embedding and "
            "cross_entropy want torch.long): add .astype(np.int64)"),
    Mistake("swapped", _compact_swapped, hint="new_ids and used are swapped: return "
            "(new_ids, used)"),
    Mistake("positions", _compact_positions, hint="new_ids should be each id's position in used "
            "(np.searchsorted(used, ids)), so that used[new_ids] gives back ids"),
    Mistake("not unique", _compact_no_unique, hint="used should hold each distinct id once: "
            "use np.unique(ids)"),
    Mistake("only used", lambda ids: np.unique(ids), expect="should return a pair"),
    Mistake("one too large", _compact_from_1, hint="every new id is one too large: the smallest id "
            "should become 0, its position in used (np.searchsorted(used, ids) with the default "
            "side='left', and no + 1)"),
    Mistake("searchsorted(ids, used)", _compact_sorted_arguments, hint="new_ids needs one entry "
            "per id of ids: np.searchsorted(used, ids), the sorted array first"),
    Mistake("unsorted set", _compact_from_set,
            hint="used must be sorted: a set has no order you can rely on, so used and new_ids "
                 "come out shuffled; np.unique(ids) gives the distinct ids sorted"),
]


def _compact_cases() -> list[Case]:
    rng = np.random.default_rng(327)
    ids = np.array([50_256, 12, 900, 12, 33_001, 900, 7, 50_256, 12], dtype=np.uint16)
    wide = rng.choice(np.array([0, 3, 999, 40_000, 65_535], dtype=np.uint16), size=200)
    return [
        Case("compact_vocab(uint16 [50256, 12, 900, 12, 33001, 900, 7, 50256, 12])", ids),
        Case("compact_vocab(a uint16 memmap of 200 ids from 5 distinct ones, 0 and 65535 among "
             "them)", "memmap", wide),
        Case("compact_vocab(int64 [4, 4, 4]): one distinct id", np.array([4, 4, 4], dtype=np.int64)),
        Case("compact_vocab(int32 [2, 0, 1]): already compact", np.array([2, 0, 1], dtype=np.int32)),
    ]


def _compact_run(impl: Any, case: Case) -> Any:
    args, _ = case.fresh()
    if isinstance(args[0], str):
        with tempfile.TemporaryDirectory() as tmp:
            out = impl(_uint16_file(args[1], tmp))
            return tuple(np.array(v) for v in out) if isinstance(out, tuple) else out
    return impl(*args)


def _compact_read(value: Any, case: Case) -> Any:
    new, used = as_pair(value, "compact_vocab(ids)", ("new_ids", "used"))
    ids = case.args[1] if isinstance(case.args[0], str) else case.args[0]
    if np.size(new) != len(ids) and np.size(used) == len(ids):
        raise CheckFailed("new_ids and used are swapped: return (new_ids, used)")
    if isinstance(used, (list, tuple)):
        raise CheckFailed(f"used should be a numpy array (np.unique(ids)), got {kind_of(used)}: "
                          "the lesson decodes with used[new_ids]")
    if not isinstance(new, np.ndarray):
        raise CheckFailed(f"new_ids should be a numpy array of dtype int64, got {kind_of(new)}")
    used = np.asarray(used)
    if used.dtype.kind not in "iu":
        raise CheckFailed(f"used should hold the (integer) ids, got {kind_of(used)} of dtype "
                          f"{used.dtype}")
    return {"new_ids": np.array(new), "used (as int64)": used.astype(np.int64)}


@check("compact_vocab", mistakes=COMPACT_VOCAB)
def check_compact_vocab(compact_vocab: Callable[..., Any]) -> None:
    """Exercise 3: renumber the ids that occur as 0 .. n - 1 (int64), sorted distinct ids in used."""
    compare(compact_vocab, reference_compact_vocab, _compact_cases(), name="compact_vocab(ids)",
            run=_compact_run, mistakes=COMPACT_VOCAB, read=_compact_read)


# ---- exercise 4: t4_hours --------------------------------------------------------------------


def _hours(flops_factor=6.0, divide=3600.0, peak=None, mfu_power=-1, percent=1.0):
    def t4_hours(n_params, n_tokens, mfu, peak_flops=65e12):
        p = peak_flops if peak is None else peak
        return flops_factor * n_params * n_tokens * (mfu * percent) ** mfu_power / p / divide
    return t4_hours


def _wrong_default(n_params, n_tokens, mfu, peak_flops=312e12):   # the A100's peak as default
    return 6 * n_params * n_tokens / (mfu * peak_flops) / 3600


_ROUNDED_DOWN = ("rounded down with // (to whole seconds or whole hours); divide with / and "
                 "return the float number of hours")

T4_HOURS = [
    Mistake("/ mfu * peak_flops", lambda n_params, n_tokens, mfu, peak_flops=65e12:
            6 * n_params * n_tokens / mfu * peak_flops / 3600,
            hint="x / mfu * peak_flops multiplies by peak_flops: put the achieved rate in "
                 "parentheses, 6 * n_params * n_tokens / (mfu * peak_flops) / 3600"),
    Mistake("// 3600", lambda n_params, n_tokens, mfu, peak_flops=65e12:
            6 * n_params * n_tokens / (mfu * peak_flops) // 3600, hint=_ROUNDED_DOWN),
    Mistake("// (mfu * peak_flops)", lambda n_params, n_tokens, mfu, peak_flops=65e12:
            6 * n_params * n_tokens // (mfu * peak_flops) / 3600, hint=_ROUNDED_DOWN),
    Mistake("seconds", _hours(divide=1.0), hint="the time is in seconds: divide by 3600 for hours"),
    Mistake("minutes", _hours(divide=60.0), hint="the time is in minutes: divide by 60 once more "
            "for hours"),
    Mistake("2ND", _hours(flops_factor=2.0), hint="that counts 2ND FLOPs (the forward pass only): "
            "training costs 6ND, forward and backward"),
    Mistake("mfu multiplies", _hours(mfu_power=1), hint="mfu should divide the peak (the GPU "
            "delivers mfu * peak_flops per second), not multiply the time"),
    Mistake("peak written in", _hours(peak=65e12), hint="the peak FLOP/s was written in; use the "
            "argument peak_flops (the check passes another GPU's)"),
    Mistake("percentage", _hours(percent=100.0), hint="mfu is a fraction (0.25), not a percentage"),
    Mistake("wrong default", _wrong_default, hint="without peak_flops the default should be the "
            "T4's 65e12 FLOP/s"),
    Mistake("no return", lambda n_params, n_tokens, mfu, peak_flops=65e12: None,
            expect="returned None"),
    Mistake("mfu left out", _hours(mfu_power=0), hint="mfu was left out: the GPU delivers only "
            "mfu * peak_flops operations per second; divide by (mfu * peak_flops)"),
    Mistake("mfu / 100", _hours(percent=0.01), hint="mfu is already a fraction (0.25 for 25%): "
            "do not divide it by 100"),
    Mistake("no 6", lambda n_params, n_tokens, mfu, peak_flops=65e12:
            n_params * n_tokens / (mfu * peak_flops) / 3600,
            hint="the 6 is left out: training costs about 6 * n_params * n_tokens operations "
                 "(2 forward, 4 backward per parameter and token)"),
]


def _hours_cases() -> list[Case]:
    return [
        Case("t4_hours(1.25e7, 2e8, mfu=0.25, peak_flops=4e13)", 12.5e6, 2.0e8, mfu=0.25,
             peak_flops=40e12),
        Case("t4_hours(3e9, 6e10, 0.4, 3.12e14)", 3.0e9, 6.0e10, 0.4, 312e12),
        Case("t4_hours(3e7, 8.2e7, mfu=0.3): the default peak_flops", 30e6, 82e6, mfu=0.3),
        Case("t4_hours(1000, 1, mfu=1.0): a tiny run", 1000, 1, mfu=1.0),
    ]


@check("t4_hours", mistakes=T4_HOURS)
def check_t4_hours(t4_hours: Callable[..., Any]) -> None:
    """Exercise 4: training time from 6ND and an assumed MFU, with and without peak_flops."""
    compare(t4_hours, reference_t4_hours, _hours_cases(), name="t4_hours(...)", mistakes=T4_HOURS,
            read=lambda v, case: as_float(v, "t4_hours(...)"), rtol=1e-6, atol=0.0)
