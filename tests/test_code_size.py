"""benchmarks/code_size.py: one metric (code lines) for every figure and every revision."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("code_size", ROOT / "benchmarks" / "code_size.py")
code_size = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(code_size)

SOURCE = '''"""Module docstring,
two lines."""

import os  # a comment after code counts as code


# a comment line
def f(x,
      y):
    """A docstring."""
    s = """a string that is data,
    not a docstring"""
    return s


class A:
    """Doc."""

    @staticmethod
    def g():
        pass
'''


def test_code_lines_drop_docstrings_comments_and_blanks():
    lines = code_size.code_line_numbers(SOURCE)
    assert sorted(lines) == [4, 8, 9, 11, 12, 13, 16, 19, 20, 21]


def test_a_unit_is_a_file_or_a_class_or_function_in_it(tmp_path, monkeypatch):
    class Fake:
        paths = ["m.py"]

        def read(self, path):
            return SOURCE if path == "m.py" else None

    assert code_size.measure_unit(Fake(), "m.py") == 10
    assert code_size.measure_unit(Fake(), "m.py:f") == 5          # signature (2) + body (3)
    assert code_size.measure_unit(Fake(), "m.py:A.g") == 3        # decorator included
    assert code_size.measure_unit(Fake(), "m.py:nothing") is None
    assert code_size.measure_unit(Fake(), "gone.py") is None


def test_a_past_revision_is_read_with_git_and_measured_the_same_way():
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", "HEAD^{commit}"],
                          capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("not a git clone")
    source = code_size.Source("HEAD")
    assert "tour.py" in source.paths and source.rev == head.stdout.strip()
    text = source.read("tour.py")
    committed = subprocess.run(["git", "-C", str(ROOT), "show", "HEAD:llmcourse/tour.py"],
                               capture_output=True, text=True, check=True).stdout
    assert text == committed
    m = code_size.measure(source)
    assert m["package"]["code_lines"] > 0 and m["checks"]["code_lines"] > 0
    assert m["total"] == m["package"]["code_lines"] + m["checks"]["code_lines"]
    report = code_size.report(m)
    assert report.splitlines()[0] == f"metric: {code_size.METRIC}"
    assert "llmcourse/checks/:" in report and "training loop" in report


def test_every_unit_of_every_concept_exists_in_the_working_tree():
    """A unit left behind by a move (a deleted helper, a renamed file) would print "absent"."""
    source = code_size.Source()
    absent = [unit for reference, engineered in code_size.CONCEPTS.values()
              for unit in reference + engineered if code_size.measure_unit(source, unit) is None]
    assert absent == []
    attention = code_size.CONCEPTS["attention layer"]
    assert attention == (["model/attention_reference.py:PlainCausalSelfAttention"],
                         ["model/layers.py:CausalSelfAttention"])
