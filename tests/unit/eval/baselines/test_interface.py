"""Every baseline behind the one interface: d readings through the measurement rule, images in [0, 1]."""

from __future__ import annotations

import pytest
import torch

from lsi.eval.baselines import BASELINES, BaselineError, build_baseline, pooled_patterns, upsample_nearest
from lsi.physics.operator import measure
from lsi.world.frozen import frozen_world


@pytest.mark.parametrize("name", BASELINES)
def test_every_baseline_reads_d_numbers_and_returns_an_image(name):
    gen = frozen_world().generator
    lsi_patterns = (torch.rand(16, 256, 256, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    method = build_baseline(name, 4096, generator=gen, lsi_patterns=lsi_patterns, steps=2) if name == "csgm" else \
        build_baseline(name, 4096, generator=gen, lsi_patterns=lsi_patterns)
    p = method.patterns()
    p = p.detach()
    assert p.shape == (16, 256, 256) and float(p.min()) >= 0 and float(p.max()) <= 1
    scene = torch.rand(2, 3, 256, 256, generator=torch.Generator().manual_seed(1))
    y = method.measure(scene)
    assert torch.allclose(y, measure(p, scene))
    rec = method.reconstruct(y)
    assert rec.shape == (2, method.channels, 256, 256)
    assert float(rec.min()) >= 0 and float(rec.max()) <= 1
    assert method.budget()["readings"] == 16


def test_nearest_upsampling_is_undone_by_area_pooling():
    img = torch.rand(2, 3, 64, 64)
    assert torch.allclose(torch.nn.functional.avg_pool2d(upsample_nearest(img, 256), 4), img, atol=1e-6)
    p = torch.rand(5, 256, 256)
    assert torch.allclose(measure(pooled_patterns(p, 64), img), measure(p, upsample_nearest(img, 256)), atol=1e-6)


def test_bad_requests_are_refused():
    with pytest.raises(BaselineError, match="unknown baseline"):
        build_baseline("spgl1", 256)
    with pytest.raises(BaselineError, match="divide"):
        build_baseline("hadamard", 300)
    with pytest.raises(BaselineError, match="generator"):
        build_baseline("csgm", 256)
    with pytest.raises(BaselineError, match="lsi_patterns"):
        build_baseline("lsi_ridge", 256, generator=frozen_world().generator)
    with pytest.raises(BaselineError, match="scenes must be"):
        build_baseline("hadamard", 4096).measure(torch.rand(1, 3, 64, 64))
