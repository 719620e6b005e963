"""``LatentImagingModule``: masks O and digital encoder D_theta trained together against E(I).

Per batch (scenes ``x [B,3,256,256]`` in [0,1]):
``y = O(x) [B,d]`` -> ``L = D_theta(y) + w_avg [B,num_ws,w_dim]`` -> ``I' = G(L) [B,3,R,R]`` in [-1,1].
Losses: latent L1 to ``E(x)``, pixel L2 and identity loss on a sub-batch through G, optional LPIPS,
w-norm and the masks' energy-efficiency loss. G, E and the identity net are frozen and shared
(:mod:`lsi.world.frozen`); the checkpoint holds only masks, D_theta, ``w_avg`` and the full config.

:meth:`LatentImagingModule.latent_of` is the one place that decides where a batch's latent comes from (measured
readings when the batch has them, else the simulated O); :func:`load_lsi` loads a trained encoder, frozen.
"""

from __future__ import annotations

import contextvars
import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.utils import save_image

from lsi.eval.metrics import psnr
from lsi.models.checkpoints import loadable_checkpoint
from lsi.models.digital_encoder import DigitalEncoder
from lsi.physics.noise import NoiseModel
from lsi.physics.operator import OpticalEncoder
from lsi.world.embedded import load_meta
from lsi.world.frozen import downscale_scene, frozen_world
from lsi.world.perceptual import build_perceptual


