"""Unit tests of the trainer's building blocks: config, LR schedule, AdamW groups,
checkpoint files (atomic writes, weights-only loading, prefixes, RNG states) and metrics."""

from __future__ import annotations

import math
import os
import random

import numpy as np
import pytest
import torch
from torch import nn

from llmcourse.train import (
    CheckpointError,
    TrainConfig,
    configure_optimizer,
    cosine_lr,
    get_lr,
    load_checkpoint,
    load_model_state,
    model_state_dict,
    param_groups,
    save_checkpoint,
    strip_prefixes,
    unwrap_model,
)
from llmcourse.train.checkpoint import capture_rng_state, config_to_dict, restore_rng_state
from llmcourse.train.ddp import dist_info_from_env
from llmcourse.train.optim import fused_adamw_available
from llmcourse.train.metrics import MetricsLogger, flops_per_token, mfu, read_metrics
from train_helpers import TinyLM


pytestmark = pytest.mark.usefixtures("one_thread")



# ============================================================================ TrainConfig

def test_config_roundtrip_and_defaults():
    cfg = TrainConfig(max_iters=300, learning_rate=1e-3, dtype="bf16")
    assert cfg.lr_decay_iters is None and cfg.decay_iters == 300
    assert TrainConfig(max_iters=10, warmup_iters=100).decay_iters == 100
    assert cfg.dtype == "bfloat16"  # normalised
    d = cfg.to_dict()
    assert isinstance(d, dict) and d["max_iters"] == 300
    assert TrainConfig.from_dict(d) == cfg
    assert cfg.tokens_per_iter(world_size=2) == cfg.batch_size * cfg.block_size * 2


def test_config_replace_keeps_whole_run_decay():
    cfg = TrainConfig(max_iters=100, warmup_iters=10)
    longer = cfg.replace(max_iters=400)
    assert longer.decay_iters == 400 and longer.max_iters == 400 and longer.warmup_iters == 10
    fixed = TrainConfig(max_iters=100, lr_decay_iters=80, warmup_iters=10).replace(max_iters=400)
    assert fixed.decay_iters == 80
    with pytest.raises(ValueError, match="max_iters"):
        cfg.replace(max_iters=-1)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": -1e-3}, "learning_rate"),
        ({"min_lr": 1.0, "learning_rate": 0.1}, "min_lr"),
        ({"batch_size": 0}, "batch_size"),
        ({"grad_accum_steps": 1.5}, "grad_accum_steps"),
        ({"beta2": 1.0}, "beta2"),
        ({"init_from": "gpt2"}, "init_from"),
        ({"dtype": "float8"}, "dtype"),
        ({"warmup_iters": 50, "lr_decay_iters": 10}, "lr_decay_iters"),
        ({"patience": 0}, "patience"),
        ({"ddp_backend": "mpi"}, "ddp_backend"),
        ({"grad_clip": float("nan")}, "grad_clip"),
        ({"compile": "yes"}, "compile"),
    ],
)
def test_config_validation_names_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)


def test_config_from_dict_unknown_key():
    with pytest.raises(ValueError, match="unknown TrainConfig field"):
        TrainConfig.from_dict({"max_itres": 10})
    cfg = TrainConfig.from_dict({"max_iters": 10, "future_field": 1}, strict=False)
    assert cfg.max_iters == 10


# ============================================================================ LR schedule

def test_lr_schedule_shape():
    cfg = TrainConfig(learning_rate=1e-3, min_lr=1e-4, warmup_iters=10, lr_decay_iters=110,
                      max_iters=200)
    lrs = [get_lr(i, cfg) for i in range(200)]
    # warmup: strictly increasing, starts above zero, reaches the peak at warmup_iters
    assert 0 < lrs[0] < lrs[1]
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:11]))
    assert lrs[0] == pytest.approx(1e-3 / 11)
    assert lrs[10] == pytest.approx(1e-3)
    assert max(lrs) == pytest.approx(1e-3)
    # cosine: strictly decreasing to min_lr, mid-point halfway between the two
    assert all(a > b for a, b in zip(lrs[10:110], lrs[11:111]))
    assert lrs[60] == pytest.approx(0.5 * (1e-3 + 1e-4))
    assert lrs[35] == pytest.approx(1e-4 + 0.5 * (1 + math.cos(math.pi * 0.25)) * 9e-4)
    # floor
    assert all(lr == pytest.approx(1e-4) for lr in lrs[110:])


