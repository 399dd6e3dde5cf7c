"""Tests of llmcourse.model: GPTConfig, GPT and its variants, the KV cache, size arithmetic."""

from __future__ import annotations

import itertools
import math
import sys
import types

import pytest
import torch

from llmcourse.model import (
    GPT,
    GPTConfig,
    KVCache,
    RMSNorm,
    RotaryEmbedding,
    apply_rotary,
    causal_mask,
    count_params_formula,
    estimate_mfu,
    flops_per_token,
)

pytestmark = pytest.mark.usefixtures("one_thread")


BASE = dict(vocab_size=50, block_size=16, n_layer=2, n_head=4, n_embd=32)

VARIANTS = {
    "gpt2": {},
    "exact-gelu": {"gelu_approximate": "none"},
    "rmsnorm": {"norm": "rmsnorm"},
    "rope": {"pos": "rope"},
    "swiglu": {"mlp": "swiglu"},
    "gqa": {"n_kv_head": 2},
    "mqa": {"n_kv_head": 1},
    "no-bias": {"bias": False},
    "untied": {"tie_weights": False},
    "modern": {"norm": "rmsnorm", "pos": "rope", "mlp": "swiglu", "n_kv_head": 2, "bias": False},
}


def make(seed: int = 0, **overrides) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(**{**BASE, **overrides}))


