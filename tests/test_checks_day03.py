"""The day 03 checks pass on the solutions, reject every mistake of their tables, and never raise."""

from __future__ import annotations

import pytest
import regex
import torch

from checklines import fails, mistake_params, one_line, passes, rejects, stub
from llmcourse.checks import day03
from llmcourse.tokenizers import BPETokenizer
from llmcourse.tokenizers.char import CharTokenizer


@pytest.fixture(scope="module")
def tok():
    # A character tokenizer with <|endoftext|> stands in for GPT-2: no tiktoken files needed.
    text = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ ,.!<>|"
    return CharTokenizer.from_text(text, special_tokens=["<|endoftext|>"])


# ---- the lesson's solutions (solutions/day03_tokenizers_in_the_wild.md) ---------------------
def pretokenize(text: str, pattern: str) -> list[str]:
    return regex.findall(pattern, text)


def join_documents(docs: list[str], tok) -> list[int]:
    ids: list[int] = []
    for doc in docs:
        ids += tok.encode(doc, allowed_special="none") + [tok.eot_token]
    return ids


def pad_batch(seqs: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), pad_id, dtype=torch.long)  # (B, T)
    mask = torch.zeros((len(seqs), T), dtype=torch.bool)  # (B, T)
    for b, s in enumerate(seqs):
        ids[b, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[b, : len(s)] = True
    return ids, mask


def token_pieces(tok, text: str) -> list[str]:
    return [tok.decode([i]) for i in tok.encode(text)]


# ---- other correct variants ----------------------------------------------------------------
def pad_batch_with_lengths(seqs, pad_id):
    lengths = torch.tensor([len(s) for s in seqs])
    T = int(lengths.max())
    mask = torch.arange(T)[None, :] < lengths[:, None]
    ids = torch.tensor([list(s) + [pad_id] * (T - len(s)) for s in seqs], dtype=torch.long)
    return ids, mask


def join_documents_extend(docs, tok):
    ids = []
    for doc in docs:
        ids.extend(tok.encode(doc, allowed_special="none"))
        ids.append(tok.eot_token)
    return ids


@pytest.mark.parametrize("check_fn, mistake", mistake_params(day03))
def test_mistake_rejected(check_fn, mistake, capsys):
    rejects(capsys, check_fn, mistake)


def test_every_exercise_has_three_mistakes():
    for fn in (day03.check_pretokenize, day03.check_token_pieces, day03.check_join_documents, day03.check_pad_batch):
        assert len(fn.mistakes) >= 3


def test_solutions_pass(capsys, tok):
    passes(capsys, day03.check_pretokenize, pretokenize)
    passes(capsys, lambda f: day03.check_token_pieces(f, tok), token_pieces)
    passes(capsys, lambda f: day03.check_join_documents(f, tok), join_documents)
    passes(capsys, lambda f: day03.check_join_documents(f, tok), join_documents_extend)
    passes(capsys, day03.check_pad_batch, pad_batch)
    passes(capsys, day03.check_pad_batch, pad_batch_with_lengths)


def test_tokenizer_methods_of_the_package_pass(capsys, tok):
    """encode_ordinary and tok(...) are the package's (and tiktoken's) too: correct answers."""
    def join_ordinary(docs, t):
        return [i for doc in docs for i in t.encode_ordinary(doc) + [t.eot_token]]

    def join_called(docs, t):
        ids = []
        for doc in docs:
            ids.extend(t(doc, allowed_special="none"))
            ids.append(t.eot_token)
        return ids

    passes(capsys, lambda f: day03.check_join_documents(f, tok), join_ordinary)
    passes(capsys, lambda f: day03.check_join_documents(f, tok), join_called)
    passes(capsys, lambda f: day03.check_token_pieces(f, tok),
           lambda t, text: [t.decode([i]) for i in t.encode_ordinary(text)])


def test_pad_batch_from_lists_passes(capsys):
    def from_lists(seqs, pad_id):  # padded lists first, then tensors
        T = max(map(len, seqs))
        ids = torch.tensor([list(s) + [pad_id] * (T - len(s)) for s in seqs], dtype=torch.long)
        mask = torch.tensor([[True] * len(s) + [False] * (T - len(s)) for s in seqs])
        return ids, mask

    passes(capsys, day03.check_pad_batch, from_lists)


def test_solutions_pass_with_a_bpe_tokenizer(capsys):
    text = "Once upon a time, a cat sat on the mat. The end. Hello there, strawberry fields! " * 3
    bpe = BPETokenizer.train(text, 270, special_tokens=["<|endoftext|>"])
    passes(capsys, lambda f: day03.check_token_pieces(f, bpe), token_pieces)
    passes(capsys, lambda f: day03.check_join_documents(f, bpe), join_documents)


def test_stubs_not_done(capsys, tok):
    fails(capsys, day03.check_pretokenize, stub, "not done yet")
    fails(capsys, lambda f: day03.check_token_pieces(f, tok), stub, "not done yet")
    fails(capsys, lambda f: day03.check_join_documents(f, tok), stub, "not done yet")
    fails(capsys, day03.check_pad_batch, stub, "not done yet")


def test_package_and_check_references_refused(capsys, tok):
    ref = "the course's own reference"
    fails(capsys, day03.check_pretokenize, day03._read_chunks, ref)
    fails(capsys, lambda f: day03.check_token_pieces(f, tok), CharTokenizer, ref)
    fails(capsys, lambda f: day03.check_join_documents(f, tok), day03._join, ref)
    fails(capsys, day03.check_pad_batch, day03._pad, ref)


def test_mistakes_with_the_lessons_tokenizer(capsys, tok):
    """The table's wrong answers, run with a package tokenizer as the notebook passes it."""
    for mistake in day03.JOIN_DOCUMENTS:
        rejects(capsys, day03.check_join_documents, type(mistake)(mistake.name, mistake.wrong, hint=mistake.hint,
                                                                  expect=mistake.expect, args=(mistake.wrong, tok)))


@pytest.mark.parametrize("odd", [None, 3, "ab", [1, 2], (torch.zeros(2), None)])
def test_odd_returns_fail_in_one_line(odd, capsys, tok):
    for check in (day03.check_pretokenize, lambda f: day03.check_token_pieces(f, tok),
                  lambda f: day03.check_join_documents(f, tok), day03.check_pad_batch):
        assert bool(check(lambda *a: odd)) is False
        assert one_line(capsys).startswith("❌")


def test_pad_crash_shows_input(capsys):
    def bad(seqs, pad_id):
        raise ValueError("nope")

    assert bool(day03.check_pad_batch(bad)) is False
    line = one_line(capsys)
    assert "your code raised ValueError" in line and "pad_batch([[5, 6, 7], [9]" in line


def test_token_pieces_crash_shows_input(capsys, tok):
    def bad(t, text):
        raise KeyError(text)

    assert bool(day03.check_token_pieces(bad, tok)) is False
    line = one_line(capsys)
    assert "your code raised" in line and "token_pieces(tok, 'strawberry')" in line


def test_pad_batch_by_hand():
    ids, mask = pad_batch([[3, 7], [7]], 7)
    assert ids.tolist() == [[3, 7], [7, 7]] and mask.tolist() == [[True, True], [True, False]]
