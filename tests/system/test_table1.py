"""`make table` end to end on a tiny real run (two ratios, two steps each): outputs, resume, settings guard.

About 15 s on 2 cores: marked slow (`make test-full`)."""

import json
from pathlib import Path

import pytest
import yaml

from lsi.experiments import table1

ROOT = Path(__file__).resolve().parents[2]
TINY_SOURCE = {"batch_size": 4, "num_train_identities": 4, "images_per_identity": 2, "num_val_identities": 2,
               "num_test_identities": 2, "cache": False}


@pytest.fixture(scope="module")
def make_table():
    return table1


def _argv(tmp: Path, steps: int = 2) -> list[str]:
    trainer = {"accelerator": "cpu", "limit_val_batches": 1, "log_every_n_steps": 1}
    data = {"init_args": {"cache_dir": str(tmp / "cache"), "batch_size": 4, "progress": False,
                          "source": {"class_path": "datamodules.SyntheticFacesDataModule", "init_args": TINY_SOURCE}}}
    schedule = {"normaliser_scenes": 8, "chunk": 4}
    lsi_extra = {"trainer": trainer, "data": data,
                 "model": {"init_args": {"image_loss_batch": 2, "schedule": schedule,
                                         "digital": {"hidden": 32, "depths": [1, 1, 1], "linear_path": True}}}}
    heads_extra = {"trainer": trainer, "data": data}
    (tmp / "lsi_extra.yaml").write_text(yaml.safe_dump(lsi_extra))
    (tmp / "heads_extra.yaml").write_text(yaml.safe_dump(heads_extra))
    return ["--ratios", "4096", "16384", "--steps", str(steps), "--head-steps", "2", "--root", str(tmp / "runs"),
            "--lsi-config", str(ROOT / "configs/train_embedded.yaml"),
            "--heads-config", str(ROOT / "configs/heads_embedded.yaml"),
            "--lsi-extra", str(tmp / "lsi_extra.yaml"), "--heads-extra", str(tmp / "heads_extra.yaml"),
            "--eval-dlib", "no", "--results", str(tmp / "docs/results.md"), "--json", str(tmp / "docs/table1.json"),
            "--figures", str(tmp / "docs/figures"), "--figure-samples", "2"]


@pytest.mark.slow
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
