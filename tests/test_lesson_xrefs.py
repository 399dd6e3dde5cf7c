"""Cross-references between lessons are true (issue 21, item 5). In each lesson's prose
(markdown and directive text, and code-cell comments; read by ``llmcourse/learner/myst.py``), sentence by
sentence:
- "day N" is a lesson (1-36) and the words around it name a topic of lesson N (``lesson_topics``);
  "week N" / "next week" is a week (1-6) and names a topic of one of its six lessons;
- "day N (week M)" pairs agree; "tomorrow, day N" is today + 1, "yesterday, day N" today - 1;
- a later lesson is not told as done ("day 26 trained ..." in day 19);
- a file or folder an earlier lesson "left" (`out/x`, `ckpt.pt`) is in that lesson's code, and
  if only in its ``if REAL_RUN`` branch the paragraph says GPU/T4/REAL_RUN.
A failure is one line: lesson:line, the reference, what was expected | the sentence.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import pytest

from lesson_topics import STOPWORDS, TOPICS
from llmcourse.learner import myst
from tools.nb import lesson_week as week_of

SOLUTIONS = Path(__file__).resolve().parents[1] / "solutions"
LESSONS = {int(p.name[3:5]): p for p in sorted(SOLUTIONS.glob("day[0-9][0-9]_*.md"))}
NUMS = r"(\d{1,2}(?:\s*(?:-|–|'s,|,|'s or|or|and|to)\s*\d{1,2}\b)*)"
DAY_RE = re.compile(r"\b[Dd]ays?[\s-]" + NUMS)
WEEK_RE = re.compile(r"\b[Ww]eeks?[\s-]" + NUMS)
REL_WEEK_RE = re.compile(r"\b(this|next|last|previous) week\b", re.I)
PAIR_RES = [re.compile(r"\bdays? (?P<d>\d+)(?:'s)?,? \(?(?:of |in )?weeks? (?P<w>\d+)", re.I),
            re.compile(r"\bweeks? (?P<w>\d+)(?:'s)?,? \(?(?:on |in )?days? (?P<d>\d+)", re.I)]
NEIGHBOUR_RE = re.compile(r"\b(tomorrow|yesterday)(?:'s lesson)?,? \(?days? (\d+)", re.I)
FORWARD_RE = re.compile(r"\b(will|'ll|next|later|tomorrow|until|upcoming|soon|future)\b", re.I)
PAST = (r"built|trained|left|saved|wrote|written|made|showed|shown|measured|estimated|ran|did|"
        r"used|derived|introduced|met|chose|turned|added|found|computed|gave|reproduced|finished")
PAST_AFTER_RE = re.compile(r"^(?:'s)?\s+(?:\w+\s+){0,1}(?:" + PAST + r")\b", re.I)
PAST_BEFORE_RE = re.compile(r"(?<!\bis )(?<!\bare )\b(?:" + PAST + r") (?:by|on|in) $", re.I)
LEFT_RE = re.compile(r"\b(left|leaves|leave|saved|saves|wrote|writes|written|kept|stored)\b", re.I)
PATH_RE = re.compile(r"`((?:out|runs?)/[\w.\-/]+|[\w\-]+\.(?:pt|jsonl|json|bin|safetensors))`")
ANAPHORA_RE = re.compile(r"\b(?:that|this|these|those|the two) [a-z]+|^(?:It|They|This)\b")
GPU_RE = re.compile(r"\b(GPU|T4|REAL_RUN|CUDA|Colab)\b", re.I)


# context: the text, plus the sentence before ("that model ...") or after ("... days 5 and 6:")
Sentence = NamedTuple("Sentence", [("line", int), ("text", str), ("context", str), ("para", str)])


def parse(path: Path) -> tuple[list[Sentence], list[tuple[int, str, bool]]]:
    """A MyST lesson's prose sentences (code-cell comments included) and code lines ``(line, text,
    gpu_only)``, read by ``llmcourse/learner/myst.py``."""
    paragraphs, code = [], []
    for block in myst.read(path):
        if block.kind == "code":
            comments, lines = code_cell(block)
            paragraphs += comments
            code += lines
        else:                                  # markdown and directives; headings left out
            paragraphs += myst.paragraphs(block, headings=False)
    sentences: list[Sentence] = []
    for para in paragraphs:
        text = myst.joined(para)
        found = myst.sentences(para)
        if sentences and sentences[-1].text.endswith(":"):   # "...from days 05 and 06:" + a list
            sentences[-1] = sentences[-1]._replace(context=sentences[-1].context + " " + text)
        for i, (line, sent) in enumerate(found):
            before = found[i - 1][1] if i and ANAPHORA_RE.search(sent) else ""
            sentences.append(Sentence(line, sent, sent + " " + before, text))
    return sentences, code


def code_cell(block: myst.Block) -> tuple[list[list[tuple[int, str]]], list[tuple[int, str, bool]]]:
    """A code cell's comments as paragraphs (a block of comment lines is one) and its lines
    ``(line, text, gpu_only)``: ``gpu_only`` inside ``if REAL_RUN:`` (or the ``else`` of ``if not
    REAL_RUN:``)."""
    paragraphs, code, branch = [[]], [], None   # branch: (indent, body is GPU-only)
    for no, line in block.numbered():
        stripped, indent = line.strip(), len(line) - len(line.lstrip())
        if branch and stripped and indent <= branch[0]:
            is_else = indent == branch[0] and stripped.startswith("else")
            branch = (indent, not branch[1]) if is_else else None
        code.append((no, line, bool(branch and branch[1] and indent > branch[0])))
        cond = re.match(r"\s*if (not )?(REAL_RUN|torch\.cuda\.is_available\(\))\s*:", line)
        branch = (indent, not cond.group(1)) if cond else branch
        comment = re.search(r"(?:^|\s)# (.*)", line)
        continues = stripped.startswith("#") and code[-2:-1] and code[-2][1].lstrip()[:1] == "#"
        if not continues or not comment:         # a block of comment lines is one paragraph
            paragraphs.append([])
        if comment and "STUB" not in line and "SOLUTION" not in line:
            paragraphs[-1].append((no, comment.group(1)))
    return [p for p in paragraphs if p], code


def numbers(group: str) -> list[int]:
    """``"13-16"`` -> [13, 14, 15, 16]; ``"15, 16"`` and ``"21 and 22"`` -> [15, 16] / [21, 22]."""
    out: list[int] = []
    for part in re.split(r"\s*(?:,|and|or)\s*", group.replace("'s", "")):
        ends = [int(n) for n in re.split(r"\s*(?:-|–|to)\s*", part) if n]
        out += list(range(ends[0], ends[-1] + 1)) if len(ends) == 2 else ends
    return out


def keywords(day: int) -> list[str]:
    """Lesson ``day``'s topics: TOPICS, and the stems of its title's and headings' words."""
    heads = re.findall(r"^#{1,2} (?:Day \d+ - |\d+\. )(.*)$", LESSONS[day].read_text("utf-8"), re.M)
    words = {w.lower() for h in heads for w in re.findall(r"[A-Za-z][\w-]{3,}", h)}
    stems = {w: re.sub(r"(?<=\w{5})(ing|ed|s)$", "", w) for w in words}   # watching -> watch
    return sorted({t.lower() for t in TOPICS[day]} | {st for w, st in stems.items()
                                                     if not {w, st} & STOPWORDS})


