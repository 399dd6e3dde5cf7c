"""Checks for day 03, "Tokenizers in the wild".

Each check compares the learner's function with the reference on a small battery of inputs,
prints one line (pass, specific hint, or "not done yet") and returns ``True`` on a pass. None
of them raises. Every exercise has a table of typical mistakes (``PRETOKENIZE``,
``TOKEN_PIECES``, ``JOIN_DOCUMENTS``, ``PAD_BATCH``) from which the hints and the tests come.

The batteries use the GPT-2 and GPT-4 split patterns and a third pattern unlike both (so a
hard-coded pattern fails); the notebook's tokenizer and a small byte-level stand-in with other
pieces (so a function reading a notebook global instead of its ``tok`` argument fails); empty
inputs; a document holding the text ``<|endoftext|>``; pad ids that are not 0 and that also
occur as real tokens; batches whose size differs from their length.

Example::

    >>> import regex
    >>> from llmcourse.checks import day03
    >>> ok = day03.check_pretokenize(lambda text, pattern: regex.findall(pattern, text))
    ✅ pretokenize: passed
"""

from __future__ import annotations

import re
from typing import Any, Callable, Sequence

import regex
import torch

from llmcourse.checks._core import labelled as _labelled  # shared in _core
from llmcourse.checks._core import (Case, CheckFailed, Mistake, as_list, as_pair, as_tensor, check, compare,
                                    kind_of, none_hint)
from llmcourse.tokenizers.patterns import GPT2_SPLIT_PATTERN as _GPT2
from llmcourse.tokenizers.patterns import GPT4_SPLIT_PATTERN as _GPT4

__all__ = ["check_pretokenize", "check_token_pieces", "check_join_documents", "check_pad_batch",
           "PRETOKENIZE", "TOKEN_PIECES", "JOIN_DOCUMENTS", "PAD_BATCH"]

_SAMPLES = [
    "Hello world, it's 2024!!\n\n   Indented   text",
    "I'LL pay 1234567 dollars... won't you?\r\n",
    "café 😀 naïve 語 e\u0301",
    "",
]
# A pattern unlike GPT-2's and GPT-4's: letter runs, single digits, whitespace runs, symbol runs.
_OTHER = r"\p{L}+|\p{N}|\s+|[^\s\p{L}\p{N}]+"
_PATTERNS = ((_GPT2, "the GPT-2 pattern"), (_GPT4, "the GPT-4 pattern"), (_OTHER, "the pattern " + _OTHER))



# ---- a small byte-level tokenizer with the interface of the package's -----------------------
class _SpecialTokenError(ValueError):
    """The text holds the special token's string and ``allowed_special`` does not allow it."""


class _ToyTokenizer:
    """Greedy longest-match over a few pieces, UTF-8 bytes for the rest, and ``<|endoftext|>``."""

    special = "<|endoftext|>"

    def __init__(self, pieces: Sequence[str], reserved_after_eot: int = 0) -> None:
        self.pieces = {p.encode("utf-8"): 256 + k for k, p in enumerate(pieces)}
        self.vocab = {i: bytes([i]) for i in range(256)}
        self.vocab.update({i: p for p, i in self.pieces.items()})
        self.eot_token = 256 + len(pieces)
        # ids reserved after end-of-text (cl100k_base has some), so vocab_size - 1 is not always it
        self.vocab_size = self.eot_token + 1 + reserved_after_eot
        self.longest = max(len(p) for p in self.pieces)

    def _ordinary(self, text: str) -> list[int]:
        data, ids, i = text.encode("utf-8"), [], 0
        while i < len(data):
            for n in range(min(self.longest, len(data) - i), 1, -1):
                if data[i: i + n] in self.pieces:
                    ids.append(self.pieces[data[i: i + n]])
                    i += n
                    break
            else:
                ids.append(data[i])
                i += 1
        return ids

    def encode_ordinary(self, text: str) -> list[int]:  # as the package's and tiktoken's have
        return self._ordinary(text)

    def __call__(self, text: str, **kwargs: Any) -> list[int]:  # as the package's tokenizers
        return self.encode(text, **kwargs)

    def encode(self, text: str, allowed_special: Any = "none_raise") -> list[int]:
        if allowed_special == "none":
            return self._ordinary(text)
        allowed = allowed_special == "all" or (not isinstance(allowed_special, str)
                                               and self.special in allowed_special)
        if self.special in text and not allowed:  # "none_raise", or a set without the marker
            raise _SpecialTokenError(f"the text holds the special token {self.special!r}; pass "
                                     "allowed_special='none' to encode it as ordinary text")
        ids: list[int] = []
        for k, part in enumerate(text.split(self.special)):
            ids += ([self.eot_token] if k else []) + self._ordinary(part)
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        return b"".join(self.special.encode() if int(i) == self.eot_token else self.vocab[int(i)]
                        for i in ids).decode("utf-8", errors="replace")


