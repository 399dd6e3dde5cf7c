"""Checks for day 13, "Reading the loss".

Each ``check_*`` function runs the learner's code, prints one line - a pass, a specific hint, or
"not done yet" - and returns a ``Verdict``. None of them raises. The references are the
package's: :mod:`llmcourse.model.functional` (``log_softmax``, ``cross_entropy``) and
:mod:`llmcourse.train.evaluate` (``perplexity``, ``bits_per_byte``).

Example::

    >>> from llmcourse.checks import day13
    >>> from llmcourse.model import functional as LF
    >>> ok = day13.check_log_softmax(LF.log_softmax)
    ✅ log_softmax: passed
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F

from llmcourse.checks._core import CheckFailed, as_tensor, assert_close, call, check, needs_earlier

__all__ = ["check_log_softmax", "check_cross_entropy", "check_units", "check_loss_by_position"]


def _randn(*shape: int, seed: int = 0, scale: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g) * scale


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise CheckFailed("write it from torch.exp, torch.log and amax/max: the exercise is to build "
                      "log_softmax yourself, so do not call F.log_softmax / softmax here")


@contextlib.contextmanager
def _no_builtin_softmax() -> Iterator[None]:
    """Make torch's own (log_)softmax raise a hint while the learner's function runs."""
    targets = [(F, "log_softmax"), (F, "softmax"), (torch, "log_softmax"), (torch, "softmax"),
               (torch.Tensor, "log_softmax"), (torch.Tensor, "softmax")]
    saved = [(obj, name, getattr(obj, name)) for obj, name in targets]
    try:
        for obj, name in targets:
            setattr(obj, name, _refuse)
        yield
    finally:
        for obj, name, fn in saved:
            setattr(obj, name, fn)


@check("log_softmax")
def check_log_softmax(log_softmax: Callable[..., Any]) -> None:
    """Exercise 1: ``log_softmax(x)`` over the last dimension, stable at scores of 1e4."""
    x = _randn(3, 7, scale=3.0)  # (3, 7): not the notebook's sizes
    with _no_builtin_softmax():
        got = as_tensor(call(log_softmax, x, shown="log_softmax(x) with x of shape (3, 7)"),
                        "log_softmax(x)")
    want = F.log_softmax(x, dim=-1)
    if got.shape == want.shape:
        if torch.allclose(got, F.softmax(x, dim=-1), atol=1e-5):
            raise CheckFailed("that is the softmax itself; log_softmax is its logarithm "
                              "((x - m) - log(sum(exp(x - m))))")
        if torch.allclose(got, F.log_softmax(x, dim=0), atol=1e-5):
            raise CheckFailed("you normalised over the wrong dimension: sum over the scores of "
                              "one row, the last dimension (dim=-1, keepdim=True)")
        if torch.allclose(got, -want, atol=1e-5):
            raise CheckFailed("the sign is flipped: log-probabilities are <= 0")
    assert_close(got, want, "log_softmax(x) for x of shape (3, 7)", atol=1e-5)
    x3 = _randn(2, 3, 5, seed=1, scale=2.0)
    with _no_builtin_softmax():
        got3 = as_tensor(call(log_softmax, x3, shown="log_softmax(x) with x of shape (2, 3, 5)"),
                         "log_softmax(x)")
    assert_close(got3, F.log_softmax(x3, dim=-1), "log_softmax(x) for x of shape (2, 3, 5)",
                 atol=1e-5)
    big = torch.tensor([[0.0, 1e4, -1e4], [1e4, 1e4, 1e4]])
    with _no_builtin_softmax():
        got_big = as_tensor(call(log_softmax, big, shown="log_softmax([[0, 1e4, -1e4], [1e4, 1e4, 1e4]])"),
                            "log_softmax(big)")
    no_max = big - torch.log(torch.exp(big).sum(-1, keepdim=True))  # all -inf
    if (torch.isnan(got_big).any() or torch.isposinf(got_big).any()
            or torch.equal(torch.isneginf(got_big), torch.isneginf(no_max))):
        raise CheckFailed("with scores of 1e4 you get nan/inf: exp(1e4) overflows. Subtract the "
                          "row maximum m first: log_softmax(x) = (x - m) - log(sum(exp(x - m)))")
    if torch.isneginf(got_big).any():
        raise CheckFailed("with scores [0, 1e4, -1e4] you get -inf: log(softmax(x)) takes the log "
                          "of a probability that underflowed to 0. Compute (x - m) - "
                          "log(sum(exp(x - m))) instead, never the log of the softmax")
    assert_close(got_big, F.log_softmax(big, dim=-1), "log_softmax([[0, 1e4, -1e4], [1e4, 1e4, 1e4]])",
                 atol=1e-3)


def _ce_ref(logits: torch.Tensor, targets: torch.Tensor, ignore_index: int) -> torch.Tensor:
    V = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=ignore_index)


@check("cross_entropy")
@needs_earlier(log_softmax=1)
def check_cross_entropy(cross_entropy: Callable[..., Any]) -> None:
    """Exercise 2: mean ``-log p(target)`` over the counted targets, ``ignore_index`` left out."""
    B, T, V = 2, 5, 9
    logits = _randn(B, T, V, seed=2, scale=2.0)
    g = torch.Generator().manual_seed(3)
    targets = torch.randint(1, V, (B, T), generator=g)
    shown = f"cross_entropy(logits of shape ({B}, {T}, {V}), targets of shape ({B}, {T}))"
    got = as_tensor(call(cross_entropy, logits, targets, shown=shown), "cross_entropy(...)")
    if got.numel() != 1:
        raise CheckFailed(f"cross_entropy returned shape {tuple(got.shape)}; it should be one "
                          "number, the mean over the counted targets")
    want = _ce_ref(logits, targets, -100)
    value, ref = got.item(), want.item()
    if math.isclose(value, -ref, rel_tol=1e-4):
        raise CheckFailed("the sign is wrong: the loss is MINUS the mean log-probability")
    if math.isclose(value, ref * B * T, rel_tol=1e-4):
        raise CheckFailed("that is the sum over the targets; divide by how many were counted")
    if math.isclose(value, ref / math.log(2), rel_tol=1e-4):
        raise CheckFailed("that is in bits (log base 2); the loss uses the natural log")
    assert_close(got.reshape(()), want, shown, atol=1e-5)

    # Padding: positions whose target is ignore_index add nothing and are not counted.
    padded = targets.clone()
    padded[0, 3:] = -100
    padded[1, 4] = -100
    n_kept = int((padded != -100).sum())
    shown = "cross_entropy(logits, targets) with 3 of the 10 targets equal to ignore_index=-100"
    got = as_tensor(call(cross_entropy, logits, padded, shown=shown,
                         hint="targets equal to ignore_index are not class ids: replace them by "
                              "a valid id (e.g. 0) before gather, then mask those positions out"),
                    "cross_entropy(...)").reshape(())
    want = _ce_ref(logits, padded, -100)
    per = F.cross_entropy(logits.reshape(-1, V), padded.reshape(-1), ignore_index=-100,
                          reduction="none")
    if math.isclose(got.item(), per.sum().item() / (B * T), rel_tol=1e-4):
        raise CheckFailed(f"you divided by all {B * T} positions; the mean is over the {n_kept} "
                          "counted targets (those != ignore_index)")
    if not torch.isfinite(got):
        raise CheckFailed(f"the loss is {got.item()} with ignored targets; set the ignored "
                          "positions to 0 (masked_fill or where) before summing")
    assert_close(got, want, shown, atol=1e-5)

    # ignore_index that is a real class id (0), passed by keyword.
    zero_pad = targets.clone()
    zero_pad[:, -2:] = 0
    shown = "cross_entropy(logits, targets, ignore_index=0)"
    got = as_tensor(call(cross_entropy, logits, zero_pad, ignore_index=0, shown=shown),
                    "cross_entropy(...)").reshape(())
    if math.isclose(got.item(), _ce_ref(logits, zero_pad, -100).item(), rel_tol=1e-5):
        raise CheckFailed("ignore_index=0 was not used: the targets equal to 0 still count. "
                          "Build the mask from the ignore_index argument, not from -100")
    assert_close(got, _ce_ref(logits, zero_pad, 0), shown, atol=1e-5)

    # (N, V) logits, stability, gradient.
    flat = _randn(6, 4, seed=4)
    t_flat = torch.tensor([0, 1, 2, 3, 0, 1])
    got = as_tensor(call(cross_entropy, flat, t_flat, shown="cross_entropy on (6, 4) logits"),
                    "cross_entropy(...)").reshape(())
    assert_close(got, F.cross_entropy(flat, t_flat), "cross_entropy on (N, V) = (6, 4) logits",
                 atol=1e-5)
    big = torch.tensor([[0.0, 1e4, -1e4]])
    got = as_tensor(call(cross_entropy, big, torch.tensor([0]), shown="cross_entropy([[0, 1e4, -1e4]], [0])"),
                    "cross_entropy(...)").reshape(())
    if not torch.isfinite(got):
        raise CheckFailed("a confident wrong answer (logits [0, 1e4, -1e4], target 0) gives a "
                          "non-finite loss; build it on your stable log_softmax")
    assert_close(got, torch.tensor(1e4), "cross_entropy([[0, 1e4, -1e4]], [0])", rtol=1e-4)
    leaf = logits.clone().requires_grad_(True)
    out = call(cross_entropy, leaf, targets, shown="cross_entropy on logits that need a gradient")
    if not getattr(out, "requires_grad", False):
        raise CheckFailed("the loss does not depend on the logits through autograd (did you use "
                          ".item(), .detach() or numpy?); keep it a tensor computation")


def _number(value: Any, name: str) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise CheckFailed(f"{name} returned a tensor of shape {tuple(value.shape)}; return "
                              "one number")
        value = value.item()
    if value is None:
        raise CheckFailed(f"{name} returned None; did you forget the `return`?")
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise CheckFailed(f"{name} should return a number, got {type(value).__name__}") from exc


@check("perplexity and bits per byte")
def check_units(perplexity: Callable[[float], Any], bits_per_byte: Callable[..., Any]) -> None:
    """Exercise 3: ``perplexity(loss)`` and ``bits_per_byte(loss, n_tokens, n_bytes)``."""
    loss = 1.7
    got = _number(call(perplexity, loss, shown="perplexity(1.7)"), "perplexity(1.7)")
    if math.isclose(got, 2**loss, rel_tol=1e-6):
        raise CheckFailed("perplexity(1.7) is 2 ** 1.7; the loss is in nats (natural log), so "
                          "the perplexity is e ** loss (math.exp)")
    if math.isclose(got, 10**loss, rel_tol=1e-6):
        raise CheckFailed("perplexity(1.7) is 10 ** 1.7; the loss is in nats: use math.exp")
    if math.isclose(got, math.log(loss), rel_tol=1e-6) or math.isclose(got, 1 / math.exp(loss)):
        raise CheckFailed("perplexity is exp(loss), the number of equally likely choices")
    if not math.isclose(got, math.exp(loss), rel_tol=1e-6):
        raise CheckFailed(f"perplexity(1.7) returned {got:.4f}, expected exp(1.7) = "
                          f"{math.exp(loss):.4f}")
    one = _number(call(perplexity, math.log(65), shown="perplexity(ln 65)"), "perplexity(ln 65)")
    if not math.isclose(one, 65.0, rel_tol=1e-6):
        raise CheckFailed(f"perplexity(ln 65) should be 65 (a uniform guess), got {one:.4f}")

    # GPT-2-like numbers: 1,000 tokens covering 4,200 bytes of text, a loss of 3.3 nats/token.
    loss, n_tokens, n_bytes = 3.3, 1000, 4200
    shown = "bits_per_byte(3.3, n_tokens=1000, n_bytes=4200)"
    got = _number(call(bits_per_byte, loss, n_tokens, n_bytes, shown=shown), shown)
    want = loss / math.log(2) * n_tokens / n_bytes
    if math.isclose(got, loss * n_tokens / n_bytes, rel_tol=1e-6):
        raise CheckFailed("that is nats per byte: divide by ln 2 (math.log(2)) to get bits")
    if math.isclose(got, loss * math.log(2) * n_tokens / n_bytes, rel_tol=1e-6):
        raise CheckFailed("you multiplied by ln 2; bits = nats / ln 2")
    if math.isclose(got, loss / math.log(2) * n_bytes / n_tokens, rel_tol=1e-6):
        raise CheckFailed("the ratio is upside down: a token holds n_bytes / n_tokens bytes, so the "
                          "bits of one token are spread over that many bytes: multiply by "
                          "n_tokens / n_bytes")
    if math.isclose(got, loss / math.log(2), rel_tol=1e-6):
        raise CheckFailed("that is bits per token; spread them over the bytes: multiply by "
                          "n_tokens / n_bytes")
    if math.isclose(got, math.log2(loss) * n_tokens / n_bytes, rel_tol=1e-6):
        raise CheckFailed("log2(loss) is not a change of unit; bits = nats / ln 2")
    if not math.isclose(got, want, rel_tol=1e-6):
        raise CheckFailed(f"{shown} returned {got:.4f}, expected {want:.4f} "
                          "(loss / ln 2 * n_tokens / n_bytes)")
    shown = "bits_per_byte(1.2, n_tokens=500, n_bytes=500) (a character model on ASCII)"
    got = _number(call(bits_per_byte, 1.2, 500, 500, shown=shown), shown)
    if not math.isclose(got, 1.2 / math.log(2), rel_tol=1e-6):
        raise CheckFailed(f"{shown} returned {got:.4f}, expected {1.2 / math.log(2):.4f}")


@check("loss_by_position")
def check_loss_by_position(loss_by_position: Callable[..., Any]) -> None:
    """Exercise 4: the mean loss at each position ``t`` of the block, ``(T,)``."""
    B, T, V = 5, 7, 6
    logits = _randn(B, T, V, seed=5, scale=2.0)
    g = torch.Generator().manual_seed(6)
    targets = torch.randint(V, (B, T), generator=g)
    shown = f"loss_by_position(logits of shape ({B}, {T}, {V}), targets of shape ({B}, {T}))"
    got = call(loss_by_position, logits, targets, shown=shown)
    got = as_tensor(got, "loss_by_position(...)")
    per = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), reduction="none").view(B, T)
    if tuple(got.shape) == (B,):
        raise CheckFailed(f"you got shape ({B},): one value per sequence (the mean over "
                          f"positions). Average over the batch instead, dim=0, to get ({T},)")
    if got.numel() == 1:
        raise CheckFailed(f"you returned one number; keep one value per position: shape ({T},)")
    if tuple(got.shape) == (B, T):
        raise CheckFailed(f"that is the loss of every token, ({B}, {T}); average over the batch "
                          f"(dim=0) to get one value per position, ({T},)")
    if tuple(got.shape) == (T,):
        if torch.allclose(got, per.sum(0), atol=1e-4):
            raise CheckFailed("that is the sum over the batch; take the mean (divide by B)")
        if torch.allclose(got, -per.mean(0), atol=1e-4):
            raise CheckFailed("the sign is wrong: the loss is -log p(target)")
        wrong_order = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1),
                                      reduction="none").view(T, B).mean(1)
        if torch.allclose(got, wrong_order, atol=1e-4):
            raise CheckFailed("the per-token losses come in (B, T) order: reshape them to "
                              "(B, T), not (T, B), before averaging over dim 0")
    assert_close(got, per.mean(0), shown, atol=1e-5)
