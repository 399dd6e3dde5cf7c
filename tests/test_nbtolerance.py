"""The notebook regression comparison: tolerant of round-off in decimals, exact for the rest.

`tools/nbtolerance.py` wraps nbval so that a loss printed as 2.75 on one CPU and 2.76 on another
passes, while a real regression (a loss from 2.44 to 2.60, a changed token id, a changed shape)
still fails. The last test runs nbval with the plugin on a real notebook with stored outputs.
"""

from __future__ import annotations

import doctest
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tools import nb as nbtool
from tools import nbtolerance
from tools.nbtolerance import numbers_agree, reconcile

ROOT = Path(__file__).resolve().parents[1]


def test_doctests() -> None:
    for module in (nbtolerance,):  # tools.nb's modules: tests/test_pipeline.py
        result = doctest.testmod(module)
        assert result.failed == 0, f"{module.__name__}: {result.failed} doctest(s) failed"


@pytest.mark.parametrize(
    "stored, fresh",
    [
        ("step  100  loss 2.75", "step  100  loss 2.76"),  # the last digit, as seen between CPUs
        ("loss with manual attention 2.4468, with SDPA 2.4468", "loss with manual attention 2.4471, with SDPA 2.4466"),
        ("val 1.8468", "val 1.8501"),  # within 1% after a long run
        ("tensor([ 0.1234, -0.5678])", "tensor([ 0.1236, -0.5678])"),
        ("mean -0.0000", "mean 0.0000"),
        ("grad norm 1.5e-02", "grad norm 1.5e-02"),
        ("grad norm 1.52e-02", "grad norm 1.53e-02"),
        ("tensor([[10.5000,  1.2500]])", "tensor([[10.4999,  1.2500]])"),
        ("tensor([[ 9.9999,  1.2500]])", "tensor([[10.0001,  1.2500]])"),  # columns padded to the widest
    ],
)
def test_round_off_in_decimals_is_tolerated(stored: str, fresh: str) -> None:
    assert reconcile(stored, fresh)


@pytest.mark.parametrize(
    "stored, fresh, what",
    [
        ("step 200 loss 2.44", "step 200 loss 2.60", "a loss that regressed"),
        ("val 1.4697", "val 1.5100", "a 3% worse validation loss"),
        ("ids [15496, 11, 995]", "ids [15496, 11, 996]", "a changed token id"),
        ("shape (2, 4, 16, 8)", "shape (2, 4, 16, 9)", "a changed shape"),
        ("torch.Size([4, 8])", "torch.Size([8, 4])", "a transposed shape"),
        ("vocab 65", "vocab 65.0", "an integer become a decimal"),
        ("First Citizen:", "First Citizen;", "changed text"),
        ("step 100 loss 2.75", "step 100 loss 2.75 nan", "an extra value"),
        ("largest difference: 1.9e-07", "largest difference: 2.4e-07", "raw round-off (never print it)"),
        ("loss nan", "loss 2.0", "a NaN that went away"),
        ("True", "False", "a flipped statement"),
        ("line one\nline two", "line one line two", "a lost line break"),
    ],
)
def test_real_regressions_fail(stored: str, fresh: str, what: str) -> None:
    assert not reconcile(stored, fresh), what


def test_integers_are_exact_and_names_with_digits_are_text() -> None:
    assert not numbers_agree("100", "101")
    assert not reconcile("day10 c_attn", "day11 c_attn")
    assert reconcile("layer h.0 weight 0.1234", "layer h.0 weight 0.1236")
    assert not reconcile("layer h.0 weight 0.1234", "layer h.1 weight 0.1234")


def _notebook(tmp_path: Path) -> Path:
    """A notebook whose stored outputs differ from what its cells print, in known ways."""
    cases = [  # (name, code, stored output)
        ("tolerated_loss", 'print("step  100  loss 2.76")', "step  100  loss 2.75\n"),
        ("regressed_loss", 'print("step  200  loss 2.60")', "step  200  loss 2.44\n"),
        ("changed_token_id", 'print("ids", [15496, 11, 996])', "ids [15496, 11, 995]\n"),
        ("changed_shape", 'print("shape", (2, 4, 16, 9))', "shape (2, 4, 16, 8)\n"),
        ("duration_and_loss", 'print("took 3.2 s, loss 1.8471")', "took 41.7 s, loss 1.8468\n"),
        ("tensor_alignment", "import torch\ntorch.tensor([10.0001, 1.25])", "tensor([ 9.9999,  1.2500])"),
        ("exact_text", 'print("First Citizen:")', "First Citizen:\n"),
    ]
    nb = nbformat.v4.new_notebook()
    for index, (name, code, stored) in enumerate(cases):
        cell = nbformat.v4.new_code_cell(f"# {name}\n{code}", execution_count=index + 1)
        if code.startswith("import torch"):
            cell.outputs = [
                nbformat.v4.new_output(
                    "execute_result", data={"text/plain": stored}, execution_count=index + 1
                )
            ]
        else:
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=stored)]
        nb.cells.append(cell)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "regression.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.mark.slow
def test_nbval_with_the_plugin_passes_round_off_and_fails_regressions(tmp_path: Path) -> None:
    path = _notebook(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "-p", "tools.nbtolerance",
         "--nbval", "--nbval-current-env", "--nbval-sanitize-with", str(ROOT / "tools" / "sanitize.cfg"),
         "--rootdir", str(tmp_path), "-o", "addopts=", str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    results = dict(re.findall(r"::Cell (\d+) (PASSED|FAILED)", proc.stdout))
    verdicts = [results.get(str(i)) for i in range(7)]
    assert verdicts == ["PASSED", "FAILED", "FAILED", "FAILED", "PASSED", "PASSED", "PASSED"], proc.stdout[-3000:]


def test_fragile_outputs_are_flagged() -> None:
    nb = nbformat.v4.new_notebook()

    def cell(source: str, text: str, tags: tuple[str, ...] = ()) -> nbformat.NotebookNode:
        c = nbformat.v4.new_code_cell(source)
        c.metadata["tags"] = list(tags)
        c.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
        return c

    nb.cells = [
        cell("print(d)", "largest difference: 4.8e-07\n"),
        cell("print(baseline)", "baseline: 4.174387269895637\n"),
        cell("print(f'{loss:.4f}')", "loss 2.4468   lr 6.0e-04\n"),
        cell("print(d)", "took 1.2345678 s\n", tags=("nbval-ignore-output",)),
        cell("# output-ok: a vanishing gradient, not round-off\nprint(g)", "plain 2.0e-09\n"),
        cell("print(ok)", "max |difference| < 1e-5: True\n"),
    ]
    problems = nbtool.fragile_outputs(nb, "x.ipynb")
    assert len(problems) == 2, problems
    assert problems[0].startswith("x.ipynb cell 0: prints the round-off magnitude '4.8e-07'")
    assert problems[1].startswith("x.ipynb cell 1: prints the unrounded float '4.174387269895637'")
