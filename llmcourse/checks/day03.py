"""Checks for day 03, "Tokenizers in the wild".

Each check runs the learner's function on small inputs, prints one line (pass, specific hint,
or "not done yet") and returns ``True`` on a pass. None of them raises.

Example::

    >>> import regex
    >>> from llmcourse.checks import day03
    >>> ok = day03.check_pretokenize(lambda text, pattern: regex.findall(pattern, text))
    ✅ pretokenize: passed
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import regex

from llmcourse.checks._core import CheckFailed, run_check
from llmcourse.tokenizers.patterns import GPT2_SPLIT_PATTERN as _GPT2
from llmcourse.tokenizers.patterns import GPT4_SPLIT_PATTERN as _GPT4

__all__ = ["check_pretokenize", "check_token_pieces", "check_join_documents", "check_pad_batch"]

_SAMPLES = [
    "Hello world, it's 2024!!\n\n   Indented   text",
    "I'LL pay 1234567 dollars... won't you?\r\n",
    "café 😀 naïve 語 e\u0301",
    "",
]


def _as_list(value: Any, what: str) -> list[Any]:
    if value is None:
        raise CheckFailed(f"{what} returned None; did you forget `return`?")
    if isinstance(value, (str, bytes)):
        raise CheckFailed(f"{what} should return a list, got a {type(value).__name__}")
    return list(value)


def check_pretokenize(pretokenize: Callable[[str, str], Any]) -> bool:
    """Exercise 1: ``pretokenize(text, pattern)`` returns every match of ``pattern``, in order."""

    def body() -> None:
        for pattern, label in ((_GPT2, "GPT-2"), (_GPT4, "GPT-4")):
            for sample in _SAMPLES:
                expected = regex.findall(pattern, sample)
                got = _as_list(pretokenize(sample, pattern), "pretokenize")
                if got and not all(isinstance(g, str) for g in got):
                    raise CheckFailed(
                        "pretokenize should return a list of strings; regex.findall(pattern, "
                        "text) gives exactly that (match objects need .group())"
                    )
                if "".join(got) != sample and "".join(got) == sample.replace(" ", ""):
                    raise CheckFailed("the spaces were lost; keep every character of the text")
                if got == sample.split() and got != expected:
                    raise CheckFailed("that is str.split(); use the regex pattern instead")
                if got != expected:
                    raise CheckFailed(
                        f"with the {label} pattern, {sample!r} should split into {expected}, "
                        f"got {got}; use regex.findall(pattern, text) (the `regex` module, "
                        "not `re`: `re` does not understand \\p{L})"
                    )

    return run_check("pretokenize", body)


def check_token_pieces(token_pieces: Callable[[Any, str], Any], tok: Any) -> bool:
    """Exercise 2: ``token_pieces(tok, text)`` is the list of strings each token decodes to."""

    def body() -> None:
        for sample in ["strawberry", " Strawberry fields", "Hello, world!"]:
            ids = tok.encode(sample)
            expected = [tok.decode([i]) for i in ids]
            got = _as_list(token_pieces(tok, sample), "token_pieces")
            if got == ids:
                raise CheckFailed("you returned the ids; decode each one: tok.decode([i])")
            if "".join(map(str, got)) == sample and len(got) == len(sample) != len(ids):
                raise CheckFailed(
                    "you split the text into characters; encode it first and decode each id"
                )
            if got != expected:
                raise CheckFailed(
                    f"token_pieces(tok, {sample!r}) should be {expected}, got {got}; decode "
                    "each id on its own: [tok.decode([i]) for i in tok.encode(text)]"
                )

    return run_check("token_pieces", body)


def check_join_documents(join_documents: Callable[[Sequence[str], Any], Any], tok: Any) -> bool:
    """Exercise 3: ``join_documents(docs, tok)`` encodes each document and ends it with EOT."""

    def body() -> None:
        eot = tok.eot_token
        docs = ["Once upon a time, a cat.", "The end.", "Hello <|endoftext|> there"]
        expected: list[int] = []
        for d in docs:
            expected += tok.encode(d, allowed_special="none") + [eot]
        got = _as_list(join_documents(docs, tok), "join_documents")
        if got and isinstance(got[0], list):
            raise CheckFailed("return one flat list of ids, not a list per document (use +=)")
        got = [int(i) for i in got]
        n_eot = got.count(eot)
        if n_eot == len(docs) - 1 and got[-1] != eot:
            raise CheckFailed(
                "the last document has no end-of-text token; put one after *every* document, "
                "so the model also learns to stop after the last one"
            )
        if got and got[0] == eot and n_eot == len(docs):
            raise CheckFailed("EOT goes after each document, not before it")
        if n_eot == len(docs) + 1:
            raise CheckFailed(
                "one EOT too many: the third document holds the text '<|endoftext|>', which must "
                "be encoded as ordinary text (allowed_special='none'), never as the real token"
            )
        if got != expected:
            raise CheckFailed(
                f"expected {len(expected)} ids ending with {eot}, got {len(got)}; for each "
                "document: ids += tok.encode(doc, allowed_special='none') + [tok.eot_token]"
            )

    return run_check("join_documents", body)


def check_pad_batch(pad_batch: Callable[[Sequence[Sequence[int]], int], Any]) -> bool:
    """Exercise 4: right-pad to the longest sequence; return ``(ids, mask)``, both ``(B, T)``."""

    def body() -> None:
        import torch

        seqs = [[5, 6, 7], [8], [9, 10]]
        pad_id = 0
        result = pad_batch([list(s) for s in seqs], pad_id)
        if not isinstance(result, tuple) or len(result) != 2:
            raise CheckFailed("pad_batch should return a tuple (ids, mask)")
        ids, mask = result
        if not isinstance(ids, torch.Tensor) or not isinstance(mask, torch.Tensor):
            raise CheckFailed("both ids and mask should be torch tensors (torch.tensor(...))")
        expected_ids = torch.tensor([[5, 6, 7], [8, 0, 0], [9, 10, 0]])
        expected_mask = torch.tensor([[1, 1, 1], [1, 0, 0], [1, 1, 0]], dtype=torch.bool)
        if tuple(ids.shape) != (3, 3):
            raise CheckFailed(
                f"ids has shape {tuple(ids.shape)}, expected (3, 3): (batch, longest length)"
            )
        if ids.dtype != torch.long:
            raise CheckFailed(f"ids should be int64 (torch.long), got {ids.dtype}")
        if torch.equal(ids, torch.tensor([[5, 6, 7], [0, 0, 8], [0, 9, 10]])):
            raise CheckFailed("you padded on the left; pad on the right (after the tokens)")
        if not torch.equal(ids, expected_ids):
            raise CheckFailed(f"ids should be {expected_ids.tolist()}, got {ids.tolist()}")
        if tuple(mask.shape) != (3, 3):
            raise CheckFailed(f"mask has shape {tuple(mask.shape)}, expected (3, 3)")
        if torch.equal(mask.bool(), ~expected_mask):
            raise CheckFailed("the mask is inverted: it should be True on real tokens")
        if not torch.equal(mask.bool(), expected_mask):
            raise CheckFailed(
                f"mask should be {expected_mask.int().tolist()} (1 = real token), got "
                f"{mask.int().tolist()}"
            )
        # A pad id that also occurs as a real token must not confuse the mask.
        ids2, mask2 = pad_batch([[3, 0], [0]], 0)
        if mask2.bool().tolist() != [[True, True], [True, False]]:
            raise CheckFailed(
                "the mask must come from the lengths, not from comparing ids with pad_id: "
                "a real token can have the same id as the padding"
            )

    return run_check("pad_batch", body)
