"""Image-reconstruction quality of any method on the test split: the columns of Table 2.

:class:`ComparisonMetrics` takes, batch by batch, the scenes ``[B, 3, H, W]`` in [0, 1], a method's
reconstructions ``[B, C, H', W']`` in [0, 1] (``C = 1``: gray, compared as gray replicated to three channels;
``H'`` = the scene's size or G's 64 px) and the scenes' identity labels, and reports over the split:

* ``id_match`` - share of (scene, reconstruction) pairs the embedded identity network accepts at the given
  cosine-distance threshold (its 1% false-accept threshold); both images at 64 px, the net's working resolution
  (area-downscaled); ``id_distance`` - their mean cosine distance;
* ``identification`` - top-1 identification of the reconstructions against a gallery of the *original* first
  scene of each identity (:func:`lsi.eval.metrics.first_of_each_identity`; probes: the other scenes);
* ``psnr`` / ``ssim`` at 64 px (G's resolution; ``psnr`` is this one) and ``psnr_256`` / ``ssim_256`` at the
  scene's resolution (64-px reconstructions nearest-upsampled);
* ``fid`` - Fréchet distance of the identity network's ``features()`` of scenes and reconstructions, as
  :mod:`lsi.eval.reconstruction` computes it for ``lsi test`` (not Inception: not comparable with the paper's);
* ``lpips`` - mean LPIPS at 64 px when an LPIPS module is given (images in [-1, 1]).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lsi.eval.metrics import FID, IdentityMatchRate, first_of_each_identity, identification_top1, psnr, ssim

__all__ = ["ComparisonMetrics", "as_rgb"]


def as_rgb(images: Tensor) -> Tensor:
    """``[B, 1 or 3, H, W] -> [B, 3, H, W]`` (gray replicated)."""
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be [B, 1 or 3, H, W], got {tuple(images.shape)}")
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


def _resize(images: Tensor, size: int) -> Tensor:
    if images.shape[-1] == size:
        return images
    if images.shape[-1] > size:
        return F.interpolate(images, size=(size, size), mode="area")
    return images.repeat_interleave(size // images.shape[-1], -2).repeat_interleave(size // images.shape[-1], -1)


class ComparisonMetrics:
    """Accumulator of the Table-2 columns for one method; ``update(scene, rec, identities)`` then ``compute()``."""

    def __init__(self, identity: nn.Module, threshold: float, resolution: int = 64, fid: bool = True,
                 lpips: nn.Module | None = None) -> None:
        self.identity, self.resolution, self.lpips = identity, int(resolution), lpips
        self.match = IdentityMatchRate(threshold=float(threshold))
        self.fid = FID(feature=self._features, num_features=identity.cfg.emb_dim, normalize=True) if fid else None
        self._emb_scene: list[Tensor] = []
        self._emb_rec: list[Tensor] = []
        self._ids: list[Tensor] = []
        self._per_image: dict[str, list[Tensor]] = {k: [] for k in ("psnr", "ssim", "psnr_256", "ssim_256", "lpips")}

    def _features(self, images: Tensor) -> Tensor:
        return self.identity.features(images * 2 - 1)

    @torch.no_grad()
    def update(self, scene: Tensor, reconstruction: Tensor, identities: Tensor) -> None:
        """``scene [B, 3, H, W]``, ``reconstruction [B, 1|3, H' , W']`` (both in [0, 1]), ``identities [B]``."""
        rec = as_rgb(reconstruction).float().clamp(0, 1)
        if scene.ndim != 4 or scene.shape[1] != 3 or len(rec) != len(scene) or len(identities) != len(scene):
            raise ValueError(f"need scenes [B, 3, H, W], reconstructions [B, C, H', W'] and identities [B] of one B; "
                             f"got {tuple(scene.shape)}, {tuple(reconstruction.shape)}, {tuple(identities.shape)}")
        r = self.resolution
        scene_r, rec_r = _resize(scene, r), _resize(rec, r)                            # [B, 3, 64, 64]
        rec_full = _resize(rec, scene.shape[-1])                                       # [B, 3, H, W]
        emb_s, emb_r = self.identity(scene_r * 2 - 1), self.identity(rec_r * 2 - 1)
        self.match.update(emb_s, emb_r)
        self._emb_scene.append(emb_s.cpu())
        self._emb_rec.append(emb_r.cpu())
        self._ids.append(identities.cpu())
        self._per_image["psnr"].append(psnr(rec_r, scene_r).cpu())
        self._per_image["ssim"].append(ssim(rec_r, scene_r).cpu())
        self._per_image["psnr_256"].append(psnr(rec_full, scene).cpu())
        self._per_image["ssim_256"].append(ssim(rec_full, scene).cpu())
        if self.lpips is not None:
            self._per_image["lpips"].append(self.lpips(rec_r * 2 - 1, scene_r * 2 - 1).flatten().cpu())
        if self.fid is not None:
            self.fid.update(scene, real=True)
            self.fid.update(rec_r, real=False)

    def compute(self) -> dict[str, float]:
        if not self._ids:
            raise ValueError("ComparisonMetrics.compute() before any update()")
        out: dict[str, float] = {}
        match = self.match.compute()
        out["id_match"] = float(match["match_rate"])
        out["id_distance"] = float(match["mean_distance"])
        ids = torch.cat(self._ids)
        first = first_of_each_identity(ids)
        out["identification"] = identification_top1(torch.cat(self._emb_scene)[first], ids[first],
                                                    torch.cat(self._emb_rec)[~first], ids[~first])
        for key, values in self._per_image.items():
            if values:
                out[key] = float(torch.cat(values).double().mean())
        if self.fid is not None:
            out["fid"] = float(self.fid.compute()) if int(self.fid.fake_features_num_samples) >= 2 else float("nan")
        out["num_images"] = float(len(ids))
        return out
