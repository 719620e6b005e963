"""Downstream heads: LightningModules training the projectors P (:mod:`lsi.models.projectors`) on the frozen
LSI latent L = D_theta(O . I).

- :class:`AttributeHead` (P_A), BCE; :class:`SegmentationHead` (P_S), focal loss; :class:`LandmarkHead` (P_L),
  MSE on coordinates in [0, 1];
- :class:`AllHeads`: the three trained together from one command (any subset with ``heads``).

O, D_theta and G stay frozen and unregistered; each head's checkpoint records the fingerprint (and path) of the
LSI checkpoint it was trained on and refuses to load onto another encoder (:func:`load_heads` loads one back).
``lsi test`` on a head checkpoint measures every trained head and, through :mod:`lsi.eval.reconstruction`, the
encoder's reconstructions (identity match, PSNR, FID; Dlib / VGG-Face on request). The attribute count comes from
the config (``num_attributes``; default: the embedded world's, :data:`lsi.labels.EMBEDDED_ATTRIBUTE_NAMES`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from lsi.eval.linear_readout import fit_logistic
from lsi.eval.metrics import NME, AttributeAccuracy, SegmentationF1
from lsi.eval.reconstruction import ReconstructionMetrics
from lsi.labels import CELEBAMASK_CLASSES, EMBEDDED_ATTRIBUTE_NAMES
from lsi.models.callbacks import log_reconstruction
from lsi.models.checkpoints import loadable_checkpoint
from lsi.models.imaging import LatentImagingModule, load_lsi
from lsi.models.projectors import (
    AttributeProjector,
    LandmarkProjector,
    SegmentationProjector,
    default_landmark_layer,
    default_seg_layers,
)

TEST_OPTIONS = ("evaluate_reconstruction", "fid", "eval_dlib", "vggface_weights")


def load_heads(path: str | Path, lsi_checkpoint: str | None = None, **overrides: Any) -> AllHeads:
    """A trained head checkpoint (any :class:`AllHeads` subclass) on its LSI encoder, in eval mode.

    ``lsi_checkpoint`` defaults to the encoder path recorded when the head was trained; loading onto an encoder
    with another fingerprint raises ``ValueError``. ``overrides`` are further init arguments (e.g. test options).
    """
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    lsi_checkpoint = lsi_checkpoint or ckpt.get("lsi_checkpoint")
    if not lsi_checkpoint:
        raise ValueError(f"{path} records no LSI checkpoint; pass lsi_checkpoint= the lsi.ckpt its head was trained on")
    heads = AllHeads.load_from_checkpoint(loadable_checkpoint(path), map_location="cpu", weights_only=True,
                                          lsi_checkpoint=str(lsi_checkpoint), **overrides)
    return heads.eval()


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Multi-class focal loss, ``logits [B,C,H,W]``, ``target [B,H,W]`` int64."""
    logp = F.log_softmax(logits, dim=1).gather(1, target[:, None]).squeeze(1)
    return (-(1 - logp.exp()).pow(gamma) * logp).mean()


