"""`make compare`'s report: the goal margin, the Table 2 section next to the paper's, a kept Discussion."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from lsi.experiments import compare_report as report


def _record(name: str, id_match: float, folder_settings: dict | None = None) -> dict:
    return {"name": name, "settings": folder_settings or {"config": "c.yaml", "test_scenes": 4, "world": "w",
                                                          "split": {}, "train_scenes": 0},
            "metrics": {"id_match": id_match, "identification": id_match / 2, "psnr": 18.0, "ssim": 0.6,
                        "psnr_256": 17.0, "ssim_256": 0.7, "fid": 50.0, "seconds_per_image": 0.01,
                        "id_distance": 0.5, "num_images": 4.0},
            "budget": {"readings_use": "x", "training": "none"}, "fit": {}}


def test_goal_is_the_margin_over_the_best_image_baseline():
    methods = {"lsi": {"id_match": 0.7}, "lsi_ridge": {"id_match": 0.65}, "hadamard": {"id_match": 0.2},
               "csgm": {"id_match": 0.35}}
    g = report.goal(methods)
    assert g["best_image_baseline"] == "csgm" and g["margin"] == pytest.approx(0.35) and g["met"] is False
    assert "lsi_ridge" not in g["margins"]                                      # a latent method, not an image one
    methods["csgm"]["id_match"] = 0.25
    assert report.goal(methods)["met"] is True
    assert report.goal({"hadamard": {"id_match": 0.1}}) is None


def test_outputs_json_section_and_figure(tmp_path):
    args = SimpleNamespace(ratio=4096, json=tmp_path / "docs" / "table2_ratio4096.json",
                           results=tmp_path / "docs" / "results.md", figures=tmp_path / "docs" / "figures")
    root = tmp_path / "run"
    for folder in ("ref_scene", "ref_g_of_e", "lsi", "hadamard"):
        (root / folder).mkdir(parents=True)
        torch.save(torch.rand(2, 3, 64, 64), root / folder / "faces.pt")
    records = {"lsi": _record("lsi", 0.9), "hadamard": _record("hadamard", 0.1)}
    refs = {k: _record(k, 1.0) for k in report.REFERENCES}
    table = report.write_outputs(root, args, records, refs, wall_seconds=3.0)
    saved = json.loads(args.json.read_text())
    assert saved["ratio"] == 4096 and saved["measurements"] == 16
    assert set(saved["methods"]) == {"lsi", "hadamard"} and saved["goal"]["met"] is True
    assert table["methods"]["hadamard"]["id_match"] == 0.1
    text = args.results.read_text()
    assert report.SECTION_TITLE in text and "### 1:4096 (16 readings" in text and "90.98%" in text
    assert (args.figures / "fig9_comparison_ratio4096.png").is_file()
    assert "figures/fig9_comparison_ratio4096.png" in text
    # a Discussion written under the section survives the next run
    args.results.write_text(text.rstrip() + "\n\n### Discussion\n\nWhy the margins are what they are.\n")
    report.write_outputs(root, args, records, refs, wall_seconds=3.0)
    assert "Why the margins are what they are." in args.results.read_text()
    assert args.results.read_text().count(report.SECTION_TITLE) == 1
