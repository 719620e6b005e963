"""Downstream projectors P that read the frozen LSI latent L = D_theta(O . I).

- :class:`AttributeHead` (P_A): one linear layer ``[B, num_ws*w_dim] -> [B, A]``, BCE.
- :class:`SegmentationHead` (P_S): six of G's feature maps under L merged coarse -> fine (bilinear upsample,
  3x3 conv to the next level's width, sum), a final 3x3 conv to the classes, focal loss.
- :class:`LandmarkHead` (P_L): one coarse feature map modulated by a linear projection of L, a conv to 68
  channels, bilinear resize to 8x8, then a per-point linear 64 -> 2; MSE on coordinates in [0, 1].
- :class:`AllHeads`: the three trained together from one command.

O, D_theta and G stay frozen and unregistered; each head's checkpoint records the fingerprint (and path) of the
LSI checkpoint it was trained on and refuses to load onto another encoder (:func:`load_heads` loads one back).
``lsi test`` on a head checkpoint measures every trained head and, through :mod:`lsi.evaluation`, the encoder's
reconstructions (identity match, PSNR, FID; Dlib / VGG-Face on request).
"""

from __future__ import annotations

import contextvars
from functools import lru_cache
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from lsi.generator.protocol import parse_feature_name
from lsi.metrics import NME, AttributeAccuracy, SegmentationF1

PAPER_LANDMARK_LAYER = "L3_36_1024"


def default_seg_layers(feature_names: tuple[str, ...]) -> tuple[str, ...]:
    """Six maps coarse -> fine for P_S when none are configured: the last conv at the 2nd-coarsest
    resolution, both convs of the 3rd, the last of the 4th and both of the finest. For the embedded
    generator (64 px): 8, 16, 16, 32, 64, 64 px."""
    by_res: dict[int, list[str]] = {}
    for n in feature_names:
        by_res.setdefault(parse_feature_name(n)[1], []).append(n)
    res = sorted(by_res)
    if len(res) < 5:
        raise ValueError(f"cannot pick six segmentation layers from {feature_names}; set seg_layers explicitly")
    picks = [by_res[res[1]][-1], *by_res[res[2]][-2:], by_res[res[-2]][-1], *by_res[res[-1]][-2:]]
    return tuple(picks)


def default_landmark_layer(feature_names: tuple[str, ...]) -> str:
    """The coarse map P_L reads when none is configured: the last conv at the 2nd-coarsest resolution."""
    return default_seg_layers(feature_names)[0]
TEST_OPTIONS = ("evaluate_reconstruction", "fid", "eval_dlib", "vggface_weights")
PAPER_SEG_LAYERS = ("L3_36_1024", "L9_52_1024", "L11_84_1024", "L13_148_919", "L15_276_256", "L16_256_256")


