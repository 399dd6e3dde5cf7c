"""The day-13 checks pass the solutions (and correct variants), catch the mistakes of the tables
in ``llmcourse/checks/day13.py``, refuse the package's own functions, say "not done yet" for
stubs, print exactly one line and never raise."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from llmcourse.checks import day13
from llmcourse.model import functional as LF
from llmcourse.train import evaluate
from checklines import fails, mistake_params, one_line, passes, rejects, stub


# ---- the lesson's solutions (solutions/day13_reading_the_loss.md) ----------------------------


def log_softmax(x):
    m = x.amax(dim=-1, keepdim=True)                          # (..., 1)
    shifted = x - m                                           # (..., V), all <= 0
    return shifted - torch.log(torch.exp(shifted).sum(dim=-1, keepdim=True))


def cross_entropy(logits, targets, ignore_index=-100):
    logp = log_softmax(logits)                                        # (..., V)
    keep = targets != ignore_index                                    # (...)
    safe = targets.masked_fill(~keep, 0)                              # valid ids everywhere
    picked = logp.gather(-1, safe.unsqueeze(-1)).squeeze(-1)          # (...)
    return -(picked * keep).sum() / keep.sum()


def perplexity_of(loss):
    return math.exp(loss)


def bits_per_byte_of(loss, n_tokens, n_bytes):
    return loss / math.log(2) * n_tokens / n_bytes


def loss_by_position(logits, targets):
    B, T, V = logits.shape
    per_token = F.cross_entropy(logits.reshape(B * T, V), targets.reshape(B * T),
                                reduction="none")                     # (B * T,)
    return per_token.view(B, T).mean(dim=0)                           # (T,)


# ---- other correct variants ------------------------------------------------------------------


def log_softmax_logsumexp(x):  # refused: log-sum-exp is what the exercise builds (31c #5)
    return x - torch.logsumexp(x, -1, keepdim=True)


def log_softmax_max_detached(x):
    m = x.max(dim=-1, keepdim=True).values.detach()
    return x - m - (x - m).exp().sum(-1, keepdim=True).log()


def cross_entropy_where(logits, targets, ignore_index=-100):
    logp = log_softmax(logits)
    keep = targets != ignore_index
    nll = -logp.gather(-1, torch.where(keep, targets, 0).unsqueeze(-1)).squeeze(-1)
    return torch.where(keep, nll, torch.zeros_like(nll)).sum() / keep.sum()


def cross_entropy_boolean_index(logits, targets, ignore_index=-100):
    keep = targets != ignore_index                       # read, never written: targets stay as given
    return -log_softmax(logits[keep]).gather(-1, targets[keep].unsqueeze(-1)).mean()


def loss_by_position_with_package(logits, targets):
    return LF.cross_entropy(logits, targets, reduction="none").mean(0)


@pytest.mark.parametrize("check_fn, args", [
    (day13.check_log_softmax, (log_softmax,)),
    (day13.check_log_softmax, (log_softmax_max_detached,)),
    (day13.check_cross_entropy, (cross_entropy,)),
    (day13.check_cross_entropy, (cross_entropy_where,)),
    (day13.check_cross_entropy, (cross_entropy_boolean_index,)),
    (day13.check_units, (perplexity_of, bits_per_byte_of)),
    (day13.check_units, (lambda loss: torch.exp(torch.tensor(loss)), bits_per_byte_of)),
    (day13.check_loss_by_position, (loss_by_position,)),
    (day13.check_loss_by_position, (loss_by_position_with_package,)),
])
def test_solutions_pass(capsys, check_fn, args):
    assert bool(check_fn(*args)) is True
    passes_line = capsys.readouterr().out.strip().splitlines()
    assert len(passes_line) == 1 and "passed" in passes_line[0], passes_line


@pytest.mark.parametrize("check_fn, mistake", mistake_params(day13))
def test_mistake_rejected(check_fn, mistake, capsys):
    rejects(capsys, check_fn, mistake)


def test_tables_have_three_mistakes():
    for fn in (day13.check_log_softmax, day13.check_cross_entropy, day13.check_units,
               day13.check_loss_by_position):
        assert len(fn.mistakes) >= 3


# ---- the package's functions are refused -----------------------------------------------------


def test_refuses_the_package_reference(capsys):
    fails(capsys, day13.check_log_softmax, LF.log_softmax, "the course's own reference")
    fails(capsys, day13.check_log_softmax, day13._reference_log_softmax,
          "the course's own reference")
    fails(capsys, day13.check_cross_entropy, LF.cross_entropy, "the course's own reference")
    fails(capsys, day13.check_loss_by_position, day13._reference_loss_by_position,
          "the course's own reference")
    assert bool(day13.check_units(evaluate.perplexity, bits_per_byte_of)) is False
    assert "the course's own reference" in capsys.readouterr().out


# ---- stubs, earlier exercises, odd values ----------------------------------------------------


def test_stubs(capsys):
    fails(capsys, day13.check_log_softmax, stub, "not done yet")
    fails(capsys, day13.check_cross_entropy, stub, "not done yet")
    fails(capsys, day13.check_loss_by_position, stub, "not done yet")
    for args in ((stub, bits_per_byte_of), (perplexity_of, stub)):
        assert bool(day13.check_units(*args)) is False
        assert "not done yet" in capsys.readouterr().out


def test_cross_entropy_names_the_unfinished_log_softmax(capsys):
    def log_softmax(x):
        raise NotImplementedError

    def uses_it(logits, targets, ignore_index=-100):
        return log_softmax(logits).sum()

    fails(capsys, day13.check_cross_entropy, uses_it, "finish exercise 1 first")


def test_log_softmax_crash_shows_the_input(capsys):
    fails(capsys, day13.check_log_softmax, lambda x: x.view(-1, 4), "shape (3, 7)")


def test_builtins_restored_after_the_check(capsys):
    day13.check_log_softmax(lambda x: F.log_softmax(x, dim=-1))
    capsys.readouterr()
    assert torch.allclose(F.softmax(torch.zeros(2), dim=-1), torch.full((2,), 0.5))
    assert torch.zeros(2).log_softmax(-1).shape == (2,)
    day13.check_log_softmax(log_softmax_logsumexp)
    capsys.readouterr()
    assert torch.logsumexp(torch.zeros(2), 0).item() == pytest.approx(math.log(2))
    assert torch.special.logsumexp(torch.zeros(2), 0).item() == pytest.approx(math.log(2))
    assert torch.zeros(2).logsumexp(0).item() == pytest.approx(math.log(2))


@pytest.mark.parametrize("fn", [
    log_softmax_logsumexp,
    lambda x: x - x.logsumexp(dim=-1, keepdim=True),
    lambda x: x - torch.special.logsumexp(x, -1, keepdim=True),
])
def test_log_softmax_refuses_torch_logsumexp(capsys, fn):
    # 31c #5: log-sum-exp (with the max trick) is what exercise 1 builds
    assert not day13.check_log_softmax(fn)
    assert one_line(capsys) == ("❌ log_softmax: do not call torch.logsumexp here: build log-sum-exp "
                                "yourself from amax, exp and log, m + log(sum(exp(x - m))) - that "
                                "is the stable trick this exercise is about")


def test_cross_entropy_mean_of_row_means(capsys):
    # 31c #19: with padding, one mean per row then over rows weighs a short row like a full one
    def row_means(logits, targets, ignore_index=-100):
        logp = log_softmax(logits)
        keep = targets != ignore_index
        nll = -logp.gather(-1, targets.masked_fill(~keep, 0).unsqueeze(-1)).squeeze(-1) * keep
        if nll.dim() == 1:
            return nll.sum() / keep.sum()
        return (nll.sum(-1) / keep.sum(-1)).mean()

    assert not day13.check_cross_entropy(row_means)
    line = one_line(capsys)
    assert line.startswith("❌ cross_entropy: that is the mean of each row's mean"), line
    assert "average over all counted targets at once (sum / keep.sum()), not per row then over rows" in line
    assert "ignore_index=-100" in line, line  # the padded input, where the two differ


@pytest.mark.parametrize("check_fn, fn, words", [
    (day13.check_log_softmax, lambda x: None, "None"),
    (day13.check_log_softmax, lambda x: log_softmax(x).tolist(), "tensor"),
    (day13.check_cross_entropy, lambda lg, t, ignore_index=-100: None, "None"),
    (day13.check_cross_entropy, lambda lg, t, ignore_index=-100: cross_entropy(lg, t, ignore_index)
     .reshape(1), "has shape (1,)"),
    (day13.check_loss_by_position, lambda lg, t: loss_by_position(lg, t).tolist(), "tensor"),
    (day13.check_loss_by_position, lambda lg, t: loss_by_position(lg, t).detach(),
     "does not carry gradients"),
])
def test_odd_return_values(capsys, check_fn, fn, words):
    fails(capsys, check_fn, fn, words)


def test_units_odd_values(capsys):
    assert bool(day13.check_units(lambda loss: None, bits_per_byte_of)) is False
    assert "None" in capsys.readouterr().out
    assert bool(day13.check_units(perplexity_of, lambda l, t, b: [l])) is False
    assert "one number" in capsys.readouterr().out


def test_hand_worked_values():
    # the lesson's example: scores [1000, 1001, 1002] -> [-2.408, -1.408, -0.408]
    got = log_softmax(torch.tensor([1000.0, 1001.0, 1002.0]))
    assert torch.allclose(got, torch.tensor([-2.4076, -1.4076, -0.4076]), atol=1e-3)
    # losses 0.408 and 2.408 give 1.408; with the second ignored 0.408
    lg = torch.tensor([[2.0, 1.0, 0.0], [2.0, 1.0, 0.0]])
    assert cross_entropy(lg, torch.tensor([0, 2])).item() == pytest.approx(1.408, abs=1e-3)
    assert cross_entropy(lg, torch.tensor([0, -100])).item() == pytest.approx(0.408, abs=1e-3)
    assert perplexity_of(math.log(65)) == pytest.approx(65.0)
    assert bits_per_byte_of(math.log(2), 1, 4) == pytest.approx(0.25)
