"""Operations per training step of the course's small models: the input of the launch bound.

A small model on a GPU spends its step launching kernels, not computing: each PyTorch operation
costs a few microseconds of Python, dispatch and launch whatever its size. The launch-bound
figures of ``llmcourse/gpu_figures.py`` (``LaunchFigure``) multiply the number of operations a
step runs by an assumed cost per operation. This script counts those operations: one training
step (forward, backward, AdamW) of each model at its lesson's real-run size, on the CPU, with
``torch.profiler``; an operation is an ``aten::`` call with no ``aten::`` call inside it that is
not a view or an allocation (on a GPU, about one kernel each). Beside the count it prints the
step's arithmetic (``torch.utils.flop_counter``), to compare with what the operations cost to
launch: a T4 does a GFLOP in well under a millisecond. Run::

    python benchmarks/count_ops.py

and copy the counts into ``OPS_PER_STEP`` of ``llmcourse/gpu_figures.py`` when they change.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from llmcourse.model import GPT, BigramConfig, BigramLM, GPTConfig, MLPConfig, MLPLM, WaveNetConfig, WaveNetLM

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lesson_models import AveragingLM, OneHeadLM  # noqa: E402  (defined in days 08 and 09 only)

NOT_KERNELS = {
    "aten::view", "aten::reshape", "aten::t", "aten::transpose", "aten::expand", "aten::as_strided",
    "aten::unsqueeze", "aten::squeeze", "aten::permute", "aten::detach", "aten::alias", "aten::slice",
    "aten::select", "aten::_unsafe_view", "aten::empty", "aten::empty_like", "aten::empty_strided",
    "aten::resolve_conj", "aten::resolve_neg", "aten::lift_fresh", "aten::result_type", "aten::item",
    "aten::_local_scalar_dense", "aten::is_nonzero", "aten::split", "aten::unbind", "aten::narrow",
    "aten::chunk", "aten::split_with_sizes", "aten::contiguous", "aten::set_",
}

# (name in gpu_figures.OPS_PER_STEP, model, batch, sequence length): each lesson's real-run size
MODELS = {
    "bigram": (lambda: BigramLM(BigramConfig(vocab_size=65)), 64, 256),
    "mlp": (lambda: MLPLM(MLPConfig(vocab_size=65, block_size=16, n_embd=24, n_hidden=256)), 32, 64),
    "wavenet": (lambda: WaveNetLM(WaveNetConfig(vocab_size=65, block_size=32, n_embd=24, n_hidden=96)), 32, 64),
    "gpt 2 x 64": (lambda: GPT(GPTConfig(vocab_size=65, block_size=32, n_layer=2, n_head=4, n_embd=64)), 32, 32),
    # day 08's three runs: the bigram-like baseline, the uniform and the recency-weighted average
    "averaging none": (lambda: AveragingLM(65, 64, "none"), 64, 128),
    "averaging uniform": (lambda: AveragingLM(65, 64, "uniform"), 64, 128),
    "averaging recency": (lambda: AveragingLM(65, 64, "recency"), 64, 128),
    "one head": (lambda: OneHeadLM(65, 128, 64), 64, 128),   # day 09
}


def count(make, batch: int, T: int) -> int:
    """Kernel-like operations in one AdamW training step of ``make()`` on ``(batch, T)`` tokens."""
    torch.manual_seed(0)
    model = make()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randint(0, 65, (batch, T))
    y = torch.randint(0, 65, (batch, T))

    def step():
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(2):
        step()                                  # the optimizer's state exists from here on
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    events = [e for e in prof.events() if e.name.startswith("aten::")]
    leaves = [e for e in events if not any(c.name.startswith("aten::") for c in e.cpu_children)]
    return sum(e.name not in NOT_KERNELS for e in leaves)


def flops(make, batch: int, T: int) -> int:
    """Arithmetic of one forward + backward of ``make()`` on ``(batch, T)`` tokens, as
    ``torch.utils.flop_counter`` counts it (matrix multiplies and attention: the work that matters).

    Attention runs on SDPA's math backend here: the counter has no formula for the CPU's fused
    attention kernel and would leave its two matrix products (``q @ k^T``, ``att @ v``) out."""
    torch.manual_seed(0)
    model = make()
    x = torch.randint(0, 65, (batch, T))
    y = torch.randint(0, 65, (batch, T))
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        _, loss = model(x, y)
        loss.backward()
    return counter.get_total_flops()


def main() -> None:
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}; one training step, forward + backward + AdamW")
    for name, (make, batch, T) in MODELS.items():
        print(f"{name:18s} {batch:3d} x {T:3d}  {count(make, batch, T):4d} operations  "
              f"{flops(make, batch, T) / 1e9:5.2f} GFLOP")


if __name__ == "__main__":
    main()
