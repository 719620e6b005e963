"""`make bench-masks` end to end on the tiny staged scenario: every variant trains and tests, fixed masks spend the
whole budget on the read-out, the section and JSON are written, a rerun resumes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lsi.experiments import mask_bench

CONFIG = Path(__file__).parent / "configs" / "lsi_staged_tiny.yaml"


@pytest.mark.slow
def test_mask_bench_runs_and_resumes(tmp_path):
    argv = ["--ratios", "4096", "--variants", "learned (init 2-D Hadamard, Adam)", "2-D Hadamard (fixed)",
            "--root", str(tmp_path / "runs"), "--results", str(tmp_path / "results.md"),
            "--json", str(tmp_path / "bench.json"), "--config", str(CONFIG),
            "--data.init_args.cache_dir", str(tmp_path / "cache")]
    rows = mask_bench.main(argv)
    assert [r["variant"] for r in rows] == ["learned (init 2-D Hadamard, Adam)", "2-D Hadamard (fixed)"]
    assert all(0 <= r["test/id_match"] <= 1 and "test/ridge/id_match" in r for r in rows)
    fixed = json.loads((tmp_path / "runs" / "ratio4096" / "2_d_hadamard_fixed" / "metrics.json").read_text())
    assert fixed["training"]["phase_steps"].get("joint", 0) == 0 and fixed["steps"] == 6
    text = (tmp_path / "results.md").read_text()
    assert mask_bench.SECTION_TITLE in text and "| 1:4096 | 2-D Hadamard (fixed) |" in text
    assert mask_bench.main(argv) == rows  # resumed from done.json


def test_margin_of_a_rate():
    assert mask_bench.margin95(0.5, 400) == pytest.approx(0.049, abs=1e-3)
    assert mask_bench.margin95(0.85, 400) == pytest.approx(0.035, abs=1e-3)


def test_rewritten_section_keeps_its_discussion(tmp_path):
    from lsi.experiments.mask_bench import write_results

    path = tmp_path / "results.md"
    row = {"variant": "2-D Hadamard (fixed)", "ratio": 512, "learned": False, "steps": 10, "train_seconds": 60.0,
           "test/id_match": 0.5, "test/identification": 0.25, "test/lat": 0.1, "test/psnr": 20.0}
    write_results([row], path)
    path.write_text(path.read_text() + "\n### Discussion\n\nwhy it is so\n")
    write_results([{**row, "test/id_match": 0.75}], path)
    text = path.read_text()
    assert "75.0%" in text and "50.0%" not in text and text.count("why it is so") == 1
