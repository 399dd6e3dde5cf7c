"""llmcourse.tour: the package's import graph, read from its source with ast."""

from __future__ import annotations

import json
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import pytest

from llmcourse import tour


def test_imports_of_finds_every_form_and_only_the_package():
    source = (
        "import os, torch\n"
        "import llmcourse.data as d\n"
        "from llmcourse.model.gpt import GPT\n"
        "from llmcourse import presets\n"
        "import llmcoursework\n"
        "from . import sibling\n"
        "def later():\n"
        "    from llmcourse.train import Trainer\n"
    )
    assert tour.imports_of(source) == ["llmcourse", "llmcourse.data", "llmcourse.model.gpt",
                                       "llmcourse.train"]
    assert tour.imports_of(source, package="torch") == ["torch"]


def test_imports_of_resolves_relative_imports_when_told_where_the_source_is():
    source = "from . import functional\nfrom .config import GPTConfig\nfrom ..fields import x\n"
    assert tour.imports_of(source) == []                      # where from? it cannot tell
    assert tour.imports_of(source, module="llmcourse.model.layers") == [
        "llmcourse.fields", "llmcourse.model", "llmcourse.model.config"]
    # in a package's __init__, "." is the package itself
    assert tour.imports_of(source, module="llmcourse.model", is_package=True) == [
        "llmcourse.fields", "llmcourse.model", "llmcourse.model.config"]
    assert tour.imports_of("from ... import x", module="llmcourse.model.gpt") == []  # above it


def test_part_of():
    assert tour.part_of("llmcourse.train.trainer") == "train"
    assert tour.part_of("llmcourse.cli") == "cli"
    assert tour.part_of("llmcourse") == "llmcourse"


def _write_package(root, files):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_module_imports_follows_what_python_runs(tmp_path):
    pkg = _write_package(tmp_path / "pkg", {
        "__init__.py": "",
        "low.py": "X = 1\n",
        "sub/__init__.py": "from .core import Thing\nfrom . import util\n",
        "sub/core.py": ("from typing import TYPE_CHECKING\nfrom ..low import X\n"
                        "from pkg import low as again\nif TYPE_CHECKING:\n    import pkg.top\n"
                        "class Thing:\n    def later(self):\n        from .util import helper\n"),
        "sub/util.py": "def helper():\n    pass\n",
        "top.py": "import pkg.sub.core\nfrom pkg.sub import util, Thing\n",
    })
    mods = tour.module_imports(pkg)
    assert mods["pkg.sub"] == ["pkg.sub.core", "pkg.sub.util"]      # from . import util: a module
    assert mods["pkg.sub.core"] == ["pkg.low", "pkg.sub.util"]     # relative; TYPE_CHECKING out
    # from outside pkg.sub, importing pkg.sub.core runs pkg/sub/__init__.py first
    assert mods["pkg.top"] == ["pkg.sub", "pkg.sub.core", "pkg.sub.util"]
    assert tour.module_imports(pkg, lazy=True)["pkg.sub.core"] == ["pkg.sub.util"]
    assert tour.module_imports(pkg, lazy=False)["pkg.sub.core"] == ["pkg.low"]
    assert tour.part_graph(pkg) == {"low": set(), "sub": {"low"}, "top": {"sub"}}


def test_a_cycle_is_reported_not_cut(tmp_path):
    pkg = _write_package(tmp_path / "pkg", {
        "__init__.py": "",
        "device.py": "def f():\n    from .bench import time_it\n",
        "bench.py": "from pkg.model import mfu\ndef time_it():\n    pass\n",
        "model.py": "from .device import f\nmfu = 1\n",
        "runs.py": "import pkg.bench\n",
    })
    graph = tour.part_graph(pkg)
    assert tour.cycles(graph) == [["bench", "device", "model"]]
    level = tour.layers(graph)
    assert level == {"bench": 0, "device": 0, "model": 0, "runs": 1}   # one layer for the cycle
    ax = tour.draw_graph(graph, package_dir=pkg)
    assert "1 import cycle" in ax.get_title()
    arrows = [a.arrow_patch for a in ax.texts if getattr(a, "arrow_patch", None) is not None]
    red = [a for a in arrows if matplotlib.colors.to_hex(a.get_edgecolor()) == "#d62728"]
    dashed = [a for a in arrows if a.get_linestyle() in ("--", "dashed")]
    assert len(arrows) == 4 and len(red) == 3 and len(dashed) == 1    # device -> bench: lazy
    import matplotlib.pyplot as plt
    plt.close("all")


