"""Tests for llmcourse.device: device and precision choice, testable without a GPU."""

from __future__ import annotations

import pytest
import torch

from llmcourse.device import (
    PrecisionPlan,
    _resolve_device,
    describe_device,
    normalize_dtype_name,
    peak_flops,
    pick_device,
    pick_dtype,
)


# ---------------------------------------------------------------- pick_dtype: the four cases

def test_t4_capability_7_5_uses_fp16_with_grad_scaler():
    plan = pick_dtype("cuda", capability=(7, 5))
    assert plan.autocast_dtype is torch.float16
    assert plan.use_grad_scaler is True
    assert plan.dtype_name == "float16"


def test_ampere_capability_8_0_uses_bf16_without_scaler():
    plan = pick_dtype("cuda:0", capability=(8, 0))
    assert plan.autocast_dtype is torch.bfloat16
    assert plan.use_grad_scaler is False
    # Hopper and Ada too
    assert pick_dtype("cuda", capability=(9, 0)).autocast_dtype is torch.bfloat16
    assert pick_dtype("cuda", capability=(8, 9)).autocast_dtype is torch.bfloat16


def test_v100_capability_7_0_is_fp16():
    assert pick_dtype(torch.device("cuda"), capability=(7, 0)).autocast_dtype is torch.float16


def test_cpu_defaults_to_float32_and_allows_bf16():
    plan = pick_dtype("cpu")
    assert plan.autocast_dtype is None and not plan.use_grad_scaler
    assert plan.dtype_name == "float32"
    bf = pick_dtype("cpu", requested="bf16")
    assert bf.autocast_dtype is torch.bfloat16 and not bf.use_grad_scaler
    with pytest.raises(ValueError, match="bfloat16"):
        pick_dtype("cpu", requested="float16")


def test_mps_defaults_to_float32_fp16_optional():
    plan = pick_dtype("mps")
    assert plan.autocast_dtype is None and not plan.use_grad_scaler
    fp16 = pick_dtype("mps", requested="float16")
    assert fp16.autocast_dtype is torch.float16 and fp16.use_grad_scaler
    with pytest.raises(ValueError, match="MPS"):
        pick_dtype("mps", requested="bfloat16")


def test_explicit_requests_on_cuda():
    assert pick_dtype("cuda", capability=(8, 0), requested="float32").autocast_dtype is None
    assert pick_dtype("cuda", capability=(8, 0), requested="fp16").use_grad_scaler
    # bf16 on a T4 is emulated: refused with advice, even though is_bf16_supported() says yes.
    with pytest.raises(ValueError, match="float16"):
        pick_dtype("cuda", capability=(7, 5), requested="bfloat16")
    with pytest.raises(ValueError, match="major, minor"):
        pick_dtype("cuda", capability=(8,))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_cuda_without_capability_or_gpu_says_how_to_fix():
    with pytest.raises(ValueError, match="capability="):
        pick_dtype("cuda")


def test_normalize_dtype_name():
    assert normalize_dtype_name("BF16") == "bfloat16"
    assert normalize_dtype_name("torch.float16") == "float16"
    assert normalize_dtype_name(torch.float32) == "float32"
    assert normalize_dtype_name("auto") == "auto"
    with pytest.raises(ValueError, match="unknown dtype"):
        normalize_dtype_name("float8")
    with pytest.raises(ValueError, match="unsupported"):
        normalize_dtype_name(torch.int8)


def test_plan_autocast_and_scaler_on_cpu():
    plan = pick_dtype("cpu", requested="bfloat16")
    a = torch.randn(4, 4)
    with plan.autocast():
        assert (a @ a).dtype is torch.bfloat16
    with pick_dtype("cpu").autocast():
        assert (a @ a).dtype is torch.float32
    assert not pick_dtype("cpu").make_grad_scaler().is_enabled()
    assert str(pick_dtype("cuda", capability=(7, 5))) == "cuda: float16 autocast + GradScaler"
    assert isinstance(plan, PrecisionPlan)


# ---------------------------------------------------------------- pick_device

