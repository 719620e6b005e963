"""``LatentImagingModule``: masks O and digital encoder D_theta trained together against E(I).

Per batch (scenes ``x [B,3,256,256]`` in [0,1]):
``y = O(x) [B,d]`` -> ``L = D_theta(y) + w_avg [B,num_ws,w_dim]`` -> ``I' = G(L) [B,3,R,R]`` in [-1,1].
Losses (:mod:`lsi.models.imaging_losses`): latent L1 to ``E(x)``, pixel L2, identity, DINO and LPIPS losses on a
sub-batch through G, w-norm and the masks' energy-efficiency loss. G, E, the identity net and the DINO ViT form the
frozen world chosen by ``world`` (:class:`lsi.world.spec.WorldSpec`; the embedded one by default), shared per
process (:mod:`lsi.world.frozen`); the checkpoint holds only masks, D_theta, ``w_avg`` and the full config.
The optical measurement and the reading normaliser always run in fp32 (also under ``bf16-mixed``).

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

from lsi.eval.linear_readout import fit_ridge
from lsi.models.checkpoints import loadable_checkpoint
from lsi.models.ensemble import build_digital_encoder
from lsi.models.imaging_eval import ImagingEvaluation
from lsi.models.imaging_losses import ImagingLosses
from lsi.models.optim import GroupwiseOptimizer
from lsi.models.reading_normaliser import ReadingNormaliser
from lsi.models.staged import StagedRecipe, TrainingSchedule
from lsi.physics.noise import NoiseModel
from lsi.physics.operator import OpticalEncoder
from lsi.world.frozen import FrozenWorld, frozen_world
from lsi.world.perceptual import build_perceptual
from lsi.world.spec import WorldSpec


class LatentImagingModule(ImagingLosses, ImagingEvaluation, L.LightningModule):
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
        world: the frozen world (:class:`lsi.world.spec.WorldSpec` fields: generator, encoder, identity, dino,
            lpips_backbone and their kinds); None = the embedded world of ``generator`` / ``weights_dir``.
        generator / weights_dir: the older way to name the world (``embedded`` ships with the package).
        lambda_*: loss weights; ``energy_range`` (a, b) in percent, active from ``energy_start_step``.
            ``lambda_dino`` needs ``world.dino``.
        image_loss_batch: how many samples per batch go through G for the image losses (paper: the whole batch).
        perceptual: ``lpips`` (needs a backbone: ``world.lpips_backbone`` or ``lpips_backbone_path``) or
            ``identity-features`` (offline, embedded world only).
        id_threshold: cosine-distance threshold of the identity match rate; None = the world's
            (:attr:`lsi.world.frozen.FrozenWorld.identity_threshold`: configured, the embedded net's 1% FAR, or
            calibrated at 1% FAR on the evaluated originals).
        lr_masks / lr_encoder: learning rates of the two parameter groups.
        cache_targets: remember E(I) per training-sample index (E is frozen and deterministic, so this is exact
            and saves most of E's cost after the first epoch).
        init_from: an ``lsi.ckpt`` whose masks, reading normaliser and D_theta start this run (fine-tuning on
            measured readings: combine with ``freeze_masks``); loaded with ``weights_only=True``.
        schedule: the staged recipe (:class:`lsi.models.staged.TrainingSchedule`; needs
            ``datamodules.CachedScenesDataModule``); None = the per-batch recipe on scene batches.
        whiten_readings: the reading normaliser whitens (ZCA) instead of standardising each reading.
        mask_optimizer: ``adam`` or ``lion`` (sign updates, as the official LSI code optimises the masks).
        normaliser_batches: per-batch recipe: training batches whose readings fit the reading normaliser at the
            start of ``fit`` (refreshed from the same scenes every 50 steps while the masks learn).
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
        world: dict[str, Any] | None = None,
        lambda_lat: float = 1.0,
        lambda_pix: float = 1.0,
        lambda_id: float = 0.5,
        lambda_lpips: float = 0.0,
        lambda_dino: float = 0.0,
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
        schedule: TrainingSchedule | None = None,
        whiten_readings: bool = False,
        mask_optimizer: str = "adam",
        normaliser_batches: int = 16,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.world_spec = WorldSpec.from_config(world, generator, weights_dir)
        frozen = frozen_world(self.world_spec)  # loads (once per process) and checks every file of the world
        if lambda_dino > 0 and frozen.dino_loss is None:
            raise ValueError("lambda_dino > 0 needs the DINO ViT-B/8 weights: set model.init_args.world.dino (e.g. "
                             "weights/dino_vitbase8_pretrain.pth, docs/reproduce-paper.md) or lambda_dino: 0")
        g = frozen.generator
        self.optical = OpticalEncoder(
            ratio=ratio, bits=bits, init=mask_init, mask_dropout=mask_dropout, input_dropout=input_dropout,
            noise=NoiseModel(**noise) if noise else None, complementary=complementary, seed=seed)
        if masks_path:
            self.optical.load_masks_into(masks_path, freeze=freeze_masks)
        elif freeze_masks:
            self.optical.freeze(True)
        d_in = self.optical.num_readings
        if mask_optimizer not in ("adam", "lion"):
            raise ValueError(f"mask_optimizer must be 'adam' or 'lion', got {mask_optimizer!r}")
        # Readings are tiny differences on a large mean: standardised with fixed statistics of training readings
        self.reading_norm = ReadingNormaliser(d_in, whiten=whiten_readings)
        self.digital = build_digital_encoder(d_in=d_in, num_ws=g.num_ws, w_dim=g.w_dim, **(digital or {}))
        self.schedule = TrainingSchedule(**schedule) if isinstance(schedule, dict) else schedule
        self.staged: StagedRecipe | None = None
        self.ridge_baseline: tuple[torch.Tensor, torch.Tensor] | None = None  # closed-form read-out (weight, bias)
        self._norm_reference: dict[str, torch.Tensor] | None = None
        self.register_buffer("w_avg", g.w_avg.detach().clone())
        self.perceptual = build_perceptual(perceptual, lpips_backbone_path or self.world_spec.lpips_backbone,
                                           frozen.identity) if lambda_lpips > 0 else None
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
    def world(self) -> FrozenWorld:
        return frozen_world(self.world_spec, device=self.w_avg.device)

    @property
    def threshold(self) -> float | None:
        """Identity-match threshold (cosine distance); None = calibrate on the evaluated originals."""
        if self.id_threshold is None:
            self.id_threshold = self.world.identity_threshold
        return self.id_threshold

    @property
    def latent_shape(self) -> tuple[int, int]:
        """``(num_ws, w_dim)`` of the frozen generator."""
        return self.digital.num_ws, self.digital.w_dim

    # -- forward -----------------------------------------------------------------------------
    def encode_readings(self, y: torch.Tensor) -> torch.Tensor:
        """Readings ``[B, d]`` -> W+ latent ``[B, num_ws, w_dim]`` (O bypassed: used for measured data)."""
        with torch.autocast(y.device.type, enabled=False):  # readings: small differences on a large mean
            x = self.reading_norm(y.float())
        return self.digital(x) + self.w_avg

    def forward(self, scene: torch.Tensor) -> torch.Tensor:
        """Scene ``[B,3,256,256]`` in [0,1] -> W+ latent ``[B, num_ws, w_dim]``."""
        return self.encode_readings(self.optical(scene))

    def latent_of(self, batch: dict) -> torch.Tensor:
        """L ``[B, num_ws, w_dim]`` of a batch: from its ``readings`` when it has them (measured data, O bypassed),
        else from its scenes ``image`` through the simulated O."""
        readings = batch.get("readings")
        return self.encode_readings(readings) if readings is not None else self(batch["image"])

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        if self.staged is not None:
            losses = self.staged.losses(self, batch["index"])
            bs = len(batch["index"])
            self.log("phase", float(["joint", "readout", "image"].index(self.staged.phase)), batch_size=bs)
        else:
            losses = self.compute_losses(batch, batch.get("index"))
            bs = len(batch["image"])
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, prog_bar=False, batch_size=bs)
        self.log("loss", losses["total"], prog_bar=True, logger=False, batch_size=bs)
        return losses["total"]

    # -- the reading normaliser and the recipes' start/end ------------------------------------------
    def on_train_start(self) -> None:
        # not on_fit_start: Lightning restores a resumed run's global_step only after on_fit_start
        if self.schedule is not None:
            self.staged = StagedRecipe(self.schedule)
            self.staged.start(self, self.trainer)
        elif self.trainer.global_step == 0:
            # also when fine-tuning from init_from: measured readings get their own mean (a calibration)
            self._norm_reference = self._collect_reference(self.hparams.normaliser_batches)
            self._fit_normaliser()

    def _collect_reference(self, batches: int) -> dict[str, torch.Tensor]:
        """The first ``batches`` training batches' readings (measured data) or scenes as uint8 (simulated): the
        fixed set the per-batch recipe fits its reading normaliser on."""
        readings, scenes = [], []
        for i, batch in enumerate(self.trainer.train_dataloader or self.trainer.datamodule.train_dataloader()):
            if i >= batches:
                break
            if batch.get("readings") is not None:
                readings.append(batch["readings"])
            else:
                scenes.append(batch["image"].mul(255).round_().to(torch.uint8))
        return {"readings": torch.cat(readings)} if readings else {"scenes": torch.cat(scenes)}

    @torch.no_grad()
    def _fit_normaliser(self) -> None:
        ref = self._norm_reference
        if ref is None:
            return
        if "readings" in ref:
            readings = ref["readings"].to(self.device)
        else:
            readings = torch.cat([self.optical.A(ref["scenes"][i:i + 64].to(self.device).float() / 255)
                                  for i in range(0, len(ref["scenes"]), 64)])
        if self.hparams.init_from and bool(self.reading_norm.fitted):
            self.reading_norm.recentre(readings)  # fine-tuning: keep the transform D_theta was trained on
        elif len(readings) >= 2:
            self.reading_norm.fit(readings)

    def on_train_end(self) -> None:
        if self.staged is not None:
            self.training_report = self.staged.end()
            self._fit_ridge_baseline()

    @torch.no_grad()
    def _fit_ridge_baseline(self) -> None:
        """The simple baseline of this run: ridge regression from the final normalised readings of every training
        scene to E(I), kept in the checkpoint (``lsi test`` scores it beside the trained D_theta)."""
        recipe = self.staged
        readings = recipe.readings if recipe.readings is not None and self.optical.frozen else recipe.measure(self)
        x = self.reading_norm(readings)
        target = (recipe.targets.to(x) - self.w_avg).flatten(1)
        self.ridge_baseline = fit_ridge(x, target, recipe.schedule.ridge_lambda)

    # -- optimisation and checkpoints --------------------------------------------------------
    def reset_optimizer_state(self, group: str) -> None:
        """Forget the optimiser's moments for parameter group ``group`` (after its parameters were re-initialised)."""
        if self._trainer is None:
            return
        for opt in self.trainer.optimizers:
            for g in opt.param_groups:
                if g.get("name") == group:
                    for p in g["params"]:
                        opt.state.pop(p, None)

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        groups = [{"params": list(self.digital.parameters()), "lr": hp.lr_encoder, "name": "encoder"}]
        # the staged recipe keeps the masks' group through every phase (frozen masks get no gradient and no
        # update), so the optimiser's structure, and with it a resumed optimiser state, is the same in all phases
        if self.optical.masks.requires_grad or self.schedule is not None:
            decay = 1e-2 if hp.mask_optimizer == "lion" else 0.0  # the official LSI code's Lion weight decay
            groups.append({"params": [self.optical.masks], "lr": hp.lr_masks, "name": "masks",
                           "algorithm": hp.mask_optimizer, "weight_decay": decay})
        optimizer = GroupwiseOptimizer(groups)
        if self.schedule is None:
            return optimizer
        schedule = self.schedule
        lambdas = [lambda step, name=g["name"]: schedule.lr_factor(name, step) for g in groups]
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambdas)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        # Project the latent masks back into [0, 1]: outside it the straight-through gradient is zero and a
        # pixel pushed past a bound by momentum would never move again.
        with torch.no_grad():
            self.optical.masks.clamp_(0.0, 1.0)
        if self.staged is None and not self.optical.frozen and self.trainer.global_step % 50 == 0:
            self._fit_normaliser()  # per-batch recipe: the masks moved, refresh from the same fixed scenes

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
                             "generator": self.world_spec.describe(), "world": self.world_spec.to_dict(),
                             "masks_sha256": self.masks_sha256()}
        if self.ridge_baseline is not None:
            checkpoint["lsi"]["ridge_baseline"] = {"weight": self.ridge_baseline[0].cpu(),
                                                   "bias": self.ridge_baseline[1].cpu()}
        report = getattr(self, "training_report", None)
        if report:
            checkpoint["lsi"]["training"] = report

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        meta = checkpoint.get("lsi")
        if meta is None:
            raise ValueError("this checkpoint was not written by LatentImagingModule (no 'lsi' section)")
        if meta["d"] != self.optical.d or meta["bits"] != self.optical.bits:
            raise ValueError(
                f"checkpoint is for ratio {meta['ratio']} ({meta['d']} masks, {meta['bits']} bit) but the model is "
                f"configured for ratio {self.optical.ratio} ({self.optical.d} masks, {self.optical.bits} bit); "
                f"pass --model.ratio {meta['ratio']} or the matching config")
        shape = (meta.get("num_ws"), meta.get("w_dim"))
        if None not in shape and shape != self.latent_shape:
            raise ValueError(
                f"checkpoint decodes into W+ {list(shape)} of generator {meta.get('generator')!r} but the configured "
                f"world ({self.world_spec.describe()}) has W+ {list(self.latent_shape)}: use the model.init_args.world "
                "the checkpoint was trained with")
        ridge = meta.get("ridge_baseline")
        self.ridge_baseline = (ridge["weight"], ridge["bias"]) if ridge else None


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