_TOY = _ToyTokenizer(["straw", "berry", "Straw", " fields", "Hello", " world", "Once", " upon", " a",
                      " time", " the", "The", " end", " cat", " there", "é"])
_OTHER_TOK = _ToyTokenizer(["st", "raw", "ber", "ry", " f", "ield", "He", "llo", ", ", "ça", "<|", "|>"],
                           reserved_after_eot=3)
# The notebook-like global tokenizer (the lesson's ``gpt2``/``bpe``): a wrong answer of the tables
# reads it instead of its ``tok`` argument; each check sets it to the tokenizer it is given.
tok = _TOY


# ---- exercise 1: pretokenize -----------------------------------------------------------------
def _pre_re(text, pattern):
    return re.findall(pattern, text)


def _pre_split(text, pattern):
    return text.split()


def _pre_matches(text, pattern):
    return list(regex.finditer(pattern, text))


def _pre_gpt2(text, pattern):  # ignores its pattern argument
    return regex.findall(_GPT2, text)


def _pre_no_spaces(text, pattern):
    return [piece.strip() for piece in regex.findall(pattern, text) if piece.strip()]


def _pre_strip_each(text, pattern):
    return [piece.strip() for piece in regex.findall(pattern, text)]


def _pre_regex_split(text, pattern):  # the text BETWEEN the matches, not the matches
    return regex.split(pattern, text)


def _pre_text_stripped(text, pattern):  # whitespace at the ends of the text is lost
    return regex.findall(pattern, text.strip())


def _pre_blank_chunks_dropped(text, pattern):  # the chunks of whitespace alone are dropped
    return [piece for piece in regex.findall(pattern, text) if piece.strip()]


PRETOKENIZE = [
    Mistake("re instead of regex", _pre_re,
            hint="Python's `re` raised error: bad escape \\p; it does not know \\p{L} (any letter) or "
                 "\\p{N} (any digit): use the `regex` module instead (import regex; regex.findall(pattern, text))"),
    Mistake("str.split", _pre_split, hint="that is str.split(); use the regex pattern instead"),
    Mistake("match objects", _pre_matches,
            expect="pretokenize should return a list of strings; regex.findall(pattern, text) gives "
                   "exactly that (match objects need .group())"),
    Mistake("pattern ignored", _pre_gpt2,
            hint="pretokenize ignored its `pattern` argument and always split with GPT-2's: pass "
                 "`pattern` to regex.findall"),
    Mistake("spaces stripped", _pre_no_spaces,
            hint="the spaces were lost; keep every character of the text (the chunks joined give "
                 "the text back)"),
    Mistake("each chunk stripped", _pre_strip_each,
            hint="each chunk was stripped, but a word's leading space belongs to it (' world' is one "
                 "chunk): return the matches exactly as regex.findall(pattern, text) gives them"),
    Mistake("regex.split", _pre_regex_split,
            hint="regex.split returns the text BETWEEN the matches (mostly empty strings here); the "
                 "chunks are the matches themselves: regex.findall(pattern, text)"),
    Mistake("text stripped", _pre_text_stripped,
            hint="the text was stripped before splitting, so the whitespace at its ends is lost: split "
                 "the text exactly as given, regex.findall(pattern, text)"),
    Mistake("whitespace chunks dropped", _pre_blank_chunks_dropped,
            hint="the chunks made only of whitespace were dropped; keep every match (the chunks joined "
                 "give the text back)"),
]


