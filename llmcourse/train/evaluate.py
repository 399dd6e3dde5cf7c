"""Reading a loss: its estimate over fixed batches, and the units it is reported in.

A training loss is the mean cross-entropy in *nats* per token (natural log). Three other units
are common, and each answers a different question:

- **perplexity** ``exp(loss)``: the model is as unsure as a uniform choice among that many
  tokens (an untrained model over ``V`` tokens: ``exp(ln V) = V``);
- **bits per token** ``loss / ln 2``: the same quantity with the logarithm in base 2;
- **bits per byte** ``loss / ln 2 / (bytes per token)``: bits per byte of the *text*, the one
  unit that compares models with different tokenizers (a GPT-2 token covers about four bytes
  of English, a character about one, so their per-token losses are not comparable).

:func:`estimate_loss` is the reference evaluation loop (nanoGPT's, with a split argument): the
plain loop (:mod:`llmcourse.train.loop`), ``llmcourse eval`` and day 06's reference use it. The
Trainer's evaluation, :func:`llmcourse.train.ddp.estimate_loss_all_ranks`, gives the same numbers
and averages them over DDP processes.

:data:`SHAKESPEARE_CHAR_MILESTONES` says what a validation loss on character-level Tiny
Shakespeare means (the sources are in ``book/references.md``).

Example:
    >>> import math
    >>> loss = math.log(65)                       # an untrained model over 65 characters
    >>> round(perplexity(loss), 1), round(bits_per_token(loss), 3)
    (65.0, 6.022)
    >>> round(bits_per_byte(1.47, bytes_per_token=1.0), 3)    # nanoGPT's GPU run, per character
    2.121
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from typing import Any, ContextManager, NamedTuple

import torch
from torch import nn

__all__ = [
    "perplexity",
    "bits_per_token",
    "bits_per_byte",
    "bytes_per_token",
    "estimate_loss",
    "loss_from_output",
    "Milestone",
    "SHAKESPEARE_CHAR_MILESTONES",
    "milestone_table",
]

LN2 = math.log(2.0)


def perplexity(loss: float) -> float:
    """``exp(loss)``: the number of equally likely tokens the model is as unsure as.

    >>> perplexity(0.0), round(perplexity(math.log(65)), 6)
    (1.0, 65.0)
    """
    return math.exp(float(loss))


def bits_per_token(loss: float) -> float:
    """The loss in bits (base-2 log) instead of nats: ``loss / ln 2``.

    >>> round(bits_per_token(math.log(2)), 6)     # a fair coin: one bit
    1.0
    """
    return float(loss) / LN2


def bits_per_byte(loss: float, bytes_per_token: float) -> float:
    """Bits per byte of text: ``loss / ln 2 / bytes_per_token``.

    Args:
        loss: mean cross-entropy per token, in nats.
        bytes_per_token: UTF-8 bytes of the evaluated text divided by its number of tokens
            (:func:`bytes_per_token`); 1.0 for a character model on ASCII text.

    >>> round(bits_per_byte(3.3, bytes_per_token=4.0), 3)      # a GPT-2-token loss of 3.3
    1.19
    """
    if not bytes_per_token > 0:
        raise ValueError(f"bytes_per_token must be > 0, got {bytes_per_token!r}")
    return float(loss) / LN2 / float(bytes_per_token)


def bytes_per_token(ids: Sequence[int] | Any, tokenizer: Any) -> float:
    """UTF-8 bytes per token of the text that ``ids`` encode (``tokenizer.decode`` gives it).

    >>> from llmcourse.tokenizers import get_tokenizer
    >>> tok = get_tokenizer("char", text="héllo")
    >>> bytes_per_token(tok.encode("héllo"), tok)     # 'é' is two bytes in UTF-8
    1.2
    """
    ids = [int(i) for i in ids]
    if not ids:
        raise ValueError("bytes_per_token needs at least one token id")
    return len(tokenizer.decode(ids).encode("utf-8")) / len(ids)


@torch.no_grad()
def estimate_loss(model: nn.Module, get_batch: Callable[[str], tuple[torch.Tensor, torch.Tensor]],
                  eval_iters: int, splits: Sequence[str] = ("train", "val"), *,
                  autocast: Callable[[], ContextManager[Any]] | None = None) -> dict[str, float]:
    """Mean loss of ``model`` over ``eval_iters`` batches of each split.

    The model runs in eval mode (dropout off) under ``torch.no_grad()`` and gets its previous
    train/eval mode back afterwards. Pass a ``get_batch`` that draws the *same* batches each
    call (a generator seeded the same way) and two estimates differ only by what the model
    learned.

    Args:
        model: ``model(x, y) -> (logits, loss)``, the loss a scalar.
        get_batch: ``get_batch(split) -> (x, y)``, both ``(B, T)`` token ids.
        eval_iters: batches per split (>= 1).
        splits: the split names to evaluate, in order.
        autocast: a function returning the context to run the forward pass in, e.g.
            :meth:`~llmcourse.device.PrecisionPlan.autocast`; default none.

    Returns:
        ``{split: mean loss}``.

    >>> import torch.nn as nn, torch.nn.functional as F
    >>> class Constant(nn.Module):        # predicts the same 4 logits everywhere
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.logits = nn.Parameter(torch.zeros(4))
    ...     def forward(self, x, y):
    ...         logits = self.logits.expand(*x.shape, 4)
    ...         return logits, F.cross_entropy(logits.reshape(-1, 4), y.reshape(-1))
    >>> batch = lambda split: (torch.zeros(2, 3, dtype=torch.long), torch.ones(2, 3, dtype=torch.long))
    >>> {k: round(v, 4) for k, v in estimate_loss(Constant(), batch, eval_iters=3).items()}
    {'train': 1.3863, 'val': 1.3863}
    """
    if isinstance(eval_iters, bool) or not isinstance(eval_iters, int) or eval_iters < 1:
        raise ValueError(f"eval_iters must be an int >= 1, got {eval_iters!r}")
    context = autocast if autocast is not None else contextlib.nullcontext
    out = {}
    was_training = model.training
    model.eval()  # dropout off
    try:
        for split in splits:
            total = 0  # the sum of the batch losses, a float32 tensor on the model's device
            for _ in range(eval_iters):
                x, y = get_batch(split)  # (B, T), (B, T)
                with context():
                    _, loss = model(x, y)  # logits (B, T, V), loss: a scalar
                total = total + loss.float()
            out[split] = (total / eval_iters).item()
    finally:
        model.train(was_training)  # back to the mode the caller had
    return out


def loss_from_output(out: Any) -> torch.Tensor:
    """The loss from a model output: ``(logits, loss)`` or a scalar tensor.

    The Trainer accepts both (its step, :mod:`llmcourse.train.step`, and its evaluation,
    :func:`llmcourse.train.ddp.estimate_loss_all_ranks`); :func:`estimate_loss` above unpacks
    ``(logits, loss)``.

    >>> loss_from_output((None, torch.tensor(2.0))), loss_from_output(torch.tensor(3.0))
    (tensor(2.), tensor(3.))
    """
    if isinstance(out, torch.Tensor) and out.dim() == 0:
        return out
    if isinstance(out, (tuple, list)) and len(out) >= 2:
        loss = out[1]
        if isinstance(loss, torch.Tensor):
            return loss
        raise TypeError(
            "model(x, y) returned no loss (second element is "
            f"{type(loss).__name__}); the model must compute the loss when targets are given"
        )
    raise TypeError(
        "model(x, y) must return (logits, loss) or a scalar loss tensor, got "
        f"{type(out).__name__}"
    )


class Milestone(NamedTuple):
    """A reference validation loss: what reaching it means, and where the figure comes from."""

    loss: float
    what: str
    source: str


SHAKESPEARE_CHAR_MILESTONES: tuple[Milestone, ...] = (
    Milestone(math.log(65), "a uniform guess over the 65 characters, ln 65: where training starts",
              "arithmetic"),
    Milestone(2.48, "a bigram model: character pairs counted on the training text",
              "measured in day 06 (2.482, add-one smoothed counts of the training text)"),
    Milestone(1.89, "nanoGPT's CPU recipe: 4 layers, 128 wide, 2000 steps of 12 x 64 characters",
              "nanoGPT README reports 1.88; nanoGPT's own train.py with this recipe measured "
              "1.8857 on a 2-core CPU (benchmarks/nanogpt_cpu_recipe.sh), the package's replay 1.91 "
              "(book/performance_training.md)"),
    Milestone(1.47, "nanoGPT's GPU run: 6 layers, 384 wide, 5000 steps of 64 x 256 characters",
              "nanoGPT README (best validation loss 1.4697, about 3 minutes on an A100)"),
)
"""Validation losses (nats per character) on character-level Tiny Shakespeare, worst first."""


def milestone_table(loss: float | None = None,
                    milestones: Sequence[Milestone] = SHAKESPEARE_CHAR_MILESTONES) -> str:
    """The milestones as a text table, with ``loss`` (if given) placed among them.

    Each row shows the loss, its perplexity and bits per character.

    >>> print(milestone_table(2.0))  # doctest: +NORMALIZE_WHITESPACE
    loss   perplexity  bits/char  milestone
    4.174        65.0      6.022  a uniform guess over the 65 characters, ln 65: where training starts
    2.480        11.9      3.578  a bigram model: character pairs counted on the training text
    2.000         7.4      2.885  <- your model
    1.890         6.6      2.727  nanoGPT's CPU recipe: 4 layers, 128 wide, 2000 steps of 12 x 64 characters
    1.470         4.3      2.121  nanoGPT's GPU run: 6 layers, 384 wide, 5000 steps of 64 x 256 characters
    """
    rows = [(m.loss, m.what) for m in milestones]
    if loss is not None:
        rows.append((float(loss), "<- your model"))
        rows.sort(key=lambda r: -r[0])
    lines = [f"{'loss':6s} {'perplexity':>10s} {'bits/char':>10s}  milestone"]
    for value, what in rows:
        lines.append(f"{value:5.3f} {perplexity(value):11.1f} {bits_per_token(value):10.3f}  {what}")
    return "\n".join(lines)
