"""ReconstructionMetrics values on a transparent stand-in encoder (moved from the heads' system tests)."""

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from lsi.eval.reconstruction import ReconstructionMetrics
from lsi.identity import IdentityNet

# ---- ReconstructionMetrics on a transparent stand-in encoder: G(L) = L = downscaled scene + offset -----------

class _Transparent:
    """Just enough of a LatentImagingModule: the 'latent' is the reconstruction itself."""

    def __init__(self, offset: float) -> None:
        self.offset = offset
        self.threshold = 0.3
        torch.manual_seed(0)
        self.world = SimpleNamespace(generator=SimpleNamespace(synthesis=lambda ws: ws),
                                     identity=IdentityNet().eval())

    def downscale(self, scene: torch.Tensor) -> torch.Tensor:
        return F.interpolate(scene * 2 - 1, size=(64, 64), mode="area")

    def __call__(self, scene: torch.Tensor) -> torch.Tensor:
        return self.downscale(scene) + self.offset


def _update(m: ReconstructionMetrics, stand_in: _Transparent, scenes: torch.Tensor) -> torch.Tensor:
    """One batch, fed as the LSI callers feed it: world, scenes, their latents and the identity threshold."""
    return m.update(stand_in.world, scenes, stand_in(scenes), stand_in.threshold)


def _scenes(n: int = 6) -> torch.Tensor:
    return 0.2 + 0.4 * torch.rand(n, 3, 256, 256, generator=torch.Generator().manual_seed(0))


def test_reconstruction_metrics_perfect():
    m = ReconstructionMetrics()
    for _ in range(2):
        _update(m, _Transparent(0.0), _scenes())
    out = m.compute()
    assert out["id_match"] == 1.0 and out["id_distance"] == pytest.approx(0.0, abs=1e-6)
    assert out["psnr"] == pytest.approx(100.0)  # MSE clamped at 1e-10
    assert out["num_images"] == 12
    assert abs(out["fid"]) < 1e-5  # identical feature sets


def test_reconstruction_metrics_known_offset():
    m = ReconstructionMetrics()
    _update(m, _Transparent(0.2), _scenes(12))  # error 0.1 in [0,1] units -> MSE 0.01 -> 20 dB
    out = m.compute()
    assert out["psnr"] == pytest.approx(20.0, abs=1e-3)
    assert out["fid"] > 1e-4  # shifted images: the feature distributions differ
    assert set(m.notes()) == {"fid_features", "dlib", "vggface"}
    without_fid = ReconstructionMetrics(fid=False)
    _update(without_fid, _Transparent(0.2), _scenes())
    assert "fid" not in without_fid.compute()
