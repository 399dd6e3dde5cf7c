"""The day-31 checks pass the solutions, catch plausible mistakes, and say "not done yet" for stubs."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest

from llmcourse.checks import day31
from llmcourse.data.clean import exact_dedup, length_filter, normalize
from checklines import fails, one_line, stub


# ---- exercise 1 ------------------------------------------------------------------------------


def good_length(docs, min_words, max_words):
    return [i for i, d in enumerate(docs) if min_words <= len(d.split()) <= max_words]


def test_length_filter_passes_and_stub(capsys):
    assert bool(day31.check_length_filter(good_length)) is True
    assert "passed" in one_line(capsys)
    assert bool(day31.check_length_filter(length_filter)) is True
    assert "passed" in one_line(capsys)
    fails(capsys, day31.check_length_filter, stub, "not done yet")


@pytest.mark.parametrize("fn, hint", [
    (lambda docs, lo, hi: [i for i, d in enumerate(docs) if len(d.split()) >= lo], "more than max_words"),
    (lambda docs, lo, hi: [i for i, d in enumerate(docs) if lo <= len(d.split(" ")) <= hi], "doc.split()"),
    (lambda docs, lo, hi: [i for i, d in enumerate(docs) if lo <= len(d.split()) < hi], "max_words is"),
    (lambda docs, lo, hi: [i for i, d in enumerate(docs) if len(d.split()) <= hi], "fewer than min_words"),
    (lambda docs, lo, hi: [d for d in docs if lo <= len(d.split()) <= hi], "int"),
    (lambda docs, lo, hi: None, "return"),
])
def test_length_filter_mistakes(capsys, fn, hint):
    fails(capsys, day31.check_length_filter, fn, hint)


# ---- exercise 2 ------------------------------------------------------------------------------


def good_strip(doc, patterns):
    return "\n".join(l for l in doc.split("\n")
                     if l.strip() and not any(re.search(p, l) for p in patterns))


def test_strip_passes_and_stub(capsys):
    assert bool(day31.check_strip_boilerplate(good_strip)) is True
    assert "passed" in one_line(capsys)
    fails(capsys, day31.check_strip_boilerplate, stub, "not done yet")


@pytest.mark.parametrize("fn, hint", [
    (lambda doc, pats: "\n".join(l for l in doc.split("\n")
                                 if l.strip() and not any(re.match(p, l) for p in pats)), "re.search"),
    (lambda doc, pats: "\n".join(l for l in doc.split("\n")
                                 if not any(re.search(p, l) for p in pats)), "blank lines"),
    (lambda doc, pats: [l for l in doc.split("\n")
                        if l.strip() and not any(re.search(p, l) for p in pats)], "join"),
    (lambda doc, pats: "\n".join(l for l in doc.split("\n")
                                 if l.strip() and not any(re.search(p.lstrip("^"), l) for p in pats)),
     "only matches at the start"),
    (lambda doc, pats: "\n".join(l for l in doc.split("\n")
                                 if l.strip() and not any(re.search(p, l) for p in pats[:1] + pats[2:])),
     "was kept"),
    (lambda doc, pats: " ".join(l for l in doc.split("\n")
                                if l.strip() and not any(re.search(p, l) for p in pats)), "expected"),
])
def test_strip_mistakes(capsys, fn, hint):
    fails(capsys, day31.check_strip_boilerplate, fn, hint)


# ---- exercise 3 ------------------------------------------------------------------------------


def good_dedup(docs):
    seen, keep = set(), []
    for i, d in enumerate(docs):
        h = hashlib.sha1(normalize(d).encode()).hexdigest()
        if h not in seen:
            seen.add(h)
            keep.append(i)
    return keep


def test_dedup_passes_and_stub(capsys):
    assert bool(day31.check_exact_dedup(good_dedup)) is True
    assert "passed" in one_line(capsys)
    assert bool(day31.check_exact_dedup(exact_dedup)) is True
    assert "passed" in one_line(capsys)
    fails(capsys, day31.check_exact_dedup, stub, "not done yet")


def _keep_last(docs):
    last = {normalize(d): i for i, d in enumerate(docs)}
    return sorted(last.values())


@pytest.mark.parametrize("fn, hint", [
    (lambda docs: [i for i, d in enumerate(docs) if d not in docs[:i]], "case or white space"),
    (_keep_last, "last copy"),
    (lambda docs: sorted({normalize(d): i for i, d in reversed(list(enumerate(docs)))}.values(),
                         key=lambda i: -i), "original order"),
    (lambda docs: list(dict.fromkeys(normalize(d) for d in docs)), "indices"),
    (lambda docs: None, "return"),
])
def test_dedup_mistakes(capsys, fn, hint):
    fails(capsys, day31.check_exact_dedup, fn, hint)


# ---- exercise 4 ------------------------------------------------------------------------------


def good_sig(x, a, b, p):
    x, a, b = (np.asarray(v, dtype=np.int64) for v in (x, a, b))
    return ((a[:, None] * x[None, :] + b[:, None]) % p).min(axis=1)


def test_minhash_passes_and_stub(capsys):
    assert bool(day31.check_minhash_signature(good_sig)) is True
    assert "passed" in one_line(capsys)
    assert bool(day31.check_minhash_signature(lambda *a: good_sig(*a).tolist())) is True
    assert "passed" in one_line(capsys)
    fails(capsys, day31.check_minhash_signature, stub, "not done yet")


@pytest.mark.parametrize("fn, hint", [
    (lambda x, a, b, p: ((a[:, None] * x[None, :] + b[:, None]) % p).max(axis=1), "maximum"),
    (lambda x, a, b, p: (a[:, None] * x[None, :] + b[:, None]).min(axis=1), "modulo p"),
    (lambda x, a, b, p: ((a[:, None] * x[None, :]) % p).min(axis=1), "b is missing"),
    (lambda x, a, b, p: ((a[:, None] * x[None, :] + b[:, None]) % p).min(axis=0), "one per hash"),
    (lambda x, a, b, p: ((a[:, None] * x[None, :] + b[:, None]) % p)[:, 0], "got"),
    (lambda x, a, b, p: ((a[:, None] * x[None, :] + b[:, None]) % p)[:, :3].min(axis=1), "got"),
])
def test_minhash_mistakes(capsys, fn, hint):
    fails(capsys, day31.check_minhash_signature, fn, hint)
