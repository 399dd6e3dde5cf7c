"""Random-offset batches of next-token training pairs.

A language model learns to predict token ``t + 1`` from tokens ``0..t``. From one window of
``block_size + 1`` consecutive tokens we get ``block_size`` training examples at once:

    tokens:  [ 5, 9, 2, 7, 3 ]         block_size T = 4
    x:       [ 5, 9, 2, 7 ]
    y:       [ 9, 2, 7, 3 ]            y is x shifted left by one

:func:`get_batch` draws ``batch_size`` such windows at uniformly random offsets.

Example:
    >>> import numpy as np, torch
    >>> data = np.arange(100, dtype=np.uint16)
    >>> x, y = get_batch(data, batch_size=2, block_size=5, generator=torch.Generator().manual_seed(0))
    >>> x.shape, x.dtype
    (torch.Size([2, 5]), torch.int64)
    >>> bool((y[:, :-1] == x[:, 1:]).all()) and bool((y == x + 1).all())
    True
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Union

import numpy as np
import torch

__all__ = ["get_batch", "check_block_size", "TokenData", "as_token_array", "check_positive_int"]

#: What :func:`get_batch` and :class:`~llmcourse.data.TokenDataset` accept: a 1-D array of ids.
TokenData = Union[np.ndarray, torch.Tensor, Sequence[int]]


def as_token_array(data: TokenData, what: str = "data") -> np.ndarray | torch.Tensor:
    """Return ``data`` as a 1-D numpy array (memmaps stay memmaps) or a 1-D torch tensor."""
    if isinstance(data, torch.Tensor):
        arr: np.ndarray | torch.Tensor = data
    elif isinstance(data, np.ndarray):
        arr = data
    else:
        try:
            arr = np.asarray(data)
        except Exception as err:  # pragma: no cover - exotic inputs
            raise TypeError(
                f"{what} must be a 1-D array of token ids (numpy array, memmap, torch tensor or "
                f"list of ints), got {type(data).__name__}"
            ) from err
    if arr.ndim != 1:
        raise ValueError(
            f"{what} must be 1-D (one long stream of token ids), got shape {tuple(arr.shape)}. "
            "Flatten it first, e.g. data.reshape(-1)."
        )
    kind_ok = (
        not (arr.dtype.is_floating_point or arr.dtype.is_complex or arr.dtype == torch.bool)
        if isinstance(arr, torch.Tensor)
        else arr.dtype.kind in "iu"
    )
    if not kind_ok and len(arr) > 0:
        raise TypeError(
            f"{what} must hold integer token ids, got dtype {arr.dtype}. "
            "Convert it, e.g. data.astype(np.int64) or tensor.long()."
        )
    return arr


def check_positive_int(value: object, name: str) -> int:
    """``value`` as an int, refused unless it is a whole number >= 1 (``name`` in the error)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return int(value)


def check_block_size(n_tokens: int, block_size: int, what: str = "data") -> None:
    """Raise a helpful error unless ``n_tokens`` holds at least one ``(x, y)`` window.

    A window needs ``block_size + 1`` tokens (``block_size`` inputs plus the last target).
    """
    if n_tokens < block_size + 1:
        raise ValueError(
            f"block_size ({block_size}) must be smaller than the number of tokens in {what} "
            f"({n_tokens:,}): one (x, y) pair needs block_size + 1 = {block_size + 1:,} tokens. "
            f"Use block_size <= {max(n_tokens - 1, 0):,} or more data"
            + (" (is this split empty? check val_fraction)." if n_tokens == 0 else ".")
        )


