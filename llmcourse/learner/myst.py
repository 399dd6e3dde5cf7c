"""Read a lesson's MyST Markdown source into blocks, paragraphs and sentences.

Every lesson is one file, ``solutions/dayNN_slug.md``, in jupytext's ``md:myst`` format. This is
the one reader of that format: ``tools/nb/`` finds the code cells with it, the lesson tests
(``tests/test_lesson_claims.py``, ``tests/test_lesson_xrefs.py``) read the prose with it, and
``llmcourse diff`` / ``check`` read a learner's ``.md`` notebook with it
(:mod:`llmcourse.learner.notebooks`, with ``strict=False``). A file
is read as a list of :class:`Block`:

- ``front``: the YAML front matter between two ``---`` lines at the very top;
- ``markdown``: text between fenced blocks; a ``+++`` line (jupytext's cell break) ends one;
- ``code``: a fence whose first line ends in ``{code-cell} ipython3``, a notebook code cell;
- ``directive``: a fence ending in another ``{name}`` (``{note}``; also as ``:::{note}``), whose
  body is prose;
- ``fence``: a plain fence (three backticks, perhaps a language), an example, neither prose nor
  code.

A fence opens at the start of a line with three or more backticks, tildes or colons, and is
closed by a line of at least as many of the same character and nothing else, so a longer fence
can hold a shorter one. A fenced block's options come first: ``:key: value`` lines (and one
blank line after them), or ``key: value`` lines between ``---`` lines; a value is a word, a
number, ``true``/``false`` or a ``[list, of, words]`` (the lessons use ``:tags:`` only), so
the reader needs no YAML library. What this reader does not do: a fence indented inside a list
item is read as text; nested YAML options are refused.

Example:
    >>> lines = ["# Day 99 - Demo", "Some prose. It has", "two sentences.", "",
    ...          "```{code-cell} ipython3", ":tags: [hide-output]", "", "print(1)", "```"]
    >>> for block in read_blocks(lines):
    ...     print(block.kind, block.line, block.options, block.lines)
    markdown 1 {} ['# Day 99 - Demo', 'Some prose. It has', 'two sentences.', '']
    code 5 {'tags': ['hide-output']} ['print(1)']
    >>> for paragraph in paragraphs(read_blocks(lines)[0]):
    ...     print(paragraph, sentences(paragraph))
    [(1, '# Day 99 - Demo')] [(1, '# Day 99 - Demo')]
    [(2, 'Some prose. It has'), (3, 'two sentences.')] [(2, 'Some prose.'), (2, 'It has two sentences.')]
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Iterable, Sequence

FENCE_RE = re.compile(r"^(?P<fence>`{3,}|~{3,}|:{3,})(?P<info>.*)$")
DIRECTIVE_RE = re.compile(r"^\{(?P<name>[\w-]+)\}")           # "{code-cell} ipython3" -> code-cell
OPTION_RE = re.compile(r"^:[\w-]+:")                            # ":tags: [solution]"
# a line that starts a paragraph of its own: a heading, a list item, a table row
NEW_PARAGRAPH_RE = re.compile(r"#|[-*] |\||\d+\. ")
CELL_BREAK_RE = re.compile(r"^\+\+\+\s*(\{.*\})?\s*$")           # '+++' or '+++ {"tags": []}'
# a sentence ends at . ! or ? before a space and a capital, a quote, a backtick, ( or *
SENTENCE_RE = re.compile(r"\S.*?(?:[.!?](?=\s+[A-Z`(*\"])|$)")


class MystError(ValueError):
    """A MyST file that cannot be read (a fence never closed, options that are not YAML); the
    message starts with ``path:line:``."""


@dataclasses.dataclass
class Block:
    """A part of a MyST file. ``start``, ``end`` and ``body_start`` index the file's lines
    (0-based, ``end`` inclusive: for a fenced block, its closing fence)."""

    kind: str              # "front", "markdown", "code", "directive" or "fence"
    start: int             # the first line (a fenced block's opening fence)
    end: int               # the last line
    body_start: int        # the first line of ``lines`` (after a fence and its options)
    lines: list[str]       # the content: markdown text, or a fenced block's body
    name: str = ""         # "code-cell", "note", or a plain fence's language ("text", "")
    options: dict = dataclasses.field(default_factory=dict)

    @property
    def line(self) -> int:
        """The 1-based line number of the block's first line, as an editor shows it."""
        return self.start + 1

    def numbered(self) -> list[tuple[int, str]]:
        """The content lines with their 1-based line numbers."""
        return list(enumerate(self.lines, self.body_start + 1))


