"""llmcourse.train.evaluate: loss units, the one estimate_loss, the milestone table."""

from __future__ import annotations

import contextlib
import doctest
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

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


def test_estimate_loss_one_source_splits_order_reduce_autocast():
    torch.manual_seed(0)
    model = _Table()
    one = _batches(2)
    value = estimate_loss(model, lambda: one("val"), 3, splits=None)
    assert isinstance(value, float)
    assert value == estimate_loss(model, _batches(2), 3, splits=("val",))["val"]
    order = []
    estimate_loss(model, lambda s: (order.append(s), _batches(0)(s))[1], 2, splits=("val", "train"))
    assert order == ["val", "val", "train", "train"]
    seen = {}

    def reduce(t):
        seen["shape"] = tuple(t.shape)
        return t * 2

    doubled = estimate_loss(model, _batches(3), 2, reduce=reduce)
    plain = estimate_loss(model, _batches(3), 2)
    assert seen["shape"] == (2,)
    assert doubled["train"] == pytest.approx(2 * plain["train"])
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

    class NoLoss(nn.Module):
        def forward(self, x, y):
            return x.float(), None

    with pytest.raises(TypeError, match="no loss"):
        estimate_loss(NoLoss(), _batches(0), 1)


def test_trainer_and_day06_use_it():
    from llmcourse.checks import day06
    from llmcourse.train import trainer

    assert trainer.estimate_loss is estimate_loss
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
