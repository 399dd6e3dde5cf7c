"""Training monitors (llmcourse.train.monitor), their trainer integration and TensorBoard."""

from __future__ import annotations

import math
import sys

import pytest
import torch

from llmcourse.model import GPT, GPTConfig
from llmcourse.train import TrainConfig, Trainer, read_metrics
from llmcourse.train.monitor import (DEAD_BELOW, HIST_BINS, TrainingMonitor, dead_fraction,
                                     monitor_curves, update_ratio)
from train_helpers import make_tokens, random_batch_fn

VOCAB = 32


def tiny_gpt(seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=VOCAB, block_size=8, n_layer=2, n_head=2, n_embd=16))


def cfg(tmp_path, **kw) -> TrainConfig:
    base = dict(out_dir=str(tmp_path), max_iters=12, batch_size=4, block_size=8,
                learning_rate=3e-3, min_lr=3e-4, warmup_iters=2, eval_interval=6, eval_iters=2,
                log_interval=3, device="cpu", progress=False)
    base.update(kw)
    return TrainConfig(**base)


def hooks(model: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               for m in model.modules())


def test_config_fields_validate(tmp_path):
    assert TrainConfig().monitor_interval is None and TrainConfig().log == "jsonl"
    with pytest.raises(ValueError, match="monitor_interval"):
        cfg(tmp_path, monitor_interval=0)
    with pytest.raises(ValueError, match="log"):
        cfg(tmp_path, log="wandb")


def test_off_means_no_monitor_and_no_hooks(tmp_path, monkeypatch):
    model = tiny_gpt()
    seen = []
    real = torch.nn.Module.register_forward_hook

    def spy(self, *a, **k):
        seen.append(type(self).__name__)
        return real(self, *a, **k)

    monkeypatch.setattr(torch.nn.Module, "register_forward_hook", spy)
    trainer = Trainer(model, cfg(tmp_path), random_batch_fn(make_tokens(vocab=VOCAB)))
    assert trainer.monitor is None and trainer.tensorboard is None
    trainer.fit()
    assert seen == [] and hooks(model) == 0
    assert all(r["type"] != "monitor" for r in read_metrics(tmp_path / "metrics.jsonl"))


def test_records_every_interval_and_removes_hooks(tmp_path):
    model = tiny_gpt()
    trainer = Trainer(model, cfg(tmp_path, monitor_interval=4),
                      random_batch_fn(make_tokens(vocab=VOCAB)))
    trainer.fit()
    assert hooks(model) == 0
    recs = [r for r in read_metrics(tmp_path / "metrics.jsonl") if r["type"] == "monitor"]
    assert [r["iter"] for r in recs] == [0, 4, 8]
    rec = recs[-1]
    assert set(rec["act"]) == {"h.0.mlp", "h.0.resid", "h.1.mlp", "h.1.resid"}
    mlp = rec["act"]["h.1.mlp"]
    assert mlp["in_std"] > 0 and 0 <= mlp["dead_frac"] <= 1 and 0 <= mlp["dead_units"] <= 1
    names = {n for n, _ in model.named_parameters()}
    assert set(rec["grad"]) == names and set(rec["update"]) == names
    assert all(g > 0 for g in rec["grad"].values())
    # lr * Adam step ~ 3e-3 per weight against weights of ~0.02: log10 ratio well below 0.
    assert -4 < rec["update"]["transformer.h.0.attn.c_attn.weight"] < -0.5
    h = rec["hist"]["h.0.mlp"]
    assert len(h["counts"]) == HIST_BINS and sum(h["counts"]) == 4 * 8 * 64  # B*T*4C
    c = monitor_curves(tmp_path)
    assert c["iter"] == [0, 4, 8] and len(c["act"]["h.0.mlp/dead_frac"]) == 3


def test_monitored_run_trains_exactly_like_an_unmonitored_one(tmp_path):
    finals = []
    for name, every in (("off", None), ("on", 1)):
        model = tiny_gpt()
        Trainer(model, cfg(tmp_path / name, monitor_interval=every),
                random_batch_fn(make_tokens(vocab=VOCAB))).fit()
        finals.append([p.detach().clone() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*finals))


