"""The from-scratch optimizers equal PyTorch's, clip_grad_norm equals torch's, and the Trainer
can train with ours (TrainConfig.optimizer="llmcourse")."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from llmcourse.train import (
    SGD,
    Adam,
    AdamW,
    TrainConfig,
    Trainer,
    clip_grad_norm,
    configure_optimizer,
    param_groups,
)
from train_helpers import TinyLM, make_tokens, random_batch_fn

pytestmark = pytest.mark.usefixtures("one_thread")


class SmallNet(nn.Module):
    """Embedding, LayerNorm, two Linear layers with biases: every kind of parameter."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.wte = nn.Embedding(20, 16)
        self.ln = nn.LayerNorm(16)
        self.fc = nn.Linear(16, 32)
        self.head = nn.Linear(32, 20)

    def forward(self, idx, targets):
        x = F.gelu(self.fc(self.ln(self.wte(idx))))       # (B, T, 32)
        logits = self.head(x)                             # (B, T, 20)
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


def run(model: nn.Module, opt: torch.optim.Optimizer, steps: int = 50, clip: float = 0.0,
        lr_schedule=None) -> list[float]:
    g = torch.Generator().manual_seed(1)
    losses = []
    for step in range(steps):
        if lr_schedule is not None:
            for group in opt.param_groups:
                group["lr"] = lr_schedule(step)
        x = torch.randint(0, 20, (8, 6), generator=g)
        y = torch.randint(0, 20, (8, 6), generator=g)
        loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        losses.append(loss.item())
    return losses


def assert_same_weights(a: nn.Module, b: nn.Module, atol: float = 1e-5) -> None:
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        diff = (pa - pb).abs().max().item()
        assert diff <= atol, f"{name}: max |difference| {diff:.2e}"


def groups(model: nn.Module, wd: float):
    out = param_groups(model, wd)
    for g in out:
        g.pop("names")
    return out


def test_adamw_equals_torch_over_50_steps_with_decay_and_groups():
    ours, ref = SmallNet(), SmallNet()
    kw = dict(lr=3e-3, betas=(0.9, 0.95), eps=1e-8)
    la = run(ours, AdamW(groups(ours, 0.1), **kw), clip=1.0,
             lr_schedule=lambda s: 3e-3 * min(1.0, (s + 1) / 10))
    lb = run(ref, torch.optim.AdamW(groups(ref, 0.1), foreach=False, **kw), clip=1.0,
             lr_schedule=lambda s: 3e-3 * min(1.0, (s + 1) / 10))
    assert la == pytest.approx(lb, abs=1e-5)
    assert_same_weights(ours, ref)
    # the decay really acted: with weight decay 0 the result differs
    plain = SmallNet()
    run(plain, AdamW(groups(plain, 0.0), **kw), clip=1.0,
        lr_schedule=lambda s: 3e-3 * min(1.0, (s + 1) / 10))
    assert (plain.fc.weight - ours.fc.weight).abs().max() > 1e-5


def test_adamw_equals_fused_torch_adamw():
    ours, ref = SmallNet(), SmallNet()
    kw = dict(lr=1e-2, betas=(0.9, 0.95), weight_decay=0.1)
    run(ours, AdamW(ours.parameters(), **kw))
    run(ref, torch.optim.AdamW(ref.parameters(), fused=True, **kw))
    assert_same_weights(ours, ref)


def test_adam_equals_torch_adam_with_l2():
    ours, ref = SmallNet(), SmallNet()
    kw = dict(lr=5e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05)
    run(ours, Adam(ours.parameters(), **kw))
    run(ref, torch.optim.Adam(ref.parameters(), foreach=False, **kw))
    assert_same_weights(ours, ref)


