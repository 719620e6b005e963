"""Result figures (Figs. 4, 6, 7, 8) written as valid PNGs from small tensors; bad inputs rejected clearly."""

import numpy as np
import pytest
import torch
from PIL import Image

from lsi.report import figures as F

N = 2


def _data():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(N, 3, 32, 32, generator=g)
    landmarks = 0.2 + 0.6 * torch.rand(N, 68, 2, generator=g)
    seg = torch.randint(0, 19, (N, 32, 32), generator=g)
    return images, landmarks, seg


def _png(path) -> np.ndarray:
    with open(path, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def test_reconstruction_figure_grows_with_ratios(tmp_path):
    images, _, _ = _data()
    small = torch.nn.functional.interpolate(images, size=16, mode="area")
    one = _png(F.save_reconstruction_figure(images, {512: small}, tmp_path / "a.png"))
    three = _png(F.save_reconstruction_figure(images, {128: small, 512: small, 2048: small}, tmp_path / "b.png",
                                              inversions=small))
    assert three.shape[1] > one.shape[1] and three.shape[0] == one.shape[0]


def test_attribute_bars(tmp_path):
    truth = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    arr = _png(F.save_attribute_bars({256: torch.full((N, 3), 0.3), 2048: torch.full((N, 3), 0.8)}, truth,
                                     ["Male", "Young", "Smiling"], tmp_path / "bars.png"))
    assert arr.shape[0] > 100 and arr.std() > 0
    with pytest.raises(ValueError, match="sigmoid"):
        F.save_attribute_bars({256: torch.full((N, 3), 3.0)}, truth, ["a", "b", "c"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="one column per name"):
        F.save_attribute_bars({256: torch.zeros(N, 3)}, truth, ["a", "b"], tmp_path / "x.png")


def test_landmark_overlays_draw_both_point_sets(tmp_path):
    images, landmarks, _ = _data()
    arr = _png(F.save_landmark_overlays(torch.zeros_like(images), {512: landmarks + 0.02, 8192: landmarks},
                                        landmarks, tmp_path / "lmk.png"))
    r, g, b = (arr[..., i].astype(int) for i in range(3))
    assert ((r > 200) & (g < 80) & (b < 80)).sum() > 20      # red predictions
    assert ((g > 200) & (r < 80) & (b < 80)).sum() > 20      # green ground truth
    with pytest.raises(ValueError, match="match truth"):
        F.save_landmark_overlays(images, {512: landmarks[:, :5]}, landmarks, tmp_path / "x.png")


def test_segmentation_overlays_accept_coarser_maps(tmp_path):
    images, _, seg = _data()
    coarse = seg[:, ::4, ::4]
    arr = _png(F.save_segmentation_overlays(images, {512: coarse, 2048: seg}, seg, tmp_path / "seg.png"))
    assert arr.shape[0] > 100
    with pytest.raises(ValueError, match="outside"):
        F.save_segmentation_overlays(images, {512: seg + 19}, seg, tmp_path / "x.png")
    with pytest.raises(ValueError, match="samples first"):
        F.save_segmentation_overlays(images, {512: seg[:1]}, seg, tmp_path / "x.png")


def test_palette_and_labels():
    pal = F.segmentation_palette(19)
    assert pal.shape == (19, 3) and len({tuple(c) for c in pal}) == 19 and pal.min() >= 0 and pal.max() <= 1
    assert F.ratio_label(512) == "1:512" and F.ratio_label("G(E(I))") == "G(E(I))"


def test_bad_image_tensor(tmp_path):
    with pytest.raises(ValueError, match=r"\[N,3,H,W\]"):
        F.save_reconstruction_figure(torch.rand(3, 32, 32), {1: torch.rand(3, 8, 8)}, tmp_path / "x.png")


def test_metric_curves_draw_each_panel_and_reject_empty(tmp_path):
    panels = {"identity (%)": {"ours": {128: 40.0, 512: 30.0, 4096: None}, "paper VGGFace": {128: 92.0, 512: 89.6}},
              "NME": {"ours": {128: 3.0, 512: 3.5}}}
    one = _png(F.save_metric_curves({"NME": panels["NME"]}, tmp_path / "one.png"))
    two = _png(F.save_metric_curves(panels, tmp_path / "two.png"))
    assert two.shape[1] > one.shape[1] and two.std() > 0
    with pytest.raises(ValueError, match="at least one series"):
        F.save_metric_curves({"NME": {}}, tmp_path / "x.png")


def test_method_rows_figure_has_one_row_per_method(tmp_path):
    images, _, _ = _data()
    gray = images.mean(1, keepdim=True)
    two = _png(F.save_method_rows({"scene": images, "hadamard": gray}, tmp_path / "a.png"))
    four = _png(F.save_method_rows({"scene": images, "G(E(I))": images, "lsi": images, "dgi": gray},
                                   tmp_path / "b.png"))
    assert four.shape[0] > two.shape[0]
    with pytest.raises(ValueError, match="same 2 faces"):
        F.save_method_rows({"scene": images, "lsi": images[:1]}, tmp_path / "c.png")
