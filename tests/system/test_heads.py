"""Downstream heads through the `lsi` CLI (in-process, tiny configs): training alone or together, `lsi test`
with reconstruction metrics and metrics.json, and refusal of a foreign encoder."""

import json
import math
from pathlib import Path

import pytest
import torch
import yaml

from lsi.cli.main import main
from lsi.models.heads import load_heads
from lsi.models.imaging import load_lsi

CONFIGS = Path(__file__).parent / "configs"
REC = "test/reconstruction/"
HEAD_KEYS = {"attributes": "test/attr_acc", "segmentation": "test/seg_f1", "landmarks": "test/nme"}
PREFIX = {"attributes": "attr.", "segmentation": "seg.", "landmarks": "lmk."}
VARIANTS = {
    "lsi.models.heads.AttributeHead": ("attributes",),
    "lsi.models.heads.SegmentationHead": ("segmentation",),
    "lsi.models.heads.LandmarkHead": ("landmarks",),
    "lsi.models.heads.AllHeads": ("attributes", "segmentation", "landmarks"),
}


def heads_config(path: Path, lsi_ckpt: Path, class_path: str) -> Path:
    """The tiny heads scenario for ``class_path``, with the TestMetricsWriter callback."""
    cfg = yaml.safe_load((CONFIGS / "heads_tiny.yaml").read_text())
    cfg["model"] = {"class_path": class_path, "init_args": {"lsi_checkpoint": str(lsi_ckpt)}}
    cfg["trainer"]["callbacks"].append({"class_path": "lsi.models.callbacks.TestMetricsWriter"})
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def trained(lsi_ckpt, tmp_path_factory):
    """``trained(class_path) -> (config, run dir)``: each head variant fitted once per module."""
    runs: dict[str, tuple[Path, Path]] = {}

    def get(class_path: str) -> tuple[Path, Path]:
        if class_path not in runs:
            root = tmp_path_factory.mktemp(class_path.rsplit(".", 1)[1])
            cfg = heads_config(root / "heads.yaml", lsi_ckpt, class_path)
            main(["fit", "-c", str(cfg), "--trainer.default_root_dir", str(root)])
            runs[class_path] = (cfg, root)
        return runs[class_path]

    return get


def lsi_test(cfg: Path, root: Path, *extra: str) -> dict:
    main(["test", "-c", str(cfg), "--trainer.default_root_dir", str(root), "--ckpt_path", str(root / "heads.ckpt"),
          *extra])
    return json.loads((root / "metrics.json").read_text())


@pytest.mark.parametrize("class_path", list(VARIANTS))
def test_head_fit_then_test_writes_metrics(trained, lsi_ckpt, class_path):
    cfg, root = trained(class_path)
    heads = VARIANTS[class_path]
    ckpt = torch.load(root / "heads.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["lsi_fingerprint"] == load_lsi(str(lsi_ckpt)).encoder_fingerprint()
    assert ckpt["lsi_checkpoint"] == str(lsi_ckpt)
    # only the trained projectors are saved: no frozen G / E / identity net, no other head
    prefixes = {k.split(".")[0] + "." for k in ckpt["state_dict"]}
    assert prefixes == {PREFIX[h] for h in heads}

    report = lsi_test(cfg, root)["test"]
    metrics = report["metrics"]
    for head, key in HEAD_KEYS.items():
        if head in heads:
            assert key in metrics and math.isfinite(metrics[key]), key
        else:
            assert key not in metrics, key
    if "attributes" in heads:
        assert 0.0 <= metrics["test/attr_acc"] <= 1.0
    assert 0.0 <= metrics[REC + "id_match"] <= 1.0
    assert math.isfinite(metrics[REC + "psnr"]) and math.isfinite(metrics[REC + "fid"])
    assert metrics[REC + "num_images"] >= 2
    assert report["fingerprint"] == ckpt["lsi_fingerprint"] and report["checkpoint"] == str(root / "heads.ckpt")
    assert report["model"] == class_path


def test_test_time_options_are_not_taken_from_the_checkpoint(trained):
    cfg, root = trained("lsi.models.heads.AttributeHead")
    off = lsi_test(cfg, root, "--model.init_args.evaluate_reconstruction", "false")["test"]["metrics"]
    assert "test/attr_acc" in off and not any(k.startswith(REC) for k in off)
    on = lsi_test(cfg, root, "--model.init_args.eval_dlib", "true", "--model.init_args.fid", "false")["test"]
    assert 0.0 <= on["metrics"][REC + "dlib_no_face"] <= 1.0 and REC + "fid" not in on["metrics"]
    assert "dlib" not in on["notes"] and "vggface" in on["notes"]


def test_head_refuses_a_different_encoder(trained, lsi_ckpt, tmp_path):
    cfg, root = trained("lsi.models.heads.AllHeads")
    other = torch.load(lsi_ckpt, map_location="cpu", weights_only=True)
    key = next(k for k, v in other["state_dict"].items() if k.startswith("digital.") and v.is_floating_point())
    other["state_dict"][key] = other["state_dict"][key] + 0.01
    torch.save(other, tmp_path / "other.ckpt")
    with pytest.raises(ValueError, match="fingerprint"):
        main(["test", "-c", str(cfg), "--trainer.default_root_dir", str(tmp_path), "--ckpt_path",
              str(root / "heads.ckpt"), "--model.init_args.lsi_checkpoint", str(tmp_path / "other.ckpt")])
    with pytest.raises(ValueError, match="retrain the head"):
        load_heads(root / "heads.ckpt", str(tmp_path / "other.ckpt"))
    assert isinstance(load_heads(root / "heads.ckpt"), torch.nn.Module)  # its own encoder loads


def test_metrics_json_keeps_other_sections(trained):
    cfg, root = trained("lsi.models.heads.LandmarkHead")
    (root / "metrics.json").write_text(json.dumps({"fit": {"steps": 7}, "test": {"stale": True}}))
    data = lsi_test(cfg, root)
    assert data["fit"] == {"steps": 7}
    assert "stale" not in data["test"] and "test/nme" in data["test"]["metrics"]


def test_plain_lsi_test_writes_metrics_json(lsi_ckpt):
    root = lsi_ckpt.parent
    fit_report = json.loads((root / "metrics.json").read_text())
    main(["test", "-c", str(CONFIGS / "lsi_tiny.yaml"), "--trainer.default_root_dir", str(root),
          "--ckpt_path", str(lsi_ckpt), "--trainer.callbacks+=lsi.models.callbacks.ReconstructionEvaluation"])
    data = json.loads((root / "metrics.json").read_text())
    assert data["ratio"] == fit_report["ratio"] == 4096 and data["measurements"] == 16  # fit report kept
    metrics = data["test"]["metrics"]
    assert math.isfinite(metrics["test/psnr"]) and 0.0 <= metrics[REC + "id_match"] <= 1.0
    assert math.isfinite(metrics[REC + "fid"]) and data["test"]["ratio"] == 4096


def test_metrics_json_goes_next_to_the_checkpoint_by_default(trained, monkeypatch, tmp_path):
    cfg, root = trained("lsi.models.heads.AttributeHead")
    monkeypatch.chdir(tmp_path)
    (root / "metrics.json").unlink(missing_ok=True)
    main(["test", "-c", str(cfg), "--ckpt_path", str(root / "heads.ckpt")])
    assert "test/attr_acc" in json.loads((root / "metrics.json").read_text())["test"]["metrics"]
    assert not (tmp_path / "metrics.json").exists()