def test_adam_and_adamw_differ_when_decay_is_on():
    a, w = SmallNet(), SmallNet()
    run(a, Adam(a.parameters(), lr=5e-3, weight_decay=0.1), steps=20)
    run(w, AdamW(w.parameters(), lr=5e-3, weight_decay=0.1), steps=20)
    assert (a.fc.weight - w.fc.weight).abs().max() > 1e-4
    # ...and agree when it is off
    a, w = SmallNet(), SmallNet()
    run(a, Adam(a.parameters(), lr=5e-3, weight_decay=0.0), steps=20)
    run(w, AdamW(w.parameters(), lr=5e-3, weight_decay=0.0), steps=20)
    assert_same_weights(a, w, atol=1e-7)


@pytest.mark.parametrize("kw", [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, weight_decay=1e-2),
    dict(lr=0.05, momentum=0.9, nesterov=True),
])
def test_sgd_equals_torch_sgd(kw):
    ours, ref = SmallNet(), SmallNet()
    run(ours, SGD(ours.parameters(), **kw))
    run(ref, torch.optim.SGD(ref.parameters(), foreach=False, **kw))
    assert_same_weights(ours, ref)


def test_state_dict_round_trip_and_load_from_torch():
    """A checkpointed optimizer resumes exactly; torch's AdamW state loads into ours."""
    straight = SmallNet()
    opt = AdamW(straight.parameters(), lr=1e-2, betas=(0.9, 0.95))
    run(straight, opt, steps=10)
    saved_model, saved_opt = copy.deepcopy(straight.state_dict()), copy.deepcopy(opt.state_dict())
    run(straight, opt, steps=10)

    resumed = SmallNet()
    resumed.load_state_dict(saved_model)
    opt2 = AdamW(resumed.parameters(), lr=1e-2, betas=(0.9, 0.95))
    opt2.load_state_dict(saved_opt)
    run(resumed, opt2, steps=10)
    assert_same_weights(straight, resumed, atol=0.0)

    # torch -> ours: same state names (exp_avg, exp_avg_sq, step)
    ref = SmallNet()
    topt = torch.optim.AdamW(ref.parameters(), lr=1e-2, betas=(0.9, 0.95), foreach=False)
    run(ref, topt, steps=10)
    mine = SmallNet()
    mine.load_state_dict(ref.state_dict())
    mopt = AdamW(mine.parameters(), lr=1e-2, betas=(0.9, 0.95))
    mopt.load_state_dict(copy.deepcopy(topt.state_dict()))   # (load shares tensors otherwise)
    run(ref, topt, steps=10)
    run(mine, mopt, steps=10)
    assert_same_weights(ref, mine)


