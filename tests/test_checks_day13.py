"""The day-13 checks pass the solutions, catch typical mistakes, say "not done yet" for stubs."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from llmcourse.checks import day13
from llmcourse.model import functional as LF
from llmcourse.train import evaluate
from checklines import one_line, stub


def _expect(capsys, verdict, passed, words):
    assert bool(verdict) is passed
    line = one_line(capsys)
    for w in words if isinstance(words, (list, tuple)) else [words]:
        assert w in line, line
    return line


# ---- exercise 1: log_softmax -----------------------------------------------------------------


def good_log_softmax(x):
    m = x.amax(dim=-1, keepdim=True)
    return (x - m) - torch.log(torch.exp(x - m).sum(dim=-1, keepdim=True))


def test_log_softmax_passes_and_stub(capsys):
    _expect(capsys, day13.check_log_softmax(good_log_softmax), True, "passed")
    _expect(capsys, day13.check_log_softmax(LF.log_softmax), True, "passed")
    _expect(capsys, day13.check_log_softmax(lambda x: x - torch.logsumexp(x, -1, keepdim=True)),
            True, "passed")
    _expect(capsys, day13.check_log_softmax(stub), False, "not done yet")


def test_log_softmax_mistakes(capsys):
    def no_max(x):
        return x - torch.log(torch.exp(x).sum(-1, keepdim=True))

    _expect(capsys, day13.check_log_softmax(no_max), False, "Subtract the row maximum")

    def log_of_softmax(x):
        m = x.amax(-1, keepdim=True)
        e = torch.exp(x - m)
        return torch.log(e / e.sum(-1, keepdim=True))

    _expect(capsys, day13.check_log_softmax(log_of_softmax), False, "never the log of the softmax")

    def wrong_dim(x):
        m = x.amax(0, keepdim=True)
        return (x - m) - torch.log(torch.exp(x - m).sum(0, keepdim=True))

    _expect(capsys, day13.check_log_softmax(wrong_dim), False, "wrong dimension")

    def just_softmax(x):
        m = x.amax(-1, keepdim=True)
        e = torch.exp(x - m)
        return e / e.sum(-1, keepdim=True)

    _expect(capsys, day13.check_log_softmax(just_softmax), False, "softmax itself")
    _expect(capsys, day13.check_log_softmax(lambda x: F.log_softmax(x, dim=-1)), False,
            "do not call F.log_softmax")
    _expect(capsys, day13.check_log_softmax(lambda x: x.log_softmax(-1)), False, "yourself")
    _expect(capsys, day13.check_log_softmax(lambda x: None), False, "None")
    # the builtins are restored after the check
    assert torch.allclose(F.softmax(torch.zeros(2), dim=-1), torch.full((2,), 0.5))
    assert torch.zeros(2).log_softmax(-1).shape == (2,)


def test_log_softmax_crash_shows_the_input(capsys):
    def crashes(x):
        return x.view(-1, 4)

    _expect(capsys, day13.check_log_softmax(crashes), False,
            ["your code raised RuntimeError", "shape (3, 7)"])


# ---- exercise 2: cross_entropy ---------------------------------------------------------------


def good_cross_entropy(logits, targets, ignore_index=-100):
    logp = good_log_softmax(logits)
    keep = targets != ignore_index
    picked = logp.gather(-1, targets.masked_fill(~keep, 0).unsqueeze(-1)).squeeze(-1)
    return -(picked * keep).sum() / keep.sum()


def test_cross_entropy_passes_and_stub(capsys):
    _expect(capsys, day13.check_cross_entropy(good_cross_entropy), True, "passed")
    _expect(capsys, day13.check_cross_entropy(LF.cross_entropy), True, "passed")
    _expect(capsys, day13.check_cross_entropy(stub), False, "not done yet")


def test_cross_entropy_names_the_unfinished_log_softmax(capsys):
    def log_softmax(x):
        raise NotImplementedError

    def uses_it(logits, targets, ignore_index=-100):
        return log_softmax(logits).sum()

    _expect(capsys, day13.check_cross_entropy(uses_it), False, "finish exercise 1 first")


def test_cross_entropy_mistakes(capsys):
    def all_positions(logits, targets, ignore_index=-100):
        logp = good_log_softmax(logits)
        keep = targets != ignore_index
        picked = logp.gather(-1, targets.masked_fill(~keep, 0).unsqueeze(-1)).squeeze(-1)
        return -(picked * keep).mean()

    _expect(capsys, day13.check_cross_entropy(all_positions), False, "counted targets")

    def no_ignore(logits, targets, ignore_index=-100):
        logp = good_log_softmax(logits)
        return -logp.gather(-1, targets.unsqueeze(-1)).mean()

    _expect(capsys, day13.check_cross_entropy(no_ignore), False,
            ["your code raised", "ignore_index are not class ids", "-100"])

    def fixed_minus_100(logits, targets, ignore_index=-100):
        return good_cross_entropy(logits, targets, -100)

    _expect(capsys, day13.check_cross_entropy(fixed_minus_100), False, "ignore_index=0 was not used")

    def summed(logits, targets, ignore_index=-100):
        logp = good_log_softmax(logits)
        keep = targets != ignore_index
        picked = logp.gather(-1, targets.masked_fill(~keep, 0).unsqueeze(-1)).squeeze(-1)
        return -(picked * keep).sum()

    _expect(capsys, day13.check_cross_entropy(summed), False, "sum")
    _expect(capsys, day13.check_cross_entropy(lambda lg, t, ignore_index=-100: -good_cross_entropy(lg, t, ignore_index)),
            False, "sign")
    _expect(capsys, day13.check_cross_entropy(
        lambda lg, t, ignore_index=-100: good_cross_entropy(lg, t, ignore_index) / math.log(2)),
        False, "bits")

    def unstable(logits, targets, ignore_index=-100):
        p = torch.exp(logits) / torch.exp(logits).sum(-1, keepdim=True)
        keep = targets != ignore_index
        picked = torch.log(p.gather(-1, targets.masked_fill(~keep, 0).unsqueeze(-1)).squeeze(-1))
        return -(picked * keep).sum() / keep.sum()

    _expect(capsys, day13.check_cross_entropy(unstable), False, "non-finite")

    def nan_pad(logits, targets, ignore_index=-100):
        logp = good_log_softmax(logits)
        keep = targets != ignore_index
        picked = logp.gather(-1, targets.masked_fill(~keep, 0).unsqueeze(-1)).squeeze(-1)
        picked = torch.where(keep, picked, torch.tensor(float("nan")))
        return -picked.nansum() / keep.sum() if keep.all() else -(picked * keep).sum() / keep.sum()

    _expect(capsys, day13.check_cross_entropy(nan_pad), False, "ignored")

    def detached(logits, targets, ignore_index=-100):
        return torch.tensor(good_cross_entropy(logits, targets, ignore_index).item())

    _expect(capsys, day13.check_cross_entropy(detached), False, "autograd")
    _expect(capsys, day13.check_cross_entropy(
        lambda lg, t, ignore_index=-100: F.cross_entropy(lg.reshape(-1, lg.size(-1)), t.reshape(-1),
                                                         reduction="none")),
        False, "one number")


# ---- exercise 3: units -----------------------------------------------------------------------


def good_perplexity(loss):
    return math.exp(loss)


def good_bpb(loss, n_tokens, n_bytes):
    return loss / math.log(2) * n_tokens / n_bytes


def test_units_passes_and_stub(capsys):
    _expect(capsys, day13.check_units(good_perplexity, good_bpb), True, "passed")
    pkg_bpb = lambda loss, n_tokens, n_bytes: evaluate.bits_per_byte(loss, n_bytes / n_tokens)
    _expect(capsys, day13.check_units(evaluate.perplexity, pkg_bpb), True, "passed")
    _expect(capsys, day13.check_units(lambda l: torch.exp(torch.tensor(l)), good_bpb), True, "passed")
    _expect(capsys, day13.check_units(stub, good_bpb), False, "not done yet")
    _expect(capsys, day13.check_units(good_perplexity, stub), False, "not done yet")


@pytest.mark.parametrize("ppl,bpb,words", [
    (lambda l: 2 ** l, good_bpb, "e ** loss"),
    (lambda l: 10 ** l, good_bpb, "math.exp"),
    (lambda l: None, good_bpb, "None"),
    (good_perplexity, lambda l, t, b: l * t / b, "divide by ln 2"),
    (good_perplexity, lambda l, t, b: l * math.log(2) * t / b, "multiplied by ln 2"),
    (good_perplexity, lambda l, t, b: l / math.log(2) * b / t, "upside down"),
    (good_perplexity, lambda l, t, b: l / math.log(2), "bits per token"),
    (good_perplexity, lambda l, t, b: math.log2(l) * t / b, "not a change of unit"),
])
def test_units_mistakes(capsys, ppl, bpb, words):
    _expect(capsys, day13.check_units(ppl, bpb), False, words)


# ---- exercise 4: loss by position ------------------------------------------------------------


def good_loss_by_position(logits, targets):
    B, T, V = logits.shape
    per = F.cross_entropy(logits.reshape(B * T, V), targets.reshape(B * T), reduction="none")
    return per.view(B, T).mean(dim=0)


def test_loss_by_position(capsys):
    _expect(capsys, day13.check_loss_by_position(good_loss_by_position), True, "passed")
    _expect(capsys, day13.check_loss_by_position(stub), False, "not done yet")

    def per_seq(logits, targets):
        B, T, V = logits.shape
        return F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1),
                               reduction="none").view(B, T).mean(1)

    _expect(capsys, day13.check_loss_by_position(per_seq), False, "Average over the batch")

    def wrong_view(logits, targets):
        B, T, V = logits.shape
        return F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1),
                               reduction="none").view(T, B).mean(1)

    _expect(capsys, day13.check_loss_by_position(wrong_view), False, "(B, T), not (T, B)")

    def summed(logits, targets):
        return good_loss_by_position(logits, targets) * logits.shape[0]

    _expect(capsys, day13.check_loss_by_position(summed), False, "sum over the batch")
    _expect(capsys, day13.check_loss_by_position(
        lambda lg, t: F.cross_entropy(lg.reshape(-1, lg.size(-1)), t.reshape(-1))), False, "one number")
    _expect(capsys, day13.check_loss_by_position(
        lambda lg, t: good_loss_by_position(lg, t).tolist()), False, "torch tensor")