def run_ref(day: int) -> str:
    """A phrase naming the run of a lesson that trains one: "day 19's run", "the model of day 19",
    "when day 21 or `llmcourse train` left it", "day 19's, 20's or 21's GPU path"."""
    n = rf"days? 0?{day}\b"
    more = r"(?:(?:,|,? or|,? and) (?:days? )?\d+(?:'s)?|,? or `[^`]+`)*"
    where = r"(?: (?:GPU|CPU|T4|real|own|small|first|\d[\w/-]*|`[^`]+`|\(`REAL_RUN`\)))*"
    return (rf"\b(?:models?|runs?|shape|left|loaded|saved)(?: \w+){{0,3}} (?:of|from|by|as) {n}"
            rf"|\b{n}(?:'s)?{more}{where} (?:runs?|models?|paths?|left|leaves|saved)\b")


PARSED = {day: parse(path) for day, path in LESSONS.items()}
TRAINS = re.compile(r"train_or_load\(|Trainer\(|\"train\"\]|\"train\": \{")   # code that trains
RUN_DAYS = {day for day, (_, code) in PARSED.items() if any(TRAINS.search(c) for _, c, _ in code)}
KEYWORDS = {day: keywords(day) for day in LESSONS}
TOPIC_RES = {day: re.compile("|".join([r"(?<![a-z0-9])" + re.escape(k) for k in kws] +
                                      [run_ref(day)] * (day in RUN_DAYS)), re.I)
             for day, kws in KEYWORDS.items()}   # a topic, or (if it trains one) its run


