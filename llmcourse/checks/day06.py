"""Checks for day 06, "A first language model, end to end", and a reference ``estimate_loss``.

Each ``check_*`` function compares the learner's code (or the value they built) with a reference
on a small seeded battery of inputs (gradients, sequences of training steps, scripted losses
included), prints one line - a pass, a specific hint, or "not done yet" - and returns ``True`` on
a pass. None of them raises, so a check cell never stops a notebook. Each exercise has a table of
typical mistakes (``BASELINE``, ``CROSS_ENTROPY``, ``TRAIN_STEP``, ``ESTIMATE_LOSS``).

:func:`reference_estimate_loss` is what the lesson uses after its exercise 4, so that a learner
who skipped the exercise can run the rest of the notebook.

Example::

    >>> import math
    >>> from llmcourse.checks import day06
    >>> ok = day06.check_baseline(math.log(65), 65)
    ✅ uniform baseline: passed
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmcourse.checks._core import (Case, CheckFailed, Mistake, as_float, as_tensor, check, compare, kind_of,
                                    none_hint, outputs_and_grads, require)
from llmcourse.checks._models import ScriptedLosses

__all__ = [
    "check_baseline",
    "check_cross_entropy",
    "check_train_step",
    "check_estimate_loss",
    "reference_estimate_loss",
    "BASELINE",
    "CROSS_ENTROPY",
    "TRAIN_STEP",
    "ESTIMATE_LOSS",
]


def reference_estimate_loss(
    model: nn.Module, get_batch_fn: Callable[[], tuple[torch.Tensor, torch.Tensor]], eval_iters: int
) -> float:
    """Mean loss of ``model`` over ``eval_iters`` batches from ``get_batch_fn()``.

    What :func:`llmcourse.train.estimate_loss` does for one split, written out here so that the
    lesson's reference does not depend on that function's arguments: eval mode,
    ``torch.no_grad()``, the float32 losses summed and divided once, the model's previous mode
    restored.

    Example::

        >>> class Const(nn.Module):
        ...     def forward(self, x, y):
        ...         return None, torch.tensor(float(x))
        >>> batches = iter([(1, None), (2, None), (6, None)])
        >>> reference_estimate_loss(Const(), lambda: next(batches), 3)
        3.0
    """
    if isinstance(eval_iters, bool) or not isinstance(eval_iters, int) or eval_iters < 1:
        raise ValueError(f"eval_iters must be an int >= 1, got {eval_iters!r}")
    was_training = model.training
    model.eval()  # dropout off
    try:
        with torch.no_grad():
            total = 0
            for _ in range(eval_iters):
                x, y = get_batch_fn()  # (B, T), (B, T)
                out = model(x, y)
                loss = out if isinstance(out, torch.Tensor) else out[1]  # (logits, loss)
                total = total + loss.detach().float()  # a scalar, on the model's device
        return (total / eval_iters).item()
    finally:
        model.train(was_training)


# ---- exercise 1: the uniform baseline ------------------------------------------------------------

BASELINE = [
    Mistake("probability 1/V", args=(1 / 65, 65),
            hint="that is the probability 1/V; the loss is -log of it"),
    Mistake("sign", args=(-math.log(65), 65),
            hint="the sign is wrong: the loss is -log(1/V), a positive number"),
    Mistake("log base 2", args=(math.log2(65), 65),
            hint="that is log base 2 (bits); cross-entropy in PyTorch uses the natural log, math.log"),
    Mistake("log base 10", args=(math.log10(65), 65),
            hint="that is log base 10; cross-entropy uses the natural log, math.log"),
    Mistake("another vocabulary", args=(math.log(50257), 65),
            hint="a uniform guess over V = 65 tokens"),
    Mistake("a string", args=("4.17", 65), expect="should be a number"),
]


@check("uniform baseline", mistakes=BASELINE, learner=("baseline",))
def check_baseline(baseline: Any, vocab_size: int) -> None:
    """Exercise 1: the loss of a uniform guess, ``ln(V)``, for the notebook's ``V``."""
    require(baseline, "baseline")
    if isinstance(baseline, str):
        raise CheckFailed(f"baseline should be a number, got a str ({baseline!r})")
    value = as_float(baseline, "baseline")
    V = vocab_size
    want = math.log(V)
    if math.isclose(value, want, rel_tol=1e-6):
        return
    for mistake in BASELINE[:4]:  # the same slips for the notebook's V
        wrong = {"probability 1/V": 1 / V, "sign": -want, "log base 2": math.log2(V),
                 "log base 10": math.log10(V)}[mistake.name]
        if math.isclose(value, wrong, rel_tol=1e-6):
            raise CheckFailed(mistake.hint)
    raise CheckFailed(f"baseline is {value:.4f}; {BASELINE[4].hint.replace('65', str(V))} gives each "
                      f"token probability 1/V, and the loss is -log(1/V) = {want:.4f}")


