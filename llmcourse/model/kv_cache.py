"""A key/value cache for fast autoregressive decoding.

Without a cache, producing token ``t+1`` re-runs the model over all ``t`` previous tokens, so
generating ``n`` tokens costs O(n^2) token-forwards. The keys and values of past positions never
change (attention is causal), so they can be stored once and reused: each new token then only
computes its own query, key and value and attends over the stored ones.

The cache holds one preallocated key tensor and one value tensor per layer, each of shape
``(batch_size, n_kv_head, max_len, head_size)``, and an integer ``pos``: how many positions are
filled. :meth:`GPT.forward(idx_chunk, kv_cache=cache) <llmcourse.model.GPT.forward>` runs the
chunk at positions ``pos .. pos + T - 1``, writes its keys/values into the cache (attention
layers call :meth:`KVCache.update`) and advances ``pos`` by ``T`` at the end. With rotary
embeddings the stored keys are already rotated for their own positions, so nothing needs
recomputing later.

Example:
    >>> import torch
    >>> from llmcourse.model import GPT, GPTConfig
    >>> model = GPT(GPTConfig(vocab_size=11, block_size=16, n_layer=2, n_head=2, n_embd=8)).eval()
    >>> idx = torch.randint(0, 11, (1, 6))
    >>> cache = model.new_kv_cache(batch_size=1)
    >>> _ = model(idx[:, :5], kv_cache=cache)        # prefill 5 positions
    >>> logits, _ = model(idx[:, 5:], kv_cache=cache)  # decode position 5
    >>> cache.pos
    6
    >>> full, _ = model(idx)
    >>> torch.allclose(logits[:, -1], full[:, -1], atol=1e-5)
    True
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from llmcourse.fields import check_field


class KVCache:
    """Preallocated per-layer key/value storage.

    Args:
        n_layer: number of attention layers.
        batch_size: number of sequences decoded side by side.
        n_kv_head: key/value heads per layer (``config.kv_heads``; fewer than the query heads
            with grouped-query attention, which is where GQA saves memory).
        max_len: capacity in positions; a forward that would pass it raises ``ValueError``.
        head_size: dimensions per head.
        device, dtype: where and how the tensors are stored.

    Attributes:
        pos: number of positions filled so far (the position of the next token).
        k, v: lists (one entry per layer) of tensors ``(batch_size, n_kv_head, max_len, head_size)``.
    """

    def __init__(
        self,
        n_layer: int,
        batch_size: int,
        n_kv_head: int,
        max_len: int,
        head_size: int,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        for name, value in (("n_layer", n_layer), ("batch_size", batch_size),
                            ("n_kv_head", n_kv_head), ("max_len", max_len),
                            ("head_size", head_size)):
            check_field(name, value, int, low=1, owner="KVCache", rule="a positive integer")
        self.n_layer = n_layer
        self.n_kv_head = n_kv_head
        self.max_len = max_len
        self.head_size = head_size
        shape = (batch_size, n_kv_head, max_len, head_size)
        dtype = dtype if dtype is not None else torch.get_default_dtype()
        self.k: list[torch.Tensor] = [torch.zeros(shape, device=device, dtype=dtype)
                                      for _ in range(n_layer)]
        self.v: list[torch.Tensor] = [torch.zeros(shape, device=device, dtype=dtype)
                                      for _ in range(n_layer)]
        self.pos = 0

    # ------------------------------------------------------------------ properties
    @property
    def batch_size(self) -> int:
        """Number of sequences (rows) the cache holds."""
        return self.k[0].shape[0]

    @property
    def device(self) -> torch.device:
        return self.k[0].device

    @property
    def dtype(self) -> torch.dtype:
        return self.k[0].dtype

    @property
    def remaining(self) -> int:
        """How many more positions fit before ``max_len``."""
        return self.max_len - self.pos

    @property
    def nbytes(self) -> int:
        """Memory held by the key and value tensors, in bytes."""
        return sum(t.numel() * t.element_size() for t in (*self.k, *self.v))

    def __repr__(self) -> str:
        return (f"KVCache(n_layer={self.n_layer}, batch_size={self.batch_size}, "
                f"n_kv_head={self.n_kv_head}, max_len={self.max_len}, head_size={self.head_size}, "
                f"pos={self.pos}, dtype={self.dtype}, device={self.device})")

    # ------------------------------------------------------------------ used by the model
    def check_room(self, batch_size: int, n_new: int) -> None:
        """Raise ``ValueError`` unless a chunk of ``n_new`` positions for ``batch_size`` rows fits."""
        if batch_size != self.batch_size:
            raise ValueError(
                f"the chunk has batch size {batch_size} but the KV cache holds {self.batch_size} "
                f"rows; make the cache with model.new_kv_cache(batch_size={batch_size}) or select "
                f"rows with cache.reorder(index)"
            )
        if self.pos + n_new > self.max_len:
            raise ValueError(
                f"KV cache overflow: it holds {self.pos} of {self.max_len} positions and the chunk "
                f"adds {n_new}. Crop the context to its last tokens, call cache.reset() and "
                f"prefill again (or make a cache with a larger max_len, up to block_size)"
            )

    def update(
        self, layer: int, k_new: torch.Tensor, v_new: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Store the new keys/values of ``layer`` at ``pos ..`` and return all filled ones.

        Args:
            layer: the layer index (0-based).
            k_new, v_new: ``(B, n_kv_head, T, head_size)`` for the current chunk.

        Returns:
            ``(k, v)`` of shape ``(B, n_kv_head, pos + T, head_size)``: views of the cache, or
            copies in the new keys' dtype when the cache has another (e.g. a float32 cache under
            bfloat16 autocast). ``pos`` itself is only advanced by :meth:`advance`, once every
            layer has been updated. The model has checked the room first (:meth:`check_room`).
        """
        end = self.pos + k_new.shape[2]
        self.k[layer][:, :, self.pos:end] = k_new
        self.v[layer][:, :, self.pos:end] = v_new
        k, v = self.k[layer][:, :, :end], self.v[layer][:, :, :end]
        if k.dtype != k_new.dtype:  # under autocast an fp32 cache meets bf16 queries
            k, v = k.to(k_new.dtype), v.to(v_new.dtype)
        return k, v

    def advance(self, n: int) -> None:
        """Mark ``n`` more positions as filled (called by the model after its last layer)."""
        self.pos += n

    # ------------------------------------------------------------------ used by generators
    def reset(self) -> None:
        """Empty the cache (``pos = 0``); the memory is kept and overwritten on the next use."""
        self.pos = 0

    def reorder(self, index: torch.Tensor | Sequence[int]) -> None:
        """Keep, duplicate or permute batch rows: row ``i`` becomes old row ``index[i]``.

        Beam search calls this after each step with the parent beam of every surviving
        hypothesis. The batch size becomes ``len(index)``, so ``reorder([0] * k)`` also
        expands a one-row prompt into ``k`` beams.
        """
        index = torch.as_tensor(index, dtype=torch.long, device=self.device)
        if index.ndim != 1 or index.numel() == 0:
            raise ValueError(f"reorder needs a non-empty 1-D index of rows, got shape {tuple(index.shape)}")
        if int(index.min()) < 0 or int(index.max()) >= self.batch_size:
            raise IndexError(
                f"reorder index values must be in [0, {self.batch_size}), got "
                f"min {int(index.min())}, max {int(index.max())}"
            )
        self.k = [t.index_select(0, index) for t in self.k]
        self.v = [t.index_select(0, index) for t in self.v]
