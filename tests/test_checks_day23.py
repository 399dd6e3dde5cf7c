"""The day-23 checks pass the lesson's solutions (and other correct variants), reject every
typical mistake of their tables with its hint, refuse the package's own functions, say "not
done yet" for stubs, print exactly one line and never raise."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
import torch.nn.functional as F

from llmcourse.checks import day23
from llmcourse.generate.experiments import distinct_n, repeated_ngram_rate, sample_loss
from checklines import fails, mistake_params, one_line, passes, rejects, stub


# ---- the lesson's solutions, copied from solutions/day23_sampling_experiments.md -----------------


def solution_distinct_n(samples, n):
    """Different n-grams / all n-grams; n-grams taken inside each sample, then pooled."""
    grams = [tuple(s[i:i + n]) for s in samples for i in range(len(s) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def solution_repeated_ngram_rate(samples, n):
    """The share of n-grams already seen earlier in the same sample."""
    repeats = total = 0
    for s in samples:
        seen = set()
        for i in range(len(s) - n + 1):
            gram = tuple(s[i:i + n])
            repeats += gram in seen
            seen.add(gram)
            total += 1
    return repeats / total if total else 0.0


def solution_sample_loss(model, rows, prompt_len):
    """Mean cross-entropy of rows[:, prompt_len:] under the model."""
    model.eval()                                      # dropout off: the score is not noisy
    with torch.no_grad():
        logits, _ = model(rows)                       # (B, T, V)
    pred = logits[:, prompt_len - 1:-1]               # (B, T - prompt_len, V)
    targets = rows[:, prompt_len:]                    # (B, T - prompt_len)
    return F.cross_entropy(pred.reshape(-1, pred.shape[-1]), targets.reshape(-1)).item()


# ---- other correct variants ----------------------------------------------------------------------


def distinct_n_rounded(samples, n):  # rounded to 4 digits, as the package prints it
    return round(solution_distinct_n(samples, n), 4)


def distinct_n_counter(samples, n):
    counts = Counter(tuple(s[i:i + n]) for s in samples for i in range(len(s) - n + 1))
    return len(counts) / sum(counts.values()) if counts else 0.0


def rate_by_counts(samples, n):
    grams = [[tuple(s[i:i + n]) for i in range(len(s) - n + 1)] for s in samples]
    total = sum(len(g) for g in grams)
    return sum(len(g) - len(set(g)) for g in grams) / total if total else 0.0


def sample_loss_restores_mode(model, rows, prompt_len):  # evaluates, then puts the mode back
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits, _ = model(rows[:, :-1])
    finally:
        model.train(was_training)
    return F.cross_entropy(logits[:, prompt_len - 1:].transpose(1, 2), rows[:, prompt_len:]).item()


def sample_loss_grad_disabled(model, rows, prompt_len):  # set_grad_enabled(False), summed / count
    model.train(False)
    with torch.set_grad_enabled(False):
        logits, _ = model(rows)
    total = F.cross_entropy(logits[:, prompt_len - 1:-1].flatten(0, 1),
                            rows[:, prompt_len:].flatten(), reduction="sum").item()
    return total / rows[:, prompt_len:].numel()


def distinct_n_zip(samples, n):  # n-grams as zip of n shifted copies
    grams = [g for s in samples for g in zip(*(s[i:] for i in range(n)))]
    return float(len(set(grams)) / len(grams)) if grams else 0.0


def sample_loss_inference_mode(model, rows, prompt_len):  # inference_mode, log-probs by gather
    model.eval()
    with torch.inference_mode():
        logits, _ = model(rows)
    logp = torch.log_softmax(logits[:, prompt_len - 1:-1], dim=-1)
    return -logp.gather(-1, rows[:, prompt_len:, None]).mean().item()


def sample_loss_ignore_index(model, rows, prompt_len):  # the prompt's targets marked -1, a copy
    model.eval()
    targets = rows[:, 1:].clone()
    targets[:, :prompt_len - 1] = -1
    with torch.no_grad():
        _, loss = model(rows[:, :-1], targets)
    return float(loss)


@pytest.mark.parametrize("check_fn, fn", [
    (day23.check_sample_loss, sample_loss_ignore_index),
    (day23.check_distinct_n, solution_distinct_n),
    (day23.check_distinct_n, distinct_n_zip),
    (day23.check_sample_loss, sample_loss_inference_mode),
    (day23.check_distinct_n, distinct_n_rounded),
    (day23.check_distinct_n, distinct_n_counter),
    (day23.check_repeated_ngram_rate, solution_repeated_ngram_rate),
    (day23.check_repeated_ngram_rate, rate_by_counts),
    (day23.check_sample_loss, solution_sample_loss),
    (day23.check_sample_loss, sample_loss_restores_mode),
    (day23.check_sample_loss, sample_loss_grad_disabled),
], ids=["sample_loss ignore_index", "distinct_n", "distinct_n zip", "sample_loss inference_mode",
        "distinct_n rounded", "distinct_n counter", "rate", "rate by counts",
        "sample_loss", "sample_loss restores the mode",
        "sample_loss grad disabled"])
def test_the_solutions_pass(check_fn, fn, capsys):
    passes(capsys, check_fn, fn)


@pytest.mark.parametrize("check_fn, mistake", mistake_params(day23))
def test_mistake_rejected(check_fn, mistake, capsys):
    rejects(capsys, check_fn, mistake)


# ---- hand-worked values (not the checks' references) ---------------------------------------------


def test_hand_worked_values():
    samples = [["to", "be", "or", "not", "to", "be"], ["to", "be", "sure"]]
    assert solution_distinct_n(samples, 2) == 5 / 7       # to-be x3, be-or, or-not, not-to, be-sure
    assert solution_distinct_n(samples, 1) == 5 / 9
    assert solution_distinct_n([["a"], ["b"]], 2) == 0.0
    assert solution_repeated_ngram_rate([list("ababa")], 2) == 0.5      # ab ba ab ba
    assert solution_repeated_ngram_rate([["to", "be"], ["to", "be"]], 2) == 0.0
    assert solution_repeated_ngram_rate([list("abababa")], 2) == 4 / 6  # ab three times: 2 repeats


def test_a_wrong_number_gets_a_generic_line_with_the_case(capsys):
    fails(capsys, day23.check_distinct_n, lambda s, n: 0.5, "(on distinct_n(4 word samples")


def test_sample_loss_must_switch_dropout_off(capsys):
    # 31d #12: the check's model has dropout and comes in training mode, as after training
    def no_eval(model, rows, prompt_len):
        with torch.no_grad():
            logits, _ = model(rows)
        pred = logits[:, prompt_len - 1:-1]
        return F.cross_entropy(pred.reshape(-1, pred.shape[-1]), rows[:, prompt_len:].reshape(-1)).item()

    assert not day23.check_sample_loss(no_eval)
    assert one_line(capsys) == ("❌ sample_loss: the model ran in training mode; call model.eval() first: "
                                "dropout makes the score noisy")


def test_sample_loss_must_return_a_float(capsys):
    # 31d #12: "a Python float": a 0-d tensor is refused with the fix
    def tensor(model, rows, prompt_len):
        return torch.tensor(solution_sample_loss(model, rows, prompt_len))

    assert not day23.check_sample_loss(tensor)
    assert one_line(capsys) == ("❌ sample_loss: sample_loss returned a tensor of shape (), not a number: "
                                "return a Python float: call .item() on the loss")


def test_a_list_is_not_a_number(capsys):
    fails(capsys, day23.check_sample_loss, lambda m, r, p: [1.0, 2.0], "should return one number")


# ---- the package's own functions are refused -----------------------------------------------------


@pytest.mark.parametrize("check_fn, package_fn", [
    (day23.check_distinct_n, distinct_n), (day23.check_repeated_ngram_rate, repeated_ngram_rate),
    (day23.check_sample_loss, sample_loss),
])
def test_the_package_reference_is_refused(check_fn, package_fn, capsys):
    fails(capsys, check_fn, package_fn, "the course's own reference")


# ---- stubs, one line, never raises ---------------------------------------------------------------

CHECKS = [day23.check_distinct_n, day23.check_repeated_ngram_rate, day23.check_sample_loss]


@pytest.mark.parametrize("check", CHECKS)
def test_stub_is_not_done_yet(check, capsys):
    fails(capsys, check, stub, "not done yet")


@pytest.mark.parametrize("check", CHECKS)
def test_garbage_never_raises(check, capsys):
    for bad in (lambda *a: 1 / 0, lambda *a: "text", lambda *a: None, lambda *a: torch.zeros(2),
                lambda *a: float("nan")):
        assert bool(check(bad)) is False
        assert one_line(capsys).startswith("❌")
