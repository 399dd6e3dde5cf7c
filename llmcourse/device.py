"""Device and precision selection.

Two decisions come before any training run: *where* the tensors live (a CUDA GPU, Apple's MPS
backend or the CPU) and *in which precision* the forward and backward passes run. This module
makes both, in one place, so that the lessons, the trainer and the CLI agree.

Precision rules (the "precision plan"):

- CUDA, compute capability >= 8.0 (Ampere, Ada, Hopper): bfloat16 autocast, no GradScaler.
- CUDA, compute capability < 8.0 (a T4 is 7.5, a V100 7.0): float16 autocast with a GradScaler.
- CPU: float32; ``requested="bfloat16"`` gives bfloat16 autocast.
- MPS: float32; ``requested="float16"`` gives float16 autocast.

Why the *compute capability* and not :func:`torch.cuda.is_bf16_supported`: on a T4 (7.5) that
function answers ``True`` because bfloat16 can be *emulated*, but there is no bfloat16 tensor
core, so a bf16 run is several times slower than fp16. Native bf16 matmuls start with Ampere
(8.0). float16 has a narrow exponent range, so small gradients underflow to zero; the
:class:`torch.amp.GradScaler` multiplies the loss by a large factor before ``backward`` and
divides the gradients back before the optimizer step, skipping steps whose gradients overflowed.

MPS defaults to float32 because float16 autocast there is newer and less tested; the memory
and speed gain on Apple GPUs is modest for the model sizes of this course.

What falls back to the CPU on MPS. Not every PyTorch operator has an MPS kernel (PyTorch's
"General MPS op coverage tracking issue", #77764, lists the missing ones; the list shrinks with
each release). Calling a missing one raises ``NotImplementedError`` naming the operator, unless
the environment variable ``PYTORCH_ENABLE_MPS_FALLBACK=1`` was set before ``import torch``: then
the operator *silently* runs on the CPU - its inputs are copied to the CPU and its result back
- and the only sign is a ``UserWarning`` ("... will fall back to run on the CPU. This may have
performance implications"), which Python shows once per call site. A training step with such an
operator in its hot loop can end up slower than a pure CPU run. To find them, run a few steps
with ``warnings.simplefilter("error")`` (or without the variable) and read what is named.
float64 has no MPS support at all (an error, never a fallback), which is one reason the course
keeps everything float32. Pinned memory and ``non_blocking`` copies matter only for CUDA: an
Apple GPU shares the memory of the CPU.

Why a device was chosen: :func:`pick_device_with_reason` returns the device and one sentence
saying why. What a copy to the device costs: :func:`time_host_to_device` (timed with
:mod:`llmcourse.timing`). The data-sheet peak FLOP/s of known GPUs, :func:`peak_flops`, comes
from :mod:`llmcourse.flops`.

Example:
    >>> plan = pick_dtype("cuda", capability=(7, 5))
    >>> plan.autocast_dtype, plan.use_grad_scaler
    (torch.float16, True)
    >>> pick_dtype("cuda", capability=(8, 0)).dtype_name
    'bfloat16'
    >>> pick_dtype("cpu").autocast_dtype is None
    True
"""

from __future__ import annotations

import contextlib
import os
import platform
import warnings
from dataclasses import dataclass
from typing import Any, ContextManager

import torch

from llmcourse.flops import peak_flops
from llmcourse.timing import CopyTiming, time_copy

__all__ = ["PrecisionPlan", "pick_device", "pick_device_with_reason", "time_host_to_device",
           "CopyTiming", "pick_dtype", "describe_device", "enable_tf32", "peak_flops",
           "normalize_dtype_name", "cpu_name"]

_DTYPE_ALIASES: dict[str, str] = {
    "auto": "auto",
    "float32": "float32", "fp32": "float32", "float": "float32", "32": "float32",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
    "float16": "float16", "fp16": "float16", "half": "float16", "16": "float16",
}

_TORCH_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16,
}


