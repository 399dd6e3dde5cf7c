"""The day-12 checks pass the solutions, catch plausible mistakes, and say "not done yet" for stubs."""

from __future__ import annotations

import math

import pytest
import torch

from llmcourse.checks import day12
from llmcourse.model import GPT, GPTConfig, count_params_formula


def _last_line(capsys: pytest.CaptureFixture[str]) -> str:
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out
    return out[0]


def _stub(*args, **kwargs):
    raise NotImplementedError


CFG = GPTConfig(vocab_size=13, block_size=12, n_layer=2, n_head=2, n_embd=16)


# ---- broken models and reference tests ------------------------------------------------------


def test_broken_models_have_their_bug():
    torch.manual_seed(0)
    x = torch.randint(13, (2, 12))
    leaky = day12.broken_model("no_causal_mask", CFG)
    a, _ = leaky(x)
    x2 = x.clone()
    x2[:, -1] = (x2[:, -1] + 1) % 13
    b, _ = leaky(x2)
    assert not torch.allclose(a[:, 0], b[:, 0])          # the first position sees the last token

    detached = day12.broken_model("detached_positions", CFG)
    _, loss = detached(x, x)
    loss.backward()
    assert detached.transformer.wpe.weight.grad is None
    assert detached.transformer.wte.weight.grad is not None

    big = day12.broken_model("large_init", CFG)
    _, loss = big(x, x)
    assert loss.item() > 2 * math.log(13)
    with pytest.raises(ValueError, match="unknown kind"):
        day12.broken_model("typo", CFG)


def test_reference_tests_separate_good_from_broken():
    day12.reference_test_causality(GPT(CFG))
    day12.reference_test_gradients(GPT(CFG))
    with pytest.raises(AssertionError, match="sees the future"):
        day12.reference_test_causality(day12.broken_model("no_causal_mask", CFG))
    with pytest.raises(AssertionError, match="wpe"):
        day12.reference_test_gradients(day12.broken_model("detached_positions", CFG))


# ---- exercise 1 ------------------------------------------------------------------------------


def _untied():
    return GPT(GPTConfig(vocab_size=13, block_size=8, n_layer=1, n_head=2, n_embd=8, tie_weights=False))


def test_tied(capsys):
    m = _untied()
    m.lm_head.weight = m.transformer.wte.weight
    assert day12.check_tied(m)
    assert "passed" in _last_line(capsys)
    m = _untied()
    m.transformer.wte.weight = m.lm_head.weight            # the other direction ties too
    assert day12.check_tied(m)
    assert "passed" in _last_line(capsys)


def test_tied_mistakes(capsys):
    assert not day12.check_tied(_untied())
    assert "not done yet" in _last_line(capsys)
    m = _untied()
    with torch.no_grad():
        m.lm_head.weight.copy_(m.transformer.wte.weight)
    assert not day12.check_tied(m)
    assert "copy" in _last_line(capsys)
    assert not day12.check_tied(None)
    assert "pass the GPT" in _last_line(capsys)


# ---- exercise 2 ------------------------------------------------------------------------------


def good_count(cfg):
    C, L, V = cfg.n_embd, cfg.n_layer, cfg.vocab_size
    b = 1 if cfg.bias else 0
    ln = C + b * C
    attn = C * 3 * C + b * 3 * C + C * C + b * C
    mlp = C * 4 * C + b * 4 * C + 4 * C * C + b * C
    total = L * (2 * ln + attn + mlp) + ln + V * C + cfg.block_size * C
    if not cfg.tie_weights:
        total += V * C
    return total


def test_count_params(capsys):
    assert day12.check_count_params(good_count)
    assert "passed" in _last_line(capsys)
    assert day12.check_count_params(lambda cfg: sum(p.numel() for p in GPT(cfg).parameters())
                                    if cfg.vocab_size < 1000 else count_params_formula(cfg, False))
    assert "passed" in _last_line(capsys)
    assert not day12.check_count_params(_stub)
    assert "not done yet" in _last_line(capsys)


@pytest.mark.parametrize(
    "wrong, expected",
    [
        (lambda cfg: good_count(cfg) + (cfg.vocab_size * cfg.n_embd if cfg.tie_weights else 0), "once"),
        (lambda cfg: good_count(cfg) - cfg.block_size * cfg.n_embd, "wpe"),
        (lambda cfg: good_count(cfg) - cfg.n_embd * (2 if cfg.bias else 1), "ln_f"),
        (lambda cfg: good_count(GPTConfig(**{**cfg.to_dict(), "bias": False})), "biases"),
        (lambda cfg: float(good_count(cfg)) + 0.5, "int"),
        (lambda cfg: None, "None"),
    ],
)
def test_count_params_mistakes(capsys, wrong, expected):
    assert not day12.check_count_params(wrong)
    assert expected in _last_line(capsys)


# ---- exercises 3 and 4 -----------------------------------------------------------------------


def good_causality(model):
    T, V = model.config.block_size, model.config.vocab_size
    idx = torch.randint(V, (1, T))
    t = T // 2
    idx2 = idx.clone()
    idx2[:, t + 1:] = (idx2[:, t + 1:] + 1) % V
    model.eval()
    with torch.no_grad():
        a, _ = model(idx)
        b, _ = model(idx2)
    assert torch.allclose(a[:, : t + 1], b[:, : t + 1], atol=1e-5), "future leaks"


