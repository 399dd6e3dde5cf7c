"""A map-style torch ``Dataset`` of fixed-length next-token windows, and a DataLoader helper.

:func:`~llmcourse.data.get_batch` samples windows at random offsets (the usual way to train a
GPT); :class:`TokenDataset` instead enumerates them at a fixed ``stride``, which is what a
``DataLoader`` with epochs, shuffling and workers needs, and what a full pass for evaluation
needs.

Example:
    >>> import numpy as np
    >>> ds = TokenDataset(np.arange(10), block_size=4)           # stride defaults to block_size
    >>> len(ds)
    2
    >>> x, y = ds[1]
    >>> x.tolist(), y.tolist()
    ([4, 5, 6, 7], [5, 6, 7, 8])
    >>> len(TokenDataset(np.arange(10), block_size=4, stride=1))  # every offset 0..5
    6
"""

from __future__ import annotations

import mmap
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from llmcourse.data.batch import TokenData, as_token_array, check_positive_int, check_block_size

__all__ = ["TokenDataset", "make_dataloader"]


class TokenDataset(Dataset):
    """Windows ``(x, y)`` over a 1-D stream of token ids; item ``i`` starts at ``i * stride``.

    Args:
        data: 1-D token ids (``np.memmap``, numpy array, torch tensor or list).
        block_size: window length ``T``.
        stride: distance between the starts of consecutive windows; ``None`` means
            ``block_size`` (windows that tile the data without overlap). ``stride=1`` gives
            every possible window.

    Item ``i`` is ``(x, y)`` with ``x = data[s : s + T]`` and ``y = data[s + 1 : s + T + 1]``
    (``s = i * stride``), both int64 tensors of shape ``(T,)``. The number of items is
    ``(len(data) - T - 1) // stride + 1``: the last window must still have its target.

    A dataset over a whole ``np.memmap`` pickles as a reference to its file, so DataLoader
    worker processes reopen the file instead of receiving a copy of the data.
    """

    def __init__(self, data: TokenData, block_size: int, stride: int | None = None) -> None:
        self.block_size = check_positive_int(block_size, "block_size")
        self.stride = self.block_size if stride is None else check_positive_int(stride, "stride")
        self.data = as_token_array(data)
        check_block_size(len(self.data), self.block_size)

    def __len__(self) -> int:
        return (len(self.data) - self.block_size - 1) // self.stride + 1

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"TokenDataset index {index} out of range for {n} windows")
        if index < 0:
            index += n
        start = index * self.stride
        window = self.data[start : start + self.block_size + 1]  # (T + 1,)
        if isinstance(window, torch.Tensor):
            window = window.to(torch.int64)
        else:
            window = torch.from_numpy(np.asarray(window, dtype=np.int64))
        return window[:-1].clone(), window[1:].clone()  # (T,), (T,)

    def __repr__(self) -> str:
        return (
            f"TokenDataset(tokens={len(self.data):,}, block_size={self.block_size}, "
            f"stride={self.stride}, windows={len(self):,})"
        )

    # --- pickling: a whole-file memmap travels as (file, dtype, length) -------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        data = self.data
        if (
            isinstance(data, np.memmap)
            and data.filename is not None
            and isinstance(data.base, mmap.mmap)
        ):
            state["data"] = None
            state["_memmap_ref"] = (str(data.filename), data.dtype.str, int(data.offset), len(data))
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        ref = state.pop("_memmap_ref", None)
        self.__dict__.update(state)
        if ref is not None:
            filename, dtype, offset, length = ref
            self.data = np.memmap(filename, dtype=np.dtype(dtype), mode="r", offset=offset,
                                  shape=(length,))


def make_dataloader(
    data: TokenData,
    block_size: int,
    batch_size: int,
    *,
    stride: int | None = None,
    shuffle: bool = True,
    drop_last: bool = True,
    seed: int | None = None,
    num_workers: int = 0,
    pin_memory: bool | None = None,
    **kwargs: Any,
) -> DataLoader:
    """A ``DataLoader`` over :class:`TokenDataset` windows yielding ``(x, y)`` of shape ``(B, T)``.

    Args:
        data, block_size, stride: as for :class:`TokenDataset`.
        batch_size: windows per batch ``B``.
        shuffle: visit the windows in a random order each epoch.
        drop_last: drop a last, smaller batch (keeps every batch ``(B, T)``).
        seed: seed of the shuffling generator, for a reproducible order.
        num_workers: worker processes for loading.
        pin_memory: pin batches for fast copies to a GPU; default: when CUDA is available.
        **kwargs: passed on to ``torch.utils.data.DataLoader``.

    Example:
        >>> import numpy as np
        >>> loader = make_dataloader(np.arange(1000), block_size=8, batch_size=4, seed=0)
        >>> x, y = next(iter(loader))
        >>> tuple(x.shape), bool((y[:, :-1] == x[:, 1:]).all())
        ((4, 8), True)
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    dataset = TokenDataset(data, block_size, stride)
    if drop_last and len(dataset) < batch_size:
        raise ValueError(
            f"the data holds only {len(dataset)} windows of block_size={dataset.block_size} "
            f"(stride {dataset.stride}), fewer than batch_size={batch_size}, so with "
            "drop_last=True there would be no batch at all. Use a smaller batch_size or "
            "stride, or drop_last=False."
        )
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    if pin_memory is None:
        pin_memory = torch.cuda.is_available()
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        drop_last=drop_last,
        generator=generator,
        num_workers=num_workers,
        pin_memory=pin_memory,
        **kwargs,
    )
