"""The unfolding net: shapes, quantisation levels, exact 64-px readings, training moves masks and lowers the loss."""

from __future__ import annotations

import pytest
import torch

from lsi.eval.baselines import BaselineError, TrainBudget, TrainingData, UnfoldingNet, build_baseline

D = 16


def _scenes(b: int = 2, size: int = 256) -> torch.Tensor:
    base = torch.rand(b, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    return torch.nn.functional.interpolate(base, size=(size, size), mode="bilinear", align_corners=False)


@pytest.mark.parametrize("bits, levels", [(1, 2), (8, 256)])
def test_quantisation_levels(bits, levels):
    net = UnfoldingNet(D, bits=bits, stages=1)
    with torch.no_grad():
        net.masks.copy_(torch.rand(D, 64, 64, generator=torch.Generator().manual_seed(0)))
    q = net.quantised_masks()
    assert q.unique().numel() == levels
    assert torch.allclose(q * (2 ** bits - 1), torch.round(q * (2 ** bits - 1)))
    assert net.name == f"unfolding_{bits}bit"


def test_shapes_and_range():
    net = UnfoldingNet(D, bits=1, stages=2)
    scene = _scenes()
    p = net.patterns()
    assert p.shape == (D, 256, 256) and set(p.unique().tolist()) <= {0.0, 1.0}
    y = net.measure(scene)
    assert y.shape == (2, D)
    assert net.unrolled(y).shape == (2, 3, 64, 64)
    rec = net.reconstruct(y)
    assert rec.shape == (2, 3, 256, 256) and float(rec.min()) >= 0 and float(rec.max()) <= 1


def test_hadamard_start_is_quantised_to_the_walsh_patterns():
    from lsi.physics.patterns import walsh_hadamard_2d

    for bits in (1, 8):
        assert torch.equal(UnfoldingNet(D, bits=bits, stages=1).quantised_masks(), walsh_hadamard_2d(D, 64))


def test_64px_readings_equal_the_full_resolution_measurement():
    net = UnfoldingNet(D, bits=8, stages=1, init="uniform")
    scene = _scenes()
    small = torch.nn.functional.avg_pool2d(scene, 4)
    assert torch.allclose(net.readings64(small), net.measure(scene), atol=1e-6)


def test_straight_through_gradient_reaches_the_masks():
    net = UnfoldingNet(D, bits=1, stages=1, init="uniform")
    small = torch.nn.functional.avg_pool2d(_scenes(), 4)
    loss = (net.unrolled(net.readings64(small)) - small).square().mean()
    loss.backward()
    assert net.masks.grad is not None and float(net.masks.grad.abs().sum()) > 0
    assert net.rho.grad is not None


def test_fit_lowers_the_loss_and_resumes(tmp_path):
    scenes = torch.nn.functional.avg_pool2d(_scenes(8), 4)
    data = TrainingData(scenes.half(), torch.arange(8))
    budget = TrainBudget(steps=6, batch_size=4, lr=3e-3, max_minutes=1, save_every=3)
    net = build_baseline("unfolding_8bit", ratio=4096, budget=budget, stages=1)
    info = net.fit(data, tmp_path, progress=False)
    assert info["steps"] == 6 and (tmp_path / "train.pt").is_file()
    assert float(net.masks.min()) >= 0 and float(net.masks.max()) <= 1              # projected into [0, 1]
    again = build_baseline("unfolding_8bit", ratio=4096, budget=budget, stages=1)
    assert again.fit(data, tmp_path, progress=False)["steps"] == 6                   # resumed: nothing left to do
    assert torch.equal(again.masks, net.masks)


def test_bad_settings_are_refused():
    with pytest.raises(BaselineError, match="bits"):
        UnfoldingNet(D, bits=0)
    with pytest.raises(BaselineError, match="init"):
        UnfoldingNet(D, init="random")
    with pytest.raises(BaselineError, match="multiple"):
        UnfoldingNet(D, grid=32)
