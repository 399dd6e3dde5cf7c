"""The day-23 checks pass the solutions, catch plausible mistakes, and say "not done yet" for stubs."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from llmcourse.checks import day23
from llmcourse.generate.experiments import sample_loss
from checklines import one_line, stub


# ---- exercise 1: distinct_n ------------------------------------------------------------------


def good_distinct(samples, n):
    grams = [tuple(s[i:i + n]) for s in samples for i in range(len(s) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def test_distinct_n_passes_and_stub(capsys):
    assert bool(day23.check_distinct_n(good_distinct)) is True
    assert "passed" in one_line(capsys)
    assert bool(day23.check_distinct_n(stub)) is False
    assert "not done yet" in one_line(capsys)


def test_distinct_n_over_tokens_not_ngrams(capsys):
    def tokens(samples, n):
        flat = [t for s in samples for t in s]
        return len(set(flat)) / len(flat)

    assert bool(day23.check_distinct_n(tokens)) is False
    assert "single tokens" in one_line(capsys)


def test_distinct_n_across_sample_boundaries(capsys):
    def joined(samples, n):
        flat = [t for s in samples for t in s]
        grams = [tuple(flat[i:i + n]) for i in range(len(flat) - n + 1)]
        return len(set(grams)) / len(grams)

    assert bool(day23.check_distinct_n(joined)) is False
    assert "across the end of one sample" in one_line(capsys)


def test_distinct_n_divides_by_tokens(capsys):
    def by_tokens(samples, n):
        grams = [tuple(s[i:i + n]) for s in samples for i in range(len(s) - n + 1)]
        return len(set(grams)) / sum(len(s) for s in samples)

    assert bool(day23.check_distinct_n(by_tokens)) is False
    assert "divides by the number of tokens" in one_line(capsys)


def test_distinct_n_mean_of_samples(capsys):
    def mean(samples, n):
        vals = []
        for s in samples:
            g = [tuple(s[i:i + n]) for i in range(len(s) - n + 1)]
            if g:
                vals.append(len(set(g)) / len(g))
        return sum(vals) / len(vals)

    assert bool(day23.check_distinct_n(mean)) is False
    assert "pool the n-grams" in one_line(capsys)


def test_distinct_n_upside_down_and_crash_and_empty(capsys):
    assert bool(day23.check_distinct_n(lambda s, n: 1 / good_distinct(s, n))) is False
    assert "all / different" in one_line(capsys)

    def crashes_on_short(samples, n):
        grams = [tuple(s[i:i + n]) for s in samples for i in range(len(s) - n + 1)]
        return len(set(grams)) / len(grams)   # ZeroDivisionError with no n-grams

    assert bool(day23.check_distinct_n(crashes_on_short)) is False
    assert "ZeroDivisionError" in one_line(capsys)
    assert bool(day23.check_distinct_n(lambda s, n: None)) is False
    assert "should return a number" in one_line(capsys)


# ---- exercise 2: repeated_ngram_rate ----------------------------------------------------------


def good_rate(samples, n):
    repeats = total = 0
    for s in samples:
        seen = set()
        for i in range(len(s) - n + 1):
            g = tuple(s[i:i + n])
            repeats += g in seen
            seen.add(g)
            total += 1
    return repeats / total if total else 0.0


def test_rate_passes_and_stub(capsys):
    assert bool(day23.check_repeated_ngram_rate(good_rate)) is True
    assert "passed" in one_line(capsys)
    assert bool(day23.check_repeated_ngram_rate(stub)) is False
    assert "not done yet" in one_line(capsys)


def test_rate_counts_repeats_across_samples(capsys):
    def across(samples, n):
        seen, repeats, total = set(), 0, 0
        for s in samples:
            for i in range(len(s) - n + 1):
                g = tuple(s[i:i + n])
                repeats += g in seen
                seen.add(g)
                total += 1
        return repeats / total

    assert bool(day23.check_repeated_ngram_rate(across)) is False
    assert "same* sample" in one_line(capsys)


def test_rate_wrong_totals_and_counts(capsys):
    assert bool(day23.check_repeated_ngram_rate(lambda s, n: 1 - good_rate(s, n))) is False
    assert "first time" in one_line(capsys)

    def by_tokens(samples, n):
        r = sum(len(s) - n + 1 - len({tuple(s[i:i + n]) for i in range(len(s) - n + 1)})
                for s in samples if len(s) >= n)
        return r / sum(len(s) for s in samples)

    assert bool(day23.check_repeated_ngram_rate(by_tokens)) is False
    assert "divides by the number of tokens" in one_line(capsys)

    def once_each(samples, n):
        rep = total = 0
        for s in samples:
            g = [tuple(s[i:i + n]) for i in range(len(s) - n + 1)]
            rep += len({x for x in g if g.count(x) > 1})
            total += len(g)
        return rep / total

    assert bool(day23.check_repeated_ngram_rate(once_each)) is False
    assert "three times is two repeats" in one_line(capsys)


# ---- exercise 3: sample_loss -------------------------------------------------------------------


def good_loss(model, rows, prompt_len):
    with torch.no_grad():
        logits, _ = model(rows)
    pred = logits[:, prompt_len - 1:-1]
    return F.cross_entropy(pred.reshape(-1, pred.shape[-1]), rows[:, prompt_len:].reshape(-1)).item()


def test_sample_loss_passes_and_stub(capsys):
    assert bool(day23.check_sample_loss(good_loss)) is True
    assert "passed" in one_line(capsys)
    assert bool(day23.check_sample_loss(sample_loss)) is True
    assert "passed" in one_line(capsys)
    assert bool(day23.check_sample_loss(stub)) is False
    assert "not done yet" in one_line(capsys)


def test_sample_loss_mistakes(capsys):
    def every_token(model, rows, prompt_len):
        _, loss = model(rows[:, :-1], rows[:, 1:])
        return loss.item()

    assert bool(day23.check_sample_loss(every_token)) is False
    assert "every token" in one_line(capsys)

    def unshifted(model, rows, prompt_len):
        logits, _ = model(rows)
        pred = logits[:, prompt_len:]
        return F.cross_entropy(pred.reshape(-1, pred.shape[-1]), rows[:, prompt_len:].reshape(-1)).item()

    assert bool(day23.check_sample_loss(unshifted)) is False
    assert "predicts token t + 1" in one_line(capsys)

    assert bool(day23.check_sample_loss(lambda m, r, p: math.exp(good_loss(m, r, p)))) is False
    assert "perplexity" in one_line(capsys)

    assert bool(day23.check_sample_loss(lambda m, r, p: torch.tensor([1.0, 2.0]))) is False
    assert "should return a number" in one_line(capsys)
