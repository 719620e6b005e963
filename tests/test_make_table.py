"""`make table` end to end on a tiny real run (two ratios, two steps each): outputs, resume, settings guard.

About 15 s on 2 cores, so not marked slow."""

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TINY_DATA = {"batch_size": 4, "num_train_identities": 4, "images_per_identity": 2, "num_val_identities": 2,
             "num_test_identities": 2, "cache": False}


def _load_script():
    spec = importlib.util.spec_from_file_location("make_table", ROOT / "scripts" / "make_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def make_table():
    return _load_script()


def _argv(tmp: Path, steps: int = 2) -> list[str]:
    trainer = {"accelerator": "cpu", "limit_val_batches": 1, "log_every_n_steps": 1}
    lsi_extra = {"trainer": trainer, "data": {"init_args": TINY_DATA},
                 "model": {"init_args": {"image_loss_batch": 2, "digital": {"hidden": 32, "depths": [1, 1, 1]}}}}
    heads_extra = {"trainer": trainer, "data": {"init_args": TINY_DATA}}
    (tmp / "lsi_extra.yaml").write_text(yaml.safe_dump(lsi_extra))
    (tmp / "heads_extra.yaml").write_text(yaml.safe_dump(heads_extra))
    return ["--ratios", "4096", "16384", "--steps", str(steps), "--head-steps", "2", "--root", str(tmp / "runs"),
            "--lsi-config", str(ROOT / "configs/train_embedded.yaml"),
            "--heads-config", str(ROOT / "configs/heads_embedded.yaml"),
            "--lsi-extra", str(tmp / "lsi_extra.yaml"), "--heads-extra", str(tmp / "heads_extra.yaml"),
            "--eval-dlib", "no", "--results", str(tmp / "docs/results.md"), "--json", str(tmp / "docs/table1.json"),
            "--figures", str(tmp / "docs/figures"), "--figure-samples", "2"]


def test_make_table_runs_resumes_and_keeps_other_sections(make_table, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    mask_section = "## Mask learning (`make bench-masks`)\n\n| masks | identity match |\n|---|---|\n| learned | 9% |\n"
    (docs / "results.md").write_text("# Results\n\n" + mask_section)
    argv = _argv(tmp_path)

    records = make_table.main(argv)
    assert [r["ratio"] for r in records] == [4096, 16384] and not any(r.get("skipped") for r in records)
    runs = tmp_path / "runs"
    for r in (4096, 16384):
        done = json.loads((runs / f"ratio{r}" / "done.json").read_text())
        assert done["measurements"] == 65536 // r and "test/attr_acc" in done["metrics"]
        assert "test/reconstruction/id_match" in done["metrics"]
    text = (docs / "results.md").read_text()
    assert make_table.SECTION_TITLE in text and mask_section.strip() in text
    assert text.index(make_table.SECTION_TITLE) < text.index("## Mask learning")
    assert "| 1:4096 | 16 |" in text and "| 1:16384 | 4 |" in text and "91.97%" in text  # ours and the paper's
    assert make_table.DISCUSSION_PLACEHOLDER in text and "n/a (not evaluated (--eval-dlib no))" in text
    for name in make_table.FIGURES.values():
        assert (docs / "figures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = json.loads((docs / "table1.json").read_text())
    assert len(table["ratios"]) == 2
    assert set(table["constant_predictor"]) == {"attr_acc", "seg_f1", "nme"}       # the floor row
    assert "| constant predictor | 0 |" in text

    # the lead writes the discussion; a rerun resumes every ratio and keeps it
    (docs / "results.md").write_text(text.replace(make_table.DISCUSSION_PLACEHOLDER, "Our discussion."))
    stamps = {p: p.stat().st_mtime_ns for p in runs.glob("ratio*/**/*.ckpt")}
    records = make_table.main(argv)
    assert all(r.get("skipped") for r in records)
    text = (docs / "results.md").read_text()
    assert "Our discussion." in text and make_table.DISCUSSION_PLACEHOLDER not in text and mask_section.strip() in text
    assert text.count(make_table.SECTION_TITLE) == 1

    # an interrupted ratio (no done-marker) is re-tested without retraining what is finished
    (runs / "ratio16384" / "done.json").unlink()
    records = make_table.main(argv)
    assert [bool(r.get("skipped")) for r in records] == [True, False]
    assert stamps == {p: p.stat().st_mtime_ns for p in runs.glob("ratio*/**/*.ckpt")}

    with pytest.raises(make_table.TableSettingsError, match="delete"):
        make_table.main(_argv(tmp_path, steps=3))


def test_pick_prefers_the_papers_ratios(make_table):
    assert make_table.pick([128, 256, 512, 2048, 8192], (256, 2048), 2) == [256, 2048]
    assert make_table.pick([4096, 16384], (512, 2048, 8192), 3) == [4096, 16384]
    assert make_table.pick([128, 512, 1024, 4096], (512,), 2) == [512, 1024]  # filled from the middle


def test_bad_ratio_is_refused(make_table):
    with pytest.raises(SystemExit):
        make_table.parse_args(["--ratios", "100"])


def test_energy_schedule_scales_with_steps(make_table, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"trainer": {"max_steps": 2500}, "model": {"init_args": {"energy_start_step": 1500}}}))
    assert make_table.scaled_schedule([cfg], 400) == ["--model.init_args.energy_start_step", "240"]
    assert make_table.scaled_schedule([cfg], 2500) == []


def test_metric_panels_put_ours_next_to_the_paper(make_table):
    records = [{"ratio": 512, "metrics": {"test/reconstruction/id_match": 0.455, "test/attr_acc": 0.9,
                                          "test/seg_f1": 0.6, "test/nme": 3.1, "test/reconstruction/psnr": 19.0}},
               {"ratio": 8192, "metrics": {"test/reconstruction/id_match": float("nan"), "test/attr_acc": 0.8}}]
    panels = make_table.metric_panels(records)
    identity = panels["identity match (%)"]
    assert identity["ours, embedded net"] == {512: pytest.approx(45.5), 8192: None}
    assert "ours, Dlib" not in identity                       # not evaluated -> no empty series
    assert identity["paper, VGGFace"][512] == 89.61 and identity["paper, DLib"][8192] is None
    assert panels["NME (x100)"]["ours"] == {512: 3.1, 8192: None} and panels["NME (x100)"]["paper"][16384] == 2.47
    assert panels["attribute accuracy (%)"]["ours"][8192] == pytest.approx(80.0)
    floored = make_table.metric_panels(records, {"attr_acc": 0.75, "nme": 7.0})
    assert floored["attribute accuracy (%)"]["constant predictor"] == {512: 75.0, 8192: 75.0}
    assert floored["NME (x100)"]["constant predictor"] == {512: 7.0, 8192: 7.0}
    assert "constant predictor" not in floored["segmentation F1 (%)"]
