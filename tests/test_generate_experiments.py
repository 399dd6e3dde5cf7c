"""Sample measures (distinct-n, repeated n-grams, the model's own loss), the grid and the explorer."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from llmcourse.generate import generate
from llmcourse.generate.experiments import (distinct_n, ngrams, repeated_ngram_rate, sample_grid,
                                            sample_loss)
from llmcourse.generate.explorer import next_token_probs, plot_next_token
from llmcourse.model import GPT, GPTConfig


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=11, block_size=24, n_layer=1, n_head=2, n_embd=16)).eval()


def test_ngrams():
    assert ngrams([1, 2, 3], 3) == [(1, 2, 3)]
    assert ngrams([1, 2], 3) == []
    assert ngrams("abc", 1) == [("a",), ("b",), ("c",)]


def test_distinct_n_counts_ngrams_within_samples():
    # by hand: bigrams ab bc | ca ab -> 4 bigrams, 3 different
    assert distinct_n(["abc", "cab"], 2) == 0.75
    # joined, "abccab" would add the bigram (c, c) across the boundary: 5 bigrams, 4 different
    assert distinct_n(["abccab"], 2) == 0.8
    assert distinct_n(["aaaa"], 1) == 0.25
    assert distinct_n([[1, 2, 3, 4]], 2) == 1.0
    assert distinct_n(["a", "b"], 2) == 0.0       # no sample is 2 long
    assert distinct_n([], 1) == 0.0
    assert distinct_n(["abc", "cab"], 2, digits=None) == 0.75
    assert distinct_n(["aab"], 1, digits=None) == pytest.approx(2 / 3, abs=1e-12)


def test_repeated_rate_is_within_each_sample():
    assert repeated_ngram_rate(["abab"], 2) == pytest.approx(1 / 3, abs=1e-4)  # ab ba ab
    assert repeated_ngram_rate(["ab", "ab"], 2) == 0.0    # shared between samples: no repeat
    assert repeated_ngram_rate(["aaaa", "bc"], 1) == pytest.approx(3 / 6, abs=1e-4)
    assert repeated_ngram_rate([["the"] * 5], 2) == 0.75  # (the the) x4: 3 repeats
    assert repeated_ngram_rate([], 2) == 0.0


@pytest.mark.parametrize("bad", ["one string", 5])
def test_measures_refuse_a_bare_sample(bad):
    with pytest.raises(ValueError, match="list of samples"):
        distinct_n(bad, 2)
    with pytest.raises(ValueError, match="list of samples"):
        repeated_ngram_rate(bad, 2)


def test_measures_refuse_n_below_1():
    with pytest.raises(ValueError, match="n must be >= 1"):
        distinct_n(["ab"], 0)


def test_sample_loss_is_the_cross_entropy_of_the_sampled_tokens(model):
    rows = generate(model, [[1, 2], [3, 4]], 10, seed=0)  # (2, 12)
    logits, _ = model(rows[:, :-1])
    want = F.cross_entropy(logits[:, 1:].reshape(-1, 11), rows[:, 2:].reshape(-1)).item()
    assert sample_loss(model, rows, 2) == pytest.approx(want, abs=1e-6)
    # the prompt's own tokens are not counted
    assert sample_loss(model, rows, 1) != pytest.approx(want, abs=1e-6)


def test_sample_loss_edges(model):
    rows = torch.zeros(1, 26, dtype=torch.long)
    with pytest.raises(ValueError, match="block_size 24"):
        sample_loss(model, rows, 1)
    assert math.isfinite(sample_loss(model, rows[:, :25], 1))  # 25 tokens: 24 predicted
    with pytest.raises(ValueError, match="prompt_len"):
        sample_loss(model, rows[:, :5], 5)
    model.train()
    sample_loss(model, rows[:, :5], 1)
    assert model.training  # the mode is given back
    model.eval()


def test_sample_grid_rows(model):
    rows = sample_grid(model, [1], [0.5, 1.5], [3, None], [0.9], num_samples=4, max_new_tokens=12,
                       seed=3, distinct=(1, 3), repeated=2)
    assert [(r["temperature"], r["top_k"], r["top_p"]) for r in rows] == [
        (0.5, 3, 0.9), (0.5, None, 0.9), (1.5, 3, 0.9), (1.5, None, 0.9)]
    for r in rows:
        assert len(r["samples"]) == 4 and all(len(s) == 12 for s in r["samples"])
        assert r["distinct_1"] == distinct_n(r["samples"], 1)
        assert r["distinct_3"] == distinct_n(r["samples"], 3)
        assert r["repeated_2"] == repeated_ngram_rate(r["samples"], 2)
        assert r["loss"] > 0
    # top-k 3: every sampled token is among the model's 3 most likely at its position
    out = torch.tensor([[1] + s for s in rows[0]["samples"]])
    logits, _ = model(out[:, :-1])
    top3 = logits.topk(3, dim=-1).indices  # (4, 12, 3)
    assert (top3 == out[:, 1:, None]).any(-1).all()
    # the same seed reproduces the grid; units change what is counted
    again = sample_grid(model, [1], [0.5], [3], [0.9], num_samples=4, max_new_tokens=12, seed=3)
    assert again[0]["samples"] == rows[0]["samples"]
    pairs = sample_grid(model, [1], [0.5], [3], [0.9], num_samples=4, max_new_tokens=12, seed=3,
                        units=lambda ids: [i // 2 for i in ids])
    assert pairs[0]["distinct_1"] == distinct_n([[i // 2 for i in s] for s in rows[0]["samples"]], 1)


def test_sample_grid_lower_temperature_lower_loss(model):
    rows = sample_grid(model, [1], [0.3, 2.0], [None], [None], num_samples=6, max_new_tokens=20)
    assert rows[0]["loss"] < rows[1]["loss"]


def test_next_token_probs(model):
    before, after = next_token_probs(model, [1, 2, 3], temperature=0.7, top_k=4, top_p=0.9)
    logits, _ = model(torch.tensor([[1, 2, 3]]))
    assert torch.allclose(before, torch.softmax(logits[0, -1] / 0.7, -1), atol=1e-6)
    kept = after > 0
    assert 1 <= int(kept.sum()) <= 4
    assert torch.allclose(after[kept], before[kept] / before[kept].sum(), atol=1e-6)
    assert after.sum().item() == pytest.approx(1.0, abs=1e-6)
    # nothing filtered: the same distribution; greedy: all mass on the argmax
    b, a = next_token_probs(model, [1, 2, 3])
    assert torch.allclose(a, b)
    _, g = next_token_probs(model, [1, 2, 3], temperature=0)
    assert g.max().item() == 1.0 and int(g.argmax()) == int(logits[0, -1].argmax())
    # a prompt longer than block_size is cut to its last block_size tokens
    long = list(range(11)) * 3
    assert torch.allclose(next_token_probs(model, long)[0], next_token_probs(model, long[-24:])[0])
    with pytest.raises(ValueError, match="top_k"):
        next_token_probs(model, [1], top_k=0)


def test_plot_next_token_draws_two_bar_series(model):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    before, after = next_token_probs(model, [1, 2], top_k=3)
    ax = plot_next_token(before, after, decode=lambda ids: "abcdefghij\n"[ids[0]], top=5)
    assert len(ax.patches) == 10   # 5 tokens, before and after
    assert "3 of 11 tokens kept" in ax.get_title()
    plt.close("all")


def test_explorer_builds_and_updates(model):
    pytest.importorskip("ipywidgets")
    import matplotlib

    matplotlib.use("Agg")
    from llmcourse.generate.explorer import explorer
    from llmcourse.tokenizers import CharTokenizer

    tok = CharTokenizer.from_text("abcdefghij\n")
    panel = explorer(model, tok, prompt="abc", max_new_tokens=5)
    sliders = {c.description: c for box in panel.children[:2] for c in box.children}
    assert set(sliders) == {"temperature", "top-k (0 off)", "top-p (1 off)", "seed"}
    out = panel.children[-1]
    sliders["top-k (0 off)"].value = 2   # a change redraws without raising
    panel.children[2].value = "zz"       # characters the tokenizer never saw
    assert out is panel.children[-1]