def randomize_(model: torch.nn.Module, seed: int = 0, scale: float = 0.2) -> None:
    """Give every parameter (norm gains and biases too) random values, so that mix-ups show."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            is_gain = p.ndim == 1 and name.endswith("weight")  # norm gains vary around 1
            p.copy_(torch.randn(p.shape, generator=g) * scale + (1.0 if is_gain else 0.0))


def tokens(B: int, T: int, vocab: int = BASE["vocab_size"], seed: int = 1) -> torch.Tensor:
    return torch.randint(0, vocab, (B, T), generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------- config
class TestConfig:
    def test_roundtrip_and_derived_sizes(self):
        cfg = GPTConfig(**BASE, **VARIANTS["modern"])
        assert GPTConfig.from_dict(cfg.to_dict()) == cfg
        assert cfg.head_size == 8 and cfg.kv_heads == 2
        assert GPTConfig(**BASE).kv_heads == 4
        assert GPTConfig(**BASE).mlp_hidden_size == 128  # 4 * n_embd
        assert GPTConfig(**{**BASE, "n_embd": 768, "n_head": 12}, mlp="swiglu").mlp_hidden_size == 2048
        assert GPTConfig(**BASE, mlp="swiglu").mlp_hidden_size == 128  # 85.3 -> 128
        assert GPTConfig(**BASE, mlp="swiglu", mlp_multiple_of=8).mlp_hidden_size == 88
        assert GPTConfig(**BASE, mlp="swiglu", mlp_hidden=40).mlp_hidden_size == 40

    @pytest.mark.parametrize(
        "overrides, message",
        [
            ({"n_embd": 30, "n_head": 4}, "divisible by n_head"),
            ({"n_kv_head": 3}, "multiple of n_kv_head"),
            ({"n_kv_head": 8}, "n_kv_head must be"),
            ({"n_kv_head": 0}, "n_kv_head must be"),
            ({"pos": "rope", "n_embd": 36, "n_head": 4}, "head size must be even"),
            ({"norm": "batchnorm"}, "norm must be one of"),
            ({"pos": "sinusoidal"}, "pos must be one of"),
            ({"mlp": "relu"}, "mlp must be one of"),
            ({"gelu_approximate": "erf"}, "gelu_approximate"),
            ({"dropout": 1.0}, "dropout"),
            ({"vocab_size": 0}, "vocab_size must be a positive integer"),
            ({"block_size": 2.5}, "block_size must be a positive integer"),
            ({"mlp_hidden": -1}, "mlp_hidden"),
            ({"init_std": 0.0}, "init_std"),
            ({"rope_theta": -1.0, "pos": "rope"}, "rope_theta"),
        ],
    )
    def test_validation(self, overrides, message):
        with pytest.raises(ValueError, match=message):
            GPTConfig(**{**BASE, **overrides})

    def test_from_dict_unknown_keys(self):
        d = {**GPTConfig(**BASE).to_dict(), "learning_rate": 1e-3}
        with pytest.raises(ValueError, match="learning_rate"):
            GPTConfig.from_dict(d)
        assert GPTConfig.from_dict(d, strict=False) == GPTConfig(**BASE)

    def test_model_needs_config_object(self):
        with pytest.raises(TypeError, match="GPTConfig.from_dict"):
            GPT(dict(BASE))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- structure
class TestStructure:
    def test_gpt2_parameter_names(self):
        names = set(make().state_dict())
        expected = {
            "transformer.wte.weight", "transformer.wpe.weight", "transformer.ln_f.weight",
            "transformer.ln_f.bias", "lm_head.weight",
        }
        for i in range(BASE["n_layer"]):
            for part in ("ln_1", "ln_2", "attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"):
                expected |= {f"transformer.h.{i}.{part}.weight", f"transformer.h.{i}.{part}.bias"}
        assert names == expected
        assert isinstance(make().transformer.drop, torch.nn.Dropout)

    def test_rope_has_no_position_table_and_no_extra_state(self):
        model = make(pos="rope")
        assert "wpe" not in model.transformer
        assert not any("rotary" in k or "cos" in k for k in model.state_dict())

    def test_no_bias_anywhere(self):
        for norm in ("layernorm", "rmsnorm"):
            model = make(bias=False, norm=norm)
            assert not [n for n, _ in model.named_parameters() if n.endswith("bias")]

    def test_weight_tying(self):
        tied, untied = make(), make(tie_weights=False)
        assert tied.lm_head.weight is tied.transformer.wte.weight
        assert untied.lm_head.weight is not untied.transformer.wte.weight

    def test_init(self):
        torch.manual_seed(0)
        cfg = GPTConfig(vocab_size=500, block_size=64, n_layer=4, n_head=4, n_embd=256)
        model = GPT(cfg)
        sd = model.state_dict()
        resid_std = 0.02 / math.sqrt(2 * cfg.n_layer)
        for name, p in sd.items():
            if name.endswith("c_proj.weight"):
                assert p.std().item() == pytest.approx(resid_std, rel=0.05), name
            elif name.endswith(("c_attn.weight", "c_fc.weight", "wte.weight", "wpe.weight")):
                assert p.std().item() == pytest.approx(0.02, rel=0.05), name
            elif name.endswith("bias"):
                assert torch.count_nonzero(p) == 0, name
            elif "ln" in name:
                assert torch.all(p == 1), name

    @pytest.mark.parametrize("n_kv_head", [None, 4])
    def test_gqa_with_all_heads_is_plain_mha(self, n_kv_head):
        C = BASE["n_embd"]
        model = make(n_kv_head=n_kv_head)
        assert model.transformer.h[0].attn.c_attn.weight.shape == (3 * C, C)
        mha = make(seed=5)
        mha.load_state_dict(model.state_dict())  # same names and shapes
        x = tokens(2, 10)
        torch.testing.assert_close(mha.eval()(x)[0], model.eval()(x)[0])
        assert model.num_params() == make().num_params()

    def test_gqa_projection_and_cache_shapes(self):
        C, hs = BASE["n_embd"], BASE["n_embd"] // BASE["n_head"]
        model = make(n_kv_head=1)
        assert model.transformer.h[0].attn.c_attn.weight.shape == (C + 2 * hs, C)
        cache = model.new_kv_cache(3, max_len=10)
        assert cache.k[0].shape == (3, 1, 10, hs) and len(cache.v) == BASE["n_layer"]


# ---------------------------------------------------------------------------- behaviour
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_shapes_and_loss(variant):
    model = make(**VARIANTS[variant])
    x, y = tokens(3, 16), tokens(3, 16, seed=2)
    logits, loss = model(x)
    assert logits.shape == (3, 16, BASE["vocab_size"]) and loss is None
    logits, loss = model(x, y)
    assert loss.ndim == 0 and torch.isfinite(loss)
    torch.testing.assert_close(
        loss, torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    )
    y_masked = y.clone()
    y_masked[:, :8] = -1  # ignored positions
    _, loss_masked = model(x, y_masked)
    expected = torch.nn.functional.cross_entropy(logits[:, 8:].reshape(-1, logits.shape[-1]),
                                                 y[:, 8:].reshape(-1))
    torch.testing.assert_close(loss_masked, expected)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_causality(variant):
    """Changing future tokens never changes the logits of earlier positions."""
    model = make(**VARIANTS[variant]).eval()
    randomize_(model, seed=3)
    x = tokens(2, 16)
    base, _ = model(x)
    for t in (0, 5, 14):
        changed = x.clone()
        changed[:, t + 1:] = (changed[:, t + 1:] + 7) % BASE["vocab_size"]
        out, _ = model(changed)
        torch.testing.assert_close(out[:, : t + 1], base[:, : t + 1], atol=1e-5, rtol=0)
        assert not torch.allclose(out[:, t + 1:], base[:, t + 1:], atol=1e-4)  # the future did change


@pytest.mark.parametrize("vocab_size", [65, 1000])
@pytest.mark.parametrize("variant", ["gpt2", "modern", "untied"])
def test_initial_loss_is_ln_vocab(vocab_size, variant):
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=vocab_size, block_size=32, n_layer=2, n_head=4, n_embd=64,
                    **VARIANTS[variant])
    model = GPT(cfg)
    x, y = tokens(8, 32, vocab_size), tokens(8, 32, vocab_size, seed=9)
    _, loss = model(x, y)
    assert abs(loss.item() - math.log(vocab_size)) < 0.1


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_parameter_gets_a_gradient(variant):
    model = make(**VARIANTS[variant])
    _, loss = model(tokens(2, 16), tokens(2, 16, seed=2))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert p.grad.abs().sum() > 0, f"{name} has an all-zero gradient"


@pytest.mark.parametrize("variant", ["gpt2", "modern"])
def test_overfits_a_single_batch(variant):
    torch.manual_seed(0)
    model = make(**VARIANTS[variant])
    x, y = tokens(4, 16), tokens(4, 16, seed=2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    losses = []
    for _ in range(300):  # usually done in about 40 steps
        _, loss = model(x, y)
        losses.append(loss.item())
        if losses[-1] < 0.05:
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    assert losses[0] > 3.5 and losses[-1] < 0.05, (losses[0], losses[-1], len(losses))


@pytest.mark.parametrize("variant", ["gpt2", "rope", "gqa", "modern"])
def test_sdpa_equals_manual_attention(variant):
    model = make(**VARIANTS[variant]).eval()
    randomize_(model, seed=4)
    x = tokens(2, 16)
    fused, _ = model(x)
    model.set_attention_impl("manual")
    manual, _ = model(x)
    torch.testing.assert_close(fused, manual, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="sdpa"):
        model.set_attention_impl("flash")


def test_attention_maps():
    model = make(**VARIANTS["modern"]).eval()
    with torch.no_grad():
        maps = model.attention_maps(tokens(2, 9))
    assert len(maps) == BASE["n_layer"]
    for att in maps:
        assert att.shape == (2, BASE["n_head"], 9, 9)
        torch.testing.assert_close(att.sum(-1), torch.ones(2, BASE["n_head"], 9))
        assert torch.all(att.triu(diagonal=1) == 0)


def test_only_last_matches_full_logits():
    model = make().eval()
    x = tokens(2, 12)
    full, _ = model(x)
    last, _ = model(x, only_last=True)
    assert last.shape == (2, 1, BASE["vocab_size"])
    torch.testing.assert_close(last[:, 0], full[:, -1])
    with pytest.raises(ValueError, match="only_last"):
        model(x, x, only_last=True)


def test_dropout_only_in_training_mode():
    model = make(dropout=0.5)
    x = tokens(2, 8)
    a, b = model(x)[0], model(x)[0]
    assert not torch.allclose(a, b)
    model.eval()
    torch.testing.assert_close(model(x)[0], model(x)[0])


def test_attention_weight_dropout_is_the_plain_attribute():
    """The attention holds the weights' dropout as a float, read by the SDPA call; no module."""
    from llmcourse.model import CausalSelfAttention

    attn = CausalSelfAttention(GPTConfig(**BASE, dropout=0.25))
    assert attn.dropout == 0.25 and not hasattr(attn, "n_embd")
    assert [name for name, _ in attn.named_children()] == ["c_attn", "c_proj", "resid_dropout"]
    x = torch.randn(2, 8, BASE["n_embd"])
    attn.resid_dropout.p = 0.0
    attn.dropout = 0.0
    torch.testing.assert_close(attn(x)[0], attn(x)[0])       # no dropout left anywhere
    attn.dropout = 0.5                                        # the attribute is what is used
    for impl in ("sdpa", "manual"):
        attn.impl = impl
        assert not torch.allclose(attn(x)[0], attn(x)[0])
        attn.eval()
        torch.testing.assert_close(attn(x)[0], attn(x)[0])
        attn.train()