def mentions(text: str, days: list[int]) -> bool:
    return any(TOPIC_RES[d].search(text) for d in days)


def references(s: str) -> list[tuple[str, re.Match, list[int]]]:
    """A sentence's references, in order: ("day" / "week" / "relative", match, days named)."""
    refs = [("day", m, numbers(m.group(1))) for m in DAY_RE.finditer(s)]
    paired = [p.span() for pair_re in PAIR_RES for p in pair_re.finditer(s)]
    for m in WEEK_RE.finditer(s):            # "day 26 (week 5)" is checked as a pair
        if not any(a <= m.start() < b for a, b in paired):
            refs.append(("week", m, [d for w in numbers(m[1]) for d in week_days(w)]))
    refs += [("relative", m, []) for m in REL_WEEK_RE.finditer(s)]
    return sorted(refs, key=lambda r: r[1].start())


def week_days(week: int) -> list[int]:
    return [d for d in LESSONS if week_of(d) == week]


def problems(day: int) -> list[str]:
    found = []
    for line, s, context, para in PARSED[day][0]:
        where, refs = f"{LESSONS[day].stem}:{line}", references(s)
        for i, (kind, m, days) in enumerate(refs):
            ref = m.group(0)
            # a reference's own words: from the reference before it to the one after it
            own = s[refs[i - 1][1].end() if i else 0:refs[i + 1][1].start() if i + 1 < len(refs)
                    else len(s)] + context[len(s):]
            if kind == "relative":             # "next week" from day 30 is week 6
                days = week_days(week_of(day) + {"this": 0, "next": 1}.get(m[1].lower(), -1))
            if not days or any(d not in LESSONS for d in days):
                found.append(f"{where}: {ref!r}: no such lesson (days 1-36, weeks 1-6) | {s}")
                continue
            if kind != "day":
                if week_of(day) != week_of(days[0]) and not mentions(own, days):
                    found.append(f"{where}: {ref!r} but no topic of days {days[0]}-{days[-1]} "
                                 f"(e.g. {', '.join(TOPICS[d][0] for d in days)}) | {s}")
                continue
            others = [d for d in days if d != day]
            if re.match(r"(?:'s)? (?:lesson|notebook)\b", s[m.end():]):
                others = []                    # "the day-17 lesson": the file, not a claim
            if others and not mentions(own, others):
                found.append(f"{where}: {ref!r} but no topic of day {others[0]} (one of: "
                             f"{', '.join(KEYWORDS[others[0]][:12])}) | {s}")
            past = PAST_AFTER_RE.match(s[m.end():]) or PAST_BEFORE_RE.search(s[:m.start()])
            if max(days) > day and past and not FORWARD_RE.search(s):
                found.append(f"{where}: {ref!r} is a later lesson told as done (say 'will') | {s}")
        for m in (m for pair_re in PAIR_RES for m in pair_re.finditer(s)):
            d, w = int(m["d"]), int(m["w"])
            if d in LESSONS and week_of(d) != w:
                found.append(f"{where}: {m[0]!r}: day {d} is in week {week_of(d)} | {s}")
        for m in NEIGHBOUR_RE.finditer(s):
            want = day + (1 if m.group(1).lower() == "tomorrow" else -1)
            if int(m.group(2)) != want:
                found.append(f"{where}: {m.group(0)!r}: {m.group(1)} is day {want} | {s}")
        found += run_files(day, where, s, para)
    return found


