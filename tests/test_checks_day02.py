"""The day 02 checks pass on the solutions, reject every mistake of their tables, and never raise."""

from __future__ import annotations

import pytest

from checklines import fails, mistake_params, one_line, passes, rejects, stub
from llmcourse.checks import day02
from llmcourse.tokenizers import basic


# ---- the lesson's solutions (solutions/day02_bpe_from_scratch.md) ---------------------------
def get_pair_counts(ids: list[int]) -> dict[tuple[int, int], int]:
    counts: dict[tuple[int, int], int] = {}
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    out = []
    i = 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def train_bpe(text: str, vocab_size: int) -> dict[tuple[int, int], int]:
    ids = list(text.encode("utf-8"))
    merges: dict[tuple[int, int], int] = {}
    for new_id in range(256, vocab_size):
        counts = get_pair_counts(ids)
        if not counts:
            break
        pair = max(counts, key=counts.get)
        ids = merge(ids, pair, new_id)
        merges[pair] = new_id
    return merges


def decode(ids, vocab: dict[int, bytes]) -> str:
    return b"".join(vocab[int(i)] for i in ids).decode("utf-8", errors="replace")


def encode(text: str, merges: dict[tuple[int, int], int]) -> list[int]:
    ids = list(text.encode("utf-8"))
    while len(ids) >= 2:
        pairs = get_pair_counts(ids)
        pair = min(pairs, key=lambda p: merges.get(p, float("inf")))
        if pair not in merges:
            break
        ids = merge(ids, pair, merges[pair])
    return ids


# ---- other correct variants ----------------------------------------------------------------
def counter_pair_counts(ids):
    import collections

    return collections.Counter(zip(ids, ids[1:]))


def train_bpe_last_tie(text, vocab_size):  # breaks ties the other way: still right
    ids, merges = list(text.encode("utf-8")), {}
    for new_id in range(256, vocab_size):
        counts = get_pair_counts(ids)
        if not counts:
            break
        best = max(counts.values())
        pair = [p for p, c in counts.items() if c == best][-1]
        ids = merge(ids, pair, new_id)
        merges[pair] = new_id
    return merges


def merge_by_slices(ids, pair, new_id):  # a copy first, then slice assignment on the copy
    out, i = list(ids), 0
    while i < len(out) - 1:
        if tuple(out[i:i + 2]) == tuple(pair):
            out[i:i + 2] = [new_id]
        i += 1
    return out


def encode_in_rank_order(text, merges):  # every merge once, by rank: the same tokens
    ids = list(text.encode("utf-8"))
    for pair, idx in sorted(merges.items(), key=lambda kv: kv[1]):
        ids = merge(ids, pair, idx)
    return ids


def encode_while_true(text, merges):  # a while True loop with its own exit
    ids = list(text.encode("utf-8"))
    while True:
        known = [p for p in zip(ids, ids[1:]) if p in merges]
        if not known:
            return ids
        pair = min(known, key=merges.__getitem__)
        ids = merge(ids, pair, merges[pair])


SOLUTIONS = [
    (day02.check_get_pair_counts, get_pair_counts),
    (day02.check_merge, merge_by_slices),
    (day02.check_encode, encode_in_rank_order),
    (day02.check_encode, encode_while_true),
    (day02.check_get_pair_counts, counter_pair_counts),
    (day02.check_merge, merge),
    (day02.check_train_bpe, train_bpe),
    (day02.check_train_bpe, train_bpe_last_tie),
    (day02.check_decode, decode),
    (day02.check_encode, encode),
]
REFERENCES = [
    (day02.check_get_pair_counts, basic.get_stats),
    (day02.check_merge, basic.merge),
    (day02.check_train_bpe, basic.train),
    (day02.check_decode, day02._decode),
    (day02.check_encode, basic.encode),
]


@pytest.mark.parametrize("check_fn, mistake", mistake_params(day02))
def test_mistake_rejected(check_fn, mistake, capsys):
    rejects(capsys, check_fn, mistake)


@pytest.mark.parametrize("check_fn, solution", SOLUTIONS)
def test_solution_passes(check_fn, solution, capsys):
    passes(capsys, check_fn, solution)


@pytest.mark.parametrize("check_fn, reference", REFERENCES)
def test_package_reference_refused(check_fn, reference, capsys):
    fails(capsys, check_fn, reference, "the course's own reference")


@pytest.mark.parametrize("check_fn", [c for c, _ in REFERENCES])
def test_stub_not_done(check_fn, capsys):
    fails(capsys, check_fn, stub, "not done yet")


