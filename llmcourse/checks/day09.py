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

import warnings

from llmcourse.checks._core import (CheckFailed, as_bool, as_pair, as_tensor, assert_close, assert_shape,
                                    call, check, layer, needs_earlier)
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


def _scores_call(attention_scores: Callable[..., Any], q: torch.Tensor, k: torch.Tensor) -> Any:
    shown = f"attention_scores(q, k) with q, k of shape {tuple(q.shape)}"
    try:
        with warnings.catch_warnings():  # k.T on a 3-D tensor warns; the verdict says it instead
            warnings.simplefilter("ignore")
            return attention_scores(q.clone(), k.clone())
    except (NotImplementedError, AssertionError):
        raise
    except RuntimeError as exc:
        try:  # does it work on one (T, d_k) matrix? Then it is the batch dimension: k.T
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                attention_scores(q[0].clone(), k[0].clone())
        except Exception:  # noqa: BLE001
            pass
        else:
            raise CheckFailed(
                f"{shown} raised RuntimeError: {exc}. It works on one (T, d_k) matrix but not on "
                "a batch: k.T reverses *all* the dimensions of a 3-D tensor. Swap only the last "
                "two: k.transpose(-2, -1)"
            ) from exc
        raise CheckFailed(f"your code raised RuntimeError: {exc} on {shown}") from exc
    except Exception as exc:  # noqa: BLE001
        raise CheckFailed(f"your code raised {type(exc).__name__}: {exc} on {shown}") from exc


@check("attention_scores")
def check_attention_scores(attention_scores: Callable[..., Any]) -> None:
    """Exercise 1: ``q @ k^T / sqrt(d_k)``.

    ``d_k = 12`` and ``T = 5``, unlike the lesson's ``head_size = 16`` and ``T = 8``, so that a
    scale read from a global (``math.sqrt(head_size)``) or typed in (``/ 4``) fails.
    """
    d_k = 12
    q, k = _random(3, 5, d_k, seed=0), _random(3, 5, d_k, seed=1)
    got = as_tensor(_scores_call(attention_scores, q, k), "attention_scores(q, k)")
    assert_shape(got, (3, 5, 5), f"attention_scores(q, k) for q, k of shape (3, 5, {d_k})")
    raw = q @ k.transpose(-2, -1)
    if torch.allclose(got, raw, atol=1e-5):
        raise CheckFailed("the scores are not scaled: divide by math.sqrt(d_k), d_k = q.shape[-1]")
    if torch.allclose(got, raw / d_k, atol=1e-5):
        raise CheckFailed("divided by d_k; divide by its square root, math.sqrt(d_k)")
    for wrong in (16, 32, 8, 64):
        if torch.allclose(got, raw / math.sqrt(wrong), atol=1e-5):
            raise CheckFailed(
                f"for q, k of shape (3, 5, {d_k}) the scores were divided by sqrt({wrong}) = "
                f"{math.sqrt(wrong):g}, not sqrt({d_k}): read d_k from the q you are given, "
                "d_k = q.shape[-1], not from a global such as head_size or a typed-in number"
            )
    if torch.allclose(got, (k @ q.transpose(-2, -1)) / math.sqrt(d_k), atol=1e-5):
        raise CheckFailed("rows and columns are swapped: row t should hold the query at t against "
                          "every key, q @ k.transpose(-2, -1)")
    if torch.isinf(got).any():
        raise CheckFailed("no masking in this function yet (that is exercise 2): return the scaled "
                          "scores only")
    assert_close(got, raw / math.sqrt(d_k), "attention_scores(q, k)", atol=1e-5)


def _weights_with(q: torch.Tensor, k: torch.Tensor, allowed: torch.Tensor,
                  fill: float = float("-inf")) -> torch.Tensor:
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    return scores.masked_fill(~allowed, fill).softmax(dim=-1)


