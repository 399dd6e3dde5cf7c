"""Checks for day 04, "Datasets and batches".

Each ``check_*`` function runs the learner's code (or inspects the values they built), prints
one line - a pass, a specific hint, or "not done yet" - and returns ``True`` on a pass. None of
them raises, so a check cell never stops a notebook.

Every exercise has a table of typical mistakes (``SHIFT``, ``GET_BATCH``, ``WINDOW_DATASET``,
``WRITE_TOKENS``); the hints come from it and the tests run every entry. ``get_batch`` and
``WindowDataset`` are run on the dtypes real token data have (``uint16`` from a memory-mapped
token file, ``int32``, ``int64``), on several sizes (none equal to the notebook's
``block_size = 8``) and on edge cases (a single possible offset, no window at all);
``write_tokens`` on the ``uint16``/``uint32`` boundary, empty and negative ids, and writing
twice to the same file.

Example (in the lesson)::

    >>> import torch
    >>> from llmcourse.checks import day04
    >>> chunk = torch.arange(9)
    >>> ok = day04.check_shift(chunk[:-1], chunk[1:], chunk)
    ✅ shift by one: passed
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from llmcourse.checks._core import PartNotDone as _PartNotDone  # shared in _core
from llmcourse.checks._core import (CheckFailed, EarlierNotDone, Mistake, as_list, as_pair, as_tensor, assert_equal, check,
                                    kind_of, require)

__all__ = ["check_shift", "check_get_batch", "check_window_dataset", "check_write_tokens",
           "SHIFT", "GET_BATCH", "WINDOW_DATASET", "WRITE_TOKENS"]

# The notebook's global context length; a wrong answer of the tables reads it instead of its argument.
block_size = 8


# ---- exercise 1: shift by one ----------------------------------------------------------------
_CHUNK = torch.arange(10, 19)
_TEXT_CHUNK = torch.tensor([18, 47, 56, 57, 58, 1, 15, 47, 58])  # "First Cit": ids that are not consecutive
SHIFT = [
    Mistake("swapped", None, args=(_CHUNK[1:], _CHUNK[:-1], _CHUNK),
            hint="x and y are swapped: x is the input (the first T tokens), y the targets (the same "
                 "tokens one step later)"),
    Mistake("equal", None, args=(_CHUNK[:-1], _CHUNK[:-1], _CHUNK),
            hint="x and y are equal: y must be x shifted by one token, y[t] == chunk[t + 1]"),
    Mistake("shift by two", None, args=(_CHUNK[:-2], _CHUNK[2:], _CHUNK),
            hint="x and y should each have T = len(chunk) - 1 tokens: drop the last token for x, the "
                 "first for y"),
    Mistake("x is the whole chunk", None, args=(_CHUNK, _CHUNK[1:], _CHUNK),
            hint="x and y should each have T = len(chunk) - 1 tokens: drop the last token for x, the "
                 "first for y"),
    Mistake("y only the last token", None, args=(_CHUNK[:-1], _CHUNK[-1], _CHUNK),
            hint="x and y should each have T = len(chunk) - 1 tokens: drop the last token for x, the "
                 "first for y"),
    Mistake("y = x + 1", None, args=(_TEXT_CHUNK[:-1], _TEXT_CHUNK[:-1] + 1, _TEXT_CHUNK),
            hint="y = x + 1 adds one to each id; the target is the next token of the text, not the "
                 "next id: y = chunk[1:]"),
    Mistake("torch.roll", None, args=(_CHUNK[:-1], torch.roll(_CHUNK[:-1], -1), _CHUNK),
            hint="torch.roll wraps around, so the last target is x[0]; it must be the token after the "
                 "window, chunk[-1]: y = chunk[1:]"),
    Mistake("lists", None, args=(_CHUNK[:-1].tolist(), _CHUNK[1:].tolist(), _CHUNK),
            expect="x should be a tensor of chunk's dtype"),
    Mistake("float ids", None, args=(_CHUNK[:-1].float(), _CHUNK[1:].float(), _CHUNK),
            expect="x should be a tensor of chunk's dtype"),
]
_S_SWAP, _S_EQUAL, _S_LEN, _, _, _S_PLUS1, _S_ROLL, _, _ = SHIFT


@check("shift by one", mistakes=SHIFT)
def check_shift(x: Any, y: Any, chunk: Any) -> None:
    """Exercise 1: ``x = chunk[:-1]`` and ``y = chunk[1:]``."""
    require(x, "x")
    require(y, "y")
    xs, ys, cs = as_list(x, "x"), as_list(y, "y"), as_list(chunk, "chunk")
    n = len(cs) - 1
    if xs == cs[1:] and ys == cs[:-1]:
        raise CheckFailed(_S_SWAP.hint)
    if xs == ys:
        raise CheckFailed(_S_EQUAL.hint)
    if len(xs) != n or len(ys) != n:
        raise CheckFailed(f"{_S_LEN.hint} (T = {n}, got {len(xs)} and {len(ys)})")
    if isinstance(chunk, torch.Tensor):
        for name, v in (("x", x), ("y", y)):
            if not isinstance(v, torch.Tensor) or v.dtype != chunk.dtype:
                raise CheckFailed(f"{name} should be a tensor of chunk's dtype ({_dtype(chunk)}), got "
                                  f"{kind_of(v) if not isinstance(v, torch.Tensor) else _dtype(v)}: "
                                  "slice chunk and keep the slices as they are (no .tolist(), no .float())")
    assert_equal(xs, cs[:-1], "x (the first T tokens of chunk)")
    if ys != cs[1:] and ys == [v + 1 for v in xs]:
        raise CheckFailed(_S_PLUS1.hint)
    if ys != cs[1:] and n > 1 and ys == xs[1:] + xs[:1]:
        raise CheckFailed(_S_ROLL.hint)
    assert_equal(ys, cs[1:], "y (chunk shifted by one)")


# ---- exercise 2: get_batch -------------------------------------------------------------------
def _get_batch(data, batch_size, block_size, generator=None):  # the lesson's answer (used by mistakes)
    ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    x = torch.stack([data[i: i + block_size] for i in ix])
    y = torch.stack([data[i + 1: i + 1 + block_size] for i in ix])
    return x, y


def _gb_no_long(data, batch_size, block_size, generator=None):
    return _get_batch(data, batch_size, block_size, generator)


def _gb_too_many(data, batch_size, block_size, generator=None):
    ix = torch.randint(len(data) - block_size + 1, (batch_size,), generator=generator)
    x = torch.stack([data[i: i + block_size] for i in ix])
    y = torch.stack([data[i + 1: i + 1 + block_size] for i in ix])
    return x.long(), y.long()


def _gb_too_few(data, batch_size, block_size, generator=None):
    ix = torch.randint(len(data) - block_size - 1, (batch_size,), generator=generator)
    x = torch.stack([data[i: i + block_size] for i in ix])
    y = torch.stack([data[i + 1: i + 1 + block_size] for i in ix])
    return x.long(), y.long()


def _gb_no_shift(data, batch_size, block_size, generator=None):
    x, _ = _get_batch(data, batch_size, block_size, generator)
    return x.long(), x.long()


def _gb_no_generator(data, batch_size, block_size, generator=None):
    x, y = _get_batch(data, batch_size, block_size, None)
    return x.long(), y.long()


def _gb_global_block(data, batch_size, T, generator=None):  # reads the notebook's block_size
    x, y = _get_batch(data, batch_size, block_size, generator)
    return x.long(), y.long()


def _gb_add_one(data, batch_size, block_size, generator=None):  # y = x + 1: arithmetic on the ids
    ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    x = torch.stack([data[i: i + block_size] for i in ix])
    return x.long(), x.long() + 1


def _gb_backwards(data, batch_size, block_size, generator=None):
    ix = torch.randint(1, len(data) - block_size, (batch_size,), generator=generator)
    x = torch.stack([data[i: i + block_size] for i in ix])
    y = torch.stack([data[i - 1: i - 1 + block_size] for i in ix])
    return x.long(), y.long()


def _gb_reseeded(data, batch_size, block_size, generator=None):  # a fresh seeded generator per call
    x, y = _get_batch(data, batch_size, block_size, torch.Generator().manual_seed(1337))
    return x.long(), y.long()


def _gb_one_offset(data, batch_size, block_size, generator=None):  # one offset for the whole batch
    i = int(torch.randint(len(data) - block_size, (1,), generator=generator))
    x = torch.stack([data[i: i + block_size] for _ in range(batch_size)])
    y = torch.stack([data[i + 1: i + 1 + block_size] for _ in range(batch_size)])
    return x.long(), y.long()


def _gb_range_rows(data, batch_size, block_size, generator=None):  # loops over range(B), not the offsets
    ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator)  # drawn, never used
    x = torch.stack([data[i: i + block_size] for i in range(batch_size)])
    y = torch.stack([data[i + 1: i + 1 + block_size] for i in range(batch_size)])
    return x.long(), y.long()


GET_BATCH = [
    Mistake("no .long()", _gb_no_long,
            hint="x and y should be torch.long (int64): token files hold uint16 ids, and embedding "
                 "layers and cross_entropy need int64 ids: return x.long(), y.long()"),
    Mistake("offsets one too many", _gb_too_many,
            hint="Offsets up to len(data) - block_size are one too many: the window of y runs past "
                 "the end. Draw them with torch.randint(len(data) - block_size, ...)"),
    Mistake("offsets one too few", _gb_too_few,
            hint="the last offset len(data) - block_size - 1 is never drawn: torch.randint's upper "
                 "bound is exclusive, so draw from torch.randint(len(data) - block_size, ...)"),
    Mistake("y equals x", _gb_no_shift,
            hint="y equals x: y must be the window one token later, data[i+1 : i+T+1]"),
    Mistake("generator ignored", _gb_no_generator,
            hint="two calls with generators of the same seed gave different batches: pass "
                 "generator=generator to torch.randint"),
    Mistake("global block_size", _gb_global_block,
            hint="the windows have the notebook's block_size, not the block_size argument: use the "
                 "function's parameter"),
    Mistake("y = x + 1", _gb_add_one,
            hint="y is not the next window of data: y = x + 1 adds one to the ids; slice "
                 "data[i + 1 : i + T + 1] with the same offset i"),
    Mistake("y shifted backwards", _gb_backwards,
            hint="y is shifted the wrong way: y should be data[i + 1 : i + T + 1]"),
    Mistake("a new seeded generator in every call", _gb_reseeded,
            hint="every call returned the same batch: a generator created and seeded inside "
                 "get_batch starts over at each call; draw from the generator passed in "
                 "(generator=generator), which moves on from call to call"),
    Mistake("one offset for the whole batch", _gb_one_offset,
            hint="all the rows of a batch are the same window: draw batch_size offsets, one per "
                 "row, torch.randint(len(data) - block_size, (batch_size,), generator=generator)"),
    Mistake("rows from range(batch_size)", _gb_range_rows,
            hint="the rows are the windows at 0, 1, ..., batch_size - 1: slice at the offsets you "
                 "drew (for i in ix), not at range(batch_size)"),
]
(_G_LONG, _G_MANY, _G_FEW, _G_EQUAL, _G_GEN, _G_GLOBAL, _G_PLUS1, _G_BACK, _G_RESEED,
 _G_ONE, _G_RANGE) = GET_BATCH


def _token_file(values: np.ndarray, dtype: Any, tmp: str, name: str) -> torch.Tensor:
    """``values`` written as a raw token file and read back as ``torch.from_numpy(np.memmap(...))``."""
    path = os.path.join(tmp, name)
    values.astype(dtype).tofile(path)
    mm = np.memmap(path, dtype=dtype, mode="c")  # copy-on-write: writable, so from_numpy is quiet
    return torch.from_numpy(mm)


def _distinct(n: int, base: int, seed: int) -> np.ndarray:
    """``n`` distinct token ids from ``base`` up, shuffled: every window is found by its first id."""
    rng = np.random.default_rng(seed)
    return base + rng.permutation(n).astype(np.int64)


def _dtype(t: Any) -> str:
    return str(getattr(t, "dtype", "?")).replace("torch.", "")


def _call_batch(fn: Callable[..., Any], data: torch.Tensor, b: int, t: int, g: Any, where: str) -> tuple[Any, Any]:
    shown = f"get_batch(data, batch_size={b}, block_size={t}) with {where}"
    try:
        out = fn(data, b, t, generator=g)
    except NotImplementedError as exc:
        if "not implemented for" in str(exc):  # torch has no such kernel for this dtype
            raise CheckFailed(
                f"on {shown} your code raised NotImplementedError: {exc}. Token files are uint16, "
                "which supports little arithmetic in torch: slice the windows first, then convert "
                "them with .long()") from exc
        raise
    except AssertionError:
        raise
    except (RuntimeError, IndexError) as exc:  # a too-large offset makes a short window
        if "from' to be less than 'to'" in str(exc) or "high" in str(exc) and "> 0" in str(exc):
            raise CheckFailed(f"{_G_FEW.hint} (on {shown} your code raised {type(exc).__name__}: "
                              f"{str(exc)[:120]})") from exc
        raise CheckFailed(f"{_G_MANY.hint} (on {shown} your code raised {type(exc).__name__}: "
                          f"{str(exc)[:120]})") from exc
    except Exception as exc:  # noqa: BLE001 - turned into a verdict
        raise CheckFailed(f"your code raised {type(exc).__name__}: {exc} on {shown}") from exc
    x, y = as_pair(out, "get_batch")
    for name, v in (("x", x), ("y", y)):
        if not isinstance(v, torch.Tensor):
            raise CheckFailed(f"{name} should be a torch tensor, got {kind_of(v)}; use torch.stack on "
                              f"the windows (on {shown})")
    return x, y, shown  # type: ignore[return-value]


def _check_windows(x: torch.Tensor, y: torch.Tensor, data: torch.Tensor, b: int, t: int, shown: str) -> list[int]:
    """x and y are (b, t) int64 windows of ``data`` (distinct values), y one token later; the offsets."""
    if tuple(x.shape) == (b, block_size) and t != block_size:
        raise CheckFailed(f"{_G_GLOBAL.hint} (x has shape {tuple(x.shape)}, expected {(b, t)}, on {shown})")
    as_tensor(x, f"x for batch_size={b}, block_size={t}", shape=(b, t))
    as_tensor(y, f"y for batch_size={b}, block_size={t}", shape=(b, t))
    if x.dtype != torch.long or y.dtype != torch.long:
        raise CheckFailed(f"on {shown}: {_G_LONG.hint} (got {_dtype(x)} and {_dtype(y)})")
    if torch.equal(x, y):
        raise CheckFailed(f"{_G_EQUAL.hint} (on {shown})")
    values = data.long().tolist()
    position = {v: i for i, v in enumerate(values)}
    offsets = []
    for row in range(b):
        first = int(x[row, 0])
        i = position.get(first)
        if i is None or x[row].tolist() != values[i: i + t]:
            raise CheckFailed(f"row {row} of x is not a window of consecutive tokens of data: slice "
                              f"data[i : i + T] (on {shown})")
        if y[row].tolist() != values[i + 1: i + 1 + t]:
            if y[row].tolist() == [v + 1 for v in x[row].tolist()]:
                raise CheckFailed(f"{_G_PLUS1.hint} (on {shown})")
            if i >= 1 and y[row].tolist() == values[i - 1: i - 1 + t]:
                raise CheckFailed(f"{_G_BACK.hint} (on {shown})")
            raise CheckFailed(f"row {row} of y is not x shifted by one token: for each row use the same "
                              f"offset i, x = data[i : i + T], y = data[i + 1 : i + T + 1] (on {shown})")
        offsets.append(i)
    return offsets


@check("get_batch", hint="offsets must stay in 0 .. len(data) - block_size - 1 so that y fits",
       mistakes=GET_BATCH)
def check_get_batch(get_batch: Callable[..., Any]) -> None:
    """Exercise 2: random-offset batches of shape ``(B, T)``, ``y`` shifted by one, ``int64``.

    The data are ``uint16`` read from a memory-mapped token file (``torch.from_numpy`` of an
    ``np.memmap``), as ``train.bin`` gives them, and ``int32``/``int64`` tensors with ids above
    65,535; sizes differ from the notebook's ``block_size = 8``, and one has a single possible
    offset.
    """
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        battery = [
            (_token_file(_distinct(50, 60_000, 0), np.uint16, tmp, "train.bin"), 8, 5,
             "50 uint16 token ids from a memory-mapped file"),
            (torch.from_numpy(_distinct(40, 70_000, 1).astype(np.int32)), 3, 17, "40 int32 token ids"),
            (torch.from_numpy(_distinct(2, 5, 2)), 6, 1, "2 int64 token ids (only offset 0 fits)"),
            (_token_file(_distinct(300, 1_000, 3), np.uint16, tmp, "val.bin"), 2, 33,
             "300 uint16 token ids from a memory-mapped file"),
        ]
        for k, (data, b, t, where) in enumerate(battery):
            x, y, shown = _call_batch(get_batch, data, b, t, torch.Generator().manual_seed(10 + k), where)
            offsets = _check_windows(x, y, data, b, t, shown)
            if b > 2 and offsets == list(range(b)):  # a random draw of 0, 1, ..., b - 1 in order: never
                raise CheckFailed(f"{_G_RANGE.hint} (on {shown})")

        # Every offset 0 .. N - T - 1 must be possible, and none beyond.
        small = _token_file(_distinct(12, 100, 4), np.uint16, tmp, "small.bin")
        g = torch.Generator().manual_seed(1)
        starts: set[int] = set()
        rows_differ = False
        batches: list[torch.Tensor] = []
        for _ in range(40):
            x, y, shown = _call_batch(get_batch, small, 16, 4, g, "12 uint16 token ids")
            offsets = _check_windows(x, y, small, 16, 4, shown)
            starts.update(offsets)
            rows_differ = rows_differ or len(set(offsets)) > 1
            batches.append(x)
        if all(torch.equal(x, batches[0]) for x in batches):
            raise CheckFailed(f"{_G_RESEED.hint} (on 40 calls with one generator on {shown})")
        if not rows_differ:
            raise CheckFailed(f"{_G_ONE.hint} (on {shown})")
        if max(starts) < 7:
            raise CheckFailed(f"{_G_FEW.hint} (on data of length 12 with block_size 4 the offsets never "
                              f"reached 7; largest seen: {max(starts)})")
        if min(starts) > 0:
            raise CheckFailed("offset 0 is never drawn: the first window of the data must be possible")

        # Reproducible with a generator.
        data = battery[0][0]
        a = _call_batch(get_batch, data, 8, 5, torch.Generator().manual_seed(123), battery[0][3])[0]
        c = _call_batch(get_batch, data, 8, 5, torch.Generator().manual_seed(123), battery[0][3])[0]
        if not torch.equal(a, c):
            raise CheckFailed(_G_GEN.hint)


# ---- exercise 3: WindowDataset ---------------------------------------------------------------
class _Windows(torch.utils.data.Dataset):  # the lesson's answer, the base of the wrong ones
    def __init__(self, data, block_size, stride=None):
        self.data = data
        self.block_size = block_size
        self.stride = block_size if stride is None else stride

    def __len__(self):
        return (len(self.data) - self.block_size - 1) // self.stride + 1

    def __getitem__(self, k):
        if not 0 <= k < len(self):
            raise IndexError(k)
        i = k * self.stride
        return self.data[i: i + self.block_size], self.data[i + 1: i + 1 + self.block_size]


class _TooMany(_Windows):
    def __len__(self):
        return (len(self.data) - self.block_size) // self.stride + 1


class _FloatLength(_Windows):
    def __len__(self):
        return int((len(self.data) - self.block_size - 1) / self.stride) + 1


class _NoStride(_Windows):
    def __getitem__(self, k):
        if not 0 <= k < len(self):
            raise IndexError(k)
        return self.data[k: k + self.block_size], self.data[k + 1: k + 1 + self.block_size]


class _StrideOne(_Windows):
    def __init__(self, data, block_size, stride=1):
        super().__init__(data, block_size, stride)


class _NoNegativeCheck(_Windows):
    def __getitem__(self, k):
        if k >= len(self):
            raise IndexError(k)
        i = k * self.stride
        return self.data[i: i + self.block_size], self.data[i + 1: i + 1 + self.block_size]


class _NoIndexError(_Windows):
    def __getitem__(self, k):
        i = k * self.stride
        return self.data[i: i + self.block_size], self.data[i + 1: i + 1 + self.block_size]


class _BlockStride(_Windows):  # every window starts at k * block_size, whatever the stride
    def __getitem__(self, k):
        if not 0 <= k < len(self):
            raise IndexError(k)
        i = k * self.block_size
        return self.data[i: i + self.block_size], self.data[i + 1: i + 1 + self.block_size]


class _ValueErrorWindows(_Windows):
    def __getitem__(self, k):
        if not 0 <= k < len(self):
            raise ValueError(f"window {k} out of range")
        return super().__getitem__(k)


class _AssertWindows(_Windows):  # guards the range with assert instead of raising IndexError
    def __getitem__(self, k):
        assert 0 <= k < len(self), f"window {k} out of range"
        return super().__getitem__(k)


class _LenNoStride(_Windows):  # __len__ counts windows of stride block_size, whatever the stride
    def __len__(self):
        return (len(self.data) - self.block_size - 1) // self.block_size + 1


class _YEqualsX(_Windows):  # y is the same window as x, not the one a token later
    def __getitem__(self, k):
        x, _ = super().__getitem__(k)
        return x, x


class _Lists(_Windows):
    def __getitem__(self, k):
        x, y = super().__getitem__(k)
        return x.tolist(), y.tolist()


WINDOW_DATASET = [
    Mistake("length one too many", _TooMany,
            hint="one too many: the last window also needs its target, so it must end by index "
                 "len(data) - 1 (use len(data) - T - 1)"),
    Mistake("length with int(/)", _FloatLength,
            hint="no window fits when len(data) <= block_size, so len(ds) must be 0: int(a / b) rounds "
                 "towards zero; use floor division //"),
    Mistake("stride ignored", _NoStride,
            hint="window k must start at k * stride, not at k"),
    Mistake("stride defaults to 1", _StrideOne,
            hint="stride defaults to block_size (non-overlapping windows): stride=None, then "
                 "self.stride = block_size if stride is None else stride"),
    Mistake("negative k", _NoNegativeCheck,
            expect="ds[-1] (len(ds) = 4) should raise IndexError: a negative k"),
    Mistake("no IndexError", _NoIndexError,
            hint="a for loop over the dataset stops only on IndexError"),
    Mistake("lists", _Lists, expect="should be a torch tensor, got a list of 4 items"),
    Mistake("k * block_size", _BlockStride,
            hint="window k must start at k * stride, not at k * block_size (they differ when a "
                 "stride is given)"),
    Mistake("ValueError out of range", _ValueErrorWindows,
            hint="raise IndexError, not ValueError, for a k out of range: a for loop over the "
                 "dataset stops only on IndexError"),
    Mistake("assert for the range", _AssertWindows,
            hint="an assert raises AssertionError, but a for loop over the dataset stops only on "
                 "IndexError: test the range and raise IndexError(...) yourself"),
    Mistake("__len__ ignores the stride", _LenNoStride,
            hint="__len__ counts windows block_size apart, whatever the stride: divide by "
                 "self.stride, (len(data) - T - 1) // stride + 1"),
    Mistake("y equals x", _YEqualsX,
            hint="y equals x: y is the window one token later, data[i + 1 : i + 1 + block_size]"),
]
(_W_MANY, _W_FLOAT, _W_STRIDE, _W_DEFAULT, _, _W_INDEX, _, _W_BLOCK, _W_VALUE, _W_ASSERT,
 _W_LEN_STRIDE, _W_Y_IS_X) = WINDOW_DATASET



def _window_battery(tmp: str) -> list[tuple[Any, str, int, Any]]:
    arange = torch.arange(20)
    return [
        (arange, "arange(20)", 4, None), (arange, "arange(20)", 4, 1), (arange, "arange(20)", 4, 3),
        (arange, "arange(20)", 5, 5),
        (_token_file(_distinct(37, 60_000, 5), np.uint16, tmp, "train.bin"), "37 uint16 ids from a token file", 6, 4),
        (torch.from_numpy(_distinct(30, 70_000, 6).astype(np.int32)), "30 int32 ids", 7, None),
        (torch.arange(10), "arange(10)", 10, None),  # no window fits
        (torch.arange(10), "arange(10)", 9, None),   # exactly one
    ]


@check("WindowDataset", mistakes=WINDOW_DATASET)
def check_window_dataset(dataset_cls: Any) -> None:
    """Exercise 3: a map-style dataset of windows starting at ``k * stride``.

    Run on ``int64``, ``int32`` and memory-mapped ``uint16`` data, with the default stride and
    others, and with data too short for any window.
    """
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        battery = _window_battery(tmp)
        for data, what, block, stride in battery:
            ds = dataset_cls(data, block) if stride is None else dataset_cls(data, block, stride)
            s = block if stride is None else stride
            n_data = len(data)
            expected = max(0, (n_data - block - 1) // s + 1)
            shown = f"WindowDataset({what}, block_size={block}" + (")" if stride is None else f", stride={stride})")
            n = len(ds)
            label = f"len({shown})"
            if stride is None and n == (n_data - block - 1) // 1 + 1 and n != expected:
                raise CheckFailed(f"{_W_DEFAULT.hint} ({label} is {n}, expected {expected})")
            if expected == 0 and n != 0:
                raise CheckFailed(f"{_W_FLOAT.hint} ({label} is {n})")
            if stride is not None and stride != block and n != expected and n == (n_data - block - 1) // block + 1:
                raise CheckFailed(f"{_W_LEN_STRIDE.hint} ({label} is {n}, expected {expected})")
            if n == expected + 1:
                raise CheckFailed(f"{label} is {n}, {_W_MANY.hint}")
            if n == expected - 1:
                raise CheckFailed(f"{label} is {n}, one too few: the window starting at "
                                  f"{(expected - 1) * s} still fits with its target")
            assert_equal(n, expected, label)
            values = data.long().tolist()
            for k in sorted({0, expected // 2, expected - 1} - {-1}):
                if expected == 0:
                    break
                try:
                    item = ds[k]
                except NotImplementedError as exc:
                    raise _PartNotDone("__len__ is right; __getitem__ is not done yet — write it in the "
                                       "cell above, run it, then run this check again") from exc
                x, y = as_pair(item, f"ds[{k}]")
                start = k * s
                where = f"of window {k} of {shown}"
                if (k > 0 and s != block and isinstance(x, torch.Tensor)
                        and x.tolist() == values[k * block: k * block + block]):
                    raise CheckFailed(f"{_W_BLOCK.hint} ({where})")
                as_tensor(x, f"x {where}", shape=(block,))
                as_tensor(y, f"y {where}", shape=(block,))
                if x.dtype not in (data.dtype, torch.long):
                    raise CheckFailed(f"x {where} has dtype {_dtype(x)}: keep the data's ids "
                                      f"({_dtype(data)}) or return int64")
                if k > 0 and s != 1 and as_list(x, "x") == values[k: k + block]:
                    raise CheckFailed(f"{_W_STRIDE.hint} ({where})")
                assert_equal(as_list(x, "x"), values[start: start + block], f"x {where}")
                if as_list(y, "y") == as_list(x, "x"):
                    raise CheckFailed(f"{_W_Y_IS_X.hint} ({where})")
                assert_equal(as_list(y, "y"), values[start + 1: start + block + 1], f"y {where}")
        ds = dataset_cls(torch.arange(20), 4)
        n = len(ds)
        for k, why in ((n, _W_INDEX.hint),
                       (n + 3, "every k outside 0 .. len(ds) - 1 is out of range"),
                       (-1, "a negative k is outside 0 .. len(ds) - 1 too (or, like a Python list, "
                            "ds[-1] may be the last window); without the test, slicing with a "
                            "negative start quietly returns an empty or wrong window")):
            try:
                item = ds[k]
            except IndexError:
                continue
            except CheckFailed:
                raise
            except AssertionError as exc:  # the learner's own assert: ds[k] runs only their code
                raise CheckFailed(f"ds[{k}] (len(ds) = {n}) raised AssertionError: {_W_ASSERT.hint}") from exc
            except NotImplementedError:
                raise
            except Exception as exc:  # noqa: BLE001 - another exception than IndexError, named
                raise CheckFailed(f"ds[{k}] (len(ds) = {n}) raised {type(exc).__name__}: "
                                  f"{_W_VALUE.hint}") from exc
            if k < 0:  # reading a negative k from the end, as a Python list does, is fine too
                got, last = as_pair(item, f"ds[{k}]"), ds[n + k]
                if all(isinstance(t, torch.Tensor) and t.shape == u.shape and torch.equal(t, u)
                       for t, u in zip(got, last)):
                    continue
            raise CheckFailed(f"ds[{k}] (len(ds) = {n}) should raise IndexError: {why}. Test "
                              "`if not 0 <= k < len(self): raise IndexError(...)`")
        loader = torch.utils.data.DataLoader(ds, batch_size=2)
        xb, yb = next(iter(loader))
        as_tensor(xb, "a DataLoader batch of x", shape=(2, 4))


# ---- exercise 4: write_tokens ----------------------------------------------------------------
def _wt_always_uint16(ids, path):
    np.asarray(ids).astype(np.uint16).tofile(path)
    return np.dtype(np.uint16)


def _wt_strict_boundary(ids, path):
    arr = np.asarray(ids, dtype=np.int64)
    if arr.size and arr.min() < 0:
        raise ValueError("negative id")
    dtype = np.uint16 if arr.size == 0 or arr.max() < 65_535 else np.uint32
    arr.astype(dtype).tofile(path)
    return np.dtype(dtype)


def _wt_header(ids, path):
    arr = np.asarray(ids, dtype=np.int64)
    if arr.size and arr.min() < 0:
        raise ValueError("negative id")
    dtype = np.uint16 if arr.size == 0 or arr.max() < 2**16 else np.uint32
    with open(path, "wb") as f:
        np.save(f, arr.astype(dtype))
    return np.dtype(dtype)


def _wt_negative(ids, path):
    arr = np.asarray(ids, dtype=np.int64)
    dtype = np.uint16 if arr.size == 0 or arr.max() < 2**16 else np.uint32
    arr.astype(dtype).tofile(path)
    return np.dtype(dtype)


def _wt_np_save(ids, path):
    arr = np.asarray(ids, dtype=np.int64)
    if arr.size and arr.min() < 0:
        raise ValueError("negative id")
    dtype = np.uint16 if arr.size == 0 or arr.max() < 2**16 else np.uint32
    np.save(path, arr.astype(dtype))
    return np.dtype(dtype)


def _wt_empty(ids, path):
    arr = np.asarray(ids, dtype=np.int64)
    if arr.min() < 0:  # ValueError on an empty array: zero-size array has no minimum
        raise ValueError("negative id")
    dtype = np.uint16 if arr.max() < 2**16 else np.uint32
    arr.astype(dtype).tofile(path)
    return np.dtype(dtype)


def _wt_appends(ids, path):
    arr = np.asarray(ids, dtype=np.int64)
    if arr.size and arr.min() < 0:
        raise ValueError("negative id")
    dtype = np.uint16 if arr.size == 0 or arr.max() < 2**16 else np.uint32
    with open(path, "ab") as f:
        f.write(arr.astype(dtype).tobytes())
    return np.dtype(dtype)


def _wt_writes_then_raises(ids, path):
    arr = np.asarray(ids, dtype=np.int64)
    dtype = np.uint16 if arr.size == 0 or arr.max() < 2**16 else np.uint32
    arr.astype(dtype).tofile(path)
    if arr.size and arr.min() < 0:
        raise ValueError("negative id")
    return np.dtype(dtype)


def _wt_opens_then_raises(ids, path):
    with open(path, "wb") as f:  # "wb" empties the file at once, before the ids are checked
        arr = np.asarray(ids, dtype=np.int64)
        if arr.size and arr.min() < 0:
            raise ValueError("negative id")
        dtype = np.uint16 if arr.size == 0 or arr.max() < 2**16 else np.uint32
        arr.astype(dtype).tofile(f)
    return np.dtype(dtype)


def _wt_deletes_then_raises(ids, path):
    path = Path(path)
    if path.exists():
        path.unlink()  # "start from a clean file"
    arr = np.asarray(ids, dtype=np.int64)
    if arr.size and arr.min() < 0:
        raise ValueError("negative id")
    dtype = np.uint16 if arr.size == 0 or arr.max() < 2**16 else np.uint32
    arr.astype(dtype).tofile(path)
    return np.dtype(dtype)


def _wt_assert(ids, path):  # refuses negative ids with assert instead of ValueError
    arr = np.asarray(ids, dtype=np.int64)
    assert arr.size == 0 or arr.min() >= 0, "token ids must be >= 0"
    dtype = np.uint16 if arr.size == 0 or arr.max() < 2**16 else np.uint32
    arr.astype(dtype).tofile(path)
    return np.dtype(dtype)


def _wt_signed(ids, path):  # int16 / int32: signed types hold only half the range
    arr = np.asarray(ids, dtype=np.int64)
    if arr.size and arr.min() < 0:
        raise ValueError("negative id")
    dtype = np.int16 if arr.size == 0 or arr.max() < 2**15 else np.int32
    arr.astype(dtype).tofile(path)
    return np.dtype(dtype)


def _wt_last_id(ids, path):  # picks the dtype from the last id, not the largest
    arr = np.asarray(ids, dtype=np.int64)
    if arr.size and arr.min() < 0:
        raise ValueError("negative id")
    dtype = np.uint16 if arr.size == 0 or arr[-1] < 2**16 else np.uint32
    arr.astype(dtype).tofile(path)
    return np.dtype(dtype)


def _wt_boundary_above(ids, path):  # 65,536 kept in uint16, where it wraps to 0
    arr = np.asarray(ids, dtype=np.int64)
    if arr.size and arr.min() < 0:
        raise ValueError("negative id")
    dtype = np.uint16 if arr.size == 0 or arr.max() <= 2**16 else np.uint32
    arr.astype(dtype).tofile(path)
    return np.dtype(dtype)


def _wt_no_astype(ids, path):  # picks the dtype, then writes the int64 array as it is
    arr = np.asarray(ids, dtype=np.int64)
    if arr.size and arr.min() < 0:
        raise ValueError("negative id")
    dtype = np.uint16 if arr.size == 0 or arr.max() < 2**16 else np.uint32
    arr.tofile(path)
    return np.dtype(dtype)


def _wt_returns_input_dtype(ids, path):  # returns the dtype of the ids, not the one written
    arr = np.asarray(ids, dtype=np.int64)
    if arr.size and arr.min() < 0:
        raise ValueError("negative id")
    dtype = np.uint16 if arr.size == 0 or arr.max() < 2**16 else np.uint32
    arr.astype(dtype).tofile(path)
    return arr.dtype


WRITE_TOKENS = [
    Mistake("always uint16", _wt_always_uint16, expect="the dtype should be uint32"),
    Mistake("65,535 to uint32", _wt_strict_boundary,
            hint="65,535 is the largest value a uint16 holds, so it still fits"),
    Mistake("np.save header", _wt_header, hint="np.save adds a header"),
    Mistake("negative ids accepted", _wt_negative,
            hint="should raise ValueError: a negative id would wrap around to 65,535 in uint16 without any error"),
    Mistake("np.save(path)", _wt_np_save, hint="np.save appends .npy to the name and writes a header"),
    Mistake("empty ids crash", _wt_empty,
            hint="an empty list of ids must give an empty uint16 file: test arr.size before arr.min() / arr.max()"),
    Mistake("appends", _wt_appends,
            hint="writing to an existing file must replace its ids, not append to them (tofile, or open(path, 'wb'))"),
    Mistake("writes, then raises", _wt_writes_then_raises,
            hint="raised the ValueError only after writing the file: check the ids first, so that a refused "
                 "call leaves an existing file as it was"),
    Mistake("opens 'wb', then raises", _wt_opens_then_raises,
            hint="emptied the file the user already had before refusing the negative id (open(path, 'wb') "
                 "truncates it at once): check the ids first, then open the file, so that a refused call "
                 "leaves an existing file as it was"),
    Mistake("deletes, then raises", _wt_deletes_then_raises,
            hint="deleted the file the user already had before refusing the negative id: check the ids "
                 "first, then write, so that a refused call leaves an existing file as it was"),
    Mistake("assert for negative ids", _wt_assert,
            hint="refused the negative id with assert (AssertionError); raise ValueError(...) instead, "
                 "as the exercise asks (asserts also vanish under python -O)"),
    Mistake("signed int16/int32", _wt_signed,
            hint="token ids are never negative: use the unsigned types np.uint16 (0 .. 65,535) and "
                 "np.uint32, not int16/int32"),
    Mistake("dtype from the last id", _wt_last_id,
            hint="the dtype must fit the LARGEST id (arr.max()), wherever it sits, not the first or "
                 "last one"),
    Mistake("65,536 to uint16", _wt_boundary_above,
            hint="65,536 (2**16) does not fit in uint16, whose largest value is 65,535: use uint32 "
                 "as soon as arr.max() >= 2**16"),
    Mistake("no astype before tofile", _wt_no_astype,
            hint="the file holds the ids as 8-byte int64: convert them with arr.astype(dtype) "
                 "before .tofile(path)"),
    Mistake("returns the ids' dtype", _wt_returns_input_dtype,
            hint="write_tokens returned the dtype of the ids it was given, not the one it wrote: "
                 "return np.dtype(dtype) of the file"),
]
(_T_16, _T_BOUNDARY, _T_HEADER, _T_NEG, _T_NPY, _T_EMPTY, _T_APPEND, _T_AFTER, _T_TRUNCATES,
 _T_DELETES, _T_ASSERT, _T_SIGNED, _T_LARGEST, _T_ABOVE, _T_ASTYPE, _T_RETURNED) = WRITE_TOKENS


def _write(write_tokens: Any, ids: Any, path: Path, what: str) -> np.dtype:
    shown = f"write_tokens({what}, path)"
    try:
        got = write_tokens(ids, path)
    except (NotImplementedError, CheckFailed):
        raise
    except Exception as exc:  # noqa: BLE001 - turned into a verdict (their own assert included)
        if len(ids) == 0:
            raise CheckFailed(f"{_T_EMPTY.hint} (your code raised {type(exc).__name__}: {exc} on {shown})") from exc
        raise CheckFailed(f"your code raised {type(exc).__name__}: {exc} on {shown}") from exc
    if got is None:
        raise CheckFailed("write_tokens returned None; return the dtype you used")
    try:
        return np.dtype(got)
    except TypeError as exc:
        raise CheckFailed(f"write_tokens should return a NumPy dtype, got {got!r}") from exc


def _read_back(path: Path, want: np.dtype, n: int, what: str) -> list[int]:
    if not path.is_file():
        if path.with_name(path.name + ".npy").is_file():
            raise CheckFailed(f"write_tokens(ids, {path.name!r}) wrote {path.name}.npy instead: {_T_NPY.hint} "
                              "before the ids. Write the raw ids with array.astype(dtype).tofile(path)")
        raise CheckFailed(f"write_tokens did not create the file {path.name}")
    size = path.stat().st_size
    if size != n * want.itemsize:
        why = (_T_APPEND.hint if size > n * want.itemsize and size % want.itemsize == 0
               and "twice" in what else _T_ASTYPE.hint if n and size == 8 * n
               else f"write the raw ids with array.astype(dtype).tofile(path) ({_T_HEADER.hint})")
        raise CheckFailed(f"for {what} the file holds {size} bytes, expected {n} ids x {want.itemsize} bytes "
                          f"= {n * want.itemsize}: {why}")
    return np.fromfile(path, dtype=want).tolist()


@check("write_tokens", mistakes=WRITE_TOKENS)
def check_write_tokens(write_tokens: Callable[[Any, Any], Any]) -> None:
    """Exercise 4: raw ``uint16`` ids when they fit, ``uint32`` otherwise; negative ids rejected.

    Also: an empty list, a numpy ``int32`` array, and writing twice to the same path (the
    second write replaces the first).
    """
    cases = [
        ([0, 5, 64, 65_535], np.uint16, "ids up to 65,535"),
        ([0, 65_536, 100_276], np.uint32, "ids above 65,535"),
        (np.array([3, 1, 4, 1, 5], dtype=np.int64), np.uint16, "a numpy array of small ids"),
        (np.array([7, 70_000, 2], dtype=np.uint32), np.uint32, "a uint32 numpy array (largest id in the middle)"),
        (np.array([50_256, 11, 65_535, 0], dtype=np.int32), np.uint16, "an int32 numpy array"),
        ([65_536, 3, 0], np.uint32, "ids up to 65,536 (one more than uint16 holds)"),
        ([], np.uint16, "an empty list of ids"),
    ]
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        for i, (ids, dtype, what) in enumerate(cases):
            path = Path(tmp) / f"case{i}.bin"
            got_dtype = _write(write_tokens, ids, path, what)
            want = np.dtype(dtype)
            if got_dtype != want:
                if got_dtype.kind == "i" and got_dtype.itemsize == want.itemsize:  # int16 for uint16
                    raise CheckFailed(f"for {what} the dtype should be {want}, got {got_dtype}: {_T_SIGNED.hint}")
                if (got_dtype.kind == "i" and len(ids) and path.is_file()
                        and path.stat().st_size == len(ids) * want.itemsize
                        and np.fromfile(path, dtype=want).tolist() == [int(v) for v in ids]):
                    raise CheckFailed(f"for {what} the file is right ({want}), but {_T_RETURNED.hint} "
                                      f"(got {got_dtype})")
                if want == np.uint32 and got_dtype == np.uint16 and len(ids) and int(np.max(ids)) == 2**16:
                    raise CheckFailed(f"for {what} the dtype should be {want}, got {got_dtype}: {_T_ABOVE.hint}")
                if got_dtype.kind == "i":
                    raise CheckFailed(f"for {what} the dtype should be {want}, got {got_dtype}: {_T_SIGNED.hint}")
                if (want == np.uint32 and got_dtype == np.uint16 and len(ids)
                        and int(np.asarray(ids)[-1]) < 2**16 and int(np.asarray(ids)[0]) < 2**16):
                    raise CheckFailed(f"for {what} the dtype should be {want}, got {got_dtype}: {_T_LARGEST.hint}")
                extra = (f" ({_T_BOUNDARY.hint})" if want == np.uint16 and len(ids) and max(list(ids)) == 65_535
                         else "")
                raise CheckFailed(f"for {what} the dtype should be {want}, got {got_dtype}{extra}")
            back = _read_back(path, want, len(ids), what)
            assert_equal(back, [int(v) for v in ids], f"the ids read back for {what}")
        # Writing twice to the same file: the second call replaces the first.
        path = Path(tmp) / "twice.bin"
        _write(write_tokens, [1, 2, 3], path, "[1, 2, 3]")
        want = _write(write_tokens, [4, 5], path, "[4, 5] (written over [1, 2, 3])")
        back = _read_back(path, want, 2, "[4, 5] written twice over [1, 2, 3] in the same file")
        assert_equal(back, [4, 5], "the ids read back after writing [4, 5] over [1, 2, 3]")
        path = Path(tmp) / "negative.bin"
        np.array([1, 2, 3], dtype=np.uint16).tofile(path)     # a file the refused call must not touch
        before = path.read_bytes()
        try:
            write_tokens([4, -1, 2], path)
        except CheckFailed:
            raise
        except AssertionError as exc:  # the learner's own assert
            raise CheckFailed(f"write_tokens([4, -1, 2], path) {_T_ASSERT.hint}") from exc
        except ValueError:
            if not path.is_file():
                raise CheckFailed(f"write_tokens([4, -1, 2], path) {_T_DELETES.hint}") from None
            if path.read_bytes() != before:
                hint = _T_TRUNCATES.hint if len(path.read_bytes()) == 0 else _T_AFTER.hint
                raise CheckFailed(f"write_tokens([4, -1, 2], path) {hint}") from None
        except NotImplementedError:
            raise
        except Exception as exc:  # noqa: BLE001 - turned into a verdict
            raise CheckFailed(f"write_tokens([4, -1, 2], path) raised {type(exc).__name__}; it "
                              f"{_T_NEG.hint}") from exc
        else:
            raise CheckFailed(f"write_tokens([4, -1, 2], path) {_T_NEG.hint}")
