"""Differential ghost imaging on a known scene; the cell size chosen on training scenes."""

from __future__ import annotations

import pytest
import torch

from lsi.eval.baselines import BaselineError, GhostImaging, TrainingData
from lsi.eval.baselines.ghost import dgi_estimate
from lsi.eval.metrics import psnr


def _known_scene(grid: int = 32, cell: int = 4) -> torch.Tensor:
    """A bright square on a gradient, constant on ``cell``-sized blocks: ``[1, 3, grid, grid]``."""
    side = grid // cell
    img = torch.linspace(0.2, 0.4, side)[None, :].expand(side, side).clone()
    img[2:5, 3:6] = 0.9
    full = img.repeat_interleave(cell, 0).repeat_interleave(cell, 1)
    return full[None, None].expand(1, 3, -1, -1).contiguous()


def test_dgi_recovers_a_known_scene_from_many_readings():
    scene = _known_scene()
    method = GhostImaging(20000, grid=32, cell=4, seed=3)
    rec = method(scene)
    assert rec.shape == (1, 1, 32, 32)
    cells = dgi_estimate(method.measure(scene).double(), method.cell_masks)   # the 8x8 cell image
    truth = scene[0, 0, ::4, ::4].double()
    assert float(psnr(cells, truth[None])) > 25
    assert float((cells[0, 2:5, 3:6].mean() - 0.9).abs()) < 0.05


def test_dgi_expectation_is_calibrated():
    """Averaged over mask draws, the estimate equals the cell image (q(1-q)/M scaling and <y>/<S> offset)."""
    scene = _known_scene(16, 4)
    truth = scene[0, 0, ::4, ::4].double()
    estimates = [dgi_estimate(GhostImaging(4000, 16, cell=4, seed=s).measure(scene).double(),
                              GhostImaging(4000, 16, cell=4, seed=s).cell_masks) for s in range(8)]
    mean = torch.stack(estimates).mean(0)[0]
    assert float((mean - truth).abs().max()) < 0.05


def test_fewer_readings_are_noisier():
    scene = _known_scene()
    truth = scene[:, 0, ::4, ::4].double()

    def cell_psnr(d: int) -> float:
        method = GhostImaging(d, 32, cell=4)
        return float(psnr(dgi_estimate(method.measure(scene).double(), method.cell_masks), truth))

    assert cell_psnr(20000) > cell_psnr(200) + 10                            # SNR grows as sqrt(d / M)


def test_fit_chooses_the_best_cell_on_training_scenes(tmp_path):
    g = torch.Generator().manual_seed(0)
    smooth = torch.nn.functional.interpolate(torch.rand(12, 3, 4, 4, generator=g), size=(64, 64), mode="bilinear")
    data = TrainingData(smooth.half(), torch.arange(12))
    method = GhostImaging(64, grid=64, cell=4)
    info = method.fit(data, tmp_path, progress=False)
    assert set(info["selection_psnr"]) == {4, 8, 16, 32, 64}
    assert info["cell"] == max(info["selection_psnr"], key=info["selection_psnr"].get) == method.cell
    assert method.patterns().shape == (64, 64, 64)
    restored = GhostImaging(64, grid=64, cell=4)
    restored.load_state_dict(method.state_dict())
    assert restored.cell == method.cell and torch.equal(restored.patterns(), method.patterns())


def test_bad_cell_is_refused():
    with pytest.raises(BaselineError, match="cell size"):
        GhostImaging(16, 32, cell=5)
