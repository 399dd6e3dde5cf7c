"""Every CUDA-only branch of the package, run on a CPU with the CUDA queries mocked (issue 23.3).

Each test replaces exactly the queries the branch makes (``torch.cuda.is_available``,
``get_device_capability``, ``synchronize``, the process-group calls, ...) and checks the decision
the package takes from their answers.
"""

from __future__ import annotations

import types

import pytest
import torch

from llmcourse.bench import time_it, train_throughput
from llmcourse.data import get_batch, make_dataloader
from llmcourse.device import describe_device, enable_tf32, peak_flops, pick_device, pick_dtype
from llmcourse.train import ddp
from llmcourse.train.checkpoint import capture_rng_state
from llmcourse.train.optim import fused_adamw_available


@pytest.fixture
def fake_gpu(monkeypatch):
    """A visible CUDA GPU of a settable compute capability; bf16 'supported' as on a T4."""
    state = {"capability": (7, 5), "asked": 0}

    def capability(device=None):
        state["asked"] += 1
        return state["capability"]

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    return state


@pytest.mark.parametrize("cap,dtype,scaler", [
    ((7, 0), torch.float16, True),    # V100
    ((7, 5), torch.float16, True),    # T4: is_bf16_supported() says True, but bf16 is emulated
    ((8, 0), torch.bfloat16, False),  # A100
    ((9, 0), torch.bfloat16, False),  # H100
])
def test_pick_dtype_asks_the_capability(fake_gpu, cap, dtype, scaler):
    fake_gpu["capability"] = cap
    plan = pick_dtype("cuda")   # no capability given: the GPU is queried
    assert fake_gpu["asked"] == 1
    assert (plan.autocast_dtype, plan.use_grad_scaler) == (dtype, scaler)


def test_pick_dtype_on_the_cpu_asks_nothing(fake_gpu):
    plan = pick_dtype("cpu")
    assert (plan.autocast_dtype, plan.use_grad_scaler, fake_gpu["asked"]) == (None, False, 0)


def test_pick_dtype_without_cuda_says_how_to_fix(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"pass it explicitly, e.g. pick_dtype\('cuda', capability=\(8, 0\)\)"):
        pick_dtype("cuda")


@pytest.mark.parametrize("cap,enabled", [((7, 5), True), ((8, 0), False), ((9, 0), False)])
def test_grad_scaler_enabled_only_for_float16(fake_gpu, cap, enabled):
    fake_gpu["capability"] = cap
    assert pick_dtype("cuda").make_grad_scaler().is_enabled() is enabled
    assert pick_dtype("cuda", requested="float32").make_grad_scaler().is_enabled() is False


def test_enable_tf32_sets_the_three_switches():
    saved = (torch.get_float32_matmul_precision(), torch.backends.cuda.matmul.allow_tf32,
             torch.backends.cudnn.allow_tf32)
    try:
        torch.set_float32_matmul_precision("highest")
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        enable_tf32()
        assert torch.get_float32_matmul_precision() == "high"
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    finally:
        torch.set_float32_matmul_precision(saved[0])
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved[1], saved[2]


def test_get_batch_to_cuda_copies_from_pinned_memory_without_blocking(monkeypatch):
    pinned, copies = [], []
    real_empty, real_to = torch.empty, torch.Tensor.to

    def empty(*args, pin_memory=False, **kwargs):
        pinned.append(pin_memory)
        return real_empty(*args, **kwargs)

    def to(self, *args, **kwargs):
        target = args[0] if args else kwargs.get("device")
        if isinstance(target, torch.device) and target.type == "cuda":
            copies.append(kwargs.get("non_blocking", False))
            return self   # stands in for the copy on the GPU
        return real_to(self, *args, **kwargs)

    monkeypatch.setattr(torch, "empty", empty)
    monkeypatch.setattr(torch.Tensor, "to", to)
    x, y = get_batch(torch.arange(100), 4, 8, device="cuda", generator=torch.Generator().manual_seed(0))
    assert pinned == [True, True] and copies == [True, True]
    assert torch.equal(y[:, :-1], x[:, 1:])


def test_get_batch_on_the_cpu_pins_nothing(monkeypatch):
    seen = []
    real_empty = torch.empty
    monkeypatch.setattr(torch, "empty", lambda *a, pin_memory=False, **k: seen.append(pin_memory)
                        or real_empty(*a, **k))
    get_batch(torch.arange(100), 4, 8, device="cpu")
    assert True not in seen


@pytest.mark.parametrize("has_cuda", [True, False])
def test_dataloader_pins_memory_when_cuda_is_there(monkeypatch, has_cuda):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: has_cuda)
    assert make_dataloader(torch.arange(200), batch_size=2, block_size=8).pin_memory is has_cuda


def test_timing_waits_for_cuda(monkeypatch):
    synced = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: synced.append(device))
    time_it(lambda: None, device="cuda", warmup=2, repeats=3)
    assert len(synced) == 1 + 3                  # after the warm-up, then after each repeat
    synced.clear()
    train_throughput(lambda: None, 10, 1.0, None, device="cuda", warmup=1, iters=2)
    assert len(synced) == 2                      # before and after the timed loop
    synced.clear()
    time_it(lambda: None, device="cpu")
    assert synced == []