# ---- exercise 2: cross-entropy -------------------------------------------------------------------


def _ref_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def _pick(logp, targets):
    return logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def _ce_softmax_log(logits, targets):
    return -torch.log(_pick(F.softmax(logits, dim=-1), targets)).mean()


def _ce_sum(logits, targets):
    return -_pick(F.log_softmax(logits, dim=-1), targets).sum()


def _ce_sign(logits, targets):
    return _pick(F.log_softmax(logits, dim=-1), targets).mean()


def _ce_per_position(logits, targets):
    return -_pick(F.log_softmax(logits, dim=-1), targets)


def _ce_wrong_dim(logits, targets):
    return -_pick(F.log_softmax(logits, dim=1), targets).mean()


def _ce_item(logits, targets):
    return -_pick(F.log_softmax(logits, dim=-1), targets).mean().item()


def _ce_detached(logits, targets):
    return -_pick(F.log_softmax(logits.detach(), dim=-1), targets).mean()


def _ce_mean_over_batch(logits, targets):  # sums over T, averages over B
    return -_pick(F.log_softmax(logits, dim=-1), targets).sum(1).mean()


def _ce_no_log_softmax(logits, targets):  # the raw logit of the target, not its log-probability
    return -_pick(logits, targets).mean()


def _ce_fancy_index(logits, targets):
    return -F.log_softmax(logits, dim=-1)[..., targets].mean()


def _ce_no_unsqueeze(logits, targets):
    return -F.log_softmax(logits, dim=-1).gather(-1, targets).mean()


def _ce_torch_3d(logits, targets):
    return F.cross_entropy(logits, targets)


def _ce_dim0(logits, targets):  # F.log_softmax(logits) without dim= normalises a 3-D tensor over dim 0
    return -_pick(F.log_softmax(logits, dim=0), targets).mean()


def _ce_mean_over_vocab(logits, targets):  # the one-hot product averaged over B * T * V entries
    logp = F.log_softmax(logits, dim=-1)
    return -(logp * F.one_hot(targets, logits.shape[-1])).mean()


def _ce_in_place(logits, targets):  # subtracts the max from the caller's logits, in place
    logits -= logits.max(-1, keepdim=True).values
    logp = logits - logits.exp().sum(-1, keepdim=True).log()
    return -_pick(logp, targets).mean()


def _ce_v65(logits, targets):  # the notebook's vocabulary size written into the code
    logp = F.log_softmax(logits.reshape(-1, 65), dim=-1)
    return -logp[torch.arange(logp.shape[0]), targets.reshape(-1)].mean()


def _ce_one_hot_no_classes(logits, targets):  # F.one_hot sized by the largest target, not by V
    return -(F.log_softmax(logits, dim=-1) * F.one_hot(targets)).sum(-1).mean()


def _ce_arange_pairs(logits, targets):  # arange(B) and arange(T) side by side pair up, not cross
    B, T, _ = logits.shape
    return -F.log_softmax(logits, dim=-1)[torch.arange(B), torch.arange(T), targets].mean()


def _ce_gather_dim1(logits, targets):  # gather along T instead of the vocabulary
    return -F.log_softmax(logits, dim=-1).gather(1, targets.unsqueeze(-1)).mean()


def _ce_no_max_shift(logits, targets):  # log-sum-exp written out without subtracting the max
    logp = logits - logits.exp().sum(-1, keepdim=True).log()
    return -_pick(logp, targets).mean()


