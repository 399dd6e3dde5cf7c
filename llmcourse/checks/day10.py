"""Checks for day 10, "Multi-head attention", and reference head split/merge helpers.

Each ``check_*`` function runs the learner's code, prints one line - a pass, a specific hint, or
"not done yet" - and returns ``True`` on a pass. None of them raises.

:func:`split_heads` and :func:`merge_heads` are the references the lesson uses after its
exercises, so that a learner who skipped one can run the rest of the notebook.

Example::

    >>> import torch
    >>> from llmcourse.checks import day10
    >>> x = torch.randn(2, 5, 12)
    >>> tuple(day10.split_heads(x, 3).shape)
    (2, 3, 5, 4)
    >>> torch.equal(day10.merge_heads(day10.split_heads(x, 3)), x)
    True
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmcourse.checks._core import (CheckFailed, as_tensor, assert_close, assert_shape, check, layer,
                                    needs_earlier)
from llmcourse.model import CausalSelfAttention, GPTConfig
from llmcourse.model.layers import merge_heads, split_heads

__all__ = [
    "split_heads",
    "merge_heads",
    "check_split_heads",
    "check_merge_heads",
    "check_attention_module",
]


# The references are the package's own (llmcourse.model.layers.split_heads / merge_heads),
# which the attention module itself uses.


@check("split_heads", hint="view the last axis as (n_head, C // n_head), then transpose(1, 2)")
def check_split_heads(split_heads_fn: Callable[[torch.Tensor, int], Any]) -> None:
    """Exercise 1: ``t.view(B, T, nh, hs).transpose(1, 2)``."""
    g = torch.Generator().manual_seed(0)
    for B, T, C, nh in ((2, 5, 12, 3), (1, 7, 8, 1), (3, 4, 16, 8)):
        x = torch.randn(B, T, C, generator=g)
        got = as_tensor(split_heads_fn(x, nh), "split_heads")
        want = split_heads(x, nh)
        name = f"split_heads(x of shape {(B, T, C)}, n_head={nh})"
        if tuple(got.shape) == (B, T, nh, C // nh) and (T != nh):
            raise CheckFailed(f"{name} has shape {tuple(got.shape)}: the head axis must come before "
                              "the time axis; add .transpose(1, 2) after the view")
        assert_shape(got, want.shape, name)
        if not torch.equal(got, want):
            if torch.equal(got, x.reshape(B, nh, T, C // nh)):
                raise CheckFailed(f"{name} cuts the flat data into blocks (x.view(B, n_head, T, hs)), "
                                  "which mixes positions into heads; view as (B, T, n_head, hs) "
                                  "first, then transpose(1, 2)")
            assert_close(got, want, name)


@check("merge_heads", hint="after transpose(1, 2) the tensor is not contiguous: call "
                           ".contiguous() before .view, or use .reshape")
def check_merge_heads(merge_heads_fn: Callable[[torch.Tensor], Any]) -> None:
    """Exercise 2: ``y.transpose(1, 2).contiguous().view(B, T, nh * hs)``."""
    g = torch.Generator().manual_seed(1)
    for B, nh, T, hs in ((2, 3, 5, 4), (1, 1, 6, 8), (2, 4, 3, 2)):
        y = torch.randn(B, nh, T, hs, generator=g)
        got = as_tensor(merge_heads_fn(y), "merge_heads")
        want = merge_heads(y)
        name = f"merge_heads(y of shape {(B, nh, T, hs)})"
        assert_shape(got, want.shape, name)
        if not torch.equal(got, want):
            if torch.equal(got, y.reshape(B, T, nh * hs)):
                raise CheckFailed(f"{name} regroups the numbers without moving the head axis back: "
                                  "transpose(1, 2) to (B, T, nh, hs) first, then .contiguous().view")
            assert_close(got, want, name)
    x = torch.randn(2, 5, 12, generator=g)
    back = as_tensor(merge_heads_fn(split_heads(x, 3)), "merge_heads")
    if not torch.equal(back, x):
        raise CheckFailed("merge_heads(split_heads(x, 3)) does not give x back")


def _reference_variants(ref: CausalSelfAttention, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Outputs of common mistakes, computed with the reference weights, with a hint for each."""
    B, T, C = x.shape
    nh = ref.n_head
    hs = C // nh

    def run(scale: float, causal: bool, proj: bool) -> torch.Tensor:
        q, k, v = ref.c_attn(x).split(C, dim=-1)
        q, k, v = (split_heads(t, nh) for t in (q, k, v))
        scores = q @ k.transpose(-2, -1) * scale
        if causal:
            mask = torch.ones(T, T, dtype=torch.bool).tril()
            scores = scores.masked_fill(~mask, float("-inf"))
        y = merge_heads(F.softmax(scores, dim=-1) @ v)
        return ref.c_proj(y) if proj else y

    s = 1.0 / math.sqrt(hs)
    return {
        "the scores are not scaled: multiply q @ k.transpose(-2, -1) by 1 / sqrt(hs)": run(1.0, True, True),
        "the scores are scaled by 1 / sqrt(C); use the head size hs = C // n_head, since each "
        "head's dot products sum over hs numbers": run(1.0 / math.sqrt(C), True, True),
        "the output projection is missing: return self.c_proj(y) after merging the heads": run(s, True, False),
    }


