"""Checks for day 22, "Top-k and top-p".

Each ``check_*`` function compares the learner's code with the package's on a small seeded
battery of inputs (batched and 1-D rows, float32 and float64, sizes unlike the notebook's, ties
at the top-k boundary, a top-p mass that reaches ``p`` exactly, ``p = 1``, ``k >= V``), prints
one line - a pass, the hint of a typical mistake from the exercise's table, or "not done yet" -
and never raises. The references are the package's :mod:`llmcourse.generate.sampling`
functions, and :func:`reference_next_token_probs` (temperature, then top-k, then top-p, then
the softmax).

A filter is compared by what it keeps, not by which of two tied tokens it keeps: the
observation is the row's values sorted (the kept logits and the ``-inf`` of the removed ones),
and whether every kept logit stayed in its place, unchanged.

Example::

    >>> from llmcourse.checks import day22
    >>> ok = day22.check_top_k_filter(lambda logits, k: logits)
    ❌ top_k_filter: top_k_filter(logits, k)['values of each row, sorted'] differs ...
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor

from llmcourse.checks._core import Case, Mistake, as_tensor, check, compare, needs_earlier
from llmcourse.generate import sampling as ref

__all__ = ["check_top_k_filter", "check_top_p_filter", "check_min_p_filter",
           "check_next_token_probs", "reference_next_token_probs", "TOP_K", "TOP_P", "MIN_P",
           "NEXT_TOKEN_PROBS"]

NEG_INF = float("-inf")


def reference_next_token_probs(logits: Tensor, temperature: float, top_k: int | None = None,
                               top_p: float | None = None) -> Tensor:
    """Probabilities of the next token: temperature, top-k, top-p, softmax (``temperature > 0``)."""
    logits = ref.apply_temperature(logits, temperature)
    if top_k is not None:
        logits = ref.top_k_filter(logits, top_k)
    if top_p is not None:
        logits = ref.top_p_filter(logits, top_p)
    return torch.softmax(logits, dim=-1)


def _filtered(name: str) -> Callable[[Any, Case], Any]:
    """The observation of a filter's result: its sorted rows, and whether kept logits stayed put."""

    def read(value: Any, case: Case) -> dict[str, Any]:
        logits = case.args[0]
        out = as_tensor(value, f"{name}(...)", shape=tuple(logits.shape)).detach()
        in_place = bool(((out == logits) | (out == NEG_INF)).all()) if out.dtype != torch.bool \
            else False
        return {"values of each row, sorted": torch.sort(out, dim=-1, descending=True).values,
                "every kept logit unchanged in its place": in_place}

    return read


def _run_untouched(impl: Any, case: Case) -> dict[str, Any]:
    """Calls ``impl`` on fresh copies and notes whether it wrote into the caller's logits."""
    args, kwargs = case.fresh()
    before = args[0].clone()
    out = impl(*args, **kwargs)
    return {"result": out, "logits left unchanged": bool(torch.equal(args[0], before))}


def _untouched(read: Callable[[Any, Case], Any], key: str = "") -> Callable[[Any, Case], Any]:
    """``read`` of the result, plus whether the input logits were left as they were."""
    def read_both(obs: dict[str, Any], case: Case) -> dict[str, Any]:
        value = read(obs["result"], case)
        value = value if isinstance(value, dict) else {key: value}
        return {**value, "logits left unchanged": obs["logits left unchanged"]}
    return read_both


