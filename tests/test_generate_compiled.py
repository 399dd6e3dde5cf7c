"""``generate(..., compile=True)``: the compiled one-token step (llmcourse.generate.compiled).

What must hold: the compiled step computes what the eager step computes (logits to rounding,
greedy tokens over long runs that pass ``block_size`` and refill the cache), for batch 1 and
batches past ``MAX_ROWS``; it compiles once per model, not once per position; it sees weights
changed after it was compiled; and bad arguments or a failed compilation are one clear error.
Compiling costs seconds, so the tests share one model where they can.
"""

from __future__ import annotations

import pytest
import torch

from llmcourse.generate import compiled, generate, stream
from llmcourse.generate.decoding import Decoder
from llmcourse.model import GPT, GPTConfig

BLOCK = 24


def _model(seed: int = 0, **overrides) -> GPT:
    torch.manual_seed(seed)
    # init_std 0.3 spreads the logits, so that greedy decoding meets no near ties (random
    # weights at GPT-2's 0.02 give logits within 1e-3 of each other, where rounding decides).
    cfg = dict(vocab_size=29, block_size=BLOCK, n_layer=2, n_head=2, n_embd=32, dropout=0.0,
               init_std=0.3)
    cfg.update(overrides)
    return GPT(GPTConfig(**cfg)).eval()


@pytest.fixture(scope="module")
def model() -> GPT:
    return _model()


def _teacher_forced_logits(model: GPT, tokens: torch.Tensor, compile: bool, window: int):
    """The logits of every step while feeding ``tokens`` (B, n) one at a time."""
    decoder = Decoder(model, tokens[:, :1], tokens.shape[1] - 1, use_cache=True,
                      block_size=BLOCK, window=window, compile=compile)
    out = []
    with torch.no_grad():
        for t in range(1, tokens.shape[1]):
            out.append(decoder.next_logits())
            decoder.append(tokens[:, t])
    return torch.stack(out, 1)  # (B, n - 1, V)


@pytest.mark.parametrize("batch", [1, 3, compiled.MAX_ROWS + 2])
def test_compiled_logits_match_eager_over_refills(model, batch):
    torch.manual_seed(batch)
    tokens = torch.randint(0, 29, (batch, 3 * BLOCK))  # past block_size: the window refills
    eager = _teacher_forced_logits(model, tokens, compile=False, window=BLOCK // 2)
    fast = _teacher_forced_logits(model, tokens, compile=True, window=BLOCK // 2)
    assert fast.shape == eager.shape == (batch, 3 * BLOCK - 1, 29)
    torch.testing.assert_close(fast, eager, atol=1e-4, rtol=1e-4)


def test_compiled_greedy_tokens_match_eager_over_a_long_run(model):
    prompt = torch.tensor([[1, 2, 3]])
    for keep in (BLOCK // 2, BLOCK):  # rare refills, and the sliding window (a refill a token)
        eager = generate(model, prompt, 4 * BLOCK, temperature=0, keep_on_rebuild=keep)
        fast = generate(model, prompt, 4 * BLOCK, temperature=0, keep_on_rebuild=keep,
                        compile=True)
        assert torch.equal(fast, eager), keep


def test_compiled_sampling_with_a_seed_matches_eager_and_stream(model):
    kw = dict(temperature=1.0, top_k=10, seed=3, keep_on_rebuild=BLOCK // 2)
    eager = generate(model, [[4], [5]], 2 * BLOCK, **kw)
    assert torch.equal(generate(model, [[4], [5]], 2 * BLOCK, compile=True, **kw), eager)
    ids = list(stream(model, [4], 2 * BLOCK, compile=True, **kw))
    assert ids == generate(model, [4], 2 * BLOCK, **kw)[0, 1:].tolist()


def test_one_graph_per_model_whatever_the_positions(model):
    from torch._dynamo.utils import counters

    generate(model, [1], BLOCK, temperature=0, compile=True)  # compiled (if not yet)
    before = counters["stats"]["unique_graphs"]
    for prompt, n in (([1, 2], 5), ([3] * 7, 2 * BLOCK), ([2] * (BLOCK - 3), 10)):
        generate(model, prompt, n, temperature=0, compile=True, keep_on_rebuild=BLOCK // 3)
    assert counters["stats"]["unique_graphs"] == before  # no recompile for new positions


def test_compiled_step_sees_weights_changed_after_compiling():
    model = _model(seed=1)
    prompt = torch.tensor([[0, 1]])
    generate(model, prompt, 10, temperature=0, compile=True)
    with torch.no_grad():
        for p in model.parameters():  # e.g. more training after a first sample
            p.mul_(-1.3)
    want = generate(model, prompt, 2 * BLOCK, temperature=0)
    assert torch.equal(generate(model, prompt, 2 * BLOCK, temperature=0, compile=True), want)


def test_the_compiled_step_does_not_keep_its_model_alive():
    """Its cache is per model, and a model deleted by the learner is freed (its GPU memory too)."""
    import copy
    import gc
    import weakref

    model = _model(seed=2)
    prompt = torch.tensor([[0, 1]])
    want = generate(model, prompt, 6, temperature=0, compile=True)
    twin = copy.deepcopy(model)   # e.g. day 36's frozen reference, copied after sampling
    assert torch.equal(generate(twin, prompt, 6, temperature=0, compile=True), want)
    gone = weakref.ref(model)
    del model
    gc.collect()
    assert gone() is None


def test_the_model_keeps_its_training_mode(model):
    model.train()
    try:
        generate(model, [1], 5, temperature=0, compile=True)
        assert model.training
    finally:
        model.eval()


def test_bad_compile_arguments_are_one_clear_error(model):
    with pytest.raises(ValueError, match="compile must be"):
        generate(model, [1], 5, compile="yes")
    with pytest.raises(ValueError, match="needs use_cache=True"):
        generate(model, [1], 5, compile=True, use_cache=False)


def test_a_failed_compilation_is_one_line(monkeypatch):
    def no_compiler(gm, example_inputs):
        raise RuntimeError("Compiler: cc is not found")

    monkeypatch.setattr(compiled, "_backend", no_compiler)
    model = _model(seed=2)  # a model not compiled yet
    with pytest.raises(compiled.CompileError) as err:
        generate(model, [1], 5, compile=True)
    message = str(err.value)
    assert "\n" not in message and "C++ compiler" in message and "without compile=True" in message
    assert "cc is not found" in message
