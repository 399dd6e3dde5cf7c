"""Checks for day 01, "Characters to numbers".

Each ``check_*`` function runs the learner's code (or inspects the value they built), prints
one line - a pass, a specific hint, or "not done yet" - and returns ``True`` on a pass.
None of them raises, so a check cell never stops a notebook.

Every exercise has a table of typical mistakes (``VOCABULARY``, ``LOOKUP_TABLES``,
``ENCODE_DECODE``, ``ENCODE_WITH_UNK``): the checks' hints come from it, and the tests run
every entry. ``encode``/``decode`` are compared with the reference on a seeded battery of
strings drawn from the text's vocabulary (the empty string, one character, every character,
a long random string); ``encode_with_unk`` on several tables, including ones unlike the
notebook's ``stoi`` and a non-default ``unk_id``.

Example (in the lesson)::

    >>> from llmcourse.checks import day01
    >>> ok = day01.check_vocabulary(sorted(set("hello")), 4, "hello")
    ✅ vocabulary: passed
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any, Callable, Mapping, Sequence

from llmcourse.checks._core import labelled as _labelled, PartNotDone as _PartNotDone  # shared in _core
from llmcourse.checks._core import (Case, CheckFailed, EarlierNotDone, Mistake, as_int_list, as_list,
                                    check, compare, none_hint, require, same)

__all__ = [
    "check_vocabulary",
    "check_lookup_tables",
    "check_encode_decode",
    "check_encode_with_unk",
    "VOCABULARY",
    "LOOKUP_TABLES",
    "ENCODE_DECODE",
    "ENCODE_WITH_UNK",
]

# Text the checks feed to the learner's functions: every kind of character Tiny Shakespeare
# holds (capitals, punctuation, the newline, the space).
_SAMPLE = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak!"
# The text of the mistake tables (a stand-in for the notebook's ``text``), with rare characters.
_TEXT = _SAMPLE + "\n$3&"

# The notebook-like globals: what the lesson's ``chars``, ``stoi`` and ``itos`` hold. The wrong
# implementations of the tables read them as a learner's functions read the notebook's globals;
# each check sets them from the tables of the notebook it is called from.
chars = sorted(set(_TEXT))
stoi = {ch: i for i, ch in enumerate(chars)}
itos = {i: ch for i, ch in enumerate(chars)}



def _tables(text: str) -> tuple[list[str], dict[str, int], dict[int, str]]:
    vocab = sorted(set(text))
    return vocab, {ch: i for i, ch in enumerate(vocab)}, {i: ch for i, ch in enumerate(vocab)}


def _set_notebook_tables(text: str) -> None:
    global chars, stoi, itos
    chars, stoi, itos = _tables(text)


# ---- exercise 1: the vocabulary --------------------------------------------------------------
_N = len(sorted(set(_TEXT)))
VOCABULARY = [
    Mistake("first-seen order", None, args=(list(dict.fromkeys(_TEXT)), _N, _TEXT),
            hint="`chars` holds the right characters in an arbitrary order; sort them "
                 "(sorted(...)) so the ids are the same in every Python session"),
    Mistake("a set", None, args=(set(_TEXT), _N, _TEXT),
            hint="`chars` is a set; turn it into a list with sorted(...) so that every "
                 "character gets a fixed position (its id)"),
    Mistake("sorted(text)", None, args=(sorted(_TEXT), len(_TEXT), _TEXT),
            hint="`chars` holds duplicates; build it from set(text)"),
    Mistake("first line only", None, args=(sorted(set(_TEXT.splitlines()[0])),
                                           len(set(_TEXT.splitlines()[0])), _TEXT),
            hint="`chars` misses characters of the text; build it from the whole text"),
    Mistake("vocab_size = len(text)", None, args=(sorted(set(_TEXT)), len(_TEXT), _TEXT),
            hint="`vocab_size` is not the number of characters in `chars`; use len(chars)"),
]
_V_ORDER, _V_SET, _V_DUPS, _V_MISSES, _V_SIZE = VOCABULARY


@check("vocabulary", mistakes=VOCABULARY)
def check_vocabulary(chars: Any, vocab_size: Any, text: str) -> None:
    """Exercise 1: ``chars`` is the sorted list of distinct characters of ``text``.

    ``vocab_size`` must be its length.
    """
    require(chars, "chars")
    require(vocab_size, "vocab_size")
    expected = sorted(set(text))
    if isinstance(chars, (set, frozenset)):
        raise CheckFailed(_V_SET.hint)
    chars_list = list(chars) if isinstance(chars, str) else as_list(chars, "chars")
    if len(chars_list) != len(set(chars_list)):
        raise CheckFailed(f"{_V_DUPS.hint} ({len(chars_list)} items, {len(set(chars_list))} distinct)")
    missing = sorted(set(expected) - set(chars_list))
    if missing:
        raise CheckFailed(f"{_V_MISSES.hint} ({len(missing)} missing, e.g. {missing[0]!r})")
    extra = sorted(set(chars_list) - set(expected), key=repr)
    if extra:
        raise CheckFailed(f"`chars` holds {extra[0]!r}, which is not in the text")
    if chars_list != expected:
        raise CheckFailed(_V_ORDER.hint)
    if vocab_size != len(expected):
        raise CheckFailed(f"{_V_SIZE.hint} (`vocab_size` is {vocab_size!r}, `chars` holds "
                          f"{len(expected)} characters)")


# ---- exercise 2: stoi and itos ---------------------------------------------------------------
_C = sorted(set(_TEXT))
LOOKUP_TABLES = [
    Mistake("ids from 1", None, args=({ch: i + 1 for i, ch in enumerate(_C)},
                                      {i + 1: ch for i, ch in enumerate(_C)}, _C),
            hint="the ids start at 1; enumerate(chars) starts at 0, and id 0 must be used or the "
                 "embedding table gets a row that no token ever selects"),
    Mistake("swapped", None, args=({i: ch for i, ch in enumerate(_C)}, {ch: i for i, ch in enumerate(_C)}, _C),
            hint="`stoi` has integer keys: it looks like `itos`. stoi maps string -> int, "
                 "itos maps int -> string"),
    Mistake("stoi in first-seen order", None,
            args=({ch: i for i, ch in enumerate(dict.fromkeys(_TEXT))}, {i: ch for i, ch in enumerate(_C)}, _C),
            hint="stoi must give each character its position in `chars` (enumerate(chars), not "
                 "the order of the text)"),
    Mistake("itos not the inverse", None,
            args=({ch: i for i, ch in enumerate(_C)}, {i: ch for i, ch in enumerate(reversed(_C))}, _C),
            hint="itos must undo stoi: itos[stoi[ch]] == ch for every character"),
    Mistake("last character left out", None,
            args=({ch: i for i, ch in enumerate(_C[:-1])}, {i: ch for i, ch in enumerate(_C[:-1])}, _C),
            hint="`stoi` should have one key per character of `chars`"),
    Mistake("itos a list", None, args=({ch: i for i, ch in enumerate(_C)}, list(_C), _C),
            hint="`stoi` and `itos` should both be dicts"),
    Mistake("ids as strings", None, args=({ch: str(i) for i, ch in enumerate(_C)},
                                          {str(i): ch for i, ch in enumerate(_C)}, _C),
            hint="the ids are strings (str(i) or an f-string): store the int i itself, stoi[ch] "
                 "must be an int that can index an embedding table"),
]
_L_FROM1, _L_SWAPPED, _L_ORDER, _L_INVERSE, _L_KEYS, _L_DICTS, _L_STR = LOOKUP_TABLES


@check("lookup tables", mistakes=LOOKUP_TABLES)
def check_lookup_tables(stoi: Any, itos: Any, chars: Sequence[str]) -> None:
    """Exercise 2: ``stoi`` maps each character to its index in ``chars``; ``itos`` inverts it."""
    require(stoi, "stoi")
    require(itos, "itos")
    if not isinstance(stoi, Mapping) or not isinstance(itos, Mapping):
        raise CheckFailed(f"{_L_DICTS.hint}, got {type(stoi).__name__} and {type(itos).__name__}")
    expected = {ch: i for i, ch in enumerate(chars)}
    if stoi and all(isinstance(k, int) for k in stoi):
        raise CheckFailed(_L_SWAPPED.hint)
    if set(stoi) != set(expected):
        raise CheckFailed(f"{_L_KEYS.hint} ({len(expected)}), it has {len(stoi)}")
    if any(isinstance(stoi[ch], str) for ch in expected):
        raise CheckFailed(f"{_L_STR.hint}; stoi[{chars[0]!r}] is {stoi[chars[0]]!r}")
    if all(stoi[ch] == i + 1 for ch, i in expected.items()):
        raise CheckFailed(_L_FROM1.hint)
    for ch, i in expected.items():
        if stoi[ch] != i:
            raise CheckFailed(f"{_L_ORDER.hint}: stoi[{ch!r}] is {stoi[ch]!r}, expected {i}")
    if len(itos) != len(expected):
        raise CheckFailed(f"`itos` has {len(itos)} entries, expected {len(expected)}: {_L_INVERSE.hint}")
    for ch, i in expected.items():
        if itos.get(i) != ch:
            raise CheckFailed(f"{_L_INVERSE.hint}; itos[{i}] is {itos.get(i)!r}, expected {ch!r}")


# ---- exercise 3: encode / decode -------------------------------------------------------------
# The wrong answers read the notebook-like globals ``stoi``/``itos`` of this module, as a
# learner's functions read the notebook's.
def _encode(s):
    return [stoi[ch] for ch in s]


def _decode(ids):
    return "".join(itos[int(i)] for i in ids)


def _encode_plus_one(s):
    return [stoi[ch] + 1 for ch in s]


def _encode_ord(s):
    return [ord(ch) for ch in s]


def _encode_no_spaces(s):
    return [stoi[ch] for ch in s if not ch.isspace()]


def _encode_str(s):
    return "".join(str(stoi[ch]) for ch in s)


def _encode_drops_last(s):
    return [stoi[ch] for ch in s[:-1]]


def _encode_map(s):  # a lazy map object, not a list: torch.tensor(encode(s)) fails on it
    return map(stoi.get, s)


def _decode_drops_first(ids):
    return "".join(itos[i] for i in ids[1:])


def _decode_chr(ids):
    return "".join(chr(i) for i in ids)


def _decode_no_return(ids):
    "".join(itos[i] for i in ids)


def _decode_drops_last(ids):
    return "".join(itos[ids[i]] for i in range(len(ids) - 1))


def _decode_spaces(ids):
    return " ".join(itos[i] for i in ids)


def _decode_list(ids):
    return [itos[i] for i in ids]


_E_PLUS1 = Mistake("encode ids + 1", _encode_plus_one, args=(_encode_plus_one, _decode, _TEXT),
                   hint="encode's ids are one too high (stoi[ch] + 1): look each character up in "
                        "stoi, ids start at 0")
_E_ORD = Mistake("encode with ord", _encode_ord, args=(_encode_ord, _decode, _TEXT),
                 hint="encode gave Unicode code points (ord(ch)), not the vocabulary's ids: look "
                      "each character up in stoi")
_E_SPACES = Mistake("encode drops whitespace", _encode_no_spaces, args=(_encode_no_spaces, _decode, _TEXT),
                    hint="encode dropped the spaces and newlines: a character tokenizer gives "
                         "exactly one id per character, whitespace included")
_E_STR = Mistake("encode returns a str", _encode_str, args=(_encode_str, _decode, _TEXT),
                 expect="encode(s) should return a list, got a str")
_E_LAST = Mistake("encode drops the last character", _encode_drops_last,
                  args=(_encode_drops_last, _decode, _TEXT),
                  hint="encode left out the last character (s[:-1] or range(len(s) - 1)): give one id "
                       "for every character of s, the last one included")
_E_ITER = Mistake("encode returns a map/generator", _encode_map, args=(_encode_map, _decode, _TEXT),
                  expect="encode(s) returned a map object, not a list: wrap it in list(...) or "
                         "write a list comprehension [... for ch in s]")
_D_CHR = Mistake("decode with chr", _decode_chr, args=(_encode, _decode_chr, _TEXT),
                 hint="decode turned each id into the character with that code point (chr(i)); the ids "
                      "are positions in the vocabulary: look each one up in itos")
_D_FIRST = Mistake("decode drops the first id", _decode_drops_first,
                   args=(_encode, _decode_drops_first, _TEXT),
                   hint="decode dropped the first id (ids[1:] or range(1, len(ids))): decode every id, "
                        "the first one included")
_D_NONE = Mistake("decode without return", _decode_no_return, args=(_encode, _decode_no_return, _TEXT),
                  expect="decode returned None; did you forget the `return`?")
_D_LAST = Mistake("decode drops the last id", _decode_drops_last, args=(_encode, _decode_drops_last, _TEXT),
                  hint="decode dropped the last id (range(len(ids) - 1) or ids[:-1]): decode every "
                       "id, the last one included")
_D_SPACES = Mistake("decode joins with spaces", _decode_spaces, args=(_encode, _decode_spaces, _TEXT),
                    hint="decode put a space between the characters (' '.join): join them with "
                         "''.join(...)")
_D_LIST = Mistake("decode returns a list", _decode_list, args=(_encode, _decode_list, _TEXT),
                  expect="join the characters into one string with ''.join(...)")
_ENCODE_MISTAKES = [_E_PLUS1, _E_ORD, _E_SPACES, _E_STR, _E_LAST, _E_ITER]
_DECODE_MISTAKES = [_D_NONE, _D_LAST, _D_FIRST, _D_SPACES, _D_LIST, _D_CHR]
ENCODE_DECODE = _ENCODE_MISTAKES + _DECODE_MISTAKES



def _unfinished_tables(fn: Any) -> bool:
    """True when the notebook's ``stoi`` or ``itos`` that ``fn`` reads is still ``None``."""
    names: dict[str, Any] = {}
    names.update(getattr(fn, "__globals__", {}) or {})
    code = getattr(fn, "__code__", None)
    for var, cell in zip(getattr(code, "co_freevars", ()), getattr(fn, "__closure__", None) or ()):
        try:
            names[var] = cell.cell_contents
        except ValueError:  # an empty cell
            continue
    return any(name in names and names[name] is None for name in ("stoi", "itos"))


