"""Checks for day 09, "Scaled dot-product attention and the causal mask", and reference helpers.

Each ``check_*`` function runs the learner's code on random inputs, compares it numerically with
PyTorch's :func:`torch.nn.functional.scaled_dot_product_attention` or with the package's
:class:`llmcourse.model.CausalSelfAttention` (one head), prints one line - a pass, a specific
hint, or "not done yet" - and returns ``True`` on a pass. None of them raises.

:func:`reference_is_causal` is the causality test the lesson uses after its exercise 4.

Example::

    >>> import math, torch
    >>> from llmcourse.checks import day09
    >>> ok = day09.check_attention_scores(lambda q, k: q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]))
    ✅ attention_scores: passed
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmcourse.checks._core import CheckFailed, assert_close, assert_shape, check
from llmcourse.model import CausalSelfAttention, GPTConfig, causal_mask

__all__ = [
    "check_attention_scores",
    "check_causal_attention",
    "check_head",
    "check_is_causal",
    "reference_causal_attention",
    "reference_is_causal",
    "one_head_attention",
]


def reference_causal_attention(q: torch.Tensor, k: torch.Tensor,
                               v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``softmax(q k^T / sqrt(d_k), future masked) v`` and the weights.

    Shapes: ``q``, ``k`` ``(..., T, d_k)``, ``v`` ``(..., T, d_v)`` -> ``(..., T, d_v)`` and
    ``(..., T, T)``.
    """
    T = q.shape[-2]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., T, T)
    scores = scores.masked_fill(~causal_mask(T, T, device=q.device), float("-inf"))
    weights = scores.softmax(dim=-1)
    return weights @ v, weights


def one_head_attention(n_embd: int, block_size: int = 64) -> CausalSelfAttention:
    """The package's :class:`CausalSelfAttention` with one head, no biases and no output mixing.

    ``c_proj`` is set to the identity, so the module computes exactly one attention head of
    size ``n_embd``: ``softmax(q k^T / sqrt(n_embd), causal) v`` with ``q, k, v`` read from
    ``c_attn``'s weight (rows ``[0:C]``, ``[C:2C]``, ``[2C:3C]``).
    """
    cfg = GPTConfig(vocab_size=1, block_size=block_size, n_layer=1, n_head=1, n_embd=n_embd,
                    bias=False)
    attn = CausalSelfAttention(cfg)
    with torch.no_grad():
        attn.c_proj.weight.copy_(torch.eye(n_embd))
    return attn.eval()


