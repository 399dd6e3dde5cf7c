"""Checks for day 25, "A tour of the package": preset overrides and reading the package's code.

Each ``check_*`` prints one line (a pass, the hint of a typical mistake from the exercise's
table, or "not done yet") and returns a verdict; none raises. ``imports_of`` and
``find_definition`` are compared with the package's own (:func:`llmcourse.tour.imports_of`,
:func:`llmcourse.tour.find_definition`) on a battery of sources and of names in two small
packages written for the check (re-exports, nested and async definitions, a name defined twice,
variables, relative imports, a package not called ``llmcourse``); the overrides are applied to
the preset and compared with :data:`TARGET`.

Example::

    >>> from llmcourse.checks import day25
    >>> ok = day25.check_overrides(None)
    ⏳ overrides: not done yet — write your code in the cell above, run it, then run this check again
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable

import ast
import os

from llmcourse.checks._core import (Case, CheckFailed, Mistake, as_list, check, compare, kind_of,
                                    require)
from llmcourse import tour
from llmcourse.presets import apply_overrides, get_preset
from llmcourse.runs import build_configs, known_fields
from llmcourse.tour import find_definition as reference_find_definition
from llmcourse.tour import imports_of as reference_imports_of

__all__ = ["TARGET", "reference_imports_of", "reference_find_definition", "check_overrides",
           "check_imports_of", "check_find_definition", "OVERRIDES", "IMPORTS_OF",
           "FIND_DEFINITION"]

#: What exercise 3 asks for, as (section, key, value).
TARGET = [("model", "n_layer", 2), ("model", "n_embd", 64), ("model", "block_size", 32),
          ("train", "max_iters", 150), ("train", "lr_decay_iters", 150),
          ("train", "warmup_iters", 15), ("train", "learning_rate", 3e-3)]


_GOOD = ["n_layer=2", "n_embd=64", "block_size=32", "max_iters=150", "lr_decay_iters=150",
         "warmup_iters=15", "learning_rate=3e-3"]


def _but(old: str, new: str | None) -> list[str]:
    """The right list with one item replaced (``new=None``: left out)."""
    return [new if item == old else item for item in _GOOD if not (item == old and new is None)]


OVERRIDES = [
    Mistake("lr_decay_iters forgotten", _but("lr_decay_iters=150", None),
            hint="the learning-rate schedule still decays over 2000 steps, so a 150-step run stops "
                 "before its learning rate has come down: set lr_decay_iters=150 too"),
    Mistake("train.block_size", _but("block_size=32", "train.block_size=32"),
            expect="it is a model setting"),
    Mistake("misspelt key", _but("n_layer=2", "n_layers=2"), expect="did you mean 'n_layer'"),
    Mistake("no '='", _but("max_iters=150", "max_iters 150"), expect="has no '='"),
    Mistake("n_embd not divisible", _but("n_embd=64", "n_embd=66"), expect="divisible by n_head"),
    Mistake("wrong value", _but("learning_rate=3e-3", "learning_rate=1e-3"),
            expect="learning_rate is 0.001"),
    Mistake("quoted number", _but("max_iters=150", "max_iters='150'"),
            expect="max_iters must be an integer"),
    Mistake("warmup forgotten", _but("warmup_iters=15", None), expect="warmup_iters is 100"),
    Mistake("an extra change", _GOOD + ["dropout=0.1"], expect="also changes model.dropout"),
    Mistake("one string", " ".join(_GOOD), expect="should return a list"),
]


def _hint(name: str) -> str:
    return next(m.hint for m in OVERRIDES if m.name == name)


@check("overrides", mistakes=OVERRIDES)
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
    if "block_size" in got.get("train", {}):  # apply_overrides refuses it today; kept in case
        raise CheckFailed("train.block_size is not a setting: the context length is the model's, "
                          "write block_size=32 (or model.block_size=32)")
    try:
        build_configs(got, vocab_size=65)
    except (ValueError, TypeError) as e:
        raise CheckFailed(f"the preset no longer builds a model and trainer: {e}") from None
    for section, key, value in TARGET:
        have = got.get(section, {}).get(key)
        if key == "lr_decay_iters" and have == 2000:
            raise CheckFailed(_hint("lr_decay_iters forgotten"))
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


# ---- exercise 1: imports_of ----------------------------------------------------------------------

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

_SOURCE_2 = (
    '"""A module of the package."""\n'
    "from __future__ import annotations\n"
    "import llmcourse\n"
    "import torch, llmcourse.runs as r, llmcourse.generate.api\n"
    "from .llmcourse.model import x\n"
    "from ..checks import _core\n"
    "import llmcourse_extra\n"
    "\n"
    "class Tool:\n"
    "    def run(self):\n"
    "        import llmcourse.tour as t\n"
    "        from llmcourse.runs import train_or_load\n"
    "        return t\n"
)

_SOURCE_3 = "import numpy as np\nfrom pathlib import Path\n\nX = 1\n"
_SOURCE_4 = (  # import lines inside a docstring, a comment and a string: none is an import
    '"""Usage:\n'
    "\n"
    "    import llmcourse.presets\n"
    "    from llmcourse.model import GPT\n"
    '"""\n'
    "# from llmcourse.old import thing\n"
    "from llmcourse.data import prepare\n"
    "EXAMPLE = '''\n"
    "import llmcourse.cli\n"
    "'''\n"
)


