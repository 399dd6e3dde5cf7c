"""A picture of the package, drawn from its own code (day 25).

Every module of ``llmcourse`` is parsed with :mod:`ast` (nothing is imported or run) and its
``import`` and ``from ... import`` statements are collected - at any depth, since the package
imports some modules lazily inside functions. Relative imports (``from .config import
GPTConfig``) are resolved against the module they are written in, and ``from llmcourse import
presets`` counts as an import of the module ``llmcourse.presets``. The imports are then folded
into a graph between the *parts* of the package: a sub-package (``model``, ``data``, ``train``
...) or a top-level module (``cli``, ``runs``, ``presets`` ...). An edge ``train -> model``
means that some module of ``llmcourse.train`` imports something from ``llmcourse.model``.

Import cycles are reported, not hidden: :func:`cycles` lists them, :func:`layers` puts the parts
of one cycle on the same layer, and :func:`draw_graph` draws their arrows in red. An import
that only runs inside a function is drawn dashed. The picture is made when it is asked for, so
it cannot go stale: a new import shows up the next time it is drawn.

Example:
    >>> imports_of("import torch\\nfrom llmcourse.model.gpt import GPT\\n"
    ...            "def f():\\n    import llmcourse.data as d\\n")
    ['llmcourse.data', 'llmcourse.model.gpt']
    >>> imports_of("from .config import GPTConfig", module="llmcourse.model.gpt")
    ['llmcourse.model.config']
    >>> part_of("llmcourse.train.trainer"), part_of("llmcourse.cli"), part_of("llmcourse")
    ('train', 'cli', 'llmcourse')
    >>> cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}})
    [['a', 'b']]
    >>> graph = part_graph()
    >>> "model" in graph["runs"], "train" in graph["model"]
    (True, False)
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "PACKAGE_DIR",
    "imports_of",
    "module_name",
    "module_imports",
    "part_of",
    "part_graph",
    "cycles",
    "layers",
    "find_definition",
    "draw_graph",
]

#: The folder of the installed ``llmcourse`` package.
PACKAGE_DIR = Path(__file__).resolve().parent


def _is_type_checking(node: ast.AST) -> bool:
    """``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``): a block that never runs."""
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _import_nodes(tree: ast.AST, in_function: bool = False,
                  skip_type_checking: bool = False) -> Iterator[tuple[ast.AST, bool]]:
    """Every import statement under ``tree``, with whether it sits inside a function."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node, in_function
        elif skip_type_checking and _is_type_checking(node):
            yield from _import_nodes(ast.Module(body=node.orelse, type_ignores=[]), in_function,
                                     skip_type_checking)
        else:
            inner = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            yield from _import_nodes(node, inner, skip_type_checking)


def _base_of(node: ast.ImportFrom, module: str | None, is_package: bool) -> str | None:
    """The absolute module a ``from X import ...`` reads from (``None``: cannot tell)."""
    if node.level == 0:
        return node.module
    if module is None:
        return None
    pieces = module.split(".")
    drop = node.level - 1 if is_package else node.level   # a package's "." is itself
    if drop >= len(pieces):
        return None
    pieces = pieces[:len(pieces) - drop]
    return ".".join(pieces + ([node.module] if node.module else []))


