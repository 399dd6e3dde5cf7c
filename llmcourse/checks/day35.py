"""Checks for day 35, "Distillation": softened targets, the distillation loss, the gap closed.

Each ``check_*`` compares the learner's function with a reference on a small seeded battery of
its own (shapes unlike the notebook's, ``T`` and ``alpha`` at non-default values including the
ends 0 and 1, ignored ``-1`` targets, large logits, 2-D and 3-D logits): the value AND the
gradients with respect to the logits. It prints one line (a pass, a hint from the exercise's
table of typical mistakes, or "not done yet") and returns a verdict. None of them raises. The
references are :mod:`llmcourse.finetune.distill` and :func:`gap_closed`.

Example::

    >>> from llmcourse.checks import day35
    >>> ok = day35.check_gap_closed(lambda t, s, d: (s - d) / (s - t))
    ✅ gap_closed: passed
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F

from llmcourse.checks._core import (Case, Mistake, as_float, check, compare, needs_earlier,
                                    outputs_and_grads)
from llmcourse.finetune.distill import distillation_loss, soften

__all__ = ["check_soften", "check_distillation_loss", "check_gap_closed", "gap_closed"]


def gap_closed(teacher_loss: float, student_loss: float, distilled_loss: float) -> float:
    """The share of the student-teacher gap that distillation closed (the reference).

    >>> round(gap_closed(2.0, 2.5, 2.4), 4)
    0.2
    """
    return (student_loss - distilled_loss) / (student_loss - teacher_loss)


def _logits(*shape: int, seed: int, scale: float = 2.0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale


# ---- exercise 1: soften -------------------------------------------------------------------------


def _naive(logits, T):  # exp without subtracting the max: overflows on large logits
    e = torch.exp(logits / T)
    return e / e.sum(-1, keepdim=True)


def _in_place(x, T):  # logits /= T: writes into the caller's logits
    x /= T
    return torch.softmax(x, -1)


SOFTEN = [
    Mistake("times T", lambda x, T: torch.softmax(x * T, -1), hint="the logits are multiplied by "
            "T; divide them: softmax(logits / T)"),
    Mistake("ignores T", lambda x, T: torch.softmax(x, -1), hint="T is ignored; divide the logits "
            "by T before the softmax"),
    Mistake("no softmax", lambda x, T: x / T, hint="that is logits / T; apply the softmax to them "
            "as well"),
    Mistake("log_softmax", lambda x, T: torch.log_softmax(x / T, -1), hint="those are "
            "log-probabilities; return probabilities (softmax)"),
    Mistake("softmax after dividing the probabilities", lambda x, T: torch.softmax(x, -1) / T,
            hint="you divided the probabilities by T; divide the logits, then take the softmax"),
    Mistake("dim 0", lambda x, T: torch.softmax(x / T, 0), hint="the softmax is over the wrong "
            "dimension: the values along the last dimension (the vocabulary) should sum to 1; use "
            "dim=-1"),
    Mistake("naive exp", _naive, hint="exp(logits / T) overflows to inf for large logits (NaN "
            "after the division): use torch.softmax(logits / T, dim=-1), which subtracts the "
            "maximum first"),
    Mistake("divides in place", _in_place, hint="logits /= T divides the caller's tensor in place "
            "(autograd refuses it for logits that require grad): write "
            "torch.softmax(logits / T, dim=-1)"),
]


def _soften_cases() -> list[Case]:
    return [Case("soften(logits (2, 3, 5), T=3.0)", _logits(2, 3, 5, seed=11), 3.0),
            Case("soften(logits (4, 11), T=0.5)", _logits(4, 11, seed=12), 0.5),
            Case("soften(logits (1, 1, 7), T=1.0)", _logits(1, 1, 7, seed=13), 1.0),
            Case("soften(logits (2, 6) of size 1000, T=2.0)", _logits(2, 6, seed=14, scale=1000.0), 2.0)]


def _grad_of_first(impl: Any, case: Case) -> Any:
    args, kwargs = case.fresh()
    x = args[0].requires_grad_(True)
    return outputs_and_grads(impl(x, *args[1:], **kwargs), {"logits": x})


@check("soften", mistakes=SOFTEN)
def check_soften(soften_fn: Callable[[torch.Tensor, float], Any]) -> None:
    """Exercise 1: softmax(logits / T) over the last dimension, with the gradient of the logits."""
    compare(soften_fn, soften, _soften_cases(), name="soften(logits, T)", run=_grad_of_first,
            mistakes=SOFTEN)


# ---- exercise 2: distillation_loss -----------------------------------------------------------------


def _distill(kind: str = "") -> Callable[..., Any]:
    """The lesson's loss with one typical mistake (``kind``)."""

    def distillation_loss(s, t, y, T, alpha):
        V = s.shape[-1]
        s, t, y = s.reshape(-1, V), t.reshape(-1, V), y.reshape(-1)
        if kind != "teacher not detached":
            t = t.detach()
        keep = y != -1
        log_q = F.log_softmax(s / (1 if kind == "student not softened" else T), -1)
        log_p = F.log_softmax(t / T, -1)
        if kind == "reverse KL":
            kl = (log_q.exp() * (log_q - log_p)).sum(-1)
        else:
            kl = (log_p.exp() * (log_p - log_q)).sum(-1)
        if kind == "KL mean over V":
            kl = kl / V
        soft = kl.mean() if kind == "ignored rows in KL" else kl[keep].mean()
        soft = soft * {"no T^2": 1, "T not T^2": T}.get(kind, T ** 2)
        hard_logits = s / T if kind == "hard term at T" else s
        if kind == "no ignore_index":
            hard = F.cross_entropy(hard_logits, y)
        else:
            hard = F.cross_entropy(hard_logits, y, ignore_index=-1)
        if kind == "weights swapped":
            return (1 - alpha) * soft + alpha * hard
        if kind == "item":
            return (alpha * soft + (1 - alpha) * hard).item()
        return alpha * soft + (1 - alpha) * hard

    return distillation_loss