def _import_cases() -> list[Case]:
    return [
        Case("imports_of(source) on a module of 11 lines (see llmcourse.checks.day25._SOURCE)",
             _SOURCE),
        Case("imports_of(source) on a module of 13 lines with imports in a method and relative "
             "imports (see llmcourse.checks.day25._SOURCE_2)", _SOURCE_2),
        Case("imports_of(source) on a module that imports nothing of llmcourse", _SOURCE_3),
        Case("imports_of('') (an empty module)", ""),
        Case("imports_of(source) on a module whose docstring, comment and a string show import "
             "lines (see llmcourse.checks.day25._SOURCE_4)", _SOURCE_4),
    ]


def _collect(source, *, walk=True, first_alias=False, asname=False, prefix_only=False,
             relative=False, join=False, sort=True, dedupe=True, module_check=False):
    """imports_of written with one typical mistake (the keyword that names it)."""
    tree = ast.parse(source)
    found = []
    for node in (ast.walk(tree) if walk else tree.body):
        if isinstance(node, ast.Import):
            aliases = node.names[:1] if first_alias else node.names
            names = [(a.asname or a.name) if asname else a.name for a in aliases]
        elif isinstance(node, ast.ImportFrom) and (
                (node.module is not None) if module_check else (relative or node.level == 0)):
            names = [f"{node.module}.{a.name}" for a in node.names] if join else [node.module]
        else:
            continue
        for n in names:
            if n is None or (n.startswith("llmcourse") if prefix_only
                             else (n == "llmcourse" or n.startswith("llmcourse."))):
                found.append(n)
    if dedupe:
        found = list(dict.fromkeys(found))
    return sorted(found, key=str) if sort else found


def _mistake(**kwargs: Any) -> Callable[[str], Any]:
    def imports_of(source):
        return _collect(source, **kwargs)
    return imports_of