def _read_chunks(value: Any, case: Case) -> list[str]:
    items = as_list(value, "pretokenize")
    if not all(isinstance(g, str) for g in items):
        raise CheckFailed(PRETOKENIZE[2].expect)
    return items


@check("pretokenize", mistakes=PRETOKENIZE)
def check_pretokenize(pretokenize: Callable[[str, str], Any]) -> None:
    """Exercise 1: ``pretokenize(text, pattern)`` returns every match of ``pattern``, in order."""
    cases = [Case(f"pretokenize({sample!r}, <{label}>)", sample, pattern)
             for pattern, label in _PATTERNS for sample in _SAMPLES]
    compare(pretokenize, lambda text, pattern: regex.findall(pattern, text), cases,
            name="pretokenize(text, pattern)", mistakes=PRETOKENIZE, read=_labelled(_read_chunks))


# ---- exercise 4 in the lesson: token_pieces --------------------------------------------------
def _pieces_ids(t, text):
    return t.encode(text)


def _pieces_chars(t, text):
    return list(text)


def _pieces_whole(t, text):
    return [t.decode(t.encode(text))]


def _pieces_no_list(t, text):
    return [t.decode(i) for i in t.encode(text)]


def _pieces_stripped(t, text):
    return [t.decode([i]).strip() for i in t.encode(text)]


def _pieces_global(t, text):  # the notebook's global tokenizer, not the argument
    return [tok.decode([i]) for i in tok.encode(text)]


def _pieces_unique(t, text):  # each distinct piece once: repeated tokens are lost
    return list(dict.fromkeys(t.decode([i]) for i in t.encode(text)))


TOKEN_PIECES = [
    Mistake("ids", _pieces_ids, args=(_pieces_ids, _TOY),
            hint="you returned the ids; decode each one: tok.decode([i])"),
    Mistake("characters", _pieces_chars, args=(_pieces_chars, _TOY),
            hint="you split the text into characters; encode it first and decode each id"),
    Mistake("decoded at once", _pieces_whole, args=(_pieces_whole, _TOY),
            hint="you returned the whole text (or its words) instead of one piece per token; decode each "
                 "id on its own: [tok.decode([i]) for i in tok.encode(text)]"),
    Mistake("decode(i)", _pieces_no_list, args=(_pieces_no_list, _TOY),
            hint="tok.decode takes a list of ids: tok.decode([i]), not tok.decode(i)"),
    Mistake("global tokenizer", _pieces_global, args=(_pieces_global, _TOY),
            hint="token_pieces ignored its `tok` argument and used the notebook's global tokenizer: "
                 "encode and decode with the `tok` passed in"),
    Mistake("pieces stripped", _pieces_stripped, args=(_pieces_stripped, _TOY),
            hint="the pieces were stripped, but the leading space is part of a token (' Strawberry'): "
                 "return tok.decode([i]) exactly as it is"),
    Mistake("repeats removed", _pieces_unique, args=(_pieces_unique, _TOY),
            hint="a piece that occurs several times was kept once: return one piece per token, repeats "
                 "included (no set or dict.fromkeys)"),
]


def _read_pieces(value: Any, case: Case) -> list[Any]:
    return as_list(value, "token_pieces")


