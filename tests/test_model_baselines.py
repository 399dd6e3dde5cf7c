"""Tests of the baseline language models: BigramLM, MLPLM, WaveNetLM."""

from __future__ import annotations

import math
import sys
import types

import pytest
import torch

from llmcourse.model import (
    BigramConfig,
    BigramLM,
    MLPConfig,
    MLPLM,
    WaveNetConfig,
    WaveNetLM,
)

pytestmark = pytest.mark.usefixtures("one_thread")


V = 30


def build(kind: str, seed: int = 0, **overrides) -> torch.nn.Module:
    torch.manual_seed(seed)
    if kind == "bigram":
        return BigramLM(BigramConfig(vocab_size=V, **overrides))
    if kind.startswith("mlp"):
        fields = dict(vocab_size=V, block_size=4, n_embd=8, n_hidden=32,
                      batchnorm=kind == "mlp-bn")
        return MLPLM(MLPConfig(**{**fields, **overrides}))
    fields = dict(vocab_size=V, block_size=8, n_embd=8, n_hidden=16, batchnorm=kind == "wavenet-bn")
    return WaveNetLM(WaveNetConfig(**{**fields, **overrides}))


KINDS = ["bigram", "mlp", "mlp-bn", "wavenet", "wavenet-bn"]


def tokens(B: int, T: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(seed))


def warm_up_batchnorm(model: torch.nn.Module) -> None:
    """A few training-mode forwards so the running statistics are not the initial 0/1."""
    model.train()
    with torch.no_grad():
        for s in range(3):
            model(tokens(8, 12, seed=100 + s))
    model.eval()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("T", [1, 5, 20])
def test_shapes_and_loss(kind, T):
    model = build(kind)
    x, y = tokens(3, T), tokens(3, T, seed=2)
    logits, loss = model.eval()(x)
    assert logits.shape == (3, T, V) and loss is None
    logits, loss = model(x, y)
    torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(logits.reshape(-1, V), y.reshape(-1)))
    assert model.config.vocab_size == V and model.config.block_size >= 1


@pytest.mark.parametrize("kind", KINDS)
def test_causality(kind):
    model = build(kind)
    warm_up_batchnorm(model)
    x = tokens(2, 16)
    base, _ = model(x)
    for t in (0, 6, 14):
        changed = x.clone()
        changed[:, t + 1:] = (changed[:, t + 1:] + 5) % V
        out, _ = model(changed)
        torch.testing.assert_close(out[:, : t + 1], base[:, : t + 1], atol=1e-6, rtol=0)
        assert not torch.allclose(out[:, t + 1], base[:, t + 1])


@pytest.mark.parametrize("kind, context", [("bigram", 1), ("mlp", 4), ("wavenet", 8)])
def test_exact_context_length(kind, context):
    """Position t sees exactly tokens t - context + 1 .. t (more with WaveNet's rounding up)."""
    model = build(kind).eval()
    x = tokens(1, 20)
    base, _ = model(x)
    t = 15
    inside, outside = x.clone(), x.clone()
    inside[0, t - context + 1] = (x[0, t - context + 1] + 1) % V
    outside[0, t - context] = (x[0, t - context] + 1) % V
    assert not torch.allclose(model(inside)[0][0, t], base[0, t])
    torch.testing.assert_close(model(outside)[0][0, t], base[0, t])


def test_wavenet_receptive_field():
    for block_size, kernel, layers in [(8, 2, 3), (9, 2, 4), (16, 2, 4), (10, 3, 3), (1, 2, 1)]:
        cfg = WaveNetConfig(vocab_size=V, block_size=block_size, kernel_size=kernel)
        assert cfg.layers == layers
        assert cfg.receptive_field >= block_size
    assert WaveNetLM(WaveNetConfig(vocab_size=V, block_size=8)).dilations == [1, 2, 4]


@pytest.mark.parametrize("kind", KINDS)
def test_initial_loss_near_ln_vocab(kind):
    model = build(kind)
    _, loss = model(tokens(16, 12), tokens(16, 12, seed=3))
    assert abs(loss.item() - math.log(V)) < 0.1


@pytest.mark.parametrize("kind", KINDS)
def test_every_parameter_gets_a_gradient_and_training_helps(kind):
    model = build(kind)
    x, y = tokens(8, 12), tokens(8, 12, seed=2)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-2)
    losses = []
    for step in range(30):
        _, loss = model(x, y)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        if step == 0:
            for name, p in model.named_parameters():
                assert p.grad is not None and p.grad.abs().sum() > 0, name
        opt.step()
    assert losses[-1] < losses[0] - 0.5


def test_mlp_padding_choices():
    dedicated = build("mlp")
    assert dedicated.wte.num_embeddings == V + 1 and dedicated.pad_id == V
    shared = build("mlp", pad_token=0)
    assert shared.wte.num_embeddings == V and shared.pad_id == 0
    # with pad_token=0, a leading 0 is indistinguishable from padding
    x = torch.tensor([[0, 3, 4]])
    shorter, _ = shared.eval()(x[:, 1:])
    full, _ = shared(x)
    torch.testing.assert_close(full[:, 1:], shorter)
    with pytest.raises(ValueError, match="pad_token"):
        MLPConfig(vocab_size=V, pad_token=V)


@pytest.mark.parametrize(
    "factory, message",
    [
        (lambda: BigramConfig(vocab_size=0), "vocab_size"),
        (lambda: MLPConfig(block_size=0), "block_size"),
        (lambda: MLPConfig(dropout=1.5), "dropout"),
        (lambda: WaveNetConfig(kernel_size=1), "kernel_size"),
        (lambda: WaveNetConfig(block_size=16, n_layer=3), "n_layer >= 4"),
    ],
)
def test_config_validation(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


@pytest.mark.parametrize("kind", ["bigram", "mlp", "wavenet"])
def test_bad_inputs(kind):
    model = build(kind)
    with pytest.raises(ValueError, match="no KV cache"):
        model(tokens(1, 3), kv_cache=object())
    with pytest.raises(ValueError, match="batch, time"):
        model(tokens(1, 3)[0])
    with pytest.raises(TypeError, match="integer"):
        model(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="shape of idx"):
        model(tokens(1, 3), tokens(1, 4))


@pytest.mark.parametrize("kind", ["bigram", "mlp", "wavenet"])
def test_generate_delegates(kind, monkeypatch):
    calls = []
    fake = types.ModuleType("llmcourse.generate")
    fake.generate = lambda model, idx, n, **kw: calls.append((model, n, kw)) or idx
    monkeypatch.setitem(sys.modules, "llmcourse.generate", fake)
    model = build(kind)
    model.generate(tokens(1, 2), 4, top_k=2)
    assert calls == [(model, 4, {"top_k": 2})]