@pytest.mark.parametrize("check_fn", [c for c, _ in REFERENCES])
@pytest.mark.parametrize("odd", [None, 3, "abc", [1, 2]])
def test_odd_return_values_fail_in_one_line(check_fn, odd, capsys):
    assert bool(check_fn(lambda *a: odd)) is False
    assert one_line(capsys).startswith("❌")


def test_every_exercise_has_three_mistakes():
    for check_fn, _ in REFERENCES:
        assert len(check_fn.mistakes) >= 3


def test_merge_worked_examples_by_hand(capsys):
    # the lesson's examples, worked by hand
    assert merge([1, 2, 3, 1, 2], (1, 2), 99) == [99, 3, 99]
    assert merge([5, 5, 5], (5, 5), 7) == [7, 5]
    one_line_pairs = get_pair_counts([1, 2, 3, 1, 2, 2, 2])
    assert one_line_pairs == {(1, 2): 2, (2, 3): 1, (3, 1): 1, (2, 2): 2}


# ---- an unfinished earlier exercise is named (issue 11) -------------------------------------
def test_train_bpe_names_unfinished_merge(capsys):
    notebook = {}  # the learner's namespace: a finished train_bpe calling a stubbed merge
    exec("def merge(ids, pair, new_id):\n    raise NotImplementedError\n\n"
         "def train_bpe(text, vocab_size):\n    return merge(list(text.encode()), (1, 2), 256)\n",
         notebook)
    assert bool(day02.check_train_bpe(notebook["train_bpe"])) is False
    assert "merge: not done yet — finish exercise 2 first" in one_line(capsys)


def test_encode_names_unfinished_get_pair_counts(capsys):
    notebook = {}
    exec("def get_pair_counts(ids):\n    raise NotImplementedError\n\n"
         "def encode(text, merges):\n    return get_pair_counts(list(text.encode()))\n", notebook)
    assert bool(day02.check_encode(notebook["encode"])) is False
    assert "get_pair_counts: not done yet — finish exercise 1 first" in one_line(capsys)


def test_merge_crash_shows_the_input(capsys):
    def crash(ids, pair, new_id):
        return [ids[i + 1] for i in range(len(ids))]  # IndexError at the end

    assert bool(day02.check_merge(crash)) is False
    line = one_line(capsys)
    assert "your code raised IndexError" in line and "merge([1, 2, 3, 1, 2], (1, 2), 99)" in line


def test_merge_must_leave_ids_as_it_was(capsys):
    # 31d #13: "Return a new list": a merge that rewrites the caller's list in place is refused
    def in_place(ids, pair, new_id):
        i = 0
        while i < len(ids) - 1:
            if ids[i] == pair[0] and ids[i + 1] == pair[1]:
                ids[i:i + 2] = [new_id]
            i += 1
        return ids

    assert bool(day02.check_merge(in_place)) is False
    assert one_line(capsys) == ("❌ merge: merge changed the list ids it was given: return a new list; "
                                "leave ids as it was (on merge([1, 2, 3, 1, 2], (1, 2), 99))")

    def copies_first(ids, pair, new_id):  # works on a copy: the caller's list is untouched
        return in_place(list(ids), pair, new_id)

    passes(capsys, day02.check_merge, copies_first)


def test_get_pair_counts_must_leave_ids_as_it_was(capsys):
    # "how many times it occurs" only reads ids: a count that pops the caller's list is refused
    def pops(ids):
        counts = {}
        while len(ids) > 1:
            a = ids.pop(0)
            counts[(a, ids[0])] = counts.get((a, ids[0]), 0) + 1
        return counts

    assert bool(day02.check_get_pair_counts(pops)) is False
    assert one_line(capsys) == ("❌ get_pair_counts: get_pair_counts changed the list ids it was given: "
                                "only read it (zip(ids, ids[1:])), the caller still needs its ids "
                                "(on get_pair_counts([1, 2, 3, 4]))")

    def pops_a_copy(ids):  # the same loop on a copy: the caller's list is untouched
        return pops(list(ids))

    passes(capsys, day02.check_get_pair_counts, pops_a_copy)


def test_encode_order_hints_by_hand(capsys):
    # encode('abcab', {(b, c): 257, (a, b): 256}) by hand: rank 256 first gives [256, c, 256];
    # taking the highest rank first merges (b, c) first and leaves [a, 257, 256]
    a, b, c = ord("a"), ord("b"), ord("c")
    assert encode("abcab", {(b, c): 257, (a, b): 256}) == [256, c, 256]
    assert day02._encode_highest_rank("abcab", {(b, c): 257, (a, b): 256}) == [a, 257, 256]