def _distill_3d(s, t, y, T, alpha):     # F.cross_entropy on (B, T, V) logits, not reshaped
    log_q, log_p = F.log_softmax(s / T, -1), F.log_softmax(t.detach() / T, -1)
    kl = (log_p.exp() * (log_p - log_q)).sum(-1)[y != -1].mean()
    return alpha * kl * T ** 2 + (1 - alpha) * F.cross_entropy(s, y, ignore_index=-1)



def _distill_soft_ce(s, t, y, T, alpha):  # -sum p log q instead of the KL
    V = s.shape[-1]
    s, t, y = s.reshape(-1, V), t.reshape(-1, V).detach(), y.reshape(-1)
    p, log_q = F.softmax(t / T, -1), F.log_softmax(s / T, -1)
    soft = (-(p * log_q).sum(-1))[y != -1].mean() * T ** 2
    return alpha * soft + (1 - alpha) * F.cross_entropy(s, y, ignore_index=-1)

def _distill_kl_div_log_target(s, t, y, T, alpha):  # F.kl_div given log-probs as its target
    V = s.shape[-1]
    s, t, y = s.reshape(-1, V), t.reshape(-1, V).detach(), y.reshape(-1)
    keep = y != -1
    log_q, log_p = F.log_softmax(s / T, -1), F.log_softmax(t / T, -1)
    soft = F.kl_div(log_q[keep], log_p[keep], reduction="batchmean") * T ** 2
    return alpha * soft + (1 - alpha) * F.cross_entropy(s, y, ignore_index=-1)


def _distill_all_rows_count(s, t, y, T, alpha):  # the kept rows' KL summed, divided by all rows
    V = s.shape[-1]
    s, t, y = s.reshape(-1, V), t.reshape(-1, V).detach(), y.reshape(-1)
    keep = y != -1
    log_q, log_p = F.log_softmax(s / T, -1), F.log_softmax(t / T, -1)
    kl = (log_p.exp() * (log_p - log_q)).sum(-1)
    soft = kl[keep].sum() / len(keep) * T ** 2
    return alpha * soft + (1 - alpha) * F.cross_entropy(s, y, ignore_index=-1)


def _distill_t2_on_both(s, t, y, T, alpha):  # T ** 2 multiplies the whole mix
    return T ** 2 * (alpha * _distill("no T^2")(s, t, y, T, 1.0)
                     + (1 - alpha) * _distill("no T^2")(s, t, y, T, 0.0))


