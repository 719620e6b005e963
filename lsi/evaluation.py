"""Reconstruction quality of a trained LSI encoder on a test split (the image columns of the paper's Table 1).

For every test batch the scene ``I [B,3,256,256]`` in [0,1] is encoded to ``L = D_theta(O . I)`` and
reconstructed as ``I' = G(L) [B,3,R,R]``. :class:`ReconstructionMetrics` accumulates, over the split:

* ``id_match`` — identity match rate of (I, I') pairs with the embedded identity network at the cosine-distance
  threshold that gives 1% false accepts on the validation split (``LatentImagingModule.threshold``);
* ``psnr`` — mean per-image PSNR (dB) of I' against I area-downscaled to G's resolution;
* ``fid`` — Fréchet distance between the embedded identity network's ``features()`` of the scenes and of the
  reconstructions (the embedded world's documented FID feature extractor; real-image FID needs Inception);
* optionally ``dlib_*`` (``eval_dlib=True``) and ``vggface_*`` (``vggface_weights`` set): identity match with
  dlib's ResNet descriptor (cosine <= 0.07) / DeepFace VGG-Face (cosine <= 0.68) on I and I' upsampled to I's
  size. Images without a detected face count as failures; their share is reported as ``*_no_face``.

:class:`ReconstructionEvaluation` is the same as a Lightning callback for ``lsi test`` on any module that is a
``LatentImagingModule`` or holds one as ``.lsi`` (the downstream heads evaluate it themselves).
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric

from lsi.metrics import FID, IdentityMatchRate

PREFIX = "test/reconstruction/"


class ReconstructionMetrics(nn.Module):
    """Accumulator of reconstruction metrics; ``update(lsi, batch[, latent])`` then ``compute()``.

    Args:
        fid: compute the embedded FID (identity-net features).
        eval_dlib: also measure dlib identity match (needs ``dlib`` + ``face_recognition_models``).
        vggface_weights: file/folder of DeepFace VGG-Face weights; None skips VGG-Face.
        dlib_upsample: dlib detector upsampling steps (1 finds faces down to ~40 px).
    """

    def __init__(self, fid: bool = True, eval_dlib: bool = False, vggface_weights: str | None = None,
                 dlib_upsample: int = 1) -> None:
        super().__init__()
        self.embedded = IdentityMatchRate(threshold=0.0)  # threshold set from the LSI module at each update
        self.psnr = MeanMetric()
        self.use_fid, self.eval_dlib, self.vggface_weights = fid, eval_dlib, vggface_weights
        self.fid: FID | None = None
        self.dlib = IdentityMatchRate.dlib() if eval_dlib else None
        self.vggface = IdentityMatchRate.vggface() if vggface_weights else None
        self._frozen: list[nn.Module] = []  # the shared identity net, kept out of this module's children
        self._dlib_embedder: Any = None
        self._vgg_embedder: Any = None
        self.dlib_upsample = dlib_upsample

    # -- lazily built extractors -------------------------------------------------------------------
    def _fid_features(self, images: torch.Tensor) -> torch.Tensor:
        """Images ``[B,3,H,W]`` in [0,1] -> identity-net features ``[B,E]`` (FID feature extractor)."""
        return self._frozen[0].features(images * 2 - 1)

    def _ensure_fid(self, identity: nn.Module, device: torch.device) -> None:
        self._frozen[:] = [identity]
        if self.use_fid and self.fid is None:
            self.fid = FID(feature=self._fid_features, num_features=identity.cfg.emb_dim, normalize=True).to(device)

    def _dlib_model(self) -> Any:
        if self._dlib_embedder is None:
            from lsi.facetools.identity import DlibFaceDescriptor

            self._dlib_embedder = DlibFaceDescriptor(upsample=self.dlib_upsample)
        return self._dlib_embedder

    def _vgg_model(self, device: torch.device) -> Any:
        if self._vgg_embedder is None:
            from lsi.facetools.identity import VggFaceEmbedder

            self._vgg_embedder = VggFaceEmbedder(self.vggface_weights, device=str(device),
                                                 upsample=self.dlib_upsample)
        return self._vgg_embedder

    # -- accumulation ------------------------------------------------------------------------------
    @torch.no_grad()
    def update(self, lsi: Any, batch: dict, latent: torch.Tensor | None = None) -> torch.Tensor:
        """Add one batch; ``lsi`` is a ``LatentImagingModule``. Returns the reconstruction ``[B,3,R,R]`` in [0,1]."""
        scene = batch["image"]
        if latent is None:
            readings = batch.get("readings")
            latent = lsi.encode_readings(readings) if readings is not None else lsi(scene)
        world = lsi.world
        rec = world.generator.synthesis(latent).clamp(-1, 1)                # [B,3,R,R] in [-1,1]
        small = lsi.downscale(scene)                                       # [B,3,R,R] in [-1,1]
        mse = ((rec - small) / 2).square().flatten(1).mean(1)
        self.psnr.update(10 * torch.log10(1 / mse.clamp_min(1e-10)))
        self.embedded.threshold = float(lsi.threshold)
        self.embedded.update(world.identity(small), world.identity(rec))
        rec01 = rec * 0.5 + 0.5
        self._ensure_fid(world.identity, rec.device)
        if self.fid is not None:
            self.fid.update(scene, real=True)
            self.fid.update(rec01, real=False)
        if self.dlib is not None or self.vggface is not None:
            big = F.interpolate(rec01, size=scene.shape[-2:], mode="bilinear", align_corners=False).clamp(0, 1)
            if self.dlib is not None:
                self._update_face_metric(self.dlib, self._dlib_model(), scene, big)
            if self.vggface is not None:
                self._update_face_metric(self.vggface, self._vgg_model(rec.device), scene, big)
        return rec01

    @staticmethod
    def _update_face_metric(metric: IdentityMatchRate, embedder: Any, scene: torch.Tensor,
                            rec: torch.Tensor) -> None:
        emb_a, found_a = embedder.batch(scene.cpu())
        emb_b, found_b = embedder.batch(rec.cpu())
        metric.update(emb_a, emb_b, valid=found_a & found_b)

    def compute(self) -> dict[str, float]:
        """Scalars: ``id_match``, ``id_distance``, ``psnr``, ``fid`` and the optional ``dlib_*`` / ``vggface_*``."""
        out: dict[str, float] = {}
        emb = self.embedded.compute()
        out["id_match"] = float(emb["match_rate"])
        out["id_distance"] = float(emb["mean_distance"])
        out["psnr"] = float(self.psnr.compute())
        if self.fid is not None:
            out["fid"] = float(self.fid.compute()) if int(self.fid.fake_features_num_samples) >= 2 else float("nan")
        for name, metric in (("dlib", self.dlib), ("vggface", self.vggface)):
            if metric is not None:
                res = metric.compute()
                out[f"{name}_id_match"] = float(res["match_rate"])
                out[f"{name}_no_face"] = float(res["no_face_rate"])
                out[f"{name}_distance"] = float(res["mean_distance"])
        out["num_images"] = float(emb["n"])
        return out

    def notes(self) -> dict[str, str]:
        """Why optional metrics are missing (for ``metrics.json`` and the results table)."""
        notes = {"fid_features": "embedded identity network features() (not Inception)"}
        if self.dlib is None:
            notes["dlib"] = "not evaluated (eval_dlib is false)"
        if self.vggface is None:
            notes["vggface"] = "not evaluated (no vggface_weights given)"
        return notes

    def reset(self) -> None:
        for m in (self.embedded, self.psnr, self.fid, self.dlib, self.vggface):
            if m is not None:
                m.reset()


def find_lsi(module: L.LightningModule) -> Any:
    """The ``LatentImagingModule`` of ``module``: itself, or its ``.lsi`` (downstream heads)."""
    from lsi.module import LatentImagingModule

    if isinstance(module, LatentImagingModule):
        return module
    lsi = getattr(module, "lsi", None)
    if isinstance(lsi, LatentImagingModule):
        return lsi
    raise ValueError(f"{type(module).__name__} is neither a LatentImagingModule nor holds one as `.lsi`; "
                     "ReconstructionEvaluation only evaluates LSI encoders and their heads")


class ReconstructionEvaluation(L.Callback):
    """``lsi test`` callback: logs ``test/reconstruction/<metric>`` (see :class:`ReconstructionMetrics`)."""

    def __init__(self, fid: bool = True, eval_dlib: bool = False, vggface_weights: str | None = None) -> None:
        self.fid, self.eval_dlib, self.vggface_weights = fid, eval_dlib, vggface_weights
        self.metrics: ReconstructionMetrics | None = None
        self.test_notes: dict[str, str] = {}

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        find_lsi(pl_module)  # fail early on modules without an LSI encoder
        # heads evaluate their encoder themselves (model.init_args.evaluate_reconstruction): do not do it twice
        own = bool(getattr(pl_module, "evaluate_reconstruction", False))
        self.metrics = None if own else ReconstructionMetrics(self.fid, self.eval_dlib,
                                                              self.vggface_weights).to(pl_module.device)

    def on_test_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                          batch_idx: int, dataloader_idx: int = 0) -> None:
        if self.metrics is not None:
            self.metrics.update(find_lsi(pl_module), batch)

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.metrics is not None:
            log_reconstruction(pl_module, self.metrics)
            self.test_notes = self.metrics.notes()


def log_reconstruction(module: L.LightningModule, metrics: ReconstructionMetrics) -> dict[str, float]:
    """Log ``metrics.compute()`` as ``test/reconstruction/<name>`` on ``module`` and return the values."""
    values = metrics.compute()
    for name, value in values.items():
        module.log(PREFIX + name, value, sync_dist=False)
    return values
