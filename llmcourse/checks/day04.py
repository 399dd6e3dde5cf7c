"""Checks for day 04, "Datasets and batches".

Each ``check_*`` function runs the learner's code (or inspects the values they built), prints
one line - a pass, a specific hint, or "not done yet" - and returns ``True`` on a pass. None of
them raises, so a check cell never stops a notebook.

Example (in the lesson)::

    >>> import torch
    >>> from llmcourse.checks import day04
    >>> chunk = torch.arange(9)
    >>> ok = day04.check_shift(chunk[:-1], chunk[1:], chunk)
    ✅ shift by one: passed
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from llmcourse.checks._core import (CheckFailed, as_list, as_pair, as_tensor, assert_dtype, assert_equal,
                                    assert_shape, call, check, require)

__all__ = ["check_shift", "check_get_batch", "check_window_dataset", "check_write_tokens"]


@check("shift by one")
def check_shift(x: Any, y: Any, chunk: Any) -> None:
    """Exercise 1: ``x = chunk[:-1]`` and ``y = chunk[1:]``."""
    require(x, "x")
    require(y, "y")
    xs, ys, cs = as_list(x, "x"), as_list(y, "y"), as_list(chunk, "chunk")
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
    shown = (f"get_batch(data, batch_size={b}, block_size={t}) with data of length {len(data)} and "
             f"dtype {str(data.dtype).replace('torch.', '')}")
    try:
        out = fn(data, b, t, generator=g)
    except NotImplementedError as exc:
        if "not implemented for" in str(exc):  # torch has no such kernel for this dtype
            raise CheckFailed(
                f"on {shown} your code raised NotImplementedError: {exc}. Token files are uint16, "
                "which supports little arithmetic in torch: slice the windows first, then convert "
                "them with .long()"
            ) from exc
        raise
    except AssertionError:
        raise
    except (RuntimeError, IndexError) as exc:  # a too-large offset makes a short window
        raise CheckFailed(
            f"on {shown} your code raised {type(exc).__name__}: {exc}. Offsets up to "
            "len(data) - block_size are one too many: the window of y runs past the end. Draw "
            "them with torch.randint(len(data) - block_size, ...)"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - turned into a verdict
        raise CheckFailed(f"your code raised {type(exc).__name__}: {exc} on {shown}") from exc
    x, y = as_pair(out, "get_batch")
    for name, v in (("x", x), ("y", y)):
        if not isinstance(v, torch.Tensor):
            raise CheckFailed(f"{name} should be a torch tensor, got {type(v).__name__}; "
                              "use torch.stack on the windows")
    return x, y


@check("get_batch", hint="offsets must stay in 0 .. len(data) - block_size - 1 so that y fits")
def check_get_batch(get_batch: Callable[..., Any]) -> None:
    """Exercise 2: random-offset batches of shape ``(B, T)``, ``y`` shifted by one.

    The data are ``uint16``, as a memory-mapped ``train.bin`` gives them (``torch.from_numpy``
    of the memmap), so a ``get_batch`` that forgets ``.long()`` fails here rather than in the
    embedding layer.
    """
    data = torch.from_numpy(np.arange(50, dtype=np.uint16))
    x, y = _call_batch(get_batch, data, 8, 5, torch.Generator().manual_seed(0))
    assert_shape(x, (8, 5), "x for batch_size=8, block_size=5")
    assert_shape(y, (8, 5), "y for batch_size=8, block_size=5")
    if x.dtype != torch.long or y.dtype != torch.long:
        raise CheckFailed(f"on uint16 data (what a token file holds) x and y should be torch.long "
                          f"(int64), got {str(x.dtype).replace('torch.', '')} and "
                          f"{str(y.dtype).replace('torch.', '')}; embedding layers and cross_entropy "
                          "need int64 ids: return x.long(), y.long()")
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
    small = torch.arange(12, dtype=torch.int32)
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
    data = torch.arange(50)
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
            x, y = as_pair(ds[k], f"ds[{k}]")
            start = k * s
            where = f"of window {k} (block_size={block}, stride={s})"
            as_tensor(x, f"x {where}", shape=(block,))
            as_tensor(y, f"y {where}", shape=(block,))
            assert_equal(as_list(x, "x"), list(range(start, start + block)), f"x {where}")
            assert_equal(as_list(y, "y"), list(range(start + 1, start + block + 1)), f"y {where}")
    ds = dataset_cls(data, 4)
    n = len(ds)
    for k, why in ((n, "a for loop over the dataset stops only on IndexError"),
                   (n + 3, "every k outside 0 .. len(ds) - 1 is out of range"),
                   (-1, "a negative k is outside 0 .. len(ds) - 1 too (or, like a Python list, "
                        "ds[-1] may be the last window); without the test, slicing with a "
                        "negative start quietly returns an empty or wrong window")):
        try:
            item = ds[k]
        except IndexError:
            continue
        if k < 0:  # reading a negative k from the end, as a Python list does, is fine too
            got, last = as_pair(item, f"ds[{k}]"), ds[n + k]
            if all(isinstance(t, torch.Tensor) and t.shape == u.shape and torch.equal(t, u)
                   for t, u in zip(got, last)):
                continue
        raise CheckFailed(f"ds[{k}] (len(ds) = {n}) should raise IndexError: {why}. Test "
                          "`if not 0 <= k < len(self): raise IndexError(...)`")
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
        (np.array([7, 70_000], dtype=np.uint32), np.uint32, "a uint32 numpy array"),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for i, (ids, dtype, what) in enumerate(cases):
            path = Path(tmp) / f"case{i}.bin"
            got = call(write_tokens, ids, path, shown=f"write_tokens({what}, path)")
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
                if path.with_name(path.name + ".npy").is_file():
                    raise CheckFailed(
                        f"write_tokens(ids, {path.name!r}) wrote {path.name}.npy instead: np.save "
                        "appends .npy to the name and writes a header before the ids. Write the "
                        "raw ids with array.astype(dtype).tofile(path)")
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
