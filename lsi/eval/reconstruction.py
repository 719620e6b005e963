"""Reconstruction quality of latents through a frozen world (the image columns of the paper's Table 1).

For every test batch the caller gives the scenes ``I [B,3,256,256]`` in [0,1], their latents
``L [B,num_ws,w_dim]`` (e.g. ``L = D_theta(O . I)``), the frozen world and the identity threshold;
``I' = G(L) [B,3,R,R]``. :class:`ReconstructionMetrics` accumulates, over the split:

* ``id_match`` — identity match rate of (I, I') pairs with the world's identity network at the given
  cosine-distance threshold (for LSI: the one with 1% false accepts on the validation split);
* ``identification`` — top-1 identification of each reconstruction against a gallery of one original per test
  identity (:func:`lsi.eval.metrics.identification_top1`; needs the batches' ``identity``), with
  ``identification_originals``, the same for the originals themselves (what a perfect reconstruction scores);
* ``psnr`` — mean per-image PSNR (dB) of I' against I area-downscaled to G's resolution;
* ``fid`` — Fréchet distance between the embedded identity network's ``features()`` of the scenes and of the
  reconstructions (the embedded world's documented FID feature extractor; real-image FID needs Inception);
* optionally ``dlib_*`` (``eval_dlib=True``) and ``vggface_*`` (``vggface_weights`` set): identity match with
  dlib's ResNet descriptor (cosine <= 0.07) / DeepFace VGG-Face (cosine <= 0.68) on I and I' upsampled to I's
  size. Images without a detected face count as failures; their share is reported as ``*_no_face``.

Nothing here knows the LightningModules: ``lsi.models.callbacks.ReconstructionEvaluation`` feeds this from
``lsi test``, and the downstream heads feed it themselves.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric

from lsi.eval.face_recognition.descriptors import DlibFaceDescriptor, VggFaceEmbedder
from lsi.eval.metrics import FID, IdentityMatchRate, first_of_each_identity, identification_top1, psnr
from lsi.world.frozen import downscale_scene


class ReconstructionMetrics(nn.Module):
    """Accumulator of reconstruction metrics; ``update(world, scene, latent, threshold)`` then ``compute()``.

    Args:
        fid: compute the embedded FID (identity-net features).
        eval_dlib: also measure dlib identity match (needs ``dlib`` + ``face_recognition_models``).
        vggface_weights: file/folder of DeepFace VGG-Face weights; None skips VGG-Face.
        dlib_upsample: dlib detector upsampling steps (1 finds faces down to ~40 px).
    """

    def __init__(self, fid: bool = True, eval_dlib: bool = False, vggface_weights: str | None = None,
                 dlib_upsample: int = 1) -> None:
        super().__init__()
        self.embedded = IdentityMatchRate(threshold=0.0)  # threshold given at each update
        self.psnr = MeanMetric()
        self.use_fid, self.eval_dlib, self.vggface_weights = fid, eval_dlib, vggface_weights
        self.fid: FID | None = None
        self.dlib = IdentityMatchRate.dlib() if eval_dlib else None
        self.vggface = IdentityMatchRate.vggface() if vggface_weights else None
        self._frozen: list[nn.Module] = []  # the shared identity net, kept out of this module's children
        self._dlib_embedder: Any = None
        self._vgg_embedder: Any = None
        self.dlib_upsample = dlib_upsample
        self._ident: dict[str, list[torch.Tensor]] = {"orig": [], "rec": [], "ids": []}

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
            self._dlib_embedder = DlibFaceDescriptor(upsample=self.dlib_upsample)
        return self._dlib_embedder

    def _vgg_model(self, device: torch.device) -> Any:
        if self._vgg_embedder is None:
            self._vgg_embedder = VggFaceEmbedder(self.vggface_weights, device=str(device),
                                                 upsample=self.dlib_upsample)
        return self._vgg_embedder

    # -- accumulation ------------------------------------------------------------------------------
    @torch.no_grad()
    def update(self, world: Any, scene: torch.Tensor, latent: torch.Tensor, threshold: float,
               identity: torch.Tensor | None = None) -> torch.Tensor:
        """Add one batch: ``scene [B,3,H,W]`` in [0,1], ``latent [B,num_ws,w_dim]``, ``world`` with ``.generator``
        and ``.identity``, ``threshold`` the identity net's cosine-distance threshold, ``identity [B]`` the people
        (for identification; None skips it). Returns the reconstruction ``[B,3,R,R]`` in [0,1]."""
        rec = world.generator.synthesis(latent).clamp(-1, 1)                # [B,3,R,R] in [-1,1]
        small = downscale_scene(scene, rec.shape[-1])                      # [B,3,R,R] in [-1,1]
        self.psnr.update(psnr(rec, small, data_range=2.0))
        self.embedded.threshold = float(threshold)
        emb_orig, emb_rec = world.identity(small), world.identity(rec)
        self.embedded.update(emb_orig, emb_rec)
        if identity is not None:
            self._ident["orig"].append(emb_orig.cpu())
            self._ident["rec"].append(emb_rec.cpu())
            self._ident["ids"].append(torch.as_tensor(identity).cpu())
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
        if self._ident["ids"]:
            ids = torch.cat(self._ident["ids"])
            orig, rec = torch.cat(self._ident["orig"]), torch.cat(self._ident["rec"])
            gallery = first_of_each_identity(ids)
            out["identification"] = identification_top1(orig[gallery], ids[gallery], rec[~gallery], ids[~gallery])
            out["identification_originals"] = identification_top1(orig[gallery], ids[gallery], orig[~gallery],
                                                                  ids[~gallery])
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
        self._ident = {"orig": [], "rec": [], "ids": []}


class ReferenceComparison(nn.Module):
    """The same test scenes reconstructed from several latents side by side — the method, its floor (a constant
    latent), its ceiling (the inversion E(I)) and a simple baseline (a ridge read-out) — one
    :class:`ReconstructionMetrics` (identity match, identification, PSNR; no FID) per name."""

    def __init__(self, names: tuple[str, ...]) -> None:
        super().__init__()
        self.names = tuple(names)
        self.metrics = nn.ModuleDict({n: ReconstructionMetrics(fid=False) for n in self.names})

    @torch.no_grad()
    def update(self, world: Any, scene: torch.Tensor, latents: dict[str, torch.Tensor], threshold: float,
               identity: torch.Tensor | None = None) -> None:
        """``latents``: ``{name: [B, num_ws, w_dim]}`` for (a subset of) the names."""
        for name, latent in latents.items():
            self.metrics[name].update(world, scene, latent, threshold, identity)

    def compute(self) -> dict[str, dict[str, float]]:
        return {n: m.compute() for n, m in self.metrics.items() if m.embedded.total > 0}
