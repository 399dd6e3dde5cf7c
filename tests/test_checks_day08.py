"""The day-08 checks pass the solutions, reject every mistake of their tables, and say "not done yet" for stubs."""

from __future__ import annotations

import time

import pytest
import torch

from checklines import fails, mistake_params, passes, rejects, stub
from llmcourse.checks import day08


# ---- the lesson's solutions (copied from solutions/day08_attention_as_averaging.md) ------------


def average_past(x):
    B, T, C = x.shape
    xbow = torch.zeros_like(x)  # (B, T, C)
    for b in range(B):
        for t in range(T):
            xbow[b, t] = x[b, : t + 1].mean(dim=0)  # (C,)
    return xbow


def averaging_matrix(T):
    w = torch.tril(torch.ones(T, T))       # (T, T): 1 where s <= t
    return w / w.sum(dim=1, keepdim=True)  # each row sums to 1


def causal_softmax(scores):
    T = scores.shape[-1]
    tril = torch.tril(torch.ones(T, T, device=scores.device))      # (T, T)
    return scores.masked_fill(tril == 0, float("-inf")).softmax(dim=-1)


def similarity_average(x):
    scores = x @ x.transpose(-2, -1)      # (B, T, T)
    return causal_softmax(scores) @ x     # (B, T, T) @ (B, T, C) -> (B, T, C)


# ---- other correct variants -------------------------------------------------------------------


def average_past_cumsum(x):
    return x.cumsum(1) / torch.arange(1, x.shape[1] + 1, dtype=x.dtype).view(1, -1, 1)


def averaging_matrix_loop(T):
    w = torch.zeros(T, T)
    for t in range(T):
        w[t, : t + 1] = 1.0 / (t + 1)
    return w


def causal_softmax_bool_mask(scores):
    T = scores.size(-1)
    mask = torch.ones(T, T, dtype=torch.bool, device=scores.device).triu(1)
    return torch.softmax(scores.masked_fill(mask, -1e9), dim=-1)


def causal_softmax_mask_moved(scores):
    T = scores.shape[-1]
    tril = torch.tril(torch.ones(T, T)).to(scores.device)         # built on the CPU, then moved
    return scores.masked_fill(tril == 0, float("-inf")).softmax(dim=-1)


def causal_softmax_stable_by_hand(scores):
    T = scores.shape[-1]
    tril = torch.tril(torch.ones(T, T, device=scores.device))
    masked = scores.masked_fill(tril == 0, float("-inf"))
    e = (masked - masked.amax(dim=-1, keepdim=True)).exp()        # the row's maximum first
    return e / e.sum(dim=-1, keepdim=True)


def similarity_average_einsum(x):
    w = causal_softmax(torch.einsum("btc,bsc->bts", x, x))
    return torch.einsum("bts,bsc->btc", w, x)


@pytest.mark.parametrize("check_fn, mistake", mistake_params(day08))
def test_mistake_rejected(check_fn, mistake, capsys):
    rejects(capsys, check_fn, mistake)


def average_past_keepdim_loop(x):  # the lesson's loop, the mean kept as (1, C) and summed by hand
    B, T, C = x.shape
    xbow = torch.zeros_like(x)
    for b in range(B):
        for t in range(T):
            xbow[b, t] = x[b, :t + 1, :].sum(dim=-2, keepdim=True) / (t + 1)
    return xbow


def averaging_matrix_arange(T):  # row t divided by t + 1, in place
    w = torch.ones(T, T).tril_()
    w /= torch.arange(1, T + 1).unsqueeze(1)
    return w


def causal_softmax_additive(scores):  # add -inf above the diagonal instead of masked_fill
    T = scores.shape[-1]
    future = torch.triu(torch.full((T, T), float("-inf"), device=scores.device), diagonal=1)
    return torch.softmax(scores + future, dim=-1)


def similarity_average_bmm(x):
    T = x.shape[1]
    allowed = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
    wei = torch.where(allowed, torch.bmm(x, x.mT), float("-inf")).softmax(-1)
    return torch.bmm(wei, x)


@pytest.mark.parametrize("check_fn, fn", [
    (day08.check_average_past, average_past),
    (day08.check_average_past, average_past_keepdim_loop),
    (day08.check_averaging_matrix, averaging_matrix_arange),
    (day08.check_causal_softmax, causal_softmax_additive),
    (day08.check_similarity_average, similarity_average_bmm),
    (day08.check_average_past, average_past_cumsum),
    (day08.check_averaging_matrix, averaging_matrix),
    (day08.check_averaging_matrix, averaging_matrix_loop),
    (day08.check_causal_softmax, causal_softmax),
    (day08.check_causal_softmax, causal_softmax_bool_mask),
    (day08.check_causal_softmax, causal_softmax_mask_moved),
    (day08.check_causal_softmax, causal_softmax_stable_by_hand),
    (day08.check_similarity_average, similarity_average),
    (day08.check_similarity_average, similarity_average_einsum),
])
def test_solution_passes(check_fn, fn, capsys):
    passes(capsys, check_fn, fn)


@pytest.mark.parametrize("check_fn", [day08.check_average_past, day08.check_averaging_matrix,
                                      day08.check_causal_softmax, day08.check_similarity_average])
def test_stub_not_done(check_fn, capsys):
    fails(capsys, check_fn, stub, "not done yet")


