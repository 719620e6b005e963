"""`make compare` end to end on tiny settings: every method and LSI at 1:4096, JSON, section, figure, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lsi.experiments import compare

CONFIG = Path(__file__).parent / "configs" / "lsi_tiny.yaml"
COLUMNS = {"id_match", "identification", "psnr", "ssim", "psnr_256", "ssim_256", "fid", "seconds_per_image"}


def _argv(tmp_path: Path, ckpt: Path) -> list[str]:
    return ["--ratio", "4096", "--config", str(CONFIG), "--lsi-checkpoint", str(ckpt), "--train-steps", "2",
            "--csgm-steps", "2", "--root", str(tmp_path / "runs"), "--results", str(tmp_path / "docs" / "results.md"),
            "--json", str(tmp_path / "docs" / "table2.json"), "--figures", str(tmp_path / "docs" / "figures"),
            "--no-progress"]


def test_compare_end_to_end_and_resume(tmp_path, lsi_ckpt):
    table = compare.main(_argv(tmp_path, lsi_ckpt))
    saved = json.loads((tmp_path / "docs" / "table2.json").read_text())
    assert saved["ratio"] == 4096 and saved["measurements"] == 16
    assert set(saved["methods"]) == set(compare.METHODS)
    for name, entry in saved["methods"].items():
        assert COLUMNS <= set(entry), name
        assert 0.0 <= entry["id_match"] <= 1.0 and entry["seconds_per_image"] > 0
    assert set(saved["references"]) == set(compare.REFERENCES)
    assert saved["references"]["scene"]["id_match"] == 1.0
    assert saved["goal"] is not None and saved["settings"]["test_scenes"] == 4
    assert saved["methods"]["unfolding_1bit"]["fit"]["steps"] == 2
    text = (tmp_path / "docs" / "results.md").read_text()
    assert "## Table 2" in text and "Differential ghost imaging" in text
    assert (tmp_path / "docs" / "figures" / "fig9_comparison_ratio4096.png").is_file()
    # resume: every finished method is skipped, its record untouched
    stamp = {p: p.stat().st_mtime_ns for p in (tmp_path / "runs" / "ratio4096").glob("*/result.json")}
    again = compare.main(_argv(tmp_path, lsi_ckpt))
    assert {p: p.stat().st_mtime_ns for p in stamp} == stamp
    assert again["methods"]["csgm"]["id_match"] == table["methods"]["csgm"]["id_match"]


def test_missing_checkpoint_names_the_command(tmp_path):
    with pytest.raises(SystemExit, match="make train RATIO=4096"):
        compare.main([*_argv(tmp_path, tmp_path / "absent.ckpt"), "--no-train-lsi"])