def read(path: Path, strict: bool = True) -> list[Block]:
    """The blocks of the MyST file at ``path`` (UTF-8); see :func:`read_blocks`."""
    return read_blocks(Path(path).read_text(encoding="utf-8").splitlines(), str(path), strict)


def read_blocks(lines: Sequence[str], path: str = "<source>", strict: bool = True) -> list[Block]:
    """Cut a MyST file's lines into blocks (see the module docstring); ``path`` names the file
    in errors. With ``strict=False`` (a learner's file, read as well as it can be) a fence that
    is never closed runs to the end of the file and options that cannot be read are left out,
    instead of raising :class:`MystError`."""
    blocks: list[Block] = []
    i = 0
    if lines and lines[0].strip() == "---":
        end = next((j for j in range(1, len(lines)) if lines[j].strip() == "---"), None)
        if end is None and not strict:
            end = 0            # no front matter: read the first line as text
        elif end is None:
            raise MystError(f"{path}:1: the front matter opened with '---' is never closed; "
                            "end it with a line '---'")
        if end:
            blocks.append(Block("front", 0, end, 1, list(lines[1:end])))
            i = end + 1
    text_start = i            # where the current markdown block began
    while i < len(lines):
        opening = FENCE_RE.match(lines[i])
        if opening and opening["fence"][0] == "`" and "`" in opening["info"]:
            opening = None    # "```x``` is ..." is inline code, not a fence
        if not opening and not CELL_BREAK_RE.match(lines[i]):
            i += 1
            continue
        blocks += _markdown(lines, text_start, i)
        if opening:
            blocks.append(_fenced(lines, i, opening, path, strict))
            i = blocks[-1].end
        text_start = i = i + 1
    return blocks + _markdown(lines, text_start, len(lines))


def _markdown(lines: Sequence[str], start: int, stop: int) -> list[Block]:
    """The markdown block of ``lines[start:stop]``, if any."""
    return [Block("markdown", start, stop - 1, start, list(lines[start:stop]))] if stop > start else []


def _fenced(lines: Sequence[str], i: int, opening: re.Match, path: str, strict: bool = True) -> Block:
    """The fenced block that opens at line ``i``."""
    fence, info = opening.group("fence"), opening.group("info")
    closing = re.compile(re.escape(fence[0]) + "{%d,}[ \t]*$" % len(fence))
    end = next((j for j in range(i + 1, len(lines)) if closing.match(lines[j])), None)
    directive = DIRECTIVE_RE.match(info)
    kind = "fence" if not directive else "code" if directive["name"] == "code-cell" else "directive"
    if end is None and not strict:
        end = len(lines)       # a learner's unclosed fence: it runs to the end of the file
    elif end is None:
        what = "this code cell's fence" if kind == "code" else "this fence"
        raise MystError(f"{path}:{i + 1}: {what} {fence!r} is never closed; end it with a line {fence!r}")
    if kind == "fence":
        return Block(kind, i, end, i + 1, list(lines[i + 1 : end]), info.strip().split(" ")[0])
    try:
        options, body_start = _options(lines, i + 1, end, path)
    except MystError:
        if strict:
            raise
        options, body_start = {}, i + 1
        while body_start < end and OPTION_RE.match(lines[body_start]):
            body_start += 1
    return Block(kind, i, end, body_start, list(lines[body_start:end]), directive["name"], options)


