"""min-p, the repetition penalty, and the order of the sampling transforms (llmcourse.generate.sampling)."""

import math

import pytest
import torch

from llmcourse.generate import (Sampling, apply_repetition_penalty, apply_temperature, generate,
                                min_p_filter, sample_next, stream, top_k_filter, top_p_filter)
from llmcourse.generate.settings import Settings
from llmcourse.model import GPT, GPTConfig

NEG = float("-inf")


def _kept(logits):
    return torch.isfinite(logits).nonzero()[:, -1].tolist()


# ------------------------------------------------------------------------------------- min-p
def test_min_p_keeps_tokens_at_least_p_times_the_top_probability():
    probs = torch.tensor([0.05, 0.4, 0.2, 0.25, 0.1])
    out = min_p_filter(probs.log(), 0.3)  # threshold 0.3 * 0.4 = 0.12
    assert _kept(out) == [1, 2, 3]
    assert torch.equal(out[[1, 2, 3]], probs.log()[[1, 2, 3]])  # kept logits unchanged


def test_min_p_threshold_is_relative_to_the_top_not_to_one():
    confident = torch.tensor([0.9, 0.06, 0.04]).log()
    uncertain = torch.tensor([0.3, 0.25, 0.25, 0.2]).log()
    assert _kept(min_p_filter(confident, 0.1)) == [0]          # 0.06 < 0.09
    assert _kept(min_p_filter(uncertain, 0.1)) == [0, 1, 2, 3]  # all >= 0.03 (an absolute 0.1 too)
    assert _kept(min_p_filter(uncertain, 0.8)) == [0, 1, 2]     # 0.2 < 0.24, though 0.2 > 0.8 * 0.25


def test_min_p_boundary_ties_batches_and_unnormalised_logits():
    probs = torch.tensor([[0.5, 0.25, 0.25], [0.2, 0.2, 0.6]])
    out = min_p_filter(probs.log() + torch.tensor([[3.0], [-7.0]]), 0.5)  # shifts do not matter
    assert torch.isfinite(out).tolist() == [[True, True, True], [False, False, True]]
    assert _kept(min_p_filter(torch.tensor([1.0, 1.0, 0.0]), 1.0)) == [0, 1]  # ties with the top
    x = torch.tensor([0.0, -1.0, -30.0])
    assert torch.equal(min_p_filter(x, 0.0), x)
    assert _kept(min_p_filter(torch.tensor([0.0, NEG, -1.0]), 0.01)) == [0, 2]  # -inf stays


def test_min_p_is_a_log_space_threshold():
    torch.manual_seed(0)
    logits = torch.randn(3, 50) * 3
    for p in (0.05, 0.2, 0.7):
        probs = logits.softmax(-1)
        expected = probs >= p * probs.amax(-1, keepdim=True)
        assert torch.equal(torch.isfinite(min_p_filter(logits, p)), expected)


# ------------------------------------------------------------------------- repetition penalty
def test_repetition_penalty_ctrl_rule_on_known_logits():
    logits = torch.tensor([[4.0, -2.0, 1.0, -0.5, 3.0]])
    context = torch.tensor([[0, 1, 1, 3, 0]])  # 0 and 1 twice: penalised once each
    out = apply_repetition_penalty(logits, context, 2.0)
    assert out.tolist() == [[2.0, -4.0, 1.0, -1.0, 3.0]]
    assert logits.tolist() == [[4.0, -2.0, 1.0, -0.5, 3.0]]  # input not modified


def test_repetition_penalty_below_one_and_one_and_batched_rows():
    logits = torch.tensor([[2.0, -1.0, 0.0], [2.0, -1.0, 0.0]])
    context = torch.tensor([[0, 0], [1, 2]])
    assert apply_repetition_penalty(logits, context, 0.5).tolist() == [[4.0, -1.0, 0.0],
                                                                       [2.0, -0.5, 0.0]]
    assert torch.equal(apply_repetition_penalty(logits, context, 1.0), logits)


def test_repetition_penalty_changes_greedy_choice_and_generate_uses_the_prompt():
    logits = torch.tensor([[0.0, 5.0, 1.0]])
    assert sample_next(logits, temperature=0).item() == 1
    assert sample_next(logits, temperature=0, repetition_penalty=10.0,
                       context=torch.tensor([1])).item() == 2


class _Fixed(torch.nn.Module):
    """A model that always prefers token 0, then 1, then 2, ...: greedy repeats token 0."""

    def __init__(self, vocab=6):
        super().__init__()
        self.config = type("C", (), {"vocab_size": vocab, "block_size": 32})()
        self.w = torch.nn.Parameter(torch.linspace(3.0, 0.5, vocab))

    def forward(self, idx, targets=None):
        return self.w.expand(idx.shape[0], idx.shape[1], -1), None


