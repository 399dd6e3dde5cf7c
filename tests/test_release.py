"""One version for the package, the book and every notebook's set-up cell (README: cutting a release)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

import llmcourse
from tools import nb as pipeline

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "lessons").glob("day*.ipynb")) + sorted((ROOT / "solutions").glob("day*.ipynb"))


def test_the_package_version_is_the_one_version():
    assert pipeline.package_version(ROOT) == llmcourse.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+", llmcourse.__version__)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "llmcourse.__version__"}


def test_the_book_shows_the_version():
    config = (ROOT / "_config.yml").read_text(encoding="utf-8")
    assert f'extra_footer: "llmcourse {llmcourse.__version__}:' in config
    assert f"release v{llmcourse.__version__} of the package" in config


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_setup_cell_installs_the_current_release(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    setup = "".join(nb["cells"][1]["source"])
    assert setup.startswith(pipeline.SETUP_HEADER)
    installs = re.findall(r'"git\+(\S+?)@(\S+?)"', setup)
    assert installs == [("https://github.com/llmcourse/llmcourse", f"v{llmcourse.__version__}")], installs


def test_readme_says_how_a_release_is_cut():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Cutting a release", 1)[1]
    for words in ("__version__", "python -m tools.nb build", "git tag v", "git push"):
        assert words in section, words