class LatentImagingModule(L.LightningModule):
    """Joint training of the optical encoder O and the digital encoder D_theta.

    Args:
        ratio: compression ratio (d = 65536 / ratio masks on the 256x256 DMD grid).
        bits: mask bit depth (1 = binary DMD).
        mask_init: ``uniform`` | ``random_binary`` | ``hadamard``.
        masks_path: optional ``masks.npy`` to start from; ``freeze_masks`` keeps them fixed.
        mask_dropout / input_dropout: dropout on readings / scene pixels during training.
        noise: keyword arguments of :class:`lsi.physics.noise.NoiseModel` (physics-aware training); None = noiseless.
        complementary: measure mask and inverse mask (2d readings).
        digital: keyword arguments of :class:`lsi.models.digital_encoder.DigitalEncoder` (hidden, depths, block, ...).
        generator / weights_dir: which frozen world to use (``embedded`` ships with the package).
        lambda_*: loss weights; ``energy_range`` (a, b) in percent, active from ``energy_start_step``.
        image_loss_batch: how many samples per batch go through G for the pixel/identity/perceptual losses.
        perceptual: ``lpips`` (needs ``lpips_backbone_path``) or ``identity-features`` (offline, embedded).
        id_threshold: cosine-distance threshold of the identity match rate; None = the identity net's 1% FAR.
        lr_masks / lr_encoder: learning rates of the two parameter groups.
        cache_targets: remember E(I) per training-sample index (E is frozen and deterministic, so this is exact
            and saves most of E's cost after the first epoch).
        init_from: an ``lsi.ckpt`` whose masks, reading normaliser and D_theta start this run (fine-tuning on
            measured readings: combine with ``freeze_masks``); loaded with ``weights_only=True``.
    """

    def __init__(
        self,
        ratio: int = 512,
        bits: int = 1,
        mask_init: str = "uniform",
        masks_path: str | None = None,
        freeze_masks: bool = False,
        mask_dropout: float = 0.0,
        input_dropout: float = 0.0,
        noise: dict[str, Any] | None = None,
        complementary: bool = False,
        digital: dict[str, Any] | None = None,
        generator: str = "embedded",
        weights_dir: str | None = None,
        lambda_lat: float = 1.0,
        lambda_pix: float = 1.0,
        lambda_id: float = 0.5,
        lambda_lpips: float = 0.0,
        lambda_wnorm: float = 0.0,
        lambda_energy: float = 0.0,
        energy_range: tuple[float, float] = (20.0, 80.0),
        energy_start_step: int = 0,
        image_loss_batch: int = 8,
        perceptual: str = "identity-features",
        lpips_backbone_path: str | None = None,
        id_threshold: float | None = None,
        lr_masks: float = 1e-4,
        lr_encoder: float = 1e-4,
        cache_targets: bool = True,
        init_from: str | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        world = frozen_world(generator, weights_dir)
        g = world.generator
        self.optical = OpticalEncoder(
            ratio=ratio, bits=bits, init=mask_init, mask_dropout=mask_dropout, input_dropout=input_dropout,
            noise=NoiseModel(**noise) if noise else None, complementary=complementary, seed=seed)
        if masks_path:
            self.optical.load_masks_into(masks_path, freeze=freeze_masks)
        elif freeze_masks:
            self.optical.freeze(True)
        d_in = self.optical.num_readings
        # Readings are tiny differences on a large mean; standardise each one with running statistics
        # before D_theta (its first LayerNorm would otherwise discard absolute brightness).
        self.reading_norm = nn.BatchNorm1d(d_in, affine=False, momentum=0.01)
        self.digital = DigitalEncoder(d_in=d_in, num_ws=g.num_ws, w_dim=g.w_dim, **(digital or {}))
        self.register_buffer("w_avg", g.w_avg.detach().clone())
        self.perceptual = build_perceptual(perceptual, lpips_backbone_path) if lambda_lpips > 0 else None
        self.id_threshold = id_threshold
        self._target_cache: dict[int, torch.Tensor] = {}
        if init_from:
            self._init_from_checkpoint(init_from, freeze_masks)

    def _init_from_checkpoint(self, path: str, freeze_masks: bool) -> None:
        if not Path(path).is_file():
            raise FileNotFoundError(f"init_from checkpoint {path!r} not found; train one with `make train RATIO=N`")
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        self.on_load_checkpoint(ckpt)  # same ratio/bits checks as a resume
        try:
            self.load_state_dict(ckpt["state_dict"])
        except RuntimeError as err:
            raise ValueError(f"{path} does not match this model's D_theta configuration ({err}); use the same "
                             "model.init_args.digital settings as the run that produced it") from err
        self.optical.freeze(freeze_masks)

    # -- frozen world ------------------------------------------------------------------------
    @property
    def world(self):
        return frozen_world(self.hparams.generator, self.hparams.weights_dir, self.w_avg.device)

    @property
    def threshold(self) -> float:
        if self.id_threshold is None:
            meta = load_meta("identity", None if not self.hparams.weights_dir
                             else Path(self.hparams.weights_dir) / "embedded_identity.pt")
            if "far1_threshold" not in meta:
                raise ValueError("identity weights carry no 'far1_threshold'; set model.id_threshold or run "
                                 "`make eval-embedded` to calibrate it")
            self.id_threshold = float(meta["far1_threshold"])
        return self.id_threshold

    # -- forward -----------------------------------------------------------------------------
    def encode_readings(self, y: torch.Tensor) -> torch.Tensor:
        """Readings ``[B, d]`` -> W+ latent ``[B, num_ws, w_dim]`` (O bypassed: used for measured data)."""
        return self.digital(self.reading_norm(y)) + self.w_avg

    def forward(self, scene: torch.Tensor) -> torch.Tensor:
        """Scene ``[B,3,256,256]`` in [0,1] -> W+ latent ``[B, num_ws, w_dim]``."""
        return self.encode_readings(self.optical(scene))

    def latent_of(self, batch: dict) -> torch.Tensor:
        """L ``[B, num_ws, w_dim]`` of a batch: from its ``readings`` when it has them (measured data, O bypassed),
        else from its scenes ``image`` through the simulated O."""
        readings = batch.get("readings")
        return self.encode_readings(readings) if readings is not None else self(batch["image"])

    @torch.no_grad()
    def target_latent(self, scene: torch.Tensor) -> torch.Tensor:
        """E(I) as W+ ``[B, num_ws, w_dim]``."""
        return self.world.encoder(scene * 2 - 1) + self.w_avg

    def downscale(self, scene: torch.Tensor) -> torch.Tensor:
        """Scene ``[B,3,H,W]`` in [0,1] -> ``[B,3,R,R]`` in [-1,1] at G's resolution."""
        return downscale_scene(scene, self.world.generator.img_resolution)

    # -- losses ------------------------------------------------------------------------------
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
        losses = {"lat": F.l1_loss(ws, target), "wnorm": (ws - self.w_avg).norm(dim=2).mean()}
        k = min(hp.image_loss_batch, scene.shape[0])
        if k > 0 and (hp.lambda_pix > 0 or hp.lambda_id > 0 or hp.lambda_lpips > 0):
            world = self.world
            rec = world.generator.synthesis(ws[:k])
            small = self.downscale(scene[:k])
            losses["pix"] = F.mse_loss(rec, small)
            losses["id"] = (1 - F.cosine_similarity(world.identity(rec), world.identity(small), dim=1)).mean()
            if self.perceptual is not None:
                losses["lpips"] = self.perceptual(rec, small).mean()
        if not measured and hp.lambda_energy > 0 and self.global_step >= hp.energy_start_step:
            losses["energy"] = self.optical.energy_loss(*hp.energy_range)
        weights = {"lat": hp.lambda_lat, "pix": hp.lambda_pix, "id": hp.lambda_id, "lpips": hp.lambda_lpips,
                   "wnorm": hp.lambda_wnorm, "energy": hp.lambda_energy}
        losses["total"] = sum(weights[n] * v for n, v in losses.items() if weights.get(n, 0) > 0)
        return losses

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        losses = self.compute_losses(batch, batch.get("index"))
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, prog_bar=False, batch_size=len(batch["image"]))
        self.log("loss", losses["total"], prog_bar=True, logger=False, batch_size=len(batch["image"]))
        return losses["total"]

    # -- evaluation --------------------------------------------------------------------------
    @torch.no_grad()
    def reconstruction_metrics(self, batch: dict) -> dict[str, torch.Tensor]:
        ws = self.latent_of(batch)
        world = self.world
        rec = world.generator.synthesis(ws).clamp(-1, 1)
        small = self.downscale(batch["image"])
        dist = 1 - F.cosine_similarity(world.identity(rec), world.identity(small), dim=1)
        return {"psnr": psnr(rec, small, data_range=2.0).mean(),
                "id_match": (dist <= self.threshold).float().mean(),
                "id_distance": dist.mean()}

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

    # -- optimisation and checkpoints --------------------------------------------------------
    def configure_optimizers(self) -> torch.optim.Optimizer:
        groups = [{"params": list(self.digital.parameters()), "lr": self.hparams.lr_encoder, "name": "encoder"}]
        if self.optical.masks.requires_grad:
            groups.append({"params": [self.optical.masks], "lr": self.hparams.lr_masks, "name": "masks"})
        return torch.optim.Adam(groups)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        # Project the latent masks back into [0, 1]: outside it the straight-through gradient is zero and a
        # pixel pushed past a bound by momentum would never move again.
        with torch.no_grad():
            self.optical.masks.clamp_(0.0, 1.0)

    def masks_sha256(self) -> str:
        return hashlib.sha256(self.optical.mask_codes().tobytes()).hexdigest()

    def encoder_fingerprint(self) -> str:
        """sha256 over the trained state (mask codes, reading normaliser, D_theta, w_avg): heads record it."""
        h = hashlib.sha256(self.optical.mask_codes().tobytes())
        for name, t in sorted(self.state_dict().items()):
            if not name.startswith("optical."):
                h.update(name.encode())
                h.update(t.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        g = self.world.generator
        checkpoint["lsi"] = {"ratio": self.optical.ratio, "bits": self.optical.bits, "d": self.optical.d,
                             "num_readings": self.optical.num_readings, "num_ws": g.num_ws, "w_dim": g.w_dim,
                             "generator": self.hparams.generator, "masks_sha256": self.masks_sha256()}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        meta = checkpoint.get("lsi")
        if meta is None:
            raise ValueError("this checkpoint was not written by LatentImagingModule (no 'lsi' section)")
        if meta["d"] != self.optical.d or meta["bits"] != self.optical.bits:
            raise ValueError(
                f"checkpoint is for ratio {meta['ratio']} ({meta['d']} masks, {meta['bits']} bit) but the model is "
                f"configured for ratio {self.optical.ratio} ({self.optical.d} masks, {self.optical.bits} bit); "
                f"pass --model.ratio {meta['ratio']} or the matching config")


def load_lsi(path: str) -> LatentImagingModule:
    """The frozen LSI encoder (O + D_theta) of a checkpoint, loaded with ``weights_only=True``, in eval mode.

    Cached per (path, modification time), so a checkpoint rewritten in place is reloaded.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"LSI checkpoint {path!r} not found; train one with `make train RATIO=N` "
                                "and pass its lsi.ckpt as model.init_args.lsi_checkpoint")
    return _load_lsi(str(p.resolve()), p.stat().st_mtime_ns)


@lru_cache(maxsize=2)
def _load_lsi(path: str, mtime_ns: int) -> LatentImagingModule:
    # Heads are built inside LightningCLI's instantiation context, whose "given hyperparameters" would leak
    # into the nested LatentImagingModule.save_hyperparameters(); load it in a fresh context instead.
    # init_from=None: the checkpoint already holds the trained state; its starting point need not exist any more
    module = contextvars.Context().run(
        LatentImagingModule.load_from_checkpoint, loadable_checkpoint(path), map_location="cpu", weights_only=True,
        init_from=None)
    module.eval().requires_grad_(False)
    return module