def _ce_softmax_eps(logits, targets):  # log(softmax + 1e-9) to dodge log(0)
    return -_pick(torch.log(F.softmax(logits, dim=-1) + 1e-9), targets).mean()


def _ce_targets_in_place(logits, targets):  # unsqueeze_ changes the caller's targets to (B, T, 1)
    targets.unsqueeze_(-1)
    return -F.log_softmax(logits, dim=-1).gather(-1, targets).mean()


_CE_ITEM = ("cross_entropy should return a tensor (so that .backward() works), not a Python number: "
            "leave out .item()")

CROSS_ENTROPY = [
    Mistake("softmax then log", _ce_softmax_log,
            hint="the loss is not finite for confident logits: softmax underflows to 0 and log(0) = "
                 "-inf; use F.log_softmax instead of softmax followed by log"),
    Mistake("sum", _ce_sum, hint="that is the sum over positions; take the mean instead"),
    Mistake("sign", _ce_sign, hint="the sign is wrong: the loss is MINUS the mean log-probability"),
    Mistake("per position", _ce_per_position,
            hint="cross_entropy should return a single number, the mean over all B * T positions "
                 "(use .mean())"),
    Mistake("wrong dim", _ce_wrong_dim,
            hint="the softmax runs over the wrong dimension: normalise over the vocabulary, the "
                 "last dimension (dim=-1)"),
    Mistake("mean over B only", _ce_mean_over_batch,
            hint="average over all B * T positions (.mean() of the (B, T) losses), not over the "
                 "batch only"),
    Mistake(".item()", _ce_item, expect=_CE_ITEM),
    Mistake("no log_softmax", _ce_no_log_softmax,
            hint="that picks the raw logit of each target; turn the logits into log-probabilities "
                 "first, F.log_softmax(logits, dim=-1), then pick"),
    Mistake("logp[..., targets]", _ce_fancy_index,
            hint="logp[..., targets] picks every target for every position (shape (B, T, B, T)): "
                 "pick each position's own target with logp.gather(-1, targets.unsqueeze(-1))"),
    Mistake("gather without unsqueeze", _ce_no_unsqueeze,
            hint="gather needs an index with as many dimensions as logp: targets.unsqueeze(-1), "
                 "shape (B, T, 1), then .squeeze(-1)"),
    Mistake("F.cross_entropy on (B, T, V)", _ce_torch_3d,
            hint="F.cross_entropy takes the classes on dim 1: flatten first, "
                 "F.cross_entropy(logits.view(-1, V), targets.view(-1))"),
    Mistake("log_softmax without dim", _ce_dim0,
            hint="the softmax ran over dim 0, the batch (F.log_softmax without dim= picks dim 0 for a "
                 "3-D tensor): pass dim=-1 to normalise over the vocabulary"),
    Mistake("mean over the vocabulary too", _ce_mean_over_vocab,
            hint="that averages over all B * T * V entries of logp * one_hot, so it is V times too "
                 "small: sum over the vocabulary (.sum(-1)), then take the mean over the B * T positions"),
    Mistake("changes logits in place", _ce_in_place,
            hint="cross_entropy changed its input in place (logits -= ...): autograd refuses that on "
                 "the logits, and it would alter the caller's tensor; compute a new tensor "
                 "(shifted = logits - logits.max(...)) or use F.log_softmax"),
    Mistake("hard-coded V = 65", _ce_v65,
            hint="the vocabulary size 65 is written into the code: read it from the logits, "
                 "V = logits.shape[-1]"),
    Mistake("F.one_hot without num_classes", _ce_one_hot_no_classes,
            hint="F.one_hot(targets) sizes the one-hot by the largest target in the batch, not by V: "
                 "pass num_classes=logits.shape[-1] (or pick with gather)"),
    Mistake("arange(B), arange(T) side by side", _ce_arange_pairs,
            hint="logp[torch.arange(B), torch.arange(T), targets] pairs the two aranges element by "
                 "element: index with torch.arange(B)[:, None], torch.arange(T)[None, :], targets "
                 "(or use gather)"),
    Mistake("gather along dim 1", _ce_gather_dim1,
            hint="gather ran along dim 1, the positions: pick along the vocabulary, "
                 "logp.gather(-1, targets.unsqueeze(-1))"),
    Mistake("log-sum-exp without the max", _ce_no_max_shift,
            hint="exp() of a large logit overflows to inf: subtract the row's max before exp "
                 "(logsumexp does), or simply use F.log_softmax(logits, dim=-1)"),
    Mistake("log(softmax + eps)", _ce_softmax_eps,
            hint="the epsilon in log(softmax + 1e-9) biases the loss of confident wrong predictions: "
                 "use F.log_softmax(logits, dim=-1), which needs no epsilon"),
    Mistake("changes targets in place", _ce_targets_in_place,
            hint="cross_entropy changed the caller's targets in place (unsqueeze_ or similar): use "
                 "targets.unsqueeze(-1), which returns a new view and leaves targets as it was"),
    Mistake("detached", _ce_detached,
            hint="the result does not depend on the logits through autograd (did you use .detach() "
                 "or numpy?); keep it a tensor computation so the gradient reaches the logits"),
]


