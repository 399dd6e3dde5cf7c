"""Where the pipeline's files are: the repository root, the lesson sources, the generated folders.

Every other module of ``tools/nb/`` starts from a :class:`Layout` (``Layout.from_root(ROOT)`` for
this repository, a temporary folder in the tests) and reports a lesson it cannot build with a
:class:`PipelineError` that names the file and line.

Example::

    >>> LESSON_RE.match("day03_tokenizers")["day"]
    '03'
    >>> rel_path(ROOT / "solutions" / "day03_tokenizers.md", ROOT)
    'solutions/day03_tokenizers.md'
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parents[2]  # tools/nb/layout.py -> the repository root
LESSON_RE = re.compile(r"^day(?P<day>\d{2})_(?P<slug>[a-z0-9][a-z0-9_]*)$")


class PipelineError(Exception):
    """A lesson source cannot be turned into notebooks; the message names file and line."""


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where sources and generated files live, and the repository they are published from."""

    root: Path
    solutions: Path
    lessons: Path
    repo_url: str
    branch: str = "main"

    @classmethod
    def from_root(cls, root: Path = ROOT) -> "Layout":
        url, branch = read_repository(root / "_config.yml")
        return cls(root=root, solutions=root / "solutions", lessons=root / "lessons", repo_url=url, branch=branch)

    def github_path(self) -> str:
        """``owner/name`` of the GitHub repository, e.g. ``llmcourse/llmcourse``."""
        return self.repo_url.split("github.com/", 1)[1]

    def colab_url(self, kind: str, name: str) -> str:
        return f"https://colab.research.google.com/github/{self.github_path()}/blob/{self.branch}/{kind}/{name}.ipynb"


def read_repository(config_path: Path) -> tuple[str, str]:
    """Read ``repository.url`` and ``repository.branch`` from the book's ``_config.yml``."""
    import yaml

    try:
        config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise PipelineError(f"{config_path} is missing; it must set repository.url") from None
    repo = config.get("repository") or {}
    url = str(repo.get("url", "")).rstrip("/")
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url):
        raise PipelineError(
            f"{config_path}: repository.url must be a GitHub URL like "
            f"https://github.com/OWNER/REPO (it builds the Colab links), got {url!r}"
        )
    return url, str(repo.get("branch", "main"))


def rel_path(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` for messages (unchanged when it lies outside ``root``)."""
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def lesson_sources(layout: Layout) -> list[Path]:
    """The lesson sources ``solutions/dayNN_slug.md``, sorted by name."""
    if not layout.solutions.is_dir():
        return []
    return sorted(p for p in layout.solutions.glob("day*.md") if LESSON_RE.match(p.stem))


def select(layout: Layout, names: Sequence[str]) -> list[Path]:
    """Resolve lesson names (``day03``, ``day03_tokenizers``, or a path) to source files."""
    sources = lesson_sources(layout)
    if not names:
        return sources
    chosen = []
    for raw in names:
        key = Path(raw).stem
        matches = [p for p in sources if p.stem == key or p.stem.startswith(key + "_")]
        if not matches:
            known = ", ".join(p.stem for p in sources) or "none"
            raise PipelineError(f"no lesson source matches {raw!r} in {layout.solutions} (lessons: {known})")
        chosen += [m for m in matches if m not in chosen]
    return chosen
