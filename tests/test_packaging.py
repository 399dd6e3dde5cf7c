"""Set-up files agree with each other: environment.yml carries pyproject.toml's runtime pins."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch-cpu"}  # PyPI name -> conda-forge name where they differ


def _requirement(spec: str) -> tuple[str, str]:
    """``"torch>=2.1"`` -> ``("torch", ">=2.1")``: a name and its version bound, spaces removed."""
    match = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*(.*?)\s*", spec)
    assert match, f"cannot read the requirement {spec!r}"
    return match.group(1).lower().replace("_", "-"), match.group(2).replace(" ", "")


def test_environment_yml_has_every_runtime_dependency_with_the_same_bound() -> None:
    tomllib = pytest.importorskip("tomllib")
    yaml = pytest.importorskip("yaml")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    assert env["channels"][0] == "conda-forge", "take every package from conda-forge first"
    assert "pytorch" not in env["channels"], "the pytorch conda channel stopped at torch 2.5"
    conda = dict(_requirement(d) for d in env["dependencies"] if isinstance(d, str))
    assert "cpuonly" not in conda, "cpuonly belongs to the retired pytorch channel"
    for spec in project["dependencies"]:
        name, bound = _requirement(spec)
        conda_name = CONDA_NAMES.get(name, name)
        assert conda_name in conda, f"environment.yml lacks {conda_name} (pyproject.toml: {spec})"
        assert conda[conda_name] == bound, (
            f"environment.yml pins {conda_name}{conda[conda_name]}, pyproject.toml {name}{bound}"
        )
    pip_lines = [d for d in env["dependencies"] if isinstance(d, dict)]
    assert pip_lines and '-e ".[dev]"' in pip_lines[0]["pip"], "the package itself comes from pip, with [dev]"