def test_dead_code_is_gone():
    assert not hasattr(GPT, "crop_block_size") and not hasattr(RotaryEmbedding, "resize")


def test_bad_inputs():
    model = make()
    with pytest.raises(ValueError, match="block_size is 16"):
        model(tokens(1, 17))
    with pytest.raises(ValueError, match=r"idx\[None\]"):
        model(tokens(1, 5)[0])
    with pytest.raises(TypeError, match="integer token ids"):
        model(torch.zeros(1, 4))
    with pytest.raises(ValueError, match="shape of idx"):
        model(tokens(2, 5), tokens(2, 4))


# ---------------------------------------------------------------------------- KV cache
def decode_incrementally(model: GPT, x: torch.Tensor, chunks: list[int]) -> torch.Tensor:
    cache = model.new_kv_cache(x.shape[0])
    outs, start = [], 0
    for n in chunks:
        logits, _ = model(x[:, start:start + n], kv_cache=cache)
        outs.append(logits)
        start += n
        assert cache.pos == start
    return torch.cat(outs, dim=1)


@pytest.mark.parametrize("variant", ["gpt2", "rope", "gqa", "mqa", "modern"])
def test_kv_cache_matches_full_forward(variant):
    """Prefill (T > 1), single-token decoding and a later multi-token chunk all match."""
    model = make(**VARIANTS[variant]).eval()
    randomize_(model, seed=6)
    x = tokens(3, 16)
    with torch.no_grad():
        full, _ = model(x)
        incremental = decode_incrementally(model, x, [5, 1, 1, 1, 4, 1, 3])
    torch.testing.assert_close(incremental, full, atol=1e-5, rtol=1e-5)


