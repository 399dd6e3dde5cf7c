"""Checks for day 36, "Preferences and what comes next": response log-probabilities, DPO, a frozen reference.

Each ``check_*`` compares the learner's code with a reference on a small seeded battery of its
own (shapes unlike the notebook's, prompts of 1 token and responses of 1 token, ``beta`` at
several values, large reward margins, models with dropout, tied weights and buffers): the values
AND the gradients. It prints one line (a pass, a hint from the exercise's table of typical
mistakes, or "not done yet") and returns a verdict. None of them raises. The references are
:mod:`llmcourse.finetune.dpo` and :func:`frozen_copy` here.

Example::

    >>> from llmcourse.checks import day36
    >>> import copy
    >>> ok = day36.check_frozen_copy(lambda m: copy.deepcopy(m).eval().requires_grad_(False))
    ✅ frozen_copy: passed
"""

from __future__ import annotations

import copy
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmcourse.checks._core import (Case, CheckFailed, Mistake, as_tensor, call, check, compare,
                                    kind_of, outputs_and_grads)
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


# ---- exercise 1: sequence_logps ------------------------------------------------------------------


def _logps(start: int = -1, shift: bool = True, mean: bool = False, exp: bool = False,
           norm: bool = True) -> Callable[..., Any]:
    """The response's log-probabilities from position ``P + start`` of the logits (-1: right)."""

    def sequence_logps(logits, ids, P):
        logp = F.log_softmax(logits, -1) if norm else logits
        if shift:
            tok = logp[:, P + start:-1].gather(-1, ids[:, P + start + 1:, None])
        else:
            tok = logp[:, P:].gather(-1, ids[:, P:, None])
        tok = tok.squeeze(-1)
        out = tok.mean(-1) if mean else tok.sum(-1)
        return out.exp() if exp else out
    return sequence_logps


def _prompt_too(logits, ids, P):
    return F.log_softmax(logits, -1)[:, :-1].gather(-1, ids[:, 1:, None]).squeeze(-1).sum(-1)


LOGPS = [
    Mistake("no shift", _logps(shift=False), hint="logits[:, t] is used for token t; logits[:, t] "
            "predicts token t + 1, so the response tokens ids[:, P:] take logits[:, P - 1:-1]"),
    Mistake("prompt included", _prompt_too, hint="the prompt tokens are summed too; only the "
            "response counts (the prompt is the same for both answers of a pair)"),
    Mistake("one early", _logps(start=-2), hint="it starts one token early: the last prompt token "
            "is included"),
    Mistake("one late", _logps(start=0), hint="it starts one token late: the first response token "
            "is missing"),
    Mistake("no sum", lambda lg, ids, P: F.log_softmax(lg, -1)[:, P - 1:-1].gather(
        -1, ids[:, P:, None]).squeeze(-1), hint="return one number per row, shape (B,): sum the "
        "log-probabilities over the response positions"),
    Mistake("mean", _logps(mean=True), hint="that averages over the response tokens; DPO uses the "
            "sum (the log-probability of the whole response)"),
    Mistake("the notebook's P_LEN", lambda lg, ids, P: _logps()(lg, ids, 32), hint="every sum is "
            "0: the slice is empty, taken at the notebook's P_LEN = 32 instead of the prompt_len "
            "argument; use logits[:, prompt_len - 1:-1]"),
    Mistake("probabilities", _logps(exp=True), hint="those are probabilities; return the summed "
            "log-probabilities"),
    Mistake("softmax", lambda lg, ids, P: F.softmax(lg[:, P - 1:-1], -1).gather(
        -1, ids[:, P:, None]).squeeze(-1).sum(-1), hint="F.softmax gives probabilities, and a sum "
        "of probabilities means nothing here: take F.log_softmax(..., dim=-1) and sum the "
        "log-probabilities"),
    Mistake("raw logits", _logps(norm=False), hint="the raw logits are summed; turn them into "
            "log-probabilities first with F.log_softmax(..., dim=-1)"),
    Mistake("detached", lambda lg, ids, P: _logps()(lg.detach(), ids, P), expect="does not carry "
            "gradients"),
    Mistake("log_softmax over dim 1", lambda lg, ids, P: F.log_softmax(lg[:, P - 1:-1], dim=1).gather(
        -1, ids[:, P:, None]).squeeze(-1).sum(-1), hint="the log_softmax is over the positions "
        "(dim=1); take it over the vocabulary, the last dimension: F.log_softmax(..., dim=-1)"),
    Mistake("cross-entropy without the minus", lambda lg, ids, P: F.cross_entropy(
        lg[:, P - 1:-1].transpose(1, 2), ids[:, P:], reduction="none").sum(-1), hint="the "
        "cross-entropy is MINUS the log-probability: negate it (log-probabilities are <= 0)"),
    Mistake("indexed, not gathered", lambda lg, ids, P: F.log_softmax(lg[:, P - 1:-1], -1)[
        :, :, ids[:, P:]].sum(-1), hint="logp[:, :, targets] takes every target id at every "
        "position; pick each position's own token with logp.gather(-1, targets.unsqueeze(-1))"),
]


