"""llmcourse.train.evaluate: loss units, estimate_loss (and the Trainer's, in ddp), the milestones."""

from __future__ import annotations

import contextlib
import doctest
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from llmcourse.train import ddp
from llmcourse.train import evaluate as ev
from llmcourse.train import (
    SHAKESPEARE_CHAR_MILESTONES,
    bits_per_byte,
    bits_per_token,
    bytes_per_token,
    estimate_loss,
    milestone_table,
    perplexity,
)


def test_doctests():
    result = doctest.testmod(ev, verbose=False)
    assert result.attempted > 5 and result.failed == 0


def test_units():
    assert perplexity(math.log(65)) == pytest.approx(65.0)
    assert bits_per_token(math.log(2)) == pytest.approx(1.0)
    assert bits_per_token(math.log(65)) == pytest.approx(math.log2(65))
    # two tokenizers, the same text: per-byte numbers agree where per-token ones do not
    char_loss, bpe_loss = 1.5, 1.5 * 4  # a 4-byte token carries 4 characters' worth of surprise
    assert bits_per_byte(char_loss, 1.0) == pytest.approx(bits_per_byte(bpe_loss, 4.0))
    assert bits_per_token(char_loss) != pytest.approx(bits_per_token(bpe_loss))
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="bytes_per_token"):
            bits_per_byte(1.0, bad)


def test_bytes_per_token_char_and_gpt2():
    from llmcourse.tokenizers import get_tokenizer

    text = "ROMEO: héllo, wörld\n"
    char = get_tokenizer("char", text=text)
    assert bytes_per_token(char.encode(text), char) == pytest.approx(len(text.encode()) / len(text))
    gpt2 = get_tokenizer("gpt2")
    ids = gpt2.encode(text)
    assert bytes_per_token(ids, gpt2) == pytest.approx(len(text.encode()) / len(ids))
    import numpy as np

    assert bytes_per_token(np.array(char.encode(text), dtype=np.uint16), char) > 1.0
    with pytest.raises(ValueError, match="at least one"):
        bytes_per_token([], char)


class _Table(nn.Module):
    def __init__(self, vocab=9, dropout=0.0):
        super().__init__()
        self.table = nn.Embedding(vocab, vocab)
        self.drop = nn.Dropout(dropout)
        self.seen_training = []

    def forward(self, x, y=None):
        self.seen_training.append(self.training)
        logits = self.drop(self.table(x))
        return logits, F.cross_entropy(logits.flatten(0, 1), y.flatten())


def _batches(seed):
    g = torch.Generator().manual_seed(seed)

    def get(split):
        off = 0 if split == "train" else 3
        x = (torch.randint(6, (4, 5), generator=g) + off) % 9
        return x, (x + 1) % 9

    return get


def test_estimate_loss_is_the_mean_over_fixed_batches_in_eval_mode():
    torch.manual_seed(0)
    model = _Table(dropout=0.5)
    model.train()
    got = estimate_loss(model, _batches(1), eval_iters=7)
    assert set(got) == {"train", "val"}
    assert model.training, "the previous mode is restored"
    assert model.seen_training == [False] * 14, "dropout must be off while estimating"
    again = estimate_loss(model, _batches(1), eval_iters=7)
    assert got == again, "the same batches give the same estimate"
    # by hand
    get = _batches(1)
    model.eval()
    for split in ("train", "val"):
        with torch.no_grad():
            losses = [model(*get(split))[1] for _ in range(7)]
        assert got[split] == pytest.approx(sum(float(v) for v in losses) / 7, abs=1e-6)
    model.eval()
    estimate_loss(model, _batches(1), eval_iters=2)
    assert not model.training, "an eval-mode model stays in eval mode"


def test_estimate_loss_matches_the_trainers_old_loop_bit_for_bit():
    """The algorithm the Trainer had before it called estimate_loss (float32 sum on device)."""
    torch.manual_seed(0)
    model = _Table()
    get = _batches(5)
    want = {}
    for split in ("train", "val"):
        total = torch.zeros((), dtype=torch.float32)
        for _ in range(9):
            with torch.no_grad():
                total += model(*get(split))[1].detach().float()
        want[split] = (total / 9).item()
    assert estimate_loss(model, _batches(5), 9) == want


def test_estimate_loss_splits_order_autocast():
    torch.manual_seed(0)
    model = _Table()
    order = []
    estimate_loss(model, lambda s: (order.append(s), _batches(0)(s))[1], 2, splits=("val", "train"))
    assert order == ["val", "val", "train", "train"]
    one = estimate_loss(model, _batches(2), 3, splits=("val",))
    assert list(one) == ["val"]
    entered = []

    @contextlib.contextmanager
    def ctx():
        entered.append(1)
        yield

    estimate_loss(model, _batches(3), 4, autocast=ctx)
    assert len(entered) == 8


def test_estimate_loss_restores_mode_on_error_and_validates():
    model = _Table()
    model.train()

    def broken(split):
        raise RuntimeError("no data")

    with pytest.raises(RuntimeError, match="no data"):
        estimate_loss(model, broken, 2)
    assert model.training
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="eval_iters"):
            estimate_loss(model, _batches(0), bad)


