"""Small models and batch functions shared by the trainer tests and tests/ddp_worker.py."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class TinyConfig:
    vocab_size: int = 32
    block_size: int = 8
    n_embd: int = 16
    dropout: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


class TinyLM(nn.Module):
    """Embedding -> dropout -> LayerNorm -> Linear: a bigram-ish LM with every kind of
    parameter the trainer cares about (2-D embedding and weight, 1-D bias and norm)."""

    def __init__(self, config: TinyConfig | None = None, seed: int = 0) -> None:
        super().__init__()
        self.config = config or TinyConfig()
        gen = torch.Generator().manual_seed(seed)
        c = self.config
        self.wte = nn.Embedding(c.vocab_size, c.n_embd)
        self.drop = nn.Dropout(c.dropout)
        self.ln = nn.LayerNorm(c.n_embd)
        self.head = nn.Linear(c.n_embd, c.vocab_size)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        x = self.ln(self.drop(self.wte(idx)))  # (B, T, C)
        logits = self.head(x)  # (B, T, V)
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        return logits, loss


def make_tokens(n: int = 4000, vocab: int = 32, seed: int = 0) -> torch.Tensor:
    """A learnable token stream: mostly ``t -> (3 t + 1) % vocab`` with some noise."""
    g = torch.Generator().manual_seed(seed)
    out = torch.empty(n, dtype=torch.long)
    out[0] = 0
    noise = torch.rand(n, generator=g) < 0.1
    rnd = torch.randint(0, vocab, (n,), generator=g)
    for i in range(1, n):
        out[i] = rnd[i] if noise[i] else (3 * out[i - 1] + 1) % vocab
    return out


def random_batch_fn(tokens: torch.Tensor, batch_size: int = 4, block_size: int = 8,
                    use_global_rngs: bool = True):
    """``get_batch(split, generator)`` drawing random windows; the val split is the last 20%.

    With ``use_global_rngs`` the offsets also depend on NumPy's and Python's global RNGs, so
    an exact resume needs those restored too.
    """
    cut = int(len(tokens) * 0.8)
    splits = {"train": tokens[:cut], "val": tokens[cut:]}

    def get_batch(split: str, generator: torch.Generator | None = None):
        data = splits[split]
        hi = len(data) - block_size - 3
        ix = torch.randint(0, hi, (batch_size,), generator=generator)  # (B,)
        if use_global_rngs:
            ix = ix + int(np.random.randint(0, 2)) + random.randint(0, 1)
        x = torch.stack([data[i:i + block_size] for i in ix.tolist()])
        y = torch.stack([data[i + 1:i + 1 + block_size] for i in ix.tolist()])
        return x, y

    return get_batch


def stepped_batch_fn(tokens: torch.Tensor, batch_size: int, block_size: int, *,
                     rank: int, world_size: int, accum: int, holder: dict):
    """Deterministic batches for the DDP equivalence test.

    A training batch is a fixed function of the global sample number
    ``step * world_size * accum + rank * accum + micro_step``, so per optimizer step
    ``world 2 x accum 1`` and ``world 1 x accum 2`` see exactly the same samples. The step is
    read from ``holder["trainer"]`` (set after the trainer is built); calls made while the model
    is in eval mode (evaluations) get their own fixed windows and do not disturb the count.
    """
    n_windows = (len(tokens) - 1) // block_size
    state = {"step": -1, "micro": 0, "eval": 0}

    def window_batch(sample: int):
        rows = [(sample * batch_size + b) * 7 % (n_windows - 1) for b in range(batch_size)]
        x = torch.stack([tokens[r * block_size:(r + 1) * block_size] for r in rows])
        y = torch.stack([tokens[r * block_size + 1:(r + 1) * block_size + 1] for r in rows])
        return x, y

    def get_batch(split: str):
        trainer = holder["trainer"]
        if split != "train" or not trainer.raw_model.training:
            state["eval"] += 1
            return window_batch(10_000 + state["eval"])
        if trainer.iter_num != state["step"]:
            state["step"], state["micro"] = trainer.iter_num, 0
        sample = state["step"] * world_size * accum + rank * accum + state["micro"]
        state["micro"] += 1
        return window_batch(sample)

    return get_batch