@pytest.fixture
def fake_group(monkeypatch):
    """torchrun's environment for rank 0 of 2, and a process group that records its backend."""
    calls = {}
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_device", lambda i: calls.setdefault("device", i))
    monkeypatch.setattr(ddp.dist, "is_initialized", lambda: "backend" in calls)
    monkeypatch.setattr(ddp.dist, "init_process_group", lambda backend: calls.setdefault("backend", backend))
    monkeypatch.setattr(ddp.dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(ddp.dist, "get_rank", lambda: 0)
    return calls


@pytest.mark.parametrize("device_type,backend", [("cuda", "nccl"), ("cpu", "gloo")])
def test_ddp_picks_nccl_on_cuda_and_gloo_otherwise(fake_group, device_type, backend):
    info = ddp.setup_distributed(device_type)
    assert (info.enabled, info.world_size, fake_group["backend"]) == (True, 2, backend)
    assert fake_group.get("device") == (0 if device_type == "cuda" else None)


def test_ddp_refuses_a_local_rank_without_a_gpu(fake_group, monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(RuntimeError, match=r"LOCAL_RANK=1 but only 1 CUDA device\(s\) are visible"):
        ddp.setup_distributed("cuda")
    assert "backend" not in fake_group


def test_fused_adamw_on_cuda():
    assert fused_adamw_available("cuda") is True
    assert fused_adamw_available("mps") is False


@pytest.mark.parametrize("initialized", [True, False])
def test_rng_capture_takes_cuda_states_only_once_cuda_is_initialized(monkeypatch, initialized):
    marker = [torch.zeros(3, dtype=torch.uint8)]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: initialized)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: marker)
    state = capture_rng_state()
    assert (state["cuda"] is marker) if initialized else not state["cuda"]


def test_describe_device_reads_the_gpu(fake_gpu, monkeypatch):
    props = types.SimpleNamespace(name="Tesla T4", major=7, minor=5, total_memory=15 * 2**30)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda d=None: props)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device("auto") == torch.device("cuda")
    info = describe_device()
    assert (info["name"], info["capability"], info["memory_gb"]) == ("Tesla T4", (7, 5), 15.0)
    assert info["precision"] == "cuda: float16 autocast + GradScaler"
    assert info["peak_flops"] == 65e12


@pytest.mark.parametrize("name,dtype,peak", [
    ("Tesla T4", "float16", 65e12), ("Tesla T4", "float32", 8.1e12), ("Tesla T4", "bfloat16", None),
    ("NVIDIA H100 80GB HBM3", "bfloat16", 989e12), ("NVIDIA H100 PCIe", "float16", 756e12),
    ("NVIDIA H200", "float32", 494e12), ("NVIDIA GeForce GTX 1080", "float16", None),
])
def test_peak_flops_table(name, dtype, peak):
    assert peak_flops(name, dtype) == peak


def test_each_ddp_process_takes_the_gpu_of_its_local_rank(fake_group, monkeypatch):
    place_process = getattr(ddp, "place_process", None)
    if place_process is None:
        pytest.skip("llmcourse.train.ddp has no place_process (the trainer places itself)")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(ddp.dist, "get_rank", lambda: 1)
    device, info = place_process("cuda")
    assert (device, info.rank, fake_group["backend"], fake_group["device"]) == (torch.device("cuda", 1), 1, "nccl", 1)


def test_a_plain_cuda_run_takes_the_current_gpu(monkeypatch):
    place_process = getattr(ddp, "place_process", None)
    if place_process is None:
        pytest.skip("llmcourse.train.ddp has no place_process (the trainer places itself)")
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 3)
    device, info = place_process("cuda")
    assert (device, info.enabled) == (torch.device("cuda", 3), False)


@pytest.mark.parametrize("cap,requested,expected", [
    ((7, 5), None, (torch.float32, torch.float16)),    # T4: its 16-bit type is float16
    ((9, 0), None, (torch.float32, torch.bfloat16)),   # H100
    ((9, 0), "auto", (torch.bfloat16,)),
    ((7, 5), "fp32", (torch.float32,)),
])
def test_bench_matmul_times_the_gpus_own_types(fake_gpu, cap, requested, expected):
    from llmcourse.bench import matmul_dtypes

    fake_gpu["capability"] = cap
    assert matmul_dtypes("cuda", requested) == expected


def test_bench_matmul_refuses_bfloat16_below_sm80(fake_gpu):
    from llmcourse.bench import matmul_dtypes

    with pytest.raises(ValueError, match="capability 7.5"):
        matmul_dtypes("cuda", "bfloat16")


def test_llmcourse_bench_matmul_runs_on_the_gpu_it_finds(fake_gpu, monkeypatch, capsys):
    """The command times on the device pick_device chooses (was: always the CPU)."""
    from llmcourse import bench, cli

    fake_gpu["capability"] = (8, 0)
    timed = []
    monkeypatch.setattr(bench, "matmul_peak_flops",
                        lambda n, dtype, device: timed.append((n, dtype, str(device))) or 1e12)
    assert cli.main(["bench", "matmul", "--size", "64"]) == 0
    assert timed == [(64, torch.float32, "cuda"), (64, torch.bfloat16, "cuda")]
    out = capsys.readouterr().out.splitlines()
    assert out == ["matmul 64x64 float32   on cuda:     1000.0 GFLOP/s",
                   "matmul 64x64 bfloat16  on cuda:     1000.0 GFLOP/s"]