DISTILL = [
    Mistake("3-D cross_entropy", _distill_3d, hint="F.cross_entropy wants logits (N, V) and "
            "targets (N,): reshape the student's logits with .reshape(-1, V) and the targets with "
            ".reshape(-1) first (given (B, T, V) it takes dim 1, T, as the classes)"),
    Mistake("no T^2", _distill("no T^2"), hint="the T**2 factor is left out: multiply the KL term "
            "by T ** 2, which keeps its gradients on the scale of the hard term's as T changes"),
    Mistake("T not T^2", _distill("T not T^2"), hint="the KL term is multiplied by T; the factor "
            "is T ** 2"),
    Mistake("weights swapped", _distill("weights swapped"), hint="the weights are swapped: alpha "
            "weights the soft (teacher) term, 1 - alpha the hard-label cross-entropy"),
    Mistake("reverse KL", _distill("reverse KL"), hint="that is KL(student || teacher); the soft "
            "targets are the teacher's: sum p_teacher * (log p_teacher - log p_student)"),
    Mistake("student not softened", _distill("student not softened"), hint="only the teacher is "
            "softened; divide the student's logits by T too before its log_softmax"),
    Mistake("KL mean over V", _distill("KL mean over V"), hint="the KL is averaged over the "
            "vocabulary; sum it over the vocabulary and average over the positions (F.kl_div's "
            "reduction='mean' does the wrong thing here)"),
    Mistake("ignored rows in KL", _distill("ignored rows in KL"), hint="the soft term is averaged "
            "over every position, those whose target is -1 too; leave those positions out of both "
            "terms"),
    Mistake("teacher not detached", _distill("teacher not detached"), hint="the gradient flows "
            "into the teacher's logits: the teacher is fixed, use teacher_logits.detach() (or run "
            "the teacher under torch.no_grad())"),
    Mistake("no ignore_index", _distill("no ignore_index"), hint="targets of -1 mark positions "
            "to ignore: pass ignore_index=-1 to F.cross_entropy and leave them out of the KL term"),
    Mistake("hard term at T", _distill("hard term at T"), hint="the hard term is the plain "
            "cross-entropy at temperature 1: use the student's raw logits, "
            "F.cross_entropy(student_logits, targets), not student_logits / T"),
    Mistake("kl_div with log-probs as target", _distill_kl_div_log_target, hint="F.kl_div's "
            "target is probabilities: give it the teacher's softmax, or pass log_target=True "
            "with its log_softmax"),
    Mistake("divided by every position", _distill_all_rows_count, hint="the KL of the kept "
            "positions was summed and divided by ALL positions: average over the kept ones "
            "(kl[keep].mean(), or divide by keep.sum())"),
    Mistake("T^2 on both terms", _distill_t2_on_both, hint="T ** 2 multiplies only the soft (KL) "
            "term: alpha * T**2 * KL + (1 - alpha) * cross-entropy"),
    Mistake("item", _distill("item"), hint="the loss has no gradient: keep it a tensor built from "
            "the student's logits (no .item(), no float())"),
    Mistake("soft cross-entropy", _distill_soft_ce, hint="that soft term is the cross-entropy "
            "-sum p_teacher * log p_student (Hinton's form): same gradients, but it adds the "
            "teacher's entropy; use the KL, sum p_teacher * (log p_teacher - log p_student), "
            "which is 0 for a perfect student"),
]


def _distill_cases() -> list[Case]:
    g = torch.Generator().manual_seed(3)
    y = torch.randint(0, 7, (2, 5), generator=g)
    y[0, 1] = y[1, 4] = -1
    y2 = torch.randint(0, 11, (6,), generator=g)
    y2[0] = -1
    y3 = torch.randint(0, 9, (3, 4), generator=g)
    return [
        Case("distillation_loss(student (2, 5, 7), teacher (2, 5, 7), targets (2, 5) with two -1, "
             "T=3.0, alpha=0.3)", _logits(2, 5, 7, seed=1), _logits(2, 5, 7, seed=2), y, 3.0, 0.3),
        Case("distillation_loss(student (6, 11), teacher (6, 11), targets (6,) with one -1, T=0.5, "
             "alpha=0.8)", _logits(6, 11, seed=4), _logits(6, 11, seed=5), y2, 0.5, 0.8),
        Case("distillation_loss(student (3, 4, 9), teacher (3, 4, 9), targets (3, 4), T=2.0, alpha=1.0)",
             _logits(3, 4, 9, seed=6), _logits(3, 4, 9, seed=7), y3, 2.0, 1.0),
        Case("distillation_loss(student (3, 4, 9), teacher (3, 4, 9), targets (3, 4), T=4.0, alpha=0.0)",
             _logits(3, 4, 9, seed=8), _logits(3, 4, 9, seed=9), y3, 4.0, 0.0),
    ]


