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


def test_threshold_none_is_calibrated_on_the_originals():
    """ArcFace worlds: 1% FAR on the impostor pairs of the evaluated originals, never on the reconstructions."""
    scenes = torch.rand(8, 3, 256, 256, generator=torch.Generator().manual_seed(1))
    stand_in = _Transparent(0.0)
    m = ReconstructionMetrics(fid=False)
    m.update(stand_in.world, scenes, stand_in(scenes), None)
    out = m.compute()
    assert out["id_threshold_pairs"] == 8 * 7 / 2 and out["num_images"] == 8
    assert out["id_match"] == 1.0  # perfect reconstructions (distance 0) are below any impostor pair
    with torch.no_grad():
        emb = stand_in.world.identity(stand_in.downscale(scenes))
    impostor = 1 - (emb @ emb.T)[torch.triu_indices(8, 8, 1).unbind()]
    assert 0 < out["id_threshold"] < impostor.double().min().item() + 1e-9  # 1% of 28 pairs: none may pass
    assert "calibrated" in m.notes()["id_threshold"]
    shifted = ReconstructionMetrics(fid=False)
    shifted.update(stand_in.world, scenes, _Transparent(0.3)(scenes), None)
    assert shifted.compute()["id_threshold"] == pytest.approx(out["id_threshold"])  # reconstructions play no part
