"""The steps of ``benchmarks/gpu_acceptance.py``: each lesson's ``REAL_RUN`` path, a few steps long.

Every step calls the package the way the lessons and the CLI call it (public names only) and
returns a dict of measurements (``tokens_per_s``, ``mfu``, ``compile_s`` and notes). The runner
(``gpu_acceptance.py``) times each step, catches its error and records its peak memory.
``ctx.pick(real, tiny)`` chooses the real size on CUDA and a tiny one for ``--cpu-smoke``.

Run as ``python gpu_acceptance_steps.py SPEC_JSON`` under ``torchrun`` it is the DDP worker.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gpu_acceptance_ctx import (SHAKESPEARE, T4_MEMORY_GB, TINY, Ctx, sync, timed_loop,  # noqa: E402
                                trainer_run)
from llmcourse.data import get_batch  # noqa: E402
from llmcourse.threads import kernel_env  # noqa: E402
from llmcourse.device import pick_dtype, time_host_to_device  # noqa: E402
from llmcourse.finetune import (apply_lora, count_parameters, distillation_loss, dpo_loss,  # noqa: E402
                                sequence_logps)
from llmcourse.generate import beam_search, generate  # noqa: E402
from llmcourse.model import (GPT, BigramConfig, BigramLM, GPTConfig, MLPConfig, MLPLM,  # noqa: E402
                             WaveNetConfig, WaveNetLM, flops_per_token)

# ---------------------------------------------------------------------------------------------
# The steps
# ---------------------------------------------------------------------------------------------


def step_sdpa(ctx: Ctx) -> dict[str, Any]:
    """Which SDPA kernel runs at GPT-2 small's attention shape, and day 10's manual vs fused."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    B, H, T, D = ctx.pick((8, 12, 1024, 64), (2, 2, 64, 16))
    dtype = ctx.plan().autocast_dtype or torch.float32
    q, k, v = (torch.randn(B, H, T, D, device=ctx.device, dtype=dtype) for _ in range(3))
    works = []
    for backend in (SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH):
        if ctx.t4 and backend == SDPBackend.FLASH_ATTENTION:
            continue  # a T4 (sm75) has no FlashAttention kernel
        try:
            with sdpa_kernel([backend]):
                F.scaled_dot_product_attention(q, k, v, is_causal=True)
            works.append(backend.name)
        except RuntimeError:
            pass
    mask = torch.ones(T, T, device=ctx.device, dtype=torch.bool).tril()

    def manual():
        att = (q @ k.transpose(-2, -1)) * D**-0.5
        return att.masked_fill(~mask, float("-inf")).softmax(-1) @ v

    fused = timed_loop(ctx, lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                       B * T, 0.0, "float32", 5)
    slow = timed_loop(ctx, manual, B * T, 0.0, "float32", 5)
    return {"tokens_per_s": fused["tokens_per_s"], "sdpa_kernel": works[0] if works else None,
            "kernels_available": works, "dtype": str(dtype).replace("torch.", ""),
            "manual_over_sdpa": round(slow["ms_per_iter"] / fused["ms_per_iter"], 2)}


def step_data(ctx: Ctx) -> dict[str, Any]:
    """Days 01-05: ids on the device, and get_batch's pinned, non-blocking copies (day 04)."""
    ids = ctx.ids(65, ctx.pick(1_115_394, 50_000))
    B, T = ctx.pick((64, 256), (8, 32))
    g = torch.Generator().manual_seed(0)
    res = timed_loop(ctx, lambda: get_batch(ids, B, T, device=ctx.device, generator=g), B * T, 0.0,
                     "float32", ctx.pick(200, 20))
    res.pop("mfu")
    res["on_device"] = str(ids.to(ctx.device).device)
    if ctx.cuda:
        res["copy_pinned"] = str(time_host_to_device(64 * 2**20, ctx.device, pinned=True))
        res["copy_pageable"] = str(time_host_to_device(64 * 2**20, ctx.device, pinned=False))
    return res