@check("token_pieces", mistakes=TOKEN_PIECES, learner=("token_pieces",))
def check_token_pieces(token_pieces: Callable[[Any, str], Any], tok: Any) -> None:
    """Exercise 4: ``token_pieces(tok, text)`` is the list of strings each token decodes to."""
    globals()["tok"] = tok  # the notebook-like global that a wrong answer may read
    cases = [Case(f"token_pieces(tok, {s!r})", tok, s)
             for s in ["strawberry", " Strawberry fields", "Hello, world!", "", "Hello, hello, hello"]]
    cases.append(Case("token_pieces(another tokenizer, 'strawberry fields, ça')", _OTHER_TOK,
                      "strawberry fields, ça"))
    compare(token_pieces, lambda t, text: [t.decode([i]) for i in t.encode(text)], cases,
            name="token_pieces(tok, text)", mistakes=TOKEN_PIECES, read=_labelled(_read_pieces))


# ---- exercise 2 in the lesson: join_documents ------------------------------------------------
def _join(docs, t):
    ids: list[int] = []
    for doc in docs:
        ids += t.encode(doc, allowed_special="none") + [t.eot_token]
    return ids


def _join_no_last(docs, t):
    ids = []
    for k, doc in enumerate(docs):
        if k:
            ids.append(t.eot_token)
        ids += t.encode(doc, allowed_special="none")
    return ids


def _join_first(docs, t):
    ids = []
    for doc in docs:
        ids += [t.eot_token] + t.encode(doc, allowed_special="none")
    return ids


def _join_all(docs, t):
    ids = []
    for doc in docs:
        ids += t.encode(doc, allowed_special="all") + [t.eot_token]
    return ids


def _join_default(docs, t):
    ids = []
    for doc in docs:
        ids += t.encode(doc) + [t.eot_token]
    return ids


def _join_nested(docs, t):
    return [t.encode(doc, allowed_special="none") + [t.eot_token] for doc in docs]


def _join_stripped(docs, t):  # doc.strip() drops spaces that belong to the document
    ids = []
    for doc in docs:
        ids += t.encode(doc.strip(), allowed_special="none") + [t.eot_token]
    return ids


def _join_global(docs, t):  # the notebook's global tokenizer
    ids = []
    for doc in docs:
        ids += tok.encode(doc, allowed_special="none") + [tok.eot_token]
    return ids


def _join_string_all(docs, t):  # one string joined with the marker, markers allowed
    return t.encode("<|endoftext|>".join(docs) + "<|endoftext|>", allowed_special="all")


def _join_string_none(docs, t):  # one string joined with the marker, read as plain text
    return t.encode("<|endoftext|>".join(docs), allowed_special="none")


def _join_last_id(docs, t):  # guesses that end-of-text is the last id of the vocabulary
    ids = []
    for doc in docs:
        ids += t.encode(doc, allowed_special="none") + [t.vocab_size - 1]
    return ids


def _join_gpt2_id(docs, t):  # GPT-2's end-of-text id, whatever the tokenizer
    ids = []
    for doc in docs:
        ids += t.encode(doc, allowed_special="none") + [50256]
    return ids


def _join_marker_as_text(docs, t):  # the marker encoded as ordinary text: 13 ids, not the token
    ids = []
    for doc in docs:
        ids += t.encode(doc, allowed_special="none") + t.encode("<|endoftext|>", allowed_special="none")
    return ids


_NOT_THE_STRING = ("do not join the texts with the string '<|endoftext|>': encode each document on its "
                   "own with allowed_special='none' and append the id tok.eot_token after it")