class _LatentHead(L.LightningModule):
    """Shared plumbing: frozen LSI latent, fingerprint check, optimiser."""

    def __init__(self, lsi_checkpoint: str, lr: float = 1e-3) -> None:
        super().__init__()
        self.lsi_checkpoint = lsi_checkpoint
        self.lr = lr
        self.fingerprint = self.lsi.encoder_fingerprint()

    @property
    def lsi(self) -> LatentImagingModule:
        module = load_lsi(self.lsi_checkpoint)
        if module.w_avg.device != self.device:
            module.to(self.device)
        return module

    @property
    def generator(self):
        return self.lsi.world.generator

    @torch.no_grad()
    def latent(self, batch: dict) -> torch.Tensor:
        """L ``[B, num_ws, w_dim]`` from the batch's readings (measured) or its scenes (simulated)."""
        return self.lsi.latent_of(batch)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["lsi_fingerprint"] = self.fingerprint
        checkpoint["lsi_checkpoint"] = str(self.lsi_checkpoint)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        saved = checkpoint.get("lsi_fingerprint")
        if saved != self.fingerprint:
            raise ValueError(
                f"this head was trained on an LSI encoder with fingerprint {str(saved)[:12]}, but "
                f"{self.lsi_checkpoint!r} has {self.fingerprint[:12]}: heads only work on the encoder they were "
                "trained on; retrain the head or point model.init_args.lsi_checkpoint at the original checkpoint")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam([p for p in self.parameters() if p.requires_grad], lr=self.lr)

    def predict_step(self, batch: dict, batch_idx: int) -> dict[str, torch.Tensor]:
        return self.predict_heads(self.latent(batch))

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        if "image" not in batch and self._train_cache is not None:  # index batches of a CachedScenesDataModule
            batch = self._cached_batch(batch["index"])
            latent = batch["latent"]
        else:
            latent = self.latent(batch)
        losses = self.losses(self.predict_heads(latent), batch)
        trained = {k: v for k, v in losses.items() if v.requires_grad}
        total = sum(trained.values()) if trained else sum(losses.values())
        bs = len(latent)
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, batch_size=bs)
        self.log("loss", total, prog_bar=True, logger=False, batch_size=bs)
        return total

    # -- training from a scene cache: latents computed once, P_A fitted to convergence -------------------------
    _train_cache: Any = None
    _train_latents: torch.Tensor | None = None

    def on_train_start(self) -> None:
        cache = getattr(self.trainer.datamodule, "train_cache", None) if self._trainer is not None else None
        if cache is None:
            return
        object.__setattr__(self, "_train_cache", cache)
        lsi = self.lsi

        def encode(idx: torch.Tensor) -> torch.Tensor:
            scene = cache.batch(idx, ["image"])["image"].to(self.device)
            return lsi.latent_of({"image": scene}).flatten(1)

        latents = cache.derived("lsi-latent", {"encoder": self.fingerprint}, encode, chunk=256)
        object.__setattr__(self, "_train_latents", latents)
        self.fit_attributes_convex()

    @torch.no_grad()
    def fit_attributes_convex(self) -> None:
        """P_A by full-batch logistic regression on every cached training latent (converged, as the probe of
        ``python -m lsi.experiments.probe``); P_A is then frozen while P_S and P_L train."""
        if self.attr is None or self.hparams.get("attribute_fit", "auto") == "sgd" or self._train_latents is None:
            return
        attrs = self._train_cache.tensor("attributes").float()
        known = (attrs >= 0).all(1)  # rows with an unknown attribute (-1) are left out of the fit
        weight, bias = fit_logistic(self._train_latents[known].to(self.device), attrs[known].to(self.device))
        self.attr.linear.weight.copy_(weight)
        self.attr.linear.bias.copy_(bias)
        self.attr.requires_grad_(False)

    def _cached_batch(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        keys = [k for k in ("attributes", "segmentation", "landmarks") if k in self._train_cache.fields]
        batch = {k: v.to(self.device) for k, v in self._train_cache.batch(index.cpu(), keys).items()}
        g = self.generator
        batch["latent"] = self._train_latents[index.cpu()].to(self.device).view(-1, g.num_ws, g.w_dim)
        return batch

    def _eval(self, batch: dict, stage: str) -> None:
        latent = self.latent(batch)
        out = self.predict_heads(latent)
        if stage == "test":
            self.update_reconstruction(batch, latent)
        losses = self.losses(out, batch)
        self.log_dict({f"{stage}/{k}_loss": v for k, v in losses.items()}, batch_size=len(batch["image"]),
                      sync_dist=True)
        self.update_metrics(out, batch, stage)

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._eval(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._eval(batch, "test")

    def update_reconstruction(self, batch: dict, latent: torch.Tensor) -> None:
        """Hook: accumulate reconstruction metrics during ``lsi test`` (no-op here)."""


class AllHeads(_LatentHead):
    """P_A, P_S and P_L on one frozen encoder; ``heads`` picks any subset (one at a time or all together).

    ``lsi test`` also measures the encoder's reconstructions (``test/reconstruction/*``, see
    :mod:`lsi.eval.reconstruction`) unless ``evaluate_reconstruction`` is false; ``eval_dlib`` / ``vggface_weights``
    add the Dlib / VGG-Face identity match rates.

    Trained with ``datamodules.CachedScenesDataModule`` (index batches), the encoder's latents of every training
    scene are computed once (a derived array of the scene cache, keyed by the encoder's fingerprint), P_A is fitted
    to convergence by full-batch logistic regression (``attribute_fit: auto``; ``sgd`` trains it with the others)
    and P_S / P_L train on the cached latents and labels.
    """

    def __init__(self, lsi_checkpoint: str, heads: tuple[str, ...] = ("attributes", "segmentation", "landmarks"),
                 num_attributes: int | None = None, num_classes: int = 19,
                 seg_layers: tuple[str, ...] | None = None, landmark_layer: str | None = None,
                 focal_gamma: float = 2.0, lr: float = 1e-3, evaluate_reconstruction: bool = True,
                 fid: bool = True, eval_dlib: bool = False, vggface_weights: str | None = None,
                 attribute_fit: str = "auto") -> None:
        super().__init__(lsi_checkpoint, lr)
        if attribute_fit not in ("auto", "sgd"):
            raise ValueError(f"attribute_fit must be 'auto' (convex fit when training from a scene cache) or 'sgd', "
                             f"got {attribute_fit!r}")
        # The encoder path and the test-time options stay out of the checkpoint's hyper-parameters: LightningCLI
        # replaces the model's config with those when --ckpt_path is given, and these must remain settable
        # then (`lsi test --model.init_args.lsi_checkpoint X` is how a head meets another encoder and fails).
        self.save_hyperparameters(ignore=["lsi_checkpoint", *TEST_OPTIONS])
        self.evaluate_reconstruction, self.fid, self.eval_dlib = evaluate_reconstruction, fid, eval_dlib
        self.vggface_weights = vggface_weights
        self.test_notes: dict[str, str] = {}
        self._recon: Any = None
        unknown = set(heads) - {"attributes", "segmentation", "landmarks"}
        if unknown or not heads:
            raise ValueError(f"heads must be a non-empty subset of attributes, segmentation, landmarks; got {heads}")
        g = self.generator
        if num_attributes is None:  # checkpoints written before num_attributes was in the configs
            num_attributes = len(EMBEDDED_ATTRIBUTE_NAMES)
        seg_layers = tuple(seg_layers) if seg_layers else default_seg_layers(g.feature_names)
        landmark_layer = landmark_layer or default_landmark_layer(g.feature_names)
        missing = [n for n in (*seg_layers, landmark_layer) if n not in g.feature_names]
        if missing:
            raise ValueError(f"layers {missing} are not feature maps of the generator; choose from {g.feature_names}")
        self.heads = tuple(heads)
        self.attr = AttributeProjector(g.num_ws, g.w_dim, num_attributes) if "attributes" in heads else None
        self.seg = SegmentationProjector(tuple(seg_layers), num_classes) if "segmentation" in heads else None
        self.lmk = LandmarkProjector(landmark_layer, g.num_ws, g.w_dim) if "landmarks" in heads else None
        self.metrics = nn.ModuleDict()
        for stage in ("val", "test"):
            if self.attr is not None:
                self.metrics[f"{stage}_acc"] = AttributeAccuracy()
            if self.seg is not None:
                self.metrics[f"{stage}_f1"] = SegmentationF1(num_classes=num_classes)
            if self.lmk is not None:
                self.metrics[f"{stage}_nme"] = NME()

    def predict_heads(self, latent: torch.Tensor) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        names = list(self.seg.layers) if self.seg is not None else []
        if self.lmk is not None and self.lmk.layer not in names:
            names.append(self.lmk.layer)
        feats = self.generator.features(latent, names) if names else {}
        if self.attr is not None:
            out["attributes"] = self.attr(latent)
        if self.seg is not None:
            out["segmentation"] = self.seg(feats)
        if self.lmk is not None:
            out["landmarks"] = self.lmk(feats[self.lmk.layer], latent)
        return out

    def losses(self, out: dict[str, torch.Tensor], batch: dict) -> dict[str, torch.Tensor]:
        losses = {}
        if "attributes" in out:
            losses["attr"] = F.binary_cross_entropy_with_logits(out["attributes"], batch["attributes"].float())
        if "segmentation" in out:
            logits = out["segmentation"]
            target = F.interpolate(batch["segmentation"][:, None].float(), size=logits.shape[-2:],
                                   mode="nearest").squeeze(1).long()
            losses["seg"] = focal_loss(logits, target, self.hparams.focal_gamma)
        if "landmarks" in out:
            losses["lmk"] = F.mse_loss(out["landmarks"], batch["landmarks"])
        return losses

    def on_test_epoch_start(self) -> None:
        recon = None
        if self.evaluate_reconstruction:
            recon = ReconstructionMetrics(self.fid, self.eval_dlib, self.vggface_weights).to(self.device)
        object.__setattr__(self, "_recon", recon)  # not a child module: stays out of checkpoints

    def update_reconstruction(self, batch: dict, latent: torch.Tensor) -> None:
        if self._recon is not None:
            lsi = self.lsi
            self._recon.update(lsi.world, batch["image"], latent, lsi.threshold, batch.get("identity"))

    def on_test_epoch_end(self) -> None:
        if self.seg is not None:
            self.log_per_class_f1(self.metrics["test_f1"])
        if self._recon is not None:
            log_reconstruction(self, self._recon)
            self.test_notes = self._recon.notes()

    def log_per_class_f1(self, metric: SegmentationF1) -> None:
        """``test/seg_f1_class/<name>`` for each class present (CelebAMask-HQ names when there are 19 classes)."""
        with metric.sync_context():  # the summed confusion matrix across processes under DDP
            per_class = metric.per_class()
        names = CELEBAMASK_CLASSES if len(per_class) == len(CELEBAMASK_CLASSES) else range(len(per_class))
        for name, value in zip(names, per_class.tolist()):
            if value == value:  # NaN: the class occurs in neither target nor prediction
                self.log(f"test/seg_f1_class/{name}", value, sync_dist=False)

    def update_metrics(self, out: dict[str, torch.Tensor], batch: dict, stage: str) -> None:
        bs = len(batch["image"])
        if "attributes" in out:
            m = self.metrics[f"{stage}_acc"]
            m.update(out["attributes"], batch["attributes"])
            self.log(f"{stage}/attr_acc", m, batch_size=bs)
        if "segmentation" in out:
            m = self.metrics[f"{stage}_f1"]
            size = batch["segmentation"].shape[-2:]
            pred = F.interpolate(out["segmentation"], size=size, mode="bilinear", align_corners=False).argmax(1)
            m.update(pred, batch["segmentation"])
            self.log(f"{stage}/seg_f1", m, batch_size=bs)
        if "landmarks" in out:
            m = self.metrics[f"{stage}_nme"]
            m.update(out["landmarks"], batch["landmarks"])
            self.log(f"{stage}/nme", m, batch_size=bs)


class AttributeHead(AllHeads):
    """P_A alone."""

    def __init__(self, lsi_checkpoint: str, num_attributes: int | None = None, lr: float = 1e-3,
                 evaluate_reconstruction: bool = True, fid: bool = True, eval_dlib: bool = False,
                 vggface_weights: str | None = None) -> None:
        super().__init__(lsi_checkpoint, heads=("attributes",), num_attributes=num_attributes, lr=lr,
                         evaluate_reconstruction=evaluate_reconstruction, fid=fid, eval_dlib=eval_dlib,
                         vggface_weights=vggface_weights)


class SegmentationHead(AllHeads):
    """P_S alone."""

    def __init__(self, lsi_checkpoint: str, num_classes: int = 19,
                 seg_layers: tuple[str, ...] | None = None, focal_gamma: float = 2.0,
                 lr: float = 1e-3, evaluate_reconstruction: bool = True, fid: bool = True,
                 eval_dlib: bool = False, vggface_weights: str | None = None) -> None:
        super().__init__(lsi_checkpoint, heads=("segmentation",), num_classes=num_classes, seg_layers=seg_layers,
                         focal_gamma=focal_gamma, lr=lr, evaluate_reconstruction=evaluate_reconstruction, fid=fid,
                         eval_dlib=eval_dlib, vggface_weights=vggface_weights)


class LandmarkHead(AllHeads):
    """P_L alone."""

    def __init__(self, lsi_checkpoint: str, landmark_layer: str | None = None, lr: float = 1e-3,
                 evaluate_reconstruction: bool = True, fid: bool = True, eval_dlib: bool = False,
                 vggface_weights: str | None = None) -> None:
        super().__init__(lsi_checkpoint, heads=("landmarks",), landmark_layer=landmark_layer, lr=lr,
                         evaluate_reconstruction=evaluate_reconstruction, fid=fid, eval_dlib=eval_dlib,
                         vggface_weights=vggface_weights)
