"""The plain training loop (llmcourse/train/loop.py) and the engineered Trainer agree bit for bit.

Settings of the comparison (both sides draw their random numbers identically):

- seed 123: the Trainer seeds PyTorch's global generator and a batch generator with it after
  the model exists, as ``train()`` does; ``get_batch(split, generator)`` draws its offsets from
  that generator only (``use_global_rngs=False``), and dropout 0.1 draws from the global one;
- 25 steps, 2 micro-batches per step, clipping at 1.0, weight decay 0.1, warmup then cosine;
- an evaluation (3 batches per split, drawn from the same generator) at steps 0, 10, 20 and at
  the end (25, off the ``eval_interval`` grid): both evaluate at exactly these steps, so the
  evaluation draws shift both runs' later batches the same way;
- a training loss logged every 5 steps; no early stopping, float32 on the CPU, no compile.
"""

from __future__ import annotations

import pytest
import torch

from llmcourse.train import TrainConfig, Trainer
from llmcourse.train.loop import train
from train_helpers import TinyConfig, TinyLM, make_tokens, random_batch_fn

pytestmark = pytest.mark.usefixtures("one_thread")

TOKENS = make_tokens()


def settings(tmp_path) -> TrainConfig:
    return TrainConfig(
        out_dir=str(tmp_path / "run"), max_iters=25, batch_size=4, block_size=8,
        grad_accum_steps=2, learning_rate=3e-2, min_lr=3e-3, warmup_iters=3,
        eval_interval=10, eval_iters=3, log_interval=5, grad_clip=1.0, weight_decay=0.1,
        device="cpu", dtype="float32", progress=False, seed=123)


def losses(history, kind):
    keys = ("loss",) if kind == "train" else ("train_loss", "val_loss")
    return {r["iter"]: tuple(r[k] for k in keys) for r in history if r["type"] == kind}


def test_trainer_and_plain_loop_are_bitwise_equal(tmp_path, capsys):
    cfg = settings(tmp_path)
    get_batch = random_batch_fn(TOKENS, cfg.batch_size, cfg.block_size, use_global_rngs=False)

    plain = TinyLM(TinyConfig(dropout=0.1))
    plain_history = train(plain, get_batch, cfg)
    engineered = TinyLM(TinyConfig(dropout=0.1))
    trainer = Trainer(engineered, cfg, get_batch)
    trainer_history = trainer.fit()

    assert list(losses(plain_history, "eval")) == [0, 10, 20, 25]
    assert list(losses(plain_history, "train")) == [0, 5, 10, 15, 20]
    assert losses(plain_history, "eval") == losses(trainer_history, "eval")
    assert losses(plain_history, "train") == losses(trainer_history, "train")
    lrs = {r["iter"]: r["lr"] for r in trainer_history if r["type"] == "train"}
    assert lrs == {r["iter"]: r["lr"] for r in plain_history if r["type"] == "train"}
    for (name, a), b in zip(plain.state_dict().items(), engineered.state_dict().values()):
        assert torch.equal(a, b), name
    # the weights moved: the equality above is not two untouched models
    assert not torch.equal(plain.head.weight, TinyLM(TinyConfig(dropout=0.1)).head.weight)
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("step 0: train loss ") and "val loss" in printed[0]


def test_the_plain_loop_stays_plain():
    """About 60-80 lines of code: what a learner of day 17 reads top to bottom."""
    import ast
    import inspect

    from llmcourse.train import loop

    source = inspect.getsource(loop)
    tree = ast.parse(source)
    doc_lines = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef)) and ast.get_docstring(node):
            first = node.body[0]
            doc_lines.update(range(first.lineno, first.end_lineno + 1))
    code = [line for n, line in enumerate(source.splitlines(), 1)
            if n not in doc_lines and line.strip() and not line.strip().startswith("#")]
    assert 40 <= len(code) <= 80, len(code)
