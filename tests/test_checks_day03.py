"""The day 03 checks pass on the solutions, catch plausible mistakes, and never raise."""

from __future__ import annotations

import re

import pytest
import regex
import torch

from llmcourse.checks import day03
from llmcourse.tokenizers.char import CharTokenizer


@pytest.fixture(scope="module")
def tok():
    # A character tokenizer with <|endoftext|> stands in for GPT-2: no tiktoken files needed.
    text = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ ,.!<>|"
    return CharTokenizer.from_text(text, special_tokens=["<|endoftext|>"])


# ---- the lesson's solutions ----------------------------------------------------------------
def pretokenize(text, pattern):
    return regex.findall(pattern, text)


def token_pieces(tok, text):
    return [tok.decode([i]) for i in tok.encode(text)]


def join_documents(docs, tok):
    ids = []
    for doc in docs:
        ids += tok.encode(doc, allowed_special="none") + [tok.eot_token]
    return ids


def pad_batch(seqs, pad_id):
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), T), dtype=torch.bool)
    for b, s in enumerate(seqs):
        ids[b, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[b, : len(s)] = True
    return ids, mask


def todo(*args, **kwargs):
    raise NotImplementedError


def verdict(capsys) -> str:
    out = capsys.readouterr().out
    assert out.count("\n") == 1, out
    return out


def test_solutions_pass_and_stubs_not_done(capsys, tok):
    for check, args in [
        (day03.check_pretokenize, (pretokenize,)),
        (day03.check_token_pieces, (token_pieces, tok)),
        (day03.check_join_documents, (join_documents, tok)),
        (day03.check_pad_batch, (pad_batch,)),
    ]:
        assert bool(check(*args)) is True
        assert verdict(capsys).startswith("✅")
        assert bool(check(todo, *args[1:])) is False
        assert "not done yet" in verdict(capsys)


# ---- plausible mistakes --------------------------------------------------------------------
def test_pretokenize_with_re(capsys):
    assert bool(day03.check_pretokenize(lambda text, pattern: re.findall(pattern, text))) is False
    out = verdict(capsys)  # `re` rejects \p{L}: reported, never raised
    assert "raised error" in out and "bad escape" in out
    assert "`regex` module" in out and "\\p{L}" in out  # says why, and what to use instead


def test_pretokenize_split(capsys):
    assert bool(day03.check_pretokenize(lambda text, pattern: text.split())) is False
    assert "str.split()" in verdict(capsys)


def test_pretokenize_match_objects(capsys):
    assert bool(day03.check_pretokenize(lambda text, p: list(regex.finditer(p, text)))) is False
    assert ".group()" in verdict(capsys)


def test_token_pieces_ids(capsys, tok):
    assert bool(day03.check_token_pieces(lambda t, s: t.encode(s), tok)) is False
    assert "returned the ids" in verdict(capsys)


def test_token_pieces_whole_decode(capsys, tok):
    assert bool(day03.check_token_pieces(lambda t, s: [t.decode(t.encode(s))], tok)) is False
    assert "decode" in verdict(capsys)


def test_join_documents_no_final_eot(capsys, tok):
    def bad(docs, t):
        ids = []
        for k, d in enumerate(docs):
            if k:
                ids.append(t.eot_token)
            ids += t.encode(d, allowed_special="none")
        return ids

    assert bool(day03.check_join_documents(bad, tok)) is False
    assert "last document" in verdict(capsys)


def test_join_documents_eot_first(capsys, tok):
    def bad(docs, t):
        ids = []
        for d in docs:
            ids += [t.eot_token] + t.encode(d, allowed_special="none")
        return ids

    assert bool(day03.check_join_documents(bad, tok)) is False
    assert "not before" in verdict(capsys)


def test_join_documents_allows_special_in_text(capsys, tok):
    def bad(docs, t):
        ids = []
        for d in docs:
            ids += t.encode(d, allowed_special="all") + [t.eot_token]
        return ids

    assert bool(day03.check_join_documents(bad, tok)) is False
    assert "ordinary text" in verdict(capsys)


def test_join_documents_default_encode_raises_is_reported(capsys, tok):
    def bad(docs, t):
        ids = []
        for d in docs:
            ids += t.encode(d) + [t.eot_token]
        return ids

    assert bool(day03.check_join_documents(bad, tok)) is False
    assert "SpecialTokenError" in verdict(capsys)


def test_join_documents_nested(capsys, tok):
    bad = lambda docs, t: [t.encode(d, allowed_special="none") + [t.eot_token] for d in docs]  # noqa: E731
    assert bool(day03.check_join_documents(bad, tok)) is False
    assert "flat" in verdict(capsys)


def test_pad_left(capsys):
    def bad(seqs, pad_id):
        ids, mask = pad_batch([s[::-1] for s in seqs], pad_id)
        return ids.flip(1), mask.flip(1)

    assert bool(day03.check_pad_batch(bad)) is False
    assert "left" in verdict(capsys)


def test_pad_mask_inverted(capsys):
    def bad(seqs, pad_id):
        ids, mask = pad_batch(seqs, pad_id)
        return ids, ~mask

    assert bool(day03.check_pad_batch(bad)) is False
    assert "inverted" in verdict(capsys)


def test_pad_mask_from_ids(capsys):
    def bad(seqs, pad_id):
        ids, _ = pad_batch(seqs, pad_id)
        return ids, ids != pad_id

    assert bool(day03.check_pad_batch(bad)) is False
    assert "lengths" in verdict(capsys)


def test_pad_float_ids(capsys):
    def bad(seqs, pad_id):
        ids, mask = pad_batch(seqs, pad_id)
        return ids.float(), mask

    assert bool(day03.check_pad_batch(bad)) is False
    assert "int64" in verdict(capsys)


def test_pad_returns_lists(capsys):
    def bad(seqs, pad_id):
        ids, mask = pad_batch(seqs, pad_id)
        return ids.tolist(), mask.tolist()

    assert bool(day03.check_pad_batch(bad)) is False
    assert "torch tensors" in verdict(capsys)


def test_pad_hard_coded_zero(capsys):
    """Padding with 0 instead of pad_id (the check's pad id is 50256, not 0)."""
    def bad(seqs, pad_id):
        return pad_batch(seqs, 0)

    assert bool(day03.check_pad_batch(bad)) is False
    assert "padding is 0 although pad_id is 50256" in verdict(capsys)


@pytest.mark.parametrize("dtype", [torch.long, torch.float32, torch.uint8])
def test_pad_mask_not_bool(capsys, dtype):
    def bad(seqs, pad_id):
        ids, mask = pad_batch(seqs, pad_id)
        return ids, mask.to(dtype)

    assert bool(day03.check_pad_batch(bad)) is False
    out = verdict(capsys)
    assert "mask should be a bool tensor" in out and "dtype=torch.bool" in out


def test_pad_transposed(capsys):
    def bad(seqs, pad_id):
        ids, mask = pad_batch(seqs, pad_id)
        return ids.T, mask.T

    assert bool(day03.check_pad_batch(bad)) is False
    assert "shape (4, 5) but should have shape (5, 4)" in verdict(capsys)


def test_pad_crash_shows_input(capsys):
    def bad(seqs, pad_id):
        return torch.tensor(seqs), None  # ragged lists: ValueError

    assert bool(day03.check_pad_batch(bad)) is False
    out = verdict(capsys)
    assert "your code raised ValueError" in out and "pad_batch([[5, 6, 7], [9]" in out


def test_token_pieces_crash_shows_input(capsys, tok):
    def bad(t, text):
        return [t.decode(i) for i in t.encode(text)]  # decode(int) instead of decode([i])

    assert bool(day03.check_token_pieces(bad, tok)) is False
    out = verdict(capsys)
    assert "your code raised" in out and "token_pieces(tok, 'strawberry')" in out