def _in_place(make: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """A correct function turned into one that also writes its result into the caller's logits."""
    def wrong(logits, *args, **kwargs):
        out = make(logits, *args, **kwargs)
        if out.shape == logits.shape:
            logits.copy_(out)
        return logits if out.shape == logits.shape else out
    return wrong


_IN_PLACE = ("changed the caller's logits (an in-place write such as logits[mask] = -inf or "
             "logits /= T): build the result in a new tensor (masked_fill, scatter, logits / T) "
             "and leave the input as it was")

# ---- hints shared by the three filters -----------------------------------------------------------

_ZERO = ("set the removed logits to 0; a logit of 0 still has probability exp(0) / sum > 0 "
         "after the softmax - set them to float('-inf')")
_PROBS = ("returned probabilities; return the logits, with the removed ones set to "
          "float('-inf') (the softmax comes after the filters)")
_BIG_NEGATIVE = ("set the removed logits to -1e9; use float('-inf') so that their probability "
                 "is exactly 0 (a finite number is still a logit)")


# ---- exercise 1: top_k_filter --------------------------------------------------------------------


def _topk_keeps_ties(logits, k):  # the nanoGPT one-liner: every logit equal to the k-th is kept
    kth = torch.topk(logits, min(k, logits.shape[-1]), dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, NEG_INF)


def _topk_big_negative(logits, k):
    values, indices = torch.topk(logits, min(k, logits.shape[-1]), dim=-1)
    return torch.full_like(logits, -1e9).scatter(-1, indices, values)


def _topk_no_clamp(logits, k):  # k > V raises
    values, indices = torch.topk(logits, k, dim=-1)
    return torch.full_like(logits, NEG_INF).scatter(-1, indices, values)


def _topk_wrong_end(logits, k):
    _, indices = torch.topk(logits, min(k, logits.shape[-1]), dim=-1, largest=False)
    return logits.scatter(-1, indices, NEG_INF)


def _topk_zero(logits, k):
    values, indices = torch.topk(logits, min(k, logits.shape[-1]), dim=-1)
    return torch.zeros_like(logits).scatter(-1, indices, values)


def _topk_probs(logits, k):
    values, indices = torch.topk(logits, min(k, logits.shape[-1]), dim=-1)
    return torch.softmax(torch.full_like(logits, NEG_INF).scatter(-1, indices, values), -1)


def _topk_dim0(logits, k):  # topk along the batch instead of the vocabulary
    values, indices = torch.topk(logits, min(k, logits.shape[0]), dim=0)
    return torch.full_like(logits, NEG_INF).scatter(0, indices, values)


def _topk_mask(logits, k):
    _, indices = torch.topk(logits, min(k, logits.shape[-1]), dim=-1)
    return torch.zeros_like(logits, dtype=torch.bool).scatter(-1, indices, True)


def _topk_float32(logits, k):  # a new tensor of the default dtype, not the logits'
    values, indices = torch.topk(logits, min(k, logits.shape[-1]), dim=-1)
    return torch.full(logits.shape, NEG_INF).scatter(-1, indices, values.float())


def _topk_kth_flat(logits, k):  # values[..., -1] is (B,), compared with (B, V)
    kth = torch.topk(logits, min(k, logits.shape[-1]), dim=-1).values[..., -1]
    return logits.masked_fill(logits < kth, float("-inf"))


TOP_K = [
    Mistake("k-th value without keepdim", _topk_kth_flat,
            hint="the k-th largest value of each row, values[..., -1], has lost its last "
                 "dimension and does not line up with the rows: keep it with values[..., -1:] "
                 "(or scatter the top-k values back at their indices)"),
    Mistake("keeps ties", _topk_keeps_ties,
            hint="kept every logit tied with the k-th largest (logits < kth_value keeps ties); "
                 "keep exactly k: scatter the values of torch.topk back at its indices"),
    Mistake("-1e9", _topk_big_negative, hint=_BIG_NEGATIVE),
    Mistake("no clamp", _topk_no_clamp,
            hint="k larger than the vocabulary must keep every token: clamp k with "
                 "min(k, logits.size(-1)) before torch.topk"),
    Mistake("wrong end", _topk_wrong_end,
            hint="removed the k largest logits and kept the rest: the wrong end; keep the k "
                 "largest (torch.topk returns the largest by default)"),
    Mistake("zero", _topk_zero, hint=_ZERO),
    Mistake("probabilities", _topk_probs, hint=_PROBS),
    Mistake("dim 0", _topk_dim0,
            hint="took the top k along the first dimension (the batch); use torch.topk(logits, "
                 "k, dim=-1): every row of the last dimension is one distribution"),
    Mistake("mask", _topk_mask,
            hint="returned a mask of the kept tokens; return the logits (floats) with the "
                 "removed ones set to float('-inf')"),
    Mistake("float32", _topk_float32, expect="dtype float32, expected float64"),
    Mistake("writes into the logits", _in_place(ref.top_k_filter), hint=_IN_PLACE),
]


def _top_k_cases() -> list[Case]:
    g = torch.Generator().manual_seed(22)
    tied = torch.randn(2, 3, 11, generator=g)
    tied[0, 1] = torch.tensor([.5, 2., 1., 1., -1., 1., 3., 0., -2., 1., -.5])  # tie at the 4th
    return [
        Case("top_k_filter(logits (5, 7), k=2)", torch.randn(5, 7, generator=g), 2),
        Case("top_k_filter(logits (2, 3, 11) with a tie at the k-th largest, k=4)", tied, 4),
        Case("top_k_filter(logits (4, 9), k=1)", torch.randn(4, 9, generator=g), 1),
        Case("top_k_filter(logits (3, 9), k=9 = V)", torch.randn(3, 9, generator=g), 9),
        Case("top_k_filter(logits (3, 9), k=15 > V)", torch.randn(3, 9, generator=g), 15),
        Case("top_k_filter(logits (12,) float64, k=5)",
             torch.randn(12, generator=g, dtype=torch.float64), 5),
    ]


@check("top_k_filter", mistakes=TOP_K)
def check_top_k_filter(top_k_filter: Callable[[Tensor, int], Tensor]) -> None:
    """Exercise 1: exactly the k largest kept, a tie cut at the k-th, k >= V keeps all."""
    compare(top_k_filter, ref.top_k_filter, _top_k_cases(), name="top_k_filter(logits, k)",
            mistakes=TOP_K, run=_run_untouched,
            read=_untouched(_filtered("top_k_filter")))


# ---- exercise 2: top_p_filter --------------------------------------------------------------------


def _topp(logits, p, *, keep_rule, dim=-1, descending=True, scatter=True, softmax=True):
    probs = torch.softmax(logits, dim=-1) if softmax else logits
    sorted_probs, order = torch.sort(probs, dim=dim, descending=descending)
    before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs
    keep_sorted = keep_rule(before, sorted_probs, p)
    if not scatter:
        return logits.masked_fill(~keep_sorted, NEG_INF)
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    return logits.masked_fill(~keep, NEG_INF)


def _topp_at_most(logits, p):  # mass_before <= p: one token too many when the mass reaches p
    return _topp(logits, p, keep_rule=lambda before, probs, p: before <= p)


def _topp_cumsum(logits, p):  # cumsum <= p: the token that crosses p is dropped
    return _topp(logits, p, keep_rule=lambda before, probs, p: before + probs <= p)


def _topp_dim0(logits, p):  # sorted along the batch
    return _topp(logits, p, keep_rule=lambda before, probs, p: before < p, dim=0)


def _topp_not_scattered(logits, p):  # the sorted mask applied in vocabulary order
    return _topp(logits, p, keep_rule=lambda before, probs, p: before < p, scatter=False)


def _topp_gathered(logits, p):  # sorted mask put back with gather, the inverse permutation
    sorted_probs, order = torch.sort(torch.softmax(logits, dim=-1), dim=-1, descending=True)
    keep = (torch.cumsum(sorted_probs, dim=-1) - sorted_probs < p).gather(-1, order)
    return logits.masked_fill(~keep, float("-inf"))


def _topp_ascending(logits, p):
    return _topp(logits, p, keep_rule=lambda before, probs, p: before < p, descending=False)


def _topp_no_softmax(logits, p):  # cumulative sum of the logits themselves
    return _topp(logits, p, keep_rule=lambda before, probs, p: before < p, softmax=False)


def _topp_zero(logits, p):
    out = ref.top_p_filter(logits, p)
    return torch.where(torch.isinf(out), torch.zeros_like(out), out)


def _topp_probs(logits, p):
    return torch.softmax(ref.top_p_filter(logits, p), -1)


def _implicit_softmax(logits):  # F.softmax(logits) without dim=: dim 0 for 1-D and 3-D tensors
    return torch.softmax(logits, dim=0 if logits.dim() in (0, 1, 3) else 1)


def _topp_softmax_no_dim(logits, p):
    sorted_probs, order = torch.sort(_implicit_softmax(logits), dim=-1, descending=True)
    keep = torch.cumsum(sorted_probs, dim=-1) - sorted_probs < p
    return logits.masked_fill(~torch.zeros_like(keep).scatter(-1, order, keep), NEG_INF)


def _topp_cumsum_dim0(logits, p):  # the sort is per row, the running sum runs down the batch
    sorted_probs, order = torch.sort(torch.softmax(logits, dim=-1), dim=-1, descending=True)
    keep = torch.cumsum(sorted_probs, dim=0) - sorted_probs < p
    return logits.masked_fill(~torch.zeros_like(keep).scatter(-1, order, keep), NEG_INF)


def _topp_threshold_keeps_ties(logits, p):  # probs >= the crossing token's probability
    probs = torch.softmax(logits, dim=-1)
    sorted_probs, _ = torch.sort(probs, dim=-1, descending=True)
    before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs
    smallest_kept = torch.where(before < p, sorted_probs, torch.ones_like(sorted_probs) * 2)
    return logits.masked_fill(probs < smallest_kept.amin(-1, keepdim=True), NEG_INF)


_SOFTMAX_NO_DIM = ("took the softmax without dim= (F.softmax(logits) picks dim 0 for a 1-D or "
                   "3-D tensor, the batch instead of the vocabulary); write "
                   "torch.softmax(logits, dim=-1)")


TOP_P = [
    Mistake("writes into the logits", _in_place(ref.top_p_filter), hint=_IN_PLACE),
    Mistake("mass_before <= p", _topp_at_most,
            hint="kept one token too many: when the mass before a token is exactly p, the "
                 "tokens above it already reach p; keep a token only while the mass before it "
                 "is < p (strictly)"),
    Mistake("cumsum <= p", _topp_cumsum,
            hint="dropped the token that crosses p, so the kept mass is below p (a confident "
                 "row loses every token); keep a token when the mass *before* it is < p "
                 "(cumsum - probs < p)"),
    Mistake("sort along dim 0", _topp_dim0,
            hint="sorted along the first dimension (the batch); sort each row along the last "
                 "dimension: torch.sort(probs, dim=-1, descending=True)"),
    Mistake("mask not scattered back", _topp_not_scattered,
            hint="applied the mask found in sorted order to the logits in vocabulary order; "
                 "put it back in vocabulary order first (scatter it with the sort's indices)"),
    Mistake("gather instead of scatter", _topp_gathered,
            hint="mask.gather(-1, order) permutes the sorted mask the wrong way; put it back in "
                 "vocabulary order with scatter: torch.zeros_like(mask).scatter(-1, order, mask)"),
    Mistake("ascending", _topp_ascending,
            hint="sorted the probabilities in ascending order; the nucleus is made of the most "
                 "likely tokens: sort with descending=True"),
    Mistake("no softmax", _topp_no_softmax,
            hint="summed the logits; p is a share of the probability: take the softmax of the "
                 "row before sorting and summing"),
    Mistake("zero", _topp_zero, hint=_ZERO),
    Mistake("probabilities", _topp_probs, hint=_PROBS),
    Mistake("softmax without dim", _topp_softmax_no_dim, hint=_SOFTMAX_NO_DIM),
    Mistake("cumsum along dim 0", _topp_cumsum_dim0,
            hint="took the running sum along the first dimension (down the batch); sum each "
                 "sorted row along the last: torch.cumsum(sorted_probs, dim=-1)"),
    Mistake("threshold keeps ties", _topp_threshold_keeps_ties,
            hint="kept every token as likely as the one that crosses p (probs >= its "
                 "probability keeps its ties too); keep the fewest: mark the kept tokens in "
                 "sorted order (mass before < p) and scatter that mask back"),
]


def _top_p_cases() -> list[Case]:
    g = torch.Generator().manual_seed(2)
    batch = torch.randn(3, 2, 13, generator=g) * 1.5
    batch[2, 0, 4] = 9.0  # a confident row: the top token alone is over p
    exact = torch.tensor([0.5, 0.25, 0.125, 0.125]).log()  # 0.5 + 0.25 reaches p = 0.75 exactly
    exact_rows = torch.tensor([[0.125, 0.5, 0.125, 0.25], [0.25, 0.125, 0.125, 0.5]],
                              dtype=torch.float64).log()
    return [
        Case("top_p_filter(logits (3, 2, 13) with a confident row, p=0.72)", batch, 0.72),
        Case("top_p_filter(log of probabilities [.5, .25, .125, .125], p=0.75: the first two "
             "reach p exactly)", exact, 0.75),
        Case("top_p_filter(logits (2, 4) float64, probabilities .5, .25, .125, .125 shuffled, "
             "p=0.75)", exact_rows, 0.75),
        Case("top_p_filter(logits (4, 6), p=1: keeps every token)",
             torch.randn(4, 6, generator=g), 1.0),
        Case("top_p_filter(logits (5, 10), p=0.0001: keeps exactly the top token)",
             torch.randn(5, 10, generator=g), 1e-4),
        Case("top_p_filter(logits (6, 21), p=0.9)", torch.randn(6, 21, generator=g) * 2, 0.9),
        Case("top_p_filter(log of probabilities [.1, .2, .4, .1, .2], p=0.5: the token that "
             "crosses p is tied with another)",
             torch.tensor([0.1, 0.2, 0.4, 0.1, 0.2]).log(), 0.5),
    ]


@check("top_p_filter", mistakes=TOP_P)
def check_top_p_filter(top_p_filter: Callable[[Tensor, float], Tensor]) -> None:
    """Exercise 2: the fewest most likely tokens whose mass reaches p; p = 1 keeps all."""
    compare(top_p_filter, ref.top_p_filter, _top_p_cases(), name="top_p_filter(logits, p)",
            mistakes=TOP_P, run=_run_untouched,
            read=_untouched(_filtered("top_p_filter")))


# ---- exercise 3: min_p_filter --------------------------------------------------------------------


def _minp_strict(logits, p):  # probs > p * max: at p = 1 even the top token goes
    probs = torch.softmax(logits, -1)
    return logits.masked_fill(~(probs > p * probs.amax(-1, keepdim=True)), NEG_INF)


def _minp_absolute(logits, p):  # relative to 1 instead of the top probability
    return logits.masked_fill(torch.softmax(logits, -1) < p, NEG_INF)


def _minp_logits(logits, p):
    return logits.masked_fill(logits < p * logits.amax(-1, keepdim=True), NEG_INF)


def _minp_global_max(logits, p):
    probs = torch.softmax(logits, -1)
    return logits.masked_fill(probs < p * probs.amax(), NEG_INF)


def _minp_no_keepdim(logits, p):
    probs = torch.softmax(logits, -1)
    return logits.masked_fill(probs < p * probs.amax(-1), NEG_INF)


def _minp_zero(logits, p):
    probs = torch.softmax(logits, -1)
    return logits.masked_fill(probs < p * probs.amax(-1, keepdim=True), 0.0)


def _minp_softmax_no_dim(logits, p):
    probs = _implicit_softmax(logits)
    return logits.masked_fill(probs < p * probs.amax(-1, keepdim=True), NEG_INF)


def _minp_wrong_way(logits, p):
    probs = torch.softmax(logits, -1)
    return logits.masked_fill(probs >= p * probs.amax(-1, keepdim=True), NEG_INF)


MIN_P = [
    Mistake("writes into the logits", _in_place(ref.min_p_filter), hint=_IN_PLACE),
    Mistake("probs > p * max", _minp_strict,
            hint="removed the tokens whose probability is exactly p times the top one's (at "
                 "p = 1 even the top token): keep probs >= p * max (>=, not >)"),
    Mistake("absolute threshold", _minp_absolute,
            hint="kept the tokens with probability >= p: the threshold is relative to the most "
                 "likely token, probs >= p * probs.amax(dim=-1, keepdim=True)"),
    Mistake("logits", _minp_logits,
            hint="compared the logits with p * the top logit; compare probabilities: "
                 "softmax(logits) >= p * its maximum"),
    Mistake("batch maximum", _minp_global_max,
            hint="used one maximum for the whole batch; take the maximum of each row: "
                 "probs.amax(dim=-1, keepdim=True)"),
    Mistake("no keepdim", _minp_no_keepdim,
            hint="the row maximum lost its last dimension, so it does not line up with the "
                 "rows: probs.amax(dim=-1, keepdim=True)"),
    Mistake("zero", _minp_zero, hint=_ZERO),
    Mistake("wrong way", _minp_wrong_way,
            hint="removed the likely tokens and kept the unlikely ones; set to -inf where "
                 "probs < p * max"),
    Mistake("softmax without dim", _minp_softmax_no_dim, hint=_SOFTMAX_NO_DIM),
]


def _min_p_cases() -> list[Case]:
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 3, 10, generator=g) + 1.0
    logits[1, 2, 6] = 5.0  # a confident row keeps only its top token
    tied = torch.randn(3, 8, generator=g)
    tied[1, 2] = tied[1, 5] = tied[1].max() + 1.0  # two tokens tied at the top
    return [
        Case("min_p_filter(logits (2, 3, 10), p=0.15)", logits, 0.15),
        Case("min_p_filter(logits (2, 3, 10), p=0.4)", logits, 0.4),
        Case("min_p_filter(logits (3, 8) with a tie at the top, p=1: keeps the top token(s))",
             tied, 1.0),
        Case("min_p_filter(logits (4, 7), p=0: keeps every token)",
             torch.randn(4, 7, generator=g), 0.0),
        Case("min_p_filter(logits (15,) float64, p=0.3)",
             torch.randn(15, generator=g, dtype=torch.float64) * 2, 0.3),
    ]


