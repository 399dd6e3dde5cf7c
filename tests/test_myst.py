"""The one MyST reader (llmcourse/learner/myst.py) that tools/nb/ and the lesson tests share."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

from llmcourse.learner import myst
from tools import nb

ROOT = Path(__file__).resolve().parents[1]
LESSON = """\
---
jupytext:
  format_name: myst
---

# Day 99 - Demo

Some prose.

```{code-cell} ipython3
:tags: [hide-output, nbval-skip]

print(1)  # one
```

+++ {"tags": ["x"]}

A plain example:

```text
```{code-cell} ipython3
not a cell: inside a plain fence
```

~~~{code-cell} ipython3
---
tags: [solution]
---
x = 2
~~~

:::{note}
:class: dropdown
A note is prose.
:::
"""


def kinds(blocks):
    return [(b.kind, b.line, b.name) for b in blocks]


def test_doctests():
    result = doctest.testmod(myst)
    assert result.failed == 0 and result.attempted >= 4


def test_a_lesson_reads_as_front_matter_markdown_and_fenced_blocks():
    blocks = myst.read_blocks(LESSON.splitlines())
    assert kinds(blocks) == [("front", 1, ""), ("markdown", 5, ""), ("code", 10, "code-cell"),
                             ("markdown", 15, ""), ("markdown", 17, ""), ("fence", 20, "text"),
                             ("markdown", 24, ""), ("code", 25, "code-cell"), ("markdown", 31, ""),
                             ("directive", 32, "note")]
    front, code, plain, solution, note = (blocks[i] for i in (0, 2, 5, 7, 9))
    assert front.lines == ["jupytext:", "  format_name: myst"]
    assert code.options == {"tags": ["hide-output", "nbval-skip"]}
    assert code.numbered() == [(13, "print(1)  # one")]          # options and blank line left out
    assert plain.lines == ["```{code-cell} ipython3", "not a cell: inside a plain fence"]
    assert solution.options == {"tags": ["solution"]} and solution.lines == ["x = 2"]
    assert note.options == {"class": "dropdown"} and note.lines == ["A note is prose."]


def test_prose_is_markdown_and_directives_without_fences_or_cell_breaks():
    prose = myst.prose(myst.read_blocks(LESSON.splitlines()))
    assert [myst.joined(p) for p in prose] == ["# Day 99 - Demo", "Some prose.", "A plain example:",
                                               "A note is prose."]
    no_headings = myst.prose(myst.read_blocks(LESSON.splitlines()), headings=False)
    assert [p[0][0] for p in no_headings] == [8, 18, 34]


def test_a_longer_fence_holds_a_shorter_one():
    lines = ["````markdown", "```{code-cell} ipython3", "x = 1", "```", "````", "After."]
    blocks = myst.read_blocks(lines)
    assert kinds(blocks) == [("fence", 1, "markdown"), ("markdown", 6, "")]
    assert blocks[0].lines == lines[1:4]


def test_inline_code_at_the_start_of_a_line_is_not_a_fence():
    blocks = myst.read_blocks(["```x``` is inline code.", "", "Text."])
    assert kinds(blocks) == [("markdown", 1, "")]


def test_no_front_matter_and_an_empty_file():
    assert myst.read_blocks([]) == []
    assert kinds(myst.read_blocks(["Text", "---", "more"])) == [("markdown", 1, "")]


@pytest.mark.parametrize("lines, message", [
    (["---", "jupytext: {}"], "<source>:1: the front matter opened with '---' is never closed; "
                              "end it with a line '---'"),
    (["a", "", "```{code-cell} ipython3", "x = 1"],
     "<source>:3: this code cell's fence '```' is never closed; end it with a line '```'"),
    (["````text", "```", "x"], "<source>:1: this fence '````' is never closed; end it with a line '````'"),
    (["```{code-cell} ipython3", "---", "tags: [a]", "```"],
     "<source>:2: the cell options block opened with '---' is not closed"),
    (["```{code-cell} ipython3", ":tags: [a", "```"],
     "<source>:2: cell option 'tags' cannot be read (a list that is never closed)"),
    (["```{code-cell} ipython3", "---", "tags:", "  - a", "---", "```"],
     "<source>:4: cell option line '  - a' cannot be read (not a `key: value` line)"),
])
def test_a_file_that_cannot_be_read_names_the_line(lines, message):
    with pytest.raises(myst.MystError) as info:
        myst.read_blocks(lines)
    assert str(info.value).startswith(message)