def _imports_variant(source, *, package_names=False, no_bare=False, names=False,
                     no_import=False, top_only=False):
    """imports_of written with one more typical mistake (the keyword that names it)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import) and not no_import:
            mods = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            if names and (node.module or "").startswith("llmcourse"):
                found.update(a.name for a in node.names)
                continue
            mods = ([f"llmcourse.{a.name}" for a in node.names]
                    if package_names and node.module == "llmcourse" else [node.module])
        else:
            continue
        for n in mods:
            if n == "llmcourse" or n.startswith("llmcourse."):
                found.add(n.split(".")[0] if top_only else n)
    return sorted(n for n in found if not (no_bare and n == "llmcourse"))


def _variant(**kwargs: Any) -> Callable[[str], Any]:
    def imports_of(source):
        return _imports_variant(source, **kwargs)
    return imports_of


def _a_set(source):
    return set(reference_imports_of(source))


_NOT_A_LIST = ("return a sorted list (sorted(found)), not a set or a tuple: a list has an order, "
               "and the same source must always give the same list")

def _imports_module_none(source):  # `from . import x` has node.module None: n.startswith crashes
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module]
        else:
            continue
        found.update(n for n in names if n == "llmcourse" or n.startswith("llmcourse."))
    return sorted(found)


def _imports_by_lines(source):  # lines of text that look like imports: strings count too
    found = set()
    for line in source.splitlines():
        words = line.strip().replace(",", " ").split()
        if len(words) >= 2 and words[0] in ("import", "from"):
            names = [words[1]] if words[0] == "from" else [w for w in words[1:] if w != "as"]
            found.update(n for n in names if n == "llmcourse" or n.startswith("llmcourse."))
    return sorted(found)


IMPORTS_OF = [
    Mistake("lines of text", _imports_by_lines,
            hint="read the imports from the syntax tree (ast.parse, then the ast.Import and "
                 "ast.ImportFrom nodes of ast.walk), not from lines of text: an import line "
                 "inside a docstring, a comment or a string is not an import"),
    Mistake("a set", _a_set, hint=_NOT_A_LIST),
    Mistake("tree.body only", _mistake(walk=False),
            hint="an import inside a function or method is missing: walk every node "
                 "(ast.walk(tree)), not only the module's top level (tree.body)"),
    Mistake("first alias only", _mistake(first_alias=True),
            hint="'import os, llmcourse.tokenizers.bpe' names two modules: look at every alias "
                 "in node.names, not only the first"),
    Mistake("asname", _mistake(asname=True),
            hint="'import llmcourse.data as d' imports llmcourse.data: use alias.name, not "
                 "alias.asname"),
    Mistake("prefix only", _mistake(prefix_only=True),
            hint="'llmcoursework' is another package that only starts with the same letters: keep "
                 "a name that is 'llmcourse' or starts with 'llmcourse.'"),
    Mistake("module is not None", _mistake(module_check=True),
            hint="'from .llmcourse.model import x' is a relative import too (node.level 1, "
                 "node.module 'llmcourse.model'): test node.level == 0, not node.module"),
    Mistake("relative imports", _mistake(relative=True),
            hint="'from . import sibling' is a relative import (node.level > 0): leave out every "
                 "ImportFrom whose node.level is not 0"),
    Mistake("module + name", _mistake(join=True),
            hint="for 'from llmcourse.model.gpt import GPT' the module is node.module "
                 "('llmcourse.model.gpt'), not module + name"),
    Mistake("not sorted", _mistake(sort=False),
            hint="the right modules, in another order: return sorted(...)"),
    Mistake("duplicates", _mistake(dedupe=False, sort=True),
            hint="a module appears twice in your list; collect the names in a set first"),
    Mistake("relative import crashes", _imports_module_none,
            hint="'from . import x' has node.module None (a relative import): skip relative "
                 "imports, test node.level == 0 before using node.module"),
    Mistake("from llmcourse import presets -> llmcourse.presets", _variant(package_names=True),
            hint="'from llmcourse import presets' imports from the module llmcourse: the module "
                 "is node.module ('llmcourse') whatever the names after import are"),
    Mistake("bare llmcourse left out", _variant(no_bare=True),
            hint="'from llmcourse import presets' imports from llmcourse itself: keep a name "
                 "that is exactly 'llmcourse' as well as those starting with 'llmcourse.'"),
    Mistake("imported names", _variant(names=True),
            hint="returned the names a from-import brings in (GPT, Trainer); return the module "
                 "they come from, node.module"),
    Mistake("ast.Import left out", _variant(no_import=True),
            hint="'import llmcourse.data as d' is an ast.Import: collect alias.name of each of "
                 "its aliases as well as the module of each ast.ImportFrom"),
    Mistake("first part only", _variant(top_only=True),
            hint="return the whole dotted module name ('llmcourse.model.gpt'), not only its "
                 "first part"),
    Mistake("a plain list", _mistake(dedupe=False, sort=False),
            hint="return each module once, in sorted order: collect the names in a set, then "
                 "return sorted(found)"),
]


def _module_list(value: Any, case: Case) -> list[str]:
    if isinstance(value, (set, frozenset, tuple)):
        raise CheckFailed(f"imports_of returned {kind_of(value)}; {_NOT_A_LIST}")
    if isinstance(value, list) and any(item is None for item in value):  # from . import x
        raise CheckFailed(next(m.hint for m in IMPORTS_OF if m.name == "relative imports"))
    return as_list(value, "imports_of(source)", of=str)


@check("imports_of", mistakes=IMPORTS_OF)
def check_imports_of(imports_of: Callable[[str], Any]) -> None:
    """Exercise 1: the package modules a source text imports, found with ``ast``."""
    compare(imports_of, reference_imports_of, _import_cases(), name="imports_of(source)",
            mistakes=IMPORTS_OF, read=_module_list)


# ---- exercise 2: find_definition -----------------------------------------------------------------


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
                                  "async def restock():\n    pass\n\n\nclass Basket:\n    pass\n")
    return pkg


def _second_package(root: Path) -> Path:
    """Another package (not 'shop', not 'llmcourse'): a name defined twice, a nested one first."""
    pkg = root / "garden"
    (pkg / "beds").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a_tools.py").write_text(
        "def outer():\n    def water():\n        pass\n    return water\n")
    (pkg / "beds" / "__init__.py").write_text("from garden.beds.soil import dig\n")
    (pkg / "beds" / "soil.py").write_text("def dig():\n    pass\n\nwater = None\n")
    (pkg / "beds" / "zz.py").write_text("def dig():\n    return 2\n\ndef water():\n    pass\n")
    # 'plant' at the top (m.py) and in a sub-package (beds/x.py): in sorted path order
    # garden/beds/x.py comes first; by file name, or walking the top folder first, m.py does
    (pkg / "m.py").write_text("def plant():\n    return 'top'\n")
    (pkg / "beds" / "x.py").write_text("class plant:\n    pass\n")
    return pkg


def _definition_cases(shop: Path, garden: Path) -> list[Case]:
    # first the cases that tell apart the mistakes whose results agree later: a name only
    # llmcourse defines (package_dir ignored), a class in a top-level module (classes left out)
    cases = [Case("find_definition('Trainer', package_dir given as a str) on 'shop'", "Trainer",
                  str(shop))]
    cases += [Case(f"find_definition({name!r}, package_dir) on a small package 'shop'", name, shop)
              for name in ("Basket", "Receipt", "total", "open_till", "restock", "price", "lines",
                           "LIMIT", "missing")]
    cases += [Case(f"find_definition({name!r}, package_dir) on a small package 'garden' ({why})",
                   name, garden)
              for name, why in (("dig", "defined in two modules: the first in sorted order"),
                                ("water", "nested in a_tools.py, a variable in soil.py, a def in "
                                          "zz.py"),
                                ("outer", "at the top of a_tools.py"),
                                ("plant", "in m.py and in beds/x.py: sorted paths put beds/ first"))]
    return cases


def _finder(*, walk=False, kinds=(ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef),
            by_name=False, keep_init=False, as_path=False, last=False, assign=False,
            default_dir=False, order=sorted, pattern="**/*.py", skip_init=False):
    """find_definition written with one typical mistake (the keyword that names it)."""
    def find_definition(name, package_dir):
        found = None
        for path in order(Path(package_dir).glob(pattern)):
            if skip_init and path.name == "__init__.py":
                continue
            source = path.read_text()
            tree = ast.parse(source)
            nodes = list(ast.walk(tree) if walk else tree.body)
            hit = name in source if by_name else any(
                isinstance(n, kinds) and n.name == name for n in nodes)
            if assign:
                hit = hit or any(isinstance(n, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == name for t in n.targets) for n in nodes)
            if hit:
                if as_path:
                    found = str(path)
                elif keep_init:
                    rel = path.relative_to(Path(package_dir).parent).with_suffix("")
                    found = ".".join(rel.parts)
                elif default_dir:
                    found = tour.module_name(path)
                else:
                    found = tour.module_name(path, package_dir)
                if not last:
                    return found
        return found
    return find_definition


def _by_file_name(paths):  # sorted by the file's own name, not by its whole path
    return sorted(paths, key=lambda p: p.name)


def _ignores_package_dir(name, package_dir):  # the package's own finder, on llmcourse
    return tour.find_definition(name)


def _parse_path(name, package_dir):  # ast.parse wants the text, not the path
    for path in sorted(Path(package_dir).rglob("*.py")):
        for node in ast.parse(path).body:
            if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.name == name:
                return tour.module_name(path, package_dir)
    return None


def _module_from_relative_path(name, package_dir):  # relative to package_dir: no package name
    for path in sorted(Path(package_dir).rglob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) \
                    and node.name == name:
                parts = list(path.relative_to(package_dir).with_suffix("").parts)
                return ".".join(parts[:-1] if parts[-1] == "__init__" else parts) or None
    return None


FIND_DEFINITION = [
    Mistake("module name without the package", _module_from_relative_path,
            hint="the dotted name starts with the package's own name ('shop.stock', not "
                 "'stock'): use tour.module_name(path, package_dir)"),
    Mistake("files not in sorted path order", _finder(order=_by_file_name),
            hint="'plant' is defined in garden/m.py and garden/beds/x.py: return the first in "
                 "sorted path order, for path in sorted(Path(package_dir).rglob('*.py')), "
                 "not in the order the folders are walked or by file name"),
    Mistake("ast.walk", _finder(walk=True),
            hint="a function or method defined inside another one counts only at a module's "
                 "top level: look only at tree.body, not ast.walk(tree)"),
    Mistake("variables count", _finder(assign=True),
            hint="a variable (name = ...) is not a definition: count only class, def and "
                 "async def statements"),
    Mistake("no async def", _finder(kinds=(ast.ClassDef, ast.FunctionDef)),
            hint="restock is an 'async def' (ast.AsyncFunctionDef): count it too"),
    Mistake("keeps __init__", _finder(keep_init=True),
            hint="the module of a package's __init__.py is the package itself; use "
                 "tour.module_name(path, package_dir)"),
    Mistake("returns the path", _finder(as_path=True),
            hint="returned the path of the file; return the dotted module name "
                 "(tour.module_name(path, package_dir))"),
    Mistake("last match", _finder(last=True),
            hint="returned the last file that defines the name; return the first, in sorted "
                 "order (return as soon as you find it)"),
    Mistake("module_name without package_dir", _finder(default_dir=True),
            hint="tour.module_name(path) without package_dir works only inside llmcourse; pass "
                 "the package_dir you were given: tour.module_name(path, package_dir)"),
    Mistake("searches the text", _finder(by_name=True),
            hint="shop/__init__.py only imports Receipt: look for a class or def statement "
                 "(ast.ClassDef, ast.FunctionDef), not for the name in the text"),
    Mistake("ast.parse(path)", _parse_path,
            hint="ast.parse takes the source text, not a path: "
                 "ast.parse(path.read_text(encoding='utf-8'))"),
    Mistake("__init__.py skipped", _finder(skip_init=True),
            hint="open_till is defined in shop/till/__init__.py: a package's __init__.py is a "
                 "module too (tour.module_name gives the package's name)"),
    Mistake("glob, not rglob", _finder(pattern="*.py"),
            hint="Receipt is in shop/till/core.py, a sub-folder: search every folder, "
                 "Path(package_dir).rglob('*.py'), not only the top one (glob)"),
    Mistake("functions only", _finder(kinds=(ast.FunctionDef, ast.AsyncFunctionDef)),
            hint="a class is a definition too: look for ast.ClassDef as well as ast.FunctionDef "
                 "and ast.AsyncFunctionDef"),
    Mistake("package_dir ignored", _ignores_package_dir,
            hint="found Trainer in llmcourse although package_dir is another package: search "
                 "the files of the package_dir you were given, not llmcourse"),
]


def _module_or_none(value: Any, case: Case) -> Any:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


@check("find_definition", mistakes=FIND_DEFINITION)
def check_find_definition(find_definition: Callable[[str, Any], Any]) -> None:
    """Exercise 2: the module that defines a top-level class or function, in sorted file order."""
    with tempfile.TemporaryDirectory() as tmp:
        shop = _fake_package(Path(tmp))
        garden = _second_package(Path(tmp))
        compare(find_definition, reference_find_definition, _definition_cases(shop, garden),
                name="find_definition(name, package_dir)", mistakes=FIND_DEFINITION,
                read=_module_or_none)