JOIN_DOCUMENTS = [
    Mistake("no EOT after the last", _join_no_last, args=(_join_no_last, _TOY),
            hint="the last document has no end-of-text token; put one after *every* document, so the "
                 "model also learns to stop after the last one"),
    Mistake("EOT before", _join_first, args=(_join_first, _TOY),
            hint="EOT goes after each document, not before it"),
    Mistake("special allowed", _join_all, args=(_join_all, _TOY),
            hint="a document holding the text '<|endoftext|>' must be encoded as ordinary text "
                 "(allowed_special='none'), never as the real token"),
    Mistake("default encode", _join_default, args=(_join_default, _TOY),
            hint="encoding a document that holds the text '<|endoftext|>' raised an error: encode every "
                 "document as ordinary text with tok.encode(doc, allowed_special='none')"),
    Mistake("nested", _join_nested, args=(_join_nested, _TOY),
            expect="return one flat list of ids, not a list per document (use +=)"),
    Mistake("global tokenizer", _join_global, args=(_join_global, _TOY),
            hint="join_documents ignored its `tok` argument and used the notebook's global tokenizer: "
                 "encode with the `tok` passed in and use its tok.eot_token"),
    Mistake("documents stripped", _join_stripped, args=(_join_stripped, _TOY),
            hint="the spaces at the start or end of a document were dropped: encode each document "
                 "exactly as it is (no .strip()), the model should see the text as written"),
    Mistake("joined string, special allowed", _join_string_all, args=(_join_string_all, _TOY),
            hint=_NOT_THE_STRING + " (with allowed_special='all' a document's own '<|endoftext|>' "
                 "text becomes the real token, and an empty list still gives one)"),
    Mistake("joined string, as plain text", _join_string_none, args=(_join_string_none, _TOY),
            hint=_NOT_THE_STRING + " (with allowed_special='none' the marker is only text, so the "
                 "real end-of-text token never appears)"),
    Mistake("marker encoded as text", _join_marker_as_text, args=(_join_marker_as_text, _TOY),
            hint="the end-of-text marker went in as the text '<|endoftext|>' (several ordinary ids): "
                 "append the one id tok.eot_token after each document"),
    Mistake("vocab_size - 1 as EOT", _join_last_id, args=(_join_last_id, _TOY),
            hint="tok.vocab_size - 1 is not always the end-of-text id (cl100k_base has ids after it): "
                 "append tok.eot_token"),
    Mistake("GPT-2's 50256 as EOT", _join_gpt2_id, args=(_join_gpt2_id, _TOY),
            hint="50256 is GPT-2's end-of-text id, not this tokenizer's: append tok.eot_token"),
]


def _read_ids(value: Any, case: Case) -> list[int]:
    if value is None:
        raise none_hint("join_documents", "one flat list of ids")
    items = as_list(value, "join_documents")
    if items and isinstance(items[0], (list, tuple)):
        raise CheckFailed(JOIN_DOCUMENTS[4].expect)
    return [int(i) for i in as_list(items, "join_documents", of=int)]


@check("join_documents", mistakes=JOIN_DOCUMENTS, learner=("join_documents",))
def check_join_documents(join_documents: Callable[[Sequence[str], Any], Any], tok: Any) -> None:
    """Exercise 2: ``join_documents(docs, tok)`` encodes each document and ends it with EOT."""
    globals()["tok"] = tok
    story = ["Once upon a time, a cat.", "The end."]
    cases = [Case(f"join_documents({story!r}, tok)", list(story), tok),
             Case("join_documents([], tok)", [], tok),
             Case("join_documents([''], tok)", [""], tok),
             Case("join_documents(['Hello there', 'ça'], another tokenizer)", ["Hello there", "ça"], _OTHER_TOK),
             Case("join_documents(['Hello <|endoftext|> there', 'The end.'], tok)",
                  ["Hello <|endoftext|> there", "The end."], tok),
             Case("join_documents([' Hello there ', 'The end. '], tok) (spaces at the ends)",
                  [" Hello there ", "The end. "], tok)]
    compare(join_documents, _join, cases, name="join_documents(docs, tok)", mistakes=JOIN_DOCUMENTS,
            read=_labelled(_read_ids))