@check("causal_attention")
@needs_earlier(attention_scores=1)
def check_causal_attention(causal_attention: Callable[..., Any]) -> None:
    """Exercise 2: masked, scaled attention, against ``F.scaled_dot_product_attention``."""
    q, k, v = _random(2, 6, 8, seed=2) * 2, _random(2, 6, 8, seed=3) * 2, _random(2, 6, 5, seed=4)
    shown = "causal_attention(q, k, v) with q, k of shape (2, 6, 8) and v of shape (2, 6, 5)"
    out, weights = as_pair(call(causal_attention, q.clone(), k.clone(), v.clone(), shown=shown),
                           "causal_attention", ("out", "weights"))
    out = as_tensor(out, "out", shape=(2, 6, 5))
    weights = as_tensor(weights, "weights", shape=(2, 6, 6))
    want = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, T, d_v)
    T = 6
    tril = torch.ones(T, T).tril().bool()
    if torch.isnan(out).any() or torch.isnan(weights).any():
        raise CheckFailed("the output has NaN: some query has every key masked. Mask only the keys "
                          "after the query (where torch.tril(...) == 0), which keeps the diagonal, "
                          "so every query sees at least itself")
    if (weights.triu(1).abs() > 1e-6).any():
        ones = torch.ones(T, T).bool()
        if torch.allclose(weights, _weights_with(q, k, ones.tril(1)), atol=1e-5):
            raise CheckFailed("each query also sees the next key: the mask is torch.tril(..., "
                              "diagonal=1), one diagonal too many; torch.tril(ones(T, T)) keeps "
                              "exactly the keys at or before the query")
        if torch.allclose(weights, _weights_with(q, k, ones.triu()), atol=1e-5):
            raise CheckFailed("the mask is on the wrong side: it hides the past and keeps the future "
                              "(torch.triu). Keep the keys at or before the query: masked_fill("
                              "torch.tril(ones(T, T)) == 0, float('-inf'))")
        if torch.allclose(weights, _weights_with(q, k, tril, fill=0.0), atol=1e-5):
            raise CheckFailed("the future scores were set to 0, which still gives them weight "
                              "exp(0) / sum: mask with float('-inf')")
        if torch.allclose(out, F.scaled_dot_product_attention(q, k, v), atol=1e-5):
            raise CheckFailed("the future is not masked: set the scores where the key comes after "
                              "the query to float('-inf') before the softmax")
        raise CheckFailed("the weights above the diagonal (keys after the query) are not 0: set "
                          "those scores to float('-inf') before the softmax, with the mask "
                          "torch.tril(torch.ones(T, T)) == 0")
    if (weights.tril(-1).abs() < 1e-12).all():
        raise CheckFailed("every weight below the diagonal is 0: the mask hides the past too; keep "
                          "the keys at or before the query (torch.tril, not torch.eye)")
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
@needs_earlier(attention_scores=1, causal_attention=2)
def check_head(Head: Callable[..., Any]) -> None:
    """Exercise 3: a single attention head, against the package's one-head attention.

    ``Head(12, 12)`` and ``Head(12, 5)`` on ``x`` of shape ``(3, 7, 12)``: sizes unlike the
    lesson's ``C = 32``, ``head_size = 16``, ``T = 8``. The package's module is
    :func:`one_head_attention`, whose output projection ``c_proj`` is the identity.
    """
    C = 12
    torch.manual_seed(0)
    head = Head(C, C)
    for name in ("query", "key", "value"):
        layer(head, name, nn.Linear, shape=(C, C), bias=False, owner="head")
    x = _random(3, 7, C, seed=5)
    with torch.no_grad():
        got = call(head, x, shown=f"Head({C}, {C})(x) with x of shape (3, 7, {C})")
    if isinstance(got, (tuple, list)):
        raise CheckFailed("Head.forward should return the output tensor only, not a tuple")
    got = as_tensor(got, "Head.forward(x)")
    assert_shape(got, (3, 7, C), f"Head({C}, {C})(x) for x of shape (3, 7, {C})")
    package = one_head_attention(C)
    with torch.no_grad():
        package.c_attn.weight.copy_(torch.cat([head.query.weight, head.key.weight, head.value.weight]))
        want, _ = package(x)
        q, k, v = head.query(x), head.key(x), head.value(x)
    if torch.allclose(got, F.scaled_dot_product_attention(q, k, v), atol=1e-5):
        raise CheckFailed("the future is not masked: mask the scores above the diagonal with -inf")
    if torch.allclose(got, F.scaled_dot_product_attention(k, q, v, is_causal=True), atol=1e-5):
        raise CheckFailed("queries and keys are swapped: scores = q @ k.transpose(-2, -1), with q "
                          "from self.query")
    assert_close(got, want, f"Head({C}, {C})(x) compared with the package's one-head "
                 "CausalSelfAttention (same weights, c_proj = identity)", atol=1e-5)
    hs = 5
    head = Head(C, hs)  # head_size != n_embd: the scale must use head_size
    for name in ("query", "key", "value"):
        layer(head, name, nn.Linear, shape=(hs, C), bias=False, owner=f"Head({C}, {hs})")
    with torch.no_grad():
        got = as_tensor(call(head, x, shown=f"Head({C}, {hs})(x)"), f"Head({C}, {hs})(x)")
        q, k, v = head.query(x), head.key(x), head.value(x)
    assert_shape(got, (3, 7, hs), f"Head({C}, {hs})(x)")
    if torch.allclose(got, F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                                          scale=1 / math.sqrt(C)), atol=1e-5):
        raise CheckFailed(f"Head({C}, {hs}) scales by sqrt(n_embd); scale by sqrt(head_size), the "
                          "size of the vectors in each dot product")
    assert_close(got, F.scaled_dot_product_attention(q, k, v, is_causal=True), f"Head({C}, {hs})(x)",
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


@check("is_causal")
def check_is_causal(is_causal: Callable[..., Any]) -> None:
    """Exercise 4: the learner's causality test tells causal and leaking functions apart.

    It is called with ``T = 7`` and ``C = 3`` (not its defaults 8 and 4), so a test that
    ignores its arguments fails.
    """
    T, C = 7, 3
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
        got = as_bool(call(is_causal, fn, T, C, shown=f"is_causal(<{what}>, T={T}, C={C})"),
                      f"is_causal(<{what}>, T={T}, C={C})")
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