def _learner_run(fn: Any) -> Callable[[Any, Case], Any]:
    """Run ``impl`` on a case; the learner's TypeError on a still-None table names exercise 2."""

    def run(impl: Any, case: Case) -> Any:
        args, kwargs = case.fresh()
        try:
            return impl(*args, **kwargs)
        except TypeError as exc:
            if impl is fn and "NoneType" in str(exc) and _unfinished_tables(fn):
                raise EarlierNotDone("stoi / itos", 2) from exc
            raise

    return run


def _strings(text: str) -> list[tuple[str, str]]:
    vocab = sorted(set(text))
    sample = "".join(ch for ch in _SAMPLE if ch in set(vocab)) or vocab[0]
    rng = random.Random(1)
    long = "".join(rng.choice(vocab) for _ in range(300))
    return [(f"the sample {sample[:16]!r}... ({len(sample)} characters)", sample),
            ("the empty string ''", ""),
            (f"one character {vocab[-1]!r}", vocab[-1]),
            (f"every character of the vocabulary, backwards ({len(vocab)} characters)", "".join(reversed(vocab))),
            ("300 random characters of the vocabulary", long)]


def _read_ids(value: Any, case: Case) -> list[int]:
    if isinstance(value, Iterator):  # map(...), a generator: used once, and torch.tensor refuses it
        raise CheckFailed(f"encode(s) returned a {type(value).__name__} object, not a list: wrap it in "
                          "list(...) or write a list comprehension [... for ch in s]")
    return as_int_list(value, "encode(s)")


