"""Table 2's columns from a method's reconstructions: identity match, identification, PSNR/SSIM at two sizes, FID."""

from __future__ import annotations

import pytest
import torch

from lsi.eval.comparison import ComparisonMetrics, as_rgb
from lsi.world.frozen import frozen_world


@pytest.fixture(scope="module")
def scenes():
    g = torch.Generator().manual_seed(0)
    base = torch.rand(6, 3, 8, 8, generator=g)
    return torch.nn.functional.interpolate(base, size=(256, 256), mode="bilinear", align_corners=False)


def test_the_scene_itself_is_perfect(scenes):
    m = ComparisonMetrics(frozen_world().identity, threshold=0.4)
    ids = torch.tensor([0, 0, 1, 1, 2, 2])
    m.update(scenes[:4], scenes[:4], ids[:4])
    m.update(scenes[4:], scenes[4:], ids[4:])
    out = m.compute()
    assert out["id_match"] == 1.0 and out["id_distance"] == pytest.approx(0.0, abs=1e-6)
    assert out["psnr"] == pytest.approx(100.0) and out["ssim"] == pytest.approx(1.0, abs=1e-4)
    assert out["psnr_256"] == pytest.approx(100.0) and out["num_images"] == 6
    assert 0.0 <= out["identification"] <= 1.0 and "fid" in out and "lpips" not in out


def test_64px_reconstructions_are_scored_like_their_nearest_upsampling(scenes):
    identity = frozen_world().identity
    small = torch.nn.functional.interpolate(scenes, size=(64, 64), mode="area").flip(-1)
    big = small.repeat_interleave(4, -2).repeat_interleave(4, -1)
    ids = torch.arange(6)
    a, b = ComparisonMetrics(identity, 0.4, fid=False), ComparisonMetrics(identity, 0.4, fid=False)
    a.update(scenes, small, ids)
    b.update(scenes, big, ids)
    ra, rb = a.compute(), b.compute()
    for key in ("id_match", "psnr", "ssim", "psnr_256", "ssim_256"):
        assert ra[key] == pytest.approx(rb[key], abs=1e-4)


def test_gray_is_replicated_and_lpips_used_when_given(scenes):
    gray = scenes.mean(1, keepdim=True)
    assert torch.equal(as_rgb(gray)[:, 2], gray[:, 0])

    def fake_lpips(a, b):  # mean absolute difference: a stand-in distance
        return (a - b).abs().flatten(1).mean(1)

    m = ComparisonMetrics(frozen_world().identity, 0.4, fid=False, lpips=fake_lpips)
    m.update(scenes, gray, torch.arange(6))
    out = m.compute()
    assert out["lpips"] > 0 and out["psnr"] < 100


def test_mismatched_batches_are_refused(scenes):
    m = ComparisonMetrics(frozen_world().identity, 0.4, fid=False)
    with pytest.raises(ValueError, match="one B"):
        m.update(scenes, scenes[:2], torch.arange(6))
    with pytest.raises(ValueError, match="before any update"):
        m.compute()
