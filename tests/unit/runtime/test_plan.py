"""`lsi plan`: the optical rate of the one timing model next to measured software rates."""

from __future__ import annotations

import json

import pytest

from lsi.runtime.plan import main, optical_rates


@pytest.mark.parametrize("d, fps, scenes", [(128, 120, 22.5), (32, 120, 90.0), (128, 60, 11.25)])
def test_optical_rate_is_the_dlp4500_pattern_rate_over_d(d, fps, scenes):
    rates = optical_rates(d, fps)
    assert rates["patterns_per_s"] == 24 * fps
    assert rates["pattern_limited"] == pytest.approx(scenes)
    assert rates["frame_limited"] <= rates["pattern_limited"]


def test_plan_prints_headroom_from_benchmark_results(tmp_path, capsys):
    results = tmp_path / "performance.json"
    results.write_text(json.dumps({"machine": {"summary": "test box"}, "inference": [
        {"config": "paper", "d": 128, "backend": "ort-int8", "batch1_1thread": 45.0, "batch256_all": 450.0},
        {"config": "embedded", "d": 32, "backend": "ort", "batch1_1thread": 1800.0, "batch256_all": 9000.0}]}))
    assert main(["--results", str(results), "--d", "128"]) == 0
    out = capsys.readouterr().out
    assert "2,880 binary patterns/s" in out and "test box" in out
    row = next(line for line in out.splitlines() if line.startswith("paper"))
    assert "22.5" in row and "2.0x" in row and "20.0x" in row  # 45 / 22.5 and 450 / 22.5
    assert "embedded" not in out  # --d 128 only


def test_plan_without_results_says_how_to_get_them(tmp_path, capsys):
    assert main(["--results", str(tmp_path / "missing.json")]) == 2
    assert "make bench" in capsys.readouterr().err