def imports_of(source: str, package: str = "llmcourse", *, module: str | None = None,
               is_package: bool = False) -> list[str]:
    """The modules of ``package`` that ``source`` imports, sorted, each once.

    ``import a.b`` gives ``a.b``; ``from a.b import c`` gives ``a.b`` (``c`` may be a module or
    a name, which the text alone cannot tell: :func:`module_imports` tells them apart).
    Imports inside functions count too. A relative import (``from . import x``) is resolved
    when ``module`` names the module the source is (``is_package``: it is a package's
    ``__init__``); without it, it cannot be, and it is left out.

    >>> imports_of("import llmcoursework\\nfrom llmcourse import presets")
    ['llmcourse']
    >>> imports_of("from . import functional", module="llmcourse.model.layers")
    ['llmcourse.model']
    """
    found: set[str] = set()
    for node, _ in _import_nodes(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            names = [_base_of(node, module, is_package)]
        found.update(n for n in names if n and (n == package or n.startswith(package + ".")))
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


def module_imports(package_dir: str | Path = PACKAGE_DIR, *,
                   lazy: bool | None = None) -> dict[str, list[str]]:
    """For every module of the package in ``package_dir``, the package modules it imports.

    The rules, which follow what Python does when the import runs:

    - relative imports are resolved; ``from a import b`` is an import of the module ``a.b``
      when there is one, else of ``a`` (``b`` is a name defined there);
    - importing ``a.b.c`` runs ``a/__init__.py`` and ``a/b/__init__.py`` first, so a module
      outside the sub-package ``a.b`` that imports ``a.b.c`` imports ``a.b`` too (a module
      inside ``a.b`` does not: its package is already being imported);
    - imports under ``if TYPE_CHECKING:`` are left out: they never run;
    - ``lazy=None`` keeps every import, ``lazy=False`` only those that run when the module is
      imported, ``lazy=True`` only those inside functions (which run when the function does).

    A module never counts as importing itself.
    """
    package_dir = Path(package_dir)
    if not (package_dir / "__init__.py").is_file():
        raise ValueError(f"{package_dir} is not a package (it has no __init__.py); "
                         "pass the folder of one, e.g. llmcourse.tour.PACKAGE_DIR")
    package = package_dir.name
    paths = {module_name(p, package_dir): p for p in _modules(package_dir)}
    result: dict[str, list[str]] = {}
    for module, path in paths.items():
        is_package = path.name == "__init__.py"
        found: set[str] = set()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node, in_function in _import_nodes(tree, skip_type_checking=True):
            if lazy is not None and in_function != lazy:
                continue
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                base = _base_of(node, module, is_package)
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in paths else base
                         for a in node.names] if base else []
            for name in names:
                while name and name not in paths:        # import a.b.c.Thing -> a.b.c
                    name = name.rpartition(".")[0]
                if name and (name == package or name.startswith(package + ".")):
                    found.add(name)
                    found.update(_packages_run_by(name, module))
        found.discard(module)
        result[module] = sorted(found)
    return result


def _packages_run_by(name: str, importer: str) -> list[str]:
    """The package ``__init__`` modules an import of ``name`` from ``importer`` runs first."""
    pieces = name.split(".")
    parents = [".".join(pieces[:i]) for i in range(1, len(pieces))]
    return [p for p in parents if importer != p and not importer.startswith(p + ".")]


def part_of(module: str) -> str:
    """The part of the package a dotted module name belongs to: its second component.

    ``llmcourse`` itself (its ``__init__``) is the part ``llmcourse``.
    """
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else pieces[0]


def part_graph(package_dir: str | Path = PACKAGE_DIR, *, exclude: Iterable[str] | None = None,
               lazy: bool | None = None) -> dict[str, set[str]]:
    """The dependency graph between the parts of the package: ``{part: {parts it imports}}``.

    Made from :func:`module_imports` (``lazy`` as there). Every part is a key (with an empty
    set if it imports no other part). Imports of a part by itself are left out, and so are the
    parts in ``exclude`` (by default the package's ``__init__`` and ``__main__``).
    """
    exclude = {Path(package_dir).name, "__main__"} if exclude is None else set(exclude)
    graph: dict[str, set[str]] = {}
    for module, imported in module_imports(package_dir, lazy=lazy).items():
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