def test_lr_schedule_constant_and_edge_cases():
    cfg = TrainConfig(learning_rate=3e-4, decay_lr=False, warmup_iters=100, lr_decay_iters=0)
    assert {get_lr(i, cfg) for i in (0, 50, 5000)} == {3e-4}
    # no warmup: the first step runs at the peak
    assert cosine_lr(0, learning_rate=1.0, min_lr=0.1, warmup_iters=0, lr_decay_iters=10) == 1.0
    # warmup == decay: straight to the floor afterwards
    assert cosine_lr(5, learning_rate=1.0, min_lr=0.1, warmup_iters=5, lr_decay_iters=5) == 0.1
    with pytest.raises(ValueError, match="step"):
        cosine_lr(-1, learning_rate=1.0, min_lr=0.1, warmup_iters=0, lr_decay_iters=10)


# ============================================================================ AdamW groups

def test_weight_decay_groups():
    model = TinyLM()
    groups = param_groups(model, weight_decay=0.1)
    decay, no_decay = groups
    assert sorted(decay["names"]) == ["head.weight", "wte.weight"]
    assert sorted(no_decay["names"]) == ["head.bias", "ln.bias", "ln.weight"]
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"])
    assert all(p.dim() < 2 for p in no_decay["params"])


def test_weight_decay_groups_tied_and_frozen():
    model = TinyLM()
    model.head.weight = model.wte.weight  # tie (V, C) matrices
    model.ln.weight.requires_grad_(False)
    decay, no_decay = param_groups(model, weight_decay=0.5)
    assert decay["names"] == ["wte.weight"]  # the shared tensor appears once
    assert "ln.weight" not in no_decay["names"]
    n_params = sum(len(g["params"]) for g in (decay, no_decay))
    assert n_params == len([p for p in model.parameters() if p.requires_grad])


def test_configure_optimizer_applies_decay_only_to_matrices():
    model = TinyLM()
    opt = configure_optimizer(model, learning_rate=1.0, weight_decay=0.5, betas=(0.9, 0.95))
    assert isinstance(opt, torch.optim.AdamW)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.5, 0.0]
    assert bool(opt.param_groups[0].get("fused")) == fused_adamw_available("cpu")
    assert not configure_optimizer(model, learning_rate=1.0, weight_decay=0.0,
                                   fused=False).param_groups[0].get("fused")
    # Zero gradients: the only change is decoupled weight decay, so 1-D params stay put.
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    for n, p in model.named_parameters():
        if p.dim() >= 2:
            assert torch.allclose(p, before[n] * 0.5)
        else:
            assert torch.equal(p, before[n])
    frozen = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        configure_optimizer(frozen, learning_rate=1e-3, weight_decay=0.1)


# ============================================================================ checkpoints

def test_strip_prefixes_and_compiled_state_dict():
    sd = {"_orig_mod.wte.weight": 1, "module._orig_mod.head.bias": 2, "blocks.0._orig_mod.w": 3}
    assert strip_prefixes(sd) == {"wte.weight": 1, "head.bias": 2, "blocks.0.w": 3}
    with pytest.raises(ValueError, match="same name"):
        strip_prefixes({"a": 1, "_orig_mod.a": 2})

    model = TinyLM(seed=1)
    compiled = torch.compile(model)  # lazy: nothing is compiled until it is called
    assert all(k.startswith("_orig_mod.") for k in compiled.state_dict())
    assert unwrap_model(compiled) is model
    clean = model_state_dict(compiled)
    assert set(clean) == set(model.state_dict())
    fresh = TinyLM(seed=2)
    load_model_state(fresh, compiled.state_dict())  # prefixed keys load too
    for k, v in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v)


def test_save_and_load_roundtrip(tmp_path):
    path = tmp_path / "sub" / "ckpt.pt"
    obj = {"w": torch.arange(5.0), "meta": {"iter": 3, "name": "x", "best": math.inf}, "l": [1, 2]}
    assert save_checkpoint(obj, path) == path
    back = load_checkpoint(path)
    assert torch.equal(back["w"], obj["w"]) and back["meta"] == obj["meta"] and back["l"] == [1, 2]
    assert [p.name for p in path.parent.iterdir()] == ["ckpt.pt"]  # no temp files left


class NotPlainData:
    """A custom class: pickling it would let a file run code on load."""

    def __init__(self) -> None:
        self.payload = "anything"


