"""The day-21 checks pass the lesson's solutions (and other correct variants), reject every
typical mistake of their tables with its hint, refuse the package's own functions, say "not
done yet" for stubs, print exactly one line and never raise."""

from __future__ import annotations

import math

import pytest
import torch

from llmcourse.checks import day21
from llmcourse.generate import apply_temperature as package_temperature
from checklines import fails, mistake_params, one_line, passes, rejects, stub


# ---- the lesson's solutions, copied from solutions/day21_temperature.md --------------------------


def solution_apply_temperature(logits, temperature):
    return logits / temperature


def solution_entropy(probs):
    return -torch.special.xlogy(probs, probs).sum(dim=-1)


def solution_sample(logits, temperature, generator=None):
    if temperature == 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits / temperature, dim=-1)  # (B, V)
    return torch.multinomial(probs, num_samples=1, generator=generator)[:, 0]  # (B,)


# ---- other correct variants ----------------------------------------------------------------------


def temperature_shifted(logits, t):  # a shift of a row does not change the softmax
    return (logits - logits.amax(-1, keepdim=True)) / t


def temperature_times_inverse(logits, t):
    return logits * (1.0 / t)


def entropy_clamped(p):
    return -(p * p.clamp_min(1e-30).log()).sum(-1)


def entropy_where(p):
    return -torch.where(p > 0, p * torch.log(p), torch.zeros_like(p)).sum(dim=-1)


def sample_view(logits, temperature, generator=None):
    if temperature == 0:
        return torch.argmax(logits, dim=-1)
    probs = torch.nn.functional.softmax(logits / temperature, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).view(-1)


def sample_log_softmax(logits, temperature, generator=None):  # other probabilities' last bits
    if temperature == 0:
        return logits.argmax(-1)
    probs = torch.log_softmax(logits / temperature, -1).exp()
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def entropy_nansum(p):  # 0 * log 0 is nan, which nansum skips
    return -(p * p.log()).nansum(dim=-1)


def sample_gumbel_max(logits, temperature, generator=None):  # argmax of logits / T + Gumbel noise
    if temperature == 0:
        return logits.argmax(dim=-1)
    u = torch.rand(logits.shape, generator=generator)
    return (logits / temperature - torch.log(-torch.log(u))).argmax(dim=-1)


def sample_inverse_cdf(logits, temperature, generator=None):  # one uniform per row, searchsorted
    if not temperature:
        return torch.argmax(logits, dim=1)
    cdf = torch.softmax(logits / temperature, dim=-1).cumsum(dim=-1)
    u = torch.rand(logits.shape[0], 1, generator=generator)
    return torch.searchsorted(cdf, u)[:, 0].clamp(max=logits.shape[-1] - 1)


@pytest.mark.parametrize("check_fn, fn", [
    (day21.check_apply_temperature, solution_apply_temperature),
    (day21.check_apply_temperature, temperature_shifted),
    (day21.check_apply_temperature, temperature_times_inverse),
    (day21.check_entropy, solution_entropy),
    (day21.check_entropy, entropy_clamped),
    (day21.check_entropy, entropy_where),
    (day21.check_sample, solution_sample),
    (day21.check_sample, sample_view),
    (day21.check_sample, sample_log_softmax),
    (day21.check_entropy, entropy_nansum),
    (day21.check_sample, sample_gumbel_max),
    (day21.check_sample, sample_inverse_cdf),
], ids=["temperature", "temperature shifted", "temperature 1/T", "entropy", "entropy clamped",
        "entropy where", "sample", "sample view", "sample log_softmax", "entropy nansum",
        "sample gumbel-max", "sample inverse cdf"])
def test_the_solutions_pass(check_fn, fn, capsys):
    passes(capsys, check_fn, fn)


@pytest.mark.parametrize("check_fn, mistake", mistake_params(day21))
def test_mistake_rejected(check_fn, mistake, capsys):
    rejects(capsys, check_fn, mistake)


