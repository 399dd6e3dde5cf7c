"""Checks for day 01, "Characters to numbers".

Each ``check_*`` function runs the learner's code (or inspects the value they built), prints
one line - a pass, a specific hint, or "not done yet" - and returns ``True`` on a pass.
None of them raises, so a check cell never stops a notebook.

Example (in the lesson)::

    >>> from llmcourse.checks import day01
    >>> ok = day01.check_vocabulary(sorted(set("hello")), 4, "hello")
    ✅ vocabulary: passed
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from llmcourse.checks._core import CheckFailed, EarlierNotDone, as_int_list, call, require, run_check

__all__ = [
    "check_vocabulary",
    "check_lookup_tables",
    "check_encode_decode",
    "check_encode_with_unk",
]

# Text the checks feed to the learner's functions: every kind of character Tiny Shakespeare
# holds (capitals, punctuation, the newline, the space).
_SAMPLE = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak!"


def _reference_vocab(text: str) -> list[str]:
    return sorted(set(text))


def _call_with_tables(fn: Callable[..., Any], *args: Any, shown: str) -> Any:
    """Call ``encode``/``decode``; a still-``None`` ``stoi``/``itos`` (exercise 2) is named."""
    try:
        return fn(*args)
    except TypeError as exc:
        if "NoneType" in str(exc):
            raise EarlierNotDone("stoi / itos", 2) from exc
        raise CheckFailed(f"your code raised TypeError: {exc} on {shown}") from exc
    except (NotImplementedError, AssertionError):
        raise
    except Exception as exc:  # noqa: BLE001
        raise CheckFailed(f"your code raised {type(exc).__name__}: {exc} on {shown}") from exc


def check_vocabulary(chars: Any, vocab_size: Any, text: str) -> bool:
    """Exercise 1: ``chars`` is the sorted list of distinct characters of ``text``.

    ``vocab_size`` must be its length.
    """

    def body() -> None:
        require(chars, "chars")
        require(vocab_size, "vocab_size")
        expected = _reference_vocab(text)
        if isinstance(chars, str):
            chars_list = list(chars)
        elif isinstance(chars, (set, frozenset)):
            raise CheckFailed(
                "`chars` is a set; turn it into a list with sorted(...) so that every "
                "character gets a fixed position (its id)"
            )
        else:
            chars_list = list(chars)
        if len(chars_list) != len(set(chars_list)):
            raise CheckFailed(
                f"`chars` holds duplicates ({len(chars_list)} items, "
                f"{len(set(chars_list))} distinct); build it from set(text)"
            )
        missing = sorted(set(expected) - set(chars_list))
        if missing:
            raise CheckFailed(
                f"`chars` misses {len(missing)} character(s) of the text, e.g. "
                f"{missing[0]!r}; build it from the whole text"
            )
        extra = sorted(set(chars_list) - set(expected))
        if extra:
            raise CheckFailed(f"`chars` holds {extra[0]!r}, which is not in the text")
        if chars_list != expected:
            raise CheckFailed(
                "`chars` holds the right characters in an arbitrary order; sort them "
                "(sorted(...)) so the ids are the same in every Python session"
            )
        if vocab_size != len(expected):
            raise CheckFailed(
                f"`vocab_size` is {vocab_size!r}, but `chars` holds {len(expected)} "
                "characters; use len(chars)"
            )

    return run_check("vocabulary", body)


def check_lookup_tables(stoi: Any, itos: Any, chars: Sequence[str]) -> bool:
    """Exercise 2: ``stoi`` maps each character to its index in ``chars``; ``itos`` inverts it."""

    def body() -> None:
        require(stoi, "stoi")
        require(itos, "itos")
        if not isinstance(stoi, Mapping) or not isinstance(itos, Mapping):
            raise CheckFailed("`stoi` and `itos` should both be dicts")
        expected = {ch: i for i, ch in enumerate(chars)}
        if stoi and all(isinstance(k, int) for k in stoi):
            raise CheckFailed(
                "`stoi` has integer keys: it looks like `itos`. stoi maps string -> int, "
                "itos maps int -> string"
            )
        if set(stoi) != set(expected):
            raise CheckFailed(
                f"`stoi` should have one key per character of `chars` ({len(expected)}), "
                f"it has {len(stoi)}"
            )
        if all(stoi[ch] == i + 1 for ch, i in expected.items()):
            raise CheckFailed(
                "the ids start at 1; enumerate(chars) starts at 0, and id 0 must be used "
                "or the embedding table gets a row that no token ever selects"
            )
        for ch, i in expected.items():
            if stoi[ch] != i:
                raise CheckFailed(
                    f"stoi[{ch!r}] is {stoi[ch]!r}, expected {i} (its position in `chars`)"
                )
        if len(itos) != len(expected):
            raise CheckFailed(f"`itos` has {len(itos)} entries, expected {len(expected)}")
        for ch, i in expected.items():
            if itos.get(i) != ch:
                raise CheckFailed(
                    f"itos[{i}] is {itos.get(i)!r}, expected {ch!r}: itos must undo stoi"
                )

    return run_check("lookup tables", body)


def check_encode_decode(
    encode: Callable[[str], Any], decode: Callable[[Sequence[int]], Any], text: str
) -> bool:
    """Exercise 3: ``encode`` maps a string to the list of ids; ``decode`` maps ids back."""

    def body() -> None:
        chars = _reference_vocab(text)
        stoi = {ch: i for i, ch in enumerate(chars)}
        sample = "".join(ch for ch in _SAMPLE if ch in stoi) or chars[0]
        expected = [stoi[ch] for ch in sample]
        shown = f"encode({sample[:20]!r}...)"
        got = _call_with_tables(encode, sample, shown=shown)
        if isinstance(got, str):
            raise CheckFailed("encode returned a string; it should return a list of ints")
        got_list = as_int_list(got, "encode")
        if len(got_list) != len(sample):
            raise CheckFailed(
                f"encode({sample[:20]!r}...) gave {len(got_list)} ids for {len(sample)} "
                "characters; a character tokenizer gives exactly one id per character"
            )
        if got_list != expected:
            first = next(k for k, (a, b) in enumerate(zip(got_list, expected)) if a != b)
            raise CheckFailed(
                f"character {first} ({sample[first]!r}) was encoded as {got_list[first]}, "
                f"expected {expected[first]}; look each character up in stoi"
            )
        if encode("") not in ([], ()) and len(list(encode(""))) != 0:
            raise CheckFailed("encode('') should give an empty list")
        back = _call_with_tables(decode, expected, shown=f"decode({expected[:5]}...)")
        if not isinstance(back, str):
            raise CheckFailed(
                f"decode returned a {type(back).__name__}; join the characters into one "
                "string with ''.join(...)"
            )
        if back != sample:
            raise CheckFailed(
                f"decode(encode(s)) != s: got {back[:30]!r}..., expected {sample[:30]!r}..."
            )
        if decode([]) != "":
            raise CheckFailed("decode([]) should give the empty string ''")

    return run_check("encode/decode", body)


def check_encode_with_unk(
    encode_with_unk: Callable[[str, Mapping[str, int], int], Any], stoi: Mapping[str, int]
) -> bool:
    """Exercise 4: characters missing from ``stoi`` map to ``unk_id``, one id per character."""

    def body() -> None:
        unk_id = len(stoi)
        known = [ch for ch in "Romeo" if ch in stoi]
        sample = "".join(known) + "é" + "".join(known[:2]) + "👋"
        expected = [stoi[ch] if ch in stoi else unk_id for ch in sample]
        got = call(encode_with_unk, sample, stoi, unk_id,
                   shown=f"encode_with_unk({sample!r}, stoi, unk_id={unk_id})")
        if got is None:
            raise CheckFailed("encode_with_unk returned None; did you forget `return`?")
        got_list = list(got)
        if len(got_list) == len(sample) - 2:
            raise CheckFailed(
                "unknown characters were dropped; give each one `unk_id` instead so the "
                "sequence keeps one id per character"
            )
        if len(got_list) != len(sample):
            raise CheckFailed(
                f"got {len(got_list)} ids for {len(sample)} characters; expected one each"
            )
        if got_list != expected:
            first = next(k for k, (a, b) in enumerate(zip(got_list, expected)) if a != b)
            raise CheckFailed(
                f"character {first} ({sample[first]!r}) gave id {got_list[first]}, "
                f"expected {expected[first]}"
            )
        # The reserved id must be the one passed in, not a hard-coded number.
        other = encode_with_unk("é", stoi, unk_id + 7)
        if list(other) != [unk_id + 7]:
            raise CheckFailed("use the `unk_id` argument, not a fixed number")

    return run_check("encode with <unk>", body)
