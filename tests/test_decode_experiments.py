"""benchmarks/decode_experiments.py: every experiment runs at its smallest size and prints its
figures under a machine line (the performance page names these commands for its figures)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "decode_experiments.py"
MS = r" +\d+\.\d{3} ms(/step)? \[\d+\.\d{3}-\d+\.\d{3}\]"  # median [fastest-slowest]


def _run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env=env)


def test_every_experiment_prints_its_figures_and_the_machine():
    # the compile experiment traces with the 'eager' backend here: Inductor's C++ build alone
    # takes tens of seconds; the book's figure uses the default (inductor)
    done = _run("--smoke", "--threads", "1", "--busy", "1", "--backend", "eager")
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    sections = re.split(r"\n== ", out)[1:]
    assert [s.split(" ", 1)[0] for s in sections] == [
        "threads", "compile", "weight-layout", "attention", "matvec-bf16"]
    expected = {  # experiment -> the rows it must print, each a figure with its range
        "threads": ["1 thread"] + ([f"{os.cpu_count()} threads"] if (os.cpu_count() or 1) > 1
                                   else []),
        "compile": ["eager", "compiled"],
        "weight-layout": ["F.linear fp32", "pre-transposed addmm fp32", "F.linear bf16"],
        "attention": ["fused SDPA", r"explicit \(matmul, softmax, matmul\)"],
        "matvec-bf16": ["96 x 32 fp32", "96 x 32 bf16", "128 x 32 fp32", "128 x 32 bf16"],
    }
    for section in sections:
        name = section.split(" ", 1)[0]
        lines = section.splitlines()
        machine = lines[1]
        assert re.fullmatch(r"machine: .+, \d+ logical CPUs, torch \S+, 1 thread, load average "
                            r"[\d.]+( \(with 1 busy processes running\))?", machine), machine
        rows = [line for line in lines if re.search(MS, line)]
        assert [re.match(r"  (.+?)  +\d", r).group(1) for r in rows] == [
            e.replace("\\", "") for e in expected[name]], section
    assert "compile + first decode" in out and "logits differ by at most" in out
    assert "the 8 block matrices" in out  # 2 layers x 4 matrices, the output layer left out


def test_only_runs_the_named_experiment_and_bad_steps_are_refused():
    done = _run("--smoke", "--threads", "1", "--only", "matvec-bf16")
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.findall(r"^== (\S+)", done.stdout, re.M) == ["matvec-bf16"]

    done = _run("--smoke", "--only", "compile", "--steps", "32")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == ("decode_experiments.py: error: --steps 32: give at most 31 "
                                   "(the block is 32)")
    done = _run("--only", "nothing")
    assert done.returncode == 2 and "invalid choice: 'nothing'" in done.stderr


def test_every_command_the_performance_page_names_parses():
    """Each command of ``book/performance_training.md`` names an experiment and flags that exist."""
    sys.path.insert(0, str(SCRIPT.parent))
    import decode_experiments  # noqa: E402

    page = " ".join((ROOT / "book" / "performance_training.md").read_text().split())
    commands = re.findall(r"`python benchmarks/decode_experiments\.py ([^`]*)`", page)
    named = {args.split()[1] for args in commands}
    assert named == set(decode_experiments.EXPERIMENTS), named
    for args in commands:
        decode_experiments.parse_args(args.split())  # an unknown flag or name exits here
