"""Checks for day 05, "Embeddings and positions", and the reference sinusoidal table.

Each ``check_*`` function runs the learner's code (or inspects the value they built), prints
one line - a pass, a specific hint, or "not done yet" - and returns ``True`` on a pass. None of
them raises, so a check cell never stops a notebook.

:func:`sinusoidal_table` is the reference the lesson uses after its exercise 2, so that a learner
who skipped the exercise can run the rest of the notebook.

Example::

    >>> from llmcourse.checks import day05
    >>> day05.sinusoidal_table(2, 4)
    tensor([[0.0000, 1.0000, 0.0000, 1.0000],
            [0.8415, 0.5403, 0.0100, 0.9999]])
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn as nn

from llmcourse.model.layers import sinusoidal_table
from llmcourse.checks._core import (CheckFailed, as_tensor, assert_close, assert_shape, call, check, layer,
                                    require)

__all__ = ["sinusoidal_table", "check_one_hot_lookup", "check_sinusoidal", "check_embedding_module"]


# The reference is the package's own (llmcourse.model.layers.sinusoidal_table).


@check("one-hot lookup")
def check_one_hot_lookup(emb: Any, idx: torch.Tensor, W: torch.Tensor) -> None:
    """Exercise 1: ``emb = F.one_hot(idx, V).float() @ W`` equals ``W[idx]``."""
    require(emb, "emb")
    as_tensor(emb, "emb")
    V, C = W.shape
    if tuple(emb.shape) == (len(idx), V):
        raise CheckFailed(f"emb has shape {tuple(emb.shape)}: that is the one-hot matrix itself; "
                          "multiply it by W (one_hot @ W) to get (T, C)")
    assert_shape(emb, (len(idx), C), "emb")
    if not emb.is_floating_point():
        raise CheckFailed("emb holds integers: F.one_hot returns int64, convert it with .float() "
                          "before the product")
    assert_close(emb, W[idx], "emb (should equal W[idx])")


def _variants(T: int, C: int) -> dict[str, torch.Tensor]:
    """Tables produced by common mistakes, with the hint for each."""
    ref = sinusoidal_table(T, C)
    pos = torch.arange(T, dtype=torch.float64)[:, None]
    i = torch.arange(0, C, 2, dtype=torch.float64)
    half = torch.cat([torch.sin(pos * 10000.0 ** (-i / C)), torch.cos(pos * 10000.0 ** (-i / C))], 1)
    wrong_exp = torch.empty(T, C, dtype=torch.float64)
    f2 = 10000.0 ** (-(i / 2) / C)           # i/C instead of 2i/C
    wrong_exp[:, 0::2], wrong_exp[:, 1::2] = torch.sin(pos * f2), torch.cos(pos * f2)
    swapped = torch.empty(T, C)
    swapped[:, 0::2], swapped[:, 1::2] = ref[:, 1::2], ref[:, 0::2]
    return {
        "sines and cosines are swapped: sin goes into the even columns 0, 2, 4, ..., cos into "
        "the odd ones": swapped,
        "the sines fill the first half of the columns and the cosines the second; interleave "
        "them instead: pe[:, 0::2] = sin, pe[:, 1::2] = cos": half.float(),
        "the frequencies are off: column pair i uses 1 / 10000**(2i / C), where 2i is the even "
        "column index (torch.arange(0, C, 2))": wrong_exp.float(),
        "positions should start at 0, not 1: use torch.arange(T)": sinusoidal_table(T + 1, C)[1:],
    }


@check("sinusoidal positions")
def check_sinusoidal(sinusoidal_positions: Callable[[int, int], Any]) -> None:
    """Exercise 2: the ``(T, C)`` sinusoidal table, sin in even columns, cos in odd ones."""
    for T, C in ((10, 8), (50, 16), (3, 2)):
        shown = f"sinusoidal_positions({T}, {C})"
        got = as_tensor(call(sinusoidal_positions, T, C, shown=shown), shown, shape=(T, C))
        if not got.is_floating_point():
            raise CheckFailed(f"the table has dtype {got.dtype}; it should hold floats (float32)")
        ref = sinusoidal_table(T, C)
        if torch.allclose(got.double(), ref.double(), atol=1e-5):
            continue
        for hint, table in _variants(T, C).items():
            if torch.allclose(got.double(), table.double(), atol=1e-5):
                raise CheckFailed(hint)
        assert_close(got, ref, f"sinusoidal_positions({T}, {C})", atol=1e-5)
    try:
        sinusoidal_positions(4, 7)
    except ValueError:
        return
    raise CheckFailed("sinusoidal_positions(4, 7) should raise ValueError: with an odd C the last "
                      "sine has no cosine partner")


@check("TokenAndPositionEmbedding")
def check_embedding_module(module_cls: Any) -> None:
    """Exercise 3: ``wte(idx) + wpe(arange(T))``, std 0.02 tables, ValueError past block_size."""
    torch.manual_seed(0)
    m = module_cls(100, 16, 32)
    for name, shape in (("wte", (100, 32)), ("wpe", (16, 32))):
        if getattr(m, name, None) is None:
            raise NotImplementedError(f"self.{name} is missing")
        layer(m, name, nn.Embedding, shape=shape, owner="TokenAndPositionEmbedding(100, 16, 32)")
    big = module_cls(2000, 64, 64)
    for name in ("wte", "wpe"):
        std = getattr(big, name).weight.detach().std().item()
        if abs(std - 1.0) < 0.1:
            raise CheckFailed(f"self.{name} has the default initialisation (std {std:.2f}); "
                              "re-initialise it with nn.init.normal_(weight, mean=0.0, std=0.02)")
        if abs(std - 0.02) > 0.003:
            raise CheckFailed(f"self.{name}.weight has std {std:.4f}, expected 0.02: use "
                              "nn.init.normal_(weight, mean=0.0, std=0.02)")
    idx = torch.randint(100, (2, 10))
    out = as_tensor(call(m, idx, shown="forward(idx) for idx of shape (2, 10)"), "forward(idx)")
    assert_shape(out, (2, 10, 32), "forward(idx) for idx of shape (2, 10)")
    tok_only = m.wte(idx)
    if torch.allclose(out, tok_only):
        raise CheckFailed("the output equals the token vectors alone: add the position vectors "
                          "self.wpe(torch.arange(T))")
    expected = tok_only + m.wpe(torch.arange(10))
    assert_close(out, expected, "forward(idx) (should be wte(idx) + wpe(arange(T)))")
    try:
        m(torch.randint(100, (1, 17)))
    except ValueError:
        pass
    except IndexError as exc:
        raise CheckFailed("for T > block_size the lookup fails with IndexError from deep inside "
                          "nn.Embedding; check T first and raise a ValueError that says to crop "
                          "the input to its last block_size tokens") from exc
    else:
        raise CheckFailed("forward on a sequence longer than block_size (17 > 16) should raise "
                          "ValueError")