def _logps_cases() -> list[Case]:
    g = torch.Generator().manual_seed(5)

    def case(B, T, V, P):
        return Case(f"sequence_logps(logits ({B}, {T}, {V}), input_ids ({B}, {T}), prompt_len={P})",
                    torch.randn(B, T, V, generator=g) * 2, torch.randint(0, V, (B, T), generator=g), P)

    # first a short response over 3 tokens: its probabilities are far from 0, unlike its sums
    return [case(2, 5, 3, 3), case(3, 8, 6, 3), case(2, 5, 11, 1), case(1, 4, 7, 3), case(4, 9, 5, 5)]


def _logps_run(impl: Any, case: Case) -> Any:
    args, _ = case.fresh()
    logits = args[0].requires_grad_(True)
    return outputs_and_grads(impl(logits, *args[1:]), {"logits": logits})


@check("sequence_logps", mistakes=LOGPS)
def check_sequence_logps(fn: Callable[[torch.Tensor, torch.Tensor, int], Any]) -> None:
    """Exercise 1: the summed log-probabilities of the response tokens (after the prompt), with gradients."""
    compare(fn, lambda lg, ids, P: sequence_logps(lg, ids, prompt_lens=P), _logps_cases(),
            name="sequence_logps(logits, input_ids, prompt_len)", run=_logps_run, mistakes=LOGPS,
            atol=1e-4)


# ---- exercise 2: dpo_loss ----------------------------------------------------------------------------


def _dpo(kind: str = "") -> Callable[..., Any]:
    def dpo_loss(pc, pr, rc, rr, beta):
        b = 0.1 if kind == "beta 0.1" else (1.0 if kind in ("no beta", "beta outside") else beta)
        if kind == "no reference":
            c, r = b * pc, b * pr
        else:
            c, r = b * (pc - rc), b * (pr - rr)
        m = c - r
        if kind == "sign swapped":
            m = -m
        if kind == "no log":
            losses = -torch.sigmoid(m)
        elif kind == "log of sigmoid":
            losses = -torch.log(torch.sigmoid(m))
        elif kind == "no minus":
            losses = F.logsigmoid(m)
        else:
            losses = -F.logsigmoid(m)
        loss = losses.sum() if kind == "sum" else losses.mean()
        if kind == "beta outside":
            loss, c, r = loss * beta, c * beta, r * beta
        if kind == "item":
            loss = loss.item()
        if kind == "rewards not detached":
            return loss, c, r
        return loss, c.detach(), r.detach()
    return dpo_loss


_DETACH_REWARDS = ("return the rewards detached (.detach()): they are for watching, not for "
                   "backward")