def cycles(graph: dict[str, Iterable[str]]) -> list[list[str]]:
    """The import cycles of ``graph``: its groups of nodes that can each reach the others.

    These are the strongly connected components with more than one node (Tarjan's
    algorithm), each sorted, sorted. An empty list means the graph has no cycle.

    >>> cycles({"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()})
    [['a', 'b', 'c']]
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:          # recursion depth: at most the number of modules
        index[node] = low[node] = len(index)
        stack.append(node)
        for dst in sorted(graph.get(node, ())):
            if dst not in index:
                visit(dst)
                low[node] = min(low[node], low[dst])
            elif dst in stack:
                low[node] = min(low[node], index[dst])
        if low[node] == index[node]:        # node is the root of a component: pop it
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def layers(graph: dict[str, set[str]]) -> dict[str, int]:
    """A layer number per node: 0 for a part that imports no other, else one more than the
    highest layer among the parts it imports. The parts of an import cycle (see :func:`cycles`)
    import each other, so none is above the others: they share one layer.

    >>> layers({"train": {"model"}, "model": {"fields"}, "fields": set()})
    {'fields': 0, 'model': 1, 'train': 2}
    >>> layers({"a": {"b"}, "b": {"a"}, "c": {"a"}})
    {'a': 0, 'b': 0, 'c': 1}
    """
    group: dict[str, str] = {}                 # a node of a cycle -> the cycle's first node
    for members in cycles(graph):
        for node in members:
            group[node] = members[0]

    def rep(node: str) -> str:
        return group.get(node, node)

    below: dict[str, set[str]] = {}            # the same graph, each cycle folded into one node
    for node, targets in graph.items():
        below.setdefault(rep(node), set()).update(rep(t) for t in targets if rep(t) != rep(node))
    level: dict[str, int] = {}

    def visit(node: str) -> int:               # ends: the folded graph has no cycle
        if node not in level:
            level[node] = 1 + max((visit(d) for d in below.get(node, ())), default=-1)
        return level[node]

    nodes = set(graph) | {t for targets in graph.values() for t in targets}
    result = {node: visit(rep(node)) for node in nodes}
    return dict(sorted(result.items(), key=lambda kv: (kv[1], kv[0])))


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
               highlight: Iterable[str] = ("model", "data", "train", "generate"),
               lazy_edges: Iterable[tuple[str, str]] | None = None,
               package_dir: str | Path = PACKAGE_DIR) -> Any:
    """Draw ``graph`` (default: :func:`part_graph`) with matplotlib, one row per layer.

    Parts that import nothing of the package are at the bottom; an arrow points from the
    importing part to the imported one. The parts in ``highlight`` are filled. The arrows of an
    import cycle are red. Dashed arrows are ``lazy_edges``: by default the edges of ``graph``
    that only imports inside functions make (read from the package in ``package_dir``).
    Returns the axes.
    """
    import matplotlib.pyplot as plt

    graph = part_graph(package_dir) if graph is None else graph
    if lazy_edges is None:
        eager = part_graph(package_dir, exclude=(), lazy=False)
        lazy_edges = [(a, b) for a in graph for b in graph[a] if b not in eager.get(a, ())]
    lazy_edges = set(lazy_edges or ())
    in_cycle = {node: i for i, members in enumerate(cycles(graph)) for node in members}
    level = layers(graph)
    rows: dict[int, list[str]] = {}
    for node, lv in level.items():
        rows.setdefault(lv, []).append(node)
    pos = {}
    for lv, nodes in rows.items():
        for i, node in enumerate(nodes):               # a crowded row is staggered
            dy = (0.18 if i % 2 else -0.18) if len(nodes) > 6 else 0.0
            pos[node] = ((i + 1) / (len(nodes) + 1), lv + dy)
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 1.3 * (len(rows) + 1)))
    highlight = set(highlight)
    for src, targets in graph.items():
        for dst in targets:
            red = src in in_cycle and in_cycle[src] == in_cycle.get(dst)
            ax.annotate("", xy=pos[dst], xytext=pos[src],
                        arrowprops=dict(arrowstyle="->", color="tab:red" if red else "0.6",
                                        lw=1.2 if red else 0.8, shrinkA=12, shrinkB=12,
                                        linestyle="--" if (src, dst) in lazy_edges else "-"))
    for node, (x, y) in pos.items():
        filled = node in highlight
        ax.text(x, y, node, ha="center", va="center", fontsize=9,
                color="white" if filled else "black",
                bbox=dict(boxstyle="round", fc="tab:blue" if filled else "white",
                          ec="tab:red" if node in in_cycle else "tab:blue"))
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.6, max(rows) + 0.6)
    ax.set_yticks(sorted(rows))
    ax.set_ylabel("layer (0: imports no other part)")
    ax.set_xticks([])
    n = len(cycles(graph))
    found = "no import cycle" if n == 0 else f"{n} import cycle{'s' if n > 1 else ''}, in red"
    ax.set_title("llmcourse: which part imports which (arrow: importer -> imported)\n"
                 f"dashed: imported inside a function; {found}")
    return ax