# ---- exercise 3: pad_batch -------------------------------------------------------------------
def _pad(seqs, pad_id):
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), T), dtype=torch.bool)
    for b, s in enumerate(seqs):
        ids[b, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[b, : len(s)] = True
    return ids, mask


def _pad_left(seqs, pad_id):
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), T), dtype=torch.bool)
    for b, s in enumerate(seqs):
        if s:
            ids[b, T - len(s):] = torch.tensor(s, dtype=torch.long)
            mask[b, T - len(s):] = True
    return ids, mask


def _pad_inverted(seqs, pad_id):
    ids, mask = _pad(seqs, pad_id)
    return ids, ~mask


def _pad_mask_from_ids(seqs, pad_id):
    ids, _ = _pad(seqs, pad_id)
    return ids, ids != pad_id


def _pad_zero(seqs, pad_id):
    T = max(len(s) for s in seqs)
    ids = torch.zeros((len(seqs), T), dtype=torch.long)
    mask = torch.zeros((len(seqs), T), dtype=torch.bool)
    for b, s in enumerate(seqs):
        ids[b, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[b, : len(s)] = True
    return ids, mask


def _pad_float(seqs, pad_id):
    ids, mask = _pad(seqs, pad_id)
    return ids.float(), mask


def _pad_lists(seqs, pad_id):
    T = max(len(s) for s in seqs)
    return ([list(s) + [pad_id] * (T - len(s)) for s in seqs],
            [[True] * len(s) + [False] * (T - len(s)) for s in seqs])


def _pad_int_mask(seqs, pad_id):
    ids, mask = _pad(seqs, pad_id)
    return ids, mask.long()


def _pad_transposed(seqs, pad_id):
    ids, mask = _pad(seqs, pad_id)
    return ids.T, mask.T


def _pad_swapped(seqs, pad_id):
    ids, mask = _pad(seqs, pad_id)
    return mask, ids


def _pad_first_length(seqs, pad_id):  # T from the first sequence, not the longest
    T = len(seqs[0])
    ids = torch.full((len(seqs), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), T), dtype=torch.bool)
    for b, s in enumerate(seqs):
        ids[b, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[b, : len(s)] = True
    return ids, mask


def _pad_mask_le(seqs, pad_id):  # <= instead of <: True one position past each sequence
    ids, _ = _pad(seqs, pad_id)
    lengths = torch.tensor([len(s) for s in seqs])
    return ids, torch.arange(ids.shape[1])[None, :] <= lengths[:, None]


def _pad_in_place(seqs, pad_id):  # s += [pad_id] * ...: pads the caller's own lists
    T = max(len(s) for s in seqs)
    lengths = [len(s) for s in seqs]
    for s in seqs:
        s += [pad_id] * (T - len(s))
    ids = torch.tensor(seqs, dtype=torch.long)
    mask = torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]
    return ids, mask


_PAD_CHANGED = ("pad_batch changed the lists it was given (s += [pad_id] * ... or s.extend pads the "
                "caller's own sequences): build the padded ids in a new tensor and leave seqs as "
                "they were")


def _run_pad(impl: Any, case: Case) -> Any:
    (seqs, pad_id), _ = case.fresh()
    before = [list(s) for s in seqs]
    out = impl(seqs, pad_id)
    if [list(s) for s in seqs] != before:
        raise CheckFailed(f"{_PAD_CHANGED} (on {case.label})")
    return out