def normalize_dtype_name(requested: str | torch.dtype) -> str:
    """Map a precision request to one of ``"auto"``, ``"float32"``, ``"bfloat16"``, ``"float16"``.

    Accepts the canonical names, the usual short forms (``"fp32"``, ``"bf16"``, ``"fp16"``,
    ``"half"``) and the matching :class:`torch.dtype` objects.

    >>> normalize_dtype_name("bf16"), normalize_dtype_name(torch.float16)
    ('bfloat16', 'float16')
    """
    if isinstance(requested, torch.dtype):
        for name, dt in _TORCH_DTYPES.items():
            if dt == requested:
                return name
        raise ValueError(
            f"unsupported training dtype {requested}; use torch.float32, torch.bfloat16 or "
            "torch.float16 (or 'auto')"
        )
    key = str(requested).strip().lower()
    if key.startswith("torch."):
        key = key[len("torch."):]
    if key not in _DTYPE_ALIASES:
        raise ValueError(
            f"unknown dtype {requested!r}; use one of 'auto', 'float32', 'bfloat16', 'float16' "
            "(or the short forms 'fp32', 'bf16', 'fp16')"
        )
    return _DTYPE_ALIASES[key]


# --------------------------------------------------------------------------------------------
# Device
# --------------------------------------------------------------------------------------------


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def _resolve_device(preference: str, has_cuda: bool, has_mps: bool) -> torch.device:
    """Pure decision behind :func:`pick_device` (testable without the hardware)."""
    pref = str(preference).strip().lower()
    if pref == "auto":
        if has_cuda:
            return torch.device("cuda")
        if has_mps:
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(pref)
    except RuntimeError as exc:
        raise ValueError(
            f"unknown device {preference!r}; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
        ) from exc
    if dev.type == "cuda" and not has_cuda:
        raise ValueError(
            f"device {preference!r} was requested but CUDA is not available in this PyTorch "
            f"build / machine; use device='auto' (picks the best available) or 'cpu'"
        )
    if dev.type == "mps" and not has_mps:
        raise ValueError(
            f"device {preference!r} was requested but the MPS backend is not available; "
            "use device='auto' or 'cpu'"
        )
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(
            f"device type {dev.type!r} is not supported by llmcourse; use 'cpu', 'cuda' or 'mps'"
        )
    return dev


def pick_device(preference: str | torch.device = "auto") -> torch.device:
    """Return the device to train on.

    ``"auto"`` picks CUDA if a GPU is visible, else Apple's MPS, else the CPU. An explicit
    ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"mps"`` is checked for availability and returned.

    >>> pick_device("cpu")
    device(type='cpu')
    """
    if isinstance(preference, torch.device):
        preference = str(preference)
    return _resolve_device(preference, torch.cuda.is_available(), _mps_available())


def _device_reason(preference: str, dev: torch.device, has_cuda: bool, has_mps: bool,
                   cuda_build: bool = True) -> str:
    """Pure text behind :func:`pick_device_with_reason` (testable without the hardware)."""
    if str(preference).strip().lower() != "auto":
        return f"{dev} was requested explicitly (and is available)"
    if dev.type == "cuda":
        return "a CUDA GPU is visible: CUDA comes first (the fastest, best-supported backend)"
    if dev.type == "mps":
        return ("no CUDA GPU, but Apple's MPS backend is available (the GPU of an Apple-silicon "
                "Mac); operators without an MPS kernel raise or, with "
                "PYTORCH_ENABLE_MPS_FALLBACK=1, run on the CPU")
    why = ("this PyTorch build has no CUDA support (a CPU-only wheel)" if not cuda_build
           else "no CUDA GPU is visible (no GPU, no driver, or CUDA_VISIBLE_DEVICES hides it)")
    return f"{why} and MPS is not available, so the CPU (on Colab: Runtime > Change runtime type > GPU)"


def pick_device_with_reason(preference: str | torch.device = "auto") -> tuple[torch.device, str]:
    """:func:`pick_device`, and one sentence saying why that device.

    >>> dev, why = pick_device_with_reason("cpu")
    >>> dev, why
    (device(type='cpu'), 'cpu was requested explicitly (and is available)')
    """
    if isinstance(preference, torch.device):
        preference = str(preference)
    has_cuda, has_mps = torch.cuda.is_available(), _mps_available()
    dev = _resolve_device(preference, has_cuda, has_mps)
    reason = _device_reason(preference, dev, has_cuda, has_mps, torch.version.cuda is not None)
    return dev, reason


