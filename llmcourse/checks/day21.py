"""Checks for day 21, "Temperature".

Each ``check_*`` function runs the learner's code on inputs of its own (batched, sizes unlike
the notebook's), prints one line - a pass, a specific hint, or "not done yet" - and never raises.
The references are the package's: :func:`llmcourse.generate.apply_temperature` and
:func:`reference_entropy`.

Example::

    >>> import torch
    >>> from llmcourse.checks import day21
    >>> ok = day21.check_apply_temperature(lambda logits, t: logits / t)
    ✅ apply_temperature: passed
    >>> round(float(day21.reference_entropy(torch.tensor([0.5, 0.5, 0.0]))), 4)   # ln 2
    0.6931
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import Tensor

from llmcourse.checks._core import CheckFailed, as_tensor, assert_close, call, check

__all__ = ["check_apply_temperature", "check_entropy", "check_sample", "reference_entropy",
           "reference_sample"]


def reference_entropy(probs: Tensor) -> Tensor:
    """Entropy in nats of each distribution along the last dimension (``0 log 0 = 0``)."""
    return -torch.special.xlogy(probs, probs).sum(dim=-1)


def reference_sample(logits: Tensor, temperature: float,
                     generator: torch.Generator | None = None) -> Tensor:
    """``(B,)`` ids: one draw per row from ``softmax(logits / temperature)``; 0 is the argmax."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits / temperature, dim=-1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


def _same_distribution(a: Tensor, b: Tensor) -> bool:
    """Equal up to a constant per row (a shift leaves the softmax unchanged)."""
    return a.shape == b.shape and bool(torch.allclose(torch.softmax(a, -1), torch.softmax(b, -1),
                                                      atol=1e-5))


@check("apply_temperature")
def check_apply_temperature(apply_temperature: Callable[[Tensor, float], Tensor]) -> None:
    """Exercise 1: ``logits / T`` on a batch of shape (3, 2, 7), for T = 0.6 and 2.5."""
    g = torch.Generator().manual_seed(21)
    logits = torch.randn(3, 2, 7, generator=g) * 2.0  # (B, T, V): not the notebook's shape
    for t in (0.6, 2.5):
        original = logits.clone()
        shown = f"apply_temperature(logits of shape (3, 2, 7), {t})"
        got = as_tensor(call(apply_temperature, logits, t, shown=shown), "the result",
                        shape=(3, 2, 7))
        if not torch.equal(logits, original):
            raise CheckFailed(f"{shown} changed its input in place; return a new tensor "
                              "(logits / temperature), the caller still needs the model's logits")
        got = got.detach().float()
        want = logits / t
        if _same_distribution(got, want):
            continue
        sums = got.sum(-1)
        if (got >= 0).all() and torch.allclose(sums, torch.ones_like(sums), atol=1e-4):
            raise CheckFailed(f"{shown} returned probabilities (each row sums to 1); return the "
                              "scaled logits, logits / temperature - the softmax comes after")
        if _same_distribution(got, logits * t):
            raise CheckFailed(f"{shown} multiplied the logits by the temperature; divide them: "
                              "logits / temperature (T < 1 sharpens, T > 1 flattens)")
        if torch.allclose(got, torch.softmax(logits, -1) / t, atol=1e-5):
            raise CheckFailed(f"{shown} scaled the probabilities (softmax before scaling); scale "
                              "the logits: logits / temperature, then softmax")
        if _same_distribution(got, logits):
            raise CheckFailed(f"{shown} left the logits unchanged; divide them by the temperature")
        assert_close(got, want, "apply_temperature(logits, %g)" % t)


