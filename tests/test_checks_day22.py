"""The day-22 checks pass the lesson's solutions (and other correct variants), reject every
typical mistake of their tables with its hint, refuse the package's own functions, say "not
done yet" for stubs (naming the earlier exercise), print exactly one line and never raise."""

from __future__ import annotations

import pytest
import torch

from llmcourse.checks import day22
from llmcourse.generate import apply_temperature, min_p_filter, top_k_filter, top_p_filter
from checklines import fails, mistake_params, one_line, passes, rejects, stub

NEG_INF = float("-inf")


# ---- the lesson's solutions, copied from solutions/day22_top_k_and_top_p.md ----------------------


def solution_top_k(logits, k):
    k = min(k, logits.shape[-1])
    values, indices = torch.topk(logits, k, dim=-1)  # (..., k) each
    return torch.full_like(logits, NEG_INF).scatter(-1, indices, values)


def solution_top_p(logits, p):
    sorted_probs, order = torch.sort(torch.softmax(logits, dim=-1), dim=-1, descending=True)
    before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs  # (..., V)
    keep = torch.zeros_like(before, dtype=torch.bool).scatter(-1, order, before < p)
    return logits.masked_fill(~keep, NEG_INF)


def solution_min_p(logits, p):
    probs = torch.softmax(logits, dim=-1)  # (..., V)
    return logits.masked_fill(probs < p * probs.amax(dim=-1, keepdim=True), NEG_INF)


def solution_next_token_probs(logits, temperature, top_k=None, top_p=None):
    # in the notebook these names are the package's by now (it imports them after each check)
    logits = apply_temperature(logits, temperature)
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    return torch.softmax(logits, dim=-1)  # (B, V), renormalised over the kept tokens


# ---- other correct variants ----------------------------------------------------------------------


def top_k_stable_sort(logits, k):  # keeps the other one of the tied logits than torch.topk may
    keep = torch.sort(logits, dim=-1, descending=True, stable=True).indices[..., :k]
    return torch.full_like(logits, NEG_INF).scatter(-1, keep, logits.gather(-1, keep))


def top_k_last_of_ties(logits, k):  # keeps the higher ids on a tie
    flipped = logits.flip(-1)
    return solution_top_k(flipped, k).flip(-1) if k < logits.shape[-1] else logits.clone()


def top_p_mask_then_where(logits, p):
    probs = torch.softmax(logits, -1)
    sorted_probs, order = probs.sort(-1, descending=True)
    mass = sorted_probs.cumsum(-1)
    remove = (mass - sorted_probs) >= p
    remove = remove.scatter(-1, order, remove)
    return torch.where(remove, torch.full_like(logits, NEG_INF), logits)


def min_p_in_log_space(logits, p):
    return logits.masked_fill(torch.log_softmax(logits, -1) < torch.log_softmax(logits, -1)
                              .amax(-1, keepdim=True) + torch.log(torch.tensor(p)), NEG_INF) \
        if p > 0 else logits.clone()


def top_p_count_then_arange(logits, p):  # counts the tokens whose cumulative mass is below p
    sorted_probs, order = torch.sort(logits.softmax(-1), -1, descending=True)
    n_below = (sorted_probs.cumsum(-1) < p).sum(-1, keepdim=True)  # (..., 1)
    keep_sorted = torch.arange(logits.shape[-1]) <= n_below  # ... and the one that crosses p
    return logits.masked_fill(~torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted),
                              NEG_INF)


def top_p_sorted_logits_scattered_back(logits, p):  # filters the sorted logits, then unsorts them
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = sorted_logits.softmax(-1)
    sorted_logits = sorted_logits.masked_fill(probs.cumsum(-1) - probs >= p, NEG_INF)
    return torch.empty_like(logits).scatter(-1, order, sorted_logits)


def top_p_other_tie_order(logits, p):  # sorts the reversed row: of two tied tokens keeps the later
    probs = logits.flip(-1).softmax(-1)
    sorted_probs, order = probs.sort(dim=-1, descending=True, stable=True)
    keep_sorted = sorted_probs.cumsum(-1) - sorted_probs < p
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted).flip(-1)
    return logits.masked_fill(~keep, NEG_INF)


def min_p_row_by_row(logits, p):  # a loop over the rows of a flattened view
    rows = logits.reshape(-1, logits.shape[-1])
    out = []
    for row in rows:
        probs = torch.softmax(row, 0)
        removed = torch.tensor(NEG_INF, dtype=row.dtype)
        out.append(torch.where(probs >= p * probs.max(), row, removed))
    return torch.stack(out).reshape(logits.shape)


def next_token_probs_with_own_filters(logits, temperature, top_k=None, top_p=None):
    logits = logits / temperature
    if top_k is not None:
        logits = solution_top_k(logits, top_k)
    if top_p is not None:
        logits = solution_top_p(logits, top_p)
    return torch.softmax(logits, dim=-1)


@pytest.mark.parametrize("check_fn, fn", [
    (day22.check_top_k_filter, solution_top_k),
    (day22.check_top_k_filter, top_k_stable_sort),
    (day22.check_top_k_filter, top_k_last_of_ties),
    (day22.check_top_p_filter, solution_top_p),
    (day22.check_top_p_filter, top_p_mask_then_where),
    (day22.check_top_p_filter, top_p_count_then_arange),
    (day22.check_top_p_filter, top_p_sorted_logits_scattered_back),
    (day22.check_top_p_filter, top_p_other_tie_order),
    (day22.check_min_p_filter, solution_min_p),
    (day22.check_min_p_filter, min_p_in_log_space),
    (day22.check_min_p_filter, min_p_row_by_row),
    (day22.check_next_token_probs, solution_next_token_probs),
    (day22.check_next_token_probs, next_token_probs_with_own_filters),
], ids=["top_k", "top_k stable sort", "top_k other tie", "top_p", "top_p where",
        "top_p count", "top_p sorted logits", "top_p other tie order", "min_p", "min_p log space", "min_p loop", "next_token_probs",
        "next_token_probs own filters"])