def _ce_cases() -> list[Case]:
    g = torch.Generator().manual_seed(0)
    cases = []
    for B, T, V, scale in ((3, 5, 11, 3.0), (2, 8, 65, 1.0), (1, 1, 3, 1.0), (4, 3, 7, 10.0)):
        logits = torch.randn(B, T, V, generator=g) * scale
        targets = torch.randint(V, (B, T), generator=g)
        cases.append(Case(f"cross_entropy(logits of shape {(B, T, V)}, targets of shape {(B, T)})",
                          logits, targets))
    logits = torch.randn(2, 4, 9, generator=g)
    cases.append(Case("cross_entropy(logits of shape (2, 4, 9), targets of shape (2, 4), no target "
                      "above 5)", logits, torch.randint(6, (2, 4), generator=g)))
    big = torch.tensor([[[0.0, 200.0, -200.0], [5.0, 0.0, 1.0]]])
    cases.append(Case("cross_entropy on logits [[0, 200, -200], [5, 0, 1]] with targets [0, 2] "
                      "(a confident wrong prediction)", big, torch.tensor([[0, 2]])))
    return cases


def _run_ce(impl: Any, case: Case) -> Any:
    (logits, targets), _ = case.fresh()
    logits.requires_grad_()
    out = impl(logits, targets)
    if isinstance(out, (float, int)) and not isinstance(out, bool):
        raise CheckFailed(_CE_ITEM)
    as_tensor(out, "cross_entropy(logits, targets)")
    observed = outputs_and_grads(out, {"logits": logits})
    observed["targets after the call"] = targets
    return observed


@check("cross_entropy", mistakes=CROSS_ENTROPY)
def check_cross_entropy(cross_entropy: Callable[[torch.Tensor, torch.Tensor], Any]) -> None:
    """Exercise 2: mean ``-log p(target)`` over ``(B, T)`` positions, stable, with the gradient of the logits."""
    compare(cross_entropy, _ref_cross_entropy, _ce_cases(), name="cross_entropy(logits, targets)",
            run=_run_ce, mistakes=CROSS_ENTROPY, atol=1e-4)


# ---- exercise 3: a training step -----------------------------------------------------------------


class _TinyLM(nn.Module):
    """A bigram-like model for the checks: ``forward(idx, targets) -> (logits, loss)``."""

    def __init__(self, vocab_size: int = 7, frozen: bool = False) -> None:
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)
        self.bias = nn.Parameter(torch.zeros(vocab_size))
        self.frozen = nn.Parameter(torch.ones(vocab_size), requires_grad=False) if frozen else None

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> Any:
        logits = self.table(idx) + self.bias  # (B, T, V)
        if self.frozen is not None:
            logits = logits * self.frozen
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss


def _ref_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> float:
    opt.zero_grad(set_to_none=True)
    _, loss = model(x, y)
    loss.backward()
    opt.step()
    return loss.item()


def _ts_no_zero_grad(model, optimizer, x, y):
    _, loss = model(x, y)
    loss.backward()
    optimizer.step()
    return loss.item()


def _ts_no_step(model, optimizer, x, y):
    optimizer.zero_grad()
    _, loss = model(x, y)
    loss.backward()
    return loss.item()