def step_baselines(ctx: Ctx) -> dict[str, Any]:
    """Days 06-09: the bigram, MLP and WaveNet models and a one-layer attention model train."""
    V, out = 65, {}
    models = {"bigram": BigramLM(BigramConfig(vocab_size=V)),
              "mlp": MLPLM(MLPConfig(vocab_size=V, **ctx.pick(dict(block_size=16, n_embd=24, n_hidden=256),
                                                              dict(block_size=8, n_embd=16, n_hidden=32)))),
              "wavenet": WaveNetLM(WaveNetConfig(vocab_size=V, **ctx.pick(dict(block_size=32, n_embd=24, n_hidden=96),
                                                                          dict(block_size=16, n_embd=16, n_hidden=32)))),
              "attention": GPT(GPTConfig(vocab_size=V, n_layer=1, n_head=4, **ctx.pick(
                  dict(n_embd=64, block_size=128), dict(n_embd=16, block_size=32))))}
    ids = ctx.ids(V)
    B, T = ctx.pick((64, 128), (8, 32))
    for name, model in models.items():
        model.to(ctx.device)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        g = torch.Generator().manual_seed(0)

        def step():
            _, loss = model(*get_batch(ids, B, T, device=ctx.device, generator=g))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        out[name] = round(timed_loop(ctx, step, B * T, 0.0, "float32", ctx.pick(20, 3))["tokens_per_s"])
    return {"tokens_per_s": out["attention"], "per_model_tokens_per_s": out}


def step_train(ctx: Ctx) -> dict[str, Any]:
    """The shakespeare-char preset through the Trainer (bf16 autocast where the card has it)."""
    return trainer_run(ctx, "shakespeare-char", iters=ctx.pick(30, 4))


def step_train_fp32(ctx: Ctx) -> dict[str, Any]:
    """Days 15, 16, 29: the same model in float32 (their loops do not autocast)."""
    return trainer_run(ctx, "shakespeare-char", train={"dtype": "float32", "batch_size": ctx.pick(32, 4)},
                       iters=ctx.pick(20, 3))


def step_train_compiled(ctx: Ctx) -> dict[str, Any]:
    """Day 18: compile=True (torch.compile of the training step)."""
    if ctx.smoke:
        return {"skipped": "compiling a training step takes minutes on 2 CPU cores"}
    return trainer_run(ctx, "shakespeare-char", train={"compile": True}, iters=30)


def step_fp16_scaler(ctx: Ctx) -> dict[str, Any]:
    """The T4 path: float16 autocast + GradScaler, and a scaler that skips an overflowing step."""
    if ctx.cuda:
        res = trainer_run(ctx, "shakespeare-char", train={"dtype": "float16"}, iters=20)
        scaler = pick_dtype(ctx.device, capability=(7, 5)).make_grad_scaler()
    else:
        res = {"note": "no CUDA: the overflow check runs with a CPU GradScaler; fp16 training needs CUDA"}
        scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)
    assert scaler.is_enabled(), "the float16 plan must enable its GradScaler"
    model = torch.nn.Linear(4, 4).to(ctx.device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = model.weight.detach().clone()
    scaler.scale(model(torch.ones(2, 4, device=ctx.device)).sum()).backward()
    model.weight.grad[0, 0] = float("inf")  # an overflow in float16
    scale = scaler.get_scale()
    scaler.step(opt)
    scaler.update()
    skipped = torch.equal(before, model.weight.detach())
    if not skipped or scaler.get_scale() >= scale:
        raise AssertionError(f"the scaler did not skip the overflowing step (scale {scale} -> "
                             f"{scaler.get_scale()}, weights changed: {not skipped})")
    res.update(overflow_step_skipped=True, scale_after=scaler.get_scale())
    return res


def step_tinystories(ctx: Ctx) -> dict[str, Any]:
    """Days 27, 31, 32: the tinystories preset, GPT-2 vocabulary, on synthetic ids."""
    res = trainer_run(ctx, "tinystories", vocab=50257, iters=ctx.pick(20, 2))
    res["data"] = "synthetic ids (vocabulary 50257)"
    return res


def step_gpt2(ctx: Ctx) -> dict[str, Any]:
    """GPT-2 small's shape (gpt2-124m preset) for a few steps, one micro-batch per step."""
    res = trainer_run(ctx, "gpt2-124m", vocab=50304, train={"grad_accum_steps": 1}, iters=ctx.pick(8, 2))
    res["note"] = "grad_accum_steps=1 (the preset's 40 scales time, not memory)"
    return res


def _char_model(ctx: Ctx, **shape: Any) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=65, dropout=0.0, **(shape or ctx.pick(SHAKESPEARE, TINY)))).to(ctx.device)