def _random(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@check("attention_scores")
def check_attention_scores(attention_scores: Callable[..., Any]) -> None:
    """Exercise 1: ``q @ k^T / sqrt(d_k)``."""
    q, k = _random(2, 5, 16, seed=0), _random(2, 5, 16, seed=1)
    got = attention_scores(q.clone(), k.clone())
    if got is None:
        raise CheckFailed("attention_scores returned None; did you forget the `return`?")
    assert_shape(got, (2, 5, 5), "attention_scores(q, k) for q, k of shape (2, 5, 16)")
    got = torch.as_tensor(got)
    raw = q @ k.transpose(-2, -1)
    if torch.allclose(got, raw, atol=1e-5):
        raise CheckFailed("the scores are not scaled: divide by math.sqrt(d_k), d_k = q.shape[-1]")
    if torch.allclose(got, raw / 16, atol=1e-5):
        raise CheckFailed("divided by d_k; divide by its square root, math.sqrt(d_k)")
    if torch.allclose(got, (k @ q.transpose(-2, -1)) / 4, atol=1e-5):
        raise CheckFailed("rows and columns are swapped: row t should hold the query at t against "
                          "every key, q @ k.transpose(-2, -1)")
    if torch.isinf(got).any():
        raise CheckFailed("no masking in this function yet (that is exercise 2): return the scaled "
                          "scores only")
    assert_close(got, raw / math.sqrt(16), "attention_scores(q, k)", atol=1e-5)


def _as_pair(out: Any) -> tuple[Any, Any]:
    if out is None:
        raise CheckFailed("causal_attention returned None; return (out, weights)")
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise CheckFailed(f"causal_attention should return a pair (out, weights), got "
                          f"{type(out).__name__}")
    return out[0], out[1]


@check("causal_attention")
def check_causal_attention(causal_attention: Callable[..., Any]) -> None:
    """Exercise 2: masked, scaled attention, against ``F.scaled_dot_product_attention``."""
    q, k, v = _random(2, 6, 8, seed=2) * 2, _random(2, 6, 8, seed=3) * 2, _random(2, 6, 5, seed=4)
    out, weights = _as_pair(causal_attention(q.clone(), k.clone(), v.clone()))
    assert_shape(out, (2, 6, 5), "out for v of shape (2, 6, 5)")
    assert_shape(weights, (2, 6, 6), "weights")
    out, weights = torch.as_tensor(out), torch.as_tensor(weights)
    want = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, T, d_v)
    if torch.isnan(out).any():
        raise CheckFailed("the output has NaN: keep the diagonal in the mask (torch.tril), so every "
                          "query can see at least itself")
    if torch.allclose(out, F.scaled_dot_product_attention(q, k, v), atol=1e-5):
        raise CheckFailed("the future is not masked: set the scores where the key comes after the "
                          "query to float('-inf') before the softmax")
    if (weights.triu(1).abs() > 1e-6).any():
        raise CheckFailed("the weights above the diagonal are not 0: mask with float('-inf') "
                          "(masking with 0 still gives the future weight)")
    if torch.allclose(out, F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=1.0), atol=1e-5):
        raise CheckFailed("the scores are not scaled: divide q @ k^T by math.sqrt(d_k)")
    rows = weights.sum(-1)
    if not torch.allclose(rows, torch.ones_like(rows), atol=1e-5):
        raise CheckFailed("the rows of weights do not sum to 1: softmax over the last dimension "
                          "(the keys), after masking")
    assert_close(weights, reference_causal_attention(q, k, v)[1], "weights", atol=1e-5)
    assert_close(out, want, "out compared with F.scaled_dot_product_attention(q, k, v, "
                 "is_causal=True)", atol=1e-5)


@check("Head")
def check_head(Head: Callable[..., Any]) -> None:
    """Exercise 3: a single attention head, against the package's one-head attention."""
    torch.manual_seed(0)
    head = Head(16, 16)
    for name in ("query", "key", "value"):
        layer = getattr(head, name, None)
        if not isinstance(layer, nn.Linear):
            raise CheckFailed(f"Head needs an attribute `{name}` that is an nn.Linear(n_embd, "
                              f"head_size, bias=False); got {type(layer).__name__}")
        if layer.bias is not None:
            raise CheckFailed(f"head.{name} has a bias: create it with bias=False")
        if tuple(layer.weight.shape) != (16, 16):
            raise CheckFailed(f"head.{name}.weight has shape {tuple(layer.weight.shape)}; for "
                              "Head(16, 16) it should be (16, 16), i.e. nn.Linear(n_embd, head_size)")
    x = _random(2, 7, 16, seed=5)
    with torch.no_grad():
        got = head(x)
    if got is None:
        raise CheckFailed("Head.forward returned None; did you forget the `return`?")
    if isinstance(got, (tuple, list)):
        raise CheckFailed("Head.forward should return the output tensor only, not a tuple")
    assert_shape(got, (2, 7, 16), "Head(16, 16)(x) for x of shape (2, 7, 16)")
    package = one_head_attention(16)
    with torch.no_grad():
        package.c_attn.weight.copy_(torch.cat([head.query.weight, head.key.weight, head.value.weight]))
        want, _ = package(x)
        q, k, v = head.query(x), head.key(x), head.value(x)
    if torch.allclose(got, F.scaled_dot_product_attention(q, k, v), atol=1e-5):
        raise CheckFailed("the future is not masked: mask the scores above the diagonal with -inf")
    if torch.allclose(got, F.scaled_dot_product_attention(k, q, v, is_causal=True), atol=1e-5):
        raise CheckFailed("queries and keys are swapped: scores = q @ k.transpose(-2, -1), with q "
                          "from self.query")
    assert_close(got, want, "Head(16, 16)(x) compared with the package's one-head "
                 "CausalSelfAttention (same weights)", atol=1e-5)
    head = Head(16, 4)  # head_size != n_embd: the scale must use head_size
    with torch.no_grad():
        got = head(x)
        q, k, v = head.query(x), head.key(x), head.value(x)
    assert_shape(got, (2, 7, 4), "Head(16, 4)(x)")
    if torch.allclose(got, F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=1 / 4.0),
                      atol=1e-5):
        raise CheckFailed("Head(16, 4) scales by sqrt(n_embd); scale by sqrt(head_size), the size "
                          "of the vectors in each dot product")
    assert_close(got, F.scaled_dot_product_attention(q, k, v, is_causal=True), "Head(16, 4)(x)",
                 atol=1e-5)


