"""benchmarks/check_times.py reads the verdict records the checks write ($LLMCOURSE_CHECK_LOG)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("check_times", ROOT / "benchmarks" / "check_times.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_summary_per_day_from_records_the_checks_wrote(tmp_path, monkeypatch, capsys):
    log = tmp_path / "checks.jsonl"
    monkeypatch.setenv("LLMCOURSE_CHECK_LOG", str(log))
    from llmcourse.checks import day22

    def solution_top_k(logits, k):
        import torch

        k = min(k, logits.shape[-1])
        values, indices = torch.topk(logits, k, dim=-1)
        return torch.full_like(logits, float("-inf")).scatter(-1, indices, values)

    day22.check_top_k_filter(solution_top_k)
    day22.check_top_k_filter(lambda logits, k: logits)  # wrong: nothing removed
    capsys.readouterr()
    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert [r["source"] for r in records] == ["llmcourse.checks.day22"] * 2
    rows = _module().summarise(log)
    assert len(rows) == 1
    row = rows[0]
    assert (row["day"], row["checks"], row["passed"]) == ("day22", 2, 1)
    assert row["mistakes"] == sum(len(getattr(day22, n).mistakes) for n in dir(day22) if n.startswith("check_"))
    assert row["cpu_s"] > 0