def time_host_to_device(
    nbytes: int = 16 * 2**20,
    device: str | torch.device | None = None,
    pinned: bool | None = None,
    repeats: int = 5,
) -> CopyTiming:
    """Measure copying ``nbytes`` from a CPU tensor to ``device`` (default: :func:`pick_device`).

    On CUDA the source is page-locked ("pinned") by default and the copy ``non_blocking``:
    the GPU's copy engine reads pinned memory directly, while a pageable source is first
    staged through a pinned buffer by the driver. ``pinned=False`` measures that slower path.
    On the CPU the "copy" is a plain memory copy, the baseline. Pinning needs CUDA.

    >>> t = time_host_to_device(2**20, "cpu", repeats=2)
    >>> t.device, t.nbytes, t.pinned, t.seconds > 0
    ('cpu', 1048576, False, True)
    """
    dev = pick_device(device if device is not None else "auto")
    if pinned is None:
        pinned = dev.type == "cuda"
    if pinned and dev.type != "cuda":
        raise ValueError(f"pinned memory only speeds up copies to CUDA; use pinned=False on {dev}")
    if nbytes < 1 or repeats < 1:
        raise ValueError(f"nbytes and repeats must be >= 1, got {nbytes} and {repeats}")
    return time_copy(nbytes, dev, pinned, repeats)


# --------------------------------------------------------------------------------------------
# Precision
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PrecisionPlan:
    """How a training step runs its arithmetic on one device.

    Attributes:
        device_type: ``"cuda"``, ``"cpu"`` or ``"mps"``.
        autocast_dtype: the lower precision that :func:`torch.autocast` uses for matmuls, or
            ``None`` for plain float32. Parameters and optimizer state always stay float32.
        use_grad_scaler: whether the loss must be scaled (float16 only).
        reason: one sentence saying why this plan was chosen (for logs and lessons).
    """

    device_type: str
    autocast_dtype: torch.dtype | None
    use_grad_scaler: bool
    reason: str = ""

    @property
    def dtype_name(self) -> str:
        """``"float32"``, ``"bfloat16"`` or ``"float16"``."""
        if self.autocast_dtype is None:
            return "float32"
        return str(self.autocast_dtype).replace("torch.", "")

    def autocast(self) -> ContextManager[Any]:
        """The context manager to run forward passes (and the loss) under."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.autocast_dtype)

    def make_grad_scaler(self) -> torch.amp.GradScaler:
        """A :class:`torch.amp.GradScaler`, enabled only when this plan needs one."""
        with warnings.catch_warnings():
            # A disabled scaler on a machine without CUDA warns; it is a harmless no-op here.
            warnings.simplefilter("ignore")
            return torch.amp.GradScaler(self.device_type, enabled=self.use_grad_scaler)

    def __str__(self) -> str:
        scaler = " + GradScaler" if self.use_grad_scaler else ""
        mode = "float32" if self.autocast_dtype is None else f"{self.dtype_name} autocast"
        return f"{self.device_type}: {mode}{scaler}"


def _cuda_capability(device: torch.device) -> tuple[int, int]:
    if not torch.cuda.is_available():
        raise ValueError(
            "pick_dtype needs the compute capability of the CUDA device, but CUDA is not "
            "available here; pass it explicitly, e.g. pick_dtype('cuda', capability=(8, 0))"
        )
    major, minor = torch.cuda.get_device_capability(device)
    return int(major), int(minor)


def pick_dtype(
    device: str | torch.device,
    capability: tuple[int, int] | None = None,
    requested: str | torch.dtype = "auto",
) -> PrecisionPlan:
    """Choose the precision plan for ``device``.

    Args:
        device: the training device (``"cuda"``, ``"cuda:0"``, ``"cpu"``, ``"mps"`` or a
            :class:`torch.device`). Only its type matters.
        capability: the CUDA compute capability ``(major, minor)``; ``None`` queries the
            GPU. Pass it explicitly to reason about a GPU you do not have (tests, lessons).
        requested: ``"auto"`` (the table in the module docstring) or an explicit
            ``"float32"``, ``"bfloat16"``, ``"float16"``.

    Raises:
        ValueError: for combinations that do not work well: bfloat16 on a CUDA GPU below
            capability 8.0 (emulated, very slow), float16 on the CPU, bfloat16 on MPS.

    >>> str(pick_dtype("cuda", capability=(8, 6)))
    'cuda: bfloat16 autocast'
    >>> str(pick_dtype("cuda", capability=(7, 5)))
    'cuda: float16 autocast + GradScaler'
    >>> str(pick_dtype("cpu", requested="bf16"))
    'cpu: bfloat16 autocast'
    """
    dev = torch.device(device) if not isinstance(device, torch.device) else device
    want = normalize_dtype_name(requested)
    kind = dev.type

    if kind == "cuda":
        cap = tuple(capability) if capability is not None else _cuda_capability(dev)
        if len(cap) != 2:
            raise ValueError(f"capability must be a (major, minor) pair, got {capability!r}")
        native_bf16 = cap >= (8, 0)
        cap_txt = f"{cap[0]}.{cap[1]}"
        if want == "auto":
            want = "bfloat16" if native_bf16 else "float16"
        if want == "float32":
            return PrecisionPlan("cuda", None, False, "float32 requested (TF32 matmuls allowed)")
        if want == "bfloat16":
            if not native_bf16:
                raise ValueError(
                    f"bfloat16 was requested on a CUDA GPU of compute capability {cap_txt}, "
                    "which has no bfloat16 tensor cores (PyTorch would emulate it, slowly); "
                    "use dtype='float16' (with a GradScaler) or 'auto'"
                )
            return PrecisionPlan(
                "cuda", torch.bfloat16, False, f"capability {cap_txt} >= 8.0: native bfloat16"
            )
        return PrecisionPlan(
            "cuda",
            torch.float16,
            True,
            f"capability {cap_txt}: float16 autocast; GradScaler guards against underflow",
        )

    if kind == "cpu":
        if want in ("auto", "float32"):
            return PrecisionPlan("cpu", None, False, "CPU: float32 by default")
        if want == "bfloat16":
            return PrecisionPlan("cpu", torch.bfloat16, False, "CPU: bfloat16 autocast requested")
        raise ValueError(
            "float16 autocast on the CPU is slow and needs loss scaling; use dtype='bfloat16' "
            "or 'float32' on the CPU"
        )

    if kind == "mps":
        if want in ("auto", "float32"):
            return PrecisionPlan("mps", None, False, "MPS: float32 by default")
        if want == "float16":
            return PrecisionPlan(
                "mps", torch.float16, True, "MPS: float16 autocast requested, with GradScaler"
            )
        raise ValueError(
            "bfloat16 is not supported by llmcourse on MPS; use dtype='float32' (default) or "
            "'float16'"
        )

    raise ValueError(f"device type {kind!r} is not supported; use 'cpu', 'cuda' or 'mps'")


def enable_tf32() -> None:
    """Let float32 matmuls and convolutions on CUDA use TF32 tensor cores.

    TF32 keeps float32's range with a 10-bit mantissa; on Ampere and newer it speeds up the
    float32 parts of training (and whole float32 runs) severalfold at no visible cost in
    quality. It has no effect on the CPU or on GPUs older than Ampere.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.set_float32_matmul_precision("high")
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def cpu_name() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (else what :mod:`platform` says), e.g. ``"AMD EPYC"``."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "CPU"


