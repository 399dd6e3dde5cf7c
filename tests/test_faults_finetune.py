"""Bad input to the fine-tuning API (issue 24): one clear ValueError, nothing changed.

Adapters that do not fit the model, files that are not adapters (never loaded with pickle's
full powers), settings that would turn the losses into NaN, out-of-range target ids, and
adapter files that are only replaced when asked and written atomically.
"""

from __future__ import annotations

import errno
import math
import pickle

import pytest
import torch

from llmcourse.finetune import (LoRALinear, apply_lora, distillation_loss, dpo_loss, load_lora,
                                lora_modules, save_lora, soften)
from llmcourse.model import GPT, GPTConfig

pytestmark = pytest.mark.usefixtures("one_thread")

NOT_AN_ADAPTER = ("is not an llmcourse LoRA adapter file and was not loaded; do not load it with "
                  "torch.load(weights_only=False), which runs any code the file holds: use only "
                  "adapters written by save_lora")


def _gpt(n_layer: int = 2) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=23, block_size=12, n_layer=n_layer, n_head=2, n_embd=16)).eval()


def _state(model: torch.nn.Module) -> dict:
    """Everything a refused call must leave as it was: names, values, requires_grad."""
    return {n: (p.detach().clone(), p.requires_grad) for n, p in model.named_parameters()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k][0], b[k][0]) and a[k][1] == b[k][1]
                                        for k in a)


def test_an_adapter_for_fewer_layers_is_refused(tmp_path):
    path = save_lora(apply_lora(_gpt(n_layer=1), r=2, alpha=4), tmp_path / "one.pt")
    data = path.read_bytes()
    model = _gpt(n_layer=2)
    before = _state(model)
    with pytest.raises(ValueError) as info:
        load_lora(model, path)
    assert str(info.value) == (
        f"{path} holds adapters for 1 block(s) (3 layers), this model has 2 (6 such layers): "
        "'transformer.h.1.attn.c_attn' would get none; load it into a model of the depth "
        "(n_layer) it was trained on")
    assert _same(_state(model), before) and next(lora_modules(model), None) is None
    assert path.read_bytes() == data


class Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("kind", ["random bytes", "empty", "pickled object", "plain pickle"])
def test_a_file_that_is_not_an_adapter_is_never_unpickled(tmp_path, capsys, kind):
    path = tmp_path / "adapter.pt"
    if kind == "random bytes":
        path.write_bytes(bytes(range(256)) * 4)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "pickled object":
        torch.save({"format": "llmcourse-lora-v1", "x": Payload()}, path)
    else:
        path.write_bytes(pickle.dumps(Payload()))
    data = path.read_bytes()
    model = _gpt()
    before = _state(model)
    with pytest.raises(ValueError) as info:
        load_lora(model, path)
    assert str(info.value) == f"{path} {NOT_AN_ADAPTER}"
    assert "will likely succeed" not in str(info.value)
    assert "this must never run" not in capsys.readouterr().out
    assert _same(_state(model), before) and path.read_bytes() == data


def test_a_damaged_adapter_file_is_refused(tmp_path):
    path = tmp_path / "damaged.pt"
    torch.save({"format": "llmcourse-lora-v1", "modules": {"transformer.h.0.attn.c_attn":
                {"r": 2, "alpha": 4.0}}, "state_dict": {}}, path)
    with pytest.raises(ValueError) as info:
        load_lora(_gpt(), path)
    assert str(info.value) == (f"{path} is a damaged LoRA adapter file (settings or tensors "
                               "missing or invalid); save the adapter again with "
                               "save_lora(model, path)")


@pytest.mark.parametrize("alpha", [math.inf, math.nan, 0.0, -1.0])
def test_lora_alpha_must_be_finite_and_positive(alpha):
    with pytest.raises(ValueError) as info:
        LoRALinear(torch.nn.Linear(4, 4), r=2, alpha=alpha)
    assert str(info.value) == f"alpha={alpha!r} must be a finite number > 0 (e.g. alpha = 2 * r)"
    model = _gpt()
    before = _state(model)
    with pytest.raises(ValueError):
        apply_lora(model, r=2, alpha=alpha)
    assert _same(_state(model), before)  # nothing frozen, no adapter added


@pytest.mark.parametrize("T", [math.inf, math.nan, 0.0, -2.0])
def test_temperature_must_be_finite_and_positive(T):
    s = torch.randn(3, 5)
    want = (f"T must be > 0 and finite, got {T!r}; use T=1 for the model's own distribution, "
            "2 to 5 to soften it")
    for call in (lambda: soften(s, T), lambda: distillation_loss(s, s, torch.tensor([0, 1, 2]), T=T)):
        with pytest.raises(ValueError) as info:
            call()
        assert str(info.value) == want


@pytest.mark.parametrize("alpha", [math.inf, math.nan, -0.1])
def test_distillation_alpha_must_lie_in_0_1(alpha):
    s = torch.randn(3, 5)
    with pytest.raises(ValueError, match="alpha must lie in"):
        distillation_loss(s, s, torch.tensor([0, 1, 2]), alpha=alpha)


@pytest.mark.parametrize("bad", [5, 99, -2])
def test_distillation_target_outside_the_vocabulary(bad):
    s = torch.randn(2, 3, 5)
    targets = torch.tensor([[0, 1, -1], [bad, 2, 3]])
    with pytest.raises(ValueError) as info:
        distillation_loss(s, s, targets)
    assert str(info.value) == (f"target id {bad} is outside the logits' vocabulary (V = 5, ids "
                               "0..4); targets are token ids, or -1 to skip a position")


@pytest.mark.parametrize("beta", [math.inf, math.nan, 0.0, -1.0])
def test_dpo_beta_must_be_finite_and_positive(beta):
    a = torch.zeros(2)
    with pytest.raises(ValueError) as info:
        dpo_loss(a, a, a, a, beta=beta)
    assert str(info.value) == f"beta must be > 0 and finite, got {beta!r} (0.1 is the usual start)"


def test_dpo_on_an_empty_batch():
    e = torch.zeros(0)
    with pytest.raises(ValueError) as info:
        dpo_loss(e, e, e, e)
    assert str(info.value) == ("the batch is empty (B = 0): the mean loss of no pairs is "
                               "undefined; give at least one preference pair")


def test_save_lora_replaces_a_file_only_when_asked(tmp_path):
    model = apply_lora(_gpt(), r=2, alpha=4)
    path = tmp_path / "adapter.pt"
    path.write_bytes(b"the user's file")
    with pytest.raises(FileExistsError) as info:
        save_lora(model, path)
    assert str(info.value) == (f"{path} exists; save_lora never replaces a file unless asked: "
                               "give a new path, or pass overwrite=True")
    assert path.read_bytes() == b"the user's file"
    save_lora(model, path, overwrite=True)
    load_lora(_gpt(), path)  # a real adapter now
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter.pt"]  # no temporary file left


def test_a_failed_save_keeps_the_old_adapter(tmp_path, monkeypatch):
    model = apply_lora(_gpt(), r=2, alpha=4)
    path = save_lora(model, tmp_path / "adapter.pt")
    data = path.read_bytes()

    def full_disk(obj, f, *args, **kwargs):
        f.write(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError) as info:
        save_lora(model, path, overwrite=True)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(path)
    assert path.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter.pt"]
