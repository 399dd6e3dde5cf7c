"""Checks for day 06, "A first language model, end to end", and a reference ``estimate_loss``.

Each ``check_*`` function runs the learner's code (or inspects the value they built), prints
one line - a pass, a specific hint, or "not done yet" - and returns ``True`` on a pass. None of
them raises, so a check cell never stops a notebook.

:func:`reference_estimate_loss` is what the lesson uses after its exercise 4, so that a learner
who skipped the exercise can run the rest of the notebook.

Example::

    >>> import math
    >>> from llmcourse.checks import day06
    >>> ok = day06.check_baseline(math.log(65), 65)
    ✅ uniform baseline: passed
"""

from __future__ import annotations

import copy
import math
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmcourse.checks._core import CheckFailed, as_tensor, assert_close, call, check, require
from llmcourse.train.evaluate import estimate_loss

__all__ = [
    "check_baseline",
    "check_cross_entropy",
    "check_train_step",
    "check_estimate_loss",
    "reference_estimate_loss",
]


def reference_estimate_loss(
    model: nn.Module, get_batch_fn: Callable[[], tuple[torch.Tensor, torch.Tensor]], eval_iters: int
) -> float:
    """Mean loss of ``model`` over ``eval_iters`` batches from ``get_batch_fn()``.

    The package's :func:`llmcourse.train.estimate_loss` on one unnamed source: eval mode,
    ``torch.no_grad()``, the model's previous mode restored.
    """
    return estimate_loss(model, get_batch_fn, eval_iters, splits=None)


@check("uniform baseline")
def check_baseline(baseline: Any, vocab_size: int) -> None:
    """Exercise 1: the loss of a uniform guess, ``ln(V)``."""
    require(baseline, "baseline")
    try:
        value = float(baseline)
    except (TypeError, ValueError) as exc:
        raise CheckFailed(f"baseline should be a number, got {type(baseline).__name__}") from exc
    want = math.log(vocab_size)
    if math.isclose(value, want, rel_tol=1e-6):
        return
    if math.isclose(value, 1 / vocab_size, rel_tol=1e-6):
        raise CheckFailed("that is the probability 1/V; the loss is -log of it")
    if math.isclose(value, -want, rel_tol=1e-6):
        raise CheckFailed("the sign is wrong: the loss is -log(1/V), a positive number")
    if math.isclose(value, math.log2(vocab_size), rel_tol=1e-6):
        raise CheckFailed("that is log base 2 (bits); cross-entropy in PyTorch uses the natural log, "
                          "math.log")
    if math.isclose(value, math.log10(vocab_size), rel_tol=1e-6):
        raise CheckFailed("that is log base 10; cross-entropy uses the natural log, math.log")
    raise CheckFailed(f"baseline is {value:.4f}; a uniform guess over V = {vocab_size} tokens gives "
                      f"each token probability 1/V, and the loss is -log(1/V)")


@check("cross_entropy")
def check_cross_entropy(cross_entropy: Callable[[torch.Tensor, torch.Tensor], Any]) -> None:
    """Exercise 2: mean ``-log p(target)`` over ``(B, T)`` positions, numerically stable."""
    g = torch.Generator().manual_seed(0)
    B, T, V = 3, 5, 11
    logits = torch.randn(B, T, V, generator=g) * 3
    targets = torch.randint(V, (B, T), generator=g)
    got = call(cross_entropy, logits, targets,
               shown=f"cross_entropy(logits of shape {(B, T, V)}, targets of shape {(B, T)})")
    if got is not None and not isinstance(got, torch.Tensor):
        raise CheckFailed(f"cross_entropy should return a tensor (so that .backward() works), got "
                          f"{type(got).__name__}")
    as_tensor(got, "cross_entropy(logits, targets)")
    if got.numel() != 1:
        raise CheckFailed(f"cross_entropy returned shape {tuple(got.shape)}; it should be a single "
                          "number, the mean over all B * T positions (use .mean())")
    want = F.cross_entropy(logits.view(-1, V), targets.view(-1))
    value = got.item()
    if math.isclose(value, -want.item(), rel_tol=1e-4):
        raise CheckFailed("the sign is wrong: the loss is MINUS the mean log-probability")
    if math.isclose(value, want.item() * B * T, rel_tol=1e-4):
        raise CheckFailed("that is the sum over positions; take the mean instead")
    logp_wrong_dim = F.log_softmax(logits, dim=1).gather(-1, targets.unsqueeze(-1)).mean()
    if math.isclose(value, -logp_wrong_dim.item(), rel_tol=1e-4):
        raise CheckFailed("the softmax runs over the wrong dimension: normalise over the vocabulary, "
                          "the last dimension (dim=-1)")
    assert_close(got, want, "cross_entropy(logits, targets)", atol=1e-5)
    # Stability: a confident wrong prediction must give a large but finite loss.
    big = torch.tensor([[[0.0, 200.0, -200.0]]])
    tgt = torch.tensor([[0]])
    stable = as_tensor(call(cross_entropy, big, tgt, shown="cross_entropy on logits [0, 200, -200]"),
                       "cross_entropy(logits, targets)")
    if not torch.isfinite(stable).all():
        raise CheckFailed("with logits [0, 200, -200] and target 0 your loss is not finite: "
                          "softmax underflows to 0 and log(0) = -inf; use F.log_softmax instead")
    assert_close(stable, F.cross_entropy(big.view(-1, 3), tgt.view(-1)),
                 "cross_entropy on logits [0, 200, -200]", atol=1e-3)
    # The gradient must flow back to the logits.
    leaf = logits.clone().requires_grad_(True)
    out = cross_entropy(leaf, targets)
    if not out.requires_grad:
        raise CheckFailed("the result does not depend on the logits through autograd (did you use "
                          ".item(), .detach() or numpy?); keep it a tensor computation")