def test_kv_cache_with_manual_attention_and_maps():
    model = make(**VARIANTS["modern"]).eval()
    x = tokens(2, 10)
    with torch.no_grad():
        full, _ = model(x)
        model.set_attention_impl("manual")
        incremental = decode_incrementally(model, x, [4, 1, 5])
        cache = model.new_kv_cache(2)
        model(x[:, :6], kv_cache=cache)
        maps = model.attention_maps(x[:, 6:], kv_cache=cache)
        ref = model.attention_maps(x)
    torch.testing.assert_close(incremental, full, atol=1e-5, rtol=1e-5)
    assert maps[0].shape == (2, BASE["n_head"], 4, 10)
    torch.testing.assert_close(maps[1], ref[1][:, :, 6:], atol=1e-5, rtol=1e-5)


def test_kv_cache_reorder_and_reset():
    model = make(pos="rope", n_kv_head=2).eval()
    x = tokens(2, 8)
    with torch.no_grad():
        cache = model.new_kv_cache(2)
        model(x[:, :7], kv_cache=cache)
        cache.reorder(torch.tensor([1, 1, 0]))  # beam search: duplicate row 1, keep row 0
        assert cache.batch_size == 3
        nxt = torch.stack([x[1, 7], x[1, 0], x[0, 7]])[:, None]
        step, _ = model(nxt, kv_cache=cache)
        rows = torch.stack([x[1], torch.cat([x[1, :7], x[1, :1]]), x[0]])
        full, _ = model(rows)
        torch.testing.assert_close(step[:, 0], full[:, -1], atol=1e-5, rtol=1e-5)

        cache.reset()
        assert cache.pos == 0
        again, _ = model(rows[:, :5], kv_cache=cache)
        torch.testing.assert_close(again, full[:, :5], atol=1e-5, rtol=1e-5)
    with pytest.raises(IndexError, match=r"\[0, 3\)"):
        cache.reorder([3])