DPO = [
    Mistake("no beta", _dpo("no beta"), hint="the rewards leave out beta: reward = beta * "
            "(policy_logps - ref_logps)"),
    Mistake("no reference", _dpo("no reference"), hint="the rewards leave out the reference: "
            "reward = beta * (policy_logps - ref_logps)"),
    Mistake("beta 0.1", _dpo("beta 0.1"), hint="beta is fixed at 0.1; use the beta argument"),
    Mistake("sign swapped", _dpo("sign swapped"), hint="the sign is swapped: the loss is -log "
            "sigmoid(chosen - rejected), small when the chosen reward is the larger"),
    Mistake("sum", _dpo("sum"), hint="the loss sums over the pairs; take the mean"),
    Mistake("no minus", _dpo("no minus"), hint="the minus sign is missing: -log sigmoid(...) is >= 0"),
    Mistake("beta outside", _dpo("beta outside"), hint="beta is applied outside the log-sigmoid; "
            "it belongs inside, in the rewards"),
    Mistake("no log", _dpo("no log"), hint="the log is left out: -log sigmoid(margin)"),
    Mistake("log of sigmoid", _dpo("log of sigmoid"), hint="torch.log(torch.sigmoid(m)) is -inf "
            "when sigmoid underflows to 0 (a large negative margin); use F.logsigmoid(m)"),
    Mistake("rewards the wrong way", lambda pc, pr, rc, rr, beta: _dpo()(rc, rr, pc, pr, beta),
            hint="the rewards are reference minus policy; reward = beta * (policy_logps - "
            "ref_logps)"),
    Mistake("mean before the log-sigmoid", lambda pc, pr, rc, rr, beta: (
        -F.logsigmoid((beta * (pc - rc) - beta * (pr - rr)).mean()),
        (beta * (pc - rc)).detach(), (beta * (pr - rr)).detach()),
            hint="the margins were averaged before the log-sigmoid: take -F.logsigmoid of each "
            "pair's margin, then the mean over the pairs"),
    Mistake("item", _dpo("item"), hint="the loss has no gradient: build it from the policy's "
            "log-probabilities as tensors (no .item(), no torch.no_grad())"),
    Mistake("rewards not detached", _dpo("rewards not detached"), expect=_DETACH_REWARDS),
]


def _dpo_cases() -> list[Case]:
    g = torch.Generator().manual_seed(36)
    pc = torch.tensor([-20.0, -31.0, -12.5, -40.0])
    pr = torch.tensor([-26.0, -29.0, -15.0, -38.5])
    rc = torch.tensor([-22.0, -30.0, -13.0, -41.0])
    rr = torch.tensor([-24.5, -30.5, -14.0, -39.0])
    big = [torch.tensor(v) for v in ([-300.0, -10.0, -50.0], [-10.0, -12.0, -49.0],
                                     [-20.0, -11.0, -50.0], [-20.0, -11.0, -50.0])]
    rand = [-torch.rand(6, generator=g) * 30 for _ in range(4)]
    return [Case("dpo_loss(4 pairs of summed log-probabilities, beta=0.3)", pc, pr, rc, rr, 0.3),
            Case("dpo_loss(6 random pairs, beta=0.1)", *rand, 0.1),
            Case("dpo_loss(1 pair, beta=2.5)", pc[:1], pr[:1], rc[:1], rr[:1], 2.5),
            Case("dpo_loss(3 pairs with a reward margin of -280 beta, beta=0.5)", *big, 0.5)]


def _dpo_run(impl: Any, case: Case) -> Any:
    args, _ = case.fresh()
    pc, pr = args[0].requires_grad_(True), args[1].requires_grad_(True)
    out = impl(pc, pr, *args[2:])
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        raise CheckFailed(f"dpo_loss should return three things, (loss, chosen_rewards, "
                          f"rejected_rewards); got {kind_of(out)}")
    loss, chosen, rejected = out
    if isinstance(loss, torch.Tensor) and not loss.requires_grad:
        raise CheckFailed("the loss carries no gradient: build it from the rewards BEFORE "
                          "detaching them (detach only the rewards you return), with no .item() "
                          f"and no torch.no_grad() (on {case.label})")
    for name, rewards in (("chosen_rewards", chosen), ("rejected_rewards", rejected)):
        if getattr(rewards, "requires_grad", False):
            raise CheckFailed(f"{name} still requires gradients: {_DETACH_REWARDS}")
    obs = outputs_and_grads(loss, {"policy_chosen_logps": pc, "policy_rejected_logps": pr})
    n = pc.shape[0]
    obs["chosen_rewards"] = as_tensor(chosen, "chosen_rewards", shape=(n,)).detach()
    obs["rejected_rewards"] = as_tensor(rejected, "rejected_rewards", shape=(n,)).detach()
    return obs


@check("dpo_loss", mistakes=DPO)
def check_dpo_loss(fn: Callable[..., Any]) -> None:
    """Exercise 2: -log sigmoid(beta * ((pc - rc) - (pr - rr))), the rewards (detached), and the gradients."""
    compare(fn, dpo_loss, _dpo_cases(), name="dpo_loss(...)", run=_dpo_run, mistakes=DPO, atol=1e-5)


# ---- exercise 3: frozen_copy ---------------------------------------------------------------------------


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 5)
        self.drop = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.lin(x))