def _cpu_memory_gb() -> float | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    except (ValueError, OSError, AttributeError):
        return None


def describe_device(device: str | torch.device | None = None) -> dict[str, Any]:
    """A small, printable description of ``device`` (default: :func:`pick_device`).

    Keys: ``device``, ``type``, ``name``, ``capability`` (CUDA only, else ``None``),
    ``memory_gb`` (total memory, GPU or system RAM; ``None`` if unknown), ``precision`` (the
    ``auto`` precision plan as text), ``peak_flops`` (known data-sheet peak for that plan or
    ``None``), ``torch`` (version) and ``cpu_threads``.

    >>> describe_device("cpu")["type"]
    'cpu'
    """
    dev = pick_device(device if device is not None else "auto")
    info: dict[str, Any] = {
        "device": str(dev),
        "type": dev.type,
        "name": None,
        "capability": None,
        "memory_gb": None,
        "precision": None,
        "peak_flops": None,
        "torch": torch.__version__,
        "cpu_threads": torch.get_num_threads(),
    }
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        info["name"] = props.name
        info["capability"] = (props.major, props.minor)
        info["memory_gb"] = round(props.total_memory / 1024**3, 2)
        plan = pick_dtype(dev, capability=(props.major, props.minor))
        info["peak_flops"] = peak_flops(props.name, plan.dtype_name)
    elif dev.type == "mps":
        info["name"] = f"Apple MPS ({platform.machine()})"
        rec = getattr(getattr(torch, "mps", None), "recommended_max_memory", None)
        mem = rec() if callable(rec) else None
        info["memory_gb"] = round(mem / 1024**3, 2) if mem else _cpu_memory_gb()
        plan = pick_dtype(dev)
    else:
        info["name"] = cpu_name()
        mem = _cpu_memory_gb()
        info["memory_gb"] = round(mem, 2) if mem is not None else None
        plan = pick_dtype(dev)
    info["precision"] = str(plan)
    return info
