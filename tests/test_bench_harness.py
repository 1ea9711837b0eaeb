"""The benchmark harness measures what it claims: a slower callable gets a larger p50 and ratio."""

from __future__ import annotations

import json
import time

from bench import harness


def test_compare_reports_ratio_and_added_latency(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "RESULTS", tmp_path)
    fast = lambda: None  # noqa: E731
    slow = lambda: time.sleep(0.002)  # noqa: E731
    result = harness.compare("fast", fast, "slow", slow, warmup=5, rounds=4, per_round=10)
    assert result.baseline.n == result.candidate.n == 40
    assert result.ratio_p50 > 10 and 1.5 < result.added_p50_ms < 20
    report = harness.write_report("t", {"x": result}, {"small": ("x", "added_p50_ms", "<=", 1.0)})
    assert report["targets"]["small"]["met"] is False
    saved = json.loads((tmp_path / "t.json").read_text())
    assert saved["comparisons"]["x"]["baseline"] == "fast"