def _ts_tensor(model, optimizer, x, y):
    optimizer.zero_grad()
    _, loss = model(x, y)
    loss.backward()
    optimizer.step()
    return loss


def _ts_zero_grad_before_step(model, optimizer, x, y):
    _, loss = model(x, y)
    loss.backward()
    optimizer.zero_grad()
    optimizer.step()
    return loss.item()


def _ts_loss_after_step(model, optimizer, x, y):
    optimizer.zero_grad()
    _, loss = model(x, y)
    loss.backward()
    optimizer.step()
    return model(x, y)[1].item()


def _ts_new_optimizer(model, optimizer, x, y):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    opt.zero_grad()
    _, loss = model(x, y)
    loss.backward()
    opt.step()
    return loss.item()


def _ts_no_targets(model, optimizer, x, y):
    optimizer.zero_grad()
    logits, loss = model(x)
    loss.backward()
    optimizer.step()
    return loss.item()


def _ts_swapped(model, optimizer, x, y):  # model(y, x): the targets fed as inputs
    optimizer.zero_grad(set_to_none=True)
    _, loss = model(y, x)
    loss.backward()
    optimizer.step()
    return loss.item()


def _ts_eval(model, optimizer, x, y):  # switches the model to eval mode while training
    model.eval()
    optimizer.zero_grad(set_to_none=True)
    _, loss = model(x, y)
    loss.backward()
    optimizer.step()
    return loss.item()


def _ts_unpack_swapped(model, optimizer, x, y):  # loss, _ = model(x, y): the logits taken as the loss
    optimizer.zero_grad(set_to_none=True)
    loss, _ = model(x, y)
    loss.backward()
    optimizer.step()
    return loss.item()


def _ts_no_grad_forward(model, optimizer, x, y):  # the forward pass under torch.no_grad()
    optimizer.zero_grad(set_to_none=True)
    with torch.no_grad():
        _, loss = model(x, y)
    loss.backward()
    optimizer.step()
    return loss.item()


_TS_TENSOR = ("train_step returned a tensor; return loss.item(), a Python float, so the computation "
              "graph can be freed")
_UNCHANGED = ("the parameters did not change: call optimizer.step() after loss.backward(), and clear "
              "the gradients at the start of the step (optimizer.zero_grad() between backward and "
              "step wipes them)")

TRAIN_STEP = [
    Mistake("no zero_grad", _ts_no_zero_grad,
            hint="gradients pile up from one step to the next: call optimizer.zero_grad() before "
                 "loss.backward()"),
    Mistake("no step", _ts_no_step, hint=_UNCHANGED),
    Mistake("zero_grad between backward and step", _ts_zero_grad_before_step, hint=_UNCHANGED),
    Mistake("returns the tensor", _ts_tensor, hint=_TS_TENSOR),
    Mistake("loss after the step", _ts_loss_after_step,
            hint="return the loss computed by model(x, y) in this step, before the update (not a "
                 "second forward pass after optimizer.step())"),
    Mistake("a new optimizer every step", _ts_new_optimizer,
            hint="use the optimizer passed in: one created inside train_step starts from scratch "
                 "(and with its own lr) at every step"),
    Mistake("model(x) without targets", _ts_no_targets,
            expect="your code raised AttributeError"),
    Mistake("model(y, x)", _ts_swapped,
            hint="the inputs and targets are swapped: call model(x, y), the batch's inputs first"),
    Mistake("loss, _ = model(x, y)", _ts_unpack_swapped,
            hint="model(x, y) returns (logits, loss) in that order: unpack it as _, loss = model(x, y)"),
    Mistake("forward under no_grad", _ts_no_grad_forward,
            hint="the forward pass ran under torch.no_grad(), so the loss has no graph to "
                 "back-propagate: compute the loss with gradients on (no_grad is for evaluation only)"),
    Mistake("model.eval() in the step", _ts_eval,
            hint="train_step left the model in eval mode (dropout off while training): a training "
                 "step does not call model.eval(); leave the mode as it is"),
]


def _batches(n: int, vocab_size: int, B: int, T: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randint(vocab_size, (B, T), generator=g),
             torch.randint(vocab_size, (B, T), generator=g)) for _ in range(n)]


