"""The day-12 checks pass the lesson's solutions, reject every mistake of their tables with its
hint, refuse the package's own references, and say "not done yet" for stubs."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn as nn

from llmcourse.checks import day12
from llmcourse.model import GPT, GPTConfig, count_params_formula
from checklines import fails, mistake_params, one_line, passes, rejects, stub

CFG = GPTConfig(vocab_size=13, block_size=12, n_layer=2, n_head=2, n_embd=16)
# the notebook's cfg (V = 65 characters there), untied: exercise 1 starts from such a model
NOTEBOOK_CFG = GPTConfig(vocab_size=65, block_size=32, n_layer=2, n_head=4, n_embd=64)


# ---- the lesson's solutions (solutions/day12_gpt_model.md) -----------------------------------


def tie(untied):
    untied.lm_head.weight = untied.transformer.wte.weight
    return untied


def count_params(cfg: GPTConfig) -> int:
    C, L, V_ = cfg.n_embd, cfg.n_layer, cfg.vocab_size
    b = 1 if cfg.bias else 0
    layer_norm = C + b * C
    attn = 3 * C * C + 3 * C * b + C * C + C * b
    mlp = 4 * C * C + 4 * C * b + 4 * C * C + C * b
    block = 2 * layer_norm + attn + mlp
    head = 0 if cfg.tie_weights else V_ * C
    return V_ * C + cfg.block_size * C + L * block + layer_norm + head


def test_causality(model):
    V_, T_ = model.config.vocab_size, model.config.block_size
    idx = torch.randint(V_, (2, T_))
    t = T_ // 2
    idx2 = idx.clone()
    idx2[:, t + 1:] = torch.randint(V_, (2, T_ - t - 1))
    model.eval()
    with torch.no_grad():
        a, _ = model(idx)                     # (2, T, V)
        b, _ = model(idx2)
    assert torch.allclose(a[:, : t + 1], b[:, : t + 1], atol=1e-5), \
        "changing future tokens changed the logits of earlier positions"


def test_gradients(model):
    V_, T_ = model.config.vocab_size, model.config.block_size
    x, y = torch.randint(V_, (2, T_)), torch.randint(V_, (2, T_))
    model.zero_grad(set_to_none=True)
    _, loss = model(x, y)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert p.grad.abs().sum() > 0, f"{name} has an all-zero gradient"


test_causality.__test__ = False  # the lesson's "tests" are answers here, not tests of this file
test_gradients.__test__ = False


def _untied(cfg=NOTEBOOK_CFG):
    torch.manual_seed(0)
    return GPT(dataclasses.replace(cfg, tie_weights=False))


# ---- other correct variants -------------------------------------------------------------------


def count_by_building(cfg):  # independent of the formula: build the model and count
    if cfg.vocab_size > 1000:
        return count_params(cfg)
    return sum(p.numel() for p in GPT(cfg).parameters())


def _causality_cut_at(model, t, seed=None):  # the lesson's test, at cut t, seeded or not
    V_, T_ = model.config.vocab_size, model.config.block_size
    if seed is not None:
        torch.manual_seed(seed)
    idx = torch.randint(V_, (2, T_))
    idx2 = idx.clone()
    idx2[:, t + 1:] = torch.randint(V_, (2, T_ - t - 1))
    model.eval()
    with torch.no_grad():
        a, _ = model(idx)
        b, _ = model(idx2)
    assert torch.allclose(a[:, : t + 1], b[:, : t + 1], atol=1e-5), "the future leaks"


def seeded_causality(model):  # its fresh ids leave both rows' last token as they were
    _causality_cut_at(model, model.config.block_size // 2, seed=29)


def later_cut_causality(model):  # under the check's seed 0, both rows' token t + 1 stays as it was
    _causality_cut_at(model, model.config.block_size // 2 + 1)


def test_solutions_pass(capsys):
    passes(capsys, day12.check_tied, tie(_untied()))
    m = _untied(CFG)
    m.transformer.wte.weight = m.lm_head.weight            # the other direction ties too
    passes(capsys, day12.check_tied, m)
    passes(capsys, day12.check_tied, tie(_untied(dataclasses.replace(CFG, dropout=0.3))))
    passes(capsys, day12.check_count_params, count_params)
    passes(capsys, day12.check_count_params, count_by_building)
    passes(capsys, day12.check_causality_test, test_causality)
    passes(capsys, day12.check_causality_test, seeded_causality)
    passes(capsys, day12.check_causality_test, later_cut_causality)
    passes(capsys, day12.check_gradients_test, test_gradients)


def test_check_tied_leaves_the_model_as_it_was(capsys):
    m = tie(_untied(dataclasses.replace(CFG, dropout=0.3)))
    m.train()
    passes(capsys, day12.check_tied, m)
    assert m.training and all(p.grad is None for p in m.parameters())


@pytest.mark.parametrize("check_fn, mistake", mistake_params(day12))
def test_mistake_rejected(check_fn, mistake, capsys):
    rejects(capsys, check_fn, mistake)


def test_every_check_has_three_mistakes():
    for name in ("check_tied", "check_count_params", "check_causality_test", "check_gradients_test"):
        assert len(getattr(day12, name).mistakes) >= 3, name


@pytest.mark.parametrize("check_fn, reference", [
    (day12.check_tied, GPT),
    (day12.check_count_params, count_params_formula),
    (day12.check_causality_test, day12.reference_test_causality),
    (day12.check_gradients_test, day12.reference_test_gradients),
])
def test_the_package_reference_is_refused(capsys, check_fn, reference):
    fails(capsys, check_fn, reference, "the course's own reference")


@pytest.mark.parametrize("check_fn", [day12.check_count_params, day12.check_causality_test,
                                      day12.check_gradients_test])
def test_stubs_are_not_done(capsys, check_fn):
    fails(capsys, check_fn, stub, "not done yet")


def test_untied_model_is_not_done(capsys):
    fails(capsys, day12.check_tied, _untied(), "not done yet")


# ---- exercise 1: the gradient of the shared matrix ---------------------------------------------


def test_tied_with_a_detached_use_is_caught_by_the_gradients(capsys):
    class HalfTied(GPT):  # tied, but the head's use of the matrix is cut from the graph
        def forward(self, idx, targets=None):
            w = self.lm_head.weight
            self.lm_head.weight = nn.Parameter(w.detach(), requires_grad=False)
            try:
                return super().forward(idx, targets)
            finally:
                self.lm_head.weight = w

    torch.manual_seed(0)
    m = HalfTied(dataclasses.replace(CFG, tie_weights=False))
    m.lm_head.weight = m.transformer.wte.weight
    assert bool(day12.check_tied(m)) is False
    assert "grad of" in one_line(capsys)


def test_tied_but_listed_twice(capsys):
    class Listing(GPT):
        def parameters(self, recurse=True):
            yield from self.named_parameters_twice()

        def named_parameters_twice(self):
            for _, p in self.named_parameters(remove_duplicate=False):
                yield p

    torch.manual_seed(0)
    m = Listing(dataclasses.replace(CFG, tie_weights=False))
    m.lm_head.weight = m.transformer.wte.weight
    fails(capsys, day12.check_tied, m, "lists them twice")


# ---- exercise 2 -------------------------------------------------------------------------------


def test_count_params_crash_shows_the_config(capsys):
    def crash(cfg):
        return cfg.n_embed * 2  # a typo: AttributeError

    assert bool(day12.check_count_params(crash)) is False
    out = one_line(capsys)
    assert "your code raised AttributeError" in out and "count_params(GPTConfig(vocab_size=100" in out


def test_count_params_generic_mismatch_names_the_config(capsys):
    fails(capsys, day12.check_count_params, lambda cfg: count_params(cfg) + 1,
          "(on count_params(GPTConfig(vocab_size=100, block_size=24")


def test_count_by_hand():
    # GPT-2 small with tied weights: the well-known 124,439,808 parameters
    cfg = GPTConfig(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768)
    assert count_params(cfg) == 124_439_808


# ---- exercises 3 and 4 ------------------------------------------------------------------------


def test_model_test_crashing_on_the_broken_model(capsys):
    def crashes_on_broken(model):
        V_, T_ = model.config.vocab_size, model.config.block_size
        model(torch.randint(V_, (2, T_)), torch.randint(V_, (2, T_)))[1].backward()
        assert model.transformer.wpe.weight.grad.abs().sum() > 0  # None.abs() on the broken one

    fails(capsys, day12.check_gradients_test, crashes_on_broken, "crashed")


# ---- broken models and reference tests ----------------------------------------------------------


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


def test_importing_the_checks_leaves_the_random_state_alone():
    import importlib

    torch.manual_seed(123)
    state = torch.get_rng_state()
    importlib.reload(day12)
    assert torch.equal(torch.get_rng_state(), state)


def test_middle_and_far_leaks_by_hand():
    # CFG has block_size 12: the middle leak sits at position 12 // 4 = 3, the far one lets
    # position 0 see positions 10 and 11 only
    torch.manual_seed(0)
    x = torch.randint(13, (2, 12))
    for build, changed, leaking, quiet in [(day12._middle_leak_model, 11, 3, [0, 1, 2, 4, 5, 6]),
                                           (day12._far_leak_model, 10, 0, [1, 2, 3, 4, 5, 6])]:
        model = build(CFG).eval()
        x2 = x.clone()
        x2[:, changed] = (x2[:, changed] + 1) % 13
        with torch.no_grad():
            a, _ = model(x)
            b, _ = model(x2)
        assert not torch.allclose(a[:, leaking], b[:, leaking])
        assert torch.allclose(a[:, quiet], b[:, quiet], atol=1e-6)
    far = day12._far_leak_model(CFG).eval()       # an input of 9 tokens never reaches position 10
    x3 = x[:, :9].clone()
    x3[:, 7:] = (x3[:, 7:] + 1) % 13
    with torch.no_grad():
        assert torch.allclose(far(x[:, :9])[0][:, :7], far(x3)[0][:, :7], atol=1e-6)


def test_cancelling_gradient_model_by_hand():
    model = day12._cancelling_grad_positions_model(CFG)
    x = torch.randint(13, (2, 12))
    model(x, x)[1].backward()
    g = model.transformer.wpe.weight.grad
    assert g[0, 0].item() == 1.0 and g[0, 1].item() == -1.0 and g.abs().sum().item() == 2.0
    assert g.sum().item() == 0.0


def test_gradient_test_must_name_the_parameter(capsys):
    def unnamed(model):
        model.zero_grad(set_to_none=True)
        x = torch.randint(model.config.vocab_size, (2, model.config.block_size))
        model(x, x)[1].backward()
        for p in model.parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0

    def named(model):  # the same test with the name in the message
        model.zero_grad(set_to_none=True)
        x = torch.randint(model.config.vocab_size, (2, model.config.block_size))
        model(x, x)[1].backward()
        for name, p in model.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient for {name}"

    assert bool(day12.check_gradients_test(unnamed)) is False
    line = one_line(capsys)
    assert "but its message does not name the parameter: say which parameter failed" in line, line
    passes(capsys, day12.check_gradients_test, named)
