"""Every docstring example in the package runs, as the reader sees it.

One test per module of ``llmcourse`` (the checks included): the examples are run with
:mod:`doctest`, with ``torch`` in their namespace and ``NORMALIZE_WHITESPACE | ELLIPSIS``.
A module whose import needs an optional extra that is missing is skipped, not failed.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest
import torch

import llmcourse

MODULES = sorted(
    name for _, name, _ in pkgutil.walk_packages(llmcourse.__path__, prefix="llmcourse.")
    if name != "llmcourse.__main__"
)


def test_every_module_is_collected():
    assert {"llmcourse.generate.sampling", "llmcourse.model.layers", "llmcourse.fields"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    try:
        module = importlib.import_module(name)
    except ImportError as err:  # pragma: no cover - an optional extra is not installed
        pytest.skip(f"{name}: {err}")
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    torch.manual_seed(0)
    for test in finder.find(module, name, globs={"torch": torch, **vars(module)}):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