def _ts_cases() -> list[Case]:
    return [
        Case("4 steps of AdamW(lr=0.05) on a 7-token bigram table, batches (4, 6)",
             7, False, "adamw", _batches(4, 7, 4, 6, 0)),
        Case("3 steps of SGD(lr=0.5, momentum=0.9) on an 11-token table with a frozen parameter, "
             "batches (2, 9)", 11, True, "sgd", _batches(3, 11, 2, 9, 1)),
        Case("1 step of AdamW(lr=0.05) on a 5-token table, batch (1, 1)", 5, False, "adamw",
             _batches(1, 5, 1, 1, 2)),
    ]


def _run_ts(impl: Any, case: Case) -> list[Any]:
    (V, frozen, kind, batches), _ = case.fresh()
    torch.manual_seed(V)
    model = _TinyLM(V, frozen)
    model.train()
    with torch.no_grad():
        model.bias.normal_()
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = (torch.optim.AdamW(trainable, lr=0.05) if kind == "adamw"
           else torch.optim.SGD(trainable, lr=0.5, momentum=0.9))
    transcript = []
    for i, (x, y) in enumerate(batches, 1):
        returned = impl(model, opt, x, y)
        step = {"returned a": _kind(returned),
                "returned": returned.detach().clone() if isinstance(returned, torch.Tensor) else returned}
        step.update({f"{name} after the step": p.detach().clone() for name, p in model.named_parameters()})
        step["frozen parameter's grad"] = None if model.frozen is None else model.frozen.grad
        step["model in training mode afterwards"] = model.training
        transcript.append(step)
    return transcript


def _kind(value: Any) -> str:
    """``"float"`` for a Python (or numpy) float, else what the value is."""
    if isinstance(value, float):
        return "float"
    return "a tensor" if isinstance(value, torch.Tensor) else kind_of(value)


def _returned_float(name: str, tensor_hint: str) -> Callable[[Any, Case], Any]:
    """A ``read`` that requires the function to return a Python float (at every step)."""
    def read(observation: Any, case: Case) -> Any:
        for step in observation if isinstance(observation, list) else [observation]:
            kind = step["returned a"]
            if kind == "float":
                continue
            if step["returned"] is None:
                raise none_hint(name, "the loss as a Python float (loss.item())")
            if kind == "a tensor":
                raise CheckFailed(tensor_hint)
            raise CheckFailed(f"{name} should return a Python float, got {kind}")
        return observation
    return read


@check("train_step", mistakes=TRAIN_STEP)
def check_train_step(train_step: Callable[..., Any]) -> None:
    """Exercise 3: zero_grad, forward, backward, step; returns the loss as a float (sequences of steps)."""
    compare(train_step, _ref_step, _ts_cases(), name="train_step", run=_run_ts, mistakes=TRAIN_STEP,
            read=_returned_float("train_step", _TS_TENSOR), atol=1e-5)


# ---- exercise 4: estimate_loss -------------------------------------------------------------------


def _el_no_eval(model, get_batch_fn, eval_iters):
    with torch.no_grad():
        return sum(model(*get_batch_fn())[1].item() for _ in range(eval_iters)) / eval_iters


def _el_with_grad(model, get_batch_fn, eval_iters):
    model.eval()
    out = sum(model(*get_batch_fn())[1].item() for _ in range(eval_iters)) / eval_iters
    model.train()
    return out


def _el_stays_in_eval(model, get_batch_fn, eval_iters):
    model.eval()
    with torch.no_grad():
        return sum(model(*get_batch_fn())[1].item() for _ in range(eval_iters)) / eval_iters


def _el_sum(model, get_batch_fn, eval_iters):
    model.eval()
    with torch.no_grad():
        out = sum(model(*get_batch_fn())[1].item() for _ in range(eval_iters))
    model.train()
    return out


def _el_last(model, get_batch_fn, eval_iters):
    model.eval()
    with torch.no_grad():
        for _ in range(eval_iters):
            _, loss = model(*get_batch_fn())
    model.train()
    return loss.item()


def _el_one_batch(model, get_batch_fn, eval_iters):
    model.eval()
    x, y = get_batch_fn()
    with torch.no_grad():
        out = sum(model(x, y)[1].item() for _ in range(eval_iters)) / eval_iters
    model.train()
    return out


