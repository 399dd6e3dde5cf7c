"""The day-05 checks pass the solutions, reject every mistake of their tables, and say "not done yet" for stubs."""

from __future__ import annotations

import math
import time

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from checklines import fails, mistake_params, one_line, passes, rejects, stub
from llmcourse.checks import day05
from llmcourse.model.layers import sinusoidal_table as package_sinusoidal_table


# ---- the lesson's solutions (copied from solutions/day05_embeddings_and_positions.md) ----------


def solution_emb(idx, W):
    V = W.shape[0]
    return F.one_hot(idx, V).float() @ W


def sinusoidal_positions(T, C):
    if C % 2:
        raise ValueError(f"the width C must be even, got {C}")
    pos = torch.arange(T, dtype=torch.float32)[:, None]                      # (T, 1)
    freq = 10000.0 ** (-torch.arange(0, C, 2, dtype=torch.float32) / C)      # (C/2,)
    pe = torch.zeros(T, C)
    pe[:, 0::2] = torch.sin(pos * freq)                                      # (T, C/2)
    pe[:, 1::2] = torch.cos(pos * freq)
    return pe


class TokenAndPositionEmbedding(nn.Module):
    def __init__(self, vocab_size, block_size, n_embd):
        super().__init__()
        self.block_size = block_size
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        nn.init.normal_(self.wte.weight, mean=0.0, std=0.02)
        nn.init.normal_(self.wpe.weight, mean=0.0, std=0.02)

    def forward(self, idx):
        B, T = idx.shape
        if T > self.block_size:
            raise ValueError(
                f"sequence of length {T} is longer than block_size={self.block_size}: "
                f"crop the input to its last {self.block_size} tokens"
            )
        pos = torch.arange(T, device=idx.device)           # (T,)
        return self.wte(idx) + self.wpe(pos)               # (B, T, C) + (T, C) -> (B, T, C)


# ---- other correct variants -------------------------------------------------------------------


def sinusoidal_exp_log(T, C):  # exp(-log(10000) * 2i / C), the "annotated transformer" way
    if C % 2:
        raise ValueError("odd C")
    pos = torch.arange(T).unsqueeze(1).float()
    div = torch.exp(torch.arange(0, C, 2).float() * (-math.log(10000.0) / C))
    pe = torch.zeros(T, C)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)
    return pe


class EmbeddingWithParameterSlice(nn.Module):
    def __init__(self, vocab_size, block_size, n_embd):
        super().__init__()
        self.block_size = block_size
        self.wpe = nn.Embedding(block_size, n_embd)
        self.wte = nn.Embedding(vocab_size, n_embd)
        for e in (self.wte, self.wpe):
            nn.init.normal_(e.weight, std=0.02)

    def forward(self, idx):
        if idx.size(1) > self.block_size:
            raise ValueError("crop idx to its last block_size tokens")
        return self.wte(idx) + self.wpe.weight[: idx.size(1)]


