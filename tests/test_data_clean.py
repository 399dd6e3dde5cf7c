"""Cleaning helpers (llmcourse.data.clean) and MinHash / LSH (llmcourse.data.minhash)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from llmcourse.data.clean import (clean_corpus, corpus_stats, exact_dedup, is_boilerplate,
                                  length_filter, make_dirty_corpus, normalize, split_documents,
                                  strip_boilerplate)
from llmcourse.data.minhash import (MinHasher, dedup_near, estimate_jaccard, jaccard,
                                    lsh_candidates, lsh_probability, near_duplicates, shingles)


def _story(rng: random.Random, n: int = 40) -> str:
    words = ["cat", "dog", "sun", "tree", "ran", "saw", "big", "little", "happy", "park", "ball",
             "mom", "friend", "played", "jumped", "sky", "river", "fish", "bird", "sang"]
    return " ".join(rng.choice(words) for _ in range(n)) + "."


@pytest.mark.parametrize("line, kind", [
    ("Read more at https://x.example.com/1", "url"),
    ("Copyright \u00a9 2023 Foo. All rights reserved.", "copyright"),
    ("Home | Stories | About | Contact", "navigation"),
    ("Click here to subscribe!", "call to action"),
    ("Posted by admin on 2023-01-02", "metadata"),
    ("Page 3 of 9", "page number"),
    ("<div class='x'>", "html"),
])
def test_boilerplate_kinds(line, kind):
    assert is_boilerplate(line) == kind


@pytest.mark.parametrize("line", [
    "Once upon a time, there was a little cat.",
    "By the river, Tom saw a fish.",
    "She ate a cookie and wanted to read more books.",
    "Lily said, \"Mom, look at the page of my book!\"",
])
def test_story_lines_are_not_boilerplate(line):
    assert is_boilerplate(line) is None


def test_strip_boilerplate_keeps_text_order():
    doc = "Tags: a, b\nFirst line.\n\nSecond line.\nPage 2 of 3"
    assert strip_boilerplate(doc) == "First line.\nSecond line."
    assert strip_boilerplate(doc, patterns={"tags": r"^Tags:"}) == "First line.\nSecond line.\nPage 2 of 3"


def test_split_and_length_filter():
    assert split_documents("a b\n\n \n\nc\n") == ["a b", "c"]
    docs = ["one", "two words", "three little words", "a b c d e f"]
    assert length_filter(docs, min_words=2) == [1, 2, 3]
    assert length_filter(docs, min_words=2, max_words=3) == [1, 2]
    with pytest.raises(ValueError, match="min_words"):
        length_filter(docs, min_words=3, max_words=2)


def test_exact_dedup_normalises_and_keeps_first():
    assert normalize(" A\tB \n c ") == "a b c"
    docs = ["The cat.", "Another.", "the  CAT.", "The cat!"]
    assert exact_dedup(docs) == [0, 1, 3]


def test_corpus_stats():
    s = corpus_stats(["a b", "A b", "c d e"])
    assert s == {"documents": 3, "characters": 11, "words": 7, "mean_words": 2.3,
                 "distinct_share": 0.6667}
    assert corpus_stats([])["documents"] == 0


def test_shingles_and_jaccard():
    assert shingles("A b c", k=2) == {"a b", "b c"}
    assert shingles("short", k=3) == {"short"}
    assert shingles("", k=3) == set()
    assert jaccard({"a", "b"}, {"b"}) == 0.5
    assert jaccard(set(), set()) == 1.0
    with pytest.raises(ValueError):
        shingles("x", k=0)


def test_minhash_estimates_jaccard():
    base = [f"w{i}" for i in range(200)]
    a = set(base[:150])
    b = set(base[50:])                              # Jaccard 100 / 200 = 0.5
    hasher = MinHasher(num_perm=512, seed=3)
    est = estimate_jaccard(hasher.signature(a), hasher.signature(b))
    assert abs(est - jaccard(a, b)) < 0.08
    assert estimate_jaccard(hasher.signature(a), hasher.signature(set(a))) == 1.0
    # the signature depends on the set only, not on its order, and is stable across hashers
    assert np.array_equal(hasher.signature(sorted(a)), MinHasher(512, seed=3).signature(a))
    assert not np.array_equal(hasher.signature(a), MinHasher(512, seed=4).signature(a))
    with pytest.raises(ValueError, match="one MinHasher"):
        estimate_jaccard(hasher.signature(a), MinHasher(64).signature(a))


def test_lsh_probability_and_candidates():
    assert lsh_probability(1.0, 4, 8) == 1.0
    assert lsh_probability(0.0, 4, 8) == 0.0
    assert lsh_probability(0.9, 32, 4) > 0.999 > lsh_probability(0.2, 32, 4) > 0.0
    sigs = [np.array([1, 2, 3, 4]), np.array([1, 2, 9, 9]), np.array([7, 7, 3, 4]),
            np.array([5, 6, 7, 8])]
    assert lsh_candidates(sigs, bands=2) == {(0, 1), (0, 2)}
    assert lsh_candidates(sigs, bands=1) == set()
    with pytest.raises(ValueError, match="divide"):
        lsh_candidates(sigs, bands=3)


def test_near_duplicates_found_and_distinct_kept():
    rng = random.Random(1)
    docs = [_story(rng) for _ in range(30)]
    edited = docs[4].split(" ")
    edited[10] = "zebra"
    docs.append(" ".join(edited))                    # near copy of 4
    docs.append(docs[7] + " The end.")               # near copy of 7
    pairs = near_duplicates(docs, threshold=0.7, k=3)
    assert {(i, j) for i, j, _ in pairs} == {(4, 30), (7, 31)}
    assert all(0.7 <= s <= 1.0 for *_, s in pairs)
    assert dedup_near(docs, threshold=0.7) == list(range(30))
    with pytest.raises(ValueError, match="threshold"):
        near_duplicates(docs, threshold=0.0)


def test_dedup_near_keeps_the_first_of_a_chain():
    docs = ["a b c d e f g h i j", "a b c d e f g h i j k", "a b c d e f g h i j k l"]
    assert dedup_near(docs, threshold=0.6, k=2, num_perm=64, bands=16) == [0]


def test_dirty_corpus_and_clean_corpus_recover_it():
    rng = random.Random(2)
    clean = [_story(rng, n=rng.randint(30, 60)) for _ in range(200)]
    dirty, added = make_dirty_corpus(clean, seed=0)
    assert added == {"exact duplicates": 30, "near duplicates": 20, "boilerplate lines": 60,
                     "junk": 20}
    assert len(dirty) == 270
    assert dirty == make_dirty_corpus(clean, seed=0)[0]          # seeded
    out, report = clean_corpus(dirty, min_words=5, near_threshold=0.7)
    assert sum(report.lines_stripped.values()) == 60
    steps = dict(report.steps)
    assert steps["input"] == 270 and steps["length filter"] == 250
    assert 215 <= steps["exact duplicates"] <= 220   # a near copy may equal its original
    assert 200 <= steps["near duplicates"] <= 202
    assert all(len(d.split()) >= 5 and "\n" not in d for d in out)     # junk and extra lines gone
    assert "documents" in str(report)
    out2, report2 = clean_corpus(dirty, near_threshold=None)
    assert len(out2) == steps["exact duplicates"] and len(report2.steps) == 3
