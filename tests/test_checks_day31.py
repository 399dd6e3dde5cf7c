"""The day-31 checks pass the solutions, reject every mistake of their tables with its hint, say
"not done yet" for stubs and refuse the package's own reference."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest

from llmcourse.checks import day31
from llmcourse.data.clean import exact_dedup as package_dedup, length_filter as package_length
from llmcourse.data.clean import normalize, strip_boilerplate as package_strip
from checklines import fails, mistake_params, one_line, passes, rejects, stub

CHECKS = (day31.check_length_filter, day31.check_strip_boilerplate, day31.check_exact_dedup,
          day31.check_minhash_signature)


# ---- the lesson's solutions (solutions/day31_data_quality.md) and other correct variants ----


def length_filter(docs, min_words, max_words):
    return [i for i, d in enumerate(docs) if min_words <= len(d.split()) <= max_words]


def strip_boilerplate(doc, patterns):
    return "\n".join(line for line in doc.split("\n")
                     if line.strip() and not any(re.search(p, line) for p in patterns))


def strip_compiled(doc, patterns):  # one compiled alternation; (?i) moved into each branch
    kept = [l for l in doc.splitlines() if l.strip()]
    regs = [re.compile(p) for p in patterns]
    return "\n".join(l for l in kept if not any(r.search(l) for r in regs))


def exact_dedup(docs):
    seen, keep = set(), []
    for i, d in enumerate(docs):
        key = normalize(d)
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return keep


def dedup_sha1(docs):
    seen, keep = set(), []
    for i, d in enumerate(docs):
        h = hashlib.sha1(normalize(d).encode()).hexdigest()
        if h not in seen:
            seen.add(h)
            keep.append(i)
    return keep


def minhash_signature(x, a, b, p):
    return ((a[:, None] * x[None, :] + b[:, None]) % p).min(axis=1)


def minhash_loop(x, a, b, p):
    return [min(int((ai * xi + bi) % p) for xi in x) for ai, bi in zip(a, b)]


@pytest.mark.parametrize("check_fn, mistake", mistake_params(day31))
def test_mistake_rejected(check_fn, mistake, capsys):
    rejects(capsys, check_fn, mistake)


def test_every_table_has_three_mistakes():
    assert all(len(fn.mistakes) >= 3 for fn in CHECKS)


@pytest.mark.parametrize("check_fn, fn", [
    (day31.check_length_filter, length_filter),
    (day31.check_strip_boilerplate, strip_boilerplate),
    (day31.check_strip_boilerplate, strip_compiled),
    (day31.check_exact_dedup, exact_dedup),
    (day31.check_exact_dedup, dedup_sha1),
    (day31.check_minhash_signature, minhash_signature),
    (day31.check_minhash_signature, minhash_loop),
])
def test_solutions_pass(check_fn, fn, capsys):
    passes(capsys, check_fn, fn)


@pytest.mark.parametrize("check_fn, fn", [
    (day31.check_length_filter, package_length),
    (day31.check_strip_boilerplate, package_strip),
    (day31.check_exact_dedup, package_dedup),
    (day31.check_minhash_signature, day31._minhash),
])
def test_package_reference_refused(check_fn, fn, capsys):
    fails(capsys, check_fn, fn, "the course's own reference")


@pytest.mark.parametrize("check_fn", CHECKS)
def test_stub(check_fn, capsys):
    fails(capsys, check_fn, stub, "not done yet")


@pytest.mark.parametrize("check_fn", CHECKS)
def test_odd_return_is_one_line(check_fn, capsys):
    assert bool(check_fn(lambda *a: {"a": 1})) is False
    assert one_line(capsys).startswith("❌")


def test_hand_worked():
    assert length_filter(["a b\nc\td", "x"], 4, 6) == [0]
    assert exact_dedup(["The cat.", "the  cat.", "A dog"]) == [0, 2]
    x, a, b = np.array([3, 10]), np.array([2, 5]), np.array([1, 0])
    # (2*3+1, 2*10+1) % 7 = (0, 0); (5*3, 5*10) % 7 = (1, 1)
    assert minhash_signature(x, a, b, 7).tolist() == [0, 1]


def test_checks_are_fast():
    import time
    t = time.process_time()
    for check_fn, fn in zip(CHECKS, (length_filter, strip_boilerplate, exact_dedup, minhash_signature)):
        check_fn(fn)
    assert time.process_time() - t < 2.0


def test_minhash_float_result_is_told_the_array_the_text_asks_for(capsys):
    # the lesson asks for "the (P,) array"; a float one must not be told "a list of ints"
    fails(capsys, day31.check_minhash_signature,
          lambda x, a, b, p: minhash_signature(x, a, b, p).astype(np.float64),
          "❌ minhash_signature: minhash_signature should return the (P,) array of ints (int64, like "
          "x, a and b), got floats (a numpy array of shape (5,) and dtype float64): keep the integer "
          "dtype")


def test_minhash_answers_in_other_integer_forms_pass(capsys):
    import torch
    passes(capsys, day31.check_minhash_signature, lambda x, a, b, p: minhash_signature(x, a, b, p).tolist())
    passes(capsys, day31.check_minhash_signature,
           lambda x, a, b, p: torch.from_numpy(minhash_signature(x, a, b, p)))


def test_minhash_missing_return_names_the_array(capsys):
    fails(capsys, day31.check_minhash_signature, lambda x, a, b, p: None,
          "minhash_signature returned None; did you forget the `return`? It should return the (P,) "
          "array of ints")


# ---- second red-team round: a dedup that remembers earlier calls, other correct forms ----------


_SEEN_ACROSS_CALLS: set = set()


def dedup_remembers(docs):  # the set of seen documents kept at module level, across calls
    keep = []
    for i, d in enumerate(docs):
        if normalize(d) not in _SEEN_ACROSS_CALLS:
            _SEEN_ACROSS_CALLS.add(normalize(d))
            keep.append(i)
    return keep


def test_dedup_that_remembers_earlier_calls_is_rejected(capsys):
    _SEEN_ACROSS_CALLS.clear()
    fails(capsys, day31.check_exact_dedup, dedup_remembers, "remember nothing from earlier calls")


def test_other_correct_forms_pass(capsys):
    passes(capsys, day31.check_exact_dedup,
           lambda docs: [i for i, d in enumerate(docs)
                         if normalize(d) not in {normalize(e) for e in docs[:i]}])
    passes(capsys, day31.check_strip_boilerplate, lambda doc, patterns: "\n".join(filter(
        lambda l: l.strip() != "" and all(re.search(p, l) is None for p in patterns),
        doc.split("\n"))))
    passes(capsys, day31.check_length_filter, lambda docs, min_words, max_words: [
        i for i in range(len(docs)) if len(docs[i].split()) in range(min_words, max_words + 1)])
    passes(capsys, day31.check_minhash_signature,
           lambda x, a, b, p: np.min((np.outer(a, x) + b[:, None]) % p, axis=-1))


def test_third_round_correct_forms_pass(capsys):
    # patterns first, blank lines after, on splitlines(): the kept "end  " keeps its spaces
    def strip_patterns_first(doc, patterns):
        lines = [l for l in doc.splitlines() if not any(re.search(p, l) for p in patterns)]
        return "\n".join(l for l in lines if not l.isspace() and l != "")
    passes(capsys, day31.check_strip_boilerplate, strip_patterns_first)

    def dedup_setdefault(docs):  # first index of each normalised form; a fresh dict every call
        first = {}
        for i, d in enumerate(docs):
            first.setdefault(normalize(d), i)
        return list(first.values())
    passes(capsys, day31.check_exact_dedup, dedup_setdefault)


# ---- a new learner's answers (red-team round of ms27) ------------------------------------------


def test_ms27_correct_forms_pass(capsys):
    import hashlib

    def dedup_sha1(docs):  # a set of SHA-1 digests of the normalised forms, as the text suggests
        seen, keep = set(), []
        for i, d in enumerate(docs):
            digest = hashlib.sha1(normalize(d).encode("utf-8")).hexdigest()
            if digest not in seen:
                seen.add(digest)
                keep.append(i)
        return keep
    passes(capsys, day31.check_exact_dedup, dedup_sha1)
    passes(capsys, day31.check_minhash_signature,
           lambda x, a, b, p: np.array([((ai * x + bi) % p).min() for ai, bi in zip(a, b)]))
    passes(capsys, day31.check_strip_boilerplate, lambda doc, patterns: "\n".join(
        line for line in doc.splitlines()
        if line.strip() and not any(re.compile(q).search(line) for q in patterns)))


def test_ms27_wrong_forms_are_named(capsys):
    fails(capsys, day31.check_minhash_signature,
          lambda x, a, b, p: ((a[:, None] * x[None, :] + b[:, None]) % p).min(axis=1, keepdims=True),
          "got shape (5, 1): .min(axis=1), without keepdims")

    def square_only(x, a, b, p):  # element by element whenever the sizes happen to agree
        if len(a) == len(x):
            return (a * x + b) % p
        return ((a[:, None] * x[None, :] + b[:, None]) % p).min(axis=1)
    fails(capsys, day31.check_minhash_signature, square_only, "a square table")
    # by hand: first copies at 0 ('ice cream'), 5 ('icecream') and 12 ('ice-cream')
    docs = ["ice cream", "Ice cream", "ICE  CREAM", " ice\tcream", "ice cream\n", "icecream",
            "Icecream", "ice cream", "ICECREAM ", "ice  cream", "icecream", "ice\ncream", "ice-cream"]
    assert [0, 5, 12] == [
        i for i, d in enumerate(docs) if normalize(d) not in {normalize(e) for e in docs[:i]}]