def option_value(text: str) -> object:
    """A cell option's value: ``[a, b]`` -> a list, ``true``/``false``, a number, else the word.

        >>> option_value("[hide-output, 'nbval-skip']"), option_value("3"), option_value("dropdown")
        (['hide-output', 'nbval-skip'], 3, 'dropdown')
    """
    text = text.strip()
    if text.startswith("["):
        if not text.endswith("]"):
            raise ValueError("a list that is never closed")
        return [item.strip().strip("'\"") for item in text[1:-1].split(",") if item.strip()]
    if text in ("true", "false"):
        return text == "true"
    for number in (int, float):
        try:
            return number(text)
        except ValueError:
            pass
    if text.startswith(("{", "- ")):
        raise ValueError("nested options; write one `key: value` a line")
    return text.strip("'\"") or None


def _options(lines: Sequence[str], i: int, end: int, path: str) -> tuple[dict, int]:
    """A fenced block's options from line ``i`` (``:key: value`` lines or a ``---`` block of
    ``key: value`` lines) and the index of its first body line."""
    options: dict = {}
    if i < end and lines[i].strip() == "---":
        j = next((j for j in range(i + 1, end) if lines[j].strip() == "---"), None)
        if j is None:
            raise MystError(f"{path}:{i + 1}: the cell options block opened with '---' is not closed")
        for k in range(i + 1, j):
            key, colon, value = lines[k].partition(":")
            if not lines[k].strip():
                continue
            try:
                if not colon or key != key.strip() or not key:
                    raise ValueError("not a `key: value` line")
                options[key] = option_value(value)
            except ValueError as exc:
                raise MystError(f"{path}:{k + 1}: cell option line {lines[k]!r} cannot be read ({exc})") from None
        return options, j + 1
    j = i
    while j < end and OPTION_RE.match(lines[j]):
        key, _, value = lines[j][1:].partition(":")
        try:
            options[key] = option_value(value)
        except ValueError as exc:
            raise MystError(f"{path}:{j + 1}: cell option {key!r} cannot be read ({exc})") from None
        j += 1
    if j > i and j < end and lines[j].strip() == "":
        j += 1  # the blank line separating the options from the body
    return options, j


def paragraphs(block: Block, headings: bool = True) -> list[list[tuple[int, str]]]:
    """The paragraphs of a markdown or directive block, each a list of ``(line, stripped text)``.

    A blank line ends a paragraph; a list item (``- ``, ``* ``, ``1. ``) or a table row (``|``)
    starts one; a heading (``#``) is one, left out if not ``headings``. Other blocks have no
    paragraphs.

        >>> paragraphs(Block("markdown", 9, 12, 9, ["## Plan", "Two steps:", "- one", "- two"]))
        [[(10, '## Plan')], [(11, 'Two steps:')], [(12, '- one')], [(13, '- two')]]
    """
    if block.kind not in ("markdown", "directive"):
        return []
    found: list[list[tuple[int, str]]] = [[]]
    for no, line in block.numbered():
        if not line.strip() or NEW_PARAGRAPH_RE.match(line):
            found.append([])
        if line.strip() and (headings or not line.startswith("#")):
            found[-1].append((no, line.strip()))
        if line.startswith("#"):           # a heading is a paragraph of its own
            found.append([])
    return [p for p in found if p]


def prose(blocks: Iterable[Block], headings: bool = True) -> list[list[tuple[int, str]]]:
    """Every paragraph a reader reads as text: markdown and directive bodies (see
    :func:`paragraphs`)."""
    return [p for block in blocks for p in paragraphs(block, headings)]


def joined(paragraph: Sequence[tuple[int, str]]) -> str:
    """A paragraph's text on one line: ``[(3, 'a'), (4, 'b')]`` -> ``'a b'``."""
    return " ".join(text for _, text in paragraph)


def sentences(paragraph: Sequence[tuple[int, str]]) -> list[tuple[int, str]]:
    """A paragraph's sentences, each with the line it starts on.

        >>> sentences([(7, "It ran. The loss fell"), (8, "to 1.5. See `train`.")])
        [(7, 'It ran.'), (7, 'The loss fell to 1.5.'), (8, 'See `train`.')]
    """
    text = joined(paragraph)
    starts, pos = [], 0           # where each line's text begins in ``text``
    for no, chunk in paragraph:
        starts.append((pos, no))
        pos += len(chunk) + 1
    return [(max(no for start, no in starts if start <= m.start()), m.group().strip())
            for m in SENTENCE_RE.finditer(text)]
