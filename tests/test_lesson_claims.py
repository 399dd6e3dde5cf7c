"""Lessons state no figure that the code or the build does not back (issue 21, items 2-4).

- **GPU figures** come from one table: a lesson's prose never types a GPU (T4, Colab, A100 ...)
  time or expected loss, and a cell whose printed strings talk about a T4 takes its figure from
  ``llmcourse.gpu_figures``. A published figure may be cited: the sentence says who reports it.
- **CPU time** comes from the build: each lesson has exactly one sentence "the whole notebook
  takes about N s of CPU time", and N agrees with the CPU time ``python -m tools.nb build
  --execute`` recorded in the solved notebook (within ``CPU_MARGIN``); no other sentence types a
  CPU time (cells print measured times instead).
- **Threads**: every lesson's set-up applies the one policy (``llmcourse.threads.limit_threads``)
  and no lesson sets torch's thread count itself, except where a lesson measures threads.
"""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import pytest

from llmcourse.learner import myst
from tools import lesson_times

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "solutions").glob("day*.md"))

CPU_MARGIN = (0.35, 10.0)   # a typed CPU time may be off by 35% or 10 s, whichever is larger
THREAD_EXPERIMENTS = {"day06": "the training script's --threads option", "day14": "section 4 measures two threads"}

GPU_WORDS = re.compile(r"\b(T4|GPUs?|Colab|A100|H100|H200|V100|CUDA|REAL_RUN)\b")
CITATION = re.compile(r"\b(reports?|reported|publishe[sd]|README|paper|according to)\b", re.I)
NUMBER = r"\d[\d,]*(?:\.\d+)?"
TIME = re.compile(rf"\b{NUMBER}(?:\s*(?:-|to|and|or)\s*{NUMBER})?\s*"
                  r"(?:ms|s|secs?|seconds?|min|mins|minutes?|h|hours?)\b(?!\w)")
LOSS = re.compile(r"\bloss\w*\b[^.;:]{0,60}?\b\d\.\d+|\b\d\.\d+\b[^.;:]{0,30}?\bloss", re.I)
CPU_WORDS = re.compile(r"\b(CPU|cores?|laptop|thread)\b", re.I)
CPU_SENTENCE = re.compile(rf"whole notebook takes about ({NUMBER}) (s|min) of CPU time")


def parse(path: Path) -> tuple[list[list[tuple[int, str]]], list[tuple[int, str]]]:
    """``(prose, code)`` of a MyST lesson, read by ``llmcourse/learner/myst.py``: its paragraphs (markdown and
    directive text, headings included; each a list of ``(line, text)``) and its code cells
    ``(line of the fence, source)``. Plain fenced examples are neither."""
    blocks = myst.read(path)
    return myst.prose(blocks), [(b.line, "\n".join(b.lines)) for b in blocks if b.kind == "code"]


def sentences(prose):
    """``(line, sentence)`` of every paragraph in ``prose``."""
    for paragraph in prose:
        yield from myst.sentences(paragraph)


def _id(path: Path) -> str:
    return path.stem[:5]


@pytest.mark.parametrize("path", LESSONS, ids=_id)
def test_prose_types_no_gpu_time_or_loss(path):
    bad = []
    for line, s in sentences(parse(path)[0]):
        if not GPU_WORDS.search(s) or CITATION.search(s):
            continue
        found = TIME.search(s) or LOSS.search(s)
        if found:
            bad.append(f"{path.name}:{line}: types the GPU figure {found.group()!r} in {s[:120]!r}; "
                       f"print gpu_figures.line(...) in a cell instead")
    assert not bad, "\n".join(bad)


def _strings(source: str) -> list[str]:
    try:
        toks = tokenize.generate_tokens(io.StringIO(source).readline)
        return [t.string for t in toks if t.type == tokenize.STRING or t.type == getattr(tokenize, "FSTRING_MIDDLE", -1)]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return re.findall(r"\"[^\"\n]*\"|'[^'\n]*'", source)   # IPython magics: a rough split


@pytest.mark.parametrize("path", LESSONS, ids=_id)
def test_cells_print_t4_figures_from_the_table(path):
    bad = []
    for line, source in parse(path)[1]:
        typed = [s for s in _strings(source) if "T4" in s and (TIME.search(s) or LOSS.search(s) or "TFLOP" in s)]
        if typed and "gpu_figures" not in source:
            bad.append(f"{path.name}:{line}: a cell prints a T4 figure ({typed[0][:60]!r}) without llmcourse.gpu_figures")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("path", LESSONS, ids=_id)
def test_cpu_time_is_the_builds(path):
    prose = parse(path)[0]
    stated = [(line, m) for line, s in sentences(prose) for m in CPU_SENTENCE.finditer(s)]
    assert len(stated) == 1, (f"{path.name}: states its CPU time {len(stated)} times; say it once, in "
                              "'What to expect': 'the whole notebook takes about N s of CPU time'")
    line, m = stated[0]
    rec = lesson_times.record(path.with_suffix(".ipynb"))
    assert rec, f"{path.name}: the solved notebook has no build record; run python -m tools.nb build --execute --force {_id(path)}"
    typed = float(m.group(1).replace(",", "")) * (60 if m.group(2) == "min" else 1)
    margin = max(CPU_MARGIN[0] * rec["cpu_s"], CPU_MARGIN[1])
    assert abs(typed - rec["cpu_s"]) <= margin, (
        f"{path.name}:{line}: says about {m.group(1)} {m.group(2)} of CPU time; the build recorded "
        f"{rec['cpu_s']:.0f} s ({rec['machine']}); write about {rec['cpu_s']:.0f} s")
    others = [(ln, s) for ln, s in sentences(prose)
              if CPU_WORDS.search(s) and TIME.search(s) and not CPU_SENTENCE.search(s)
              and not GPU_WORDS.search(s) and not CITATION.search(s)]
    assert not others, "\n".join(
        f"{path.name}:{ln}: types a CPU time ({TIME.search(s).group()!r}) in {s[:120]!r}; print the measured "
        "time from the cell, or leave it to the whole-notebook sentence" for ln, s in others)


@pytest.mark.parametrize("path", LESSONS, ids=_id)
def test_threads_follow_the_one_policy(path):
    code = parse(path)[1]
    setup = next((src for _, src in code if "import" in src and "torch" in src), "")
    assert "limit_threads(" in setup, (f"{path.name}: the set-up cell does not apply the thread policy; "
                                       "call llmcourse.threads.limit_threads(device)")
    for line, src in code:
        if "set_num_threads(" in src and _id(path) not in THREAD_EXPERIMENTS:
            pytest.fail(f"{path.name}:{line}: sets torch's threads itself; llmcourse.threads.limit_threads does")


def test_the_parser_sees_prose_and_code(tmp_path):
    md = tmp_path / "day99_x.md"
    md.write_text("---\nfront: 1\n---\n\n# Title\n\nOn a T4 this takes 5 min.\n\n```{code-cell} ipython3\n"
                  "print('T4: 3 s')\n```\n\n```\nT4 5 s\n```\n\n```{note}\nThe loss on a GPU is 1.47.\n```\n",
                  encoding="utf-8")
    prose, code = parse(md)
    assert [myst.joined(p) for p in prose] == ["# Title", "On a T4 this takes 5 min.", "The loss on a GPU is 1.47."]
    assert code == [(9, "print('T4: 3 s')")]
    found = [bool(TIME.search(s) or LOSS.search(s)) for _, s in sentences(prose)]
    assert found == [False, True, True]
    assert CPU_SENTENCE.search("the whole notebook takes about 41 s of CPU time").group(1) == "41"
