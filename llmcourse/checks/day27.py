"""Checks for day 27, "TinyStories", and the reference versions the lesson runs on.

Each ``check_*`` function runs the learner's code on small cases of its own (sizes and token
ids unlike the notebook's), prints one line - a pass, a specific hint, or "not done yet" - and
never raises.

Example::

    >>> from llmcourse.checks import day27
    >>> ok = day27.check_story_lengths(day27.reference_story_lengths)
    ✅ story_lengths: passed
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from llmcourse.checks._core import CheckFailed, as_int_list, as_pair, call, check

__all__ = [
    "check_write_tokens",
    "check_story_lengths",
    "check_compact_vocab",
    "check_t4_hours",
    "reference_write_tokens",
    "reference_story_lengths",
    "reference_compact_vocab",
    "reference_t4_hours",
]

_UINT16_MAX = np.iinfo(np.uint16).max


# ---- reference implementations -------------------------------------------------------------


def reference_write_tokens(chunks: Iterable[Any], path: str | os.PathLike[str]) -> int:
    """Append each chunk of token ids to ``path`` as raw uint16, in order; return the count.

    Memory stays bounded by one chunk. Ids that do not fit in 16 bits raise ``ValueError``
    (``astype`` would silently wrap them around).
    """
    total = 0
    with open(path, "wb") as f:
        for chunk in chunks:
            arr = np.asarray(chunk)
            if arr.size and (arr.min() < 0 or arr.max() > _UINT16_MAX):
                raise ValueError(f"token id {int(arr.max())} does not fit in uint16 "
                                 f"(0..{_UINT16_MAX}); store this vocabulary as uint32")
            arr.astype(np.uint16).tofile(f)
            total += arr.size
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


# ---- checks --------------------------------------------------------------------------------


def _chunks(parts: list[np.ndarray], seen: list[int]) -> Iterable[np.ndarray]:
    """A one-pass generator, as ``encode_file`` gives; counts how many chunks were taken."""
    for part in parts:
        seen[0] += 1
        yield part


@check("write_tokens")
def check_write_tokens(write_tokens: Callable[..., Any]) -> None:
    """Exercise 1: stream chunks of ids into a raw uint16 file."""
    rng = np.random.default_rng(27)
    parts = [rng.integers(0, 50_300, size=n).astype(np.int64) for n in (13, 1, 40, 7)]
    parts[1][0] = 65_535                                    # the largest id uint16 holds
    expected = np.concatenate(parts)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tokens.bin"
        seen = [0]
        shown = "write_tokens(chunks, path) with 4 int64 chunks of 13, 1, 40 and 7 ids"
        count = call(write_tokens, _chunks(parts, seen), path, shown=shown)
        if not path.is_file():
            raise CheckFailed("no file was written at path: open(path, 'wb') once, then "
                              "chunk.astype(np.uint16).tofile(f) for each chunk")
        size = path.stat().st_size
        if size == 8 * len(expected):
            raise CheckFailed("the file holds 8 bytes per id (int64): convert each chunk with "
                              ".astype(np.uint16) before writing, 2 bytes per id")
        if size == 4 * len(expected):
            raise CheckFailed("the file holds 4 bytes per id: store uint16 (2 bytes), as "
                              "train.bin does for GPT-2's 50,257 ids")
        got = np.fromfile(path, dtype=np.uint16)
        if len(got) == len(parts[-1]) and np.array_equal(got, parts[-1]):
            raise CheckFailed("only the last chunk is in the file: opening with 'wb' inside the "
                              "loop empties the file each time; open it once, before the loop")
        if len(got) != len(expected) or not np.array_equal(got, expected.astype(np.uint16)):
            raise CheckFailed(f"the file holds {len(got)} uint16 ids, expected the {len(expected)} "
                              "ids of all chunks, in order")
        if count is None:
            raise CheckFailed("write_tokens returned None: return the number of ids written")
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)):
            raise CheckFailed(f"write_tokens should return an int (the number of ids), got "
                              f"{type(count).__name__}")
        if int(count) != len(expected):
            raise CheckFailed(f"write_tokens returned {int(count)}, but it wrote {len(expected)} "
                              "ids: add up the sizes of all chunks")
        # An id beyond 16 bits must be refused, not wrapped around.
        bad = [np.array([3, 65_536 + 17, 4], dtype=np.int64)]
        try:
            write_tokens(iter(bad), Path(tmp) / "bad.bin")
        except ValueError:
            pass
        except NotImplementedError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise CheckFailed(f"an id of 65553 should raise ValueError, got "
                              f"{type(exc).__name__}: {exc}") from None
        else:
            raise CheckFailed("an id of 65553 was written without an error: astype(np.uint16) "
                              "wraps it around to 17, a different token; raise ValueError when "
                              "an id is above 65535")


@check("story_lengths")
def check_story_lengths(story_lengths: Callable[..., Any]) -> None:
    """Exercise 2: tokens per story, from the end-of-text positions."""
    eot = 41_000                                           # not GPT-2's 50256
    stories = [[5, 6, 7], [8], [], [9, 10, 11, 12, 13]]
    ids: list[int] = []
    for s in stories:
        ids += s + [eot]
    tail = [14, 15]                                         # an unfinished story
    arr = np.array(ids + tail, dtype=np.uint16)
    shown = f"story_lengths(ids, eot={eot}) with ids a uint16 array of {len(arr)} ids"
    got = as_int_list(call(story_lengths, arr, eot, shown=shown), "story_lengths")
    expected = [len(s) for s in stories]
    if got == [n + 1 for n in expected]:
        raise CheckFailed("each length counts the end-of-text token too: a story of 3 tokens "
                          "and its eot should give 3, not 4")
    if got == expected + [len(tail)]:
        raise CheckFailed("the tokens after the last eot were counted as a story: they are an "
                          "unfinished one; count only stories that end with eot")
    if got == expected[1:] or got == [n + 1 for n in expected[1:]]:
        raise CheckFailed("the first story is missing: it starts at position 0, before any eot")
    if got == [n for n in expected if n]:
        raise CheckFailed("the empty story (two eot in a row) was dropped: report it as 0")
    if got != expected:
        raise CheckFailed(f"for stories of {expected} tokens (each followed by eot) "
                          f"story_lengths returned {got}")
    got = as_int_list(call(story_lengths, np.array([eot], dtype=np.uint16), eot,
                           shown="story_lengths([eot], eot)"), "story_lengths")
    if got != [0]:
        raise CheckFailed(f"ids holding just one eot are one empty story, [0]; got {got}")


@check("compact_vocab")
def check_compact_vocab(compact_vocab: Callable[..., Any]) -> None:
    """Exercise 3: renumber the ids that occur as 0 .. n - 1."""
    ids = np.array([50_256, 12, 900, 12, 33_001, 900, 7, 50_256, 12], dtype=np.uint16)
    shown = "compact_vocab(ids) with ids = uint16 [50256, 12, 900, 12, 33001, 900, 7, 50256, 12]"
    new, used = as_pair(call(compact_vocab, ids, shown=shown), "compact_vocab",
                        ("new_ids", "used"))
    new, used = np.asarray(new), np.asarray(used)
    want_used = np.array([7, 12, 900, 33_001, 50_256])
    if used.shape != want_used.shape or set(used.tolist()) != set(want_used.tolist()):
        raise CheckFailed(f"used should hold each distinct id once ({want_used.tolist()}), got "
                          f"{used.tolist()}: use np.unique(ids)")
    if not np.array_equal(used, want_used):
        raise CheckFailed(f"used should be sorted ({want_used.tolist()}), got {used.tolist()}: "
                          "np.unique sorts, and np.searchsorted needs the order")
    if new.shape != ids.shape:
        raise CheckFailed(f"new_ids should have one entry per id, shape {ids.shape}, got "
                          f"{new.shape}")
    if new.dtype != np.int64:
        raise CheckFailed(f"new_ids should be int64 (nn.Embedding and cross_entropy want "
                          f"torch.long), got {new.dtype}: add .astype(np.int64)")
    if not np.array_equal(used[new], ids):
        raise CheckFailed(f"used[new_ids] should give back ids, got {used[new].tolist()}: "
                          "new_ids is each id's position in used (np.searchsorted(used, ids))")


@check("t4_hours")
def check_t4_hours(t4_hours: Callable[..., Any]) -> None:
    """Exercise 4: training time from 6ND and an assumed MFU."""
    n, d, mfu, peak = 12.5e6, 2.0e8, 0.25, 40e12            # not the lesson's numbers
    shown = f"t4_hours({n:g}, {d:g}, mfu={mfu}, peak_flops={peak:g})"
    got = call(t4_hours, n, d, mfu=mfu, peak_flops=peak, shown=shown)
    if got is None:
        raise CheckFailed("t4_hours returned None: return the number of hours")
    try:
        got = float(got)
    except (TypeError, ValueError):
        raise CheckFailed(f"t4_hours should return a number of hours, got "
                          f"{type(got).__name__}") from None
    right = reference_t4_hours(n, d, mfu, peak)
    wrong = {
        "the time is in seconds: divide by 3600 for hours": right * 3600,
        "the time is in minutes: divide by 60 once more for hours": right * 60,
        "that counts 2ND FLOPs (the forward pass only): training costs 6ND, forward and "
        "backward": right / 3,
        "mfu should divide the peak (the GPU delivers mfu * peak_flops per second), not "
        "multiply the time": right * mfu * mfu,
        "the peak FLOP/s was not used; the argument peak_flops is what the GPU could do at best":
            6 * n * d / mfu / 3600,
        "mfu is a fraction (0.25), not a percentage": right / 100,
    }
    for hint, value in wrong.items():
        if math.isclose(got, value, rel_tol=1e-6):
            raise CheckFailed(hint)
    if not math.isclose(got, right, rel_tol=1e-6):
        raise CheckFailed(f"{shown} should be {right:.4f} hours (6 N D / (mfu * peak) / 3600), "
                          f"got {got:.4g}")
    default = call(t4_hours, n, d, mfu=mfu, shown=f"t4_hours({n:g}, {d:g}, mfu={mfu})")
    if default is None or not math.isclose(float(default), reference_t4_hours(n, d, mfu),
                                           rel_tol=1e-6):
        raise CheckFailed("without peak_flops the default should be the T4's 65e12 FLOP/s")