@pytest.mark.parametrize("check_fn, reference", [
    (day08.check_average_past, day08.reference_average_past),
    (day08.check_averaging_matrix, day08.reference_averaging_matrix),
    (day08.check_causal_softmax, day08.reference_causal_softmax),
    (day08.check_similarity_average, day08._reference_similarity_average),
])
def test_reference_refused(check_fn, reference, capsys):
    fails(capsys, check_fn, reference, "the course's own reference")


# ---- the references, against hand-worked values -------------------------------------------------


def test_references_by_hand():
    tiny = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]]])
    assert day08.reference_average_past(tiny)[0].tolist() == [[1.0, 0.0], [0.5, 0.5], [1.0, 1.0]]
    want = [1, 0, 0, 0.5, 0.5, 0, 1 / 3, 1 / 3, 1 / 3]
    assert day08.reference_averaging_matrix(3).flatten().tolist() == pytest.approx(want)
    w = day08.reference_causal_softmax(torch.tensor([[0.0, 5.0], [0.0, 0.0]]))
    assert w.tolist() == [[1.0, 0.0], [0.5, 0.5]]


# ---- behaviours other than the tables' mistakes --------------------------------------------------


def test_similarity_average_names_unfinished_causal_softmax(capsys):
    notebook = {}
    exec("def causal_softmax(scores):\n    raise NotImplementedError\n\n"
         "def similarity_average(x):\n    return causal_softmax(x @ x.transpose(-2, -1)) @ x\n", notebook)
    fails(capsys, day08.check_similarity_average, notebook["similarity_average"],
          "causal_softmax: not done yet — finish exercise 3 first")


def test_returns_a_list(capsys):
    fails(capsys, day08.check_average_past, lambda x: average_past(x).tolist(), "should be a torch tensor")
    fails(capsys, day08.check_causal_softmax, lambda s: None, "returned None")


def test_solution_and_reference_run_on_meta():
    # the check calls the answer on "meta" scores (shapes, no values), standing in for a GPU
    for fn in (causal_softmax, day08.reference_causal_softmax):
        out = fn(torch.zeros(2, 4, 4, device="meta"))
        assert out.shape == (2, 4, 4) and out.device.type == "meta"


def test_cpu_mask_is_named_after_the_values_are_right(capsys):
    # a CPU mask that also gets the values wrong is told about the values first
    line = rejects(capsys, day08.check_causal_softmax,
                   next(m for m in day08.CAUSAL_SOFTMAX if m.name == "no diagonal"))
    assert "scores.device" not in line


def test_cpu_mask_is_named(capsys):
    # the learner trial's answer: a mask built on the CPU passed the check before
    def cpu_mask(scores):
        T = scores.shape[-1]
        return scores.masked_fill(torch.tril(torch.ones(T, T)) == 0, -1e9).softmax(-1)

    fails(capsys, day08.check_causal_softmax, cpu_mask,
          "the mask was built on the CPU, not on scores.device: torch.ones(T, T, "
          "device=scores.device), so that the function works on a GPU")


def test_softmax_by_hand_overflow_is_named(capsys):
    def softmax_by_hand(scores):  # exp of scores near ±50 overflows
        T = scores.shape[-1]
        e = scores.masked_fill(torch.tril(torch.ones(T, T)) == 0, float("-inf")).exp()
        return e / e.sum(-1, keepdim=True)

    fails(capsys, day08.check_causal_softmax, softmax_by_hand,
          "exp of a large score overflowed to inf (inf/inf = NaN): use .softmax(dim=-1), which "
          "subtracts each row's maximum first (on causal_softmax(scores of shape (4, 7, 7) "
          "around ±50))")


def test_reading_a_value_is_not_blamed_on_the_device(capsys):
    def reads_a_value(scores):  # correct on a CPU and on a GPU; only "meta" has no values to read
        if scores.abs().sum().item() > 1e6:
            raise ValueError("huge")
        return causal_softmax(scores)

    passes(capsys, day08.check_causal_softmax, reads_a_value)


def test_cpu_scalar_fill_value_passes(capsys):
    # a 0-d CPU tensor as masked_fill's value works on a GPU; "meta" alone refuses it
    def scalar_fill(scores):
        T = scores.shape[-1]
        mask = torch.tril(torch.ones(T, T, device=scores.device)) == 0
        return scores.masked_fill(mask, torch.tensor(float("-inf"))).softmax(dim=-1)

    passes(capsys, day08.check_causal_softmax, scalar_fill)


def test_other_failure_off_the_cpu_is_reported(capsys):
    def fails_off_the_cpu(scores):
        if scores.device.type != "cpu":
            raise ValueError("only on the CPU")
        return causal_softmax(scores)

    fails(capsys, day08.check_causal_softmax, fails_off_the_cpu,
          "your code raised ValueError: only on the CPU on "
          "causal_softmax(torch.zeros(2, 4, 4, device='meta'))")


def test_result_moved_off_the_device_is_named(capsys):
    def returns_on_cpu(scores):
        out = causal_softmax(scores)
        return torch.empty(out.shape) if out.device.type == "meta" else out

    fails(capsys, day08.check_causal_softmax, returns_on_cpu, "keep the result on scores.device")


def test_detached_output_is_named(capsys):
    fails(capsys, day08.check_causal_softmax, lambda s: causal_softmax(s).detach(),
          "does not carry gradients")


def test_checks_are_fast(capsys):
    start = time.process_time()
    for check_fn, fn in ((day08.check_average_past, average_past),
                         (day08.check_averaging_matrix, averaging_matrix),
                         (day08.check_causal_softmax, causal_softmax),
                         (day08.check_similarity_average, similarity_average)):
        assert check_fn(fn)
    assert time.process_time() - start < 2.0
