"""Checks for day 04, "Datasets and batches".

Each ``check_*`` function runs the learner's code (or inspects the values they built), prints
one line - a pass, a specific hint, or "not done yet" - and returns ``True`` on a pass. None of
them raises, so a check cell never stops a notebook.

Example (in the lesson)::

    >>> import torch
    >>> from llmcourse.checks import day04
    >>> chunk = torch.arange(9)
    >>> day04.check_shift(chunk[:-1], chunk[1:], chunk)
    ✅ shift by one: passed
    True
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from llmcourse.checks._core import CheckFailed, assert_equal, assert_shape, check, require

__all__ = ["check_shift", "check_get_batch", "check_window_dataset", "check_write_tokens"]


def _as_list(value: Any, name: str) -> list[int]:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().flatten().tolist() if value.ndim == 1 else value.tolist()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return list(value)
    raise CheckFailed(f"{name} should be a tensor, got {type(value).__name__}")


@check("shift by one")
def check_shift(x: Any, y: Any, chunk: Any) -> None:
    """Exercise 1: ``x = chunk[:-1]`` and ``y = chunk[1:]``."""
    require(x, "x")
    require(y, "y")
    xs, ys, cs = _as_list(x, "x"), _as_list(y, "y"), _as_list(chunk, "chunk")
    n = len(cs) - 1
    if xs == cs[1:] and ys == cs[:-1]:
        raise CheckFailed("x and y are swapped: x is the input (the first T tokens), y the targets "
                          "(the same tokens one step later)")
    if xs == ys:
        raise CheckFailed("x and y are equal: y must be x shifted by one token, y[t] == chunk[t + 1]")
    if len(xs) != n or len(ys) != n:
        raise CheckFailed(f"x and y should each have T = len(chunk) - 1 = {n} tokens, got "
                          f"{len(xs)} and {len(ys)}: drop the last token for x, the first for y")
    assert_equal(xs, cs[:-1], "x (the first T tokens of chunk)")
    assert_equal(ys, cs[1:], "y (chunk shifted by one)")


def _call_batch(fn: Callable[..., Any], data: torch.Tensor, b: int, t: int,
                g: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        out = fn(data, b, t, generator=g)
    except (NotImplementedError, AssertionError):
        raise
    except (RuntimeError, IndexError) as exc:  # a too-large offset makes a short window
        raise CheckFailed(
            f"on data of length {len(data)} with block_size {t} your get_batch raised "
            f"{type(exc).__name__}: {exc}. Offsets up to len(data) - block_size are one too "
            "many: the window of y runs past the end. Draw them with "
            "torch.randint(len(data) - block_size, ...)"
        ) from exc
    if out is None:
        raise CheckFailed("get_batch returned None; did you forget `return x, y`?")
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise CheckFailed(f"get_batch should return a pair (x, y), got {type(out).__name__}")
    x, y = out
    for name, v in (("x", x), ("y", y)):
        if not isinstance(v, torch.Tensor):
            raise CheckFailed(f"{name} should be a torch tensor, got {type(v).__name__}; "
                              "use torch.stack on the windows")
    return x, y


@check("get_batch", hint="offsets must stay in 0 .. len(data) - block_size - 1 so that y fits")
def check_get_batch(get_batch: Callable[..., Any]) -> None:
    """Exercise 2: random-offset batches of shape ``(B, T)``, ``y`` shifted by one."""
    data = torch.arange(50)
    x, y = _call_batch(get_batch, data, 8, 5, torch.Generator().manual_seed(0))
    assert_shape(x, (8, 5), "x")
    assert_shape(y, (8, 5), "y")
    if x.dtype != torch.long or y.dtype != torch.long:
        raise CheckFailed(f"x and y should be torch.long (int64), got {x.dtype} and {y.dtype}; "
                          "embedding layers and cross_entropy need int64 ids (use .long())")
    if torch.equal(x, y):
        raise CheckFailed("y equals x: y must be the window one token later, data[i+1 : i+T+1]")
    if not bool((x[:, 1:] - x[:, :-1] == 1).all()):
        raise CheckFailed("the rows of x are not runs of consecutive tokens of data (on data = "
                          "0, 1, 2, ... each row should count up by one): slice data[i : i + T]")
    if torch.equal(y, x - 1):
        raise CheckFailed("y is shifted the wrong way: y should be data[i + 1 : i + T + 1]")
    if not torch.equal(y, x + 1):
        raise CheckFailed("y is not x shifted by one token: for each row use the same offset i, "
                          "x = data[i : i + T], y = data[i + 1 : i + T + 1]")

    # Every offset 0 .. N - T - 1 must be possible, and none beyond.
    small = torch.arange(12)
    g = torch.Generator().manual_seed(1)
    starts: set[int] = set()
    for _ in range(40):
        xs, ys = _call_batch(get_batch, small, 16, 4, g)
        if int(ys.max()) > 11:
            raise CheckFailed("y reads past the end of data")
        starts.update(xs[:, 0].tolist())
    if max(starts) < 7:
        raise CheckFailed(
            f"on data of length 12 with block_size 4 the offsets never reached 7 = len(data) - "
            f"block_size - 1 (largest seen: {max(starts)}): torch.randint's upper bound is "
            "exclusive, so draw from torch.randint(len(data) - block_size, ...)"
        )
    if min(starts) > 0:
        raise CheckFailed("offset 0 is never drawn: the first window of the data must be possible")

    # Reproducible with a generator.
    a, _ = _call_batch(get_batch, data, 8, 5, torch.Generator().manual_seed(123))
    b, _ = _call_batch(get_batch, data, 8, 5, torch.Generator().manual_seed(123))
    if not torch.equal(a, b):
        raise CheckFailed("two calls with generators of the same seed gave different batches: pass "
                          "generator=generator to torch.randint")


@check("WindowDataset")
def check_window_dataset(dataset_cls: Any) -> None:
    """Exercise 3: a map-style dataset of windows starting at ``k * stride``."""
    data = torch.arange(20)
    for block, stride in ((4, None), (4, 1), (4, 3), (5, 5)):
        ds = dataset_cls(data, block) if stride is None else dataset_cls(data, block, stride)
        s = block if stride is None else stride
        expected = (20 - block - 1) // s + 1
        n = len(ds)
        label = f"len(WindowDataset(arange(20), block_size={block}, stride={s}))"
        if n == expected + 1:
            raise CheckFailed(f"{label} is {n}, one too many: the last window also needs its target, "
                              f"so it must end by index len(data) - 1 (use len(data) - T - 1)")
        if n == expected - 1:
            raise CheckFailed(f"{label} is {n}, one too few: the window starting at "
                              f"{(expected - 1) * s} still fits with its target")
        assert_equal(n, expected, label)
        for k in (0, expected - 1):
            item = ds[k]
            if not isinstance(item, (tuple, list)) or len(item) != 2:
                raise CheckFailed(f"ds[{k}] should be a pair (x, y), got {type(item).__name__}")
            x, y = item
            start = k * s
            assert_equal(_as_list(x, "x"), list(range(start, start + block)),
                         f"x of window {k} (block_size={block}, stride={s})")
            assert_equal(_as_list(y, "y"), list(range(start + 1, start + block + 1)),
                         f"y of window {k} (block_size={block}, stride={s})")
    ds = dataset_cls(data, 4)
    try:
        ds[len(ds)]
    except IndexError:
        pass
    else:
        raise CheckFailed(f"ds[len(ds)] (= ds[{len(ds)}]) should raise IndexError; a for loop over "
                          "the dataset stops only on IndexError")
    loader = torch.utils.data.DataLoader(ds, batch_size=2)
    xb, yb = next(iter(loader))
    assert_shape(xb, (2, 4), "a DataLoader batch of x")


@check("write_tokens")
def check_write_tokens(write_tokens: Callable[[Any, Any], Any]) -> None:
    """Exercise 4: raw ``uint16`` ids when they fit, ``uint32`` otherwise; negative ids rejected."""
    cases = [
        ([0, 5, 64, 65_535], np.uint16, "ids up to 65,535"),
        ([0, 65_536, 100_276], np.uint32, "ids above 65,535"),
        (np.array([3, 1, 4, 1, 5], dtype=np.int64), np.uint16, "a numpy array of small ids"),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for i, (ids, dtype, what) in enumerate(cases):
            path = Path(tmp) / f"case{i}.bin"
            got = write_tokens(ids, path)
            if got is None:
                raise CheckFailed("write_tokens returned None; return the dtype you used")
            try:
                got_dtype = np.dtype(got)
            except TypeError as exc:
                raise CheckFailed(f"write_tokens should return a NumPy dtype, got {got!r}") from exc
            want = np.dtype(dtype)
            if got_dtype != want:
                extra = (" (65,535 is the largest value a uint16 holds, so it still fits)"
                         if want == np.uint16 and max(list(ids)) == 65_535 else "")
                raise CheckFailed(f"for {what} the dtype should be {want}, got {got_dtype}{extra}")
            if not path.is_file():
                raise CheckFailed(f"write_tokens did not create the file {path.name}")
            size = path.stat().st_size
            n = len(list(ids))
            if size != n * want.itemsize:
                raise CheckFailed(
                    f"for {what} the file holds {size} bytes, expected {n} ids x {want.itemsize} "
                    f"bytes = {n * want.itemsize}: write the raw ids with array.astype(dtype)."
                    "tofile(path) (np.save adds a header)"
                )
            back = np.fromfile(path, dtype=want).tolist()
            assert_equal(back, [int(v) for v in ids], f"the ids read back for {what}")
        try:
            write_tokens([4, -1, 2], Path(tmp) / "negative.bin")
        except ValueError:
            pass
        else:
            raise CheckFailed("write_tokens([4, -1, 2], path) should raise ValueError: a negative id "
                              "would wrap around to 65,535 in uint16 without any error")
