"""The day-25 checks pass the references, catch plausible mistakes, and say "not done yet" for stubs."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from llmcourse import tour
from llmcourse.checks import day25
from checklines import one_line, stub

GOOD = ["n_layer=2", "n_embd=64", "block_size=32", "max_iters=150", "lr_decay_iters=150",
        "warmup_iters=15", "learning_rate=3e-3"]


# ---- overrides ------------------------------------------------------------------------------


def test_overrides(capsys):
    assert bool(day25.check_overrides(GOOD)) is True
    assert "passed" in one_line(capsys)
    explicit = ["model.n_layer=2", "model.n_embd=64", "model.block_size=32", "train.max_iters=150",
                "train.lr_decay_iters=150", "train.warmup_iters=15", "train.learning_rate=0.003"]
    assert bool(day25.check_overrides(explicit)) is True
    assert "passed" in one_line(capsys)
    assert bool(day25.check_overrides(None)) is False
    assert "not done yet" in one_line(capsys)


@pytest.mark.parametrize("items, hint", [
    ([i for i in GOOD if not i.startswith("lr_decay")], "lr_decay_iters=150 too"),
    ([i if i != "block_size=32" else "train.block_size=32" for i in GOOD], "model setting"),
    ([i if i != "n_layer=2" else "n_layers=2" for i in GOOD], "did you mean 'n_layer'"),
    ([i if i != "max_iters=150" else "max_iters 150" for i in GOOD], "has no '='"),
    ([i if i != "n_embd=64" else "n_embd=66" for i in GOOD], "divisible by n_head"),
    ([i if i != "learning_rate=3e-3" else "learning_rate=1e-3" for i in GOOD], "learning_rate is 0.001"),
    ([i if i != "max_iters=150" else "max_iters='150'" for i in GOOD], "max_iters must be an integer"),
    ([i for i in GOOD if not i.startswith("warmup")], "warmup_iters is 100"),
    (GOOD + ["dropout=0.1"], "also changes model.dropout"),
    ("n_layer=2", "should return a list"),
])
def test_overrides_mistakes(capsys, items, hint):
    assert bool(day25.check_overrides(items)) is False
    assert hint in one_line(capsys)


# ---- imports_of -----------------------------------------------------------------------------


def test_imports_of(capsys):
    assert bool(day25.check_imports_of(tour.imports_of)) is True
    assert "passed" in one_line(capsys)
    assert bool(day25.check_imports_of(stub)) is False
    assert "not done yet" in one_line(capsys)


def _collect(source, *, walk=True, first_alias=False, asname=False, prefix_only=False,
             relative=False, join=False, sort=True, dedupe=True):
    tree = ast.parse(source)
    found = []
    for node in (ast.walk(tree) if walk else tree.body):
        if isinstance(node, ast.Import):
            aliases = node.names[:1] if first_alias else node.names
            names = [(a.asname or a.name) if asname else a.name for a in aliases]
        elif isinstance(node, ast.ImportFrom) and (relative or node.level == 0):
            names = ([f"{node.module}.{a.name}" for a in node.names] if join
                     else [node.module])
        else:
            continue
        for n in names:
            if n is None or (n.startswith("llmcourse") if prefix_only
                             else (n == "llmcourse" or n.startswith("llmcourse."))):
                found.append(n)
    if dedupe:
        found = list(dict.fromkeys(found))
    return sorted(found, key=str) if sort else found


@pytest.mark.parametrize("kwargs, hint", [
    ({"walk": False}, "ast.walk(tree)"),
    ({"first_alias": True}, "every alias in node.names"),
    ({"asname": True}, "alias.asname"),
    ({"prefix_only": True}, "'llmcoursework' is another package"),
    ({"relative": True}, "relative import"),
    ({"join": True}, "not module + name"),
    ({"sort": False}, "return sorted"),
    ({"dedupe": False}, "appears twice"),
])
def test_imports_of_mistakes(capsys, kwargs, hint):
    assert bool(day25.check_imports_of(lambda s: _collect(s, **kwargs))) is False
    assert hint in one_line(capsys)


def test_imports_of_set_and_garbage(capsys):
    assert bool(day25.check_imports_of(lambda s: set(tour.imports_of(s)))) is False
    assert "sorted list" in one_line(capsys)
    assert bool(day25.check_imports_of(lambda s: None)) is False
    assert "None" in one_line(capsys)
    assert bool(day25.check_imports_of(lambda s: 1 / 0)) is False
    assert "ZeroDivisionError" in one_line(capsys)


# ---- find_definition ------------------------------------------------------------------------


def test_find_definition(capsys):
    assert bool(day25.check_find_definition(tour.find_definition)) is True
    assert "passed" in one_line(capsys)
    assert bool(day25.check_find_definition(stub)) is False
    assert "not done yet" in one_line(capsys)


def _finder(*, walk=False, kinds=(ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef),
            by_name=False, keep_init=False, as_path=False):
    def find(name, package_dir):
        for path in sorted(Path(package_dir).rglob("*.py")):
            source = path.read_text()
            tree = ast.parse(source)
            hit = name in source if by_name else any(
                isinstance(n, kinds) and n.name == name
                for n in (ast.walk(tree) if walk else tree.body))
            if hit:
                if as_path:
                    return str(path)
                if keep_init:
                    rel = path.relative_to(Path(package_dir).parent).with_suffix("")
                    return ".".join(rel.parts)
                return tour.module_name(path, package_dir)
        return None
    return find


@pytest.mark.parametrize("kwargs, hint", [
    ({"by_name": True}, "only imports Receipt"),
    ({"walk": True}, "tree.body"),
    ({"kinds": (ast.ClassDef, ast.FunctionDef)}, "async def"),
    ({"keep_init": True}, "__init__.py is the package itself"),
    ({"as_path": True}, "the dotted module name"),
])
def test_find_definition_mistakes(capsys, kwargs, hint):
    assert bool(day25.check_find_definition(_finder(**kwargs))) is False
    assert hint in one_line(capsys)


def test_find_definition_garbage(capsys):
    assert bool(day25.check_find_definition(lambda n, d: 42)) is False
    assert "expected 'shop.till.core'" in one_line(capsys)