def test_generate_and_stream_apply_the_penalty_to_the_whole_row():
    model = _Fixed()
    plain = generate(model, [5], 4, temperature=0)
    assert plain[0].tolist() == [5, 0, 0, 0, 0]
    out = generate(model, [[5], [0]], 4, temperature=0, repetition_penalty=100.0)
    # each token is used once and then avoided; a token in the prompt counts as used
    assert out.tolist() == [[5, 0, 1, 2, 3], [0, 1, 2, 3, 4]]
    assert list(stream(model, [0], 4, temperature=0, repetition_penalty=100.0)) == [1, 2, 3, 4]


# ----------------------------------------------------------------------------------- the order
def test_order_penalty_temperature_topk_topp_minp():
    torch.manual_seed(1)
    logits = torch.randn(4, 40) * 2
    context = torch.randint(40, (4, 7))
    s = Sampling(temperature=0.7, top_k=20, top_p=0.8, min_p=0.05, repetition_penalty=1.3)
    x = apply_repetition_penalty(logits, context, 1.3)
    x = apply_temperature(x, 0.7)
    x = top_k_filter(x, 20)
    x = top_p_filter(x, 0.8)
    x = min_p_filter(x, 0.05)
    probs = x.softmax(-1)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    draws = torch.stack([s(logits, g1, context) for _ in range(200)])
    expected = torch.stack([torch.multinomial(probs, 1, generator=g2) for _ in range(200)])
    assert torch.equal(draws, expected)


def test_temperature_before_top_p_and_min_p_changes_what_is_kept():
    logits = torch.tensor([2.0, 1.0, 0.0, -1.0])
    # top-k keeps the same tokens at every temperature
    assert _kept(top_k_filter(apply_temperature(logits, 5.0), 2)) == _kept(top_k_filter(logits, 2))
    # top-p and min-p keep more tokens when the distribution is flatter
    assert len(_kept(top_p_filter(logits, 0.9))) < len(_kept(top_p_filter(apply_temperature(logits, 5.0), 0.9)))
    assert len(_kept(min_p_filter(logits, 0.3))) < len(_kept(min_p_filter(apply_temperature(logits, 5.0), 0.3)))
    # min-p at temperature t is the logit threshold logit_max + t * log(p)
    t, p = 2.0, 0.3
    assert _kept(min_p_filter(apply_temperature(logits, t), p)) == \
        [i for i, v in enumerate(logits.tolist()) if v >= 2.0 + t * math.log(p)]


def test_greedy_ignores_the_filters_but_not_the_penalty():
    logits = torch.tensor([[0.5, 3.0, 2.9]])
    for kw in ({"top_k": 1}, {"top_p": 0.1}, {"min_p": 0.99}):
        assert sample_next(logits, temperature=0, **kw).item() == 1
    assert sample_next(logits, temperature=0, repetition_penalty=1.1,
                       context=torch.tensor([[1]])).item() == 2


# ------------------------------------------------------------------------------ bad settings
@pytest.mark.parametrize("kw, text", [
    ({"min_p": 1.5}, "min_p must be in [0, 1]"),
    ({"min_p": -0.1}, "min_p must be in [0, 1]"),
    ({"min_p": float("nan")}, "min_p must be"),
    ({"repetition_penalty": 0.0}, "repetition_penalty must be a finite number > 0"),
    ({"repetition_penalty": -1.2}, "repetition_penalty must be"),
    ({"repetition_penalty": float("inf")}, "repetition_penalty must be"),
    ({"repetition_penalty": None}, "repetition_penalty must be"),
])
def test_bad_values_raise_one_clear_line_at_the_entry(kw, text):
    model = GPT(GPTConfig(vocab_size=7, block_size=8, n_layer=1, n_head=1, n_embd=8))
    for entry in (lambda: generate(model, [1], 3, **kw), lambda: stream(model, [1], 3, **kw),
                  lambda: Settings(**kw), lambda: Sampling(**kw)):
        with pytest.raises(ValueError, match=r"^" + text.replace("[", r"\[").replace("]", r"\]")) as err:
            entry()
        assert "\n" not in str(err.value)


def test_sample_next_penalty_needs_a_valid_context():
    logits = torch.zeros(2, 5)
    with pytest.raises(ValueError, match="needs context"):
        sample_next(logits, repetition_penalty=1.2)
    with pytest.raises(ValueError, match="same leading dimensions"):
        sample_next(logits, repetition_penalty=1.2, context=torch.zeros(3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="outside"):
        sample_next(logits, repetition_penalty=1.2, context=torch.tensor([[0, 5], [1, 1]]))


def test_cli_sample_parses_min_p_and_repetition_penalty():
    from llmcourse.cli import build_parser

    args = build_parser().parse_args(["sample", "--checkpoint", "x", "--min-p", "0.1",
                                      "--repetition-penalty", "1.3"])
    assert (args.min_p, args.repetition_penalty) == (0.1, 1.3)
    args = build_parser().parse_args(["sample", "--checkpoint", "x"])
    assert (args.min_p, args.repetition_penalty) == (None, 1.0)
