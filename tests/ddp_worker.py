"""Worker for tests/test_train_ddp.py, run under ``python -m torch.distributed.run``.

Usage: ddp_worker.py OUT_DIR ACCUM_STEPS MAX_ITERS

Trains TinyLM with the Trainer (Gloo on the CPU), then writes ``OUT_DIR/final_rank{r}.pt``
(that rank's final weights) and ``OUT_DIR/rank{r}.json`` (what the rank saw).
Run without torchrun it is a plain one-process run, used as the reference.
"""

from __future__ import annotations

import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from llmcourse.train import TrainConfig, Trainer, cleanup_distributed  # noqa: E402
from train_helpers import TinyLM, make_tokens, stepped_batch_fn  # noqa: E402


def main() -> None:
    out_dir, accum, max_iters = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(1)
    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    holder: dict = {}
    get_batch = stepped_batch_fn(make_tokens(), batch_size=4, block_size=8, rank=rank,
                                 world_size=world, accum=accum, holder=holder)
    cfg = TrainConfig(
        out_dir=os.path.join(out_dir, "run"), max_iters=max_iters, batch_size=4, block_size=8,
        grad_accum_steps=accum, learning_rate=1e-2, min_lr=1e-3, warmup_iters=2,
        eval_interval=max_iters // 2, eval_iters=2, log_interval=1, device="cpu",
        progress=False, ddp_backend="gloo", always_save_checkpoint=True, seed=7,
    )
    # The same user generator on every rank: the trainer must re-seed it per rank.
    trainer = Trainer(TinyLM(seed=0), cfg, get_batch, generator=torch.Generator().manual_seed(0))
    holder["trainer"] = trainer
    probe = torch.Generator()
    probe.set_state(trainer.generator.get_state())  # what this rank's batch sampler would draw
    first_random = torch.randint(0, 10**9, (4,), generator=probe)
    trainer.fit()
    torch.save(trainer.raw_model.state_dict(), os.path.join(out_dir, f"final_rank{rank}.pt"))
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as fh:
        json.dump({"rank": rank, "world": world, "ddp": trainer.dist.enabled,
                   "batch_seed": trainer.generator.initial_seed(),
                   "first_random": first_random.tolist(), "iter_num": trainer.iter_num}, fh)
    cleanup_distributed()


if __name__ == "__main__":
    main()