@check("min_p_filter", mistakes=MIN_P)
def check_min_p_filter(min_p_filter: Callable[[Tensor, float], Tensor]) -> None:
    """Exercise 3: keep probabilities >= p * the row's top one; p = 1 keeps the top, p = 0 all."""
    compare(min_p_filter, ref.min_p_filter, _min_p_cases(), name="min_p_filter(logits, p)",
            mistakes=MIN_P, run=_run_untouched,
            read=_untouched(_filtered("min_p_filter")))


# ---- exercise 4: next_token_probs ----------------------------------------------------------------


def _filters(logits, top_k, top_p):
    if top_k is not None:
        logits = ref.top_k_filter(logits, top_k)
    if top_p is not None:
        logits = ref.top_p_filter(logits, top_p)
    return logits


def _ntp_probs_over_t(logits, temperature, top_k=None, top_p=None):  # softmax(z) / T
    return torch.softmax(_filters(logits, top_k, top_p), dim=-1) / temperature


def _ntp_filters_first(logits, temperature, top_k=None, top_p=None):
    return torch.softmax(_filters(logits, top_k, top_p) / temperature, dim=-1)


def _ntp_top_p_before_top_k(logits, temperature, top_k=None, top_p=None):
    logits = logits / temperature
    if top_p is not None:
        logits = ref.top_p_filter(logits, top_p)
    if top_k is not None:
        logits = ref.top_k_filter(logits, top_k)
    return torch.softmax(logits, dim=-1)