def test_kv_cache_errors():
    model = make().eval()
    cache = model.new_kv_cache(2, max_len=8)
    model(tokens(2, 6), kv_cache=cache)
    with pytest.raises(ValueError, match="overflow.*reset"):
        model(tokens(2, 3), kv_cache=cache)
    assert cache.pos == 6  # the failed call changed nothing
    with pytest.raises(ValueError, match="batch size 3"):
        model(tokens(3, 1), kv_cache=cache)
    with pytest.raises(ValueError, match="max_len"):
        model.new_kv_cache(1, max_len=17)
    full = model.new_kv_cache(1)
    assert full.max_len == BASE["block_size"]
    model(tokens(1, 16), kv_cache=full)
    with pytest.raises(ValueError, match="overflow"):
        model(tokens(1, 1), kv_cache=full)


def test_kv_cache_bookkeeping():
    cache = KVCache(n_layer=2, batch_size=3, n_kv_head=2, max_len=5, head_size=4)
    assert cache.nbytes == 2 * 2 * 3 * 2 * 5 * 4 * 4 and cache.remaining == 5
    k = torch.randn(3, 2, 2, 4)
    k_all, v_all = cache.update(0, k, -k)
    assert k_all.shape == (3, 2, 2, 4)
    torch.testing.assert_close(v_all, -k)
    cache.advance(2)
    assert cache.pos == 2 and cache.remaining == 3
    assert "pos=2" in repr(cache)
    with pytest.raises(ValueError, match="positive integer"):
        KVCache(n_layer=0, batch_size=1, n_kv_head=1, max_len=1, head_size=1)


def test_generate_delegates(monkeypatch):
    calls = []
    fake = types.ModuleType("llmcourse.generate")

    def generate(model, idx, max_new_tokens, **kw):
        calls.append((model, idx, max_new_tokens, kw))
        return idx

    fake.generate = generate
    monkeypatch.setitem(sys.modules, "llmcourse.generate", fake)
    model = make()
    idx = tokens(1, 3)
    assert model.generate(idx, 5, temperature=0.7, top_k=3) is idx
    assert calls == [(model, idx, 5, {"temperature": 0.7, "top_k": 3})]


# ---------------------------------------------------------------------------- layers
def test_rmsnorm_formula():
    norm = RMSNorm(6, eps=1e-6)
    with torch.no_grad():
        norm.weight.copy_(torch.arange(1.0, 7.0))
    x = torch.randn(2, 3, 6)
    expected = x / torch.sqrt((x ** 2).mean(-1, keepdim=True) + 1e-6) * torch.arange(1.0, 7.0)
    torch.testing.assert_close(norm(x), expected)


def test_rope_depends_only_on_relative_position():
    rope = RotaryEmbedding(8, max_len=32)
    q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)

    def score(pq: int, pk: int) -> torch.Tensor:
        return (apply_rotary(q, *rope(pq, 1)) * apply_rotary(k, *rope(pk, 1))).sum()

    torch.testing.assert_close(score(7, 3), score(20, 16))
    torch.testing.assert_close(score(5, 5), (q * k).sum())
    assert not torch.allclose(score(7, 3), score(7, 4))