PAD_BATCH = [
    Mistake("left padding", _pad_left, hint="you padded on the left; pad on the right (after the tokens)"),
    Mistake("mask inverted", _pad_inverted, hint="the mask is inverted: it should be True on real tokens"),
    Mistake("mask from ids", _pad_mask_from_ids,
            hint="the mask must come from the lengths, not from comparing ids with pad_id: a real token "
                 "can have the same id as the padding"),
    Mistake("padding 0", _pad_zero,
            hint="the padding is 0, not pad_id: fill with pad_id (e.g. torch.full((B, T), pad_id, dtype=torch.long))"),
    Mistake("float ids", _pad_float, expect="int64"),
    Mistake("lists", _pad_lists, expect="should be torch tensors"),
    Mistake("int mask", _pad_int_mask, expect="mask should be a bool tensor"),
    Mistake("transposed", _pad_transposed, expect="shape (4, 5) but should have shape (5, 4)"),
    Mistake("pads the caller's lists", _pad_in_place, expect=_PAD_CHANGED),
    Mistake("(mask, ids)", _pad_swapped, expect="pad_batch returned (mask, ids): return the ids first"),
    Mistake("T of the first sequence", _pad_first_length,
            hint="T must be the longest length, max(len(s) for s in seqs), not the length of the "
                 "first sequence"),
    Mistake("mask one too long", _pad_mask_le,
            hint="the mask is True one position past each sequence's end (<= instead of <): position t "
                 "is real when t < len(s)"),
]
_PAD_SWAPPED = next(m for m in PAD_BATCH if m.name == "(mask, ids)")


def _read_padded(value: Any, case: Case) -> tuple[Any, Any]:
    seqs = case.args[0]
    B, T = len(seqs), max(len(s) for s in seqs)
    ids, mask = as_pair(value, "pad_batch", ("ids", "mask"))
    if (isinstance(ids, torch.Tensor) and isinstance(mask, torch.Tensor) and ids.dtype == torch.bool
            and mask.dtype != torch.bool):
        raise CheckFailed(_PAD_SWAPPED.expect + " (ids, mask), with mask the bool tensor")
    for name, v in (("ids", ids), ("mask", mask)):
        if not isinstance(v, torch.Tensor):
            raise CheckFailed(f"{name} should be a torch tensor (torch.tensor(...) or torch.full), got "
                              f"{kind_of(v)}; both ids and mask should be torch tensors")
    as_tensor(ids, f"ids for {B} sequences of at most {T} ids (B, T)", shape=(B, T))
    if ids.dtype != torch.long:
        raise CheckFailed(f"ids has dtype {str(ids.dtype).replace('torch.', '')}: token ids must be int64 "
                          "(dtype=torch.long), as embedding layers and cross_entropy need")
    as_tensor(mask, f"mask for {B} sequences of at most {T} ids (B, T)", shape=(B, T))
    if mask.dtype != torch.bool:
        raise CheckFailed(f"mask should be a bool tensor (True on real tokens), got dtype "
                          f"{str(mask.dtype).replace('torch.', '')}: create it with dtype=torch.bool (a "
                          "float or int mask breaks masked_fill and ~mask)")
    return ids, mask


@check("pad_batch", mistakes=PAD_BATCH)
def check_pad_batch(pad_batch: Callable[[Sequence[Sequence[int]], int], Any]) -> None:
    """Exercise 3: right-pad to the longest sequence; return ``(ids, mask)``, both ``(B, T)``.

    The check uses pad ids that are not 0 (GPT-2 pads with its end-of-text id, 50256), one that
    also occurs as a real token, batches whose size differs from their length, a batch of one,
    and an empty sequence.
    """
    five = [[5, 6, 7], [9], [10, 11], [12, 13, 14, 16], [17, 18]]  # B = 5, longest T = 4
    cases = [Case(f"pad_batch({five}, pad_id=50256)", five, 50256),
             Case("pad_batch([[3, 7], [7]], pad_id=7) (the pad id is also a real token)", [[3, 7], [7]], 7),
             Case("pad_batch([[1, 2, 3]], pad_id=0) (one sequence)", [[1, 2, 3]], 0),
             Case("pad_batch([[], [4], [8, 8]], pad_id=9) (an empty sequence)", [[], [4], [8, 8]], 9),
             Case("pad_batch([[1, 2], [3, 4], [5, 6]], pad_id=50256) (nothing to pad)", [[1, 2], [3, 4], [5, 6]], 50256)]
    compare(pad_batch, _pad, cases, name="pad_batch(seqs, pad_id)", run=_run_pad, mistakes=PAD_BATCH,
            read=_labelled(_read_padded))
