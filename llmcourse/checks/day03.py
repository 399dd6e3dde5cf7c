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

from llmcourse.checks._core import CheckFailed, as_list, as_pair, as_tensor, assert_dtype, call, run_check
from llmcourse.tokenizers.patterns import GPT2_SPLIT_PATTERN as _GPT2
from llmcourse.tokenizers.patterns import GPT4_SPLIT_PATTERN as _GPT4

__all__ = ["check_pretokenize", "check_token_pieces", "check_join_documents", "check_pad_batch"]

_SAMPLES = [
    "Hello world, it's 2024!!\n\n   Indented   text",
    "I'LL pay 1234567 dollars... won't you?\r\n",
    "café 😀 naïve 語 e\u0301",
    "",
]


def _pretokenize_call(pretokenize: Callable[[str, str], Any], sample: str, pattern: str,
                      label: str) -> Any:
    try:
        return pretokenize(sample, pattern)
    except (NotImplementedError, AssertionError):
        raise
    except Exception as exc:  # noqa: BLE001 - turned into a verdict
        if "bad escape" in str(exc) and "\\p" in str(exc):
            raise CheckFailed(
                f"pretokenize({sample!r}, <{label} pattern>) raised {type(exc).__name__}: {exc}. "
                "Python's `re` module does not know \\p{L} (any letter) or \\p{N} (any digit): "
                "use the `regex` module instead (import regex; regex.findall(pattern, text))"
            ) from exc
        raise CheckFailed(f"your code raised {type(exc).__name__}: {exc} on pretokenize({sample!r}, "
                          f"<{label} pattern>)") from exc


def check_pretokenize(pretokenize: Callable[[str, str], Any]) -> bool:
    """Exercise 1: ``pretokenize(text, pattern)`` returns every match of ``pattern``, in order."""

    def body() -> None:
        for pattern, label in ((_GPT2, "GPT-2"), (_GPT4, "GPT-4")):
            for sample in _SAMPLES:
                expected = regex.findall(pattern, sample)
                got = as_list(_pretokenize_call(pretokenize, sample, pattern, label), "pretokenize")
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
            got = as_list(call(token_pieces, tok, sample, shown=f"token_pieces(tok, {sample!r})"),
                          "token_pieces")
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
        got = as_list(call(join_documents, docs, tok, shown=f"join_documents({docs!r}, tok)"),
                      "join_documents")
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
    """Exercise 3: right-pad to the longest sequence; return ``(ids, mask)``, both ``(B, T)``.

    The check uses a pad id that is not 0 (GPT-2 pads with its end-of-text id, 50256) and a
    batch whose size differs from its length, so that neither a hard-coded 0 nor swapped
    dimensions pass.
    """

    def body() -> None:
        import torch

        seqs = [[5, 6, 7], [9], [10, 11], [12, 13, 14, 16], [17, 18]]  # B = 5, longest T = 4
        pad_id = 50256
        shown = f"pad_batch({seqs}, pad_id={pad_id})"
        result = call(pad_batch, [list(s) for s in seqs], pad_id, shown=shown)
        ids, mask = as_pair(result, "pad_batch", ("ids", "mask"))
        for name, value in (("ids", ids), ("mask", mask)):
            if not isinstance(value, torch.Tensor):
                raise CheckFailed(f"{name} should be a torch tensor (torch.tensor(...) or torch.full), "
                                  f"got {type(value).__name__}; both ids and mask should be torch tensors")
        P = pad_id
        expected_ids = torch.tensor([[5, 6, 7, P], [9, P, P, P], [10, 11, P, P], [12, 13, 14, 16],
                                     [17, 18, P, P]])
        expected_mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1],
                                      [1, 1, 0, 0]], dtype=torch.bool)
        as_tensor(ids, "ids for 5 sequences of at most 4 ids (B, T)", shape=(5, 4))
        assert_dtype(ids, torch.long, "ids", "token ids must be int64 (dtype=torch.long), as "
                     "embedding layers and cross_entropy need")
        if torch.equal(ids, torch.where(expected_mask, expected_ids, torch.zeros_like(expected_ids))):
            raise CheckFailed(f"the padding is 0 although pad_id is {pad_id}: fill with pad_id "
                              "(e.g. torch.full((B, T), pad_id, dtype=torch.long))")
        left = torch.stack([torch.cat([torch.full((4 - len(s),), P), torch.tensor(s)]) for s in seqs])
        if torch.equal(ids, left):
            raise CheckFailed("you padded on the left; pad on the right (after the tokens)")
        if not torch.equal(ids, expected_ids):
            raise CheckFailed(f"{shown}: ids should be {expected_ids.tolist()}, got {ids.tolist()}")
        as_tensor(mask, "mask for 5 sequences of at most 4 ids (B, T)", shape=(5, 4))
        if mask.dtype == torch.bool and torch.equal(mask, ~expected_mask):
            raise CheckFailed("the mask is inverted: it should be True on real tokens")
        if mask.dtype != torch.bool:
            raise CheckFailed(f"mask should be a bool tensor (True on real tokens), got dtype "
                              f"{str(mask.dtype).replace('torch.', '')}: create it with "
                              "dtype=torch.bool (a float or int mask breaks masked_fill and ~mask)")
        if not torch.equal(mask, expected_mask):
            raise CheckFailed(
                f"mask should be {expected_mask.int().tolist()} (1 = real token), got "
                f"{mask.int().tolist()}"
            )
        # A pad id that also occurs as a real token must not confuse the mask.
        ids2, mask2 = as_pair(call(pad_batch, [[3, 7], [7]], 7, shown="pad_batch([[3, 7], [7]], pad_id=7)"),
                              "pad_batch", ("ids", "mask"))
        if as_tensor(mask2, "mask").tolist() != [[True, True], [True, False]]:
            raise CheckFailed(
                "the mask must come from the lengths, not from comparing ids with pad_id: "
                "a real token can have the same id as the padding"
            )

    return run_check("pad_batch", body)