def _ntp_times(logits, temperature, top_k=None, top_p=None):
    return torch.softmax(_filters(logits * temperature, top_k, top_p), dim=-1)


def _ntp_no_temperature(logits, temperature, top_k=None, top_p=None):
    return torch.softmax(_filters(logits, top_k, top_p), dim=-1)


def _ntp_not_renormalised(logits, temperature, top_k=None, top_p=None):
    probs = torch.softmax(logits / temperature, dim=-1)
    return probs * torch.isfinite(_filters(logits / temperature, top_k, top_p))


def _ntp_none_crashes(logits, temperature, top_k=None, top_p=None):
    return torch.softmax(ref.top_p_filter(ref.top_k_filter(logits / temperature, top_k), top_p), -1)


def _ntp_default_filters(logits, temperature, top_k=5, top_p=0.9):  # defaults that filter
    return torch.softmax(_filters(logits / temperature, top_k, top_p), dim=-1)


def _ntp_divides_in_place(logits, temperature, top_k=None, top_p=None):
    logits /= temperature
    return reference_next_token_probs(logits, 1.0, top_k, top_p)


def _ntp_top_p_untempered(logits, temperature, top_k=None, top_p=None):
    tempered = logits / temperature
    if top_k is not None:
        tempered = ref.top_k_filter(tempered, top_k)
    if top_p is not None:  # the nucleus of the untempered distribution
        tempered = tempered.masked_fill(torch.isinf(ref.top_p_filter(logits, top_p)), NEG_INF)
    return torch.softmax(tempered, dim=-1)