def run_files(day: int, where: str, s: str, para: str) -> list[str]:
    """Files a sentence says an earlier lesson (day N, week N, "an earlier lesson") left must be
    in that lesson's code; if only in a GPU branch there, the paragraph must say GPU."""
    if not LEFT_RE.search(s):
        return []
    sources = sorted({d for kind, _, ds in references(s) if kind != "relative" for d in ds})
    sources = [d for d in sources if d < day]
    if not sources and re.search(r"\b(earlier|previous|a|another) lesson", s):
        sources = list(range(1, day))
    found = []
    for path in PATH_RE.findall(s):
        hits = [(d, gpu or gpu_side(text, path)) for d in sources
                for _, text, gpu in PARSED[d][1] if path in text]
        if sources and not hits:
            found.append(f"{where}: `{path}` said left by day(s) {sources}: not in their code"
                         f" | {s}")
        elif hits and all(gpu for _, gpu in hits) and not GPU_RE.search(para):
            found.append(f"{where}: `{path}` is written only if REAL_RUN in day(s) "
                         f"{sorted({d for d, _ in hits})}: say GPU | {s}")
    return found


def gpu_side(code: str, path: str) -> bool:
    """Whether ``path`` is on the GPU side of ``a if REAL_RUN else b`` in this code line."""
    m = re.search(r" if (not )?REAL_RUN else ", code)
    return bool(m) and (code.index(path) < m.start()) != bool(m.group(1))


@pytest.mark.parametrize("day", sorted(LESSONS), ids=lambda d: LESSONS[d].stem)
def test_cross_references_name_the_right_lesson(day):
    found = problems(day)
    assert not found, f"{len(found)} wrong cross-reference(s):\n" + "\n".join(found)


BAD = {  # sentence (as if in day 30) -> what its failure says
    "Day 07 built the KV cache.": "no topic of day 7", "As day 40 showed, it works.": "no such",
    "Self-attention (week 4) mixes positions.": "no topic of days 19-24",
    "The 6-layer run, the one of week 3, is loaded.": "no topic of days 13-18",
    "Day 26 (week 4) reproduced nanoGPT.": "day 26 is in week 5",
    "Day 33 trained the KV cache with RoPE.": "later lesson", "Tomorrow, day 32, ...": "is day 31",
    "Next week: BatchNorm, then attention.": "'Next week' but no topic of days 31-36",
    "We load it when day 17 left it in `out/shakespeare-char`.": "not in their code",
    "We load it when day 19 left it in `out/shakespeare-char`.": "only if REAL_RUN in day(s) [19]",
}
GOOD = ["Day 07's BatchNorm has two traps.", "The KV cache (day 19) saves time.",
        "Day 26 (week 5) reproduced nanoGPT on Tiny Shakespeare.", "Day 33 will add RoPE.",
        "On a GPU we load it when day 19 left it in `out/shakespeare-char`.",
        "Next week: RMSNorm and RoPE.", "The model of day 26 is loaded from `out/x`."]


def test_the_checks_catch_wrong_references():
    """The rules fail on known-wrong sentences, for the right reason, and pass right ones."""
    for sentence, why in BAD.items():
        assert any(why in p for p in check_sentence(30, sentence)), (sentence, why)
    for sentence in GOOD:
        assert not check_sentence(30, sentence)


def check_sentence(day: int, sentence: str) -> list[str]:   # as if day's prose were `sentence`
    saved, PARSED[day] = PARSED[day], ([Sentence(1, sentence, sentence, sentence)], [])
    found, PARSED[day] = problems(day), saved
    return found
