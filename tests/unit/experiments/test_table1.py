"""`make table`'s pieces without training: ratio picking, argument checks, the energy schedule, Table 1 as curves."""

import pytest
import yaml

from lsi.experiments import table1


@pytest.fixture(scope="module")
def make_table():
    return table1


def test_pick_prefers_the_papers_ratios(make_table):
    assert make_table.pick([128, 256, 512, 2048, 8192], (256, 2048), 2) == [256, 2048]
    assert make_table.pick([4096, 16384], (512, 2048, 8192), 3) == [4096, 16384]
    assert make_table.pick([128, 512, 1024, 4096], (512,), 2) == [512, 1024]  # filled from the middle


def test_bad_ratio_is_refused(make_table):
    with pytest.raises(SystemExit):
        make_table.parse_args(["--ratios", "100"])


def test_energy_schedule_scales_with_steps(make_table, tmp_path):
    cfg = tmp_path / "c.yaml"
    schedule = {"trainer": {"max_steps": 2500}, "model": {"init_args": {"energy_start_step": 1500}}}
    cfg.write_text(yaml.safe_dump(schedule))
    budget = ["--trainer.max_steps", "400", "--trainer.val_check_interval", "400"]
    assert make_table.scaled_schedule([cfg], 400) == [*budget, "--model.init_args.energy_start_step", "240"]
    assert make_table.scaled_schedule([cfg], None) == ["--trainer.max_steps", "2500", "--trainer.val_check_interval",
                                                       "2500"]
    # the staged recipe's phases keep their proportions and add up to the steps asked for
    staged = tmp_path / "s.yaml"
    staged.write_text(yaml.safe_dump({"trainer": {"max_steps": 2000}, "model": {"init_args": {
        "schedule": {"joint_steps": 600, "readout_steps": 1400, "image_steps": 0}}}}))
    out = make_table.scaled_schedule([staged], 400)
    phases = {k.rsplit(".", 1)[1]: v for k, v in zip(out[4::2], out[5::2])}
    assert phases == {"joint_steps": "120", "readout_steps": "280", "image_steps": "0"}


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


def test_build_datamodule_merges_the_data_sections(make_table, tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump({"data": {"class_path": "datamodules.SyntheticFacesDataModule",
                                             "init_args": {"batch_size": 32, "num_train_identities": 2000}}}))
    extra = tmp_path / "extra.yaml"
    extra.write_text(yaml.safe_dump({"trainer": {"max_steps": 2}, "data": {"init_args": {"batch_size": 4}}}))
    dm = make_table.build_datamodule([base, extra])
    assert type(dm).__name__ == "SyntheticFacesDataModule"
    assert dm.hparams.batch_size == 4 and dm.hparams.num_train_identities == 2000
    empty = tmp_path / "empty.yaml"
    empty.write_text("{}")
    with pytest.raises(ValueError, match="no data.class_path"):
        make_table.build_datamodule([empty])