def test_rope_tables_stay_float32():
    model = make(pos="rope").to(torch.bfloat16)
    assert model.rotary.cos.dtype == torch.float32
    assert model.transformer.wte.weight.dtype == torch.bfloat16
    logits, _ = model(tokens(1, 6))
    assert logits.dtype == torch.bfloat16


def test_causal_mask_offsets():
    assert torch.equal(causal_mask(3, 3), torch.ones(3, 3, dtype=torch.bool).tril())
    assert torch.equal(causal_mask(1, 4), torch.ones(1, 4, dtype=torch.bool))


# ---------------------------------------------------------------------------- arithmetic
def test_param_formula_matches_gpt2_small():
    # The published size of GPT-2 small (vocab 50257): 124,439,808 parameters.
    assert count_params_formula(GPTConfig(vocab_size=50257), non_embedding=False) == 124_439_808


COMBOS = list(itertools.product(
    ["layernorm", "rmsnorm"], ["learned", "rope"], ["gelu", "swiglu"], [None, 1, 2],
    [True, False], [True, False], [None, 40],
))


@pytest.mark.parametrize("norm, pos, mlp, n_kv_head, bias, tie, hidden", COMBOS)
def test_param_formula_matches_code(norm, pos, mlp, n_kv_head, bias, tie, hidden):
    cfg = GPTConfig(vocab_size=37, block_size=9, n_layer=3, n_head=4, n_embd=24, norm=norm,
                    pos=pos, mlp=mlp, n_kv_head=n_kv_head, bias=bias, tie_weights=tie,
                    mlp_hidden=hidden)
    model = GPT(cfg)
    for non_embedding in (True, False):
        assert model.num_params(non_embedding) == count_params_formula(cfg, non_embedding)
    unique = {id(p): p.numel() for p in model.parameters()}
    assert model.num_params(non_embedding=False) == sum(unique.values())


def test_flops_and_mfu():
    cfg = GPTConfig(**BASE)
    N = GPT(cfg).num_params()
    attention = cfg.n_layer * cfg.n_head * cfg.head_size * cfg.block_size
    assert flops_per_token(cfg) == 6 * N + 12 * attention
    assert flops_per_token(cfg, training=False) * 3 == flops_per_token(cfg)
    assert flops_per_token(cfg, seq_len=4) < flops_per_token(cfg)
    mfu = estimate_mfu(cfg, tokens_per_second=1e6, peak_flops=1e12)
    assert mfu == pytest.approx(flops_per_token(cfg) * 1e6 / 1e12)
    assert make().estimate_mfu(1e6, peak_flops=1e12) == pytest.approx(mfu)
    with pytest.raises(ValueError, match="peak_flops"):
        estimate_mfu(cfg, 1.0, peak_flops=0)


# ---------------------------------------------------------------------------- references
def test_split_and_merge_heads_match_the_day10_references():
    from llmcourse.checks import day10
    from llmcourse.model import merge_heads, split_heads

    x = torch.randn(3, 5, 12)
    for nh in (1, 3, 4):
        torch.testing.assert_close(split_heads(x, nh), day10.split_heads(x, nh), rtol=0, atol=0)
        assert torch.equal(merge_heads(split_heads(x, nh)), x)