def sinusoidal_loops(T, C):  # one entry at a time, with math
    if C % 2 == 1:
        raise ValueError(f"C = {C} is odd")
    pe = torch.zeros(T, C)
    for p in range(T):
        for i in range(C // 2):
            angle = p / 10000 ** (2 * i / C)
            pe[p, 2 * i], pe[p, 2 * i + 1] = math.sin(angle), math.cos(angle)
    return pe


class EmbeddingWithPositionBuffer(TokenAndPositionEmbedding):  # positions kept as a buffer
    def __init__(self, vocab_size, block_size, n_embd):
        super().__init__(vocab_size, block_size, n_embd)
        self.register_buffer("pos", torch.arange(block_size), persistent=False)

    def forward(self, idx):
        B, T = idx.size()
        if T > self.block_size:
            raise ValueError(f"T = {T} > block_size = {self.block_size}: crop the input")
        return self.wte(idx) + self.wpe(self.pos[:T]).unsqueeze(0)


class EmbeddingMovesPositions(TokenAndPositionEmbedding):  # arange on the CPU, then .to(idx.device)
    def forward(self, idx):
        T = idx.shape[-1]
        if T > self.block_size:
            raise ValueError(f"crop the input to its last {self.block_size} tokens")
        pos = torch.arange(0, T, dtype=torch.long).to(idx.device).unsqueeze(0)  # (1, T)
        return self.wte(idx) + self.wpe(pos)


class EmbeddingPositionsToIdx(TokenAndPositionEmbedding):  # .to(idx): idx's device (and dtype)
    def forward(self, idx):
        T = idx.shape[1]
        if T > self.block_size:
            raise ValueError(f"crop the input to its last {self.block_size} tokens")
        return self.wte(idx) + self.wpe(torch.arange(T).to(idx).long())


class EmbeddingPositionsTypeAsIdx(TokenAndPositionEmbedding):  # .type_as(idx) moves them too
    def forward(self, idx):
        T = idx.shape[1]
        if T > self.block_size:
            raise ValueError(f"crop the input to its last {self.block_size} tokens")
        return self.wte(idx) + self.wpe(torch.arange(T).type_as(idx).long())


@pytest.mark.parametrize("check_fn, mistake", mistake_params(day05))
def test_mistake_rejected(check_fn, mistake, capsys):
    rejects(capsys, check_fn, mistake)


# ---- exercise 1 ------------------------------------------------------------------------------


def test_one_hot_passes_the_solution(capsys):
    W = torch.arange(15, dtype=torch.float32).reshape(5, 3)
    idx = torch.tensor([3, 0, 3])
    passes(capsys, lambda emb: day05.check_one_hot_lookup(emb, idx, W), solution_emb(idx, W))
    g = torch.Generator().manual_seed(0)
    W2, idx2 = torch.randn(7, 4, generator=g), torch.tensor([6, 6, 1, 0, 2])
    passes(capsys, lambda emb: day05.check_one_hot_lookup(emb, idx2, W2), solution_emb(idx2, W2))


def test_one_hot_not_done(capsys):
    W = torch.arange(15, dtype=torch.float32).reshape(5, 3)
    fails(capsys, lambda emb: day05.check_one_hot_lookup(emb, torch.tensor([3, 0, 3]), W), None,
          "not done yet")


def test_one_hot_mistakes_on_other_inputs(capsys):
    g = torch.Generator().manual_seed(1)
    W, idx = torch.randn(7, 4, generator=g), torch.tensor([6, 6, 1, 0, 2])
    day05.check_one_hot_lookup(F.one_hot(idx, 7).float(), idx, W)
    assert "one-hot matrix itself" in one_line(capsys)
    day05.check_one_hot_lookup(W.T @ F.one_hot(idx, 7).float().T, idx, W)
    assert "transpose" in one_line(capsys)
    day05.check_one_hot_lookup(W[idx] + 0.5, idx, W)
    assert "differs by up to 0.5" in one_line(capsys)


def test_one_hot_refuses_a_function(capsys):
    W = torch.arange(15, dtype=torch.float32).reshape(5, 3)
    fails(capsys, lambda emb: day05.check_one_hot_lookup(emb, torch.tensor([3, 0, 3]), W),
          package_sinusoidal_table, "the course's own reference")


# ---- exercise 2 ------------------------------------------------------------------------------


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


@pytest.mark.parametrize("fn", [sinusoidal_positions, sinusoidal_exp_log, sinusoidal_loops])
def test_sinusoidal_passes(fn, capsys):
    passes(capsys, day05.check_sinusoidal, fn)


def test_sinusoidal_stub(capsys):
    fails(capsys, day05.check_sinusoidal, stub, "not done yet")


def test_sinusoidal_refuses_the_package_reference(capsys):
    fails(capsys, day05.check_sinusoidal, day05.sinusoidal_table, "the course's own reference")


def test_sinusoidal_crash_shows_the_sizes(capsys):
    def crash(T, C):
        return torch.zeros(T, C // 2).repeat_interleave(3, dim=0).view(T, C)  # a wrong view

    fails(capsys, day05.check_sinusoidal, crash, "your code raised RuntimeError")


def test_sinusoidal_returns_numpy(capsys):
    fails(capsys, day05.check_sinusoidal, lambda T, C: sinusoidal_positions(T, C).numpy(),
          "torch.from_numpy")


# ---- exercise 3 ------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [TokenAndPositionEmbedding, EmbeddingWithParameterSlice,
                                 EmbeddingWithPositionBuffer, EmbeddingMovesPositions,
                                 EmbeddingPositionsToIdx, EmbeddingPositionsTypeAsIdx])
def test_embedding_module_passes(cls, capsys):
    passes(capsys, day05.check_embedding_module, cls)