def _check_window(window: torch.Tensor, offsets: torch.Tensor, vocab_size: int | None) -> None:
    """Refuse ids an embedding cannot look up, naming the id and where it is in ``data``."""
    lo, hi = (int(v) for v in torch.aminmax(window))
    if lo < 0 or (vocab_size is not None and hi >= vocab_size):
        bad = (window < 0) | (window >= (vocab_size if vocab_size is not None else hi + 1))
        b, t = (int(i) for i in bad.nonzero()[0])
        rule = f"[0, {vocab_size})" if vocab_size is not None else "non-negative"
        raise ValueError(
            f"get_batch: data holds token id {int(window[b, t])} at position "
            f"{int(offsets[b]) + t:,}, which is not a valid token id ({rule}); the data was "
            "made with another tokenizer or is damaged"
        )


def get_batch(
    data: TokenData,
    batch_size: int,
    block_size: int,
    device: str | torch.device = "cpu",
    generator: torch.Generator | None = None,
    *,
    vocab_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``batch_size`` random windows from ``data``: inputs ``x`` and targets ``y``.

    Args:
        data: 1-D token ids: a ``np.memmap`` of a prepared ``.bin`` file, a numpy array, a torch
            tensor or a list.
        batch_size: number of windows ``B``.
        block_size: window length ``T`` (the model's context length).
        device: where the tensors go. For CUDA the batch is copied from pinned memory with
            ``non_blocking=True``, so the copy overlaps with work already queued on the GPU.
        generator: a ``torch.Generator`` for reproducible offsets.
        vocab_size: when given, every id drawn must lie in ``[0, vocab_size)``. Negative ids
            (from a signed array) are refused in any case: an embedding cannot look them up.

    Returns:
        ``(x, y)``, both ``(B, T)`` int64 on ``device``, with ``y[b, t] == data[i_b + t + 1]``
        where ``x[b, t] == data[i_b + t]``.

    Offsets are uniform over ``0 .. len(data) - T - 1``, so every window lies inside ``data``.
    The gather is one vectorised fancy-index of ``offsets[:, None] + arange(T + 1)``: it reads
    only the ``B * (T + 1)`` tokens it needs from a memmap, never the whole file.
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    block_size = check_positive_int(block_size, "block_size")
    if isinstance(device, torch.Generator):
        raise TypeError(
            "get_batch's 4th positional argument is the device; pass the generator by keyword: "
            "get_batch(data, batch_size, block_size, generator=g)"
        )
    device = torch.device(device)
    arr = as_token_array(data)
    n = len(arr)
    check_block_size(n, block_size)

    # Offsets are drawn on the generator's device (a CUDA generator cannot fill a CPU tensor).
    gen_device = generator.device if generator is not None else torch.device("cpu")
    offsets = torch.randint(
        n - block_size, (batch_size,), generator=generator, device=gen_device
    ).cpu()  # (B,)

    if isinstance(arr, torch.Tensor):
        index = offsets.to(arr.device)[:, None] + torch.arange(block_size + 1, device=arr.device)
        window = arr[index].to(torch.int64)  # (B, T + 1)
        # Data already on an accelerator stays there; its ids are not checked (that would
        # wait for the device on every batch).
        if window.device.type != "cpu":
            x, y = window[:, :-1].contiguous(), window[:, 1:].contiguous()
            return x.to(device), y.to(device)
    else:
        index_np = offsets.numpy()[:, None] + np.arange(block_size + 1)  # (B, T + 1)
        window = torch.from_numpy(arr[index_np].astype(np.int64, copy=False))  # (B, T + 1)

    _check_window(window, offsets, vocab_size)
    if device.type == "cuda":
        # Copy straight into page-locked buffers so the host-to-device copies can run
        # asynchronously (the caching host allocator keeps them alive until the copies finish).
        shape = (batch_size, block_size)
        x = torch.empty(shape, dtype=torch.int64, pin_memory=True).copy_(window[:, :-1])
        y = torch.empty(shape, dtype=torch.int64, pin_memory=True).copy_(window[:, 1:])
        return x.to(device, non_blocking=True), y.to(device, non_blocking=True)
    x = window[:, :-1].contiguous()  # (B, T)
    y = window[:, 1:].contiguous()  # (B, T)
    if device.type != "cpu":
        x, y = x.to(device), y.to(device)
    return x, y