def test_repeat_kv_serves_consecutive_query_heads():
    from llmcourse.model import repeat_kv

    kv = torch.randn(2, 3, 4, 5)
    out = repeat_kv(kv, 2)
    assert out.shape == (2, 6, 4, 5)
    for h in range(6):
        assert torch.equal(out[:, h], kv[:, h // 2])
    assert repeat_kv(kv, 1) is kv


def test_sinusoidal_table_matches_the_day05_reference():
    from llmcourse.checks import day05
    from llmcourse.model import sinusoidal_table

    for T, C in ((1, 2), (7, 16), (50, 6)):
        torch.testing.assert_close(sinusoidal_table(T, C), day05.sinusoidal_table(T, C))
    with pytest.raises(ValueError, match="even"):
        sinusoidal_table(4, 7)


@pytest.mark.parametrize("variant", ["gpt2", "gqa", "rope"])
def test_manual_attention_is_the_from_scratch_function(variant, monkeypatch):
    """The manual path calls llmcourse.model.functional, also with a cache (explicit mask)."""
    from llmcourse.model import functional

    calls = []
    real = functional.scaled_dot_product_attention

    def spy(*args, **kwargs):
        calls.append(args[3] is None)  # no mask: is_causal
        return real(*args, **kwargs)

    monkeypatch.setattr(functional, "scaled_dot_product_attention", spy)
    model = make(**VARIANTS[variant]).eval()
    randomize_(model, seed=5)
    x = tokens(2, 10)
    fused, _ = model(x)
    cache = model.new_kv_cache(2)
    with torch.no_grad():
        model(x[:, :4], kv_cache=cache)
        sdpa_chunk, _ = model(x[:, 4:], kv_cache=cache)  # a chunk after a cached past
    assert not calls
    model.set_attention_impl("manual")
    cache.reset()
    with torch.no_grad():
        manual_full, _ = model(x)
        model(x[:, :4], kv_cache=cache)
        manual_chunk, _ = model(x[:, 4:], kv_cache=cache)
    assert calls == [True] * BASE["n_layer"] * 2 + [False] * BASE["n_layer"]
    torch.testing.assert_close(manual_full, fused, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(manual_chunk, sdpa_chunk, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(manual_chunk, fused[:, 4:], atol=1e-5, rtol=1e-5)


def test_attention_does_not_override_module_internals():
    from llmcourse.model import CausalSelfAttention

    assert "_apply" not in vars(CausalSelfAttention)   # RoPE's tables: see the test below
    model = make(pos="rope").half()
    assert model.rotary.cos.dtype == torch.float32 and model.rotary.cos.device.type == "cpu"


@pytest.mark.parametrize("variant", ["gpt2", "untied", "rope", "modern"])
def test_one_flops_formula_for_any_model(variant):
    """The trainer's fallback for models without flops_per_token counts as the GPT formula."""
    from torch import nn

    from llmcourse.device import peak_flops
    from llmcourse.model import PEAK_FLOPS, mfu
    from llmcourse.model.gpt import mfu as gpt_mfu   # the old import path still works
    from llmcourse.train.metrics import flops_per_token as model_flops
    from llmcourse.train.metrics import mfu as metrics_mfu

    cfg = GPTConfig(**BASE, **VARIANTS[variant])

    class Wrapped(nn.Module):  # a GPT inside a module that does not know the formula
        def __init__(self):
            super().__init__()
            self.config, self.inner = cfg, GPT(cfg)

    assert model_flops(Wrapped()) == flops_per_token(cfg)
    assert model_flops(Wrapped(), 5) == flops_per_token(cfg, seq_len=5)
    assert model_flops(GPT(cfg), 5) == flops_per_token(cfg, seq_len=5)
    assert metrics_mfu is mfu is gpt_mfu
    assert PEAK_FLOPS["A100-bf16"] == peak_flops("NVIDIA A100-SXM4-40GB", "bfloat16")
    assert estimate_mfu(cfg, 1e6, peak_flops=1e12) == mfu(flops_per_token(cfg), 1e6, 1e12)


def test_rope_tables_move_with_the_model_but_keep_float32():
    """model.to(device) moves RoPE's tables (not buffers) with it, so a compiled first call does
    not move them itself (a changed attribute, a second compilation); .half() leaves them float32."""
    from llmcourse.model.layers import RotaryEmbedding

    model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=16, pos="rope"))
    tables = [m for m in model.modules() if isinstance(m, RotaryEmbedding)]
    assert tables
    model.to("meta")   # stands in for a GPU here: any device but the CPU
    model.half()
    for rope in tables:
        assert (rope.cos.device.type, rope.sin.device.type) == ("meta", "meta")
        assert (rope.cos.dtype, rope.sin.dtype) == (torch.float32, torch.float32)
