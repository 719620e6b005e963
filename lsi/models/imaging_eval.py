"""Validation, test and predict steps of :class:`lsi.models.imaging.LatentImagingModule` (a mixin).

``lsi test`` scores the test split four ways on the same scenes (:class:`lsi.eval.reconstruction.ReferenceComparison`):
the trained encoder (``test/id_match``, ``test/identification``, ``test/psnr``, ...), the floor — one constant
latent ``w_avg`` for every scene (``test/floor/*``), the ceiling — the inversion ``E(I)`` the encoder imitates
(``test/ceiling/*``) and, when the checkpoint carries it, the simple baseline — a closed-form ridge read-out of
the same readings (``test/ridge/*``). A result near the floor or below the baseline is a bug, not a number.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.utils import save_image

from lsi.eval.metrics import psnr
from lsi.eval.reconstruction import ReferenceComparison


class ImagingEvaluation:
    """Evaluation hooks; the host module provides ``latent_of``, ``world``, ``threshold``, ``downscale``,
    ``target_latent``, ``compute_losses``, ``reading_norm``, ``optical``, ``w_avg`` and ``ridge_baseline``."""

    _references: ReferenceComparison | None = None

    @torch.no_grad()
    def reconstruction_metrics(self, batch: dict) -> dict[str, torch.Tensor]:
        ws = self.latent_of(batch)
        world = self.world
        rec = world.generator.synthesis(ws).clamp(-1, 1)
        small = self.downscale(batch["image"])
        dist = 1 - F.cosine_similarity(world.identity(rec).float(), world.identity(small).float(), dim=1)
        out = {"psnr": psnr(rec.float(), small, data_range=2.0).mean(), "id_distance": dist.mean()}
        threshold = self.threshold
        if threshold is not None:  # None: calibrated over the whole test split by ReferenceComparison instead
            out["id_match"] = (dist <= threshold).float().mean()
        return out

    def _eval_step(self, batch: dict, stage: str) -> None:
        losses = self.compute_losses(batch)
        metrics = self.reconstruction_metrics(batch)
        bs = len(batch["image"])
        self.log_dict({f"{stage}/{k}": v for k, v in {**losses, **metrics}.items()}, batch_size=bs,
                      prog_bar=False, sync_dist=True)

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch, "val")
        if batch_idx == 0:
            self._save_grid(batch)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch, "test")
        self._update_references(batch)

    def on_test_epoch_start(self) -> None:
        names = ("lsi", "floor", "ceiling") + (("ridge",) if self.ridge_baseline is not None else ())
        object.__setattr__(self, "_references", ReferenceComparison(names))  # not a child: out of checkpoints

    @torch.no_grad()
    def _update_references(self, batch: dict) -> None:
        refs = self._references
        if refs is None:
            return
        scene = batch["image"]
        latents = {"lsi": self.latent_of(batch),
                   "floor": self.w_avg.expand(len(scene), *self.latent_shape).contiguous(),
                   "ceiling": self.target_latent(scene)}
        if self.ridge_baseline is not None:
            readings = batch.get("readings")
            y = readings if readings is not None else self.optical(scene)
            weight, bias = (t.to(y) for t in self.ridge_baseline)
            latents["ridge"] = (self.reading_norm(y) @ weight.T + bias).view_as(latents["lsi"]) + self.w_avg
        refs.update(self.world, scene, latents, self.threshold, batch.get("identity"))

    def on_test_epoch_end(self) -> None:
        if self._references is None:
            return
        for name, values in self._references.compute().items():
            prefix = "test/" if name == "lsi" else f"test/{name}/"
            # the test loop already logs the encoder's own id_match / psnr; the originals' identification is the
            # same for every name (what a perfect reconstruction scores): logged once
            keys = ("identification", "identification_originals") if name == "lsi" else (
                "id_match", "identification", "psnr")
            if name == "lsi" and self.threshold is None:  # calibrated threshold: the per-batch id_match is absent
                keys = (*keys, "id_match", "id_threshold", "id_threshold_pairs")
            for key in keys:
                if key in values:
                    self.log(prefix + key, values[key], sync_dist=False)
        object.__setattr__(self, "_references", None)

    def predict_step(self, batch: dict, batch_idx: int) -> dict[str, torch.Tensor]:
        ws = self.latent_of(batch)
        return {"ws": ws, "reconstruction": self.world.generator.synthesis(ws).clamp(-1, 1)}

    @torch.no_grad()
    def _save_grid(self, batch: dict, n: int = 8) -> None:
        """PNG grid, one row per sample: scene | G(E(I)) | LSI reconstruction."""
        if self.trainer is None or self.trainer.sanity_checking or not self.trainer.is_global_zero:
            return
        first = {k: v[:n] for k, v in batch.items() if k in ("image", "readings") and v is not None}
        scene, ws = first["image"], self.latent_of(first)
        g = self.world.generator
        cols = [self.downscale(scene), g.synthesis(self.target_latent(scene)).clamp(-1, 1),
                g.synthesis(ws).clamp(-1, 1)]
        grid = torch.stack(cols, dim=1).flatten(0, 1) * 0.5 + 0.5
        out = Path(self.trainer.default_root_dir) / "reconstructions"
        out.mkdir(parents=True, exist_ok=True)
        save_image(grid, out / f"step{self.global_step:06d}.png", nrow=3, padding=1)
        save_image(grid, Path(self.trainer.default_root_dir) / "reconstructions.png", nrow=3, padding=1)