def _read_text(value: Any, name: str) -> str:
    if value is None:
        raise none_hint(name, "a str")
    if isinstance(value, (list, tuple)):
        raise CheckFailed(f"{name} returned a {type(value).__name__}; {_D_LIST.expect}")
    if not isinstance(value, str):
        raise CheckFailed(f"{name} should return a str, got {type(value).__name__}; {_D_LIST.expect}")
    return value


@check("encode/decode", mistakes=ENCODE_DECODE, learner=("encode", "decode"))
def check_encode_decode(encode: Callable[[str], Any], decode: Callable[[Sequence[int]], Any], text: str) -> None:
    """Exercise 3: ``encode`` maps a string to the list of ids; ``decode`` maps ids back."""
    _set_notebook_tables(text)
    vocab, ref_stoi, ref_itos = _tables(text)
    strings = _strings(text)
    cases = [Case(f"encode({label})", s) for label, s in strings]
    compare(encode, lambda s: [ref_stoi[ch] for ch in s], cases, name="encode(s)",
            run=_learner_run(encode), mistakes=_ENCODE_MISTAKES, read=_labelled(_read_ids))
    run = _learner_run(decode)
    for label, s in strings:
        ids = [ref_stoi[ch] for ch in s]
        case = Case(f"decode of the {len(ids)} ids of {label}", ids)
        try:
            got = run(decode, case)
        except NotImplementedError as exc:
            raise _PartNotDone("encode passed; decode is not done yet — write it in the cell above, run "
                               "it, then run this check again") from exc
        except AssertionError:
            raise
        except Exception as exc:  # noqa: BLE001 - turned into a verdict
            raise CheckFailed(f"your code raised {type(exc).__name__}: {exc} on {case.label}") from exc
        try:
            got = _read_text(got, "decode")
        except CheckFailed as exc:
            raise CheckFailed(f"{exc} (on {case.label})") from None
        if got == s:
            continue
        for mistake in _DECODE_MISTAKES:
            if mistake.hint is None:
                continue
            try:
                theirs = mistake.wrong(list(ids))
            except Exception:  # noqa: BLE001 - a mistake may crash on this input
                continue
            if theirs == got:
                raise CheckFailed(f"{mistake.hint}: decode gave {len(got)} characters for {len(ids)} "
                                  f"ids, expected {len(s)} ({_difference(got, s)}) (on {case.label})")
        raise CheckFailed(f"decode(encode(s)) != s: decode gave {len(got)} characters for {len(ids)} ids, "
                          f"expected {len(s)}; {_difference(got, s)} (on {case.label})")


