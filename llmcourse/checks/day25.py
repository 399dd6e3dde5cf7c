"""Checks for day 25, "A tour of the package": preset overrides and reading the package's code.

Each ``check_*`` prints one line (a pass, a specific hint, or "not done yet") and returns a
verdict; none raises. The references are the package's own: :func:`llmcourse.tour.imports_of`
and :func:`llmcourse.tour.find_definition`.

Example::

    >>> from llmcourse.checks import day25
    >>> ok = day25.check_overrides(None)
    ⏳ overrides: not done yet — write your code in the cell above, run it, then run this check again
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable

from llmcourse.checks._core import CheckFailed, as_list, call, check, kind_of, require
from llmcourse.presets import apply_overrides, get_preset
from llmcourse.runs import build_configs, known_fields
from llmcourse.tour import find_definition as reference_find_definition
from llmcourse.tour import imports_of as reference_imports_of

__all__ = ["TARGET", "reference_imports_of", "reference_find_definition", "check_overrides",
           "check_imports_of", "check_find_definition"]

#: What exercise 3 asks for, as (section, key, value).
TARGET = [("model", "n_layer", 2), ("model", "n_embd", 64), ("model", "block_size", 32),
          ("train", "max_iters", 150), ("train", "lr_decay_iters", 150),
          ("train", "warmup_iters", 15), ("train", "learning_rate", 3e-3)]


@check("overrides")
def check_overrides(my_overrides: Any) -> None:
    """Exercise 3: ``--set`` strings that turn ``shakespeare-char-cpu`` into the small run."""
    items = as_list(require(my_overrides, "my_overrides"), "my_overrides", of=str)
    for item in items:
        if "=" not in item:
            raise CheckFailed(f"{item!r} has no '=': every override is key=value, e.g. 'n_layer=2'")
    try:
        got = apply_overrides(get_preset("shakespeare-char-cpu"), items, known_fields())
    except ValueError as e:
        raise CheckFailed(f"apply_overrides refused your list: {e}") from None
    if "block_size" in got.get("train", {}):
        raise CheckFailed("train.block_size is not a setting: the context length is the model's, "
                          "write block_size=32 (or model.block_size=32)")
    try:
        build_configs(got, vocab_size=65)
    except (ValueError, TypeError) as e:
        raise CheckFailed(f"the preset no longer builds a model and trainer: {e}") from None
    for section, key, value in TARGET:
        have = got.get(section, {}).get(key)
        if key == "lr_decay_iters" and have == 2000:
            raise CheckFailed("the learning-rate schedule still decays over 2000 steps, so a "
                              "150-step run stops before its learning rate has come down: set "
                              "lr_decay_iters=150 too")
        if have != value or type(have) is not type(value):
            raise CheckFailed(f"after your overrides {section}.{key} is {have!r}; the task asks "
                              f"for {value!r} (write {key}={value})")
    want = apply_overrides(get_preset("shakespeare-char-cpu"),
                           [f"{s}.{k}={v}" for s, k, v in TARGET])
    if got != want:
        extra = sorted(f"{s}.{k}" for s in got for k in got[s]
                       if want.get(s, {}).get(k) != got[s][k])
        raise CheckFailed(f"your list also changes {', '.join(extra)}; change only what the task "
                          "names")


_SOURCE = (
    "import os, llmcourse.tokenizers.bpe\n"
    "import llmcoursework\n"
    "import llmcourse.data as d\n"
    "from llmcourse.model.gpt import GPT, GPTConfig\n"
    "from llmcourse import presets\n"
    "from . import sibling\n"
    "from llmcourse.model.gpt import flops_per_token\n"
    "\n"
    "def later():\n"
    "    from llmcourse.train import Trainer\n"
    "    return Trainer\n"
)
_SHOWN = "imports_of(source) on a module of 11 lines (see llmcourse.checks.day25._SOURCE)"


@check("imports_of")
def check_imports_of(imports_of: Callable[[str], Any]) -> None:
    """Exercise 1: the package modules a source text imports, found with ``ast``."""
    want = reference_imports_of(_SOURCE)
    got = call(imports_of, _SOURCE, shown=_SHOWN)
    if isinstance(got, (set, tuple)):
        raise CheckFailed(f"imports_of returned a {kind_of(got)}; return a sorted list "
                          "(sorted(found))")
    if isinstance(got, list) and any(item is None or item == "sibling" for item in got):
        raise CheckFailed("'from . import sibling' is a relative import (node.level > 0, "
                          "node.module None): leave it out")
    got = as_list(got, "imports_of(source)", of=str)
    if got == want:
        return
    if len(got) != len(set(got)):
        raise CheckFailed("a module appears twice in your list; collect the names in a set first")
    if sorted(got) == want:
        raise CheckFailed("the right modules, in another order: return sorted(...)")
    if "llmcoursework" in got:
        raise CheckFailed("'llmcoursework' is another package that only starts with the same "
                          "letters: keep a name that is 'llmcourse' or starts with 'llmcourse.'")
    if "llmcourse.train" not in got and set(got) >= set(want) - {"llmcourse.train"}:
        raise CheckFailed("the import inside the function later() is missing: walk every node "
                          "(ast.walk(tree)), not only the module's top level (tree.body)")
    if "d" in got or "llmcourse.data" not in got:
        raise CheckFailed("'import llmcourse.data as d' imports llmcourse.data: use alias.name, "
                          "not alias.asname")
    if "llmcourse.tokenizers.bpe" not in got:
        raise CheckFailed("'import os, llmcourse.tokenizers.bpe' names two modules: look at every "
                          "alias in node.names, not only the first")
    if any(name.startswith("llmcourse.model.gpt.") for name in got):
        raise CheckFailed("for 'from llmcourse.model.gpt import GPT' the module is node.module "
                          "('llmcourse.model.gpt'), not module + name")
    raise CheckFailed(f"imports_of(source) returned {got}; expected {want}")


def _fake_package(root: Path) -> Path:
    pkg = root / "shop"
    (pkg / "till").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from shop.till.core import Receipt, total\n")
    (pkg / "till" / "__init__.py").write_text("def open_till():\n    return 'open'\n")
    (pkg / "till" / "core.py").write_text(
        "class Receipt:\n    def lines(self):\n        return []\n\n"
        "def total(items):\n    def price(item):\n        return item[1]\n"
        "    return sum(price(i) for i in items)\n")
    (pkg / "stock.py").write_text("import shop.till.core\n\nLIMIT = 10\n\n"
                                  "async def restock():\n    pass\n")
    return pkg


@check("find_definition")
def check_find_definition(find_definition: Callable[[str, Any], Any]) -> None:
    """Exercise 2: the module that defines a top-level class or function."""
    with tempfile.TemporaryDirectory() as tmp:
        pkg = _fake_package(Path(tmp))
        cases = [("Receipt", "shop.till.core"), ("total", "shop.till.core"),
                 ("open_till", "shop.till"), ("restock", "shop.stock"), ("price", None),
                 ("lines", None), ("LIMIT", None), ("missing", None)]
        for name, want in cases:
            got = call(find_definition, name, pkg, shown=f"find_definition({name!r}, package_dir) "
                       "on a small package 'shop'")
            if got == want:
                continue
            if want is not None and got in ("shop", f"shop.{name}"):
                raise CheckFailed(f"find_definition({name!r}) returned {got!r}: shop/__init__.py "
                                  f"only imports {name}; look for a class or def statement "
                                  f"(ast.ClassDef, ast.FunctionDef), not for the name")
            if want is None and name in ("price", "lines"):
                raise CheckFailed(f"find_definition({name!r}) returned {got!r}, but {name} is "
                                  "defined inside a function or class, not at a module's top "
                                  "level: look only at tree.body")
            if want == "shop.till" and isinstance(got, str) and got.endswith("__init__"):
                raise CheckFailed(f"returned {got!r}: the module of a package's __init__.py is the "
                                  "package itself; use llmcourse.tour.module_name(path, package_dir)")
            if want == "shop.stock" and got is None:
                raise CheckFailed("restock is an 'async def' (ast.AsyncFunctionDef): count it too")
            if isinstance(got, (str, Path)) and str(got).endswith(".py"):
                raise CheckFailed(f"returned the path {str(got)!r}; return the dotted module name "
                                  "(llmcourse.tour.module_name(path, package_dir))")
            raise CheckFailed(f"find_definition({name!r}, package_dir) returned {got!r}; "
                              f"expected {want!r}")
