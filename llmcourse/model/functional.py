"""From-scratch versions of the functions a GPT is made of.

Each function here is the plain formula, a few lines of tensor arithmetic, and each gives the
same numbers as its :mod:`torch.nn.functional` counterpart (``tests/test_model_functional.py``
compares them on random inputs). They exist to be read: the model calls torch's fused kernels
by default (faster, and lighter on memory); its manual attention path (``impl="manual"``, and
:meth:`GPT.attention_maps <llmcourse.model.GPT.attention_maps>`) runs
:func:`scaled_dot_product_attention` below.

- :func:`softmax`, :func:`log_softmax` - normalise scores into (log-)probabilities, stable for
  any size of score because the row maximum is subtracted first;
- :func:`cross_entropy` - the language-model loss, ``-log p(target)`` averaged over the
  targets that count (``ignore_index`` leaves padding out);
- :func:`gelu`, :func:`silu` - the activations of GPT-2's MLP and of SwiGLU;
- :func:`scaled_dot_product_attention` - ``softmax(q k^T / sqrt(d) + mask) v``.

Example:
    >>> import torch
    >>> logits = torch.tensor([[2.0, 1.0, 0.0]])
    >>> [round(p, 3) for p in softmax(logits)[0].tolist()]
    [0.665, 0.245, 0.09]
    >>> round(cross_entropy(logits, torch.tensor([0])).item(), 3)  # -ln 0.665
    0.408
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "softmax",
    "log_softmax",
    "cross_entropy",
    "gelu",
    "silu",
    "scaled_dot_product_attention",
]


def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """``exp(x) / sum(exp(x))`` along ``dim``, with the maximum subtracted first.

    Subtracting the row maximum ``m`` changes nothing mathematically (``e^(x - m)`` is
    ``e^x / e^m``, and ``e^m`` cancels between numerator and denominator) but keeps every
    exponent ``<= 0``: ``exp`` never overflows, and the largest entry is exactly ``e^0 = 1``.
    Without it, a score of 100 already overflows float32 (``e^100 > 3.4e38``).

    >>> x = torch.tensor([1000.0, 1001.0, 1002.0])
    >>> [round(p, 4) for p in softmax(x).tolist()]  # same as softmax([0, 1, 2])
    [0.09, 0.2447, 0.6652]
    >>> torch.exp(x) / torch.exp(x).sum()           # without the subtraction: inf / inf
    tensor([nan, nan, nan])
    """
    m = x.amax(dim=dim, keepdim=True).detach()  # a constant shift: no gradient needed
    e = torch.exp(x - m)
    return e / e.sum(dim=dim, keepdim=True)


def log_softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """``log(softmax(x))`` along ``dim``, computed as ``(x - m) - log(sum(exp(x - m)))``.

    Taking the log of :func:`softmax` would fail where a probability underflows to 0
    (``log 0 = -inf``); this form never builds the tiny probability, so it stays finite for
    scores as far apart as ``1e4``.

    >>> x = torch.tensor([0.0, 1e4])
    >>> log_softmax(x).tolist()
    [-10000.0, 0.0]
    >>> torch.log(softmax(x)).tolist()              # the naive way loses the first entry
    [-inf, 0.0]
    """
    m = x.amax(dim=dim, keepdim=True).detach()
    shifted = x - m  # (..., V), every entry <= 0
    return shifted - torch.log(torch.exp(shifted).sum(dim=dim, keepdim=True))


def cross_entropy(
    logits: torch.Tensor,
    targets: torch.Tensor,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> torch.Tensor:
    """The mean of ``-log p(target)`` over every target that counts.

    Args:
        logits: ``(..., V)`` unnormalised scores; the classes are the *last* dimension (the
            ``(B, T, V)`` layout of a language model), unlike
            :func:`torch.nn.functional.cross_entropy`, which wants them in dimension 1.
        targets: ``(...)`` int64 class ids, one per row of ``logits``.
        ignore_index: targets equal to it (padding) add nothing to the loss and are not
            counted in the mean.
        reduction: ``"mean"`` (over the counted targets), ``"sum"`` or ``"none"`` (per target,
            0 where ignored).

    All targets ignored gives ``nan`` for ``"mean"`` (0 / 0), as in torch.

    Worked example: logits ``[2, 1, 0]`` give ``p = [0.665, 0.245, 0.090]``, so target 0 costs
    ``-ln 0.665 = 0.408`` and target 2 costs ``-ln 0.090 = 2.408``; the mean is 1.408, and with
    the second target ignored it is 0.408.

    >>> logits = torch.tensor([[2.0, 1.0, 0.0], [2.0, 1.0, 0.0]])
    >>> round(cross_entropy(logits, torch.tensor([0, 2])).item(), 3)
    1.408
    >>> round(cross_entropy(logits, torch.tensor([0, -100])).item(), 3)
    0.408
    """
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    logp = log_softmax(logits, dim=-1)  # (..., V)
    keep = targets != ignore_index  # (...)
    safe = targets.masked_fill(~keep, 0)  # any valid index; masked out below
    nll = -logp.gather(-1, safe.unsqueeze(-1)).squeeze(-1)  # (...)
    nll = nll.masked_fill(~keep, 0.0)
    if reduction == "none":
        return nll
    if reduction == "sum":
        return nll.sum()
    return nll.sum() / keep.sum()


def gelu(x: torch.Tensor, approximate: str = "tanh") -> torch.Tensor:
    """The Gaussian error linear unit, ``x * Phi(x)`` (``Phi``: the standard normal CDF).

    ``approximate="tanh"`` (the default here, and the form GPT-2 was trained with, hence the
    default of :class:`~llmcourse.model.GPTConfig`'s ``gelu_approximate``) uses
    ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``; ``approximate="none"`` is the exact
    ``0.5 x (1 + erf(x / sqrt(2)))``, which is *torch's* default. The two differ by less than
    1e-3 everywhere.

    >>> [round(v, 4) for v in gelu(torch.tensor([-1.0, 0.0, 1.0])).tolist()]
    [-0.1588, 0.0, 0.8412]
    >>> [round(v, 4) for v in gelu(torch.tensor([-1.0, 0.0, 1.0]), approximate="none").tolist()]
    [-0.1587, 0.0, 0.8413]
    """
    if approximate == "tanh":
        inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)
        return 0.5 * x * (1.0 + torch.tanh(inner))
    if approximate == "none":
        return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))
    raise ValueError(f"approximate must be 'tanh' or 'none', got {approximate!r}")


def silu(x: torch.Tensor) -> torch.Tensor:
    """``x * sigmoid(x)`` (also called swish), the gate of SwiGLU.

    >>> [round(v, 4) for v in silu(torch.tensor([-1.0, 0.0, 1.0])).tolist()]
    [-0.2689, 0.0, 0.7311]
    """
    return x / (1.0 + torch.exp(-x))


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    is_causal: bool = False,
    *,
    dropout_p: float = 0.0,
    scale: float | None = None,
    return_weights: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """``softmax(q k^T * scale + mask) v`` for any leading dimensions.

    Args:
        q: ``(..., Tq, d)`` queries; ``k``: ``(..., Tk, d)`` keys; ``v``: ``(..., Tk, dv)``
            values. The leading dimensions (batch, heads, ...) broadcast.
        mask: broadcastable to ``(..., Tq, Tk)``. Boolean: ``True`` where a query may attend
            (the convention of torch's ``attn_mask``). Float: added to the scores (``0`` to
            keep, ``-inf`` to block).
        is_causal: query ``i`` attends to keys ``0 .. i``, aligned at the top-left corner as
            in torch (for a chunk of queries after cached keys, pass an explicit mask, e.g.
            :func:`~llmcourse.model.causal_mask`). Cannot be combined with ``mask``.
        dropout_p: drop attention weights with this probability (training only; the kept
            ones are divided by ``1 - dropout_p``).
        scale: multiplies the scores; default ``1 / sqrt(d)``.
        return_weights: also return the attention weights ``(..., Tq, Tk)``.

    The softmax runs in float32 for half-precision inputs (float32 and float64 inputs keep
    their own precision). A query whose every key is masked gets weights 0 and output 0 (as
    torch does), not NaN.

    Returns:
        ``(..., Tq, dv)``, or ``(output, weights)`` with ``return_weights=True``.

    Worked example: one query that matches the second of two keys. With ``d = 1`` the scores
    are ``q k^T = [0, 2]``, the weights ``softmax([0, 2]) = [0.119, 0.881]``, so the output is
    ``0.119 * 10 + 0.881 * 20 = 18.81``:

    >>> q = torch.tensor([[1.0]]); k = torch.tensor([[0.0], [2.0]]); v = torch.tensor([[10.0], [20.0]])
    >>> out, w = scaled_dot_product_attention(q, k, v, return_weights=True)
    >>> [round(p, 3) for p in w[0].tolist()], round(out.item(), 2)
    ([0.119, 0.881], 18.81)
    >>> x = torch.randn(2, 4, 5, 8)                 # (B, heads, T, head size)
    >>> y = scaled_dot_product_attention(x, x, x, is_causal=True)
    >>> y.shape, torch.allclose(y[..., 0, :], x[..., 0, :])  # the first query sees itself only
    (torch.Size([2, 4, 5, 8]), True)
    """
    if is_causal and mask is not None:
        raise ValueError("pass either mask or is_causal=True, not both")
    Tq, Tk = q.shape[-2], k.shape[-2]
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    scores = (q @ k.transpose(-2, -1)) * scale  # (..., Tq, Tk)
    if is_causal:
        mask = torch.ones(Tq, Tk, dtype=torch.bool, device=q.device).tril()
    if mask is not None:
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, float("-inf"))
        else:
            scores = scores + mask
    half = scores.dtype in (torch.float16, torch.bfloat16)
    att = softmax(scores.float() if half else scores, dim=-1)  # (..., Tq, Tk)
    blocked = scores.amax(dim=-1, keepdim=True) == float("-inf")  # rows with nothing to see
    att = att.masked_fill(blocked, 0.0).to(q.dtype)
    weights = att
    if dropout_p > 0.0:
        keep = torch.rand_like(att) >= dropout_p
        att = att * keep / (1.0 - dropout_p)
    out = att @ v  # (..., Tq, dv)
    return (out, weights) if return_weights else out