def _difference(got: str, expected: str) -> str:
    if expected.startswith(got):
        return f"the end {expected[len(got):][:12]!r} is missing"
    return same(got, expected, "the text") or "they differ"


# ---- exercise 4: <unk> -----------------------------------------------------------------------
def _unk_global(s, table, unk_id):  # reads the notebook's global stoi, not its argument
    return [stoi.get(ch, unk_id) for ch in s]


def _unk_dropped(s, stoi, unk_id):
    return [stoi[ch] for ch in s if ch in stoi]


def _unk_len(s, stoi, unk_id):
    return [stoi.get(ch, len(stoi)) for ch in s]


def _unk_zero(s, stoi, unk_id):
    return [stoi.get(ch, 0) for ch in s]


def _unk_or(s, stoi, unk_id):
    return [stoi.get(ch) or unk_id for ch in s]


def _unk_keyerror(s, stoi, unk_id):
    return [stoi[ch] for ch in s]


def _unk_no_return(s, stoi, unk_id):
    [stoi.get(ch, unk_id) for ch in s]


def _unk_adds_to_table(s, stoi, unk_id):  # registers '<unk>' in the caller's own table
    stoi["<unk>"] = unk_id
    return [stoi.get(ch, unk_id) for ch in s]


def _unk_whole_try(s, stoi, unk_id):  # one try around the whole list: one unknown spoils every id
    try:
        return [stoi[ch] for ch in s]
    except KeyError:
        return [unk_id for ch in s]


