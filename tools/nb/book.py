"""The book's generated files: ``_toc.yml`` (the lessons by week), the API pages, the footer.

``book/api/*.md`` has one page per public module of ``llmcourse``, found in the file system;
``_toc.yml`` lists the lessons under their week (six a week, :func:`lesson_week`) and the
reference pages; ``_config.yml`` gets its footer line naming the current release.
:func:`book_files` gives them all, as ``{relative path: text}``.

Example::

    >>> [lesson_week(day) for day in (1, 6, 7, 36)]
    [1, 1, 2, 6]
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from tools.nb.layout import ROOT, Layout, LESSON_RE, PipelineError, lesson_sources
from tools.nb.release import package_version, release_tag

WEEKS = {
    1: "Week 1: From text to batches",
    2: "Week 2: Attention and the GPT architecture",
    3: "Week 3: Training for real",
    4: "Week 4: Making the model write",
    5: "Week 5: Train, generate, experiment",
    6: "Week 6: Going further",
}
_FOOTER_RE = re.compile(r'^  extra_footer: .*$', re.M)


def config_text(root: Path = ROOT) -> str:
    """``_config.yml`` with its footer line naming the current version (the book's version)."""
    text = (root / "_config.yml").read_text(encoding="utf-8")
    footer = (f'  extra_footer: "llmcourse {package_version(root)}: the notebooks install the release '
              f'{release_tag(root)} of the package"')
    if not _FOOTER_RE.search(text):
        raise PipelineError("_config.yml has no `  extra_footer:` line under html: (the book's version)")
    return _FOOTER_RE.sub(lambda _: footer, text, count=1)


def _is_public_module(path: Path) -> bool:
    return not path.name.startswith("_") and (
        (path.is_dir() and (path / "__init__.py").exists()) or path.suffix == ".py"
    )


def public_modules(root: Path) -> list[str]:
    """Public modules and sub-packages directly under ``llmcourse``, from the file system, sorted."""
    package = root / "llmcourse"
    names = ["llmcourse"]
    for path in sorted(package.iterdir()) if package.is_dir() else []:
        if _is_public_module(path):
            names.append(f"llmcourse.{path.stem}")
    return names


def submodules(root: Path, module: str) -> list[str]:
    """Public modules inside a sub-package (recursively), sorted; the lessons' check modules
    ``llmcourse.checks.dayNN`` are left out of the API reference."""
    if module == "llmcourse":
        return []
    folder = root.joinpath(*module.split("."))
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.iterdir()):
        if not _is_public_module(path) or (module == "llmcourse.checks" and re.match(r"day\d+$", path.stem)):
            continue
        name = f"{module}.{path.stem}"
        found.append(name)
        if path.is_dir():
            found += submodules(root, name)
    return found


def _declared_all(root: Path, module: str) -> list[str]:
    """The names in a package's ``__all__`` list, read statically (nothing is imported)."""
    import ast

    init = root.joinpath(*module.split("."), "__init__.py")
    if not init.exists():
        return []
    try:
        tree = ast.parse(init.read_text(encoding="utf-8"))
    except SyntaxError:
        return []
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets) and node.value is not None:
            try:
                return sorted(str(n) for n in ast.literal_eval(node.value))
            except ValueError:
                return []
    return []


def _automodule(module: str, exclude: Sequence[str] = (), all_aware: bool = True) -> str:
    lines = ["```{eval-rst}", f".. automodule:: {module}", "   :members:", "   :show-inheritance:"]
    if not all_aware:
        lines.append("   :ignore-module-all:")
    if exclude:
        lines.append("   :exclude-members: " + ", ".join(exclude))
    return "\n".join(lines) + "\n```\n"


def api_pages(root: Path) -> dict[str, str]:
    """The API reference: ``book/api/index.md`` and one page per sub-package of ``llmcourse``.

    A sub-package's page documents the package's public names (its ``__all__``) under their
    public path, ``llmcourse.data.get_batch``, then each public module for what the package
    does not re-export (so that ``llmcourse.train.checkpoint`` and its helpers resolve too).
    Docstrings should refer to re-exported names by their public path.
    """
    modules = public_modules(root)
    pages = {}
    for module in modules:
        exported = _declared_all(root, module)
        parts = [f"# `{module}`\n\n", _automodule(module)]
        for sub in submodules(root, module):
            hidden = sorted(set(exported) | set(_declared_all(root, sub.rsplit(".", 1)[0])))
            parts.append(f"\n## `{sub}`\n\n" + _automodule(sub, hidden, all_aware=False))
        pages[f"book/api/{module}.md"] = "".join(parts)
    listing = "\n".join(f"- [`{m}`]({m}.md)" for m in modules)
    pages["book/api/index.md"] = (
        "# API reference\n\n"
        "The reference of the `llmcourse` package, generated from its docstrings. The lessons "
        "build each piece by hand first; this is the tested version they then use.\n\n"
        f"{listing}\n"
    )
    return pages


def lesson_week(day: int) -> int:
    """The week (1-6) that lesson ``day`` belongs to: six lessons a week."""
    return min(max((day - 1) // 6 + 1, 1), max(WEEKS))


def toc_text(layout: Layout) -> str:
    """``_toc.yml``: the front matter, the lessons by week, then the reference pages."""
    root = layout.root
    by_week: dict[int, list[str]] = {w: [] for w in WEEKS}
    for path in lesson_sources(layout):
        day = int(LESSON_RE.match(path.stem).group("day"))
        week = lesson_week(day)
        by_week[week].append(f"solutions/{path.stem}")
    lines = [
        "# Generated by `python -m tools.nb build` from the files in solutions/ and book/; do not edit.",
        "format: jb-book",
        "root: book/intro",
        "parts:",
        "  - caption: Getting started",
        "    chapters:",
        "      - file: book/how_to_take",
        "      - file: book/exercises",
    ]
    for week, title in WEEKS.items():
        lines += [f'  - caption: "Week {week}"', "    chapters:", f"      - file: book/week{week}"]
        if by_week[week]:
            lines.append("        sections:")
            lines += [f"          - file: {doc}" for doc in by_week[week]]
    lines += ["  - caption: Reference", "    chapters:", "      - file: book/glossary", "      - file: book/references"]
    if (root / "book" / "faults.md").is_file():  # the faults and bad inputs tried, with their errors
        lines.append("      - file: book/faults")
    performance = sorted(p.stem for p in (root / "book").glob("performance_*.md"))
    lines.append("      - file: book/performance")
    if performance:
        lines.append("        sections:")
        lines += [f"          - file: book/{stem}" for stem in performance]
    modules = public_modules(root)
    lines += ["      - file: book/api/index", "        sections:"]
    lines += [f"          - file: book/api/{m}" for m in modules]
    return "\n".join(lines) + "\n"


def book_files(layout: Layout) -> dict[str, str]:
    """Every generated file of the book but the notebooks: ``{path relative to the root: text}``."""
    files = {"_toc.yml": toc_text(layout), "_config.yml": config_text(layout.root)}
    files.update(api_pages(layout.root))
    return files