@check("entropy")
def check_entropy(entropy: Callable[[Tensor], Tensor]) -> None:
    """Exercise 2: entropy in nats along the last dimension, 0 log 0 = 0, batched (2, 3, 5)."""
    g = torch.Generator().manual_seed(5)
    probs = torch.softmax(torch.randn(2, 3, 5, generator=g) * 1.5, dim=-1)  # (2, 3, 5)
    probs[0, 1] = torch.tensor([0.0, 1.0, 0.0, 0.0, 0.0])  # certain: entropy 0
    probs[1, 2] = torch.tensor([0.5, 0.0, 0.25, 0.25, 0.0])  # zeros: 0 log 0 counts as 0
    shown = "entropy(probs of shape (2, 3, 5), some rows with zeros)"
    got = as_tensor(call(entropy, probs.clone(), shown=shown), "the entropy")
    want = reference_entropy(probs)  # (2, 3)
    if tuple(got.shape) != (2, 3):
        if got.numel() == 1:
            raise CheckFailed(f"{shown} returned one number, shape {tuple(got.shape)}; sum over "
                              "the last dimension only (dim=-1): one entropy per distribution, "
                              "shape (2, 3)")
        raise CheckFailed(f"{shown} returned shape {tuple(got.shape)}, expected (2, 3): one "
                          "entropy per distribution, summed over the last dimension (dim=-1)")
    got = got.detach().double()
    want = want.double()
    if torch.isnan(got).any():
        raise CheckFailed(f"{shown} gave nan where a probability is 0 (0 * log 0 = 0 * -inf); "
                          "use torch.special.xlogy(p, p), or drop the zeros with torch.where")
    if torch.allclose(got, -want, atol=1e-4):
        raise CheckFailed("the entropy is negative: H = -sum p log p (the minus sign); log p <= 0, "
                          "so the entropy is >= 0")
    if torch.allclose(got, want / math.log(2), atol=1e-4):
        raise CheckFailed("the entropy is in bits (log2); this lesson uses nats, torch.log (the "
                          "natural log, as the cross-entropy loss does)")
    if torch.allclose(got, want / 5, atol=1e-4):
        raise CheckFailed("the entropy is averaged over the vocabulary; sum -p log p over it "
                          "(.sum(dim=-1)), do not take the mean")
    assert_close(got, want, "entropy(probs)", atol=1e-4)


@check("sample")
def check_sample(sample: Callable[..., Any]) -> None:
    """Exercise 3: one draw per row from softmax(logits / T), the argmax for T = 0."""
    g = torch.Generator().manual_seed(7)
    base = torch.tensor([[1.5, 0.0, -1.0, 0.5, 2.0, -2.0],
                         [0.0, 0.2, 3.0, -0.5, 1.0, 0.3]])  # 2 distributions over 6 tokens
    greedy = as_tensor(call(sample, base.clone(), 0.0, torch.Generator().manual_seed(0),
                            shown="sample(logits of shape (2, 6), 0.0, generator)"),
                       "sample(..., temperature=0)")
    if greedy.dim() == 2 and greedy.shape[-1] == 1:
        greedy = greedy[:, 0]
    if tuple(greedy.shape) != (2,):
        raise CheckFailed(f"sample(logits of shape (2, 6), ...) returned shape "
                          f"{tuple(greedy.shape)}; return one id per row, shape (2,)")
    if greedy.tolist() != [4, 2]:
        raise CheckFailed(f"temperature 0 gave ids {greedy.tolist()}, expected the argmax "
                          "[4, 2]; handle temperature == 0 first with logits.argmax(dim=-1) "
                          "(dividing by 0 gives inf and nan)")
    rows = base.repeat(3000, 1)  # (6000, 6): row r uses distribution r % 2
    t = 0.7
    shown = "sample(logits of shape (6000, 6), 0.7, generator)"
    ids = as_tensor(call(sample, rows, t, g, shown=shown,
                         hint="(torch.multinomial needs probabilities: softmax(logits / T) first)"),
                    "sample(...)")
    ids = ids.reshape(-1)
    if ids.numel() != 6000 or ids.is_floating_point():
        raise CheckFailed(f"{shown} should return 6000 integer ids, one per row, got "
                          f"{ids.numel()} values of dtype {ids.dtype}")
    if ids.min() < 0 or ids.max() > 5:
        raise CheckFailed(f"{shown} returned ids outside [0, 5]; sample a token index per row")
    freq = torch.stack([torch.bincount(ids[i::2], minlength=6).double() / 3000 for i in (0, 1)])

    def near(probs: Tensor) -> bool:  # 3000 draws: a frequency is within ~0.03 of its probability
        return bool(((freq - probs.double()).abs() < 0.035).all())

    if near(torch.softmax(base / t, -1)):
        return
    if near(torch.softmax(base * t, -1)):
        raise CheckFailed("the samples follow softmax(logits * T): divide by the temperature, "
                          "softmax(logits / T)")
    if near(torch.softmax(base, -1)):
        raise CheckFailed("the samples follow softmax(logits), the temperature has no effect; "
                          "sample from softmax(logits / temperature)")
    if bool((freq.amax(-1) > 0.99).all()):
        raise CheckFailed("at temperature 0.7 every row gave the same token: that is greedy "
                          "decoding; draw with torch.multinomial(probs, 1, generator=generator)")
    raise CheckFailed("the frequencies of the sampled ids do not match softmax(logits / T) "
                      f"(token frequencies of the first distribution: "
                      f"{[round(float(f), 2) for f in freq[0]]})")