def test_embedding_module_not_done(capsys):
    class Stub(nn.Module):
        def __init__(self, vocab_size, block_size, n_embd):
            super().__init__()

        def forward(self, idx):
            raise NotImplementedError

    fails(capsys, day05.check_embedding_module, Stub, "not done yet")


def test_embedding_module_forward_stub(capsys):
    class HalfDone(TokenAndPositionEmbedding):
        def forward(self, idx):
            raise NotImplementedError

    fails(capsys, day05.check_embedding_module, HalfDone, "not done yet")


def test_embedding_module_refuses_the_reference(capsys):
    fails(capsys, day05.check_embedding_module, day05._ReferenceEmbedding, "the course's own reference")


def test_embedding_module_error_must_say_what_to_do(capsys):
    # 31c #10: the lesson asks for a ValueError "that says what to do" when T > block_size
    class Vague(TokenAndPositionEmbedding):
        def forward(self, idx):
            if idx.shape[1] > self.block_size:
                raise ValueError("bad input")
            return self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))

    assert not day05.check_embedding_module(Vague)
    assert one_line(capsys) == ("❌ TokenAndPositionEmbedding: your ValueError for 9 tokens with "
                                "block_size=8 reads 'bad input'; say what to do: e.g. crop the input "
                                "to its last 8 tokens")

    class NamesTheLimit(TokenAndPositionEmbedding):  # no "crop", but the limit is given
        def forward(self, idx):
            if idx.shape[1] > self.block_size:
                raise ValueError(f"at most {self.block_size} tokens fit, got {idx.shape[1]}")
            return self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))

    passes(capsys, day05.check_embedding_module, NamesTheLimit)


def test_sinusoidal_2i_doubled(capsys):
    # 31c #7: arange(0, C, 2) is already 2i; multiplying it by 2 again
    def doubled(T, C):
        if C % 2:
            raise ValueError("odd C")
        pos = torch.arange(T, dtype=torch.float32)[:, None]
        i = torch.arange(0, C, 2, dtype=torch.float32)
        freq = 1.0 / 10000.0 ** (2 * i / C)
        pe = torch.zeros(T, C)
        pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)
        return pe

    fails(capsys, day05.check_sinusoidal, doubled,
          "torch.arange(0, C, 2) already gives the even column index 2i: use "
          "10000 ** (arange(0, C, 2) / C), do not multiply by 2 again")


def test_embedding_module_detached_positions(capsys):
    class Detached(TokenAndPositionEmbedding):
        def forward(self, idx):
            return self.wte(idx) + self.wpe.weight[: idx.shape[1]].detach()

    fails(capsys, day05.check_embedding_module, Detached, "grad of wpe.weight")


def test_checks_are_fast(capsys):
    W = torch.arange(15, dtype=torch.float32).reshape(5, 3)
    idx = torch.tensor([3, 0, 3])
    start = time.process_time()
    assert day05.check_one_hot_lookup(solution_emb(idx, W), idx, W)
    assert day05.check_sinusoidal(sinusoidal_positions)
    assert day05.check_embedding_module(TokenAndPositionEmbedding)
    assert time.process_time() - start < 2.0


def test_one_hot_lookup_names_the_shape_of_w_idx_for_a_batch_of_ids(capsys):
    # idx of shape (2, 3): the line must name W[idx]'s real shape (2, 3, 4), not (len(idx), C)
    idx, W = torch.tensor([[1, 3, 6], [0, 2, 2]]), torch.randn(7, 4)
    assert not day05.check_one_hot_lookup(F.one_hot(idx, 7).float(), idx, W)
    line = one_line(capsys)
    assert "shape (2, 3, 4))" in line and "shape (2, 4))" not in line, line


@pytest.mark.parametrize("message", ["sequence too long: truncate it to its last block_size tokens",
                                     "T is larger than block_size: shorten the input",
                                     "too long: keep idx[:, -block_size:]",
                                     "the sequence is too long, pass a shorter one (T <= block_size)",
                                     "reduce the sequence length to block_size or less",
                                     "idx may hold no more than block_size tokens"])
def test_embedding_module_error_in_other_words_passes(message, capsys):
    class OtherWords(TokenAndPositionEmbedding):  # says what to do without the word "crop"
        def forward(self, idx):
            if idx.shape[1] > self.block_size:
                raise ValueError(message)
            return self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))

    passes(capsys, day05.check_embedding_module, OtherWords)