def good_gradients(model):
    V, T = model.config.vocab_size, model.config.block_size
    x = torch.randint(V, (2, T))
    _, loss = model(x, torch.randint(V, (2, T)))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_model_tests_pass_solutions(capsys):
    assert day12.check_causality_test(good_causality)
    assert "passed" in _last_line(capsys)
    assert day12.check_causality_test(day12.reference_test_causality)
    assert "passed" in _last_line(capsys)
    assert day12.check_gradients_test(good_gradients)
    assert "passed" in _last_line(capsys)
    assert day12.check_gradients_test(day12.reference_test_gradients)
    assert "passed" in _last_line(capsys)
    assert not day12.check_causality_test(_stub)
    assert "not done yet" in _last_line(capsys)
    assert not day12.check_gradients_test(_stub)
    assert "not done yet" in _last_line(capsys)


def test_model_tests_that_cannot_fail(capsys):
    assert not day12.check_causality_test(lambda model: None)
    assert "planted bug" in _last_line(capsys)
    assert not day12.check_gradients_test(lambda model: None)
    assert "planted bug" in _last_line(capsys)


def test_model_tests_mistakes(capsys):
    def compares_everything(model):          # the later positions *should* change
        T, V = model.config.block_size, model.config.vocab_size
        idx = torch.randint(V, (1, T))
        idx2 = idx.clone()
        idx2[:, -1] = (idx2[:, -1] + 1) % V
        a, _ = model(idx)
        b, _ = model(idx2)
        assert torch.allclose(a, b), "changed"

    assert not day12.check_causality_test(compares_everything)
    assert "fails a correct GPT" in _last_line(capsys)

    def grad_is_not_none_only_for_first(model):   # looks only at the first parameter
        x = torch.randint(model.config.vocab_size, (1, 4))
        model(x, x)[1].backward()
        first = next(model.parameters())
        assert first.grad is not None

    assert not day12.check_gradients_test(grad_is_not_none_only_for_first)
    assert "planted bug" in _last_line(capsys)

    def crashes(model):
        assert model.transformer.wpe.weight.grad.sum() != 0   # no backward: grad is None -> crash

    assert not day12.check_gradients_test(crashes)
    assert "fails a correct GPT" in _last_line(capsys)


# ---- holes found by a learner's walk-through (issue 11) ------------------------------------


def test_tied_by_replacing_the_module(capsys):
    model = _untied()
    model.lm_head = model.transformer.wte  # shares the weight, but the forward breaks
    assert bool(day12.check_tied(model)) is False
    out = _last_line(capsys)
    assert "not an nn.Linear" in out and "model.lm_head.weight = model.transformer.wte.weight" in out


def test_tied_by_setting_the_config(capsys):
    model = _untied()
    model.config.tie_weights = True
    assert bool(day12.check_tied(model)) is False
    out = _last_line(capsys)
    assert "not done yet" not in out
    assert "read once, when GPT(config) builds the model" in out


def _causality_returning_bool(model):
    V_, T_ = model.config.vocab_size, model.config.block_size
    idx = torch.randint(V_, (2, T_))
    t = T_ // 2
    idx2 = idx.clone()
    idx2[:, t + 1:] = torch.randint(V_, (2, T_ - t - 1))
    model.eval()
    with torch.no_grad():
        a, _ = model(idx)
        b, _ = model(idx2)
    return torch.allclose(a[:, : t + 1], b[:, : t + 1], atol=1e-5)


def _gradients_returning_bool(model):
    V_, T_ = model.config.vocab_size, model.config.block_size
    _, loss = model(torch.randint(V_, (2, T_)), torch.randint(V_, (2, T_)))
    loss.backward()
    return all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in model.parameters())


@pytest.mark.parametrize("check, test_fn", [
    (day12.check_causality_test, _causality_returning_bool),
    (day12.check_gradients_test, _gradients_returning_bool),
])
def test_model_test_returning_false_is_rejected(capsys, check, test_fn):
    assert bool(check(test_fn)) is False
    out = _last_line(capsys)
    assert "returned False" in out and "AssertionError" in out


def test_causality_test_without_eval(capsys):
    """The check's models have dropout on: a test that forgets model.eval() fails a correct GPT."""

    def no_eval(model):
        V_, T_ = model.config.vocab_size, model.config.block_size
        idx = torch.randint(V_, (2, T_))
        t = T_ // 2
        idx2 = idx.clone()
        idx2[:, t + 1:] = torch.randint(V_, (2, T_ - t - 1))
        with torch.no_grad():
            a, _ = model(idx)
            b, _ = model(idx2)
        assert torch.allclose(a[:, : t + 1], b[:, : t + 1], atol=1e-5), "the future leaks"

    assert bool(day12.check_causality_test(no_eval)) is False
    out = _last_line(capsys)
    assert "dropout" in out and "model.eval()" in out


def test_count_params_crash_shows_the_config(capsys):
    def crash(cfg):
        return cfg.n_embed * 2  # a typo: AttributeError

    assert bool(day12.check_count_params(crash)) is False
    out = _last_line(capsys)
    assert "your code raised AttributeError" in out and "count_params(GPTConfig(vocab_size=65" in out