def test_cycles_and_layers_of_small_graphs():
    assert tour.cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert tour.cycles({"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"c", "a"}}) == [
        ["a", "b"], ["c", "d"]]
    assert tour.layers({"train": {"model"}, "model": {"fields"}, "fields": set()}) == {
        "fields": 0, "model": 1, "train": 2}
    level = tour.layers({"a": {"b"}, "b": {"a"}, "c": {"a"}})
    assert level["a"] == level["b"] < level["c"]


def test_real_edges_of_the_package():
    graph = tour.part_graph()
    assert "tokenizers" in graph["data"]      # prepare() encodes with a tokenizer
    assert {"data", "model", "train", "presets"} <= graph["runs"]
    assert "runs" in graph["cli"]
    assert "train" not in graph["model"] and "cli" not in graph["runs"]
    assert graph["flops"] == set() and graph["device"] <= {"flops", "timing"}
    assert "llmcourse" not in graph and all(a not in b for a, b in graph.items())
    assert tour.cycles(graph) == []
    level = tour.layers(graph)
    assert level["tokenizers"] < level["data"] < level["runs"] and level["model"] < level["runs"]
    assert level["train"] < level["runs"] < level["cli"] and level["flops"] == 0


def test_module_imports_keys_are_dotted_names_and_relative_imports_count():
    mods = tour.module_imports()
    assert "llmcourse.train.trainer" in mods and "llmcourse" in mods
    assert "llmcourse.train.config" in mods["llmcourse.train.trainer"]
    # model/gpt.py imports its neighbours relatively (from .config import GPTConfig)
    assert {"llmcourse.model.config", "llmcourse.model.layers"} <= set(mods["llmcourse.model.gpt"])
    assert "llmcourse.model.functional" in mods["llmcourse.model.layers"]   # from . import ...


_IMPORT_EACH = """
import importlib, json, sys
import torch  # loaded once, kept
found = {}
for name in json.loads(sys.argv[1]):
    for key in [k for k in sys.modules if k == "llmcourse" or k.startswith("llmcourse.")]:
        del sys.modules[key]
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as exc:   # a file that went away while the test ran
        if exc.name != name:
            raise
        continue
    found[name] = sorted(k for k in sys.modules if k == "llmcourse" or k.startswith("llmcourse."))
print(json.dumps(found))
"""


def test_the_graph_is_what_python_imports():
    """For every module: what importing it really loads == what the graph says it loads.

    The graph of the imports that run at import time (``lazy=False``), followed transitively,
    plus the package ``__init__`` files Python runs first, gives exactly the ``llmcourse``
    modules found in ``sys.modules`` after importing the module in a fresh interpreter.
    """
    eager = tour.module_imports(lazy=False)
    names = [m for m in eager if not m.endswith("__main__")]
    out = subprocess.run([sys.executable, "-c", _IMPORT_EACH, json.dumps(names)],
                         capture_output=True, text=True, timeout=600, check=True)
    loaded = json.loads(out.stdout.splitlines()[-1])

    def reached(module):
        seen, todo = set(), [module]
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                pieces = name.split(".")
                todo += [".".join(pieces[:i]) for i in range(1, len(pieces))] + eager[name]
        return sorted(seen)

    wrong = {m: (got, reached(m)) for m, got in loaded.items() if got != reached(m)}
    assert len(loaded) > 50 and not wrong


def test_find_definition(tmp_path):
    assert tour.find_definition("Trainer") == "llmcourse.train.trainer"
    assert tour.find_definition("repeat_kv") == "llmcourse.model.layers"
    assert tour.find_definition("get_preset") == "llmcourse.presets"
    assert tour.find_definition("flops_per_token") == "llmcourse.flops"
    assert tour.find_definition("nothing_like_this") is None
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from pkg.sub.core import Thing\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "core.py").write_text("def outer():\n    def helper():\n        pass\n\nclass Thing:\n    pass\n")
    assert tour.find_definition("Thing", pkg) == "pkg.sub.core"
    assert tour.find_definition("helper", pkg) is None
    assert tour.part_graph(pkg) == {"sub": set()}


def test_module_imports_refuses_a_non_package(tmp_path):
    with pytest.raises(ValueError, match="not a package"):
        tour.module_imports(tmp_path)


def test_draw_graph_draws_every_part_and_dashes_imports_in_functions():
    ax = tour.draw_graph()
    labels = {t.get_text() for t in ax.texts}
    assert {"model", "data", "train", "generate", "cli"} <= labels
    assert "no import cycle" in ax.get_title()
    styles = {a.arrow_patch.get_linestyle() for a in ax.texts
              if getattr(a, "arrow_patch", None) is not None}
    assert styles == {"-", "--"}          # e.g. model -> generate runs inside GPT.generate
    import matplotlib.pyplot as plt
    plt.close("all")