def test_weights_only_refuses_arbitrary_pickles(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": {}, "extra": NotPlainData()}, path)
    with pytest.raises(CheckpointError, match="refusing to load"):
        load_checkpoint(path)


def test_load_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    bad = tmp_path / "truncated.pt"
    save_checkpoint({"w": torch.randn(1000)}, bad)
    bad.write_bytes(bad.read_bytes()[:300])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(bad)
    lst = tmp_path / "list.pt"
    torch.save([1, 2], lst)
    with pytest.raises(CheckpointError, match="not a checkpoint dict"):
        load_checkpoint(lst)


def test_crash_inside_torch_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    save_checkpoint({"w": torch.ones(100), "iter": 1}, path)
    good_bytes = path.read_bytes()
    real_save = torch.save

    def partial_then_crash(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a zip file")  # a partial write...
        raise OSError("No space left on device")  # ...then the crash

    monkeypatch.setattr(torch, "save", partial_then_crash)
    with pytest.raises(OSError, match="No space"):
        save_checkpoint({"w": torch.zeros(100), "iter": 2}, path)
    monkeypatch.setattr(torch, "save", real_save)
    assert path.read_bytes() == good_bytes
    assert load_checkpoint(path)["iter"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"]


def test_crash_at_rename_and_stale_temp_files(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    save_checkpoint({"iter": 1}, path)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # killed between the fsync and the rename

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"iter": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["iter"] == 1
    # A hard kill leaves its temp file behind; the loader ignores it and the next save cleans up.
    stale = tmp_path / "ckpt.pt.tmp-12345-deadbeef"
    stale.write_bytes(b"garbage")
    assert load_checkpoint(path)["iter"] == 1
    save_checkpoint({"iter": 3}, path)
    assert not stale.exists()
    assert load_checkpoint(path)["iter"] == 3


def test_rng_state_roundtrip_through_weights_only_file(tmp_path):
    gen = torch.Generator().manual_seed(7)
    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    np.random.randn()  # leave numpy with a cached gaussian
    state = capture_rng_state({"batch": gen})
    save_checkpoint({"rng": state}, tmp_path / "rng.pt")
    expected = (torch.rand(3), np.random.randn(3), random.random(), np.random.rand(),
                torch.rand(2, generator=gen))
    torch.manual_seed(99)
    np.random.seed(99)
    random.seed(99)
    gen.manual_seed(99)
    restore_rng_state(load_checkpoint(tmp_path / "rng.pt")["rng"], {"batch": gen})
    got = (torch.rand(3), np.random.randn(3), random.random(), np.random.rand(),
           torch.rand(2, generator=gen))
    assert torch.equal(got[0], expected[0])
    assert np.array_equal(got[1], expected[1])
    assert got[2] == expected[2] and got[3] == expected[3]
    assert torch.equal(got[4], expected[4])
    with pytest.raises(CheckpointError, match="other"):
        restore_rng_state(state, {"other": torch.Generator()})


def test_config_to_dict_variants():
    assert config_to_dict(None) is None
    assert config_to_dict(TinyLM().config)["vocab_size"] == 32
    assert config_to_dict({"a": (1, 2), "d": torch.float32}) == {"a": [1, 2], "d": "torch.float32"}


# ============================================================================ metrics, DDP env

def test_metrics_logger_and_truncate(tmp_path):
    log = MetricsLogger(tmp_path / "m.jsonl")
    for it in range(6):
        log.write({"type": "train", "iter": it, "loss": float(it)})
        if it % 3 == 0:
            log.write({"type": "eval", "iter": it, "val_loss": float("inf")})
    with open(tmp_path / "m.jsonl", "a") as fh:
        fh.write('{"type": "train", "it')  # a line cut short by a crash
    log.truncate_after(3)
    recs = read_metrics(tmp_path / "m.jsonl")
    assert [(r["type"], r["iter"]) for r in recs] == [
        ("train", 0), ("eval", 0), ("train", 1), ("train", 2), ("eval", 3)]
    assert recs[1]["val_loss"] is None  # inf written as null
    MetricsLogger(tmp_path / "off.jsonl", enabled=False).write({"a": 1})
    assert not (tmp_path / "off.jsonl").exists()


def test_flops_and_mfu():
    assert flops_per_token(TinyLM()) is None  # no n_layer / no flops_per_token

    class WithFlops(nn.Module):
        def flops_per_token(self, seq_len=None):
            return 100.0 * (seq_len or 1)

    assert flops_per_token(WithFlops(), 8) == 800.0
    assert mfu(800.0, 1e9, 1.6e12) == pytest.approx(0.5)
    assert mfu(None, 1e9, 1e12) is None and mfu(1.0, 1e9, None) is None


def test_dist_info_from_env():
    assert not dist_info_from_env({}).enabled
    info = dist_info_from_env({"RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "2"})
    assert info.enabled and info.rank == 1 and info.world_size == 2 and not info.is_main
    assert not dist_info_from_env({"RANK": "0", "WORLD_SIZE": "1"}).enabled
    with pytest.raises(ValueError, match="inconsistent"):
        dist_info_from_env({"RANK": "2", "WORLD_SIZE": "2"})


def test_save_refuses_non_plain_objects_before_touching_the_file(tmp_path):
    path = tmp_path / "ckpt.pt"
    save_checkpoint({"iter": 1}, path)
    with pytest.raises(TypeError, match=r"checkpoint\['meta'\]\['x'\] is a numpy.float64"):
        save_checkpoint({"meta": {"x": np.float64(1.0)}}, path)
    with pytest.raises(TypeError, match="TorchVersion"):
        save_checkpoint({"v": torch.__version__}, path)
    assert load_checkpoint(path) == {"iter": 1}
