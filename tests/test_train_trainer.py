"""Behaviour of the Trainer: exact resume, crash safety, NaN guard, early stopping,
checkpoint contents, metrics file, and a run with the course's GPT."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from llmcourse.train import (
    CheckpointError,
    TrainConfig,
    Trainer,
    TrainingDiverged,
    get_lr,
    load_checkpoint,
    read_metrics,
)
from llmcourse.train import checkpoint as ckpt_mod
from train_helpers import TinyConfig, TinyLM, make_tokens, random_batch_fn


pytestmark = pytest.mark.usefixtures("one_thread")


TOKENS = make_tokens()


def make_cfg(tmp_path, name="run", **kw) -> TrainConfig:
    base = dict(
        out_dir=str(tmp_path / name), max_iters=12, batch_size=4, block_size=8,
        grad_accum_steps=2, learning_rate=3e-2, min_lr=3e-3, warmup_iters=2,
        eval_interval=4, eval_iters=2, log_interval=1, always_save_checkpoint=True,
        device="cpu", progress=False, seed=123, grad_clip=1.0, weight_decay=0.1,
    )
    base.update(kw)
    return TrainConfig(**base)


def train_losses(history):
    return {r["iter"]: r["loss"] for r in history if r["type"] == "train"}


class Payload:
    """Not plain data: a pickle of it could run code when loaded."""


class Crash(Exception):
    """Stands for the process being killed."""


def crashing(get_batch, after_train_calls: int):
    calls = {"n": 0}

    def wrapped(split, generator=None):
        if split == "train":
            calls["n"] += 1
            if calls["n"] > after_train_calls:
                raise Crash("killed")
        return get_batch(split, generator=generator)

    return wrapped


# ============================================================================ exact resume

def test_resume_reproduces_uninterrupted_run_bitwise(tmp_path):
    model_cfg = TinyConfig(dropout=0.3)  # dropout: the torch RNG must be restored too
    get_batch = random_batch_fn(TOKENS)  # uses the trainer's generator, numpy and random

    straight = Trainer(TinyLM(model_cfg, seed=0), make_cfg(tmp_path, "straight"), get_batch)
    h_straight = straight.fit()
    ref = train_losses(h_straight)
    assert sorted(ref) == list(range(12))

    # Crash in step 6 (train-split batches: 2 per evaluation, 2 per step); last checkpoint: 4.
    crashed = Trainer(TinyLM(model_cfg, seed=0), make_cfg(tmp_path, "crash"),
                      crashing(get_batch, after_train_calls=2 + 8 + 2 + 4))
    with pytest.raises(Crash):
        crashed.fit()
    assert crashed.iter_num == 6
    assert train_losses(crashed.history) == {i: ref[i] for i in range(6)}
    assert load_checkpoint(tmp_path / "crash" / "ckpt.pt")["iter_num"] == 4

    # A new process: different initial weights and seeds, then resume.
    torch.manual_seed(999)
    resumed = Trainer(TinyLM(model_cfg, seed=5),
                      make_cfg(tmp_path, "crash", init_from="resume"), get_batch)
    assert resumed.iter_num == 4
    h_resumed = resumed.fit()
    got = train_losses(h_resumed)
    assert sorted(got) == list(range(4, 12))
    for it in range(4, 12):
        assert got[it] == ref[it], f"iteration {it}: {got[it]!r} != {ref[it]!r}"
    evals = lambda h: [(r["iter"], r["val_loss"]) for r in h if r["type"] == "eval"]
    assert evals(h_resumed) == [e for e in evals(h_straight) if e[0] > 4]
    for k, v in straight.raw_model.state_dict().items():
        assert torch.equal(resumed.raw_model.state_dict()[k], v), k

    # metrics.jsonl of the resumed run: every step exactly once, no duplicates from the crash.
    recs = read_metrics(tmp_path / "crash" / "metrics.jsonl")
    assert [r["iter"] for r in recs if r["type"] == "train"] == list(range(12))
    assert [r["iter"] for r in recs if r["type"] == "eval"] == [0, 4, 8, 12]


@pytest.mark.parametrize("stop_at", [7, 8, 5])
def test_resume_is_exact_from_every_checkpoint_even_off_the_eval_grid(tmp_path, stop_at):
    """A run stopped at ``stop_at`` (7 and 5: not evaluation steps, so the stop adds a final
    evaluation an uninterrupted run does not make) and resumed to 12 equals one 12-step run:
    every loss, evaluation, the weights, and early stopping's bookkeeping."""
    model_cfg = TinyConfig(dropout=0.3)
    get_batch = random_batch_fn(TOKENS)
    common = dict(lr_decay_iters=12, patience=3, always_save_checkpoint=False)
    straight = Trainer(TinyLM(model_cfg, seed=0), make_cfg(tmp_path, "straight", **common),
                       get_batch)
    h_straight = straight.fit()

    first = Trainer(TinyLM(model_cfg, seed=0),
                    make_cfg(tmp_path, "stop", max_iters=stop_at, **common), get_batch)
    first.fit()
    ckpt = load_checkpoint(tmp_path / "stop" / "ckpt.pt")
    assert ckpt["iter_num"] == stop_at
    assert (ckpt["resume_state"] is None) == (stop_at % 4 == 0)  # off the grid: pre-eval state
    resumed = Trainer(TinyLM(model_cfg, seed=3),
                      make_cfg(tmp_path, "stop", init_from="resume", **common), get_batch)
    h_resumed = resumed.fit()
    ref, got = train_losses(h_straight), train_losses(h_resumed)
    assert got == {i: ref[i] for i in range(stop_at, 12)}
    evals = lambda h: [(r["iter"], r["val_loss"], r["best_val_loss"]) for r in h
                       if r["type"] == "eval"]
    assert evals(h_resumed) == [e for e in evals(h_straight) if e[0] > stop_at]
    assert resumed.evals_since_improvement == straight.evals_since_improvement
    for k, v in straight.raw_model.state_dict().items():
        assert torch.equal(resumed.raw_model.state_dict()[k], v), k