def test_resume_with_monitors_is_exact_and_keeps_one_record_per_step(tmp_path):
    tokens = make_tokens(vocab=VOCAB)
    full = tiny_gpt()
    Trainer(full, cfg(tmp_path / "full", monitor_interval=3, max_iters=12, lr_decay_iters=12),
            random_batch_fn(tokens)).fit()
    part = tiny_gpt()
    Trainer(part, cfg(tmp_path / "part", monitor_interval=3, max_iters=6, lr_decay_iters=12),
            random_batch_fn(tokens)).fit()
    again = tiny_gpt(seed=5)
    Trainer(again, cfg(tmp_path / "part", monitor_interval=3, max_iters=12, lr_decay_iters=12,
                          init_from="resume"),
            random_batch_fn(tokens)).fit()
    assert all(torch.equal(a, b) for a, b in zip(full.parameters(), again.parameters()))
    iters = [r["iter"] for r in read_metrics(tmp_path / "part" / "metrics.jsonl")
             if r["type"] == "monitor"]
    assert iters == [0, 3, 6, 9]


def test_dead_units_show_up_when_the_mlp_is_pushed_negative(tmp_path):
    model = tiny_gpt()
    with torch.no_grad():
        model.transformer.h[0].mlp.c_fc.bias.fill_(-10.0)  # every GELU input far below -3
    mon = TrainingMonitor(model, interval=1)
    x = torch.randint(0, VOCAB, (3, 8))
    with mon.watch():
        _, loss = model(x, x)
    loss.backward()
    mon.read_gradients()
    mon.before_update()
    rec = mon.after_update(0)  # no optimizer step: nothing moved
    assert rec["act"]["h.0.mlp"]["dead_frac"] == 1.0 and rec["act"]["h.0.mlp"]["dead_units"] == 1.0
    assert rec["act"]["h.1.mlp"]["dead_units"] < 0.5
    assert all(v == -math.inf for v in rec["update"].values())
    assert hooks(model) == 0


def test_only_the_first_micro_batch_is_recorded():
    model = tiny_gpt()
    mon = TrainingMonitor(model, interval=1, histograms=False)
    with mon.watch():
        model(torch.zeros(2, 8, dtype=torch.long))
        model(torch.randint(0, VOCAB, (5, 8)))
    rec = mon.after_update(0)
    assert "hist" not in rec
    zeros_model_std = rec["act"]["h.0.resid"]["std"]
    with mon.watch():
        model(torch.zeros(2, 8, dtype=torch.long))
    assert mon.after_update(1)["act"]["h.0.resid"]["std"] == pytest.approx(zeros_model_std)


def test_helpers():
    w = torch.full((4, 5), 2.0)
    assert update_ratio(w, w + 0.002) == pytest.approx(-3.0, abs=1e-3)
    assert update_ratio(w, w) == -math.inf
    pre = torch.tensor([[DEAD_BELOW - 1, 0.0], [DEAD_BELOW - 1, DEAD_BELOW - 2]])
    assert dead_fraction(pre) == (pytest.approx(0.75), pytest.approx(0.5))
    with pytest.raises(ValueError, match="interval"):
        TrainingMonitor(tiny_gpt(), interval=0)


def test_tensorboard_events_read_back(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    trainer = Trainer(tiny_gpt(), cfg(tmp_path, monitor_interval=6, log="tensorboard"),
                      random_batch_fn(make_tokens(vocab=VOCAB)))
    trainer.fit()
    acc = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    tags = acc.Tags()
    assert {"train/loss", "train/lr", "eval/val_loss", "act/h.0.mlp/dead_frac",
            "update_log10/transformer.h.0.mlp.c_fc.weight"} <= set(tags["scalars"])
    assert "gelu_input/h.1.mlp" in tags["histograms"]
    logged = [r for r in read_metrics(tmp_path / "metrics.jsonl") if r["type"] == "train"]
    events = acc.Scalars("train/loss")
    assert [e.step for e in events] == [r["iter"] for r in logged]
    assert [e.value for e in events] == pytest.approx([r["loss"] for r in logged], rel=1e-6)
    assert [e.step for e in acc.Scalars("eval/val_loss")] == [0, 6, 12]


def test_tensorboard_missing_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ValueError, match="pip install tensorboard") as exc:
        Trainer(tiny_gpt(), cfg(tmp_path, log="tensorboard"),
                random_batch_fn(make_tokens(vocab=VOCAB)))
    assert "\n" not in str(exc.value)