_UNK_CHANGED = ("encode_with_unk changed the `stoi` it was given (it added or changed entries): "
                "only read the table, with stoi.get(ch, unk_id), so the notebook's stoi stays as it was")


def _run_unk(impl: Any, case: Case) -> Any:
    (s, table, unk_id), _ = case.fresh()
    before = dict(table)
    out = impl(s, table, unk_id)
    if table != before:
        raise CheckFailed(f"{_UNK_CHANGED} (on {case.label})")
    return out


ENCODE_WITH_UNK = [
    Mistake("global stoi", _unk_global, args=(_unk_global, stoi),
            hint="encode_with_unk ignored its `stoi` argument and read the notebook's global `stoi`: "
                 "look the characters up in the table passed in"),
    Mistake("unknowns dropped", _unk_dropped, args=(_unk_dropped, stoi),
            hint="unknown characters were dropped; give each one `unk_id` instead so the sequence "
                 "keeps one id per character"),
    Mistake("unk_id hard-coded", _unk_len, args=(_unk_len, stoi),
            hint="use the `unk_id` argument, not a fixed number such as len(stoi)"),
    Mistake("unknowns get 0", _unk_zero, args=(_unk_zero, stoi),
            hint="unknown characters got id 0, which is a real character's id: give them the "
                 "`unk_id` argument, stoi.get(ch, unk_id)"),
    Mistake("get(ch) or unk_id", _unk_or, args=(_unk_or, stoi),
            hint="the character with id 0 became unk_id: `stoi.get(ch) or unk_id` treats id 0 as "
                 "missing; use stoi.get(ch, unk_id)"),
    Mistake("KeyError", _unk_keyerror, args=(_unk_keyerror, stoi),
            hint="an unknown character raised KeyError: give it unk_id (stoi.get(ch, unk_id))"),
    Mistake("try around the whole list", _unk_whole_try, args=(_unk_whole_try, stoi),
            hint="every id became unk_id because one character was unknown: the try/except wraps "
                 "the whole list; handle each character on its own (stoi.get(ch, unk_id))"),
    Mistake("no return", _unk_no_return, args=(_unk_no_return, stoi),
            expect="encode_with_unk returned None; did you forget the `return`?"),
    Mistake("adds <unk> to the table", _unk_adds_to_table, args=(_unk_adds_to_table, stoi),
            expect=_UNK_CHANGED),
]


