"""The training losses of :class:`lsi.models.imaging.LatentImagingModule` (a mixin), on any frozen world.

Per batch: ``L = D_theta(O . I) + w_avg [B,num_ws,w_dim]`` against ``E(I)`` (absolute W+, :meth:`FrozenWorld.invert`):

* ``lat`` - L1(L, E(I)) (paper Eq. 3); ``wnorm`` - mean ||L - w_avg||;
* image losses on the first ``image_loss_batch`` samples (the paper recipe: the whole batch), with
  ``I' = G(L) [k,3,R,R]`` in [-1,1] and the scene area-downscaled to G's resolution R (:func:`downscale_scene`):
  ``pix`` = MSE (the official L2), ``id`` = mean(1 - cos) of the world's identity embeddings (ArcFace IR-SE50 on the
  paper's world: pSp's ID loss), ``dino`` = :class:`lsi.world.perceptual.DinoFeatureLoss` (the official definition,
  summed over the batch), ``lpips`` = the configured perceptual distance;
* ``energy`` - the masks' energy-efficiency loss (simulated data only).

``total`` = sum of ``lambda_<name> * loss`` over the weighted ones (:meth:`ImagingLosses.loss_weights`); a loss whose
weight is 0 is not computed at all. The host provides ``hparams``, ``world``, ``latent_of``, ``w_avg``,
``optical``, ``perceptual`` and ``global_step``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lsi.world.frozen import downscale_scene

IMAGE_LOSSES = ("pix", "id", "dino", "lpips")


class ImagingLosses:
    """Loss terms of the LSI module (module docstring)."""

    _target_cache: dict[int, torch.Tensor]

    def loss_weights(self) -> dict[str, float]:
        hp = self.hparams
        return {"lat": hp.lambda_lat, "pix": hp.lambda_pix, "id": hp.lambda_id, "lpips": hp.lambda_lpips,
                "dino": hp.lambda_dino, "wnorm": hp.lambda_wnorm, "energy": hp.lambda_energy}

    def weighted_total(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        weights = self.loss_weights()
        return sum(weights[n] * v for n, v in losses.items() if weights.get(n, 0) > 0)

    @torch.no_grad()
    def target_latent(self, scene: torch.Tensor) -> torch.Tensor:
        """E(I) as absolute W+ ``[B, num_ws, w_dim]`` of scenes ``[B,3,H,W]`` in [0,1]."""
        return self.world.invert(scene * 2 - 1)

    def downscale(self, scene: torch.Tensor) -> torch.Tensor:
        """Scene ``[B,3,H,W]`` in [0,1] -> ``[B,3,R,R]`` in [-1,1] at G's resolution."""
        return downscale_scene(scene, self.world.generator.img_resolution)

    def cached_target_latent(self, scene: torch.Tensor, index: torch.Tensor | None) -> torch.Tensor:
        """E(I), served from the per-index cache during training when enabled."""
        if index is None or not (self.training and self.hparams.cache_targets):
            return self.target_latent(scene)
        keys = index.tolist()
        missing = [i for i, k in enumerate(keys) if k not in self._target_cache]
        if missing:
            fresh = self.target_latent(scene[missing]).cpu()
            for i, lat in zip(missing, fresh):
                self._target_cache[keys[i]] = lat
        return torch.stack([self._target_cache[k] for k in keys]).to(scene.device)

    def compute_losses(self, batch: dict, index: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Weighted losses of a batch (``total`` among them); ``index`` enables the E(I) cache (training)."""
        hp = self.hparams
        scene, measured = batch["image"], batch.get("readings") is not None
        ws = self.latent_of(batch)
        target = self.cached_target_latent(scene, index)
        losses = {"lat": F.l1_loss(ws, target.to(ws.dtype)), "wnorm": (ws - self.w_avg).norm(dim=2).mean()}
        k = min(hp.image_loss_batch, scene.shape[0])
        if k > 0:
            losses.update(self.image_losses(ws[:k], scene[:k]))
        if not measured and hp.lambda_energy > 0 and self.global_step >= hp.energy_start_step:
            losses["energy"] = self.optical.energy_loss(*hp.energy_range)
        losses["total"] = self.weighted_total(losses)
        return losses

    def image_losses(self, ws: torch.Tensor, scene: torch.Tensor) -> dict[str, torch.Tensor]:
        """The weighted image losses of ``G(ws)`` against ``scene [k,3,H,W]`` in [0,1] at G's resolution."""
        weights = self.loss_weights()
        if not any(weights[n] > 0 for n in IMAGE_LOSSES):
            return {}
        world = self.world
        rec = world.generator.synthesis(ws)          # [k,3,R,R] in [-1,1]
        small = self.downscale(scene).to(rec.dtype)  # [k,3,R,R] in [-1,1]
        out: dict[str, torch.Tensor] = {}
        if weights["pix"] > 0:
            out["pix"] = F.mse_loss(rec, small)
        if weights["id"] > 0:
            out["id"] = (1 - F.cosine_similarity(world.identity(rec), world.identity(small), dim=1)).mean()
        if weights["dino"] > 0:
            if world.dino_loss is None:
                raise ValueError("lambda_dino > 0 needs the DINO ViT-B/8 weights: set model.init_args.world.dino "
                                 "(e.g. weights/dino_vitbase8_pretrain.pth, docs/reproduce-paper.md)")
            out["dino"] = world.dino_loss(rec, small)
        if weights["lpips"] > 0 and self.perceptual is not None:
            out["lpips"] = self.perceptual(rec, small).mean()
        return out