def step_generate(ctx: Ctx) -> dict[str, Any]:
    """Days 19, 21-25: sampling with and without the KV cache."""
    model, n = _char_model(ctx), ctx.pick(200, 20)
    out = {}
    for cache in (True, False):
        t0 = time.perf_counter()
        rows = generate(model, [0], n, temperature=0.8, top_k=50, top_p=0.95, num_samples=ctx.pick(5, 2),
                        use_cache=cache, seed=0)
        sync(ctx)
        out[cache] = rows.numel() - rows.shape[0], time.perf_counter() - t0
    return {"tokens_per_s": out[True][0] / out[True][1],
            "cache_speedup": round(out[False][1] / out[True][1], 2)}


def step_generate_compiled(ctx: Ctx) -> dict[str, Any]:
    """Days 19 and 24: the compiled decoding step (generate(compile=True))."""
    model, n = _char_model(ctx), ctx.pick(300, 8)
    t0 = time.perf_counter()
    generate(model, [0], n, temperature=0.0, compile=True)
    sync(ctx)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    generate(model, [0], n, temperature=0.0, compile=True)
    sync(ctx)
    dt = time.perf_counter() - t0
    return {"tokens_per_s": n / dt, "compile_s": max(0.0, first - dt)}


def step_beam(ctx: Ctx) -> dict[str, Any]:
    """Day 20: beam search with the batched, re-indexed KV cache."""
    model, n = _char_model(ctx), ctx.pick(100, 10)
    t0 = time.perf_counter()
    hyps = beam_search(model, [0], beam_width=ctx.pick(8, 2), max_new_tokens=n, num_return=2)
    sync(ctx)
    return {"tokens_per_s": n / (time.perf_counter() - t0), "hypotheses": len(hyps)}


def step_sweep(ctx: Ctx) -> dict[str, Any]:
    """Days 28 and 33: run_sweep at their real settings, one step a run (needs the prepared data)."""
    from llmcourse.sweep import run_sweep

    preset = ctx.pick("shakespeare-char", "shakespeare-char-cpu")
    model = ctx.pick({"n_layer": 2, "n_head": 4, "n_embd": 128, "block_size": 256}, TINY)
    train = {"max_iters": 1, "lr_decay_iters": 1, "warmup_iters": 0, "eval_interval": 1, "eval_iters": 1,
             "log_interval": 1, "device": str(ctx.device), "dtype": ctx.dtype, "batch_size": ctx.pick(64, 4)}
    variants = [("base", {}), ("all four", {"model.norm": "rmsnorm", "model.pos": "rope",
                                             "model.mlp": "swiglu", "model.n_kv_head": 2})]
    t0 = time.perf_counter()
    res = run_sweep(preset, ctx.tmp / "sweep", variants=variants, seeds=1,
                    overrides={"model": model, "train": train}, plot=False)
    return {"runs": len(res.rows), "sweep_s": round(time.perf_counter() - t0, 2)}


def step_widths(ctx: Ctx) -> dict[str, Any]:
    """Day 30: the 2-layer models of the iso-FLOP sweep, one step each at every width."""
    out = {}
    for width in ctx.pick([64, 96, 128, 192, 256], [16, 32]):
        model = _char_model(ctx, n_layer=2, n_head=2, n_embd=width, block_size=ctx.pick(128, 32))
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        x, y = get_batch(ctx.ids(65), ctx.pick(64, 8), model.config.block_size, device=ctx.device)

        def step():
            opt.zero_grad(set_to_none=True)
            model(x, y)[1].backward()
            opt.step()

        out[width] = round(timed_loop(ctx, step, x.numel(), 0.0, "float32", 3)["tokens_per_s"])
    return {"tokens_per_s": out[max(out)], "per_width_tokens_per_s": out}


