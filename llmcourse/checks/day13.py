"""Checks for day 13, "Reading the loss".

Each ``check_*`` function compares the learner's code with a reference on a small seeded battery
of inputs (several shapes unlike the notebook's ``V = 65``, 1-D to 3-D, float32 and float64,
scores as far apart as ``1e4``, padding with ``ignore_index`` and an ``ignore_index`` that is a
real class id), the gradients with respect to the logits included. When the answer differs, the
exercise's table of typical mistakes names the mistake; otherwise the line names the input and
the largest difference. Each prints one line - a pass, a specific hint, or "not done yet" - and
never raises. The references are ``torch``'s (``logsumexp``, ``F.cross_entropy``) and ``math``;
while the learner's ``log_softmax`` runs, torch's own ``(log_)softmax`` and ``logsumexp`` are refused.

Example::

    >>> import torch
    >>> from llmcourse.checks import day13
    >>> def log_softmax(x):
    ...     m = x.amax(dim=-1, keepdim=True)
    ...     return (x - m) - torch.log(torch.exp(x - m).sum(dim=-1, keepdim=True))
    >>> ok = day13.check_log_softmax(log_softmax)
    ✅ log_softmax: passed
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F

from llmcourse.checks._core import (Case, CheckFailed, Mistake, as_float, as_tensor, check,
                                    compare, needs_earlier, outputs_and_grads)

__all__ = ["check_log_softmax", "check_cross_entropy", "check_units", "check_loss_by_position"]


def _randn(*shape: int, seed: int = 0, scale: float = 1.0,
           dtype: torch.dtype = torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=g) * scale).to(dtype)


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise CheckFailed("write it from torch.exp, torch.log and amax/max: the exercise is to build "
                      "log_softmax yourself, so do not call F.log_softmax / softmax here")


def _refuse_logsumexp(*args: Any, **kwargs: Any) -> Any:
    raise CheckFailed("do not call torch.logsumexp here: build log-sum-exp yourself from amax, exp "
                      "and log, m + log(sum(exp(x - m))) - that is the stable trick this exercise is "
                      "about")


_torch_logsumexp = torch.logsumexp  # kept for the reference, which runs while it is refused


@contextlib.contextmanager
def _no_builtin_softmax() -> Iterator[None]:
    """Make torch's own (log_)softmax and logsumexp raise a hint while the learner's function runs."""
    targets = [(F, "log_softmax", _refuse), (F, "softmax", _refuse),
               (torch, "log_softmax", _refuse), (torch, "softmax", _refuse),
               (torch.Tensor, "log_softmax", _refuse), (torch.Tensor, "softmax", _refuse),
               (torch, "logsumexp", _refuse_logsumexp), (torch.special, "logsumexp", _refuse_logsumexp),
               (torch.Tensor, "logsumexp", _refuse_logsumexp)]
    saved = [(obj, name, getattr(obj, name)) for obj, name, _ in targets]
    try:
        for obj, name, refusal in targets:
            setattr(obj, name, refusal)
        yield
    finally:
        for obj, name, fn in saved:
            setattr(obj, name, fn)


def _output(name: str) -> Callable[[Any, Case], Any]:
    """``read``: the output of an observation must be a tensor (None / list hints)."""
    def read(obs: dict[str, Any], case: Case) -> dict[str, Any]:
        as_tensor(obs["output"], name)
        return obs
    return read


# ---- exercise 1: log_softmax -----------------------------------------------------------------


def _reference_log_softmax(x):
    return x - _torch_logsumexp(x, dim=-1, keepdim=True)


def _stable(x):
    m = x.amax(dim=-1, keepdim=True)
    return (x - m) - torch.log(torch.exp(x - m).sum(dim=-1, keepdim=True))


def _no_max(x):
    return x - torch.log(torch.exp(x).sum(-1, keepdim=True))


def _log_of_softmax(x):
    m = x.amax(-1, keepdim=True)
    e = torch.exp(x - m)
    return torch.log(e / e.sum(-1, keepdim=True))


def _wrong_dim(x):
    m = x.amax(0, keepdim=True)
    return (x - m) - torch.log(torch.exp(x - m).sum(0, keepdim=True))


def _just_softmax(x):
    m = x.amax(-1, keepdim=True)
    e = torch.exp(x - m)
    return e / e.sum(-1, keepdim=True)


def _flipped(x):
    return -_stable(x)


def _no_keepdim(x):
    m = x.amax(dim=-1)
    return (x - m) - torch.log(torch.exp(x - m).sum(dim=-1))


def _forgets_m_in_log(x):
    m = x.amax(dim=-1, keepdim=True)
    return (x - m) - torch.log(torch.exp(x).sum(dim=-1, keepdim=True))


def _one_max(x):  # the maximum of the whole tensor, not of each row
    m = x.max()
    return (x - m) - torch.log(torch.exp(x - m).sum(dim=-1, keepdim=True))


def _sum_all(x):
    m = x.amax(dim=-1, keepdim=True)
    return (x - m) - torch.log(torch.exp(x - m).sum())


def _max_tuple(x):  # x.max(dim=...) returns (values, indices), not a tensor
    m = x.max(dim=-1, keepdim=True)
    return (x - m) - torch.log(torch.exp(x - m).sum(dim=-1, keepdim=True))


def _in_place_shift(x):
    x -= x.amax(dim=-1, keepdim=True)
    return x - torch.log(torch.exp(x).sum(dim=-1, keepdim=True))


def _plus_lse(x):
    m = x.amax(dim=-1, keepdim=True)
    return (x - m) + torch.log(torch.exp(x - m).sum(dim=-1, keepdim=True))


def _dim_1(x):
    m = x.amax(dim=1, keepdim=True)
    return (x - m) - torch.log(torch.exp(x - m).sum(dim=1, keepdim=True))


def _unshifted_x(x):  # the shift kept in the log, forgotten in front
    m = x.amax(dim=-1, keepdim=True)
    return x - torch.log(torch.exp(x - m).sum(dim=-1, keepdim=True))


def _log_of_literal_softmax(x):  # the formula written literally, no maximum at all
    return torch.log(torch.exp(x) / torch.exp(x).sum(dim=-1, keepdim=True))


LOG_SOFTMAX = [
    Mistake("softmax itself", _just_softmax,
            hint="that is the softmax itself; log_softmax is its logarithm "
                 "((x - m) - log(sum(exp(x - m))))"),
    Mistake("wrong dim", _wrong_dim,
            hint="you normalised over the wrong dimension: sum over the scores of one row, the "
                 "last dimension (dim=-1, keepdim=True)"),
    Mistake("sign", _flipped, hint="the sign is flipped: log-probabilities are <= 0"),
    Mistake("no max", _no_max,
            hint="with scores of 1e4 you get nan/inf: exp(1e4) overflows. Subtract the row "
                 "maximum m first: log_softmax(x) = (x - m) - log(sum(exp(x - m)))"),
    Mistake("log of softmax", _log_of_softmax,
            hint="with scores [0, 1e4, -1e4] you get -inf: log(softmax(x)) takes the log of a "
                 "probability that underflowed to 0. Compute (x - m) - log(sum(exp(x - m))) "
                 "instead, never the log of the softmax"),
    Mistake("m left out of the log", _forgets_m_in_log,
            hint="subtract m inside the sum too: log(sum(exp(x - m))), the same shift as in "
                 "x - m"),
    Mistake("x instead of x - m in front", _unshifted_x,
            hint="the first term must be shifted too: (x - m) - log(sum(exp(x - m))); with x "
                 "alone every log-probability is off by the row maximum m"),
    Mistake("log(exp(x) / sum(exp(x)))", _log_of_literal_softmax,
            hint="exp(1e4) overflows to inf and inf / inf is nan: subtract the row maximum m "
                 "first, log_softmax(x) = (x - m) - log(sum(exp(x - m)))"),
    Mistake("no keepdim", _no_keepdim,
            hint="amax / sum without keepdim=True drop the last axis, so x - m lines the row "
                 "maxima up with the wrong axis: use x.amax(dim=-1, keepdim=True) and "
                 ".sum(dim=-1, keepdim=True)"),
    Mistake("sum over everything", _sum_all,
            hint="the sum runs over the whole tensor (.sum() with no dim): sum each row only, "
                 "torch.exp(x - m).sum(dim=-1, keepdim=True)"),
    Mistake("one max for the whole tensor", _one_max,
            hint="subtract the maximum of each row (x.amax(dim=-1, keepdim=True)), not of the whole "
                 "tensor: a row far below the overall maximum underflows to exp(...) = 0 and "
                 "log(0) = -inf"),
    Mistake("x.max(dim) is a pair", _max_tuple,
            hint="x.max(dim=-1, keepdim=True) returns a pair (values, indices): take .values, or "
                 "use x.amax(dim=-1, keepdim=True), which returns the maxima alone"),
    Mistake("x -= m in place", _in_place_shift,
            hint="x -= m changes the caller's tensor in place (and fails on one that requires "
                 "grad): compute a new tensor, shifted = x - m"),
    Mistake("+ log-sum-exp", _plus_lse,
            hint="the log of the sum is subtracted, not added: (x - m) - log(sum(exp(x - m))), so "
                 "every log-probability is <= 0"),
    Mistake("dim=1", _dim_1,
            hint="dim=1 is the last dimension only for 2-D inputs; for x of any shape normalise over "
                 "dim=-1 (amax and sum, keepdim=True)"),
    Mistake("torch's log_softmax", lambda x: F.log_softmax(x, dim=-1),
            expect="do not call F.log_softmax"),
    Mistake("Tensor.log_softmax", lambda x: x.log_softmax(-1), expect="yourself"),
    Mistake("torch.logsumexp", lambda x: x - torch.logsumexp(x, dim=-1, keepdim=True),
            expect="build log-sum-exp yourself from amax, exp and log"),
    Mistake("Tensor.logsumexp", lambda x: x - x.logsumexp(-1, keepdim=True),
            expect="build log-sum-exp yourself from amax, exp and log"),
]


def _log_softmax_cases() -> list[Case]:
    big = torch.tensor([[0.0, 1e4, -1e4], [1e4, 1e4, 1e4]])
    return [
        Case("log_softmax(x) with x of shape (3, 7)", _randn(3, 7, scale=3.0)),
        Case("log_softmax(x) with x of shape (2, 3, 5)", _randn(2, 3, 5, seed=1, scale=2.0)),
        Case("log_softmax(x) with x of shape (11,)", _randn(11, seed=2)),
        Case("log_softmax(x) with x float64 of shape (4, 6)",
             _randn(4, 6, seed=3, dtype=torch.float64)),
        Case("log_softmax([[0, 1e4, -1e4], [1e4, 1e4, 1e4]])", big),
        Case("log_softmax(x) with x of shape (2, 1) (one class)", _randn(2, 1, seed=4)),
        Case("log_softmax([[0, 1, 2], [1000, 1001, 999]]) (rows far apart)",
             torch.tensor([[0.0, 1.0, 2.0], [1000.0, 1001.0, 999.0]])),
    ]


def _log_softmax_run(impl: Any, case: Case) -> dict[str, Any]:
    (x,), _ = case.fresh()
    x.requires_grad_(True)
    with _no_builtin_softmax():
        out = impl(x)
    return outputs_and_grads(out, {"x": x})


@check("log_softmax", mistakes=LOG_SOFTMAX)
def check_log_softmax(log_softmax: Callable[..., Any]) -> None:
    """Exercise 1: ``log_softmax(x)`` over the last dimension, stable at scores of 1e4."""
    compare(log_softmax, _reference_log_softmax, _log_softmax_cases(), name="log_softmax(x)",
            run=_log_softmax_run, mistakes=LOG_SOFTMAX, read=_output("log_softmax(x)"),
            atol=1e-5, rtol=1e-4)


# ---- exercise 2: cross_entropy ---------------------------------------------------------------


def _reference_cross_entropy(logits, targets, ignore_index=-100):
    V = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=ignore_index)


def _picked(logits, targets, ignore_index, log_softmax=_stable):
    logp = log_softmax(logits)
    keep = targets != ignore_index
    return logp.gather(-1, targets.masked_fill(~keep, 0).unsqueeze(-1)).squeeze(-1), keep


def _ce_all_positions(logits, targets, ignore_index=-100):
    picked, keep = _picked(logits, targets, ignore_index)
    return -(picked * keep).mean()


def _ce_summed(logits, targets, ignore_index=-100):
    picked, keep = _picked(logits, targets, ignore_index)
    return -(picked * keep).sum()


def _ce_sign(logits, targets, ignore_index=-100):
    picked, keep = _picked(logits, targets, ignore_index)
    return (picked * keep).sum() / keep.sum()


def _ce_bits(logits, targets, ignore_index=-100):
    picked, keep = _picked(logits, targets, ignore_index)
    return -(picked * keep).sum() / keep.sum() / math.log(2)


def _ce_fixed_minus_100(logits, targets, ignore_index=-100):
    picked, keep = _picked(logits, targets, -100)
    return -(picked * keep).sum() / keep.sum()


def _ce_not_zeroed(logits, targets, ignore_index=-100):
    picked, keep = _picked(logits, targets, ignore_index)
    return -picked.sum() / keep.sum()


def _ce_no_mask(logits, targets, ignore_index=-100):
    logp = _stable(logits)
    return -logp.gather(-1, targets.unsqueeze(-1)).mean()


def _ce_unstable(logits, targets, ignore_index=-100):
    picked, keep = _picked(logits, targets, ignore_index, log_softmax=_no_max)
    return -(picked * keep).sum() / keep.sum()


def _ce_detached(logits, targets, ignore_index=-100):
    picked, keep = _picked(logits, targets, ignore_index)
    return (-(picked * keep).sum() / keep.sum()).detach()


def _ce_per_position(logits, targets, ignore_index=-100):
    picked, keep = _picked(logits, targets, ignore_index)
    return -(picked * keep)


def _ce_mask_unused(logits, targets, ignore_index=-100):
    logp = _stable(logits)
    safe = targets.masked_fill(targets == ignore_index, 0)
    return -logp.gather(-1, safe.unsqueeze(-1)).mean()


def _ce_fancy_index(logits, targets, ignore_index=-100):
    return -_stable(logits)[..., targets].mean()


def _ce_mean_of_row_means(logits, targets, ignore_index=-100):
    picked, keep = _picked(logits, targets, ignore_index)
    row_means = -(picked * keep).sum(-1) / keep.sum(-1)  # (B,): one mean per row
    return row_means.mean()


def _ce_len_targets(logits, targets, ignore_index=-100):
    picked, keep = _picked(logits, targets, ignore_index)
    return -(picked * keep).sum() / len(targets)


def _ce_targets_in_place(logits, targets, ignore_index=-100):
    keep = targets != ignore_index
    targets[~keep] = 0  # overwrites the caller's targets
    picked = _stable(logits).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return -(picked * keep).sum() / keep.sum()


def _ce_gather_dim_1(logits, targets, ignore_index=-100):  # dim 1 is the classes only in 2-D
    keep = targets != ignore_index
    picked = _stable(logits).gather(1, targets.masked_fill(~keep, 0).unsqueeze(-1)).squeeze(-1)
    return -(picked * keep).sum() / keep.sum()


def _ce_unpacks_three(logits, targets, ignore_index=-100):  # only (B, T, V) works
    B, T, V = logits.shape
    picked, keep = _picked(logits.reshape(B * T, V), targets.reshape(B * T), ignore_index)
    return -(picked * keep).sum() / keep.sum()


def _ce_log_softmax_dim_1(logits, targets, ignore_index=-100):
    picked, keep = _picked(logits, targets, ignore_index, log_softmax=_dim_1)
    return -(picked * keep).sum() / keep.sum()


def _ce_torch_3d(logits, targets, ignore_index=-100):
    return F.cross_entropy(logits, targets, ignore_index=ignore_index)


_CLASSES_ON_DIM_1 = ("F.cross_entropy takes the classes on dim 1: flatten first, "
                     "F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ...) (or pass "
                     "logits.transpose(1, 2))")

CROSS_ENTROPY = [
    Mistake("sign", _ce_sign, hint="the sign is wrong: the loss is MINUS the mean log-probability"),
    Mistake("sum", _ce_summed,
            hint="that is the sum over the targets; divide by how many were counted"),
    Mistake("bits", _ce_bits, hint="that is in bits (log base 2); the loss uses the natural log"),
    Mistake("all positions", _ce_all_positions,
            hint="you divided by all positions; the mean is over the counted targets (those != "
                 "ignore_index): divide by keep.sum()"),
    Mistake("ignore_index fixed to -100", _ce_fixed_minus_100,
            hint="ignore_index=0 was not used: the targets equal to 0 still count. Build the mask "
                 "from the ignore_index argument, not from -100"),
    Mistake("ignored losses not zeroed", _ce_not_zeroed,
            hint="the ignored positions still add their loss (of class 0); multiply the picked "
                 "log-probabilities by the mask (or masked_fill) before summing"),
    Mistake("unstable", _ce_unstable,
            hint="a confident wrong answer (logits [0, 1e4, -1e4], target 0) gives a non-finite "
                 "loss; build it on your stable log_softmax"),
    Mistake("detached", _ce_detached, expect="does not carry gradients"),
    Mistake("no mask", _ce_no_mask,
            hint="targets equal to ignore_index are not class ids (gather cannot read index -100): "
                 "replace them by a valid id first (targets.masked_fill(~keep, 0)), then zero "
                 "their losses"),
    Mistake("per position", _ce_per_position, expect="has shape"),
    Mistake("mask built, not used", _ce_mask_unused,
            hint="the ignored targets still count (as class 0) and the mean is over every "
                 "position: multiply the picked log-probabilities by keep, then divide by "
                 "keep.sum()"),
    Mistake("logp[..., targets]", _ce_fancy_index,
            hint="logp[..., targets] picks every target for every position (shape (B, T, B, T)): "
                 "pick each position's own target with logp.gather(-1, targets.unsqueeze(-1))"),
    Mistake("F.cross_entropy on (B, T, V)", _ce_torch_3d, hint=_CLASSES_ON_DIM_1),
    Mistake("gather(1, ...)", _ce_gather_dim_1,
            hint="gather along the last dimension, the classes: logp.gather(-1, "
                 "safe.unsqueeze(-1)); dim 1 is the classes only for 2-D logits (N, V)"),
    Mistake("B, T, V = logits.shape", _ce_unpacks_three,
            hint="logits may be (N, V) as well as (B, T, V): take V = logits.shape[-1] and work "
                 "over the last dimension (or reshape(-1, V)), without unpacking B, T"),
    Mistake("log-probabilities over dim 1", _ce_log_softmax_dim_1,
            hint="the log-probabilities were normalised over dim 1; normalise over the last "
                 "dimension, the classes: log_softmax(logits) with dim=-1"),
    Mistake("divided by len(targets)", _ce_len_targets,
            hint="len(targets) is the size of the first dimension only (B for targets (B, T)); "
                 "divide by the number of counted targets, keep.sum()"),
    Mistake("targets overwritten in place", _ce_targets_in_place,
            hint="targets[~keep] = 0 overwrites the caller's targets (the padding is lost for the "
                 "next call): make a new tensor, safe = targets.masked_fill(~keep, 0)"),
    Mistake("mean of per-row means", _ce_mean_of_row_means,
            hint="that is the mean of each row's mean, which gives a row with many ignored targets "
                 "as much weight as a full one: average over all counted targets at once "
                 "(sum / keep.sum()), not per row then over rows"),
]


def _ce_cases() -> list[Case]:
    B, T, V = 2, 5, 9
    logits = _randn(B, T, V, seed=2, scale=2.0)
    g = torch.Generator().manual_seed(3)
    targets = torch.randint(1, V, (B, T), generator=g)
    padded = targets.clone()
    padded[0, 3:] = -100
    padded[1, 4] = -100
    zero_pad = targets.clone()
    zero_pad[:, -2:] = 0
    flat = _randn(6, 4, seed=4, dtype=torch.float64)
    return [
        Case("cross_entropy(logits (2, 5, 9), targets (2, 5))", logits, targets),
        Case("cross_entropy(logits (2, 5, 9), targets (2, 5) with 3 of the 10 equal to "
             "ignore_index=-100)", logits, padded),
        Case("cross_entropy(logits (2, 5, 9), targets (2, 5), ignore_index=0) with 4 targets "
             "equal to 0", logits, zero_pad, ignore_index=0),
        Case("cross_entropy(logits (6, 4) float64, targets (6,))", flat,
             torch.tensor([0, 1, 2, 3, 0, 1])),
        Case("cross_entropy([[0, 1e4, -1e4]], [0])", torch.tensor([[0.0, 1e4, -1e4]]),
             torch.tensor([0])),
    ]


def _ce_run(impl: Any, case: Case) -> dict[str, Any]:
    (logits, targets), kwargs = case.fresh()
    logits.requires_grad_(True)
    observation = outputs_and_grads(impl(logits, targets, **kwargs), {"logits": logits})
    if "grad of logits" in observation:  # the learner's targets, after the call: never changed
        observation["targets after the call"] = targets
    return observation


@check("cross_entropy", mistakes=CROSS_ENTROPY)
@needs_earlier(log_softmax=1)
def check_cross_entropy(cross_entropy: Callable[..., Any]) -> None:
    """Exercise 2: mean ``-log p(target)`` over the counted targets, ``ignore_index`` left out."""
    compare(cross_entropy, _reference_cross_entropy, _ce_cases(), name="cross_entropy",
            run=_ce_run, mistakes=CROSS_ENTROPY, read=_output("cross_entropy(...)"),
            atol=1e-5, rtol=1e-4)


# ---- exercise 3: units -----------------------------------------------------------------------


def _perplexity(loss):
    return math.exp(loss)


def _bits_per_byte(loss, n_tokens, n_bytes):
    return loss / math.log(2) * n_tokens / n_bytes


def _ppl_mistake(name, wrong, hint):
    return Mistake(name, wrong, hint=hint, args=(wrong, _bits_per_byte))


def _bpb_mistake(name, wrong, hint):
    return Mistake(name, wrong, hint=hint, args=(_perplexity, wrong))


def _ppl_base2(loss):
    return 2 ** loss


def _ppl_base10(loss):
    return 10 ** loss


def _ppl_inverse(loss):
    return math.exp(-loss)


def _ppl_log(loss):
    return math.log(loss)


def _bpb_nats(loss, n_tokens, n_bytes):
    return loss * n_tokens / n_bytes


def _bpb_times_ln2(loss, n_tokens, n_bytes):
    return loss * math.log(2) * n_tokens / n_bytes


def _bpb_upside_down(loss, n_tokens, n_bytes):
    return loss / math.log(2) * n_bytes / n_tokens


def _bpb_per_token(loss, n_tokens, n_bytes):
    return loss / math.log(2)


def _bpb_floor_division(loss, n_tokens, n_bytes):
    return loss / math.log(2) * (n_tokens // n_bytes)


def _bpb_over_bytes(loss, n_tokens, n_bytes):
    return loss / math.log(2) / n_bytes


def _bpb_log2(loss, n_tokens, n_bytes):
    return math.log2(loss) * n_tokens / n_bytes


def _bpb_ln10(loss, n_tokens, n_bytes):
    return loss / math.log(10) * n_tokens / n_bytes


def _ppl_torch_exp(loss):  # torch.exp takes tensors only
    return torch.exp(loss)


PERPLEXITY = [
    _ppl_mistake("2 ** loss", _ppl_base2,
                 "perplexity is 2 ** loss here; the loss is in nats (natural log), so the "
                 "perplexity is e ** loss (math.exp)"),
    _ppl_mistake("10 ** loss", _ppl_base10,
                 "perplexity is 10 ** loss here; the loss is in nats: use math.exp"),
    _ppl_mistake("exp(-loss)", _ppl_inverse,
                 "exp(-loss) is 1 / perplexity (the typical probability of the target); the "
                 "perplexity is exp(loss), the number of equally likely choices"),
    _ppl_mistake("log(loss)", _ppl_log,
                 "perplexity is exp(loss), the number of equally likely choices, not log(loss)"),
    _ppl_mistake("torch.exp(float)", _ppl_torch_exp,
                 "the loss is a Python number and torch.exp takes only tensors: use "
                 "math.exp(loss)"),
]
BITS_PER_BYTE = [
    _bpb_mistake("nats per byte", _bpb_nats,
                 "that is nats per byte: divide by ln 2 (math.log(2)) to get bits"),
    _bpb_mistake("times ln 2", _bpb_times_ln2, "you multiplied by ln 2; bits = nats / ln 2"),
    _bpb_mistake("upside down", _bpb_upside_down,
                 "the ratio is upside down: a token holds n_bytes / n_tokens bytes, so the bits "
                 "of one token are spread over that many bytes: multiply by n_tokens / n_bytes"),
    _bpb_mistake("bits per token", _bpb_per_token,
                 "that is bits per token; spread them over the bytes: multiply by n_tokens / "
                 "n_bytes"),
    _bpb_mistake("n_tokens // n_bytes", _bpb_floor_division,
                 "n_tokens // n_bytes is integer division (1000 // 4200 = 0): use /, "
                 "loss / math.log(2) * n_tokens / n_bytes"),
    _bpb_mistake("n_tokens left out", _bpb_over_bytes,
                 "the loss is per token, so the text's bits are loss / ln 2 * n_tokens: multiply by "
                 "n_tokens before dividing by n_bytes"),
    _bpb_mistake("log2(loss)", _bpb_log2,
                 "log2(loss) is not a change of unit; bits = nats / ln 2"),
    _bpb_mistake("/ ln 10", _bpb_ln10,
                 "dividing by ln 10 gives decimal digits, not bits: bits = nats / ln 2 "
                 "(math.log(2))"),
]
UNITS = PERPLEXITY + BITS_PER_BYTE


def _number(name: str) -> Callable[[Any, Case], float]:
    def read(value: Any, case: Case) -> float:
        return as_float(value, name)
    return read


@check("perplexity and bits per byte", mistakes=UNITS)
def check_units(perplexity: Callable[[float], Any], bits_per_byte: Callable[..., Any]) -> None:
    """Exercise 3: ``perplexity(loss)`` and ``bits_per_byte(loss, n_tokens, n_bytes)``."""
    compare(perplexity, _perplexity,
            [Case("perplexity(1.7)", 1.7), Case("perplexity(ln 65) (a uniform guess over 65)",
                                                math.log(65)),
             Case("perplexity(0.0)", 0.0), Case("perplexity(6.5)", 6.5)],
            name="perplexity(loss)", mistakes=PERPLEXITY, read=_number("perplexity(loss)"),
            atol=1e-9, rtol=1e-6)
    compare(bits_per_byte, _bits_per_byte,
            [Case("bits_per_byte(3.3, n_tokens=1000, n_bytes=4200)", 3.3, 1000, 4200),
             Case("bits_per_byte(1.2, n_tokens=500, n_bytes=500) (a character model on ASCII)",
                  1.2, 500, 500),
             Case("bits_per_byte(2.0, n_tokens=300, n_bytes=120)", 2.0, 300, 120)],
            name="bits_per_byte(loss, n_tokens, n_bytes)", mistakes=BITS_PER_BYTE,
            read=_number("bits_per_byte(...)"), atol=1e-9, rtol=1e-6)


# ---- exercise 4: loss by position ------------------------------------------------------------


def _reference_loss_by_position(logits, targets):
    B, T, V = logits.shape
    return F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1),
                           reduction="none").view(B, T).mean(0)


def _per_token(logits, targets):
    B, T, V = logits.shape
    return F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), reduction="none")


def _lbp_per_sequence(logits, targets):
    B, T, V = logits.shape
    return _per_token(logits, targets).view(B, T).mean(1)


def _lbp_wrong_view(logits, targets):
    B, T, V = logits.shape
    return _per_token(logits, targets).view(T, B).mean(1)


def _lbp_summed(logits, targets):
    B, T, V = logits.shape
    return _per_token(logits, targets).view(B, T).sum(0)


def _lbp_sign(logits, targets):
    B, T, V = logits.shape
    return -_per_token(logits, targets).view(B, T).mean(0)


def _lbp_every_token(logits, targets):
    B, T, V = logits.shape
    return _per_token(logits, targets).view(B, T)


def _lbp_one_number(logits, targets):
    return _per_token(logits, targets).mean()


def _lbp_divided_by_T(logits, targets):
    B, T, V = logits.shape
    return _per_token(logits, targets).view(B, T).sum(0) / T


def _lbp_float(logits, targets):
    B, T, V = logits.shape
    return _per_token(logits, targets).view(B, T).mean(0).float()


def _lbp_torch_3d(logits, targets):
    return F.cross_entropy(logits, targets, reduction="none").mean(dim=0)


LOSS_BY_POSITION = [
    Mistake("mean over positions", _lbp_per_sequence,
            hint="that is one value per sequence (the mean over positions, dim=1); average over "
                 "the batch instead, dim=0, to get one value per position, shape (T,)"),
    Mistake("(T, B) order", _lbp_wrong_view,
            hint="the per-token losses come in (B, T) order: reshape them to (B, T), not (T, B), "
                 "before averaging over dim 0"),
    Mistake("sum over batch", _lbp_summed,
            hint="that is the sum over the batch; take the mean (divide by B)"),
    Mistake("sign", _lbp_sign, hint="the sign is wrong: the loss is -log p(target)"),
    Mistake("every token", _lbp_every_token,
            hint="that is the loss of every token, (B, T); average over the batch (dim=0) to get "
                 "one value per position, (T,)"),
    Mistake("one number", _lbp_one_number,
            hint="you returned one number; keep one value per position: shape (T,)"),
    Mistake("F.cross_entropy on (B, T, V)", _lbp_torch_3d, hint=_CLASSES_ON_DIM_1),
    Mistake("sum over the batch / T", _lbp_divided_by_T,
            hint="the sum over the batch is divided by T; the mean over the batch divides by B "
                 "(or use .mean(dim=0))"),
    Mistake(".float()", _lbp_float,
            hint="the result is float32 for float64 logits: keep the logits' dtype, no .float()"),
]


def _lbp_cases() -> list[Case]:
    def batch(B, T, V, seed, dtype=torch.float32):
        g = torch.Generator().manual_seed(seed)
        return (_randn(B, T, V, seed=seed, scale=2.0, dtype=dtype),
                torch.randint(V, (B, T), generator=g))
    return [
        Case("loss_by_position(logits (5, 7, 6), targets (5, 7))", *batch(5, 7, 6, 5)),
        Case("loss_by_position(logits (3, 3, 5), targets (3, 3)) (B = T)", *batch(3, 3, 5, 6)),
        Case("loss_by_position(logits (1, 4, 3), targets (1, 4)) (one sequence)",
             *batch(1, 4, 3, 7)),
        Case("loss_by_position(logits (2, 9, 65) float64, targets (2, 9))",
             *batch(2, 9, 65, 8, torch.float64)),
    ]


def _lbp_run(impl: Any, case: Case) -> dict[str, Any]:
    (logits, targets), _ = case.fresh()
    logits.requires_grad_(True)
    return outputs_and_grads(impl(logits, targets), {"logits": logits})


@check("loss_by_position", mistakes=LOSS_BY_POSITION)
def check_loss_by_position(loss_by_position: Callable[..., Any]) -> None:
    """Exercise 4: the mean loss at each position ``t`` of the block, ``(T,)``."""
    compare(loss_by_position, _reference_loss_by_position, _lbp_cases(),
            name="loss_by_position", run=_lbp_run, mistakes=LOSS_BY_POSITION,
            read=_output("loss_by_position(...)"), atol=1e-5, rtol=1e-4)
