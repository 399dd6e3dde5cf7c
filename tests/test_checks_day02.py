"""The day 02 checks pass on the solutions, catch plausible mistakes, and never raise."""

from __future__ import annotations

import pytest

from llmcourse.checks import day02


# ---- the lesson's solutions ----------------------------------------------------------------
def get_pair_counts(ids):
    counts = {}
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def merge(ids, pair, new_id):
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def train_bpe(text, vocab_size):
    ids = list(text.encode("utf-8"))
    merges = {}
    for new_id in range(256, vocab_size):
        counts = get_pair_counts(ids)
        if not counts:
            break
        pair = max(counts, key=counts.get)
        ids = merge(ids, pair, new_id)
        merges[pair] = new_id
    return merges


def decode(ids, vocab):
    return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")


def encode(text, merges):
    ids = list(text.encode("utf-8"))
    while len(ids) >= 2:
        pairs = get_pair_counts(ids)
        pair = min(pairs, key=lambda p: merges.get(p, float("inf")))
        if pair not in merges:
            break
        ids = merge(ids, pair, merges[pair])
    return ids


def todo(*args, **kwargs):
    raise NotImplementedError


def verdict(capsys) -> str:
    out = capsys.readouterr().out
    assert out.count("\n") == 1, out
    return out


@pytest.mark.parametrize(
    "check, solution",
    [
        (day02.check_get_pair_counts, get_pair_counts),
        (day02.check_merge, merge),
        (day02.check_train_bpe, train_bpe),
        (day02.check_decode, decode),
        (day02.check_encode, encode),
    ],
)
def test_solutions_pass_and_stubs_are_not_done(capsys, check, solution):
    assert bool(check(solution)) is True
    assert verdict(capsys).startswith("✅")
    assert bool(check(todo)) is False
    assert "not done yet" in verdict(capsys)


# ---- plausible mistakes --------------------------------------------------------------------
def test_pair_counts_set_of_pairs(capsys):
    bad = lambda ids: {p: 1 for p in zip(ids, ids[1:])}  # noqa: E731 - presence, not counts
    assert bool(day02.check_get_pair_counts(bad)) is False
    assert "add one each time" in verdict(capsys)


def test_pair_counts_no_overlap(capsys):
    def bad(ids):  # skips past a counted pair, so overlapping pairs count once
        counts, i = {}, 0
        while i + 1 < len(ids):
            pair = (ids[i], ids[i + 1])
            counts[pair] = counts.get(pair, 0) + 1
            i += 2 if ids[i] == ids[i + 1] else 1
        return counts

    assert bool(day02.check_get_pair_counts(bad)) is False
    assert "overlapping" in verdict(capsys)


def test_pair_counts_wraps_around(capsys):
    bad = lambda ids: get_pair_counts(ids + ids[:1]) if ids else {}  # noqa: E731
    assert bool(day02.check_get_pair_counts(bad)) is False
    assert "wraps around" in verdict(capsys)


def test_merge_overlapping(capsys):
    def bad(ids, pair, new_id):  # merges (i, i+1) but only moves one step
        out, i = [], 0
        while i < len(ids):
            if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
                out.append(new_id)
            else:
                out.append(ids[i])
            i += 1
        return out

    assert bool(day02.check_merge(bad)) is False
    assert "i += 2" in verdict(capsys)


def test_merge_drops_last(capsys):
    def bad(ids, pair, new_id):
        out, i = [], 0
        while i < len(ids) - 1:
            if (ids[i], ids[i + 1]) == pair:
                out.append(new_id)
                i += 2
            else:
                out.append(ids[i])
                i += 1
        return out

    assert bool(day02.check_merge(bad)) is False
    assert "expected" in verdict(capsys)


def test_train_counts_only_once(capsys):
    def bad(text, vocab_size):  # ranks pairs by their counts in the raw bytes only
        ids = list(text.encode("utf-8"))
        counts = get_pair_counts(ids)
        ranked = sorted(counts, key=counts.get, reverse=True)
        return {p: 256 + k for k, p in enumerate(ranked[: vocab_size - 256])}

    assert bool(day02.check_train_bpe(bad)) is False
    assert "current" in verdict(capsys)


def test_train_too_many_merges(capsys):
    assert bool(day02.check_train_bpe(lambda t, v: train_bpe(t, v + 256))) is False
    assert "vocab_size - 256" in verdict(capsys)


def test_train_least_frequent(capsys):
    def bad(text, vocab_size):
        ids, merges = list(text.encode("utf-8")), {}
        for new_id in range(256, vocab_size):
            counts = get_pair_counts(ids)
            pair = min(counts, key=counts.get)
            ids = merge(ids, pair, new_id)
            merges[pair] = new_id
        return merges

    assert bool(day02.check_train_bpe(bad)) is False
    assert "most frequent" in verdict(capsys)


def test_decode_per_token(capsys):
    bad = lambda ids, vocab: "".join(vocab[i].decode("utf-8", errors="replace") for i in ids)  # noqa: E731
    assert bool(day02.check_decode(bad)) is False
    assert "join the bytes" in verdict(capsys)


def test_decode_strict(capsys):
    bad = lambda ids, vocab: b"".join(vocab[i] for i in ids).decode("utf-8")  # noqa: E731
    assert bool(day02.check_decode(bad)) is False
    assert "errors='replace'" in verdict(capsys)


def test_decode_returns_bytes(capsys):
    assert bool(day02.check_decode(lambda ids, vocab: b"".join(vocab[i] for i in ids))) is False
    assert "returned bytes" in verdict(capsys)


def test_encode_by_frequency(capsys):
    def bad(text, merges):  # merges the most frequent known pair of the new text
        ids = list(text.encode("utf-8"))
        while True:
            counts = {p: c for p, c in get_pair_counts(ids).items() if p in merges}
            if not counts:
                return ids
            pair = max(counts, key=counts.get)
            ids = merge(ids, pair, merges[pair])

    assert bool(day02.check_encode(bad)) is False
    assert "lowest rank" in verdict(capsys)


def test_encode_single_pass(capsys):
    def bad(text, merges):  # applies each merge once in dict order, which is fine... once
        ids = list(text.encode("utf-8"))
        pairs = get_pair_counts(ids)
        pair = min(pairs, key=lambda p: merges.get(p, float("inf"))) if pairs else None
        return merge(ids, pair, merges[pair]) if pair in merges else ids

    assert bool(day02.check_encode(bad)) is False
    assert "not applied" in verdict(capsys)


def test_encode_no_merges(capsys):
    assert bool(day02.check_encode(lambda text, merges: list(text.encode("utf-8")))) is False
    assert "no merge was applied" in verdict(capsys)


# ---- an unfinished earlier exercise is named (issue 11) -------------------------------------


def test_train_bpe_names_unfinished_merge(capsys):
    notebook = {}  # the learner's namespace: a finished train_bpe calling a stubbed merge
    exec("def merge(ids, pair, new_id):\n    raise NotImplementedError\n\n"
         "def train_bpe(text, vocab_size):\n    return merge(list(text.encode()), (1, 2), 256)\n",
         notebook)
    train_bpe = notebook["train_bpe"]

    assert bool(day02.check_train_bpe(train_bpe)) is False
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert "merge: not done yet — finish exercise 2 first" in out


def test_merge_crash_shows_the_input(capsys):
    def crash(ids, pair, new_id):
        return [ids[i + 1] for i in range(len(ids))]  # IndexError at the end

    assert bool(day02.check_merge(crash)) is False
    out = capsys.readouterr().out
    assert "your code raised IndexError" in out and "merge([1, 2, 3, 1, 2], (1, 2), 99)" in out
