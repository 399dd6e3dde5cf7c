"""GPT-2 weight import: parity with Hugging Face's GPT2LMHeadModel (transformers, test-only)."""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

from llmcourse.model import GPT, GPTConfig, load_gpt2_weights  # noqa: E402
from llmcourse.model import hf as hf_module  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


SIZES = dict(n_layer=2, n_head=2, n_embd=32, vocab_size=100, n_positions=16)


def hf_model(seed: int = 0, **overrides) -> torch.nn.Module:
    """A small random GPT-2 in eval mode, every weight random (biases and norm gains too)."""
    torch.manual_seed(seed)
    sizes = {**SIZES, **overrides}
    cfg = transformers.GPT2Config(
        **sizes, activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0,
        attn_pdrop=0.0, bos_token_id=0, eos_token_id=0,
    )
    model = transformers.GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.add_(torch.randn_like(p) * 0.1)  # GPT-2 init leaves biases at 0 and gains at 1
    return model


def our_config(**overrides) -> GPTConfig:
    fields = dict(vocab_size=100, block_size=16, n_layer=2, n_head=2, n_embd=32)
    return GPTConfig(**{**fields, **overrides})


def hf_logits(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x).logits


def our_logits(model: GPT, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(x)[0]


X = torch.randint(0, 100, (2, 16), generator=torch.Generator().manual_seed(0))


def test_parity_with_transformers():
    ref = hf_model()
    ours = GPT.from_hf_state_dict(ref.state_dict(), config=our_config())
    torch.testing.assert_close(our_logits(ours, X), hf_logits(ref, X), atol=1e-5, rtol=1e-5)
    # the manual attention path and the KV cache agree with GPT-2 too
    ours.set_attention_impl("manual")
    torch.testing.assert_close(our_logits(ours, X), hf_logits(ref, X), atol=1e-5, rtol=1e-5)
    cache = ours.new_kv_cache(2)
    with torch.no_grad():
        steps = [ours(X[:, :10], kv_cache=cache)[0]] + [
            ours(X[:, t:t + 1], kv_cache=cache)[0] for t in range(10, 16)
        ]
    torch.testing.assert_close(torch.cat(steps, 1), hf_logits(ref, X), atol=1e-5, rtol=1e-5)


def test_exact_gelu_is_not_gpt2():
    ref = hf_model()
    ours = GPT.from_hf_state_dict(ref.state_dict(), config=our_config(gelu_approximate="none"))
    assert not torch.allclose(our_logits(ours, X), hf_logits(ref, X), atol=1e-5)


def test_config_inferred_from_weights():
    ref = hf_model(n_embd=128, n_head=2)
    ours = GPT.from_hf_state_dict(ref.state_dict())
    assert (ours.config.n_layer, ours.config.n_embd, ours.config.n_head) == (2, 128, 2)
    assert (ours.config.vocab_size, ours.config.block_size) == (100, 16)
    torch.testing.assert_close(our_logits(ours, X), hf_logits(ref, X), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="cannot infer n_head"):
        GPT.from_hf_state_dict(hf_model().state_dict())  # n_embd=32: not 64-dim heads
    from llmcourse.model import from_hf_state_dict    # the package-level name, the same thing
    again = from_hf_state_dict(ref.state_dict())
    assert type(again) is GPT
    torch.testing.assert_close(our_logits(again, X), our_logits(ours, X))


def test_bare_keys_and_old_mask_buffers():
    """GPT2Model's keys (no 'transformer.' prefix, no lm_head) plus the old attn.bias buffers."""
    ref = hf_model()
    sd = dict(ref.transformer.state_dict())
    assert not any(k.startswith("transformer.") for k in sd)
    sd["h.0.attn.bias"] = torch.ones(1, 1, 16, 16).tril()
    sd["h.1.attn.masked_bias"] = torch.tensor(-1e4)
    ours = load_gpt2_weights(GPT(our_config()), sd)
    torch.testing.assert_close(our_logits(ours, X), hf_logits(ref, X), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("fmt", ["safetensors", "pt", "dir"])
def test_load_from_files(tmp_path, fmt):
    ref = hf_model()
    sd = {k: v.contiguous().clone() for k, v in ref.state_dict().items() if k != "lm_head.weight"}
    if fmt == "safetensors":
        from safetensors.torch import save_file

        path = tmp_path / "model.safetensors"
        save_file(sd, str(path))
    else:
        path = tmp_path / "pytorch_model.bin"
        torch.save(sd, path)
    src = tmp_path if fmt == "dir" else path
    ours = load_gpt2_weights(GPT(our_config()), src)
    torch.testing.assert_close(our_logits(ours, X), hf_logits(ref, X), atol=1e-5, rtol=1e-5)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no weights file"):
        load_gpt2_weights(GPT(our_config()), empty)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_gpt2_weights(GPT(our_config()), tmp_path / "nope.safetensors")


def test_untied_model_loads_lm_head():
    ref = hf_model()
    ours = load_gpt2_weights(GPT(our_config(tie_weights=False)), ref.state_dict())
    torch.testing.assert_close(ours.lm_head.weight, ref.lm_head.weight)
    torch.testing.assert_close(our_logits(ours, X), hf_logits(ref, X), atol=1e-5, rtol=1e-5)


def test_clear_errors():
    sd = dict(hf_model().state_dict())
    missing = {k: v for k, v in sd.items() if k != "transformer.h.1.mlp.c_fc.bias"}
    with pytest.raises(KeyError, match=r"Missing keys: transformer\.h\.1\.mlp\.c_fc\.bias"):
        load_gpt2_weights(GPT(our_config()), missing)
    with pytest.raises(KeyError, match=r"Unexpected keys: transformer\.h\.1\.attn\.c_attn"):
        load_gpt2_weights(GPT(our_config(n_layer=1)), sd)
    with pytest.raises(ValueError, match="load_state_dict"):
        load_gpt2_weights(GPT(our_config()), GPT(our_config()).state_dict())
    with pytest.raises(ValueError, match="pos='rope'"):
        load_gpt2_weights(GPT(our_config(pos="rope")), sd)
    with pytest.raises(ValueError, match="shape mismatch"):
        load_gpt2_weights(GPT(our_config(vocab_size=101)), sd)
    different_head = {**sd, "lm_head.weight": torch.zeros_like(sd["lm_head.weight"])}
    with pytest.raises(ValueError, match="tie_weights=False"):
        load_gpt2_weights(GPT(our_config()), different_head)


def test_from_pretrained_reads_local_files_only(tmp_path, monkeypatch):
    monkeypatch.delenv("LLMCOURSE_GPT2_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="path="):
        GPT.from_pretrained("gpt2")
    with pytest.raises(ValueError, match="gpt2-medium"):
        GPT.from_pretrained("gpt3")
    # a made-up tiny size registered like the real ones, saved the way save_pretrained does
    monkeypatch.setitem(hf_module.GPT2_SIZES, "gpt2-test", {"n_layer": 1, "n_head": 2, "n_embd": 16})
    ref = hf_model(n_layer=1, n_embd=16, vocab_size=50257, n_positions=1024)
    folder = tmp_path / "gpt2-test"
    folder.mkdir()
    torch.save(ref.state_dict(), folder / "pytorch_model.bin")
    monkeypatch.setenv("LLMCOURSE_GPT2_DIR", str(tmp_path))
    ours = GPT.from_pretrained("gpt2-test")
    assert ours.config.vocab_size == 50257 and ours.config.block_size == 1024
    x = torch.randint(0, 50257, (1, 8))
    torch.testing.assert_close(our_logits(ours, x), hf_logits(ref, x), atol=1e-5, rtol=1e-5)
