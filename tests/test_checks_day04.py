"""The day 04 checks pass on the solutions, reject every mistake of their tables, and never raise."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from checklines import fails, mistake_params, one_line, passes, rejects, stub
from llmcourse.checks import day04
from llmcourse.data import TokenDataset, get_batch


# ---- the lesson's solutions (solutions/day04_datasets_and_batches.md) -----------------------
def my_get_batch(data, batch_size, block_size, generator=None):
    ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator)  # (B,)
    x = torch.stack([data[i : i + block_size] for i in ix])            # (B, T)
    y = torch.stack([data[i + 1 : i + 1 + block_size] for i in ix])    # (B, T)
    return x.long(), y.long()


class WindowDataset(torch.utils.data.Dataset):
    def __init__(self, data, block_size, stride=None):
        self.data = data
        self.block_size = block_size
        self.stride = block_size if stride is None else stride

    def __len__(self):
        return (len(self.data) - self.block_size - 1) // self.stride + 1

    def __getitem__(self, k):
        if not 0 <= k < len(self):
            raise IndexError(f"window {k} out of range 0..{len(self) - 1}")
        i = k * self.stride
        x = self.data[i : i + self.block_size]
        y = self.data[i + 1 : i + 1 + self.block_size]
        return x, y


def write_tokens(ids, path):
    arr = np.asarray(ids, dtype=np.int64)
    if arr.size and arr.min() < 0:
        raise ValueError(f"token ids must be >= 0, got {arr.min()}")
    dtype = np.uint16 if arr.size == 0 or arr.max() < 2**16 else np.uint32
    arr.astype(dtype).tofile(path)
    return np.dtype(dtype)


# ---- other correct variants ----------------------------------------------------------------
def vectorised_get_batch(data, batch_size, block_size, generator=None):
    ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    rows = ix[:, None] + torch.arange(block_size)  # (B, T)
    return data[rows].long(), data[rows + 1].long()


class LongWindows(WindowDataset):  # converts to int64, like the package's TokenDataset
    def __getitem__(self, k):
        x, y = super().__getitem__(k)
        return x.long(), y.long()


class ListLikeNegative(WindowDataset):  # ds[-1] is the last window, as for a Python list
    def __getitem__(self, k):
        if -len(self) <= k < 0:
            k += len(self)
        return super().__getitem__(k)


@pytest.mark.parametrize("check_fn, mistake", mistake_params(day04))
def test_mistake_rejected(check_fn, mistake, capsys):
    rejects(capsys, check_fn, mistake)


def test_every_exercise_has_three_mistakes():
    for fn in (day04.check_shift, day04.check_get_batch, day04.check_window_dataset, day04.check_write_tokens):
        assert len(fn.mistakes) >= 3


# ---- exercise 1 -----------------------------------------------------------------------------
def test_shift_passes(capsys):
    chunk = torch.arange(10, 19)
    assert day04.check_shift(chunk[:-1], chunk[1:], chunk)
    assert "passed" in one_line(capsys)
    data = torch.tensor([5, 3, 9, 3, 1, 0, 7, 7, 2], dtype=torch.long)  # repeated ids
    assert day04.check_shift(data[:-1], data[1:], data)
    assert "passed" in one_line(capsys)


def test_shift_keeps_the_chunks_dtype(capsys):
    """Slices of a uint16 or int32 chunk keep its dtype and pass; converted ones are named."""
    for dtype in (torch.uint16, torch.int32):
        chunk = torch.tensor([5, 3, 9, 1, 2], dtype=dtype)
        assert day04.check_shift(chunk[:-1], chunk[1:], chunk)
        assert "passed" in one_line(capsys)
    chunk = torch.tensor([5, 3, 9, 1, 2], dtype=torch.int32)
    assert not day04.check_shift(chunk[:-1].long(), chunk[1:].long(), chunk)
    assert "tensor of chunk's dtype (int32), got int64" in one_line(capsys)


def test_shift_stub(capsys):
    chunk = torch.arange(9)
    assert not day04.check_shift(None, None, chunk)
    assert "not done yet" in one_line(capsys)


# ---- exercise 2 -----------------------------------------------------------------------------
@pytest.mark.parametrize("solution", [my_get_batch, vectorised_get_batch])
def test_get_batch_passes(solution, capsys):
    passes(capsys, day04.check_get_batch, solution)


def test_get_batch_refuses_the_package_reference(capsys):
    fails(capsys, day04.check_get_batch, get_batch, "the course's own reference")
    fails(capsys, day04.check_get_batch, day04._get_batch, "the course's own reference")


def test_get_batch_not_done(capsys):
    fails(capsys, day04.check_get_batch, stub, "not done yet")


def test_get_batch_without_long_fails_on_uint16_memmap(capsys):
    def no_long(data, batch_size, block_size, generator=None):
        ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
        x = torch.stack([data[i : i + block_size] for i in ix])
        y = torch.stack([data[i + 1 : i + 1 + block_size] for i in ix])
        return x, y

    assert bool(day04.check_get_batch(no_long)) is False
    line = one_line(capsys)
    assert "uint16" in line and "x.long(), y.long()" in line and "memory-mapped" in line


def test_get_batch_int32_without_long(capsys):
    def long_only_for_uint16(data, batch_size, block_size, generator=None):
        x, y = my_get_batch(data, batch_size, block_size, generator)
        return (x, y) if data.dtype == torch.uint16 else (x.to(data.dtype), y.to(data.dtype))

    assert bool(day04.check_get_batch(long_only_for_uint16)) is False
    line = one_line(capsys)
    assert "int32" in line and "x.long(), y.long()" in line


def test_get_batch_arithmetic_on_uint16_is_not_not_done(capsys):
    """torch's NotImplementedError for a uint16 kernel is not the stub's."""

    def gather_then_add(data, batch_size, block_size, generator=None):
        ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
        x = torch.stack([data[i : i + block_size] for i in ix])
        return x, x + 1

    assert bool(day04.check_get_batch(gather_then_add)) is False
    line = one_line(capsys)
    assert "not done yet" not in line and ".long()" in line and "uint16" in line


def test_get_batch_crash_shows_input(capsys):
    def crash(data, batch_size, block_size, generator=None):
        raise TypeError("oops")

    assert bool(day04.check_get_batch(crash)) is False
    assert "your code raised TypeError: oops on get_batch(data, batch_size=8, block_size=5)" in one_line(capsys)


@pytest.mark.parametrize("odd", [None, 3, (1, 2), [torch.zeros(2, 2)]])
def test_get_batch_odd_returns(odd, capsys):
    assert bool(day04.check_get_batch(lambda *a, **k: odd)) is False
    assert one_line(capsys).startswith("❌")


# ---- exercise 3 -----------------------------------------------------------------------------
@pytest.mark.parametrize("solution", [WindowDataset, LongWindows, ListLikeNegative])
def test_window_dataset_passes(solution, capsys):
    passes(capsys, day04.check_window_dataset, solution)


def test_window_dataset_refuses_the_package_reference(capsys):
    fails(capsys, day04.check_window_dataset, TokenDataset, "the course's own reference")


def test_window_dataset_not_done(capsys):
    class Stub(WindowDataset):
        def __len__(self):
            raise NotImplementedError

    fails(capsys, day04.check_window_dataset, Stub, "not done yet")


def test_window_dataset_count_by_hand():
    # N = 20, T = 4, stride = 4: 15 // 4 + 1 = 4 windows at 0, 4, 8, 12 (the lesson's example)
    ds = WindowDataset(torch.arange(20), 4)
    assert len(ds) == 4 and ds[3][0].tolist() == [12, 13, 14, 15] and ds[3][1].tolist() == [13, 14, 15, 16]
    assert len(WindowDataset(torch.arange(10), 10)) == 0


# ---- exercise 4 -----------------------------------------------------------------------------
def test_write_tokens_passes(capsys):
    passes(capsys, day04.check_write_tokens, write_tokens)


def test_write_tokens_in_other_styles_passes(capsys):
    def from_a_list(ids, path):  # plain Python checks, a dtype class returned, bytes written by hand
        ids = [int(i) for i in ids]
        if any(i < 0 for i in ids):
            raise ValueError("negative id")
        dtype = np.uint16 if max(ids, default=0) <= 65_535 else np.uint32
        with open(path, "wb") as f:
            f.write(np.array(ids, dtype=dtype).tobytes())
        return dtype

    passes(capsys, day04.check_write_tokens, from_a_list)


def test_write_tokens_not_done(capsys):
    fails(capsys, day04.check_write_tokens, stub, "not done yet")


def test_write_tokens_np_save_names_the_npy_suffix(capsys):
    rejects(capsys, day04.check_write_tokens, next(m for m in day04.WRITE_TOKENS if m.name == "np.save(path)"))
    capsys.readouterr()
    day04.check_write_tokens(day04._wt_np_save)
    assert "case0.bin.npy" in one_line(capsys)


def test_write_tokens_refuses_the_checks_reference(capsys):
    fails(capsys, day04.check_write_tokens, day04._write, "the course's own reference")


def test_window_dataset_half_done_names_getitem(capsys):
    class LenOnly(WindowDataset):
        def __getitem__(self, k):
            raise NotImplementedError

    assert bool(day04.check_window_dataset(LenOnly)) is False
    line = one_line(capsys)
    assert line.startswith("⏳") and "__getitem__ is not done yet" in line


def test_write_tokens_deleting_the_users_file_is_named(capsys):
    # The refused call deletes the file first; the check must say so, not report its own
    # FileNotFoundError when it reads the file back.
    def deletes_first(ids, path):
        import os
        if os.path.exists(path):
            os.remove(path)
        arr = np.asarray(ids, dtype=np.int64)
        if arr.size and arr.min() < 0:
            raise ValueError("negative id")
        arr.astype(np.uint16 if arr.size == 0 or arr.max() < 2**16 else np.uint32).tofile(path)
        return np.dtype(np.uint16 if arr.size == 0 or arr.max() < 2**16 else np.uint32)

    assert not day04.check_write_tokens(deletes_first)
    line = one_line(capsys)
    assert "FileNotFoundError" not in line, line
    assert "deleted the file the user already had" in line and "check the ids first" in line, line


def test_write_tokens_truncating_the_users_file_is_named(capsys):
    def truncates_first(ids, path):
        with open(path, "wb") as f:
            arr = np.asarray(ids, dtype=np.int64)
            if arr.size and arr.min() < 0:
                raise ValueError("negative id")
            dtype = np.uint16 if arr.size == 0 or arr.max() < 2**16 else np.uint32
            arr.astype(dtype).tofile(f)
        return np.dtype(dtype)

    assert not day04.check_write_tokens(truncates_first)
    assert "emptied the file the user already had" in one_line(capsys)