def test_closure_and_parameters_without_grad():
    w = nn.Parameter(torch.tensor([2.0]))
    unused = nn.Parameter(torch.tensor([5.0]))
    opt = SGD([w, unused], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (w ** 2).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == 4.0
    assert w.item() == pytest.approx(1.0) and unused.item() == 5.0


@pytest.mark.parametrize("make", [
    lambda p: SGD(p, lr=-1.0),
    lambda p: SGD(p, lr=0.1, momentum=1.0),
    lambda p: SGD(p, lr=0.1, nesterov=True),
    lambda p: Adam(p, betas=(0.9, 1.0)),
    lambda p: AdamW(p, weight_decay=-0.1),
    lambda p: Adam(p, eps=-1.0),
])
def test_bad_hyperparameters_are_refused(make):
    with pytest.raises(ValueError):
        make([nn.Parameter(torch.zeros(2))])


# ============================================================================ clipping

def _with_grads(scale: float, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    params = [nn.Parameter(torch.zeros(s)) for s in [(3, 4), (5,), (2, 2, 2)]]
    for p in params:
        p.grad = torch.randn(p.shape, generator=g) * scale
    params.append(nn.Parameter(torch.zeros(3)))         # no gradient: skipped
    return params


@pytest.mark.parametrize("scale,max_norm", [(10.0, 1.0), (0.01, 1.0), (1.0, 0.5), (3.0, 100.0)])
def test_clip_grad_norm_equals_torch(scale, max_norm):
    ours, ref = _with_grads(scale), _with_grads(scale)
    before = torch.sqrt(sum((p.grad ** 2).sum() for p in ours if p.grad is not None))
    n_ours = clip_grad_norm(ours, max_norm)
    n_ref = torch.nn.utils.clip_grad_norm_(ref, max_norm)
    assert n_ours.item() == pytest.approx(n_ref.item(), rel=1e-6)
    assert n_ours.item() == pytest.approx(before.item(), rel=1e-6)   # the norm BEFORE clipping
    for a, b in zip(ours, ref):
        if a.grad is not None:
            assert torch.allclose(a.grad, b.grad, atol=1e-7)
    after = torch.sqrt(sum((p.grad ** 2).sum() for p in ours if p.grad is not None))
    assert after.item() <= max_norm * (1 + 1e-5)
    if before <= max_norm:                                           # small: untouched
        assert after.item() == pytest.approx(before.item(), rel=1e-6)


def test_clip_grad_norm_single_tensor_and_no_grads():
    p = nn.Parameter(torch.zeros(2))
    p.grad = torch.tensor([3.0, 4.0])
    assert clip_grad_norm(p, 1.0).item() == pytest.approx(5.0)
    assert p.grad.tolist() == pytest.approx([0.6, 0.8], abs=1e-6)
    assert clip_grad_norm([nn.Parameter(torch.zeros(2))], 1.0).item() == 0.0


# ============================================================================ set-up and Trainer

def test_configure_optimizer_picks_the_implementation():
    model = TinyLM()
    ours = configure_optimizer(model, learning_rate=1e-3, weight_decay=0.1, optimizer="llmcourse")
    assert isinstance(ours, AdamW)
    assert [g["weight_decay"] for g in ours.param_groups] == [0.1, 0.0]
    assert type(configure_optimizer(model, learning_rate=1e-3, weight_decay=0.1)) is torch.optim.AdamW
    with pytest.raises(ValueError, match="unknown optimizer"):
        configure_optimizer(model, learning_rate=1e-3, weight_decay=0.1, optimizer="lion")
    with pytest.raises(ValueError, match="fused"):
        configure_optimizer(model, learning_rate=1e-3, weight_decay=0.1, optimizer="llmcourse",
                            fused=True)


def test_config_optimizer_field():
    assert TrainConfig().optimizer == "torch"
    assert TrainConfig(optimizer="llmcourse").optimizer == "llmcourse"
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="adam")
    with pytest.raises(ValueError, match="fused_adamw"):
        TrainConfig(optimizer="llmcourse", fused_adamw=True)


def test_trainer_with_our_adamw_matches_torch(tmp_path):
    tokens = make_tokens()

    def fit(name, **kw):
        cfg = TrainConfig(out_dir=str(tmp_path / name), max_iters=30, batch_size=4, block_size=8,
                          learning_rate=3e-2, min_lr=3e-3, warmup_iters=3, eval_interval=15,
                          eval_iters=2, log_interval=1, device="cpu", progress=False, seed=7,
                          grad_clip=1.0, weight_decay=0.1, **kw)
        trainer = Trainer(TinyLM(seed=0), cfg, random_batch_fn(tokens))
        history = trainer.fit()
        return trainer, [r["loss"] for r in history if r["type"] == "train"]

    ours, l_ours = fit("ours", optimizer="llmcourse")
    ref, l_ref = fit("torch", fused_adamw=False)
    assert isinstance(ours.optimizer, AdamW)
    assert type(ref.optimizer) is torch.optim.AdamW
    assert len(l_ours) == 30
    assert l_ours == pytest.approx(l_ref, abs=1e-4)
    assert l_ours[-1] < l_ours[0] - 0.5                    # it trained
    assert_same_weights(ours.raw_model, ref.raw_model, atol=1e-4)
    # and resumes from its own checkpoint
    resumed = Trainer(TinyLM(seed=3), ours.config.replace(init_from="resume", max_iters=35),
                      random_batch_fn(tokens))
    assert isinstance(resumed.optimizer, AdamW) and resumed.iter_num == 30
    resumed.fit()
    assert resumed.iter_num == 35
