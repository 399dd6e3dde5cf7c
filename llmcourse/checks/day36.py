"""Checks for day 36, "Preferences and what comes next": response log-probabilities, DPO, a frozen reference.

Each ``check_*`` runs the learner's code on inputs unlike the notebook's, prints one line
(a pass, a specific hint, or "not done yet") and returns a verdict. None of them raises. The
references are :mod:`llmcourse.finetune.dpo` and :func:`frozen_copy` here.

Example::

    >>> from llmcourse.checks import day36
    >>> from llmcourse.finetune import dpo_loss
    >>> ok = day36.check_dpo_loss(dpo_loss)
    ✅ dpo_loss: passed
"""

from __future__ import annotations

import copy
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmcourse.checks._core import CheckFailed, as_tensor, call, check, kind_of
from llmcourse.finetune.dpo import dpo_loss, sequence_logps

__all__ = ["check_sequence_logps", "check_dpo_loss", "check_frozen_copy", "frozen_copy"]


def frozen_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` in eval mode with every parameter frozen (the reference).

    >>> m = torch.nn.Linear(2, 2)
    >>> ref = frozen_copy(m)
    >>> ref is m, ref.training, any(p.requires_grad for p in ref.parameters())
    (False, False, False)
    """
    ref = copy.deepcopy(model).eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    return ref


def _close(got: torch.Tensor, want: torch.Tensor, tol: float = 1e-4) -> bool:
    return got.shape == want.shape and bool(torch.allclose(got.float(), want.float(), atol=tol, rtol=tol))


@check("sequence_logps")
def check_sequence_logps(fn: Callable[[torch.Tensor, torch.Tensor, int], Any]) -> None:
    """Exercise 1: the summed log-probabilities of the response tokens (after the prompt)."""
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(3, 8, 6, generator=g) * 2                  # (B=3, T=8, V=6)
    ids = torch.randint(0, 6, (3, 8), generator=g)
    P = 3
    shown = "sequence_logps(logits (3, 8, 6), input_ids (3, 8), prompt_len=3)"
    got = as_tensor(call(fn, logits.clone(), ids.clone(), P, shown=shown), shown)
    want = sequence_logps(logits, ids, P)
    if _close(got, want):
        return
    if got.shape != (3,):
        raise CheckFailed(f"{shown} returned shape {tuple(got.shape)}; return one number per row, "
                          "shape (B,) = (3,): sum over the response positions")
    logp = F.log_softmax(logits, -1)
    tok = logp[:, :-1].gather(-1, ids[:, 1:, None]).squeeze(-1)          # (3, 7), right shift
    unshifted = logp.gather(-1, ids[..., None]).squeeze(-1)              # (3, 8), no shift
    pos = torch.arange(1, 8)
    mask = pos >= P
    wrong = [
        (unshifted[:, P:].sum(-1), "takes logits[:, t] for token t; logits[:, t] predicts token "
                                   "t + 1, so the response tokens ids[:, P:] take logits[:, P - 1:-1]"),
        (tok.sum(-1), "sums the prompt tokens too; only the response counts (the prompt is the same "
                      "for both answers of a pair)"),
        (tok[:, P - 2:].sum(-1), "starts one token early: the last prompt token is included"),
        (tok[:, P:].sum(-1), "starts one token late: the first response token is missing"),
        ((tok * mask).sum(-1) / mask.sum(), "averages over the response tokens; DPO uses the sum "
                                            "(the log-probability of the whole response)"),
        ((tok * mask).sum(-1).exp(), "returned probabilities; return the summed log-probabilities"),
    ]
    for value, hint in wrong:
        if _close(got, value):
            raise CheckFailed(f"{shown}: it {hint}")
    raise CheckFailed(f"{shown} returned {[round(v, 4) for v in got.float().tolist()]} but should "
                      f"return {[round(v, 4) for v in want.tolist()]}")


@check("dpo_loss")
def check_dpo_loss(fn: Callable[..., Any]) -> None:
    """Exercise 2: -log sigmoid(beta * ((pc - rc) - (pr - rr))), with the rewards."""
    pc = torch.tensor([-20.0, -31.0, -12.5, -40.0])
    pr = torch.tensor([-26.0, -29.0, -15.0, -38.5])
    rc = torch.tensor([-22.0, -30.0, -13.0, -41.0])
    rr = torch.tensor([-24.5, -30.5, -14.0, -39.0])
    beta = 0.3
    shown = f"dpo_loss(4 pairs of summed log-probabilities, beta={beta})"
    out = call(fn, pc.clone().requires_grad_(True), pr.clone(), rc.clone(), rr.clone(), beta,
               shown=shown)
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        raise CheckFailed(f"dpo_loss should return three things, (loss, chosen_rewards, "
                          f"rejected_rewards); got {kind_of(out)}")
    loss, chosen, rejected = out
    loss = as_tensor(loss, "loss")
    chosen = as_tensor(chosen, "chosen_rewards", shape=(4,))
    rejected = as_tensor(rejected, "rejected_rewards", shape=(4,))
    want_loss, want_c, want_r = dpo_loss(pc, pr, rc, rr, beta)
    if not _close(chosen, want_c) or not _close(rejected, want_r):
        if _close(chosen, pc - rc) and _close(rejected, pr - rr):
            raise CheckFailed("the rewards leave out beta: reward = beta * (policy_logps - ref_logps)")
        if _close(chosen, beta * pc) and _close(rejected, beta * pr):
            raise CheckFailed("the rewards leave out the reference: reward = beta * "
                              "(policy_logps - ref_logps)")
        raise CheckFailed(f"chosen_rewards {[round(v, 4) for v in chosen.tolist()]} should be "
                          f"{[round(v, 4) for v in want_c.tolist()]}: beta * (policy_chosen_logps - "
                          "ref_chosen_logps)")
    if loss.numel() != 1:
        raise CheckFailed(f"loss has shape {tuple(loss.shape)}; return the mean over the pairs, a scalar")
    got = loss.float().reshape(())
    margin = want_c - want_r
    wrong = [
        (-F.logsigmoid(-margin).mean(), "has the sign swapped: the loss is -log sigmoid(chosen - "
                                        "rejected), small when the chosen reward is the larger"),
        (-F.logsigmoid(margin).sum(), "sums over the pairs; take the mean"),
        (F.logsigmoid(margin).mean(), "is missing the minus sign: -log sigmoid(...) is >= 0"),
        (-F.logsigmoid(margin / beta).mean() * beta, "applies beta outside the log-sigmoid; it "
                                                     "belongs inside, in the rewards"),
        (-torch.sigmoid(margin).mean(), "leaves out the log: -log sigmoid(margin)"),
    ]
    if not _close(got, want_loss):
        for value, hint in wrong:
            if _close(got, value):
                raise CheckFailed(f"the loss {got.item():.4f} {hint}")
        raise CheckFailed(f"the loss is {got.item():.4f} but should be {want_loss.item():.4f}")
    if not loss.requires_grad:
        raise CheckFailed("the loss has no gradient: build it from the policy's log-probabilities "
                          "as tensors (no .item(), no torch.no_grad())")


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 5)
        self.drop = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.lin(x))


@check("frozen_copy")
def check_frozen_copy(fn: Callable[[nn.Module], Any]) -> None:
    """Exercise 3: a separate, frozen, eval-mode copy of the policy."""
    torch.manual_seed(9)
    policy = _Net().train()
    before = {k: v.clone() for k, v in policy.state_dict().items()}
    ref = call(fn, policy, shown="frozen_copy(a model with a Linear(3, 5) and dropout)")
    if not isinstance(ref, nn.Module):
        raise CheckFailed(f"frozen_copy should return a model (an nn.Module), got {kind_of(ref)}")
    if ref is policy:
        raise CheckFailed("frozen_copy returned the policy itself: training it would move the "
                          "reference too; return copy.deepcopy(model)")
    if any(p.data_ptr() == q.data_ptr() for p in ref.parameters() for q in policy.parameters()):
        raise CheckFailed("the copy shares its weights with the policy (a shallow copy); use "
                          "copy.deepcopy(model)")
    if not policy.training or any(not p.requires_grad for p in policy.parameters()):
        raise CheckFailed("frozen_copy changed the policy (its mode or requires_grad); change only "
                          "the copy: the policy must go on training")
    if any(not torch.equal(v, before[k]) for k, v in policy.state_dict().items()):
        raise CheckFailed("frozen_copy changed the policy's weights; leave them as they are")
    if any(not torch.equal(v, before[k]) for k, v in ref.state_dict().items()):
        raise CheckFailed("the copy's weights differ from the policy's; copy them unchanged")
    if any(p.requires_grad for p in ref.parameters()):
        raise CheckFailed("the copy's parameters still require gradients; call "
                          "p.requires_grad_(False) for every p in ref.parameters()")
    if ref.training:
        raise CheckFailed("the copy is in training mode, so its dropout makes the reference "
                          "log-probabilities random; call .eval() on it")