def _tune_loop(ctx: Ctx, model: GPT, B: int, iters: int, per_token: float) -> dict[str, Any]:
    """Day 34's ``tune``: AdamW on the trainable parameters, float32 as the lesson runs it."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
    ids, T, g = ctx.ids(model.config.vocab_size), model.config.block_size, torch.Generator().manual_seed(0)
    model.train()

    def step():
        _, loss = model(*get_batch(ids, B, T, device=ctx.device, generator=g))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return timed_loop(ctx, step, B * T, per_token, "float32", iters)


def step_finetune(ctx: Ctx) -> dict[str, Any]:
    """Day 34: full fine-tuning and LoRA of the char model, and LoRA r=8 on GPT-2 small's shape."""
    char = _char_model(ctx)
    full = _tune_loop(ctx, copy.deepcopy(char), ctx.pick(32, 4), ctx.pick(10, 2), flops_per_token(char.config))
    lora = apply_lora(char, r=8, alpha=16)
    lora_char = _tune_loop(ctx, lora, ctx.pick(32, 4), ctx.pick(10, 2), 0.0)
    shape = ctx.pick(dict(n_layer=12, n_head=12, n_embd=768, block_size=256), TINY)
    torch.manual_seed(0)
    gpt2 = apply_lora(GPT(GPTConfig(vocab_size=ctx.pick(50257, 512), dropout=0.0, **shape)).to(ctx.device), r=8, alpha=16)
    n_train, n_total = count_parameters(gpt2)
    res = _tune_loop(ctx, gpt2, ctx.pick(8, 2), ctx.pick(10, 2), 4 * n_total)   # about 4N a token
    res.update(full_char_tokens_per_s=round(full["tokens_per_s"]), lora_char_tokens_per_s=round(lora_char["tokens_per_s"]),
               gpt2_trainable=n_train, gpt2_params=n_total, note="tokens_per_s/mfu: GPT-2 + LoRA r=8, float32")
    return res


def step_distill(ctx: Ctx) -> dict[str, Any]:
    """Day 35: a 2-layer student learns from the 6-layer teacher (distillation_loss)."""
    teacher = _char_model(ctx).eval()
    T = teacher.config.block_size
    student = _char_model(ctx, **ctx.pick(dict(n_layer=2, n_head=4, n_embd=128), dict(n_layer=1, n_head=2, n_embd=16)),
                          block_size=T)
    opt = torch.optim.AdamW(student.parameters(), lr=2e-3)
    ids, B, g = ctx.ids(65), ctx.pick(64, 4), torch.Generator().manual_seed(0)

    def step():
        x, y = get_batch(ids, B, T, device=ctx.device, generator=g)
        with torch.no_grad():
            t_logits = teacher(x)[0]
        loss = distillation_loss(student(x)[0], t_logits, y, T=2.0, alpha=0.5)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    fpt = flops_per_token(student.config) + flops_per_token(teacher.config, training=False)
    return timed_loop(ctx, step, B * T, fpt, "float32", ctx.pick(10, 2))