def reference_is_causal(fn: Callable[[torch.Tensor], torch.Tensor], T: int = 8, C: int = 4,
                        atol: float = 1e-6) -> bool:
    """``True`` if no output of ``fn`` at a position ``<= t`` depends on inputs after ``t``.

    For every cut ``t``, the inputs after ``t`` are replaced by fresh random numbers and the
    outputs at ``0..t`` must not change. ``fn`` maps ``(B, T, C)`` to ``(B, T, ...)``.
    """
    g = torch.Generator().manual_seed(1234)
    x = torch.randn(2, T, C, generator=g)
    with torch.no_grad():
        base = fn(x)
        for t in range(T - 1):
            x2 = x.clone()
            x2[:, t + 1:] = torch.randn(2, T - t - 1, C, generator=g)  # a different future
            if not torch.allclose(fn(x2)[:, : t + 1], base[:, : t + 1], atol=atol):
                return False
    return True


def _masked_attention(allowed: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """Attention with q = k = v = x and the given (T, T) boolean pattern of allowed pairs."""

    def fn(x: torch.Tensor) -> torch.Tensor:
        T = x.shape[1]
        mask = allowed[:T, :T]
        return F.scaled_dot_product_attention(x, x, x, attn_mask=mask)

    return fn


def _as_bool(value: Any, what: str) -> bool:
    if value is None:
        raise CheckFailed(f"is_causal returned None for {what}; return True or False")
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise CheckFailed(f"is_causal returned a tensor of shape {tuple(value.shape)}; return one "
                              "True or False (e.g. all(...) or bool(tensor.all()))")
        value = value.item()
    if not isinstance(value, bool):
        raise CheckFailed(f"is_causal should return True or False, got {type(value).__name__}")
    return value


@check("is_causal")
def check_is_causal(is_causal: Callable[..., Any]) -> None:
    """Exercise 4: the learner's causality test tells causal and leaking functions apart."""
    T = 8
    ok = causal_mask(T, T)
    cases = [
        ("causal attention", _masked_attention(ok), True),
        ("a running mean", lambda x: x.cumsum(1) / torch.arange(1, x.shape[1] + 1).view(1, -1, 1), True),
        ("an element-wise function", lambda x: torch.tanh(3 * x), True),
        ("attention without a mask", _masked_attention(torch.ones(T, T, dtype=torch.bool)), False),
        ("attention that also sees the next token", _masked_attention(torch.ones(T, T, dtype=torch.bool).tril(1)), False),
    ]
    leak = ok.clone()
    leak[0, 1] = True  # only position 0 peeks, and only at position 1
    cases.append(("attention where position 0 alone sees position 1", _masked_attention(leak), False))
    leak = ok.clone()
    leak[4, 6] = True  # a leak in the middle of the sequence, two steps ahead
    cases.append(("attention where position 4 alone sees position 6", _masked_attention(leak), False))
    cases.append(("a reversed running mean",
                  lambda x: x.flip(1).cumsum(1).flip(1) / torch.arange(x.shape[1], 0, -1).view(1, -1, 1), False))
    for what, fn, expected in cases:
        got = _as_bool(is_causal(fn, T, 4), what)
        if got != expected:
            if expected:
                raise CheckFailed(f"is_causal says {what} is not causal, but it is. Compare only the "
                                  "outputs at positions <= t (the ones that must not change), with "
                                  "torch.allclose")
            hint = ""
            if "alone" in what:
                hint = (" Changing only the last token, or looking only at position 0, misses such a "
                        "leak. Try every cut t: change the inputs after t, compare outputs 0..t")
            elif "next token" in what:
                hint = " Change the inputs after t and compare outputs at ALL positions 0..t"
            raise CheckFailed(f"is_causal says {what} is causal, but it leaks the future.{hint}")