def _unk_cases(notebook_stoi: Mapping[str, int]) -> list[Case]:
    own = {"z": 0, "é": 1, "y": 2, "👋": 3, " ": 4}
    sparse = {"a": 5, "b": 2}
    n = len(notebook_stoi)
    return [
        Case(f"encode_with_unk('Romeo, café? 👋', your stoi, unk_id={n})", "Romeo, café? 👋", dict(notebook_stoi), n),
        Case("encode_with_unk('zéy 👋?z!', stoi={'z': 0, 'é': 1, 'y': 2, '👋': 3, ' ': 4}, unk_id=7) "
             "(a table unlike the notebook's)", "zéy 👋?z!", dict(own), 7),
        Case("encode_with_unk('abcab', stoi={'a': 5, 'b': 2}, unk_id=0)", "abcab", dict(sparse), 0),
        Case("encode_with_unk('', stoi={'z': 0, ...}, unk_id=7)", "", dict(own), 7),
        Case(f"encode_with_unk('ßø', your stoi, unk_id={n + 3})", "ßø", dict(notebook_stoi), n + 3),
    ]


@check("encode with <unk>", mistakes=ENCODE_WITH_UNK, learner=("encode_with_unk",))
def check_encode_with_unk(encode_with_unk: Callable[[str, Mapping[str, int], int], Any],
                          stoi: Mapping[str, int]) -> None:
    """Exercise 4: characters missing from ``stoi`` map to ``unk_id``, one id per character.

    ``stoi`` is the notebook's table; the battery also uses tables unlike it (so reading the
    notebook's global ``stoi`` instead of the argument fails) and ``unk_id`` values other than
    ``len(stoi)``.
    """
    require(stoi, "stoi")
    globals()["stoi"] = dict(stoi)  # the notebook-like global that a wrong answer may read
    compare(encode_with_unk, lambda s, table, unk_id: [table.get(ch, unk_id) for ch in s],
            _unk_cases(stoi), name="encode_with_unk(s, stoi, unk_id)", run=_run_unk,
            mistakes=ENCODE_WITH_UNK,
            read=_labelled(lambda v, case: as_int_list(v, "encode_with_unk")))