def test_the_solutions_pass(check_fn, fn, capsys):
    passes(capsys, check_fn, fn)


@pytest.mark.parametrize("check_fn, mistake", mistake_params(day22))
def test_mistake_rejected(check_fn, mistake, capsys):
    rejects(capsys, check_fn, mistake)


# ---- the mistakes the issue names, on the inputs it names ----------------------------------------


def test_top_p_at_most_fails_on_the_exact_mass_case(capsys):
    line = rejects(capsys, day22.check_top_p_filter,
                   next(m for m in day22.TOP_P if m.name == "mass_before <= p"))
    assert "[.5, .25, .125, .125], p=0.75" in line


def test_top_p_hand_worked_cases():
    # [.5, .25, .125, .125] with p = 0.75: .5 + .25 reaches p, so exactly 2 are kept
    out = solution_top_p(torch.tensor([0.5, 0.25, 0.125, 0.125]).log(), 0.75)
    assert torch.isfinite(out).tolist() == [True, True, False, False]
    logits = torch.tensor([[0.3, -1.0, 2.0, 0.0]])
    assert torch.equal(solution_top_p(logits, 1.0), logits)           # p = 1 keeps all
    assert torch.isfinite(solution_top_p(logits, 1e-4)).sum() == 1    # tiny p keeps one


def test_top_p_tie_at_the_crossing_token_keeps_one_of_them(capsys):
    # [.1, .2, .4, .1, .2] with p = 0.5: .4 is below p, one .2 crosses it; the other .2 goes
    out = solution_top_p(torch.tensor([0.1, 0.2, 0.4, 0.1, 0.2]).log(), 0.5)
    assert torch.isfinite(out).sum() == 2 and bool(torch.isfinite(out[2]))
    line = rejects(capsys, day22.check_top_p_filter,
                   next(m for m in day22.TOP_P if m.name == "threshold keeps ties"))
    assert "crosses p is tied" in line


def test_min_p_strict_fails_at_p_1(capsys):
    line = rejects(capsys, day22.check_min_p_filter,
                   next(m for m in day22.MIN_P if m.name == "probs > p * max"))
    assert "p=1" in line


def test_top_k_minus_1e9_says_use_inf(capsys):
    line = rejects(capsys, day22.check_top_k_filter,
                   next(m for m in day22.TOP_K if m.name == "-1e9"))
    assert "float('-inf')" in line and "changed the logits it kept" not in line


def test_top_p_dim0_says_last_dimension(capsys):
    line = rejects(capsys, day22.check_top_p_filter,
                   next(m for m in day22.TOP_P if m.name == "sort along dim 0"))
    assert "last dimension" in line


def test_softmax_over_t_says_where_t_goes(capsys):
    line = rejects(capsys, day22.check_next_token_probs,
                   next(m for m in day22.NEXT_TOKEN_PROBS if m.name == "softmax(z) / T"))
    assert "divide the logits by T before the softmax" in line


def test_top_k_keeps_ties_is_caught_on_the_tie(capsys):
    line = rejects(capsys, day22.check_top_k_filter,
                   next(m for m in day22.TOP_K if m.name == "keeps ties"))
    assert "tie at the k-th" in line


def test_top_k_wrong_values_get_a_generic_line_with_the_case(capsys):
    def adds_one(logits, k):
        return solution_top_k(logits, k) + 1.0

    fails(capsys, day22.check_top_k_filter, adds_one, "(on top_k_filter(logits (5, 7), k=2))")


# ---- the package's own functions are refused -----------------------------------------------------


@pytest.mark.parametrize("check_fn, package_fn", [
    (day22.check_top_k_filter, top_k_filter), (day22.check_top_p_filter, top_p_filter),
    (day22.check_min_p_filter, min_p_filter),
    (day22.check_next_token_probs, day22.reference_next_token_probs),
])
def test_the_package_reference_is_refused(check_fn, package_fn, capsys):
    fails(capsys, check_fn, package_fn, "the course's own reference")


# ---- stubs, the unfinished earlier exercise, one line, never raises ------------------------------

CHECKS = [day22.check_top_k_filter, day22.check_top_p_filter, day22.check_min_p_filter,
          day22.check_next_token_probs]


@pytest.mark.parametrize("check", CHECKS)
def test_stub_is_not_done_yet(check, capsys):
    fails(capsys, check, stub, "not done yet")


def test_next_token_probs_names_the_unfinished_top_k(capsys):
    def top_k_filter(logits, k):
        raise NotImplementedError

    def next_token_probs(logits, temperature, top_k=None, top_p=None):
        return torch.softmax(top_k_filter(logits / temperature, top_k or 3), -1)

    assert bool(day22.check_next_token_probs(next_token_probs)) is False
    line = one_line(capsys)
    assert "not done yet" in line and "exercise 1" in line


@pytest.mark.parametrize("check", CHECKS)
def test_garbage_never_raises(check, capsys):
    for bad in (lambda *a, **k: 1 / 0, lambda *a, **k: "text", lambda *a, **k: torch.zeros(0),
                lambda *a, **k: None, lambda *a, **k: [1.0, 2.0],
                lambda *a, **k: torch.full((2, 3, 11), float("nan"))):
        assert bool(check(bad)) is False
        assert one_line(capsys).startswith("❌")
