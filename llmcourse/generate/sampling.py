"""Turning the logits of the last position into the next token: repetition penalty,
temperature, top-k, top-p, min-p.

The order: **repetition penalty, then temperature, then top-k, then top-p, then min-p**, then
one draw from the softmax. The penalty comes first because its rule looks at the sign of the
model's own logits; temperature comes before the filters so that it changes what top-p and
min-p keep (top-k keeps the same tokens at any temperature). Temperature 0 means greedy
decoding (the argmax of the penalised logits).

Each operation exists once, as the public function below, and trusts its arguments, like
nanoGPT's loop: the settings are checked at the edge, once, when a :class:`Sampling` (or a
:class:`~llmcourse.generate.settings.Settings`) is made, or by :func:`sample_next`. Calling a
``Sampling`` runs the same public functions at every token without checking again.

- **min-p** (Nguyen et al. 2024) keeps the tokens whose probability is at least ``min_p``
  times the most likely one's: a threshold that follows the model's confidence.
- **repetition penalty**, the CTRL definition (Keskar et al. 2019): the logit of every token
  already in the context is divided by the penalty when it is positive and multiplied by it
  when it is negative (both lower it for a penalty > 1), once per distinct token.

Example:
    >>> logits = torch.tensor([[2.0, 1.0, 0.5, -1.0]])
    >>> sample_next(logits, temperature=0.0)
    tensor([[0]])
    >>> top_k_filter(logits, 2)
    tensor([[2., 1., -inf, -inf]])
    >>> sample_next(logits, top_k=1, generator=torch.Generator().manual_seed(0))
    tensor([[0]])
    >>> min_p_filter(torch.tensor([0.5, 0.3, 0.15, 0.05]).log(), 0.3).exp()  # 0.15 >= 0.3 * 0.5
    tensor([0.5000, 0.3000, 0.1500, 0.0000])
    >>> apply_repetition_penalty(torch.tensor([[2.0, -1.0, 0.5]]), torch.tensor([[0, 1, 0]]), 2.0)
    tensor([[ 1.0000, -2.0000,  0.5000]])
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from llmcourse.fields import check_field

# A set whose mass equals p up to float rounding counts as reaching p (0.5 + 0.2 = 0.6999999).
_TOP_P_TOL = 1e-6
# A token whose probability is min_p times the top one's up to rounding is kept (log space).
_MIN_P_TOL = 1e-6


def _check_temperature(t: float) -> float:
    return check_field("temperature", t, float, low=0,
                       rule="a finite number >= 0 (0 = greedy, 1 = the model's own distribution)")


def _check_top_k(k: int | None) -> int | None:
    return check_field("top_k", k, int, low=1, optional=True,
                       what="the number of most likely tokens to keep; None disables it")


def _check_top_p(p: float | None) -> float | None:
    return check_field("top_p", p, float, low=0, high=1, low_open=True, optional=True,
                       rule="in the interval (0, 1] (1 keeps every token)")


def _check_min_p(p: float | None) -> float | None:
    return check_field("min_p", p, float, low=0, high=1, optional=True,
                       rule="in [0, 1] (keep tokens with probability >= min_p * the top one's)")


def _check_repetition_penalty(r: float) -> float:
    return check_field("repetition_penalty", r, float, low=0, low_open=True,
                       rule="a finite number > 0 (1 = off, > 1 makes tokens already in the "
                       "context less likely)")


def _at_least_fp32(x: Tensor) -> Tensor:
    return x if x.dtype == torch.float64 else x.float()  # softmax and multinomial in fp32+


def apply_temperature(logits: Tensor, temperature: float) -> Tensor:
    """Scale logits by ``1 / temperature``; ``0`` leaves only the argmax (first on ties).

    ``softmax(logits / t)`` is sharper than the model's distribution for ``t < 1`` and flatter
    for ``t > 1``. ``t == 1`` returns ``logits`` itself. ``t >= 0``: like every function here,
    this one trusts its arguments (:class:`Sampling` and :func:`sample_next` check them).

    Example:
        >>> apply_temperature(torch.tensor([2.0, 1.0]), 2.0)
        tensor([1.0000, 0.5000])
        >>> apply_temperature(torch.tensor([1.0, 3.0, 3.0]), 0)
        tensor([-inf, 3., -inf])
    """
    if temperature == 1:
        return logits
    if temperature == 0:
        return top_k_filter(logits, 1)
    return logits / temperature


def top_k_filter(logits: Tensor, k: int) -> Tensor:
    """Keep the ``k`` largest logits of each row (lower ids win ties), the rest become ``-inf``.

    ``k >= 1``; ``k >= V`` keeps every logit.

    Example:
        >>> top_k_filter(torch.tensor([[0.1, 3.0, 0.1, 2.0]]), 3)   # tie: id 0 kept, id 2 not
        tensor([[0.1000, 3.0000,   -inf, 2.0000]])
    """
    if k >= logits.shape[-1]:
        return logits
    # A stable sort lists equal logits by increasing id (torch.topk promises no order on ties).
    keep = torch.sort(logits, dim=-1, descending=True, stable=True).indices[..., :k]  # (..., k)
    out = torch.full_like(logits, float("-inf"))
    return out.scatter(-1, keep, logits.gather(-1, keep))


def top_p_filter(logits: Tensor, p: float) -> Tensor:
    """Nucleus filtering: keep the fewest most likely tokens whose probability reaches ``p``.

    ``p`` in ``(0, 1]``. The top token is always kept, however small ``p`` is; entries already
    at ``-inf`` stay removed. ``p == 1`` returns the logits unchanged.

    Example:
        >>> probs = torch.tensor([[0.1, 0.5, 0.2, 0.2]])
        >>> top_p_filter(probs.log(), 0.7).exp()   # 0.5 + 0.2 (the lower id of the tie)
        tensor([[0.0000, 0.5000, 0.2000, 0.0000]])
    """
    if p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(_at_least_fp32(logits), dim=-1, descending=True, stable=True)
    probs = torch.softmax(sorted_logits, dim=-1)  # (..., V), most likely first
    mass_before = torch.cumsum(probs, dim=-1) - probs  # the mass ranked above each token
    keep_sorted = mass_before < p - _TOP_P_TOL  # (..., V), most likely first
    keep_sorted[..., 0] = True  # the top token, however small p is (p = 1e-6 is below the tolerance)
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)  # back to vocab order
    return logits.masked_fill(~keep, float("-inf"))


def min_p_filter(logits: Tensor, p: float) -> Tensor:
    """Keep the tokens whose probability is at least ``p`` times the top token's; others ``-inf``.

    The threshold is relative: ``p * max(probs)``, so it is high where the model is confident
    and low where it is not. ``p`` in ``[0, 1]``. The top token (and any tie with it) is always
    kept; ``p == 0`` keeps every token. Since ``probs_i / probs_max = exp(logit_i - logit_max)``, this is a
    threshold on the logits, ``logit_i >= logit_max + log(p)``, computed in fp32 or better.

    Example:
        >>> min_p_filter(torch.tensor([[2.0, 1.0, 0.0]]), 0.3)   # exp(-1) = 0.37 >= 0.3
        tensor([[2., 1., -inf]])
    """
    if p <= 0.0:
        return logits
    log_ratio = _at_least_fp32(logits) - logits.amax(dim=-1, keepdim=True)  # log(p_i / p_max)
    keep = log_ratio >= math.log(p) - _MIN_P_TOL  # (..., V); the top token has log ratio 0
    return logits.masked_fill(~keep, float("-inf"))


def apply_repetition_penalty(logits: Tensor, context: Tensor, penalty: float) -> Tensor:
    """The CTRL repetition penalty: lower the logit of every token id that occurs in ``context``.

    A positive logit is divided by ``penalty``, a negative one multiplied by it (Keskar et al.
    2019), once per distinct token however often it occurs. ``penalty > 1`` discourages
    repeats, ``1`` changes nothing, ``< 1`` encourages them.

    Args:
        logits: ``(..., V)`` logits.
        context: ``(..., T)`` int64 token ids in ``[0, V)`` with the same leading dimensions
            (the prompt and what was generated so far).
        penalty: ``> 0``.

    Example:
        >>> apply_repetition_penalty(torch.tensor([3.0, -2.0, 1.0]), torch.tensor([0, 1, 1]), 1.5)
        tensor([ 2., -3.,  1.])
    """
    r = penalty
    if r == 1.0 or context.shape[-1] == 0:
        return logits
    seen = logits.gather(-1, context)  # (..., T): the logit of each context token
    penalised = torch.where(seen > 0, seen / r, seen * r)
    return logits.scatter(-1, context, penalised)  # a repeated id writes the same value twice


def _check_context(context: Tensor | None, logits: Tensor) -> Tensor:
    if not isinstance(context, Tensor) or context.is_floating_point() or context.dtype == torch.bool:
        raise ValueError("repetition_penalty needs context, an integer tensor of the token ids so "
                         f"far (e.g. idx), got {getattr(context, 'dtype', type(context).__name__)}")
    if context.shape[:-1] != logits.shape[:-1]:
        raise ValueError(f"context {tuple(context.shape)} and logits {tuple(logits.shape)} must "
                         "have the same leading dimensions: (B, T) ids for (B, V) logits")
    if context.numel() and (int(context.min()) < 0 or int(context.max()) >= logits.shape[-1]):
        raise ValueError(f"context holds ids outside [0, {logits.shape[-1] - 1}]")
    return context.long()


@dataclass(frozen=True)
class Sampling:
    """The sampling settings, checked once; ``sampling(logits (B, V), context=(B, T)) -> (B, 1)``.

    ``context`` (the ids so far) is needed only with a ``repetition_penalty`` other than 1;
    without it the penalty is not applied.

    >>> Sampling(temperature=0)(torch.tensor([[0.0, 5.0, 1.0]]))
    tensor([[1]])
    >>> Sampling(temperature=0, repetition_penalty=10.0)(torch.tensor([[0.0, 5.0, 1.0]]),
    ...                                                  context=torch.tensor([[1]]))
    tensor([[2]])
    """

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    min_p: float | None = None
    repetition_penalty: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "temperature", _check_temperature(self.temperature))
        object.__setattr__(self, "top_k", _check_top_k(self.top_k))
        object.__setattr__(self, "top_p", _check_top_p(self.top_p))
        object.__setattr__(self, "min_p", _check_min_p(self.min_p))
        object.__setattr__(self, "repetition_penalty",
                           _check_repetition_penalty(self.repetition_penalty))

    def __call__(self, logits: Tensor, generator: torch.Generator | None = None,
                 context: Tensor | None = None) -> Tensor:
        if self.repetition_penalty != 1.0 and context is not None:
            logits = apply_repetition_penalty(logits, context, self.repetition_penalty)
        if self.temperature == 0:
            return logits.argmax(dim=-1, keepdim=True)  # (B, 1), greedy: no random number
        logits = apply_temperature(_at_least_fp32(logits), self.temperature)
        if self.top_k is not None:
            logits = top_k_filter(logits, self.top_k)
        if self.top_p is not None:
            logits = top_p_filter(logits, self.top_p)
        if self.min_p is not None:
            logits = min_p_filter(logits, self.min_p)
        probs = torch.softmax(logits, dim=-1)  # (B, V)
        return torch.multinomial(probs, num_samples=1, generator=generator)  # (B, 1)


def sample_next(
    logits: Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    *,
    min_p: float | None = None,
    repetition_penalty: float = 1.0,
    context: Tensor | None = None,
) -> Tensor:
    """Pick the next token id of each row: penalty, temperature, top-k, top-p, min-p, one draw.

    Args:
        logits: ``(B, V)`` logits of the last position (``(B, T, V)``: its last position is
            used; ``(V,)``: one row).
        temperature: ``>= 0``; 0 is greedy (the lowest id on ties), 1 the model's distribution.
        top_k: keep the ``top_k`` most likely tokens, or None.
        top_p: keep the fewest tokens with probability ``>= top_p``, or None.
        generator: a ``torch.Generator`` on the logits' device, for reproducible draws.
        min_p: keep the tokens with probability ``>= min_p`` times the top one's, or None.
        repetition_penalty: CTRL penalty for the ids in ``context``; 1 is off.
        context: ``(B, T)`` ids so far (needed when ``repetition_penalty != 1``).

    Returns:
        ``(B, 1)`` int64 token ids.

    Example:
        >>> sample_next(torch.tensor([[0.0, 5.0, 1.0]]), temperature=0)
        tensor([[1]])
    """
    sampling = Sampling(temperature, top_k, top_p, min_p, repetition_penalty)
    if not isinstance(logits, Tensor) or not logits.is_floating_point():
        raise ValueError("sample_next: logits must be a floating-point tensor, got "
                         f"{getattr(logits, 'dtype', type(logits).__name__)}; pass the model's "
                         "raw output (e.g. logits[:, -1, :])")
    if logits.dim() not in (1, 2, 3) or logits.shape[-1] == 0:
        raise ValueError("sample_next: logits must have shape (B, V), (B, T, V) or (V,), got "
                         f"{tuple(logits.shape)}")
    rows = logits.reshape(-1, logits.shape[-1]) if logits.dim() == 1 else logits
    rows = rows[:, -1, :] if rows.dim() == 3 else rows  # (B, V)
    if sampling.repetition_penalty != 1.0:
        if isinstance(context, Tensor) and context.dim() == 1:
            context = context.reshape(1, -1)  # (T,) ids for one row
        context = _check_context(context, rows)
    return sampling(rows, generator, context)
