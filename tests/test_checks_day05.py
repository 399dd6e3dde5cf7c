"""The day-05 checks pass the solutions, catch plausible mistakes, and say "not done yet" for stubs."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from llmcourse.checks import day05


def _last_line(capsys: pytest.CaptureFixture[str]) -> str:
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out
    return out[0]


def _stub(*args, **kwargs):
    raise NotImplementedError


# ---- the reference table itself -------------------------------------------------------------


def test_sinusoidal_table_by_hand():
    pe = day05.sinusoidal_table(3, 4)
    assert pe.shape == (3, 4) and pe.dtype == torch.float32
    # Row 0: sin(0) = 0, cos(0) = 1 in every pair.
    assert pe[0].tolist() == [0.0, 1.0, 0.0, 1.0]
    # Row 2, pair 0 has frequency 1; pair 1 has frequency 10000 ** (-2/4) = 0.01.
    expected = [math.sin(2), math.cos(2), math.sin(0.02), math.cos(0.02)]
    assert pe[2].tolist() == pytest.approx(expected, abs=1e-6)
    with pytest.raises(ValueError, match="even"):
        day05.sinusoidal_table(3, 5)


def test_sinusoidal_similarity_depends_on_distance_only():
    pe = day05.sinusoidal_table(64, 32)
    sim = pe @ pe.T
    assert sim[10, 15].item() == pytest.approx(sim[40, 45].item(), abs=1e-4)


# ---- exercise 1 ------------------------------------------------------------------------------


def test_one_hot_lookup(capsys):
    W = torch.arange(15, dtype=torch.float32).reshape(5, 3)
    idx = torch.tensor([3, 0, 3])
    assert day05.check_one_hot_lookup(F.one_hot(idx, 5).float() @ W, idx, W)
    assert "passed" in _last_line(capsys)
    assert not day05.check_one_hot_lookup(None, idx, W)
    assert "not done yet" in _last_line(capsys)
    assert not day05.check_one_hot_lookup(F.one_hot(idx, 5).float(), idx, W)
    assert "one-hot matrix itself" in _last_line(capsys)
    assert not day05.check_one_hot_lookup(W[:3], idx, W)
    assert "differs" in _last_line(capsys)


# ---- exercise 2 ------------------------------------------------------------------------------


def good_sinusoidal(T, C):
    if C % 2:
        raise ValueError("C must be even")
    pos = torch.arange(T, dtype=torch.float32)[:, None]
    freq = 10000.0 ** (-torch.arange(0, C, 2, dtype=torch.float32) / C)
    pe = torch.zeros(T, C)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)
    return pe


def test_sinusoidal_passes_solution(capsys):
    assert day05.check_sinusoidal(good_sinusoidal)
    assert "passed" in _last_line(capsys)
    assert day05.check_sinusoidal(day05.sinusoidal_table)
    assert "passed" in _last_line(capsys)
    assert not day05.check_sinusoidal(_stub)
    assert "not done yet" in _last_line(capsys)


def test_sinusoidal_mistakes(capsys):
    def halves(T, C):
        pe = good_sinusoidal(T, C)
        return torch.cat([pe[:, 0::2], pe[:, 1::2]], dim=1)

    assert not day05.check_sinusoidal(halves)
    assert "interleave" in _last_line(capsys)

    def swapped(T, C):
        pe = good_sinusoidal(T, C)
        out = torch.empty_like(pe)
        out[:, 0::2], out[:, 1::2] = pe[:, 1::2], pe[:, 0::2]
        return out

    assert not day05.check_sinusoidal(swapped)
    assert "swapped" in _last_line(capsys)

    def wrong_exponent(T, C):
        pos = torch.arange(T, dtype=torch.float32)[:, None]
        freq = 10000.0 ** (-torch.arange(C // 2, dtype=torch.float32) / C)   # i/C, not 2i/C
        pe = torch.zeros(T, C)
        pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)
        return pe

    assert not day05.check_sinusoidal(wrong_exponent)
    assert "frequencies" in _last_line(capsys)

    def no_odd_check(T, C):
        return good_sinusoidal(T, C) if C % 2 == 0 else torch.zeros(T, C)

    assert not day05.check_sinusoidal(no_odd_check)
    assert "ValueError" in _last_line(capsys)


# ---- exercise 3 ------------------------------------------------------------------------------


class GoodEmbedding(nn.Module):
    def __init__(self, vocab_size, block_size, n_embd):
        super().__init__()
        self.block_size = block_size
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        nn.init.normal_(self.wte.weight, std=0.02)
        nn.init.normal_(self.wpe.weight, std=0.02)

    def forward(self, idx):
        T = idx.shape[1]
        if T > self.block_size:
            raise ValueError("too long")
        return self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))


def test_embedding_module(capsys):
    assert day05.check_embedding_module(GoodEmbedding)
    assert "passed" in _last_line(capsys)


def test_embedding_module_not_done(capsys):
    class Stub(nn.Module):
        def __init__(self, vocab_size, block_size, n_embd):
            super().__init__()

        def forward(self, idx):
            raise NotImplementedError

    assert not day05.check_embedding_module(Stub)
    assert "not done yet" in _last_line(capsys)


def test_embedding_module_mistakes(capsys):
    class DefaultInit(GoodEmbedding):
        def __init__(self, vocab_size, block_size, n_embd):
            nn.Module.__init__(self)
            self.block_size = block_size
            self.wte = nn.Embedding(vocab_size, n_embd)
            self.wpe = nn.Embedding(block_size, n_embd)

    assert not day05.check_embedding_module(DefaultInit)
    assert "default initialisation" in _last_line(capsys)

    class NoPositions(GoodEmbedding):
        def forward(self, idx):
            return self.wte(idx)

    assert not day05.check_embedding_module(NoPositions)
    assert "position vectors" in _last_line(capsys)

    class NoLengthCheck(GoodEmbedding):
        def forward(self, idx):
            return self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))

    assert not day05.check_embedding_module(NoLengthCheck)
    assert "ValueError" in _last_line(capsys)


def test_sinusoidal_crash_shows_the_sizes(capsys):
    def crash(T, C):
        return torch.zeros(T, C // 2).repeat_interleave(3, dim=0).view(T, C)  # a wrong view

    assert bool(day05.check_sinusoidal(crash)) is False
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "your code raised RuntimeError" in out
    assert "on sinusoidal_positions(10, 8)" in out


def test_sinusoidal_returns_numpy(capsys):
    def numpy_table(T, C):
        return day05.sinusoidal_table(T, C).numpy()

    assert bool(day05.check_sinusoidal(numpy_table)) is False
    assert "torch.from_numpy" in capsys.readouterr().out
