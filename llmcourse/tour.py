"""A picture of the package, drawn from its own code (day 25).

Every module of ``llmcourse`` is parsed with :mod:`ast` (nothing is imported or run), its
``import`` and ``from ... import`` statements are collected - at any depth, since the package
imports some modules lazily inside functions - and the imports are folded into a graph between
the *parts* of the package: a sub-package (``model``, ``data``, ``train`` ...) or a top-level
module (``cli``, ``runs``, ``presets`` ...). An edge ``train -> model`` means that some module
of ``llmcourse.train`` imports something from ``llmcourse.model``. The picture is made when it
is asked for, so it cannot go stale: a new import shows up the next time it is drawn.

Example:
    >>> imports_of("import torch\\nfrom llmcourse.model.gpt import GPT\\n"
    ...            "def f():\\n    import llmcourse.data as d\\n")
    ['llmcourse.data', 'llmcourse.model.gpt']
    >>> part_of("llmcourse.train.trainer"), part_of("llmcourse.cli"), part_of("llmcourse")
    ('train', 'cli', 'llmcourse')
    >>> graph = part_graph()
    >>> "model" in graph["train"], "train" in graph["model"]
    (True, False)
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "PACKAGE_DIR",
    "imports_of",
    "module_name",
    "module_imports",
    "part_of",
    "part_graph",
    "layers",
    "find_definition",
    "draw_graph",
]

#: The folder of the installed ``llmcourse`` package.
PACKAGE_DIR = Path(__file__).resolve().parent


def imports_of(source: str, package: str = "llmcourse") -> list[str]:
    """The modules of ``package`` that ``source`` imports, sorted, each once.

    ``import a.b`` gives ``a.b``; ``from a.b import c`` gives ``a.b`` (``c`` may be a module or
    a name, which the text alone cannot tell). Imports inside functions count too. Relative
    imports (``from . import x``) are not resolved and are left out; the package has none.

    >>> imports_of("import llmcoursework\\nfrom llmcourse import presets")
    ['llmcourse']
    """
    tree = ast.parse(source)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found.update(n for n in names if n == package or n.startswith(package + "."))
    return sorted(found)


def module_name(path: Path, package_dir: Path = PACKAGE_DIR) -> str:
    """``llmcourse/train/trainer.py`` -> ``llmcourse.train.trainer`` (``__init__`` dropped)."""
    rel = Path(path).resolve().relative_to(Path(package_dir).resolve().parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(package_dir: Path) -> Iterable[Path]:
    for path in sorted(Path(package_dir).rglob("*.py")):
        if "__pycache__" not in path.parts:
            yield path


def module_imports(package_dir: str | Path = PACKAGE_DIR) -> dict[str, list[str]]:
    """For every module of the package in ``package_dir``, the package modules it imports."""
    package_dir = Path(package_dir)
    if not (package_dir / "__init__.py").is_file():
        raise ValueError(f"{package_dir} is not a package (it has no __init__.py); "
                         "pass the folder of one, e.g. llmcourse.tour.PACKAGE_DIR")
    package = package_dir.name
    return {module_name(p, package_dir): imports_of(p.read_text(encoding="utf-8"), package)
            for p in _modules(package_dir)}


def part_of(module: str) -> str:
    """The part of the package a dotted module name belongs to: its second component.

    ``llmcourse`` itself (its ``__init__``) is the part ``llmcourse``.
    """
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else pieces[0]


def part_graph(package_dir: str | Path = PACKAGE_DIR, *,
               exclude: Iterable[str] | None = None) -> dict[str, set[str]]:
    """The dependency graph between the parts of the package: ``{part: {parts it imports}}``.

    Every part is a key (with an empty set if it imports no other part). Imports of a part by
    itself are left out, and so are the parts in ``exclude`` (by default the package's
    ``__init__``, which imports everything it re-exports, and ``__main__``).
    """
    exclude = {Path(package_dir).name, "__main__"} if exclude is None else set(exclude)
    graph: dict[str, set[str]] = {}
    for module, imported in module_imports(package_dir).items():
        src = part_of(module)
        if src in exclude:
            continue
        targets = graph.setdefault(src, set())
        for name in imported:
            dst = part_of(name)
            if dst != src and dst not in exclude:
                targets.add(dst)
    for targets in list(graph.values()):
        for dst in targets:
            graph.setdefault(dst, set())
    return graph


def layers(graph: dict[str, set[str]]) -> dict[str, int]:
    """A layer number per node: 0 for a part that imports no other, else one more than the
    highest layer among the parts it imports (an import cycle is cut where it is met).

    >>> layers({"train": {"model"}, "model": {"fields"}, "fields": set()})
    {'fields': 0, 'model': 1, 'train': 2}
    """
    level: dict[str, int] = {}
    on_path: set[str] = set()

    def visit(node: str) -> int:
        if node in level:
            return level[node]
        on_path.add(node)
        below = [visit(d) for d in sorted(graph.get(node, ())) if d not in on_path]
        on_path.discard(node)
        level[node] = 1 + max(below) if below else 0
        return level[node]

    for node in sorted(graph):
        visit(node)
    return dict(sorted(level.items(), key=lambda kv: (kv[1], kv[0])))


def find_definition(name: str, package_dir: str | Path = PACKAGE_DIR) -> str | None:
    """The module that defines a top-level class or function ``name``, or ``None``.

    Only definitions at a module's top level count: a re-export (``from .x import name``) and
    a helper nested inside a function do not.

    >>> find_definition("Trainer"), find_definition("no_such_thing")
    ('llmcourse.train.trainer', None)
    """
    package_dir = Path(package_dir)
    for path in _modules(package_dir):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if (isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                    and node.name == name):
                return module_name(path, package_dir)
    return None


def draw_graph(graph: dict[str, set[str]] | None = None, ax: Any = None,
               highlight: Iterable[str] = ("model", "data", "train", "generate")) -> Any:
    """Draw ``graph`` (default: :func:`part_graph`) with matplotlib, one row per layer.

    Parts that import nothing of the package are at the bottom; an arrow points from the
    importing part to the imported one. The parts in ``highlight`` are filled. Returns the axes.
    """
    import matplotlib.pyplot as plt

    graph = part_graph() if graph is None else graph
    level = layers(graph)
    rows: dict[int, list[str]] = {}
    for node, lv in level.items():
        rows.setdefault(lv, []).append(node)
    pos = {}
    for lv, nodes in rows.items():
        for i, node in enumerate(nodes):
            pos[node] = ((i + 1) / (len(nodes) + 1), lv)
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 1.3 * (len(rows) + 1)))
    highlight = set(highlight)
    for src, targets in graph.items():
        for dst in targets:
            ax.annotate("", xy=pos[dst], xytext=pos[src],
                        arrowprops=dict(arrowstyle="->", color="0.6", lw=0.8,
                                        shrinkA=12, shrinkB=12))
    for node, (x, y) in pos.items():
        filled = node in highlight
        ax.text(x, y, node, ha="center", va="center", fontsize=9,
                color="white" if filled else "black",
                bbox=dict(boxstyle="round", fc="tab:blue" if filled else "white", ec="tab:blue"))
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.6, max(rows) + 0.6)
    ax.set_yticks(sorted(rows))
    ax.set_ylabel("layer (0: imports no other part)")
    ax.set_xticks([])
    ax.set_title("llmcourse: which part imports which (arrow: importer -> imported)")
    return ax