def _ntp_log_probs(logits, temperature, top_k=None, top_p=None):
    return torch.log_softmax(_filters(logits / temperature, top_k, top_p), dim=-1)


NEXT_TOKEN_PROBS = [
    Mistake("logits /= T", _ntp_divides_in_place, hint=_IN_PLACE),
    Mistake("softmax(z) / T", _ntp_probs_over_t,
            hint="divided the probabilities by T after the softmax (the rows no longer sum to "
                 "1); divide the logits by T before the softmax: softmax(filtered(logits / T))"),
    Mistake("filters before the temperature", _ntp_filters_first,
            hint="applied the filters before the temperature; the order is temperature, then "
                 "top-k, then top-p (the nucleus is chosen on the tempered distribution)"),
    Mistake("top-p before top-k", _ntp_top_p_before_top_k,
            hint="applied top-p before top-k; the order is temperature, then top-k, then top-p"),
    Mistake("logits * T", _ntp_times,
            hint="multiplied the logits by the temperature; divide them: logits / temperature"),
    Mistake("no temperature", _ntp_no_temperature,
            hint="the temperature has no effect; divide the logits by it before the filters"),
    Mistake("not renormalised", _ntp_not_renormalised,
            hint="set the probabilities of the removed tokens to 0 without renormalising (the "
                 "rows sum to less than 1); take the softmax of the filtered logits"),
    Mistake("None not handled", _ntp_none_crashes,
            hint="top_k=None or top_p=None means that filter is off: apply each filter only "
                 "when its argument is not None"),
    Mistake("defaults that filter", _ntp_default_filters,
            hint="next_token_probs(logits, T) with no top_k / top_p must filter nothing: the "
                 "defaults are top_k=None, top_p=None"),
    Mistake("top-p on the untempered logits", _ntp_top_p_untempered,
            hint="chose the nucleus on the logits before the temperature; pass the tempered "
                 "(and top-k filtered) logits to top_p_filter: the order is temperature, then "
                 "top-k, then top-p"),
    Mistake("log-probabilities", _ntp_log_probs,
            hint="returned log-probabilities (log_softmax); return the probabilities, "
                 "torch.softmax(filtered_logits, dim=-1), whose rows sum to 1"),
]