@pytest.mark.parametrize(
    "has_cuda,has_mps,expected",
    [(True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"), (False, False, "cpu")],
)
def test_auto_device_order(has_cuda, has_mps, expected):
    assert _resolve_device("auto", has_cuda, has_mps).type == expected


def test_explicit_device_checked():
    assert _resolve_device("cuda:1", True, False) == torch.device("cuda", 1)
    assert _resolve_device("cpu", True, True) == torch.device("cpu")
    with pytest.raises(ValueError, match="CUDA is not available"):
        _resolve_device("cuda", False, True)
    with pytest.raises(ValueError, match="MPS"):
        _resolve_device("mps", True, False)
    with pytest.raises(ValueError, match="unknown device"):
        _resolve_device("tpu-ish", True, True)


def test_pick_device_cpu_and_auto():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device(torch.device("cpu")) == torch.device("cpu")
    assert pick_device().type in ("cpu", "cuda", "mps")


def test_describe_device_cpu():
    info = describe_device("cpu")
    assert info["type"] == "cpu" and info["device"] == "cpu"
    assert isinstance(info["name"], str) and info["name"]
    assert info["capability"] is None
    assert info["precision"] == "cpu: float32"
    assert info["memory_gb"] is None or info["memory_gb"] > 0


def test_peak_flops_table():
    assert peak_flops("NVIDIA A100-SXM4-80GB", "bfloat16") == 312e12
    assert peak_flops("NVIDIA H100 PCIe", "bfloat16") == 756e12
    assert peak_flops("NVIDIA H100 80GB HBM3", "bfloat16") == 989e12
    assert peak_flops("Tesla T4", "float16") == 65e12
    assert peak_flops("Tesla T4", "bfloat16") is None
    assert peak_flops("Some Future GPU", "bfloat16") is None


# ---------------------------------------------------------------- reasons and copy timing (day 14)

@pytest.mark.parametrize("has_cuda,has_mps,cuda_build,expected,words", [
    (True, True, True, "cuda", "CUDA GPU is visible"),
    (False, True, True, "mps", "MPS"),
    (False, False, True, "cpu", "no CUDA GPU is visible"),
    (False, False, False, "cpu", "CPU-only"),
])
def test_device_reason_says_why(has_cuda, has_mps, cuda_build, expected, words):
    from llmcourse.device import _device_reason

    dev = _resolve_device("auto", has_cuda, has_mps)
    assert dev.type == expected
    assert words in _device_reason("auto", dev, has_cuda, has_mps, cuda_build)
    assert "explicitly" in _device_reason("cpu", torch.device("cpu"), has_cuda, has_mps)


def test_pick_device_with_reason_matches_pick_device():
    from llmcourse.device import pick_device_with_reason

    dev, why = pick_device_with_reason()
    assert dev == pick_device() and why
    assert pick_device_with_reason(torch.device("cpu"))[0] == torch.device("cpu")


def test_time_host_to_device_cpu_and_errors():
    from llmcourse.device import time_host_to_device

    t = time_host_to_device(1 << 16, "cpu", repeats=2)
    assert t.device == "cpu" and not t.pinned and t.seconds > 0 and t.gb_per_s > 0
    assert "pageable host -> cpu" in str(t)
    with pytest.raises(ValueError, match="pinned memory only"):
        time_host_to_device(1 << 10, "cpu", pinned=True)
    with pytest.raises(ValueError, match=">= 1"):
        time_host_to_device(0, "cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_time_host_to_device_cuda_pinned_default():
    from llmcourse.device import time_host_to_device

    pinned = time_host_to_device(1 << 22, "cuda")
    pageable = time_host_to_device(1 << 22, "cuda", pinned=False)
    assert pinned.pinned and not pageable.pinned and pinned.device.startswith("cuda")


def test_device_imports_only_the_bottom_of_the_package():
    """device is low in the layering: it may use the arithmetic and the timer, nothing above."""
    from llmcourse import tour

    assert set(tour.module_imports()["llmcourse.device"]) <= {"llmcourse.flops", "llmcourse.timing"}
    assert tour.module_imports()["llmcourse.flops"] == []
    assert tour.module_imports()["llmcourse.timing"] == []
