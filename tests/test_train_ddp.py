"""DDP through torchrun: 2 CPU processes (Gloo) x accumulation 2 take the same steps as
1 process x accumulation 4 fed the same samples (this also runs the no_sync micro-steps)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from llmcourse.train import read_metrics

WORKER = Path(__file__).with_name("ddp_worker.py")
REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env["CUDA_VISIBLE_DEVICES"] = ""  # CPU + Gloo even on a GPU machine
    return env


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                    reason="needs torch.distributed with Gloo")
def test_ddp_two_processes_match_one_process_with_accumulation(tmp_path):
    iters = 6
    ddp_dir, ref_dir = tmp_path / "ddp", tmp_path / "ref"
    ddp_dir.mkdir()
    ref_dir.mkdir()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--nnodes=1",
           "--master_addr=127.0.0.1", f"--master_port={_free_port()}",
           str(WORKER), str(ddp_dir), "2", str(iters)]
    ddp = subprocess.Popen(cmd, env=_env(), cwd=REPO, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    # The one-process reference (world 1, accumulation 4) runs while torchrun starts up.
    ref = subprocess.run([sys.executable, str(WORKER), str(ref_dir), "4", str(iters)],
                         env=_env(), cwd=REPO, capture_output=True, text=True, timeout=120)
    assert ref.returncode == 0, ref.stdout + ref.stderr
    try:
        out, _ = ddp.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        ddp.kill()
        out, _ = ddp.communicate()
        pytest.fail(f"torchrun timed out:\n{out[-4000:]}")
    assert ddp.returncode == 0, out[-4000:]

    infos = [json.loads((ddp_dir / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(i["ddp"] and i["world"] == 2 and i["iter_num"] == iters for i in infos)
    # randomness is sharded: each rank's batch sampler has its own seed and stream
    assert infos[0]["batch_seed"] != infos[1]["batch_seed"]
    assert infos[0]["first_random"] != infos[1]["first_random"]

    ref_w = torch.load(ref_dir / "final_rank0.pt", weights_only=True)
    w0 = torch.load(ddp_dir / "final_rank0.pt", weights_only=True)
    w1 = torch.load(ddp_dir / "final_rank1.pt", weights_only=True)
    initial = __import__("train_helpers").TinyLM(seed=0).state_dict()
    for k in ref_w:
        assert torch.equal(w0[k], w1[k]), f"ranks disagree on {k}"
        assert torch.allclose(w0[k], ref_w[k], atol=1e-6, rtol=0), k
        assert not torch.equal(ref_w[k], initial[k]), f"{k} did not train"

    # only rank 0 wrote the log and the checkpoint: each record exactly once
    recs = read_metrics(ddp_dir / "run" / "metrics.jsonl")
    assert [r["iter"] for r in recs if r["type"] == "train"] == list(range(iters))
    ck = torch.load(ddp_dir / "run" / "ckpt.pt", weights_only=True)
    assert ck["world_size"] == 2 and len(ck["rng"]) == 2
    assert not any(k.startswith("module.") for k in ck["model"])
    # the logged loss is averaged over the ranks: equal to the one-process (mean) loss
    ref_recs = read_metrics(ref_dir / "run" / "metrics.jsonl")
    ddp_loss = [r["loss"] for r in recs if r["type"] == "train"]
    ref_loss = [r["loss"] for r in ref_recs if r["type"] == "train"]
    assert ddp_loss == pytest.approx(ref_loss, abs=1e-5)
