"""LoRA from scratch: shapes, start, freezing, merge/unmerge, adapter files, and peft's outputs."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn

from llmcourse.finetune import (LoRALinear, apply_lora, count_parameters, load_lora, lora_modules,
                                lora_state_dict, merge_lora, save_lora, unload_lora,
                                unmerge_lora)
from llmcourse.model import GPT, GPTConfig


def _gpt(seed: int = 0, **kw) -> GPT:
    torch.manual_seed(seed)
    cfg = dict(vocab_size=23, block_size=12, n_layer=2, n_head=2, n_embd=16)
    cfg.update(kw)
    return GPT(GPTConfig(**cfg)).eval()


def _randomize_adapters(model: nn.Module, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, m in lora_modules(model):
            m.lora_B.copy_(torch.randn(m.lora_B.shape, generator=g) * 0.1)


def test_lora_linear_shapes_start_and_formula():
    torch.manual_seed(0)
    base = nn.Linear(7, 5)
    layer = LoRALinear(base, r=3, alpha=6)
    assert layer.lora_A.shape == (3, 7) and layer.lora_B.shape == (5, 3)
    assert layer.scaling == 2.0
    assert torch.count_nonzero(layer.lora_B) == 0 and torch.count_nonzero(layer.lora_A) > 0
    bound = 1 / 7 ** 0.5  # kaiming_uniform_(a=sqrt(5)) on fan_in=7: U(-1/sqrt(7), 1/sqrt(7))
    assert layer.lora_A.abs().max() <= bound
    x = torch.randn(2, 4, 7)
    assert torch.equal(layer(x), base(x))
    with torch.no_grad():
        layer.lora_B.normal_()
    expected = x @ base.weight.T + base.bias + 2.0 * x @ (layer.lora_B @ layer.lora_A).T
    torch.testing.assert_close(layer(x), expected)
    assert not base.weight.requires_grad and not base.bias.requires_grad
    assert layer.lora_A.requires_grad and layer.lora_B.requires_grad


def test_lora_linear_gradients_reach_only_the_adapter():
    torch.manual_seed(0)
    layer = LoRALinear(nn.Linear(6, 4), r=2, alpha=2)
    layer(torch.randn(3, 6)).sum().backward()
    assert layer.base.weight.grad is None
    assert layer.lora_B.grad is not None and layer.lora_B.grad.abs().sum() > 0
    # B = 0 at the start, so A's first gradient is exactly zero (as in the paper).
    assert torch.count_nonzero(layer.lora_A.grad) == 0


def test_lora_linear_dropout_only_on_the_adapter_path():
    torch.manual_seed(0)
    layer = LoRALinear(nn.Linear(6, 4), r=2, alpha=2, dropout=0.5).train()
    x = torch.randn(50, 6)
    torch.testing.assert_close(layer(x), layer.base(x))  # B = 0: dropout cannot show
    with torch.no_grad():
        layer.lora_B.normal_()
    assert not torch.allclose(layer(x), layer(x))  # train mode: random
    layer.eval()
    torch.testing.assert_close(layer(x), layer(x))


@pytest.mark.parametrize("kw, match", [
    (dict(r=0, alpha=1), "valid rank"), (dict(r=5, alpha=1), "valid rank"),
    (dict(r=2.0, alpha=1), "valid rank"), (dict(r=2, alpha=0), "alpha"),
    (dict(r=2, alpha=1, dropout=1.0), "dropout"),
])
def test_lora_linear_refuses_bad_settings(kw, match):
    with pytest.raises(ValueError, match=match):
        LoRALinear(nn.Linear(4, 6), **kw)
    with pytest.raises(TypeError, match="nn.Linear"):
        LoRALinear(nn.Conv1d(2, 2, 1), r=1, alpha=1)


def test_apply_lora_targets_freezing_and_counts():
    model = _gpt()
    total_before = count_parameters(model)[1]
    out = apply_lora(model, r=4, alpha=8)
    assert out is model
    names = [n for n, _ in lora_modules(model)]
    assert names == [f"transformer.h.{i}.{p}" for i in range(2)
                     for p in ("attn.c_attn", "attn.c_proj", "mlp.c_proj")]
    trainable, total = count_parameters(model)
    # c_attn 16->48, attn.c_proj 16->16, mlp.c_proj 64->16: r * (in + out) each.
    assert trainable == 2 * 4 * ((16 + 48) + (16 + 16) + (64 + 16))
    assert total == total_before + trainable
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {
        f"{n}.lora_{ab}" for n in names for ab in "AB"}
    # A fresh adapter is a no-op: the outputs are the base model's.
    base = _gpt()
    idx = torch.randint(0, 23, (2, 12))
    torch.testing.assert_close(model(idx)[0], base(idx)[0])


def test_apply_lora_suffix_targets_and_errors():
    model = apply_lora(_gpt(), targets=("attn.c_proj",), r=2, alpha=2)
    assert [n for n, _ in lora_modules(model)] == ["transformer.h.0.attn.c_proj",
                                                   "transformer.h.1.attn.c_proj"]
    with pytest.raises(ValueError, match="already has LoRA"):
        apply_lora(model)
    with pytest.raises(ValueError, match="no nn.Linear matches"):
        apply_lora(_gpt(), targets=("q_proj",))


def test_training_moves_only_adapters():
    model = apply_lora(_gpt(), r=2, alpha=4)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    idx = torch.randint(0, 23, (4, 12))
    model.train()
    losses = []
    for _ in range(20):
        _, loss = model(idx[:, :-1], idx[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    for n, p in model.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n]), n


def test_merge_and_unmerge_round_trip():
    model = apply_lora(_gpt(), r=3, alpha=5)
    _randomize_adapters(model)
    idx = torch.randint(0, 23, (2, 10))
    w0 = model.transformer.h[0].attn.c_attn.base.weight.detach().clone()
    before = model(idx)[0]
    merge_lora(model)
    assert all(m.merged for _, m in lora_modules(model))
    torch.testing.assert_close(model(idx)[0], before, atol=1e-5, rtol=1e-5)
    assert not torch.equal(model.transformer.h[0].attn.c_attn.base.weight, w0)
    with pytest.raises(ValueError, match="already merged"):
        merge_lora(model)
    unmerge_lora(model)
    torch.testing.assert_close(model.transformer.h[0].attn.c_attn.base.weight, w0,
                               atol=1e-6, rtol=0)
    torch.testing.assert_close(model(idx)[0], before, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="not merged"):
        unmerge_lora(model)


def test_save_and_load_only_the_adapter(tmp_path):
    model = apply_lora(_gpt(), r=2, alpha=4)
    _randomize_adapters(model)
    path = save_lora(model, tmp_path / "adapter.pt")
    saved = torch.load(path, weights_only=True)
    assert set(saved["state_dict"]) == set(lora_state_dict(model))
    assert all("lora_" in k for k in saved["state_dict"])
    full = tmp_path / "full.pt"
    torch.save(model.state_dict(), full)
    assert path.stat().st_size < full.stat().st_size / 3
    with pytest.raises(FileExistsError, match="never replaces"):
        save_lora(model, path)
    # Into a plain model of the same weights: adapters are added on the saved layers.
    fresh = load_lora(_gpt(), path)
    idx = torch.randint(0, 23, (2, 12))
    torch.testing.assert_close(fresh(idx)[0], model(idx)[0])
    assert count_parameters(fresh) == count_parameters(model)
    # Into a model that already has (untrained) adapters on the same layers.
    again = load_lora(apply_lora(_gpt(), r=2, alpha=4), path)
    torch.testing.assert_close(again(idx)[0], model(idx)[0])


def test_load_lora_refuses_what_does_not_fit(tmp_path):
    path = save_lora(apply_lora(_gpt(), r=2, alpha=4), tmp_path / "a.pt")
    with pytest.raises(ValueError, match="another model size"):
        load_lora(_gpt(n_embd=24), path)
    with pytest.raises(ValueError, match="does not have"):
        load_lora(_gpt(n_layer=1), path)
    with pytest.raises(ValueError, match="rank"):
        load_lora(apply_lora(_gpt(), r=3, alpha=4), path)
    with pytest.raises(ValueError, match="other layers"):
        load_lora(apply_lora(_gpt(), targets=("c_attn",), r=2, alpha=4), path)
    merged = merge_lora(apply_lora(_gpt(), r=2, alpha=4))
    with pytest.raises(ValueError, match="unmerge"):
        load_lora(merged, path)
    torch.save(_gpt().state_dict(), tmp_path / "full.pt")
    with pytest.raises(ValueError, match="not a LoRA adapter file"):
        load_lora(_gpt(), tmp_path / "full.pt")
    with pytest.raises(FileNotFoundError):
        load_lora(_gpt(), tmp_path / "missing.pt")
    # A refused load changes nothing: the plain model has no adapters afterwards.
    plain = _gpt(n_layer=1)
    with pytest.raises(ValueError):
        load_lora(plain, path)
    assert next(lora_modules(plain), None) is None


def test_same_outputs_as_peft():
    peft = pytest.importorskip("peft")
    ours = apply_lora(_gpt(bias=True), r=4, alpha=8)
    _randomize_adapters(ours)
    theirs = _gpt(bias=True)
    config = peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["c_attn", "c_proj"])
    theirs = peft.inject_adapter_in_model(config, theirs).eval()
    copied = 0
    with torch.no_grad():
        for name, m in lora_modules(ours):
            layer = theirs.get_submodule(name)
            torch.testing.assert_close(layer.base_layer.weight, m.base.weight)
            layer.lora_A["default"].weight.copy_(m.lora_A)
            layer.lora_B["default"].weight.copy_(m.lora_B)
            copied += 1
    assert copied == 6
    assert layer.scaling["default"] == ours.transformer.h[1].mlp.c_proj.scaling
    idx = torch.randint(0, 23, (3, 12))
    torch.testing.assert_close(ours(idx)[0], theirs(idx)[0], atol=1e-5, rtol=1e-5)
    # And the same trainable parameter count.
    peft_trainable = sum(p.numel() for p in theirs.parameters() if p.requires_grad)
    assert peft_trainable == count_parameters(ours)[0]


def test_unload_lora_merged_or_dropped():
    model = apply_lora(_gpt(), r=2, alpha=4)
    _randomize_adapters(model)
    idx = torch.randint(0, 23, (2, 12))
    tuned = model(idx)[0]
    merged = unload_lora(copy.deepcopy(model))
    assert next(lora_modules(merged), None) is None
    assert set(merged.state_dict()) == set(_gpt().state_dict())  # the original names again
    torch.testing.assert_close(merged(idx)[0], tuned, atol=1e-5, rtol=1e-5)
    dropped = unload_lora(merge_lora(copy.deepcopy(model)), merge=False)
    torch.testing.assert_close(dropped(idx)[0], _gpt()(idx)[0], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="no LoRA"):
        unload_lora(dropped)


def test_count_parameters_counts_a_tied_weight_once():
    model = _gpt()
    assert model.lm_head.weight is model.transformer.wte.weight  # tied
    unique = {id(p): p for m in model.modules() for p in m.parameters(recurse=False)}
    assert count_parameters(model) == (sum(p.numel() for p in unique.values()),) * 2
    assert sum(p.numel() for _, p in model.named_parameters(remove_duplicate=False)) > \
        count_parameters(model)[1]


def test_lora_py_is_the_reference_and_the_files_are_in_lora_files():
    """lora.py opens on LoRALinear; the adapter-file I/O lives in lora_files.py."""
    import ast
    import inspect

    import llmcourse.finetune as finetune
    from llmcourse.finetune import lora, lora_files

    defs = [n.name for n in ast.parse(inspect.getsource(lora)).body
            if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    assert defs[0] == "LoRALinear" and defs.index("check_lora_settings") > 0, defs
    for name in ("save_lora", "load_lora", "lora_state_dict"):
        assert not hasattr(lora, name), name
        assert getattr(finetune, name) is getattr(lora_files, name), name
    assert lora_files.FORMAT == "llmcourse-lora-v1" and not hasattr(lora, "FORMAT")
    assert "atomic" not in inspect.getsource(lora) and "torch.load" not in inspect.getsource(lora)


def test_wrap_with_lora_replaces_one_named_layer():
    from llmcourse.finetune.lora import wrap_with_lora

    model = _gpt()
    base = model.transformer.h[1].mlp.c_fc
    layer = wrap_with_lora(model, "transformer.h.1.mlp.c_fc", r=2, alpha=4)
    assert model.transformer.h[1].mlp.c_fc is layer and layer.base is base
    assert [n for n, _ in lora_modules(model)] == ["transformer.h.1.mlp.c_fc"]