def _el_tensor(model, get_batch_fn, eval_iters):
    model.eval()
    with torch.no_grad():
        losses = torch.stack([model(*get_batch_fn())[1] for _ in range(eval_iters)])
    model.train()
    return losses.mean()


def _el_global_iters(model, get_batch_fn, eval_iters):  # the notebook's eval_iters = 50
    model.eval()
    with torch.no_grad():
        out = sum(model(*get_batch_fn())[1].item() for _ in range(50)) / 50
    model.train()
    return out


def _el_targets_x(model, get_batch_fn, eval_iters):  # model(x, x): the inputs as targets
    model.eval()
    with torch.no_grad():
        losses = []
        for _ in range(eval_iters):
            x, y = get_batch_fn()
            losses.append(model(x, x)[1].item())
    model.train()
    return sum(losses) / eval_iters


def _el_grad_left_off(model, get_batch_fn, eval_iters):  # set_grad_enabled(False), never undone
    model.eval()
    torch.set_grad_enabled(False)
    out = sum(model(*get_batch_fn())[1].item() for _ in range(eval_iters)) / eval_iters
    model.train()
    return out


def _el_one_too_few(model, get_batch_fn, eval_iters):  # range(eval_iters - 1)
    model.eval()
    with torch.no_grad():
        losses = [model(*get_batch_fn())[1].item() for _ in range(eval_iters - 1)]
    model.train()
    return sum(losses) / max(len(losses), 1)


_EL_TENSOR = "estimate_loss should return a Python float: take .item() of the mean"

def _el_modes_swapped(model, get_batch_fn, eval_iters):
    model.train()
    with torch.no_grad():
        losses = [model(*get_batch_fn())[1].item() for _ in range(eval_iters)]
    model.eval()
    return sum(losses) / eval_iters


def _el_unpack_swapped(model, get_batch_fn, eval_iters):  # loss, _ = model(x, y)
    model.eval()
    with torch.no_grad():
        losses = []
        for _ in range(eval_iters):
            loss, _ = model(*get_batch_fn())
            losses.append(loss.item())
    model.train()
    return sum(losses) / eval_iters


def _el_floor_division(model, get_batch_fn, eval_iters):  # sum(...) // eval_iters
    model.eval()
    with torch.no_grad():
        losses = [model(*get_batch_fn())[1].item() for _ in range(eval_iters)]
    model.train()
    return sum(losses) // eval_iters


def _el_no_grad_no_call(model, get_batch_fn, eval_iters):  # `with torch.no_grad:` without ()
    model.eval()
    with torch.no_grad:
        losses = [model(*get_batch_fn())[1].item() for _ in range(eval_iters)]
    model.train()
    return sum(losses) / eval_iters


def _el_split_argument(model, get_batch_fn, eval_iters):  # get_batch_fn("val"), as get_batch takes a split
    model.eval()
    with torch.no_grad():
        losses = [model(*get_batch_fn("val"))[1].item() for _ in range(eval_iters)]
    model.train()
    return sum(losses) / eval_iters


