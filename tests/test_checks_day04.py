"""The day-04 checks pass the solutions, catch plausible mistakes, and say "not done yet" for stubs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llmcourse.checks import day04


def _last_line(capsys: pytest.CaptureFixture[str]) -> str:
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out  # a check prints exactly one line
    return out[0]


def _stub(*args, **kwargs):
    raise NotImplementedError


# ---- reference solutions (what the lesson's solution cells contain) ------------------------


def good_get_batch(data, batch_size, block_size, generator=None):
    ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    x = torch.stack([data[i : i + block_size] for i in ix])
    y = torch.stack([data[i + 1 : i + 1 + block_size] for i in ix])
    return x.long(), y.long()


class GoodWindows(torch.utils.data.Dataset):
    def __init__(self, data, block_size, stride=None):
        self.data, self.block_size = data, block_size
        self.stride = block_size if stride is None else stride

    def __len__(self):
        return (len(self.data) - self.block_size - 1) // self.stride + 1

    def __getitem__(self, k):
        if not 0 <= k < len(self):
            raise IndexError(k)
        i = k * self.stride
        return self.data[i : i + self.block_size], self.data[i + 1 : i + 1 + self.block_size]


def good_write_tokens(ids, path):
    arr = np.asarray(ids, dtype=np.int64)
    if arr.size and arr.min() < 0:
        raise ValueError("negative id")
    dtype = np.uint16 if arr.size == 0 or arr.max() < 2**16 else np.uint32
    arr.astype(dtype).tofile(path)
    return np.dtype(dtype)


# ---- exercise 1: shift ----------------------------------------------------------------------


def test_shift(capsys):
    chunk = torch.arange(10, 19)
    assert day04.check_shift(chunk[:-1], chunk[1:], chunk)
    assert "passed" in _last_line(capsys)
    assert not day04.check_shift(chunk[1:], chunk[:-1], chunk)
    assert "swapped" in _last_line(capsys)
    assert not day04.check_shift(chunk[:-1], chunk[:-1], chunk)
    assert "equal" in _last_line(capsys)
    assert not day04.check_shift(chunk, chunk[1:], chunk)
    assert "T = len(chunk) - 1" in _last_line(capsys)
    assert not day04.check_shift(None, None, chunk)
    assert "not done yet" in _last_line(capsys)


# ---- exercise 2: get_batch ------------------------------------------------------------------


def test_get_batch_passes_solution_and_package(capsys):
    assert day04.check_get_batch(good_get_batch)
    assert "passed" in _last_line(capsys)
    from llmcourse.data import get_batch

    assert day04.check_get_batch(get_batch)
    assert "passed" in _last_line(capsys)


def test_get_batch_not_done(capsys):
    assert not day04.check_get_batch(_stub)
    assert "not done yet" in _last_line(capsys)


def test_get_batch_too_many_offsets(capsys):
    def off_by_one(data, batch_size, block_size, generator=None):
        ix = torch.randint(len(data) - block_size + 1, (batch_size,), generator=generator)
        x = torch.stack([data[i : i + block_size] for i in ix])
        y = torch.stack([data[i + 1 : i + 1 + block_size] for i in ix])
        return x, y

    assert not day04.check_get_batch(off_by_one)
    assert "torch.randint(len(data) - block_size" in _last_line(capsys)


def test_get_batch_too_few_offsets(capsys):
    def never_last(data, batch_size, block_size, generator=None):
        return good_get_batch(data[:-1], batch_size, block_size, generator)

    assert not day04.check_get_batch(never_last)
    assert "never reached 7" in _last_line(capsys)


def test_get_batch_no_shift_and_no_generator(capsys):
    def no_shift(data, batch_size, block_size, generator=None):
        x, _ = good_get_batch(data, batch_size, block_size, generator)
        return x, x

    assert not day04.check_get_batch(no_shift)
    assert "y equals x" in _last_line(capsys)

    def ignores_generator(data, batch_size, block_size, generator=None):
        return good_get_batch(data, batch_size, block_size, None)

    assert not day04.check_get_batch(ignores_generator)
    assert "generator" in _last_line(capsys)


# ---- exercise 3: WindowDataset ---------------------------------------------------------------


def test_window_dataset(capsys):
    assert day04.check_window_dataset(GoodWindows)
    assert "passed" in _last_line(capsys)
    from llmcourse.data import TokenDataset

    assert day04.check_window_dataset(TokenDataset)
    assert "passed" in _last_line(capsys)


def test_window_dataset_off_by_one_length(capsys):
    class TooMany(GoodWindows):
        def __len__(self):
            return (len(self.data) - self.block_size) // self.stride + 1

    assert not day04.check_window_dataset(TooMany)
    assert "one too many" in _last_line(capsys)


def test_window_dataset_not_done(capsys):
    class Stub(GoodWindows):
        def __len__(self):
            raise NotImplementedError

    assert not day04.check_window_dataset(Stub)
    assert "not done yet" in _last_line(capsys)


# ---- exercise 4: write_tokens -----------------------------------------------------------------


def test_write_tokens(capsys):
    assert day04.check_write_tokens(good_write_tokens)
    assert "passed" in _last_line(capsys)
    assert not day04.check_write_tokens(_stub)
    assert "not done yet" in _last_line(capsys)


def test_write_tokens_mistakes(capsys):
    def always_uint16(ids, path):
        np.asarray(ids).astype(np.uint16).tofile(path)
        return np.dtype(np.uint16)

    assert not day04.check_write_tokens(always_uint16)
    assert "should be uint32" in _last_line(capsys)

    def strict_boundary(ids, path):
        arr = np.asarray(ids, dtype=np.int64)
        dtype = np.uint16 if arr.max() < 65_535 else np.uint32
        arr.astype(dtype).tofile(path)
        return np.dtype(dtype)

    assert not day04.check_write_tokens(strict_boundary)
    assert "65,535 is the largest" in _last_line(capsys)

    def with_header(ids, path):
        arr = np.asarray(ids, dtype=np.int64)
        dtype = np.uint16 if arr.max() < 2**16 else np.uint32
        with open(path, "wb") as f:
            np.save(f, arr.astype(dtype))
        return np.dtype(dtype)

    assert not day04.check_write_tokens(with_header)
    assert "np.save adds a header" in _last_line(capsys)

    def accepts_negative(ids, path):
        arr = np.asarray(ids, dtype=np.int64)
        dtype = np.uint16 if arr.max() < 2**16 else np.uint32
        arr.astype(dtype).tofile(path)
        return np.dtype(dtype)

    assert not day04.check_write_tokens(accepts_negative)
    assert "ValueError" in _last_line(capsys)


# ---- holes found by a learner's walk-through (issue 11) ------------------------------------


def test_get_batch_without_long(capsys):
    """Forgetting .long(): the check feeds uint16 data, as a token file gives."""

    def no_long(data, batch_size, block_size, generator=None):
        ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
        x = torch.stack([data[i : i + block_size] for i in ix])
        y = torch.stack([data[i + 1 : i + 1 + block_size] for i in ix])
        return x, y

    assert bool(day04.check_get_batch(no_long)) is False
    out = _last_line(capsys)
    assert "uint16" in out and "x.long(), y.long()" in out


def test_get_batch_arithmetic_on_uint16_is_not_not_done(capsys):
    """torch's NotImplementedError for a uint16 kernel is not the stub's."""

    def gather_then_add(data, batch_size, block_size, generator=None):
        ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
        x = torch.stack([data[i : i + block_size] for i in ix])
        return x, x + 1

    assert bool(day04.check_get_batch(gather_then_add)) is False
    out = _last_line(capsys)
    assert "not done yet" not in out and ".long()" in out and "uint16" in out


def test_get_batch_crash_shows_input(capsys):
    def crash(data, batch_size, block_size, generator=None):
        raise TypeError("oops")

    assert bool(day04.check_get_batch(crash)) is False
    out = _last_line(capsys)
    assert "your code raised TypeError: oops on get_batch(data, batch_size=8, block_size=5)" in out


def test_window_dataset_negative_index_must_raise(capsys):
    class NoNegativeCheck(GoodWindows):
        def __getitem__(self, k):
            if k >= len(self):
                raise IndexError(k)
            i = k * self.stride
            return self.data[i : i + self.block_size], self.data[i + 1 : i + 1 + self.block_size]

    assert bool(day04.check_window_dataset(NoNegativeCheck)) is False
    out = _last_line(capsys)
    assert "ds[-1]" in out and "IndexError" in out and "negative" in out


def test_window_dataset_lists_get_a_tensor_hint(capsys):
    class Lists(GoodWindows):
        def __getitem__(self, k):
            x, y = super().__getitem__(k)
            return x.tolist(), y.tolist()

    assert bool(day04.check_window_dataset(Lists)) is False
    out = _last_line(capsys)
    assert "should be a torch tensor, got a list of 4 items" in out
    assert "transpose" not in out


def test_write_tokens_np_save_names_the_npy_suffix(capsys):
    def saves(ids, path):
        arr = np.asarray(ids, dtype=np.int64)
        dtype = np.uint16 if arr.max() < 2**16 else np.uint32
        np.save(path, arr.astype(dtype))
        return np.dtype(dtype)

    assert bool(day04.check_write_tokens(saves)) is False
    out = _last_line(capsys)
    assert "case0.bin.npy" in out and "appends .npy" in out