def test_paragraphs_split_at_blank_lines_items_tables_and_headings():
    block = myst.read_blocks(["## Plan", "Two steps,", "then a list:", "- one", "  more of one",
                              "1. two", "| a | b |", "|---|---|", "", "End."])[0]
    assert [myst.joined(p) for p in myst.paragraphs(block)] == [
        "## Plan", "Two steps, then a list:", "- one more of one", "1. two", "| a | b |", "|---|---|",
        "End."]
    assert myst.paragraphs(myst.Block("code", 0, 2, 1, ["# a comment"])) == []


def test_a_sentence_is_numbered_by_the_line_it_starts_on():
    paragraph = [(3, "The loss fell."), (4, "It rose again. Then"), (5, '"Stop" was said. (Here.)')]
    assert myst.sentences(paragraph) == [(3, "The loss fell."), (4, "It rose again."),
                                         (4, 'Then "Stop" was said.'), (5, "(Here.)")]
    assert myst.sentences([(1, "e.g. this one, and 1.5 s.")]) == [(1, "e.g. this one, and 1.5 s.")]


def test_every_lesson_reads_and_nb_finds_the_same_code_cells():
    for path in sorted((ROOT / "solutions").glob("day*.md")):
        lines = path.read_text(encoding="utf-8").split("\n")
        blocks = myst.read_blocks(lines, str(path))
        code = [b for b in blocks if b.kind == "code"]
        assert len(code) == sum(line.startswith("```{code-cell}") for line in lines), path.name
        assert [c.start for c in nb.find_code_cells(lines, path.name)] == [b.start for b in code]
        assert blocks[0].kind == "front" and myst.prose(blocks), path.name


def test_nb_skips_a_code_cell_inside_an_example_and_reports_in_its_own_error():
    lines = ["````md", "```{code-cell} ipython3", "x = 1", "```", "````", "",
             "```{code-cell} ipython3", ":tags: solution", "", "y = 2", "```"]
    cells = nb.find_code_cells(lines, "t.md")
    assert [(c.start, c.body_start, c.end, c.tags) for c in cells] == [(6, 9, 10, ["solution"])]
    with pytest.raises(nb.PipelineError, match=r"^t\.md:2: this code cell's fence '```' is never closed"):
        nb.find_code_cells(["x", "```{code-cell} ipython3", "y = 1"], "t.md")


@pytest.mark.parametrize("lines, cells", [
    (["---", "jupytext: {}"], []),                                            # front matter never closed
    (["# Day 1", "```{code-cell} ipython3", ":tags: [a", "x = 1"], [(["x = 1"], {})]),   # unreadable option
    (["## Part", "```{code-cell} ipython3", ":tags: [solution]", "", "x = 1"], [(["x = 1"], {"tags": ["solution"]})]),
])
def test_a_learners_file_is_read_as_well_as_it_can_be(lines, cells):
    """``strict=False`` (llmcourse diff and check): never raises; an unclosed fence runs to the end."""
    blocks = myst.read_blocks(lines, strict=False)
    assert [(b.lines, b.options) for b in blocks if b.kind == "code"] == cells


def test_option_values_need_no_yaml_library():
    assert myst.option_value(" [hide-output, 'nbval-skip', \"x\"] ") == ["hide-output", "nbval-skip", "x"]
    assert (myst.option_value("true"), myst.option_value("2.5"), myst.option_value("")) == (True, 2.5, None)
    with pytest.raises(ValueError, match="nested options"):
        myst.option_value("{a: 1}")
    assert "yaml" not in (Path(myst.__file__).read_text())   # the package does not depend on PyYAML
