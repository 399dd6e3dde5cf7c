"""Checks for day 09, "Scaled dot-product attention and the causal mask", and reference helpers.

Each ``check_*`` function compares the learner's code with a reference on a small seeded battery
of inputs (sizes unlike the notebook's ``T = 8``, ``C = 32``, ``head_size = 16``; batch unlike
time; queries and keys of different lengths), outputs *and* gradients, prints one line - a pass,
the hint of a typical mistake (the tables ``SCORES``, ``CAUSAL``, ``HEAD``, ``IS_CAUSAL``), or
"not done yet" - and returns a verdict, true on a pass. None of them raises.

:func:`reference_is_causal` is the causality test the lesson uses after its exercise 4.

Example::

    >>> import math, torch
    >>> from llmcourse.checks import day09
    >>> ok = day09.check_attention_scores(lambda q, k: q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]))
    ✅ attention_scores: passed
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmcourse.checks._core import (Case, CheckFailed, Mistake, as_bool, as_pair, as_tensor, call,
                                    check, compare, layer, needs_earlier, outputs_and_grads)
from llmcourse.checks._meta import UNJUDGED, run_on_meta
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


def _randn(g: torch.Generator, *shape: int, scale: float = 1.0) -> torch.Tensor:
    return (torch.randn(*shape, generator=g) * scale).requires_grad_()


def _quiet(fn: Callable[..., Any], *args: Any) -> Any:
    with warnings.catch_warnings():  # k.T on a 3-D tensor warns; the verdict says it instead
        warnings.simplefilter("ignore")
        return fn(*args)


# ---------------------------------------------------------------------------- exercise 1
def _scores(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    return q @ k.transpose(-2, -1)


def _scores_torch_sqrt(q, k):  # torch.sqrt of a Python int raises TypeError
    return _scores(q, k) / torch.sqrt(q.shape[-1])


def _scores_power_precedence(q, k):  # d_k ** 1/2 is (d_k ** 1) / 2
    return _scores(q, k) / q.shape[-1] ** 1 / 2


def _scores_einsum_3d(q, k):  # an einsum written for (B, T, d_k) only
    return torch.einsum("btd,bsd->bts", q, k) / math.sqrt(q.shape[-1])


def _scores_scale_q_in_place(q, k):  # q /= ...: changes the caller's q (a leaf: autograd refuses)
    q /= math.sqrt(q.shape[-1])
    return _scores(q, k)


SCORES = [
    Mistake("unscaled", lambda q, k: _scores(q, k),
            hint="the scores are not scaled: divide by math.sqrt(d_k), d_k = q.shape[-1]"),
    Mistake("divided by d_k", lambda q, k: _scores(q, k) / q.shape[-1],
            hint="divided by d_k; divide by its square root, math.sqrt(d_k)"),
    Mistake("head_size global", lambda q, k: _scores(q, k) / math.sqrt(16),
            hint="the scores were divided by sqrt(16) = 4, the notebook's head_size, not by "
                 "sqrt(d_k): read d_k from the q you are given, d_k = q.shape[-1], not from a "
                 "global such as head_size or a typed-in number"),
    Mistake("k.T", lambda q, k: q @ k.T / math.sqrt(q.shape[-1]),
            hint="k.T reverses *all* the dimensions of a 3-D tensor (and k.transpose(1, 2) swaps the "
                 "last two only when there are three), so it works on one shape but not on a batch "
                 "of heads. Swap only the last two: k.transpose(-2, -1)"),
    Mistake("torch.sqrt of an int", _scores_torch_sqrt,
            hint="torch.sqrt takes a tensor, not the int q.shape[-1]: divide by math.sqrt(d_k) (or "
                 "multiply by d_k ** -0.5)"),
    Mistake("d_k ** 1/2", _scores_power_precedence,
            hint="d_k ** 1/2 is (d_k ** 1) / 2 = d_k / 2, since ** binds tighter than /: write "
                 "d_k ** 0.5 or math.sqrt(d_k)"),
    Mistake("einsum without ...", _scores_einsum_3d,
            hint="the einsum names exactly three dimensions, so it fails on q of shape (B, n_head, "
                 "T, d_k): use '...td,...sd->...ts', or q @ k.transpose(-2, -1)"),
    Mistake("q scaled in place", _scores_scale_q_in_place,
            hint="q /= ... scales the caller's q in place (autograd refuses it on a leaf, and it "
                 "changes q for the caller): divide the scores instead, "
                 "q @ k.transpose(-2, -1) / math.sqrt(d_k)"),
    Mistake("q and k swapped", lambda q, k: k @ q.transpose(-2, -1) / math.sqrt(q.shape[-1]),
            hint="rows and columns are swapped: row t should hold the query at t against every "
                 "key, q @ k.transpose(-2, -1)"),
    Mistake("masked already", lambda q, k: (_scores(q, k) / math.sqrt(q.shape[-1])).masked_fill(
        ~causal_mask(q.shape[-2], k.shape[-2]), float("-inf")),
            hint="no masking in this function yet (that is exercise 2): return the scaled scores only"),
    Mistake("divided by sqrt(T)", lambda q, k: _scores(q, k) / math.sqrt(k.shape[-2]),
            hint="the scores were divided by the square root of the sequence length T; divide by "
                 "math.sqrt(d_k), the size of the vectors in each dot product, d_k = q.shape[-1] "
                 "(the LAST axis)"),
    Mistake("multiplied by sqrt(d_k)", lambda q, k: _scores(q, k) * math.sqrt(q.shape[-1]),
            hint="the scores were multiplied by sqrt(d_k); divide by it, so that their variance "
                 "stays near 1"),
    Mistake("softmax already", lambda q, k: (_scores(q, k) / math.sqrt(q.shape[-1])).softmax(dim=-1),
            hint="return the scaled scores themselves, not their softmax: the mask and the softmax "
                 "come in exercise 2"),
    Mistake("detached", lambda q, k: (_scores(q, k) / math.sqrt(q.shape[-1])).detach(),
            expect="does not carry gradients"),
]


def _reference_scores(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    return q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])


def _scores_cases() -> list[Case]:
    g = torch.Generator().manual_seed(9)
    return [
        Case("attention_scores(q, k) with q, k of shape (3, 5, 12)", _randn(g, 3, 5, 12), _randn(g, 3, 5, 12)),
        Case("attention_scores(q, k) with q of shape (2, 3, 8), k of shape (2, 6, 8)",
             _randn(g, 2, 3, 8), _randn(g, 2, 6, 8)),
        Case("attention_scores(q, k) with heads: q, k of shape (2, 4, 7, 6)",
             _randn(g, 2, 4, 7, 6), _randn(g, 2, 4, 7, 6)),
        Case("attention_scores(q, k) with q, k of shape (9, 20)", _randn(g, 9, 20), _randn(g, 9, 20)),
    ]


def _run_scores(impl: Any, case: Case) -> Any:
    (q, k), _ = case.fresh()
    out = _quiet(impl, q, k)
    out = as_tensor(out, "attention_scores(q, k)")
    return outputs_and_grads(out, {"q": q, "k": k})


@check("attention_scores", mistakes=SCORES)
def check_attention_scores(attention_scores: Callable[..., Any]) -> None:
    """Exercise 1: ``q @ k^T / sqrt(d_k)``, its output and its gradients w.r.t. ``q`` and ``k``.

    ``d_k`` is 12, 8, 6 and 20, unlike the lesson's ``head_size = 16``, so that a scale read
    from a global (``math.sqrt(head_size)``) or typed in (``/ 4``) fails.
    """
    compare(attention_scores, _reference_scores, _scores_cases(), name="attention_scores(q, k)",
            run=_run_scores, mistakes=SCORES)


# ---------------------------------------------------------------------------- exercise 2
def _attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, allowed: Any = "tril",
               fill: float = float("-inf"), scale: Any = "sqrt", dim: int = -1) -> tuple[Any, Any]:
    """Causal attention with one thing changed, as a learner might write it."""
    T = q.shape[-2]
    d = q.shape[-1]
    s = {"sqrt": 1 / math.sqrt(d), "none": 1.0}.get(scale, scale)
    scores = q @ k.transpose(-2, -1) * s
    ones = torch.ones(T, T)
    mask = {"tril": ones.tril(), "tril1": ones.tril(1), "triu": ones.triu(), "strict": ones.tril(-1),
            "none": ones, "global": torch.ones(8, 8).tril()}[allowed]
    weights = scores.masked_fill(mask == 0, fill).softmax(dim=dim)
    return weights @ v, weights


CAUSAL = [
    Mistake("mask one diagonal too many", lambda q, k, v: _attention(q, k, v, allowed="tril1"),
            hint="each query also sees the next key: the mask is torch.tril(..., diagonal=1), one "
                 "diagonal too many; torch.tril(ones(T, T)) keeps exactly the keys at or before the query"),
    Mistake("mask on the wrong side", lambda q, k, v: _attention(q, k, v, allowed="triu"),
            hint="the mask is on the wrong side: it hides the past and keeps the future (torch.triu). "
                 "Keep the keys at or before the query: masked_fill(torch.tril(ones(T, T)) == 0, float('-inf'))"),
    Mistake("filled with 0", lambda q, k, v: _attention(q, k, v, fill=0.0),
            hint="the future scores were set to 0, which still gives them weight exp(0) / sum: "
                 "mask with float('-inf')"),
    Mistake("no mask", lambda q, k, v: _attention(q, k, v, allowed="none"),
            hint="the future is not masked: set the scores where the key comes after the query to "
                 "float('-inf') before the softmax"),
    Mistake("diagonal masked", lambda q, k, v: _attention(q, k, v, allowed="strict"),
            hint="the output has NaN: the first query has every key masked. Mask only the keys after "
                 "the query (where torch.tril(...) == 0), which keeps the diagonal, so every query "
                 "sees at least itself"),
    Mistake("unscaled", lambda q, k, v: _attention(q, k, v, scale="none"),
            hint="the scores are not scaled: divide q @ k^T by math.sqrt(d_k)"),
    Mistake("softmax over queries", lambda q, k, v: _attention(q, k, v, dim=-2),
            hint="the softmax runs over the queries (dim=-2): each row of weights must sum to 1 "
                 "over the keys, softmax(dim=-1), after masking"),
    Mistake("global T", lambda q, k, v: _attention(q, k, v, allowed="global"),
            hint="the mask's size is not the input's sequence length (the notebook's 8, or q.shape[-1] "
                 "= d_k, or q.shape[1], which is the heads for 4-D q): build it from T = q.shape[-2]"),
    Mistake("out only", lambda q, k, v: _attention(q, k, v)[0], expect="should return a pair (out, weights)"),
    Mistake("(weights, out)", lambda q, k, v: _attention(q, k, v)[::-1],
            hint="the pair is in the wrong order: return (out, weights), the weighted values first"),
]


def _causal_cases() -> list[Case]:
    g = torch.Generator().manual_seed(10)
    return [
        Case("causal_attention(q, k, v) with q, k of shape (2, 6, 8) and v of shape (2, 6, 5)",
             _randn(g, 2, 6, 8, scale=2), _randn(g, 2, 6, 8, scale=2), _randn(g, 2, 6, 5)),
        Case("causal_attention(q, k, v) with heads: q, k of shape (3, 2, 5, 4), v of shape (3, 2, 5, 7)",
             _randn(g, 3, 2, 5, 4, scale=2), _randn(g, 3, 2, 5, 4, scale=2), _randn(g, 3, 2, 5, 7)),
        Case("causal_attention(q, k, v) with q, k, v of shape (11, 3)",
             _randn(g, 11, 3, scale=2), _randn(g, 11, 3, scale=2), _randn(g, 11, 3)),
        Case("causal_attention(q, k, v) with one position: q, k, v of shape (4, 1, 6)",
             _randn(g, 4, 1, 6), _randn(g, 4, 1, 6), _randn(g, 4, 1, 6)),
    ]


def _run_causal(impl: Any, case: Case) -> Any:
    (q, k, v), _ = case.fresh()
    out, weights = as_pair(impl(q, k, v), "causal_attention", ("out", "weights"))
    out = as_tensor(out, "out")
    weights = as_tensor(weights, "weights")
    return {"weights": weights.detach(), **outputs_and_grads(out, {"q": q, "k": k, "v": v})}


def _causal_cpu_mask(q, k, v):  # right on the CPU; on a GPU the CPU mask raises
    T = q.shape[-2]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    weights = scores.masked_fill(torch.tril(torch.ones(T, T)) == 0, float("-inf")).softmax(dim=-1)
    return weights @ v, weights


CPU_MASK = ("the mask was built on the CPU, not on q.device: torch.ones(T, T, device=q.device), "
            "so that the function works on a GPU")
CAUSAL.append(Mistake("mask on the CPU", _causal_cpu_mask, expect=CPU_MASK))


def _works_off_the_cpu(causal_attention: Callable[..., Any]) -> None:
    """Run ``causal_attention`` on the "meta" device (shapes, no values), which stands in for a
    GPU: a mask built on the CPU cannot meet such tensors, as it could not meet them on a GPU."""
    label = "causal_attention(q, k, v) with q, k, v of shape (2, 4, 3) on device 'meta', not the CPU"
    q, k, v = (torch.zeros(2, 4, 3, device="meta") for _ in range(3))
    result = run_on_meta(causal_attention, (q, k, v), label, CPU_MASK)
    if result is UNJUDGED:
        return
    parts = result if isinstance(result, (tuple, list)) else (result,)
    if any(isinstance(p, torch.Tensor) and p.device.type != "meta" for p in parts):
        raise CheckFailed(f"causal_attention returned a tensor on another device than q's: keep "
                          f"the results on q.device (on {label})")


@check("causal_attention", mistakes=CAUSAL)
@needs_earlier(attention_scores=1)
def check_causal_attention(causal_attention: Callable[..., Any]) -> None:
    """Exercise 2: masked, scaled attention: ``out``, ``weights`` and the gradients of ``out``
    (then once on the "meta" device, so that a mask built on the CPU shows)."""
    compare(causal_attention, reference_causal_attention, _causal_cases(),
            name="causal_attention(q, k, v)", run=_run_causal, mistakes=CAUSAL)
    _works_off_the_cpu(causal_attention)


# ---------------------------------------------------------------------------- exercise 3
class _ReferenceHead(nn.Module):
    """One causal attention head, as the lesson describes it."""

    def __init__(self, n_embd: int, head_size: int) -> None:
        super().__init__()
        self.query = nn.Linear(n_embd, head_size, bias=False)
        self.key = nn.Linear(n_embd, head_size, bias=False)
        self.value = nn.Linear(n_embd, head_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return reference_causal_attention(self.query(x), self.key(x), self.value(x))[0]


def _head_mistake(**how: Any) -> type:
    swap = how.pop("swap", False)
    kv = how.pop("v_from_key", False)
    vx = how.pop("v_is_x", False)

    class Wrong(_ReferenceHead):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            q, k = self.query(x), self.key(x)
            v = x if vx else self.key(x) if kv else self.value(x)
            if swap:
                q, k = k, q
            return _attention(q, k, v, **how)[0]

    return Wrong


class _BiasHead(_ReferenceHead):
    def __init__(self, n_embd: int, head_size: int) -> None:
        super().__init__(n_embd, head_size)
        self.key = nn.Linear(n_embd, head_size)


class _TupleHead(_ReferenceHead):
    def forward(self, x: torch.Tensor) -> Any:
        return reference_causal_attention(self.query(x), self.key(x), self.value(x))


class _Buffer8Head(_ReferenceHead):
    """A head whose mask is a buffer of the notebook's size, 8 x 8, sliced to T."""

    def __init__(self, n_embd: int, head_size: int) -> None:
        super().__init__(n_embd, head_size)
        self.register_buffer("tril", torch.tril(torch.ones(8, 8)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T = x.shape[1]
        q, k, v = self.query(x), self.key(x), self.value(x)
        scores = q @ k.transpose(-2, -1) / math.sqrt(k.shape[-1])
        return scores.masked_fill(self.tril[:T, :T] == 0, float("-inf")).softmax(dim=-1) @ v


class _SharedLinearHead(_ReferenceHead):
    """query, key and value bound to one and the same layer (a chained assignment)."""

    def __init__(self, n_embd: int, head_size: int) -> None:
        super().__init__(n_embd, head_size)
        self.query = self.key = self.value = nn.Linear(n_embd, head_size, bias=False)


_SHARED = ("self.query, self.key and self.value are one and the same nn.Linear (a chained "
           "assignment a = b = c = nn.Linear(...) makes one layer): create three separate layers")

HEAD = [
    Mistake("no mask", _head_mistake(allowed="none"),
            hint="the future is not masked: mask the scores above the diagonal with -inf"),
    Mistake("scaled by sqrt(n_embd)", type("ScaledByEmbd", (_ReferenceHead,), {
        "forward": lambda self, x: F.scaled_dot_product_attention(
            self.query(x), self.key(x), self.value(x), is_causal=True, scale=1 / math.sqrt(x.shape[-1]))}),
            hint="the scores are scaled by sqrt(n_embd); scale by sqrt(head_size), the size of the "
                 "vectors in each dot product"),
    Mistake("unscaled", _head_mistake(scale="none"),
            hint="the scores are not scaled: divide q @ k^T by math.sqrt(head_size)"),
    Mistake("q and k swapped", _head_mistake(swap=True),
            hint="queries and keys are swapped: scores = q @ k.transpose(-2, -1), with q from "
                 "self.query and k from self.key"),
    Mistake("v from key", _head_mistake(v_from_key=True),
            hint="the values come from self.key: average v = self.value(x)"),
    Mistake("k from query", type("KeyFromQuery", (_ReferenceHead,), {
        "forward": lambda self, x: reference_causal_attention(
            self.query(x), self.query(x), self.value(x))[0]}),
            hint="the keys come from self.query: compute k = self.key(x), so that queries and keys "
                 "are two different projections"),
    Mistake("v is x", _head_mistake(v_is_x=True),
            hint="the weights average x itself; average the values, v = self.value(x), the third "
                 "projection"),
    Mistake("bias", _BiasHead, expect="bias=False"),
    Mistake("returns a pair", _TupleHead, expect="return the tensor only"),
    Mistake("one layer for q, k and v", _SharedLinearHead, expect=_SHARED),
    Mistake("mask buffer of size 8", _Buffer8Head,
            hint="the mask has the notebook's size 8 x 8, too small for a longer input: build it "
                 "from x (T = x.shape[1]), as causal_attention does"),
]


def _head_cases() -> list[Case]:
    g = torch.Generator().manual_seed(11)
    return [
        Case("Head(12, 12) on x of shape (3, 7, 12)", 12, 12, _randn(g, 3, 7, 12)),
        Case("Head(12, 5) on x of shape (3, 7, 12)", 12, 5, _randn(g, 3, 7, 12)),
        Case("Head(20, 4) on x of shape (5, 2, 20)", 20, 4, _randn(g, 5, 2, 20)),
        Case("Head(6, 3) on x of shape (2, 1, 6)", 6, 3, _randn(g, 2, 1, 6)),
        Case("Head(8, 4) on x of shape (2, 11, 8) (longer than the notebook's T = 8)", 8, 4,
             _randn(g, 2, 11, 8)),
    ]


def _run_head(impl: Any, case: Case) -> Any:
    (C, hs, x), _ = case.fresh()
    head = impl(C, hs)
    owner = f"Head({C}, {hs})"
    layers = [layer(head, name, nn.Linear, shape=(hs, C), bias=False, owner=owner)
              for name in ("query", "key", "value")]
    if len({id(lin) for lin in layers}) < 3:
        raise CheckFailed(_SHARED)
    g = torch.Generator().manual_seed(C * 100 + hs)
    with torch.no_grad():  # the same weights for the learner's head and the reference
        for lin in layers:
            lin.weight.copy_(torch.randn(hs, C, generator=g) / math.sqrt(C))
    out = as_tensor(head(x), f"{owner}(x)")
    return outputs_and_grads(out, {"x": x, "query.weight": layers[0].weight,
                                   "key.weight": layers[1].weight, "value.weight": layers[2].weight})


@check("Head", mistakes=HEAD)
@needs_earlier(attention_scores=1, causal_attention=2)
def check_head(Head: Callable[..., Any]) -> None:
    """Exercise 3: a single attention head: output and gradients w.r.t. ``x`` and the three weights.

    Sizes unlike the lesson's ``C = 32``, ``head_size = 16``, ``T = 8``, head sizes other than
    ``n_embd`` (the scale must use ``head_size``), and one position only.
    """
    compare(Head, _ReferenceHead, _head_cases(), name="Head(n_embd, head_size)(x)", run=_run_head,
            mistakes=HEAD)


# ---------------------------------------------------------------------------- exercise 4
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


def _only_last_token(fn: Callable[..., Any], T: int = 8, C: int = 4) -> bool:
    x = torch.randn(2, T, C)
    x2 = x.clone()
    x2[:, -1] = torch.randn(2, C)
    return torch.allclose(fn(x)[:, :-1], fn(x2)[:, :-1])


def _only_first_position(fn: Callable[..., Any], T: int = 8, C: int = 4) -> bool:
    x = torch.randn(2, T, C)
    x2 = x.clone()
    x2[:, 1:] = torch.randn(2, T - 1, C)
    return torch.allclose(fn(x)[:, 0], fn(x2)[:, 0])


def _compares_everything(fn: Callable[..., Any], T: int = 8, C: int = 4) -> bool:
    x = torch.randn(2, T, C)
    x2 = x.clone()
    x2[:, -1] += 1
    return torch.allclose(fn(x), fn(x2))


def _uses_defaults(fn: Callable[..., Any], T: int = 8, C: int = 4) -> bool:
    return reference_is_causal(fn)  # always T=8, C=4: the arguments are ignored


def _compares_before_t(fn: Callable[..., Any], T: int = 8, C: int = 4) -> bool:
    x = torch.randn(2, T, C)
    base = fn(x)
    for t in range(T - 1):
        x2 = x.clone()
        x2[:, t + 1:] = torch.randn(2, T - t - 1, C)
        if not torch.allclose(fn(x2)[:, :t], base[:, :t], atol=1e-6):  # off by one: leaves out t
            return False
    return True


def _changes_t_too(fn: Callable[..., Any], T: int = 8, C: int = 4) -> bool:
    x = torch.randn(2, T, C)
    base = fn(x)
    for t in range(T - 1):
        x2 = x.clone()
        x2[:, t:] = torch.randn(2, T - t, C)  # off by one: position t is changed too
        if not torch.allclose(fn(x2)[:, : t + 1], base[:, : t + 1], atol=1e-6):
            return False
    return True


def _changes_x_in_place(fn: Callable[..., Any], T: int = 8, C: int = 4) -> bool:
    x = torch.randn(2, T, C)
    base = fn(x)
    for t in range(T - 1):
        x2 = x  # no copy: every cut changes x itself, so later cuts start from a changed x
        x2[:, t + 1:] = torch.randn(2, T - t - 1, C)
        if not torch.allclose(fn(x2)[:, : t + 1], base[:, : t + 1], atol=1e-6):
            return False
    return True


def _skips_last_cut(fn: Callable[..., Any], T: int = 8, C: int = 4) -> bool:
    x = torch.randn(2, T, C)
    base = fn(x)
    for t in range(T - 2):  # "t in 0..T-2" read as range(T - 2): the last cut is never made
        x2 = x.clone()
        x2[:, t + 1:] = torch.randn(2, T - t - 1, C)
        if not torch.allclose(fn(x2)[:, : t + 1], base[:, : t + 1], atol=1e-6):
            return False
    return True


IS_CAUSAL = [
    Mistake("only the last token", _only_last_token,
            hint="Changing only the last token, or looking only at position 0, misses such a leak. "
                 "Try every cut t: change the inputs after t, compare outputs 0..t"),
    Mistake("only position 0", _only_first_position, expect="leaks the future"),
    Mistake("compares every position", _compares_everything,
            hint="Change only the inputs AFTER t, in a copy (x2 = x.clone(); x2[:, t + 1:] = "
                 "fresh numbers), and compare only the outputs at positions <= t, with torch.allclose"),
    Mistake("always True", lambda fn, T=8, C=4: True, expect="leaks the future"),
    Mistake("ignores T and C", _uses_defaults,
            hint="your test ignored its arguments T and C (the check passes T=7, C=3, and fn got "
                 "inputs of other sizes): build x with torch.randn(2, T, C) from the arguments"),
    Mistake("leaves out position t", _compares_before_t,
            hint="Change the inputs after t and compare outputs at ALL positions 0..t"),
    Mistake("changes position t too", _changes_t_too, expect="x2[:, t + 1:]"),
    Mistake("changes x in place", _changes_x_in_place, expect="x2 = x.clone()"),
    Mistake("returns a tensor", lambda fn, T=8, C=4: torch.tensor([True, False]),
            expect="one True or False"),
    Mistake("skips the last cut", _skips_last_cut,
            hint="The last cut is missing: t runs over 0..T-2 INCLUDED, range(T - 1), and the cut "
                 "t = T-2 (only the last input changed) is the one that finds a leak into position T-2"),
]


@check("is_causal", mistakes=IS_CAUSAL)
def check_is_causal(is_causal: Callable[..., Any]) -> None:
    """Exercise 4: the learner's causality test tells causal and leaking functions apart.

    It is called with ``T = 7`` and ``C = 3`` (not its defaults 8 and 4), so a test that
    ignores its arguments fails; the leaks sit at the start and in the middle of the sequence.
    """
    T, C = 7, 3
    ok = causal_mask(T, T)

    def sized(f: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
        def g(x: torch.Tensor) -> torch.Tensor:
            if tuple(x.shape[1:3]) != (T, C):
                raise CheckFailed(IS_CAUSAL[4].hint)
            return f(x)
        return g

    cases = [
        ("causal attention", _masked_attention(ok), True),
        ("a running mean", lambda x: x.cumsum(1) / torch.arange(1, x.shape[1] + 1).view(1, -1, 1), True),
        ("an element-wise function", lambda x: torch.tanh(3 * x), True),
        ("attention without a mask", _masked_attention(torch.ones(T, T, dtype=torch.bool)), False),
        ("attention that also sees the next token",
         _masked_attention(torch.ones(T, T, dtype=torch.bool).tril(1)), False),
    ]
    leak = ok.clone()
    leak[0, 1] = True  # only position 0 peeks, and only at position 1
    cases.append(("attention where position 0 alone sees position 1", _masked_attention(leak), False))
    leak = ok.clone()
    leak[4, 6] = True  # a leak in the middle of the sequence, two steps ahead
    cases.append(("attention where position 4 alone sees position 6", _masked_attention(leak), False))
    cases.append(("a reversed running mean",
                  lambda x: x.flip(1).cumsum(1).flip(1) / torch.arange(x.shape[1], 0, -1).view(1, -1, 1), False))
    leak = ok.clone()
    leak[T - 2, T - 1] = True  # only the last cut (t = T-2) changes position T-1 and compares T-2
    cases.append((f"attention where position {T - 2} alone sees position {T - 1} (the last)",
                  _masked_attention(leak), False))
    for what, fn, expected in cases:
        shown = f"is_causal(<{what}>, T={T}, C={C})"
        got = as_bool(call(is_causal, sized(fn), T, C, shown=shown), shown)
        if got == expected:
            continue
        if expected:
            raise CheckFailed(f"is_causal says {what} is not causal, but it is. {IS_CAUSAL[2].hint}")
        hint = ""
        if "the last" in what:
            hint = " " + IS_CAUSAL[-1].hint
        elif "alone" in what:
            hint = " " + IS_CAUSAL[0].hint
        elif "next token" in what:
            hint = " " + IS_CAUSAL[5].hint
        raise CheckFailed(f"is_causal says {what} is causal, but it leaks the future.{hint}")
