"""Turning the logits of the last position into the next token: temperature, top-k, top-p.

The order is the one common libraries use: **temperature, then top-k, then top-p**, then one
draw from the softmax. Temperature 0 means greedy decoding (the argmax). :class:`Sampling`
holds the three settings, checked once when it is made; calling it samples a batch of rows
without checking them again (the public functions check their argument, then run the plain
``_temperature`` / ``_top_k`` / ``_top_p`` that the sampler calls at every token).

Example:
    >>> logits = torch.tensor([[2.0, 1.0, 0.5, -1.0]])
    >>> sample_next(logits, temperature=0.0)
    tensor([[0]])
    >>> top_k_filter(logits, 2)
    tensor([[2., 1., -inf, -inf]])
    >>> sample_next(logits, top_k=1, generator=torch.Generator().manual_seed(0))
    tensor([[0]])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from llmcourse.fields import check_field

# A set whose mass equals p up to float rounding counts as reaching p (0.5 + 0.2 = 0.6999999).
_TOP_P_TOL = 1e-6


def _check_temperature(t: float) -> float:
    return check_field("temperature", t, float, low=0,
                       rule="a finite number >= 0 (0 = greedy, 1 = the model's own distribution)")


def _check_top_k(k: int | None) -> int | None:
    return check_field("top_k", k, int, low=1, optional=True,
                       what="the number of most likely tokens to keep; None disables it")


def _check_top_p(p: float | None) -> float | None:
    return check_field("top_p", p, float, low=0, high=1, low_open=True, optional=True,
                       rule="in the interval (0, 1] (1 keeps every token)")


def _at_least_fp32(x: Tensor) -> Tensor:
    return x if x.dtype == torch.float64 else x.float()  # softmax and multinomial in fp32+


def apply_temperature(logits: Tensor, temperature: float) -> Tensor:
    """Scale logits by ``1 / temperature``; ``0`` leaves only the argmax (first on ties).

    ``softmax(logits / t)`` is sharper than the model's distribution for ``t < 1`` and flatter
    for ``t > 1``. ``t == 1`` returns ``logits`` itself.

    Example:
        >>> apply_temperature(torch.tensor([2.0, 1.0]), 2.0)
        tensor([1.0000, 0.5000])
        >>> apply_temperature(torch.tensor([1.0, 3.0, 3.0]), 0)
        tensor([-inf, 3., -inf])
    """
    return _temperature(logits, _check_temperature(temperature))


def _temperature(logits: Tensor, t: float) -> Tensor:
    if t == 1:
        return logits
    if t == 0:
        return _top_k(logits, 1)
    return logits / t


def top_k_filter(logits: Tensor, k: int) -> Tensor:
    """Keep the ``k`` largest logits of each row (lower ids win ties), the rest become ``-inf``.

    Example:
        >>> top_k_filter(torch.tensor([[0.1, 3.0, 0.1, 2.0]]), 3)   # tie: id 0 kept, id 2 not
        tensor([[0.1000, 3.0000,   -inf, 2.0000]])
    """
    return _top_k(logits, _check_top_k(k))


def _top_k(logits: Tensor, k: int) -> Tensor:
    if k >= logits.shape[-1]:
        return logits
    # A stable sort lists equal logits by increasing id (torch.topk promises no order on ties).
    keep = torch.sort(logits, dim=-1, descending=True, stable=True).indices[..., :k]  # (..., k)
    out = torch.full_like(logits, float("-inf"))
    return out.scatter(-1, keep, logits.gather(-1, keep))


def top_p_filter(logits: Tensor, p: float) -> Tensor:
    """Nucleus filtering: keep the fewest most likely tokens whose probability reaches ``p``.

    The top token is always kept; entries already at ``-inf`` stay removed. ``p == 1`` returns
    the logits unchanged.

    Example:
        >>> probs = torch.tensor([[0.1, 0.5, 0.2, 0.2]])
        >>> top_p_filter(probs.log(), 0.7).exp()   # 0.5 + 0.2 (the lower id of the tie)
        tensor([[0.0000, 0.5000, 0.2000, 0.0000]])
    """
    return _top_p(logits, _check_top_p(p))


def _top_p(logits: Tensor, p: float) -> Tensor:
    if p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(_at_least_fp32(logits), dim=-1, descending=True, stable=True)
    probs = torch.softmax(sorted_logits, dim=-1)  # (..., V), most likely first
    mass_before = torch.cumsum(probs, dim=-1) - probs  # the mass ranked above each token
    keep_sorted = mass_before < p - _TOP_P_TOL  # the first token has 0 before it: always kept
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)  # back to vocab order
    return logits.masked_fill(~keep, float("-inf"))


@dataclass(frozen=True)
class Sampling:
    """Temperature, top-k and top-p, checked once; ``sampling(logits (B, V)) -> (B, 1)`` ids.

    >>> Sampling(temperature=0)(torch.tensor([[0.0, 5.0, 1.0]]))
    tensor([[1]])
    """

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "temperature", _check_temperature(self.temperature))
        object.__setattr__(self, "top_k", _check_top_k(self.top_k))
        object.__setattr__(self, "top_p", _check_top_p(self.top_p))

    def __call__(self, logits: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if self.temperature == 0:
            return logits.argmax(dim=-1, keepdim=True)  # (B, 1), greedy: no random number
        logits = _temperature(_at_least_fp32(logits), self.temperature)
        if self.top_k is not None:
            logits = _top_k(logits, self.top_k)
        if self.top_p is not None:
            logits = _top_p(logits, self.top_p)
        probs = torch.softmax(logits, dim=-1)  # (B, V)
        return torch.multinomial(probs, num_samples=1, generator=generator)  # (B, 1)


def sample_next(
    logits: Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Pick the next token id of each row: temperature, top-k, top-p, then one draw.

    Args:
        logits: ``(B, V)`` logits of the last position (``(B, T, V)``: its last position is
            used; ``(V,)``: one row).
        temperature: ``>= 0``; 0 is greedy (the lowest id on ties), 1 the model's distribution.
        top_k: keep the ``top_k`` most likely tokens, or None.
        top_p: keep the fewest tokens with probability ``>= top_p``, or None.
        generator: a ``torch.Generator`` on the logits' device, for reproducible draws.

    Returns:
        ``(B, 1)`` int64 token ids.

    Example:
        >>> sample_next(torch.tensor([[0.0, 5.0, 1.0]]), temperature=0)
        tensor([[1]])
    """
    sampling = Sampling(temperature, top_k, top_p)
    if not isinstance(logits, Tensor) or not logits.is_floating_point():
        raise ValueError("sample_next: logits must be a floating-point tensor, got "
                         f"{getattr(logits, 'dtype', type(logits).__name__)}; pass the model's "
                         "raw output (e.g. logits[:, -1, :])")
    if logits.dim() not in (1, 2, 3) or logits.shape[-1] == 0:
        raise ValueError("sample_next: logits must have shape (B, V), (B, T, V) or (V,), got "
                         f"{tuple(logits.shape)}")
    rows = logits.reshape(-1, logits.shape[-1]) if logits.dim() == 1 else logits
    return sampling(rows[:, -1, :] if rows.dim() == 3 else rows, generator)