# ---- hand-worked values (not the checks' references) ---------------------------------------------


def test_hand_worked_entropy():
    assert abs(float(solution_entropy(torch.tensor([0.5, 0.5, 0.0]))) - math.log(2)) < 1e-6
    assert float(solution_entropy(torch.tensor([0.0, 1.0, 0.0]))) == 0.0
    assert abs(float(solution_entropy(torch.full((7,), 1 / 7))) - math.log(7)) < 1e-5


def test_temperature_zero_gives_the_argmax_without_a_random_number():
    g = torch.Generator().manual_seed(0)
    state = g.get_state()
    ids = solution_sample(torch.tensor([[1.5, 0.0, 2.0], [3.0, 0.2, 1.0]]), 0.0, g)
    assert ids.tolist() == [2, 0] and torch.equal(g.get_state(), state)


def test_sample_check_leaves_the_global_rng_as_it_was(capsys):
    torch.manual_seed(3)
    expected = torch.rand(4)
    torch.manual_seed(3)
    passes(capsys, day21.check_sample, solution_sample)
    assert torch.equal(torch.rand(4), expected)


def test_a_global_rng_answer_is_observed_draw_for_draw_alike(capsys):
    """The learner's answer and the table's "generator ignored" mistake must see the same draws,
    or its hint would depend on the luck of two random frequency tables."""
    def global_rng(logits, temperature, generator=None):
        if temperature == 0:
            return logits.argmax(dim=-1)
        return torch.multinomial(torch.softmax(logits / temperature, dim=-1), 1)[:, 0]

    case = day21._sample_cases()[2]
    first, second = day21._run_sample(global_rng, case), day21._run_sample(global_rng, case)
    freq = "frequency of each id (per distribution)"
    assert torch.equal(first[freq], second[freq])
    fails(capsys, day21.check_sample, global_rng, "pass generator=generator")


def test_a_hard_coded_temperature_fails(capsys):
    line = rejects(capsys, day21.check_apply_temperature,
                   next(m for m in day21.APPLY_TEMPERATURE if m.name == "fixed T"))
    assert "temperature argument" in line


def test_divide_by_zero_names_the_temperature_0_input(capsys):
    line = rejects(capsys, day21.check_sample,
                   next(m for m in day21.SAMPLE if m.name == "divides by zero"))
    assert "temperature=0" in line


def test_a_wrong_entropy_gets_a_generic_line_with_the_case(capsys):
    fails(capsys, day21.check_entropy, lambda p: solution_entropy(p) * 1.1,
          "(on entropy(probs (4, 6), no zeros))")


def test_sample_with_ids_outside_the_vocabulary_fails(capsys):
    def shifted(logits, t, generator=None):
        return solution_sample(logits, t, generator) + 1

    fails(capsys, day21.check_sample, shifted, "❌")


# ---- the package's own functions are refused -----------------------------------------------------


@pytest.mark.parametrize("check_fn, package_fn", [
    (day21.check_apply_temperature, package_temperature),
    (day21.check_entropy, day21.reference_entropy),
    (day21.check_sample, day21.reference_sample),
])
def test_the_package_reference_is_refused(check_fn, package_fn, capsys):
    fails(capsys, check_fn, package_fn, "the course's own reference")


# ---- stubs, one line, never raises ---------------------------------------------------------------

CHECKS = [day21.check_apply_temperature, day21.check_entropy, day21.check_sample]


@pytest.mark.parametrize("check", CHECKS)
def test_stub_is_not_done_yet(check, capsys):
    fails(capsys, check, stub, "not done yet")


@pytest.mark.parametrize("check", CHECKS)
def test_garbage_never_raises(check, capsys):
    for bad in (lambda *a: 1 / 0, lambda *a: "text", lambda *a: torch.zeros(0), lambda *a: None,
                lambda *a: [0, 1], lambda *a: torch.full((2,), float("nan"))):
        assert bool(check(bad)) is False
        assert one_line(capsys).startswith("❌")
