"""benchmarks/nanogpt_cpu_recipe.sh: its recipe is the milestone's, and its results name their run.

Nothing here runs nanoGPT: the script's options are read from its text, and the results file it
wrote (benchmarks/results/nanogpt_cpu_recipe_<date>.json) is checked for what it must hold.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from llmcourse.train.evaluate import SHAKESPEARE_CHAR_MILESTONES

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "nanogpt_cpu_recipe.sh"
RESULTS = sorted((ROOT / "benchmarks" / "results").glob("nanogpt_cpu_recipe_*.json"))


def script_recipe() -> dict[str, str]:
    """The ``--key=value`` options of the script's RECIPE array."""
    block = re.search(r"^RECIPE=\((.*?)\)", SCRIPT.read_text(), re.S | re.M)
    assert block, "benchmarks/nanogpt_cpu_recipe.sh has no RECIPE=( ... ) array"
    options = dict(word[2:].split("=", 1) for word in shlex.split(block.group(1)))
    return options


def milestone_shape() -> dict[str, str]:
    """Layers, width, steps, batch and context as the CPU-recipe milestone's text states them."""
    (text,) = [m.what for m in SHAKESPEARE_CHAR_MILESTONES if "CPU recipe" in m.what]
    found = re.search(r"(\d+) layers, (\d+) wide, (\d+) steps of (\d+) x (\d+)", text)
    assert found, f"milestone text changed shape: {text!r}"
    return dict(zip(("n_layer", "n_embd", "max_iters", "batch_size", "block_size"), found.groups()))


def test_script_recipe_is_the_milestones():
    recipe = script_recipe()
    for key, value in milestone_shape().items():
        assert recipe[key] == value, f"--{key}={recipe[key]} in the script, {value} in the milestone"
    # the rest of nanoGPT's README recipe: a CPU run, decayed over the whole run, no dropout
    assert recipe["device"] == "cpu" and recipe["compile"] == "False"
    assert recipe["lr_decay_iters"] == recipe["max_iters"]
    assert float(recipe["dropout"]) == 0.0
    assert recipe["n_head"] == "4" and recipe["eval_iters"] == "20"


def test_a_results_file_is_kept():
    assert RESULTS, "no benchmarks/results/nanogpt_cpu_recipe_*.json: run benchmarks/nanogpt_cpu_recipe.sh"


@pytest.mark.parametrize("path", RESULTS, ids=[p.name for p in RESULTS])
def test_results_name_their_command_and_agree(path):
    result = json.loads(path.read_text())
    command = result["command"]
    assert "train.py config/train_shakespeare_char.py" in command
    for key, value in script_recipe().items():
        assert f"--{key}={value}" in command.split(), f"--{key}={value} missing from {command!r}"
    assert re.fullmatch(r"[0-9a-f]{40}", result["nanogpt_commit"])
    vals = [e["val_loss"] for e in result["evals"]]
    # nanoGPT evaluates every 250 steps: at 0, 250, ..., 2000
    assert [e["iter"] for e in result["evals"]] == list(range(0, 2001, 250))
    assert result["best_val_loss"] == min(vals)
    assert result["final_val_loss"] == vals[-1]
    assert result["wall_s"] > 0 and result["threads"] >= 1