class _Linear(nn.Module):
    """A model whose numbers change under bfloat16 autocast (a matmul), for the bitwise test."""

    def __init__(self, vocab=9):
        super().__init__()
        self.emb = nn.Embedding(vocab, 16)
        self.head = nn.Linear(16, vocab)

    def forward(self, x, y):
        logits = self.head(self.emb(x))  # (B, T, V)
        return logits, F.cross_entropy(logits.flatten(0, 1).float(), y.flatten())


@pytest.mark.parametrize("eval_iters", [1, 3, 8])
@pytest.mark.parametrize("bf16", [False, True])
def test_the_trainers_evaluation_gives_the_same_numbers_bit_for_bit(eval_iters, bf16):
    """ddp.estimate_loss_all_ranks (the Trainer's) == estimate_loss (the reference), exactly."""
    torch.manual_seed(0)
    model = _Linear()
    model.train()
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else None
    drawn = {"ref": [], "ddp": []}

    def batches(who):
        get = _batches(11)
        return lambda s: (drawn[who].append(s), get(s))[1]

    want = estimate_loss(model, batches("ref"), eval_iters, autocast=autocast)
    got = ddp.estimate_loss_all_ranks(model, batches("ddp"), eval_iters, ddp.DistInfo(),
                                      autocast=autocast)
    assert got == want  # floats compared exactly
    assert list(got) == ["train", "val"] and drawn["ddp"] == drawn["ref"]
    assert model.training, "the previous mode is restored"


def test_the_trainers_evaluation_averages_over_processes_in_one_all_reduce(monkeypatch):
    torch.manual_seed(0)
    model = _Table()
    calls = []

    def all_reduce(t, op=None):  # two processes with the same numbers: the sum is twice them
        calls.append(tuple(t.shape))
        t.mul_(2)

    monkeypatch.setattr(ddp.dist, "all_reduce", all_reduce)
    two = ddp.DistInfo(enabled=True, rank=0, local_rank=0, world_size=2)
    got = ddp.estimate_loss_all_ranks(model, _batches(3), 2, two)
    assert calls == [(2,)], "one all-reduce of the (train, val) means"
    assert got == estimate_loss(model, _batches(3), 2)


def test_the_trainers_evaluation_accepts_a_bare_loss_and_names_a_missing_one():
    class Bare(nn.Module):  # returns the loss alone
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x, y):
            return self.inner(x, y)[1]

    torch.manual_seed(0)
    table = _Table()
    got = ddp.estimate_loss_all_ranks(Bare(table), _batches(1), 2, ddp.DistInfo())
    assert got == estimate_loss(table, _batches(1), 2)

    class NoLoss(nn.Module):
        def forward(self, x, y):
            return x.float(), None

    with pytest.raises(TypeError, match="returned no loss"):
        ddp.estimate_loss_all_ranks(NoLoss(), _batches(0), 1, ddp.DistInfo())


def test_trainer_and_day06_use_them():
    from llmcourse.checks import day06
    from llmcourse.train import trainer

    assert trainer.estimate_loss_all_ranks is ddp.estimate_loss_all_ranks
    torch.manual_seed(0)
    model = _Table()
    get = _batches(4)
    assert day06.reference_estimate_loss(model, lambda: get("train"), 5) == \
        estimate_loss(model, _batches(4), 5, splits=("train",))["train"]


def test_trainer_estimate_equals_package_estimate(tmp_path):
    from llmcourse.train import TrainConfig, Trainer

    torch.manual_seed(0)
    model = _Table()
    cfg = TrainConfig(out_dir=str(tmp_path), max_iters=1, batch_size=4, block_size=5,
                      eval_iters=6, device="cpu", progress=False, compile=False)
    tr = Trainer(model, cfg, lambda split, generator=None: _batches(7)(split))
    got = tr.estimate_loss()
    assert got == estimate_loss(model, lambda s: _batches(7)(s), 6)


def test_milestones():
    losses = [m.loss for m in SHAKESPEARE_CHAR_MILESTONES]
    assert losses == sorted(losses, reverse=True)
    assert losses[0] == pytest.approx(4.174, abs=1e-3)
    assert [round(v, 2) for v in losses[1:]] == [2.48, 1.89, 1.47]
    assert all(m.source for m in SHAKESPEARE_CHAR_MILESTONES)
    table = milestone_table(2.1).splitlines()
    assert len(table) == 1 + len(losses) + 1
    mine = next(i for i, line in enumerate(table) if "your model" in line)
    assert table[mine - 1].startswith("2.480") and table[mine + 1].startswith("1.890")
    assert "<- your model" not in milestone_table()


def test_the_reference_estimate_loss_stays_plain():
    """nanoGPT's loop and nothing the Trainer alone needs (that is ddp.estimate_loss_all_ranks)."""
    import ast
    import inspect

    source = inspect.getsource(ev.estimate_loss)
    body = ast.parse(source).body[0].body[1:]  # after the docstring
    code = [line for node in body for line in ast.get_source_segment(source, node).splitlines()
            if line.strip() and not line.strip().startswith("#")]
    assert len(code) <= 20, len(code)
    names = {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)}
    assert not names & {"reduce", "loss_from_output", "all_reduce_mean"}, names
    assert list(inspect.signature(ev.estimate_loss).parameters) == [
        "model", "get_batch", "eval_iters", "splits", "autocast"]
