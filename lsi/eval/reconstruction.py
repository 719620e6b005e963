"""Reconstruction quality of latents through a frozen world (the image columns of the paper's Table 1).

For every test batch the caller gives the scenes ``I [B,3,256,256]`` in [0,1], their latents
``L [B,num_ws,w_dim]`` (e.g. ``L = D_theta(O . I)``), the frozen world and the identity threshold;
``I' = G(L) [B,3,R,R]``. :class:`ReconstructionMetrics` accumulates, over the split:

* ``id_match`` — identity match rate of (I, I') pairs with the world's identity network at the given
  cosine-distance threshold (the embedded net: its shipped one, 1% false accepts on its validation identities);
  threshold ``None`` = calibrated here at 1% false accepts on the impostor pairs of the evaluated originals
  (:func:`lsi.eval.metrics.impostor_distances`; pairs of different people, or of different images when the
  identities are unknown), reported as ``id_threshold`` with ``id_threshold_pairs``;
* ``identification`` — top-1 identification of each reconstruction against a gallery of one original per test
  identity (:func:`lsi.eval.metrics.identification_top1`; needs the batches' ``identity``), with
  ``identification_originals``, the same for the originals themselves (what a perfect reconstruction scores);
* ``psnr`` — mean per-image PSNR (dB) of I' against I area-downscaled to G's resolution;
* ``fid`` — Fréchet distance between features of the scenes and of the reconstructions: Inception (the paper's
  FID) when ``inception_weights`` names torch-fidelity's local ``pt_inception-2015-12-05-6726825d.pth``, else the
  identity network's ``features()`` (the embedded world's documented FID; a note says which);
* optionally ``dlib_*`` (``eval_dlib=True``) and ``vggface_*`` (``vggface_weights`` set): identity match with
  dlib's ResNet descriptor (cosine <= 0.07) / DeepFace VGG-Face (cosine <= 0.68) on I and I' upsampled to I's
  size, in both conventions: ``*_id_match`` counts a pair in which no face is detected as a failure,
  ``*_id_match_detected`` leaves it out of the denominator (DeepFace.verify semantics, the paper's numbers);
  ``*_no_face`` is their share and ``*_no_face_count`` their number.

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
from lsi.eval.metrics import (
    FID,
    IdentityMatchRate,
    first_of_each_identity,
    identification_top1,
    impostor_distances,
    psnr,
    threshold_at_far,
)
from lsi.world.frozen import downscale_scene


class ReconstructionMetrics(nn.Module):
    """Accumulator of reconstruction metrics; ``update(world, scene, latent, threshold)`` then ``compute()``.

    Args:
        fid: compute the embedded FID (identity-net features).
        eval_dlib: also measure dlib identity match (needs ``dlib`` + ``face_recognition_models``).
        vggface_weights: file/folder of DeepFace VGG-Face weights; None skips VGG-Face.
        dlib_upsample: dlib detector upsampling steps (1 finds faces down to ~40 px).
        inception_weights: torch-fidelity's Inception file for the paper's FID; None = identity-net features.
        far: false-accept rate of a calibrated identity threshold (threshold None at ``update``).
    """

    def __init__(self, fid: bool = True, eval_dlib: bool = False, vggface_weights: str | None = None,
                 dlib_upsample: int = 1, inception_weights: str | None = None, far: float = 0.01) -> None:
        super().__init__()
        self.inception_weights, self.far = inception_weights, far
        self._calibrate: dict[str, list[torch.Tensor]] | None = None  # threshold None: pairs kept for compute()
        self._threshold_note = ""
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
            if self.inception_weights:
                self.fid = FID(2048, weights_path=self.inception_weights, normalize=True).to(device)
            else:
                dim = getattr(identity, "embed_dim", None) or identity.cfg.emb_dim
                self.fid = FID(feature=self._fid_features, num_features=dim, normalize=True).to(device)

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
    def update(self, world: Any, scene: torch.Tensor, latent: torch.Tensor, threshold: float | None,
               identity: torch.Tensor | None = None) -> torch.Tensor:
        """Add one batch: ``scene [B,3,H,W]`` in [0,1], ``latent [B,num_ws,w_dim]``, ``world`` with ``.generator``
        and ``.identity``, ``threshold`` the identity net's cosine-distance threshold (None: calibrated in
        :meth:`compute`), ``identity [B]`` the people (for identification; None skips it). Returns the
        reconstruction ``[B,3,R,R]`` in [0,1]."""
        rec = world.generator.synthesis(latent).float().clamp(-1, 1)       # [B,3,R,R] in [-1,1]
        small = downscale_scene(scene, rec.shape[-1])                      # [B,3,R,R] in [-1,1]
        self.psnr.update(psnr(rec, small, data_range=2.0))
        emb_orig, emb_rec = world.identity(small).float(), world.identity(rec).float()
        if threshold is None:
            keep = self._calibrate if self._calibrate is not None else {"orig": [], "rec": [], "ids": []}
            keep["orig"].append(emb_orig.cpu())
            keep["rec"].append(emb_rec.cpu())
            if identity is not None:
                keep["ids"].append(torch.as_tensor(identity).cpu())
            self._calibrate = keep
        else:
            self.embedded.threshold = float(threshold)
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

    def _calibrated_match(self) -> dict[str, float]:
        """Identity match at the threshold with ``far`` false accepts on the originals' impostor pairs."""
        keep = self._calibrate or {"orig": [], "rec": [], "ids": []}
        orig, rec = torch.cat(keep["orig"]), torch.cat(keep["rec"])
        ids = torch.cat(keep["ids"]) if len(keep["ids"]) == len(keep["orig"]) and keep["ids"] else None
        if ids is not None and bool((ids < 0).all()):
            ids = None  # no identity known: every pair of different images is an impostor pair
        impostor = impostor_distances(orig, ids)
        genuine = 1.0 - torch.nn.functional.cosine_similarity(orig.double(), rec.double(), dim=1)
        out = {"id_distance": float(genuine.mean()), "id_threshold_pairs": float(len(impostor))}
        if len(impostor) == 0:
            out.update(id_match=float("nan"), id_threshold=float("nan"))
            self._threshold_note = "no impostor pairs (fewer than two different originals): id_match undefined"
            return out
        # genuine left out: the threshold depends on the originals only, never on the reconstructions it scores
        threshold = threshold_at_far(torch.empty(0), impostor, self.far)
        out.update(id_match=float((genuine <= threshold).double().mean()), id_threshold=threshold)
        self._threshold_note = (f"identity threshold calibrated at {self.far:.0%} false accepts on {len(impostor)} "
                                f"impostor pairs of the evaluated originals: {threshold:.4f}")
        return out

    def compute(self) -> dict[str, float]:
        """Scalars: ``id_match``, ``id_distance``, ``psnr``, ``fid`` and the optional ``dlib_*`` / ``vggface_*``."""
        out: dict[str, float] = {}
        if self._calibrate is not None:
            out.update(self._calibrated_match())
            n_images = float(sum(len(t) for t in self._calibrate["orig"]))
        else:
            emb = self.embedded.compute()
            out["id_match"] = float(emb["match_rate"])
            out["id_distance"] = float(emb["mean_distance"])
            n_images = float(emb["n"])
        out["psnr"] = float(self.psnr.compute())
        if self.fid is not None:
            out["fid"] = float(self.fid.compute()) if int(self.fid.fake_features_num_samples) >= 2 else float("nan")
        for name, metric in (("dlib", self.dlib), ("vggface", self.vggface)):
            if metric is not None:
                res = metric.compute()
                out[f"{name}_id_match"] = float(res["match_rate"])
                out[f"{name}_id_match_detected"] = float(res["match_rate_detected"])
                out[f"{name}_no_face"] = float(res["no_face_rate"])
                out[f"{name}_no_face_count"] = float(res["no_face"])
                out[f"{name}_distance"] = float(res["mean_distance"])
        if self._ident["ids"]:
            ids = torch.cat(self._ident["ids"])
            orig, rec = torch.cat(self._ident["orig"]), torch.cat(self._ident["rec"])
            gallery = first_of_each_identity(ids)
            out["identification"] = identification_top1(orig[gallery], ids[gallery], rec[~gallery], ids[~gallery])
            out["identification_originals"] = identification_top1(orig[gallery], ids[gallery], orig[~gallery],
                                                                  ids[~gallery])
        out["num_images"] = n_images
        return out

    def notes(self) -> dict[str, str]:
        """Why optional metrics are missing (for ``metrics.json`` and the results table)."""
        notes = {"fid_features": "Inception (torch-fidelity weights)" if self.inception_weights else
                 "identity network features() (not Inception; set inception_weights for the paper's FID)"}
        if self.dlib is not None or self.vggface is not None:
            notes["face_match_conventions"] = ("*_id_match counts pairs without a detected face as failures; "
                                               "*_id_match_detected leaves them out of the denominator "
                                               "(DeepFace.verify, the paper's numbers); *_no_face_count counts them")
        if self._threshold_note:
            notes["id_threshold"] = self._threshold_note
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
        self._calibrate, self._threshold_note = None, ""


class ReferenceComparison(nn.Module):
    """The same test scenes reconstructed from several latents side by side — the method, its floor (a constant
    latent), its ceiling (the inversion E(I)) and a simple baseline (a ridge read-out) — one
    :class:`ReconstructionMetrics` (identity match, identification, PSNR; no FID) per name."""

    def __init__(self, names: tuple[str, ...]) -> None:
        super().__init__()
        self.names = tuple(names)
        self.metrics = nn.ModuleDict({n: ReconstructionMetrics(fid=False) for n in self.names})

    @torch.no_grad()
    def update(self, world: Any, scene: torch.Tensor, latents: dict[str, torch.Tensor], threshold: float | None,
               identity: torch.Tensor | None = None) -> None:
        """``latents``: ``{name: [B, num_ws, w_dim]}`` for (a subset of) the names."""
        for name, latent in latents.items():
            self.metrics[name].update(world, scene, latent, threshold, identity)

    def compute(self) -> dict[str, dict[str, float]]:
        return {n: m.compute() for n, m in self.metrics.items()
                if m.embedded.total > 0 or m._calibrate is not None}
