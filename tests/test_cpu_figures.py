"""benchmarks/cpu_real_runs.py and llmcourse.cpu_figures: the real-run figures lessons print.

``--smoke`` runs every entry at tiny sizes (seconds) and writes its block into a copy of the
module, which reads it back; the real module is never touched by a test. Every figure is
measured, names its machine and command, and is printed by exactly the lessons it lists.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from llmcourse import cpu_figures as cf

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "cpu_real_runs.py"
MODULE = Path(cf.__file__)


def _run(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, env=env, text=True,
                          capture_output=True, timeout=timeout)


def _load_copy(path: Path, monkeypatch):
    spec = importlib.util.spec_from_file_location("cpu_figures_copy", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "cpu_figures_copy", module)   # its dataclass looks itself up
    spec.loader.exec_module(module)
    return module


def test_smoke_run_writes_a_block_the_module_reads_back(tmp_path, monkeypatch):
    before = MODULE.read_bytes()
    copy = tmp_path / "cpu_figures.py"
    copy.write_bytes(before)
    done = _run("--smoke", "--write-to", str(copy))
    assert done.returncode == 0, done.stderr[-2000:]
    assert MODULE.read_bytes() == before                          # the real table is untouched
    module = _load_copy(copy, monkeypatch)
    assert set(module.MEASURED) == set(cf.FIGURES)                # every entry ran and was written
    for name, entry in module.MEASURED.items():
        assert entry["threads"] == 1 and entry["cpu"] and entry["torch"] and entry["capability"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\d", entry["date"])
        text = module.line(name)
        assert f"rerun: python benchmarks/cpu_real_runs.py --only {cf.FIGURES[name].only})" in text
        assert len(module.table(name).splitlines()) == 3 + len(entry["rows"])
    # --only replaces its entry and keeps the others
    old = dict(module.MEASURED)
    done = _run("--smoke", "--only", "one-head", "--write-to", str(copy))
    assert done.returncode == 0, done.stderr[-2000:]
    again = _load_copy(copy, monkeypatch)
    assert set(again.MEASURED) == set(cf.FIGURES)
    assert again.MEASURED["KV cache speed-up"] == old["KV cache speed-up"]


def test_smoke_figures_never_land_in_the_real_table():
    before = MODULE.read_bytes()
    done = _run("--smoke", "--write")
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (
        "cpu_real_runs.py: error: --smoke figures are not measurements: write them only to a copy "
        "(--write-to PATH)")
    assert MODULE.read_bytes() == before


def test_a_target_without_a_measured_block_is_refused_before_measuring(tmp_path):
    other = tmp_path / "notes.py"
    other.write_text("x = 1\n")
    done = _run("--smoke", "--write-to", str(other), timeout=60)
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (
        f"cpu_real_runs.py: error: {other} has no MEASURED block: give a copy of llmcourse/cpu_figures.py")
    assert other.read_text() == "x = 1\n" and "day07:" not in done.stdout     # nothing ran or changed
    done = _run("--smoke", "--json", str(tmp_path / "no" / "r.json"), timeout=60)
    assert done.returncode == 2 and "its folder does not exist" in done.stderr.splitlines()[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.py"]


def test_unknown_entry_is_refused_with_the_choices():
    done = _run("--only", "day99")
    assert done.returncode == 2
    assert "argument --only: invalid choice: 'day99' (choose from" in done.stderr.splitlines()[-1]


def test_every_figure_is_measured_with_its_machine():
    missing = [name for name in cf.FIGURES if name not in cf.MEASURED]
    assert not missing, f"not measured yet: {missing}; run python benchmarks/cpu_real_runs.py --write"
    for name in cf.FIGURES:
        assert "CPU: " in cf.line(name) and "torch " in cf.line(name)


def test_each_figure_lists_the_lessons_that_print_it():
    used: dict[str, set[int]] = {name: set() for name in cf.FIGURES}
    for path in sorted((ROOT / "solutions").glob("day*.md")):
        text = path.read_text(encoding="utf-8")
        if "cpu_figures" not in text:
            continue
        for literal in re.findall(r'cpu_figures\.(?:line|table)\((["\'])(.+?)\1\)', text):
            assert literal[1] in cf.FIGURES, f"{path.name} prints an unknown CPU figure {literal[1]!r}"
            used[literal[1]].add(int(path.name[3:5]))
    wrong = {name: (tuple(sorted(days)), cf.FIGURES[name].lessons) for name, days in used.items()
             if tuple(sorted(days)) != cf.FIGURES[name].lessons}
    assert not wrong, f"figure: (lessons that print it, its lessons tuple): {wrong}"


def test_summaries_compute_what_the_lessons_used_to_type():
    rows = [[1337, 2.2779, 2.2939, 0.016], [1, 2.2900, 2.3250, 0.035], [2, 2.2939, 2.3179, 0.024]]
    text = cf.FIGURES["nanoGPT's bias and GELU"].summary(rows)
    assert text == ("nanoGPT's variant ends higher by 0.016 to 0.035 (0.025 on average; higher in 3 "
                    "of 3 seeds); seed-to-seed spread 0.016 for ours, 0.031 for nanoGPT's")
    kv = [["recompute, within the block", 255, 57.5, 1.0],
          ["kv-cache, within the block", 255, 6.85, 8.4],
          ["recompute, past the block", 500, 82.9, 1.0],
          ["kv-cache, sliding window (exact)", 500, 60.9, 1.36],
          ["kv-cache, keep_on_rebuild=128 (approximate)", 500, 7.05, 11.76]]
    assert cf.FIGURES["KV cache speed-up"].summary(kv) == (
        "within the block (255 new tokens) the KV cache decodes 8.4x faster than recomputing; past it "
        "(500 new tokens) the exact sliding window 1.4x, and the approximate keep_on_rebuild=128 11.8x "
        "(its tokens differ from recomputation)")


def test_unknown_or_unmeasured_figure_says_what_to_do():
    with pytest.raises(KeyError, match="no CPU figure named 'nope'; the table has: bigram, MLP and WaveNet"):
        cf.line("nope")
    with pytest.raises(KeyError, match=r"has not been measured yet; run `python benchmarks/cpu_real_runs.py "
                                       r"--only day07 --write`"):
        cf.table("bigram, MLP and WaveNet", measured={})