@check("CausalSelfAttention",
       hint="follow the steps: c_attn, split into q, k, v, split heads, attention with the "
            "causal mask, merge heads, c_proj")
@needs_earlier(split_heads=1, merge_heads=2)
def check_attention_module(module_cls: Callable[[int, int], nn.Module]) -> None:
    """Exercise 3: the learner's module computes the package's ``CausalSelfAttention``.

    The learner's weights (``c_attn``, ``c_proj``) are loaded into the package's module by name
    and both are run on the same random inputs.
    """
    for C, nh, T in ((32, 4, 7), (24, 1, 5), (48, 8, 9)):
        torch.manual_seed(C)
        mine = module_cls(C, nh)
        for name, shape in (("c_attn", (3 * C, C)), ("c_proj", (C, C))):
            if getattr(mine, name, None) is None:
                raise NotImplementedError(f"self.{name} is missing")
            layer(mine, name, nn.Linear, shape=shape, bias=True, owner=f"self (n_embd={C}, n_head={nh})")
        cfg = GPTConfig(vocab_size=2, block_size=max(T, 2), n_layer=1, n_head=nh, n_embd=C)
        ref = CausalSelfAttention(cfg).eval()
        state = {k: v for k, v in mine.state_dict().items()}
        missing = set(ref.state_dict()) - set(state)
        extra = set(state) - set(ref.state_dict())
        if missing or extra:
            raise CheckFailed(f"your module's parameters do not match the package's: missing "
                              f"{sorted(missing)}, unexpected {sorted(extra)}; keep exactly "
                              "self.c_attn and self.c_proj as parameter-holding layers")
        ref.load_state_dict(state)
        mine.eval()
        x = torch.randn(2, T, C)
        with torch.no_grad():
            out = mine(x)
            if isinstance(out, tuple):  # allow the package's (y, weights) convention
                out = out[0]
            out = as_tensor(out, "forward")
            assert_shape(out, (2, T, C), f"forward(x of shape {(2, T, C)})")
            want, _ = ref(x)
            if torch.allclose(out, want, atol=1e-5, rtol=1e-4):
                continue
            x2 = x.clone()
            x2[:, -1] = torch.randn(2, C)  # change only the last position
            out2 = mine(x2)
            out2 = out2[0] if isinstance(out2, tuple) else out2
            if not torch.allclose(out[:, :-1], out2[:, :-1], atol=1e-6):
                raise CheckFailed("changing the last position changed the outputs of earlier "
                                  "positions: the causal mask is missing or wrong; fill the scores "
                                  "above the diagonal with -inf before the softmax (torch.tril)")
            for hint, variant in _reference_variants(ref, x).items():
                if torch.allclose(out, variant, atol=1e-5, rtol=1e-4):
                    raise CheckFailed(hint)
            assert_close(out, want, f"forward(x) with n_embd={C}, n_head={nh}")
    try:
        module_cls(10, 3)
    except ValueError:
        return
    except Exception as exc:  # noqa: BLE001 - any other failure is a missing validation
        raise CheckFailed(f"MyCausalSelfAttention(10, 3) raised {type(exc).__name__}; it should "
                          "raise ValueError saying that n_embd must be divisible by n_head") from exc
    raise CheckFailed("MyCausalSelfAttention(10, 3) should raise ValueError: 10 channels cannot be "
                      "split into 3 equal heads")