class _TiedNet(nn.Module):
    """Tied embedding and head, a buffer, dropout and a submodule."""

    def __init__(self) -> None:
        super().__init__()
        self.wte = nn.Embedding(7, 4)
        self.block = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.2))
        self.head = nn.Linear(4, 7, bias=False)
        self.head.weight = self.wte.weight
        self.register_buffer("scale", torch.tensor(2.0))


def _no_grad_policy(model):
    model.requires_grad_(False)
    return copy.deepcopy(model).eval()


def _eval_policy(model):
    model.eval()
    ref = copy.deepcopy(model)
    ref.requires_grad_(False)
    return ref


_ITSELF = Mistake("the policy itself", lambda m: m.eval(), hint="frozen_copy returned the policy "
                  "itself: training it would move the reference too; return copy.deepcopy(model)")
_SHALLOW = Mistake("shallow copy", lambda m: copy.copy(m), hint="the copy shares its weights with "
                   "the policy (a shallow copy); use copy.deepcopy(model)")
_POLICY_CHANGED = Mistake("policy eval", _eval_policy, hint="frozen_copy changed the policy (its "
                          "mode or requires_grad); change only the copy: the policy must go on "
                          "training")
_TRAINABLE = Mistake("still trainable", lambda m: copy.deepcopy(m).eval(), hint="the copy's "
                     "parameters still require gradients; call p.requires_grad_(False) for every "
                     "p in ref.parameters()")
_TRAINING = Mistake("training mode", lambda m: copy.deepcopy(m).requires_grad_(False),
                    hint="the copy is in training mode, so its dropout makes the reference "
                    "log-probabilities random; call .eval() on it")
_STATE_DICT = Mistake("state_dict", lambda m: copy.deepcopy(m.state_dict()), expect="should "
                      "return a model (an nn.Module)")
_FRESH = Mistake("fresh model", lambda m: type(m)().eval().requires_grad_(False), hint="the copy's "
                 "weights differ from the policy's; copy them unchanged (copy.deepcopy(model))")

FROZEN = [_ITSELF, _SHALLOW, _POLICY_CHANGED, _TRAINABLE, _TRAINING, _STATE_DICT, _FRESH,
          Mistake("policy frozen", _no_grad_policy, expect=_POLICY_CHANGED.hint)]


def _frozen_once(fn: Callable[[nn.Module], Any], policy: nn.Module, shown: str) -> None:
    before = {k: v.clone() for k, v in policy.state_dict().items()}
    ref = call(fn, policy, shown=shown)
    if not isinstance(ref, nn.Module):
        raise CheckFailed(f"frozen_copy should return a model (an nn.Module), got {kind_of(ref)}")
    if ref is policy:
        raise CheckFailed(_ITSELF.hint)
    if any(p.data_ptr() == q.data_ptr() for p in ref.parameters() for q in policy.parameters()):
        raise CheckFailed(_SHALLOW.hint)
    if not policy.training or any(not m.training for m in policy.modules()) or \
            any(not p.requires_grad for p in policy.parameters()):
        raise CheckFailed(_POLICY_CHANGED.hint)
    if any(not torch.equal(v, before[k]) for k, v in policy.state_dict().items()):
        raise CheckFailed("frozen_copy changed the policy's weights; leave them as they are")
    theirs = ref.state_dict()
    if set(theirs) != set(before) or any(not torch.equal(theirs[k], v) for k, v in before.items()):
        raise CheckFailed(_FRESH.hint)
    if any(p.requires_grad for p in ref.parameters()):
        raise CheckFailed(_TRAINABLE.hint)
    if any(m.training for m in ref.modules()):
        raise CheckFailed(_TRAINING.hint)
    with torch.no_grad():  # the policy trains on: one step must leave the reference as it was
        for p in policy.parameters():
            p.add_(1.0)
    if any(not torch.equal(v, before[k]) for k, v in ref.state_dict().items()):
        raise CheckFailed("the reference moved when the policy trained a step: it shares tensors "
                          "with the policy; use copy.deepcopy(model)")


@check("frozen_copy", mistakes=FROZEN)
def check_frozen_copy(fn: Callable[[nn.Module], Any]) -> None:
    """Exercise 3: a separate, frozen, eval-mode copy of the policy (two models, the policy untouched)."""
    torch.manual_seed(9)
    _frozen_once(fn, _Net().train(), "frozen_copy(a model with a Linear(3, 5) and dropout)")
    tied = _TiedNet().train()
    _frozen_once(fn, tied, "frozen_copy(a model with tied weights, a buffer and dropout)")