def test_checkpoint_contents_are_plain_and_complete(tmp_path):
    cfg = make_cfg(tmp_path, max_iters=4, eval_interval=2, grad_accum_steps=1)
    trainer = Trainer(TinyLM(), cfg, random_batch_fn(TOKENS))
    trainer.fit()
    ck = load_checkpoint(tmp_path / "run" / "ckpt.pt")  # weights_only=True inside
    for key in ("model", "optimizer", "scaler", "model_config", "train_config", "iter_num",
                "best_val_loss", "evals_since_improvement", "last_eval_iter", "rng"):
        assert key in ck, key
    assert ck["iter_num"] == 4 and ck["last_eval_iter"] == 4
    assert ck["model_config"] == TinyConfig().to_dict()
    assert TrainConfig.from_dict(ck["train_config"]) == cfg
    assert set(ck["model"]) == set(TinyLM().state_dict())
    rng = ck["rng"][0]
    assert {"torch_cpu", "cuda", "numpy", "python", "generators"} <= set(rng)
    assert "batch" in rng["generators"]
    assert math.isfinite(ck["best_val_loss"])
    assert (tmp_path / "run" / "best.pt").is_file()


def test_resume_refuses_unsafe_or_foreign_files(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    torch.save({"format": "llmcourse-checkpoint", "model": Payload()}, out / "ckpt.pt")
    with pytest.raises(CheckpointError, match="refusing to load"):
        Trainer(TinyLM(), make_cfg(tmp_path, init_from="resume"), random_batch_fn(TOKENS))
    torch.save({"weights": torch.ones(2)}, out / "ckpt.pt")
    with pytest.raises(CheckpointError, match="not an llmcourse trainer checkpoint"):
        Trainer(TinyLM(), make_cfg(tmp_path, init_from="resume"), random_batch_fn(TOKENS))
    (out / "ckpt.pt").unlink()
    with pytest.raises(FileNotFoundError, match="nothing to resume.*without --resume"):
        Trainer(TinyLM(), make_cfg(tmp_path, init_from="resume"), random_batch_fn(TOKENS))


def test_resume_into_wrong_model_says_so(tmp_path):
    Trainer(TinyLM(), make_cfg(tmp_path, max_iters=4, grad_accum_steps=1),
            random_batch_fn(TOKENS)).fit()
    wider = TinyLM(TinyConfig(n_embd=24))
    with pytest.raises(CheckpointError, match="do not fit this model") as e:
        Trainer(wider, make_cfg(tmp_path, init_from="resume"), random_batch_fn(TOKENS))
    assert "the checkpoint's model differs in n_embd 16 -> 24" in str(e.value)
    assert "another out_dir" in str(e.value) and "\n" not in str(e.value)


# ============================================================================ crash while saving

def test_crash_during_checkpoint_save_keeps_previous(tmp_path, monkeypatch):
    cfg = make_cfg(tmp_path, max_iters=8, grad_accum_steps=1)
    get_batch = random_batch_fn(TOKENS)
    trainer = Trainer(TinyLM(), cfg, get_batch)
    trainer.fit()
    path = tmp_path / "run" / "ckpt.pt"
    before = load_checkpoint(path)
    assert before["iter_num"] == 8

    trainer.config = cfg.replace(max_iters=12)
    real_save = torch.save

    def dies_half_way(obj, f, *a, **k):
        f.write(b"PK\x03\x04" + b"\0" * 64)
        raise OSError("I/O error while writing")

    monkeypatch.setattr(torch, "save", dies_half_way)
    with pytest.raises(OSError, match="I/O error"):
        trainer.fit()  # first save, at step 12, dies
    monkeypatch.setattr(torch, "save", real_save)

    after = load_checkpoint(path)
    assert after["iter_num"] == 8
    for k, v in before["model"].items():
        assert torch.equal(after["model"][k], v)
    leftovers = [p.name for p in path.parent.iterdir() if ".tmp" in p.name]
    assert leftovers == []
    # and a stale temp file from a hard kill does not confuse resuming
    (path.parent / "ckpt.pt.tmp-4242-0badf00d").write_bytes(b"\x00partial")
    resumed = Trainer(TinyLM(), cfg.replace(init_from="resume"), get_batch)
    assert resumed.iter_num == 8


def test_killed_during_rename_keeps_previous(tmp_path, monkeypatch):
    cfg = make_cfg(tmp_path, max_iters=4, grad_accum_steps=1)
    trainer = Trainer(TinyLM(), cfg, random_batch_fn(TOKENS))
    trainer.fit()
    path = tmp_path / "run" / "ckpt.pt"
    good = path.read_bytes()

    def killed(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt_mod.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        trainer.save()
    monkeypatch.undo()
    assert path.read_bytes() == good
    assert sorted(p.name for p in path.parent.iterdir()) == ["best.pt", "ckpt.pt", "metrics.jsonl"]


# ============================================================================ NaN guard

class NaNAfter(TinyLM):
    """Its training loss turns NaN from the ``bad_step``-th optimizer step on."""

    def __init__(self, bad_step: int, accum: int):
        super().__init__()
        self.bad_call = bad_step * accum
        self.calls = 0

    def forward(self, idx, targets=None):
        logits, loss = super().forward(idx, targets)
        if self.training:
            if self.calls >= self.bad_call:
                loss = loss * float("nan")
            self.calls += 1
        return logits, loss


def test_nan_loss_stops_with_iteration_and_keeps_checkpoint(tmp_path):
    cfg = make_cfg(tmp_path, max_iters=20, log_interval=5, eval_interval=4)
    trainer = Trainer(NaNAfter(bad_step=7, accum=2), cfg, random_batch_fn(TOKENS))
    ckpt = tmp_path / "run" / "ckpt.pt"
    with pytest.raises(TrainingDiverged, match="iteration 7") as info:
        trainer.fit()
    err = info.value
    assert isinstance(err, RuntimeError)
    assert err.iteration == 7 and math.isnan(err.value) and err.what == "training loss"
    # Checked before the evaluation at step 8: the step-4 checkpoint is the last one written.
    ck = load_checkpoint(ckpt)
    assert ck["iter_num"] == 4
    assert all(torch.isfinite(v).all() for v in ck["model"].values())
    recs = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert recs[-1] == {"type": "diverged", "iter": 7, "loss": None}


def test_huge_learning_rate_diverges_cleanly(tmp_path):
    class Fragile(TinyLM):
        def forward(self, idx, targets=None):
            logits = self.head(self.wte(idx)) ** 3  # no norm: explodes under a huge lr
            return logits, F.cross_entropy(logits.flatten(0, 1), targets.flatten())

    cfg = make_cfg(tmp_path, max_iters=200, learning_rate=1e6, min_lr=0.0, grad_clip=0.0,
                   warmup_iters=0, weight_decay=0.0, eval_interval=1000, log_interval=10)
    with pytest.raises(TrainingDiverged, match="not finite") as info:
        Trainer(Fragile(), cfg, random_batch_fn(TOKENS)).fit()
    assert 0 <= info.value.iteration < 200
    assert not (tmp_path / "run" / "ckpt.pt").exists()  # nothing saved from a diverged run


def test_save_refuses_nan_weights(tmp_path):
    trainer = Trainer(TinyLM(), make_cfg(tmp_path), random_batch_fn(TOKENS))
    with torch.no_grad():
        trainer.raw_model.head.bias[0] = float("inf")
    with pytest.raises(TrainingDiverged, match="weights"):
        trainer.save()
    assert not (tmp_path / "run" / "ckpt.pt").exists()


# ============================================================================ early stopping

class ScriptedVal(TinyLM):
    """Validation loss follows a script, one value per evaluation (val batches start with
    token -1 + vocab, i.e. the sentinel 31)."""

    def __init__(self, script):
        super().__init__()
        self.script = script
        self.val_calls = 0

    def forward(self, idx, targets=None):
        logits, loss = super().forward(idx, targets)
        if not self.training and bool((idx[:, 0] == 31).all()):
            value = self.script[min(self.val_calls // 2, len(self.script) - 1)]  # eval_iters=2
            self.val_calls += 1
            loss = loss * 0 + value
        return logits, loss


def test_early_stopping_with_patience(tmp_path):
    base = random_batch_fn(TOKENS)

    def get_batch(split, generator=None):
        x, y = base(split, generator=generator)
        if split == "val":
            x[:, 0] = 31
        return x, y

    script = [3.0, 2.0, 2.5, 2.25, 2.125, 1.0, 0.5]  # exact in float32
    cfg = make_cfg(tmp_path, max_iters=100, eval_interval=2, patience=3,
                   always_save_checkpoint=False, grad_accum_steps=1, log_interval=50)
    trainer = Trainer(ScriptedVal(script), cfg, get_batch)
    history = trainer.fit()
    evals = [r for r in history if r["type"] == "eval"]
    assert [r["val_loss"] for r in evals] == [3.0, 2.0, 2.5, 2.25, 2.125]
    assert trainer.stop_reason == "early_stopping"
    assert trainer.iter_num == 8 and trainer.best_val_loss == 2.0
    best = load_checkpoint(tmp_path / "run" / "best.pt")
    assert best["iter_num"] == 2 and best["best_val_loss"] == 2.0
    assert load_checkpoint(tmp_path / "run" / "ckpt.pt")["iter_num"] == 8  # final resume point

    no_patience = make_cfg(tmp_path, "b", max_iters=12, eval_interval=2, grad_accum_steps=1,
                           log_interval=50)
    t2 = Trainer(ScriptedVal(script), no_patience, get_batch)
    t2.fit()
    assert t2.stop_reason == "max_iters" and t2.iter_num == 12


# ============================================================================ metrics & misc

class WithFlops(TinyLM):
    def flops_per_token(self, seq_len=None):
        return 6.0 * sum(p.numel() for p in self.parameters())


def test_metrics_file_and_history(tmp_path):
    cfg = make_cfg(tmp_path, max_iters=9, log_interval=2, eval_interval=3, grad_clip=1e-3,
                   peak_flops=1e9, grad_accum_steps=1)
    trainer = Trainer(WithFlops(), cfg, random_batch_fn(TOKENS))
    history = trainer.fit()
    recs = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert recs == history
    train = [r for r in recs if r["type"] == "train"]
    evals = [r for r in recs if r["type"] == "eval"]
    assert [r["iter"] for r in train] == [0, 2, 4, 6, 8]
    assert [r["iter"] for r in evals] == [0, 3, 6, 9]
    fpt = trainer.raw_model.flops_per_token()
    for r in train:
        assert set(r) >= {"iter", "loss", "lr", "grad_norm", "tokens_per_s", "mfu", "ms_per_iter"}
        assert r["lr"] == get_lr(r["iter"], cfg)
        assert r["grad_norm"] > 1e-3  # reported before clipping to 1e-3
        assert r["tokens_per_s"] > 0 and r["ms_per_iter"] > 0
        assert r["mfu"] == pytest.approx(fpt * r["tokens_per_s"] / 1e9)
    for r in evals:
        assert math.isfinite(r["train_loss"]) and math.isfinite(r["val_loss"])
        assert r["best_val_loss"] <= r["val_loss"]
    # a new run from scratch in the same directory is refused, the checkpoints kept ...
    before = (tmp_path / "run" / "ckpt.pt").read_bytes()
    with pytest.raises(FileExistsError, match="init_from='resume'"):
        Trainer(TinyLM(), cfg.replace(max_iters=1), random_batch_fn(TOKENS))
    assert (tmp_path / "run" / "ckpt.pt").read_bytes() == before
    # ... unless asked to overwrite; it then starts a new log
    Trainer(TinyLM(), cfg.replace(max_iters=1, overwrite=True), random_batch_fn(TOKENS)).fit()
    assert [r["iter"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl")] == [0, 0, 1]
    # without clipping the norm is still reported on logged steps; MFU unknown -> null
    cfg2 = make_cfg(tmp_path, "b", max_iters=3, grad_clip=0.0, grad_accum_steps=1)
    h2 = Trainer(TinyLM(), cfg2, random_batch_fn(TOKENS)).fit()
    t2 = [r for r in h2 if r["type"] == "train"]
    assert all(r["grad_norm"] > 0 and r["mfu"] is None for r in t2)


def test_estimate_loss_restores_mode_and_is_deterministic(tmp_path):
    get_batch = random_batch_fn(TOKENS, use_global_rngs=False)  # batches: the generator only
    trainer = Trainer(TinyLM(TinyConfig(dropout=0.5)), make_cfg(tmp_path), get_batch)
    trainer.raw_model.train()
    g = trainer.generator.get_state()
    a = trainer.estimate_loss(eval_iters=3)
    assert trainer.raw_model.training
    trainer.generator.set_state(g)
    trainer.raw_model.eval()
    b = trainer.estimate_loss(eval_iters=3)
    assert not trainer.raw_model.training
    assert a == b  # dropout is off inside the estimate
    assert set(a) == {"train", "val"}


def test_get_batch_without_generator_and_bad_inputs(tmp_path):
    base = random_batch_fn(TOKENS)
    gen = torch.Generator().manual_seed(0)
    trainer = Trainer(TinyLM(), make_cfg(tmp_path, max_iters=2, grad_accum_steps=1),
                      lambda split: base(split, generator=gen), generator=gen)
    assert trainer.generator is gen
    trainer.fit()
    ck = load_checkpoint(tmp_path / "run" / "ckpt.pt")
    assert torch.equal(ck["rng"][0]["generators"]["batch"], gen.get_state())
    with pytest.raises(TypeError, match="TrainConfig"):
        Trainer(TinyLM(), {"max_iters": 3}, base)  # type: ignore[arg-type]

    class NoLoss(TinyLM):
        def forward(self, idx, targets=None):
            return super().forward(idx)[0], None

    with pytest.raises(TypeError, match="returned no loss"):
        Trainer(NoLoss(), make_cfg(tmp_path, "c"), base).fit()


def test_compiled_model_checkpoint_has_no_orig_mod_prefix(tmp_path):
    cfg = make_cfg(tmp_path, compile=True)
    trainer = Trainer(TinyLM(), cfg, random_batch_fn(TOKENS))  # compiles lazily: not called
    assert any(k.startswith("_orig_mod.") for k in trainer.model.state_dict())
    path = trainer.save()
    keys = set(load_checkpoint(path)["model"])
    assert keys == set(TinyLM().state_dict())


def test_compiled_training_runs_and_matches_eager(tmp_path, monkeypatch):
    """Trainer(compile=True).fit() end to end: its evaluation and training graphs, a checkpoint
    without the wrapper's prefix, and a resume from it. torch.compile is given the aot_eager
    backend (Inductor needs a C++ compiler and minutes on 2 cores); the Trainer's wiring is the
    same whatever the backend, and on a GPU benchmarks/gpu_acceptance.py runs it with Inductor."""
    import functools

    from llmcourse.train import trainer as trainer_mod

    eager = Trainer(TinyLM(), make_cfg(tmp_path, "eager", max_iters=4), random_batch_fn(TOKENS)).fit()
    monkeypatch.setattr(trainer_mod.torch, "compile",
                        functools.partial(torch.compile, backend="aot_eager"))
    cfg = make_cfg(tmp_path, "compiled", max_iters=4, compile=True)
    compiled = Trainer(TinyLM(), cfg, random_batch_fn(TOKENS)).fit()
    want, got = train_losses(eager), train_losses(compiled)
    assert got.keys() == want.keys()
    for it in want:
        assert got[it] == pytest.approx(want[it], rel=1e-4, abs=1e-5)
    keys = set(load_checkpoint(tmp_path / "compiled" / "ckpt.pt")["model"])
    assert keys == set(TinyLM().state_dict())
    resumed = Trainer(TinyLM(), dataclasses.replace(cfg, max_iters=6, init_from="resume"),
                      random_batch_fn(TOKENS)).fit()
    assert min(train_losses(resumed)) > min(got)   # it went on from the checkpoint


# ============================================================================ with the GPT

def test_trains_the_course_gpt(tmp_path):
    model_mod = pytest.importorskip("llmcourse.model")
    data_mod = pytest.importorskip("llmcourse.data")
    gcfg = model_mod.GPTConfig(vocab_size=32, block_size=8, n_layer=1, n_head=2, n_embd=16,
                               dropout=0.1)
    torch.manual_seed(0)
    model = model_mod.GPT(gcfg)
    train, val = TOKENS[:3000].numpy(), TOKENS[3000:].numpy()

    def get_batch(split, generator=None):
        return data_mod.get_batch(train if split == "train" else val, 8, 8, "cpu", generator)

    cfg = make_cfg(tmp_path, max_iters=30, eval_interval=10, log_interval=10, peak_flops=1e12,
                   grad_accum_steps=1, learning_rate=1e-2, min_lr=1e-3)
    trainer = Trainer(model, cfg, get_batch)
    history = trainer.fit()
    evals = [r for r in history if r["type"] == "eval"]
    assert evals[-1]["val_loss"] < evals[0]["val_loss"] - 0.3
    assert all(r["mfu"] is not None for r in history if r["type"] == "train")
    ck = load_checkpoint(tmp_path / "run" / "ckpt.pt")
    assert ck["model_config"] == gcfg.to_dict()
    rebuilt = model_mod.GPT(model_mod.GPTConfig.from_dict(ck["model_config"]))
    rebuilt.load_state_dict(ck["model"])
    resumed = Trainer(rebuilt, cfg.replace(init_from="resume", max_iters=40), get_batch)
    assert resumed.iter_num == 30
    assert resumed.fit()[-1]["iter"] == 40


def test_gradient_accumulation_equals_one_big_batch(tmp_path, monkeypatch):
    """accum 2 x batch 4 produces the gradient of one batch of 8 with the same rows."""
    x, y = random_batch_fn(TOKENS, batch_size=8, use_global_rngs=False)("train",
                                                                       torch.Generator())
    halves = iter([(x[:4], y[:4]), (x[4:], y[4:])])
    grads = {}

    def capture(trainer, key):
        def step(*a, **k):
            grads[key] = [p.grad.clone() for p in trainer._params]
        monkeypatch.setattr(trainer.optimizer, "step", step)

    big = Trainer(TinyLM(), make_cfg(tmp_path, "big", grad_accum_steps=1, grad_clip=0.0),
                  lambda split: (x, y))
    capture(big, "big")
    big._train_step(need_norm=True)
    small = Trainer(TinyLM(), make_cfg(tmp_path, "small", grad_accum_steps=2, grad_clip=0.0),
                    lambda split: next(halves))
    capture(small, "small")
    loss, norm, tokens = small._train_step(need_norm=True)
    assert tokens == 64
    for a, b in zip(grads["big"], grads["small"]):
        assert torch.allclose(a, b, atol=1e-6)
    full_loss = TinyLM()(x, y)[1]
    assert loss.item() == pytest.approx(full_loss.item(), abs=1e-6)