def load_lsi(path: str):
    """The frozen LSI encoder (O + D_theta) of a checkpoint, loaded with ``weights_only=True``.

    Cached per (path, modification time), so a checkpoint rewritten in place is reloaded.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"LSI checkpoint {path!r} not found; train one with `make train RATIO=N` "
                                "and pass its lsi.ckpt as model.init_args.lsi_checkpoint")
    return _load_lsi(str(p.resolve()), p.stat().st_mtime_ns)


@lru_cache(maxsize=2)
def _load_lsi(path: str, mtime_ns: int):
    from lsi.module import LatentImagingModule

    # Heads are built inside LightningCLI's instantiation context, whose "given hyperparameters" would leak
    # into the nested LatentImagingModule.save_hyperparameters(); load it in a fresh context instead.
    # init_from=None: the checkpoint already holds the trained state; its starting point need not exist any more
    module = contextvars.Context().run(
        LatentImagingModule.load_from_checkpoint, path, map_location="cpu", weights_only=True, init_from=None)
    module.eval().requires_grad_(False)
    return module


def load_heads(path: str | Path, lsi_checkpoint: str | None = None, **overrides: Any) -> "AllHeads":
    """A trained head checkpoint (any :class:`AllHeads` subclass) on its LSI encoder, in eval mode.

    ``lsi_checkpoint`` defaults to the encoder path recorded when the head was trained; loading onto an encoder
    with another fingerprint raises ``ValueError``. ``overrides`` are further init arguments (e.g. test options).
    """
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    lsi_checkpoint = lsi_checkpoint or ckpt.get("lsi_checkpoint")
    if not lsi_checkpoint:
        raise ValueError(f"{path} records no LSI checkpoint; pass lsi_checkpoint= the lsi.ckpt its head was trained on")
    heads = AllHeads.load_from_checkpoint(path, map_location="cpu", weights_only=True,
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
    def lsi(self):
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
        lsi = self.lsi
        readings = batch.get("readings")
        return lsi.encode_readings(readings) if readings is not None else lsi(batch["image"])

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
        losses = self.losses(self.predict_heads(self.latent(batch)), batch)
        total = sum(losses.values())
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, batch_size=len(batch["image"]))
        self.log("loss", total, prog_bar=True, logger=False, batch_size=len(batch["image"]))
        return total

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


class AttributeProjector(nn.Module):
    """P_A: ``[B, num_ws, w_dim] -> [B, A]`` logits.

    No standardisation here, unlike P_S / P_L: near-constant latent dimensions would be blown up to unit
    variance (measured: 74% instead of 79% accuracy at 1:512 after 300 steps).
    """

    def __init__(self, num_ws: int, w_dim: int, num_attributes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(num_ws * w_dim, num_attributes)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.linear(latent.flatten(1))


class SegmentationProjector(nn.Module):
    """P_S: six feature maps (coarse -> fine) -> class logits at the finest map's resolution.

    Each map is first standardised per channel (non-learned batch norm; an affine map at test time): G's
    activations are small (std ~0.1 in the embedded G), which otherwise leaves the linear decoder far from the
    weight scale it needs after a short training.
    """

    def __init__(self, layers: tuple[str, ...], num_classes: int = 19) -> None:
        super().__init__()
        specs = [parse_feature_name(n) for n in layers]
        if [s[1] for s in specs] != sorted(s[1] for s in specs):
            raise ValueError(f"segmentation layers must go coarse -> fine, got {layers}")
        self.layers = tuple(layers)
        self.norms = nn.ModuleList(nn.BatchNorm2d(s[2], affine=False) for s in specs)
        self.merges = nn.ModuleList(nn.Conv2d(a[2], b[2], 3, padding=1) for a, b in zip(specs[:-1], specs[1:]))
        self.classifier = nn.Conv2d(specs[-1][2], num_classes, 3, padding=1)

    def forward(self, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        x = self.norms[0](feats[self.layers[0]])
        for name, norm, merge in zip(self.layers[1:], self.norms[1:], self.merges):
            nxt = norm(feats[name])
            x = merge(F.interpolate(x, size=nxt.shape[-2:], mode="bilinear", align_corners=False)) + nxt
        return self.classifier(x)


class LandmarkProjector(nn.Module):
    """P_L: coarse map ``[B,C,h,w]`` modulated by ``Linear(L)``, conv to 68, resize to 8x8, per-point 64 -> 2.

    The map is standardised per channel first (non-learned batch norm, as in :class:`SegmentationProjector`).
    """

    def __init__(self, layer: str, num_ws: int, w_dim: int, num_points: int = 68) -> None:
        super().__init__()
        _, _, ch = parse_feature_name(layer)
        self.layer = layer
        self.norm = nn.BatchNorm2d(ch, affine=False)
        self.modulation = nn.Linear(num_ws * w_dim, ch)
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)
        self.conv = nn.Conv2d(ch, num_points, 3, padding=1)
        self.point_weight = nn.Parameter(torch.randn(num_points, 64, 2) * 0.01)
        self.point_bias = nn.Parameter(torch.full((num_points, 2), 0.5))

    def forward(self, feat: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        x = self.norm(feat) * (1 + self.modulation(latent.flatten(1)))[:, :, None, None]
        x = F.interpolate(self.conv(x), size=(8, 8), mode="bilinear", align_corners=False).flatten(2)  # [B,68,64]
        return torch.einsum("bpk,pkc->bpc", x, self.point_weight) + self.point_bias


class AllHeads(_LatentHead):
    """P_A, P_S and P_L on one frozen encoder; ``heads`` picks any subset (one at a time or all together).

    ``lsi test`` also measures the encoder's reconstructions (``test/reconstruction/*``, see
    :mod:`lsi.evaluation`) unless ``evaluate_reconstruction`` is false; ``eval_dlib`` / ``vggface_weights``
    add the Dlib / VGG-Face identity match rates.
    """

    def __init__(self, lsi_checkpoint: str, heads: tuple[str, ...] = ("attributes", "segmentation", "landmarks"),
                 num_attributes: int | None = None, num_classes: int = 19,
                 seg_layers: tuple[str, ...] | None = None, landmark_layer: str | None = None,
                 focal_gamma: float = 2.0, lr: float = 1e-3, evaluate_reconstruction: bool = True,
                 fid: bool = True, eval_dlib: bool = False, vggface_weights: str | None = None) -> None:
        super().__init__(lsi_checkpoint, lr)
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
        if num_attributes is None:
            from datamodules.faces.world import ATTRIBUTE_NAMES

            num_attributes = len(ATTRIBUTE_NAMES)
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
            from lsi.evaluation import ReconstructionMetrics

            recon = ReconstructionMetrics(self.fid, self.eval_dlib, self.vggface_weights).to(self.device)
        object.__setattr__(self, "_recon", recon)  # not a child module: stays out of checkpoints

    def update_reconstruction(self, batch: dict, latent: torch.Tensor) -> None:
        if self._recon is not None:
            self._recon.update(self.lsi, batch, latent)

    def on_test_epoch_end(self) -> None:
        if self.seg is not None:
            self.log_per_class_f1(self.metrics["test_f1"])
        if self._recon is not None:
            from lsi.evaluation import log_reconstruction

            log_reconstruction(self, self._recon)
            self.test_notes = self._recon.notes()

    def log_per_class_f1(self, metric: SegmentationF1) -> None:
        """``test/seg_f1_class/<name>`` for each class present (CelebAMask-HQ names when there are 19 classes)."""
        from lsi.facetools import CELEBAMASK_CLASSES

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