def step_dpo(ctx: Ctx) -> dict[str, Any]:
    """Day 36: DPO on the char model, 32 pairs a step (64 rows of 48 tokens), a frozen reference."""
    policy = _char_model(ctx)
    ref = copy.deepcopy(policy).eval().requires_grad_(False)
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-4)
    pairs, L = ctx.pick((32, 48), (4, 16))
    rows = torch.randint(0, 65, (2 * pairs, L), device=ctx.device)   # chosen rows, then rejected

    def step():
        pol = sequence_logps(policy(rows)[0], rows, L // 3)
        with torch.no_grad():
            ref_lp = sequence_logps(ref(rows)[0], rows, L // 3)
        loss, _, _ = dpo_loss(pol[:pairs], pol[pairs:], ref_lp[:pairs], ref_lp[pairs:], beta=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    fpt = flops_per_token(policy.config, seq_len=L) + flops_per_token(policy.config, seq_len=L, training=False)
    return timed_loop(ctx, step, 2 * pairs * L, fpt, "float32", ctx.pick(10, 2))


def step_ddp(ctx: Ctx) -> dict[str, Any]:
    """DDP through torchrun: NCCL, one process per visible GPU (gloo, 2 processes, in --cpu-smoke)."""
    nproc = torch.cuda.device_count() if ctx.cuda else 2
    spec = {"device": ctx.device.type, "smoke": ctx.smoke, "t4": ctx.t4,
            "t4_memory_gb": T4_MEMORY_GB, "out": str(ctx.tmp / "ddp.json")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           str(Path(__file__).resolve()), json.dumps(spec)]
    env = kernel_env(dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [
        str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH")]))))
    # torchrun starts its workers in their own sessions: killing torchrun alone (what
    # subprocess.run does on a timeout, or the step's alarm interrupting it) leaves them running,
    # holding the GPU. SIGTERM lets torchrun stop them first.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        out, err = proc.communicate(timeout=ctx.pick(80, 50))   # under the step's budget
    except BaseException:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise
    if proc.returncode != 0:
        tail = [line for line in (err or out).strip().splitlines() if line.strip()]
        raise RuntimeError(f"torchrun exited {proc.returncode}: {tail[-1] if tail else '?'}")
    res = json.loads(Path(spec["out"]).read_text())
    res["processes"] = nproc
    return res


def ddp_worker(spec: dict[str, Any]) -> None:
    """One torchrun process: the Trainer sets up the process group itself (backend 'auto')."""
    import torch.distributed as dist

    from llmcourse.train import cleanup_distributed, dist_info_from_env

    info = dist_info_from_env()
    device = torch.device("cuda", info.local_rank) if spec["device"] == "cuda" else torch.device("cpu")
    ctx = Ctx(device, spec["smoke"], spec["t4"], Path(tempfile.mkdtemp(dir=Path(spec["out"]).parent)))
    if ctx.t4:   # the same limits as the parent process: a T4's memory, no flash kernel
        from torch.nn.attention import SDPBackend, sdpa_kernel

        total = torch.cuda.get_device_properties(device).total_memory / 2**30
        torch.cuda.set_per_process_memory_fraction(min(1.0, spec["t4_memory_gb"] / total), device)
        with sdpa_kernel([SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]):
            res = trainer_run(ctx, "shakespeare-char", iters=20)
    else:
        res = trainer_run(ctx, "shakespeare-char", iters=ctx.pick(20, 2))
    res["world_size"] = info.world_size
    if dist.is_initialized():
        res["backend"] = dist.get_backend()
    elif ctx.cuda:   # one GPU: the Trainer runs without DDP, so check NCCL with one rank here
        dist.init_process_group("nccl", device_id=device)
        t = torch.ones(1, device=device)
        dist.all_reduce(t)
        res["backend"] = f"{dist.get_backend()} (1 rank, all_reduce only: one GPU visible)"
    else:
        res["backend"] = "none"
    if ctx.cuda:
        res["peak_mem_gb"] = torch.cuda.max_memory_allocated(device) / 2**30
    if info.is_main:
        Path(spec["out"]).write_text(json.dumps(res))
    cleanup_distributed()


# (name, lessons it covers, function, time budget in seconds on CUDA). Every lesson with a
# REAL_RUN path appears in at least one row; tests/test_gpu_acceptance.py checks it. The two
# compile steps come last: a cold compile is the least predictable cost, and a pass that runs out
# of its budget skips only them.
PLAN: list[tuple[str, tuple[int, ...], Callable[[Ctx], dict[str, Any]], int]] = [
    ("sdpa kernels", (10,), step_sdpa, 20),
    ("data to device", (1, 2, 3, 4, 5, 14), step_data, 20),
    ("baseline models", (6, 7, 8, 9), step_baselines, 30),
    ("train shakespeare-char", (11, 12, 13, 17, 21, 22, 25, 26), step_train, 40),
    ("train fp32", (15, 16, 29), step_train_fp32, 30),
    ("fp16 + GradScaler (T4 path)", (14, 18, 27), step_fp16_scaler, 30),
    ("tinystories", (27, 31, 32), step_tinystories, 30),
    ("gpt2-124m shape", (10, 32), step_gpt2, 40),
    ("generate + KV cache", (19, 21, 22, 23, 24, 25), step_generate, 20),
    ("beam search", (20,), step_beam, 20),
    ("sweep", (28, 33), step_sweep, 40),
    ("scaling widths", (30,), step_widths, 20),
    ("fine-tune + LoRA", (34,), step_finetune, 40),
    ("distillation", (35,), step_distill, 20),
    ("DPO", (36,), step_dpo, 20),
    ("DDP", (18,), step_ddp, 90),   # day 18: accumulation with no_sync under DDP
    ("train compiled", (18,), step_train_compiled, 90),
    ("generate compiled", (19, 24), step_generate_compiled, 60),
]

if __name__ == "__main__":   # the DDP worker, started by step_ddp through torchrun
    ddp_worker(json.loads(sys.argv[1]))
