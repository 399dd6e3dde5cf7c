"""The day-25 checks pass the lesson's solutions (and other correct variants), reject every
typical mistake of their tables with its hint, refuse the package's own functions, say "not
done yet" for stubs, print exactly one line and never raise."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from llmcourse import tour
from llmcourse.checks import day25
from checklines import fails, mistake_params, one_line, passes, rejects, stub


# ---- the lesson's solutions, copied from solutions/day25_tour_of_the_package.md ------------------


def imports_of(source):
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module]
        else:
            continue
        found.update(n for n in names if n == "llmcourse" or n.startswith("llmcourse."))
    return sorted(found)


def find_definition(name, package_dir):
    for path in sorted(Path(package_dir).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if (isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                    and node.name == name):
                return tour.module_name(path, package_dir)
    return None


my_overrides = ["n_layer=2", "n_embd=64", "block_size=32", "max_iters=150", "lr_decay_iters=150",
                "warmup_iters=15", "learning_rate=3e-3"]


# ---- other correct variants ----------------------------------------------------------------------


def imports_of_node_visitor(source):
    found = set()

    class Visitor(ast.NodeVisitor):
        def visit_Import(self, node):
            found.update(a.name for a in node.names)

        def visit_ImportFrom(self, node):
            if not node.level:
                found.add(node.module)

    Visitor().visit(ast.parse(source))
    return sorted(n for n in found if n.split(".")[0] == "llmcourse")


def find_definition_path_object(name, package_dir):  # returns a str made by hand
    package_dir = Path(package_dir)
    for path in sorted(package_dir.rglob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if getattr(node, "name", None) == name and not isinstance(node, ast.alias):
                parts = path.relative_to(package_dir.parent).with_suffix("").parts
                return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    return None


def find_definition_sorted_strings(name, package_dir):  # paths sorted as strings, any()
    kinds = (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    for path in sorted(str(p) for p in Path(package_dir).rglob("*.py")):
        body = ast.parse(Path(path).read_text(encoding="utf-8")).body
        if any(isinstance(node, kinds) and node.name == name for node in body):
            return tour.module_name(Path(path), package_dir)
    return None


def test_import_lines_in_strings_are_not_imports():  # worked by hand from the source's text
    assert imports_of(day25._SOURCE_4) == ["llmcourse.data"]


EXPLICIT = ["model.n_layer=2", "model.n_embd=64", "model.block_size=32", "train.max_iters=150",
            "train.lr_decay_iters=150", "train.warmup_iters=15", "train.learning_rate=0.003"]


@pytest.mark.parametrize("check_fn, value", [
    (day25.check_imports_of, imports_of),
    (day25.check_imports_of, imports_of_node_visitor),
    (day25.check_find_definition, find_definition),
    (day25.check_find_definition, find_definition_path_object),
    (day25.check_find_definition, find_definition_sorted_strings),
    (day25.check_overrides, my_overrides),
    (day25.check_overrides, EXPLICIT),
    (day25.check_overrides, list(reversed(my_overrides))),
], ids=["imports_of", "imports_of visitor", "find_definition", "find_definition by hand",
        "find_definition sorted strings", "overrides", "overrides with sections",
        "overrides reversed"])
def test_the_solutions_pass(check_fn, value, capsys):
    passes(capsys, check_fn, value)


@pytest.mark.parametrize("check_fn, mistake", mistake_params(day25))
def test_mistake_rejected(check_fn, mistake, capsys):
    rejects(capsys, check_fn, mistake)


# ---- hand-worked values (not the checks' references) ---------------------------------------------


def test_hand_worked_imports():
    assert imports_of(day25._SOURCE) == ["llmcourse", "llmcourse.data", "llmcourse.model.gpt",
                                         "llmcourse.tokenizers.bpe", "llmcourse.train"]
    assert imports_of(day25._SOURCE_2) == ["llmcourse", "llmcourse.generate.api",
                                           "llmcourse.runs", "llmcourse.tour"]
    assert imports_of("") == []


def test_hand_worked_definitions(tmp_path):
    garden = day25._second_package(tmp_path)
    assert find_definition("dig", garden) == "garden.beds.soil"
    assert find_definition("water", garden) == "garden.beds.zz"
    assert find_definition("outer", garden) == "garden.a_tools"
    assert find_definition("plant", garden) == "garden.beds.x"      # beds/x.py sorts before m.py


def test_a_wrong_list_gets_a_generic_line_with_the_case(capsys):
    fails(capsys, day25.check_imports_of, lambda s: [], "(on imports_of(source) on a module of 11")


def test_a_wrong_module_gets_a_generic_line_with_the_case(capsys):
    fails(capsys, day25.check_find_definition, lambda n, d: 42,
          "(on find_definition('Trainer', package_dir given as a str) on 'shop')")


# ---- the package's own functions are refused -----------------------------------------------------


@pytest.mark.parametrize("check_fn, package_fn", [
    (day25.check_imports_of, tour.imports_of), (day25.check_find_definition, tour.find_definition),
])
def test_the_package_reference_is_refused(check_fn, package_fn, capsys):
    fails(capsys, check_fn, package_fn, "the course's own reference")


# ---- stubs, one line, never raises ---------------------------------------------------------------


@pytest.mark.parametrize("check, value", [(day25.check_imports_of, stub),
                                          (day25.check_find_definition, stub),
                                          (day25.check_overrides, None)])
def test_stub_is_not_done_yet(check, value, capsys):
    fails(capsys, check, value, "not done yet")


@pytest.mark.parametrize("check", [day25.check_imports_of, day25.check_find_definition])
def test_garbage_never_raises(check, capsys):
    for bad in (lambda *a: 1 / 0, lambda *a: "text", lambda *a: None, lambda *a: [None],
                lambda *a: {"a": 1}, lambda *a: Path("x.py")):
        assert bool(check(bad)) is False
        assert one_line(capsys).startswith("❌")


def test_overrides_garbage_never_raises(capsys):
    for bad in (42, ["n_layer=two"], [1, 2], {"n_layer": 2}, ["="]):
        assert bool(day25.check_overrides(bad)) is False
        assert one_line(capsys).startswith("❌")


def find_definition_walked(name, package_dir):
    """Wrong: the files in the order os.walk meets them (a folder's own files before its
    sub-folders), not in sorted path order; sorted inside each folder so the test is stable."""
    import os

    for root, dirs, files in os.walk(package_dir):
        dirs.sort()
        for file in sorted(files):
            path = Path(root) / file
            if not file.endswith(".py"):
                continue
            for node in ast.parse(path.read_text(encoding="utf-8")).body:
                if (isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                        and node.name == name):
                    return tour.module_name(path, package_dir)
    return None


def test_files_walked_top_down_are_not_in_sorted_order(capsys):
    fails(capsys, day25.check_find_definition, find_definition_walked,
          "return the first in sorted path order")
