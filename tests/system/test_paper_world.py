"""The paper config end to end on a tiny paper-shaped world in the real formats (no download, CPU).

``tests/fixtures/make_paper_world.py`` writes weights/ffhq256.pkl (StyleGAN-XL layout), weights/encoder_styleganxl.pt
(pSp checkpoint), weights/model_ir_se50.pth (legacy torch format), weights/dino_vitbase8_pretrain.pth and
data/CelebAMask-HQ + data/FFHQ. The tests run inside that folder, so the paper config's own relative paths are the
ones read; tests/system/configs/paper_tiny_overrides.yaml only shrinks sizes and steps.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from lsi.cli.main import main
from lsi.models.imaging import load_lsi
from tests.fixtures.make_paper_world import TEST_SIZE, write_paper_world

REPO = Path(__file__).resolve().parents[2]
PAPER = REPO / "configs" / "experiment" / "paper_styleganxl_ffhq256.yaml"
PAPER_HEADS = REPO / "configs" / "experiment" / "paper_heads_styleganxl_ffhq256.yaml"
TINY = Path(__file__).parent / "configs" / "paper_tiny_overrides.yaml"

pytestmark = pytest.mark.slow  # ~4 min on 2 shared cores: pSp at 256 px, a 12-block DINO ViT, CLI round trips


@pytest.fixture(scope="module")
def paper_world(tmp_path_factory):
    return write_paper_world(tmp_path_factory.mktemp("paper_world"))


@pytest.fixture(scope="module")
def fitted(paper_world):
    root = paper_world["root"]
    cwd = Path.cwd()
    try:
        import os

        os.chdir(root)
        main(["fit", "-c", str(PAPER), "-c", str(TINY)])
    finally:
        os.chdir(cwd)
    return root / "runs" / "paper"


def test_fit_uses_the_paper_recipe_on_the_real_format_world(paper_world, fitted):
    report = json.loads((fitted / "metrics.json").read_text())
    assert report["steps"] == 2 and not report["cut_short"]
    m = report["metrics"]
    for name in ("train/lat", "train/pix", "train/id", "train/dino"):  # the paper's loss set, DINO included
        assert math.isfinite(m[name]) and m[name] > 0, name
    assert "train/lpips" not in m  # weight 0: not computed
    # total = lat + 0.5 id + 1 L2 + 0.1 DINO (the official weights), on the last step's logged values
    expected = m["train/lat"] + 0.5 * m["train/id"] + m["train/pix"] + 0.1 * m["train/dino"]
    assert m["train/total"] == pytest.approx(expected, rel=1e-5)
    ckpt = torch.load(fitted / "lsi.ckpt", map_location="cpu", weights_only=True)
    hp = ckpt["hyper_parameters"]
    assert hp["world"]["generator"] == "weights/ffhq256.pkl" and hp["mask_init"] == "uniform01"
    assert hp["mask_optimizer"] == "lion" and hp["image_loss_batch"] == 2
    assert ckpt["lsi"]["generator"] == "ffhq256.pkl"
    assert (ckpt["lsi"]["num_ws"], ckpt["lsi"]["w_dim"]) == (paper_world["num_ws"], paper_world["w_dim"])
    assert not any(k.startswith(("world", "dino", "generator")) for k in ckpt["state_dict"])  # frozen nets stay out


def test_test_and_predict_on_the_real_format_world(paper_world, fitted):
    import os

    cwd = Path.cwd()
    try:
        os.chdir(paper_world["root"])
        main(["test", "-c", str(PAPER), "-c", str(TINY), "--ckpt_path", "runs/paper/lsi.ckpt"])
        cli = main(["predict", "-c", str(PAPER), "-c", str(TINY), "--ckpt_path", "runs/paper/lsi.ckpt"])
        assert cli.trainer.predict_loop.batch_progress.total.completed == TEST_SIZE // 2  # the test split, batch 2
        module = load_lsi("runs/paper/lsi.ckpt")
        scene = torch.rand(2, 3, 256, 256)
        with torch.no_grad():
            out = module.predict_step({"image": scene}, 0)
    finally:
        os.chdir(cwd)
    test = json.loads((fitted / "metrics.json").read_text())["test"]
    m = test["metrics"]
    assert m["test/reconstruction/num_images"] == TEST_SIZE
    # ArcFace has no shipped threshold: calibrated at 1% FAR on the impostor pairs of the test originals
    assert m["test/reconstruction/id_threshold_pairs"] == TEST_SIZE * (TEST_SIZE - 1) / 2
    assert 0 <= m["test/reconstruction/id_match"] <= 1 and 0 < m["test/reconstruction/id_threshold"] < 2
    assert "calibrated" in test["notes"]["id_threshold"]
    for name in ("test/reconstruction/psnr", "test/reconstruction/fid", "test/floor/psnr", "test/ceiling/psnr"):
        assert math.isfinite(m[name]), name
    assert out["ws"].shape == (2, paper_world["num_ws"], paper_world["w_dim"])
    r = paper_world["img_resolution"]
    assert out["reconstruction"].shape == (2, 3, r, r)


def test_heads_on_the_real_format_world(paper_world, fitted):
    import os

    heads = ["-c", str(PAPER_HEADS), "--trainer.accelerator", "cpu", "--trainer.max_steps", "2",
             "--trainer.enable_progress_bar", "false", "--data.init_args.batch_size", "2",
             "--data.init_args.test_size", str(TEST_SIZE), "--data.init_args.num_workers", "0",
             "--model.init_args.eval_dlib", "false", "--model.init_args.vggface_weights", "null",
             "--model.init_args.inception_weights", "null"]
    cwd = Path.cwd()
    try:
        os.chdir(paper_world["root"])
        main(["fit", *heads])
        main(["test", *heads, "--ckpt_path", "runs/paper/heads/heads.ckpt"])
    finally:
        os.chdir(cwd)
    test = json.loads((paper_world["root"] / "runs/paper/heads/metrics.json").read_text())["test"]
    m = test["metrics"]
    assert 0 <= m["test/attr_acc"] <= 1
    # the human CelebAMask-HQ masks: both F1 conventions, the all-classes one counting absent classes as 0
    assert 0 <= m["test/seg_f1_all_classes"] <= m["test/seg_f1"] <= 1
    assert "celebamask" in test["notes"]["segmentation_gt"].lower()
    assert m.get("test/nme") is None  # no landmark ground truth in this tree: NaN, written as null
    assert 0 <= m["test/reconstruction/id_match"] <= 1  # the encoder's reconstructions, scored beside the heads