class _TinyLM(nn.Module):
    """A bigram-like model for the checks: ``forward(idx, targets) -> (logits, loss)``."""

    def __init__(self, vocab_size: int = 7) -> None:
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> Any:
        logits = self.table(idx)  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss


def _batches(n: int, vocab_size: int = 7) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [(torch.randint(vocab_size, (4, 6), generator=g),
             torch.randint(vocab_size, (4, 6), generator=g)) for _ in range(n)]


def _run_steps(step: Callable[..., Any], model: nn.Module,
               batches: list[tuple[torch.Tensor, torch.Tensor]]) -> list[Any]:
    opt = torch.optim.AdamW(model.parameters(), lr=0.05)
    return [step(model, opt, x, y) for x, y in batches]


def _ref_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> float:
    opt.zero_grad(set_to_none=True)
    _, loss = model(x, y)
    loss.backward()
    opt.step()
    return loss.item()


def _no_zero_grad_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor,
                       y: torch.Tensor) -> float:
    _, loss = model(x, y)
    loss.backward()
    opt.step()
    return loss.item()


@check("train_step")
def check_train_step(train_step: Callable[..., Any]) -> None:
    """Exercise 3: zero_grad, forward, backward, step; returns the loss as a float."""
    torch.manual_seed(0)
    start = _TinyLM()
    batches = _batches(3)
    mine = copy.deepcopy(start)
    ref = copy.deepcopy(start)
    stale = copy.deepcopy(start)
    got = _run_steps(train_step, mine, batches)
    want = _run_steps(_ref_step, ref, batches)
    _run_steps(_no_zero_grad_step, stale, batches)
    if got[0] is None:
        raise CheckFailed("train_step returned None; return loss.item()")
    if isinstance(got[0], torch.Tensor):
        raise CheckFailed("train_step returned a tensor; return loss.item(), a Python float, so the "
                          "computation graph can be freed")
    if not isinstance(got[0], float):
        raise CheckFailed(f"train_step should return a float, got {type(got[0]).__name__}")
    w_mine, w_ref = mine.table.weight.detach(), ref.table.weight.detach()
    if torch.equal(w_mine, start.table.weight.detach()):
        raise CheckFailed("the parameters did not change: call optimizer.step() after loss.backward()")
    if torch.allclose(w_mine, stale.table.weight.detach(), atol=1e-6) and not torch.allclose(
        w_mine, w_ref, atol=1e-6
    ):
        raise CheckFailed("gradients pile up from one step to the next: call optimizer.zero_grad() "
                          "before loss.backward()")
    if not math.isclose(got[0], want[0], rel_tol=1e-5):
        raise CheckFailed(f"the returned loss {got[0]:.4f} is not the loss of the batch "
                          f"({want[0]:.4f}): return the loss computed by model(x, y) in this step")
    assert_close(got, want, "the losses of three steps", atol=1e-5)
    assert_close(w_mine, w_ref, "the parameters after three steps", atol=1e-5)


class _Recorder(nn.Module):
    """A fake model that returns the losses 1, 2, 4, 5, ... and records how it was called."""

    def __init__(self, losses: list[float]) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))
        self.losses = losses
        self.calls = 0
        self.modes: list[bool] = []
        self.grad_enabled: list[bool] = []

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Any:
        self.modes.append(self.training)
        self.grad_enabled.append(torch.is_grad_enabled())
        loss = self.w * self.losses[self.calls % len(self.losses)]
        self.calls += 1
        return None, loss


@check("estimate_loss")
def check_estimate_loss(estimate_loss: Callable[..., Any]) -> None:
    """Exercise 4: mean of ``eval_iters`` losses, eval mode, no_grad, back to train mode."""
    losses = [1.0, 2.0, 4.0, 5.0, 3.0]
    model = _Recorder(losses)
    model.train()
    batches = {"n": 0}

    def get_batch_fn() -> tuple[torch.Tensor, torch.Tensor]:
        batches["n"] += 1
        return torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long)

    got = estimate_loss(model, get_batch_fn, 4)
    if got is None:
        raise CheckFailed("estimate_loss returned None; did you forget the `return`?")
    if isinstance(got, torch.Tensor):
        if got.numel() != 1:
            raise CheckFailed(f"estimate_loss returned a tensor of shape {tuple(got.shape)}; "
                              "return the mean as a float")
        got = got.item()
    try:
        value = float(got)
    except (TypeError, ValueError) as exc:
        raise CheckFailed(f"estimate_loss should return a float, got {type(got).__name__}") from exc
    if batches["n"] != 4 or model.calls != 4:
        raise CheckFailed(f"with eval_iters=4 the function drew {batches['n']} batches and called the "
                          f"model {model.calls} times; both should be 4 (one batch per model call)")
    if not all(m is False for m in model.modes):
        raise CheckFailed("the model was in training mode during the evaluation: call model.eval() "
                          "first")
    if any(model.grad_enabled):
        raise CheckFailed("gradients were being tracked during the evaluation: wrap the loop in "
                          "`with torch.no_grad():`")
    if not model.training:
        raise CheckFailed("the model is left in eval mode: call model.train() at the end")
    mean = sum(losses[:4]) / 4
    if math.isclose(value, losses[3]):
        raise CheckFailed("that is the loss of the last batch only; average all eval_iters losses")
    if math.isclose(value, sum(losses[:4])):
        raise CheckFailed("that is the sum of the losses; divide by eval_iters for the mean")
    if not math.isclose(value, mean, rel_tol=1e-6):
        raise CheckFailed(f"estimate_loss returned {value:.4f} for the losses {losses[:4]}; "
                          f"their mean is {mean:.4f}")
