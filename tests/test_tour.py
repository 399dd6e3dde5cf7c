"""llmcourse.tour: the package's import graph, read from its source with ast."""

from __future__ import annotations

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


def test_part_of():
    assert tour.part_of("llmcourse.train.trainer") == "train"
    assert tour.part_of("llmcourse.cli") == "cli"
    assert tour.part_of("llmcourse") == "llmcourse"


def test_real_edges_of_the_package():
    graph = tour.part_graph()
    assert "model" in graph["train"]          # the trainer logs the model's MFU
    assert "tokenizers" in graph["data"]      # prepare() encodes with a tokenizer
    assert {"data", "model", "train", "presets"} <= graph["runs"]
    assert {"runs", "presets"} <= graph["cli"]
    assert "train" not in graph["model"] and "cli" not in graph["runs"]
    assert "llmcourse" not in graph and all(a not in b for a, b in graph.items())
    level = tour.layers(graph)
    assert level["tokenizers"] < level["data"] and level["model"] < level["train"] < level["runs"]


def test_module_imports_keys_are_dotted_names():
    mods = tour.module_imports()
    assert "llmcourse.train.trainer" in mods and "llmcourse" in mods
    assert "llmcourse.train.config" in mods["llmcourse.train.trainer"]


def test_layers_cut_cycles():
    level = tour.layers({"a": {"b"}, "b": {"a"}, "c": {"a"}})
    assert set(level) == {"a", "b", "c"} and level["c"] > level["a"]


def test_find_definition(tmp_path):
    assert tour.find_definition("Trainer") == "llmcourse.train.trainer"
    assert tour.find_definition("repeat_kv") == "llmcourse.model.layers"
    assert tour.find_definition("get_preset") == "llmcourse.presets"
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


def test_draw_graph_draws_every_part():
    ax = tour.draw_graph()
    labels = {t.get_text() for t in ax.texts}
    assert {"model", "data", "train", "generate", "cli"} <= labels
    import matplotlib.pyplot as plt
    plt.close("all")