ESTIMATE_LOSS = [
    Mistake("train() and eval() swapped", _el_modes_swapped,
            hint="model.train() and model.eval() are swapped: call model.eval() BEFORE the loop "
                 "(dropout off while measuring) and model.train() after it"),
    Mistake("no eval()", _el_no_eval,
            hint="the model was in training mode during the evaluation: call model.eval() first"),
    Mistake("no no_grad", _el_with_grad,
            hint="gradients were being tracked during the evaluation: wrap the loop in "
                 "`with torch.no_grad():`"),
    Mistake("left in eval mode", _el_stays_in_eval,
            hint="the model is left in eval mode: call model.train() at the end"),
    Mistake("sum", _el_sum, hint="that is the sum of the losses; divide by eval_iters for the mean"),
    Mistake("last batch only", _el_last,
            hint="that is the loss of the last batch only; average all eval_iters losses"),
    Mistake("one batch reused", _el_one_batch,
            hint="call get_batch_fn() once per loss: each of the eval_iters losses needs a new batch"),
    Mistake("returns a tensor", _el_tensor, hint=_EL_TENSOR),
    Mistake("eval_iters - 1 batches", _el_one_too_few,
            hint="averaged eval_iters - 1 batches (range(eval_iters - 1)); range(eval_iters) already "
                 "gives eval_iters of them"),
    Mistake("the notebook's eval_iters", _el_global_iters,
            hint="use the eval_iters argument, not the notebook's eval_iters"),
    Mistake("inputs as targets", _el_targets_x,
            hint="the model was not given the batch's targets: unpack x, y = get_batch_fn() and "
                 "call model(x, y)"),
    Mistake("loss, _ = model(x, y)", _el_unpack_swapped,
            hint="model(x, y) returns (logits, loss) in that order: unpack it as _, loss = model(x, y)"),
    Mistake("floor division", _el_floor_division,
            hint="the mean lost its fraction (// is floor division, and an integer tensor of losses "
                 "truncates them): keep the losses as floats and divide with /"),
    Mistake("torch.no_grad without ()", _el_no_grad_no_call,
            hint="torch.no_grad is a class: call it, `with torch.no_grad():`"),
    Mistake("get_batch_fn with an argument", _el_split_argument,
            hint="get_batch_fn takes no argument (the split and sizes are already bound in it): "
                 "call get_batch_fn()"),
    Mistake("gradients left off", _el_grad_left_off,
            hint="gradients were still off after estimate_loss returned, so the training that "
                 "follows learns nothing: turn them off only inside `with torch.no_grad():`, not "
                 "with torch.set_grad_enabled(False)"),
]


def _el_cases() -> list[Case]:
    return [Case("estimate_loss(model returning the losses 1, 2, 4, 5, 3, ..., get_batch_fn, 4)",
                 [1.0, 2.0, 4.0, 5.0, 3.0], 4),
            Case("estimate_loss(model returning the losses 2.5, 0.5, ..., get_batch_fn, 1)", [2.5, 0.5], 1),
            Case("estimate_loss(model returning the losses 3, 1, 1, 7, 2, 9, ..., get_batch_fn, 9)",
                 [3.0, 1.0, 1.0, 7.0, 2.0, 9.0], 9)]


def _run_el(impl: Any, case: Case) -> dict[str, Any]:
    (losses, eval_iters), _ = case.fresh()
    shift = 100  # batch n holds the ids n and the targets n + shift
    model = ScriptedLosses(losses, target_of=lambda idx: idx + shift)
    model.train()
    drawn = {"n": 0}

    def get_batch_fn() -> tuple[torch.Tensor, torch.Tensor]:
        drawn["n"] += 1
        return (torch.full((2, 3), drawn["n"], dtype=torch.long),
                torch.full((2, 3), drawn["n"] + shift, dtype=torch.long))

    torch.set_grad_enabled(True)  # as in the training loop that calls estimate_loss
    value = impl(model, get_batch_fn, eval_iters)
    grad_after = torch.is_grad_enabled()
    torch.set_grad_enabled(True)
    return {"returned a": _kind(value),
            "returned": value.detach() if isinstance(value, torch.Tensor) else value,
            "batches drawn": drawn["n"], "batches the model saw": model.batches,
            # model(x) with the loss computed from its logits and y is right too: only targets
            # given that are not the batch's own count
            "targets given that are not the batch's": [t for t, b in zip(model.targets, model.batches)
                                                      if t not in (-1, b + shift)],
            "gradients on again afterwards": grad_after,
            "model in training mode during the calls": model.modes,
            "gradients tracked during the calls": model.grad_enabled,
            "model in training mode afterwards": model.training}


def _reference_el(model: nn.Module, get_batch_fn: Callable[[], Any], eval_iters: int) -> float:
    return reference_estimate_loss(model, get_batch_fn, eval_iters)


@check("estimate_loss", mistakes=ESTIMATE_LOSS)
def check_estimate_loss(estimate_loss: Callable[..., Any]) -> None:
    """Exercise 4: mean of ``eval_iters`` losses, eval mode, no_grad, back to train mode."""
    compare(estimate_loss, _reference_el, _el_cases(), name="estimate_loss", run=_run_el,
            mistakes=ESTIMATE_LOSS, read=_returned_float("estimate_loss", _EL_TENSOR), atol=1e-6)