def _distill_run(impl: Any, case: Case) -> Any:
    args, _ = case.fresh()
    s, t = args[0].requires_grad_(True), args[1].requires_grad_(True)
    out = impl(s, t, *args[2:])
    return outputs_and_grads(out, {"student_logits": s, "teacher_logits": t})


@check("distillation_loss", mistakes=DISTILL)
@needs_earlier(soften=1)
def check_distillation_loss(loss_fn: Callable[..., Any]) -> None:
    """Exercise 2: alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * cross-entropy, with gradients."""
    compare(loss_fn, distillation_loss, _distill_cases(),
            name="distillation_loss(student, teacher, targets, T, alpha)", run=_distill_run,
            mistakes=DISTILL, atol=1e-5, rtol=1e-4)


# ---- exercise 3: gap_closed -----------------------------------------------------------------------


GAP = [
    Mistake("percentage", lambda t, s, d: 100 * (s - d) / (s - t), hint="that is a percentage; "
            "return the fraction (0.25, not 25)"),
    Mistake("share still open", lambda t, s, d: (d - t) / (s - t), hint="that is the share still "
            "open; return the share closed: (student_loss - distilled_loss) / (student_loss - "
            "teacher_loss)"),
    Mistake("upside down", lambda t, s, d: (s - t) / (s - d), hint="the fraction is upside down; "
            "divide by the whole gap, student_loss - teacher_loss"),
    Mistake("divided by the student", lambda t, s, d: (s - d) / s, hint="it divides by the "
            "student's loss; divide by the gap, student_loss - teacher_loss"),
    Mistake("rounded", lambda t, s, d: round((s - d) / (s - t), 2), hint="the share is rounded: "
            "return the fraction itself and round only where you print it (0.1 / 0.7 is "
            "0.142857..., not 0.14)"),
    Mistake("abs", lambda t, s, d: abs(s - d) / abs(s - t), hint="a distilled model worse than "
            "the plain student closed a negative share: drop the abs()"),
    Mistake("divided by what is open", lambda t, s, d: (s - d) / (d - t), hint="it divides by "
            "the gap still open (distilled - teacher); divide by the whole gap, student_loss - "
            "teacher_loss"),
    Mistake("clamped", lambda t, s, d: max(0.0, min(1.0, (s - d) / (s - t))), hint="the share "
            "was clamped to [0, 1]: a distilled model worse than the plain student closed a "
            "negative share, one better than the teacher more than 1; return it as it is"),
    Mistake("negative denominator", lambda t, s, d: (s - d) / (t - s),
            hint="the share came out negative: divide by the gap to close, student_loss - "
                 "teacher_loss (positive when the teacher is better), not teacher - student"),
]


@check("gap_closed", mistakes=GAP)
def check_gap_closed(gap_fn: Callable[[float, float, float], Any]) -> None:
    """Exercise 3: (student - distilled) / (student - teacher), a fraction."""
    cases = [Case(f"gap_closed(teacher_loss={t}, student_loss={s}, distilled_loss={d})", t, s, d)
             for t, s, d in ((1.9, 2.7, 2.5), (2.0, 2.5, 2.4), (1.5, 2.0, 2.1), (3.0, 4.0, 2.5),
                            (1.9, 2.6, 2.5))]
    compare(gap_fn, gap_closed, cases, name="gap_closed(teacher_loss, student_loss, distilled_loss)",
            mistakes=GAP, read=lambda v, c: as_float(v, "gap_closed"), atol=1e-9, rtol=1e-6)