def _next_token_cases() -> list[Case]:
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(5, 17, generator=g) * 2.0
    return [
        Case("next_token_probs(logits (5, 17), temperature=0.5, top_k=6, top_p=0.8)",
             logits, 0.5, 6, 0.8),
        Case("next_token_probs(logits (5, 17), temperature=1.8, top_k=None, top_p=0.6)",
             logits, 1.8, None, 0.6),
        Case("next_token_probs(logits (5, 17), temperature=1.3, top_k=9, top_p=None)",
             logits, 1.3, 9, None),
        Case("next_token_probs(logits (5, 17), temperature=2.5, top_k=12, top_p=0.5)",
             logits, 2.5, 12, 0.5),
        Case("next_token_probs(logits (1, 40), temperature=0.7) with the defaults",
             torch.randn(1, 40, generator=g) * 3, 0.7),
        Case("next_token_probs(logits (3, 9) float64, temperature=1.2, top_k=20 > V, top_p=1.0)",
             torch.randn(3, 9, generator=g, dtype=torch.float64), 1.2, 20, 1.0),
        Case("next_token_probs(logits (4, 30), temperature=0.9, top_p=0.9) by keyword",
             torch.randn(4, 30, generator=g) * 2, 0.9, top_p=0.9),
        Case("next_token_probs(logits (5, 17), temperature=1.0, top_k=None, top_p=None)",
             logits, 1.0, None, None),
    ]


def _probs(value: Any, case: Case) -> Tensor:
    return as_tensor(value, "next_token_probs(...)", shape=tuple(case.args[0].shape))


@check("next_token_probs", mistakes=NEXT_TOKEN_PROBS)
@needs_earlier(top_k_filter=1, top_p_filter=2)
def check_next_token_probs(next_token_probs: Callable[..., Tensor]) -> None:
    """Exercise 4: temperature, then top-k, then top-p, then the softmax; None = no filter."""
    compare(next_token_probs, reference_next_token_probs, _next_token_cases(),
            name="next_token_probs(...)", mistakes=NEXT_TOKEN_PROBS,
            run=_run_untouched, read=_untouched(_probs, "probabilities"))
