"""The layout of the package: no import cycles, no module over 450 lines (issue 22).

The import graph is the one :mod:`llmcourse.tour` draws for day 25 (:func:`tour.module_imports`,
one implementation for the lesson and this test), between *modules*, with every import:

- module-level and function-level imports both count: an import inside a function that goes up
  to a module importing you is a cycle too (it only runs later, but it ties the two modules
  together just the same);
- relative imports are resolved, and ``from llmcourse.x import y`` is an import of the module
  ``llmcourse.x.y`` when ``y`` is a module, else of ``llmcourse.x``;
- importing ``a.b.c`` from outside the sub-package ``a.b`` is also an import of ``a.b`` (its
  ``__init__`` runs first). A module inside ``a.b`` gets no such edge: when it runs, ``a.b`` is
  already being imported, so a package ``__init__`` that re-exports its submodules is *not* in a
  cycle with them. A submodule that imports its own package's ``__init__`` explicitly (``from
  llmcourse.model import GPT`` inside ``llmcourse.model``) *is*: it sees a half-built package;
- imports under ``if TYPE_CHECKING:`` are left out: they never run.

A cycle is a strongly connected component of more than one module. Nothing is left out:
``llmcourse.checks`` (the exercise checks of the lessons) sits on top and imports most of the
package, which closes a cycle only when a package module imports the checks back - and then it is
reported like any other. (A package module may use a part of ``checks`` that imports nothing of
the package, as ``learner.check`` does with ``checks._core``.)
"""

from __future__ import annotations

from llmcourse import tour

MAX_LINES = 450


def _is_checks(module: str) -> bool:
    return module == "llmcourse.checks" or module.startswith("llmcourse.checks.")


def package_import_graph(package_dir=tour.PACKAGE_DIR) -> dict[str, set[str]]:
    """The module graph of the package in ``package_dir``: ``{module: {modules it imports}}``."""
    return {m: set(targets) for m, targets in tour.module_imports(package_dir).items()}


def _describe(cycle: list[str], graph: dict[str, set[str]], lazy: dict[str, list[str]]) -> str:
    members = set(cycle)
    edges = [f"{a} -> {b}{' (in a function)' if b in lazy[a] else ''}"
             for a in cycle for b in sorted(graph[a]) if b in members]
    return f"{len(cycle)} modules: " + "; ".join(edges)


def test_no_import_cycles():
    graph = package_import_graph()
    lazy = tour.module_imports(lazy=True)
    found = tour.cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(_describe(c, graph, lazy) for c in found)


def test_no_module_outside_checks_is_over_450_lines():
    too_big = {}
    for path in sorted(tour.PACKAGE_DIR.rglob("*.py")):
        module = tour.module_name(path)
        if "__pycache__" in path.parts or _is_checks(module):
            continue
        with open(path, encoding="utf-8") as fh:
            lines = sum(1 for _ in fh)              # what `wc -l` counts
        if lines > MAX_LINES:
            too_big[module] = lines
    assert not too_big, (f"modules over {MAX_LINES} lines (split them by concept): "
                         + ", ".join(f"{m} {n}" for m, n in sorted(too_big.items(),
                                                                   key=lambda kv: -kv[1])))


def test_the_rule_finds_cycles_and_spares_re_exports(tmp_path):
    """The rule above on a small package: which imports make a cycle and which do not."""
    pkg = tmp_path / "llmcourse"
    for folder in (pkg / "model", pkg / "checks"):
        folder.mkdir(parents=True)
    files = {
        "__init__.py": "",
        "device.py": "def f():\n    from llmcourse import bench\n",        # lazy, upward
        "bench.py": "from .device import f\n",
        "model/__init__.py": "from .gpt import GPT\nfrom . import layers\n",  # re-exports
        "model/gpt.py": "from .layers import Block\nclass GPT: pass\n",
        "model/layers.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                           "    from llmcourse.model.gpt import GPT\nclass Block: pass\n",
        "checks/__init__.py": "",
        "checks/day1.py": "from llmcourse.model import GPT\nimport llmcourse.runs\n",
        "runs.py": "from llmcourse.model.gpt import GPT\n",
    }
    for name, text in files.items():
        (pkg / name).write_text(text)
    graph = package_import_graph(pkg)
    assert graph["llmcourse.runs"] == {"llmcourse.model", "llmcourse.model.gpt"}
    assert tour.cycles(graph) == [["llmcourse.bench", "llmcourse.device"]]
    (pkg / "runs.py").write_text("def check():\n    import llmcourse.checks.day1\n")
    (pkg / "model" / "layers.py").write_text("from llmcourse.model import GPT\n")  # half-built
    assert tour.cycles(package_import_graph(pkg)) == [
        ["llmcourse.bench", "llmcourse.device"],
        ["llmcourse.checks.day1", "llmcourse.runs"],          # the package imports checks back
        ["llmcourse.model", "llmcourse.model.gpt", "llmcourse.model.layers"]]
