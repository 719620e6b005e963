"""Measured single-pixel data: a LightningDataModule over a capture store written by ``lsi-capture``.

Items (dicts):

* ``readings`` ``[d]`` float32 (``[2d]`` with ``combine="stacked"``), corrected per ``correction``:
  ``none`` raw detector units; ``dark`` minus the dark level; ``normalize`` ``(y - D) / (W - D)`` with the
  capture's median references; ``drift`` the same with ``D(t)``, ``W(t)`` interpolated in time between the
  references bracketing the scene (normalised units of the optical encoder: white scene, all-on mask = 1);
  left out with ``with_readings=False``;
* ``image`` ``[3, R, R]`` float [0, 1]: the displayed scene, re-rendered from the embedded dataset index or
  loaded from the source image path;
* labels when known (embedded scenes): ``attributes``, ``landmarks``, ``segmentation``, ``identity`` and
  the ``has_*`` flags; otherwise ``has_attributes`` / ``has_landmarks`` / ``has_segmentation`` are False;
* ``scene_id`` int, ``index`` int (the scene id again: lets ``LatentImagingModule`` cache E(image) per scene)
  and ``key`` str.

Splits are deterministic: a scene goes to train/val/test by ``sha256(salt:key)`` mapped to [0, 1) and the
cumulative ``fractions``, so adding scenes never moves existing ones between splits.

Attached to a trainer, the loaders of :class:`MeasuredDataModule` refuse a model whose masks are not the
capture's (``LatentImagingModule`` or a head holding one as ``.lsi``): its D_theta would read meaningless numbers.
The check runs when a loader is requested, i.e. after ``--ckpt_path`` weights were restored.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, Dataset

from datamodules.synthetic import SyntheticFaces
from hardware.calibration import COMBINE_MODES, CORRECTION_MODES, corrected_record
from hardware.store import CaptureStore, MaskMismatchError
from lsi.images import load_image
from lsi.physics.mask_files import masks_sha256

__all__ = ["MeasuredDataset", "MeasuredDataModule", "split_of", "COMBINE_MODES"]

_SPLITS = ("train", "val", "test")
_LABEL_KEYS = ("attributes", "landmarks", "segmentation", "identity", "has_attributes", "has_landmarks",
               "has_segmentation")


def split_of(key: str, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), salt: str = "lsi") -> str:
    """Deterministic split of a scene key: ``train``, ``val`` or ``test``."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"split fractions must be three non-negative numbers summing to 1, got {fractions}")
    u = int(hashlib.sha256(f"{salt}:{key}".encode()).hexdigest()[:16], 16) / 2.0**64
    edges = np.cumsum(fractions)
    for name, edge in zip(_SPLITS, edges):
        if u < edge:
            return name
    return _SPLITS[-1]


class MeasuredDataset(Dataset):
    """Records of one capture store (all scenes, or ``scene_ids``)."""

    def __init__(self, store: str | Path, scene_ids: list[int] | None = None, correction: str = "drift",
                 combine: str = "positive", image_root: str | Path | None = None, resolution: int = 256,
                 with_labels: bool = True, with_readings: bool = True) -> None:
        if correction not in CORRECTION_MODES:
            raise ValueError(f"correction must be one of {CORRECTION_MODES}, got {correction!r}")
        if combine not in COMBINE_MODES:
            raise ValueError(f"combine must be one of {COMBINE_MODES}, got {combine!r}")
        self.store = CaptureStore.open(store)
        man = self.store.manifest
        if combine != "positive" and not man.complementary:
            raise ValueError(f"combine={combine!r} needs a capture with complementary patterns; {store} has none")
        self.kind = man.scenes.kind
        self.spec = man.scenes.spec
        self.image_root = Path(image_root) if image_root is not None else None
        self.resolution, self.with_labels, self.with_readings = resolution, with_labels, with_readings
        everything = {rec.scene_id: rec for rec in self.store.records()}
        ids = sorted(everything) if scene_ids is None else list(scene_ids)
        missing = [i for i in ids if i not in everything]
        if missing:
            raise KeyError(f"scene ids {missing[:5]} have no record in {store}")
        records = [everything[i] for i in ids]
        refs = [r for rec in everything.values() for r in rec.references] if correction != "none" else []
        self.records = records
        self.readings = torch.from_numpy(np.stack([self._correct(rec, refs, correction, combine) for rec in records])
                                         if records else np.zeros((0, man.masks.count))).float()
        self._dataset: Any = None

    @staticmethod
    def _correct(rec: Any, refs: list, correction: str, combine: str) -> np.ndarray:
        return corrected_record(rec.readings, rec.readings_inv, rec.timestamps.get("acquire_start", 0.0), refs,
                                correction, combine)

    def __len__(self) -> int:
        return len(self.records)

    def _embedded(self) -> Any:
        if self._dataset is None:
            s = self.spec
            # cached: fine-tuning revisits every scene once per epoch and rendering costs more than E(image)
            self._dataset = SyntheticFaces(s["split"], s["num_identities"], s["images_per_identity"],
                                           resolution=s["resolution"], seed=s["seed"], cache=True)
        return self._dataset

    def __getitem__(self, i: int) -> dict[str, Any]:
        rec = self.records[i]
        item: dict[str, Any] = {"scene_id": rec.scene_id, "index": rec.scene_id, "key": rec.key}
        if self.with_readings:
            item["readings"] = self.readings[i]
        if self.kind == "embedded":
            src = self._embedded()[int(rec.source["index"])]
            image = torch.as_tensor(src["image"]).float()
            if self.with_labels:
                item.update({k: src[k] for k in _LABEL_KEYS if k in src})
                for k in ("attributes", "landmarks", "segmentation"):
                    if k in src:
                        item.setdefault(f"has_{k}", True)
        else:
            root = self.image_root or Path(self.spec["root"])
            path = root / rec.source["path"]
            if not path.is_file():
                raise FileNotFoundError(f"source image {path} of scene {rec.scene_id} not found; pass image_root= "
                                        "pointing at the folder the capture was made from")
            image = torch.from_numpy(load_image(path, self.resolution, what=f"scene {rec.scene_id}"))
            item.update(has_attributes=False, has_landmarks=False, has_segmentation=False)
        if image.shape[-1] != self.resolution:
            image = torch.nn.functional.interpolate(image[None], size=(self.resolution, self.resolution),
                                                    mode="bilinear", align_corners=False, antialias=True)[0]
        item["image"] = image
        return item


class MeasuredDataModule(LightningDataModule):
    """Train/val/test loaders over a capture store (see module docstring).

    Args:
        store: capture directory.
        batch_size, num_workers: DataLoader settings.
        correction: none | dark | normalize | drift.
        combine: positive | differential | stacked (the last two need complementary captures).
        fractions: train/val/test fractions of the deterministic split.
        split_salt: changes the split assignment.
        image_root: folder of the source images if it moved since the capture.
        resolution: image side.
        with_labels: include embedded-world labels.
        with_readings: False leaves ``readings`` out, so a model measures the displayed scenes through its own
            simulated O: the reference for the sim-to-real gap on exactly the captured scenes.
        check_masks: refuse a model (on the attached trainer) whose masks differ from the capture's.
    """

    def __init__(self, store: str, batch_size: int = 16, num_workers: int = 0, correction: str = "drift",
                 combine: str = "positive", fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
                 split_salt: str = "lsi", image_root: str | None = None, resolution: int = 256,
                 with_labels: bool = True, with_readings: bool = True, check_masks: bool = True) -> None:
        super().__init__()
        self.save_hyperparameters()
        split_of("probe", tuple(fractions), split_salt)  # validates fractions early
        self.datasets: dict[str, MeasuredDataset] = {}

    def split_ids(self) -> dict[str, list[int]]:
        """Scene ids per split."""
        h = self.hparams
        store = CaptureStore.open(h.store)
        out: dict[str, list[int]] = {s: [] for s in _SPLITS}
        for sid in store.scene_ids():
            out[split_of(store.read(sid).key, tuple(h.fractions), h.split_salt)].append(sid)
        return out

    def check_model(self, module: Any) -> None:
        """Raise :class:`MaskMismatchError` unless ``module``'s masks and reading count fit this capture.

        ``module`` is a ``LatentImagingModule`` or holds one as ``.lsi`` (downstream heads); others pass.
        """
        lsi = module if hasattr(module, "optical") else getattr(module, "lsi", None)
        optical = getattr(lsi, "optical", None)
        if optical is None:
            return
        h = self.hparams
        man = CaptureStore.open(h.store).manifest
        codes = optical.mask_codes()  # [num_readings, H, W] in reading order
        own = {masks_sha256(codes)} | ({masks_sha256(codes[:optical.d])} if optical.complementary else set())
        if man.masks.sha256 not in own:
            raise MaskMismatchError(
                f"capture {h.store} was taken with masks sha256 {man.masks.sha256[:12]}... ({man.masks.count} masks, "
                f"ratio {man.masks.ratio}) but the model shows {codes.shape[0]} masks with sha256 "
                f"{masks_sha256(codes)[:12]}...: use the lsi.ckpt whose masks.npy made this capture (init_from / "
                "lsi_checkpoint), or capture again with this model's masks")
        n = man.masks.count * (2 if h.combine == "stacked" else 1)
        if n != optical.num_readings:
            raise MaskMismatchError(
                f"the model reads {optical.num_readings} values per scene but {h.store} gives {n} with "
                f"combine={h.combine!r}; a complementary model needs combine='stacked' on a complementary capture")

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        h = self.hparams
        for split, ids in self.split_ids().items():
            self.datasets[split] = MeasuredDataset(h.store, ids, h.correction, h.combine, h.image_root, h.resolution,
                                                   h.with_labels, h.with_readings)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        if not self.datasets:
            raise RuntimeError("call setup() before requesting a dataloader")
        ds = self.datasets[split]
        if len(ds) == 0:
            raise ValueError(f"the {split} split of {self.hparams.store} is empty ({len(ds)} scenes); capture more "
                             "scenes or change fractions")
        h = self.hparams
        trainer = getattr(self, "trainer", None)
        if h.check_masks and trainer is not None and trainer.lightning_module is not None:
            self.check_model(trainer.lightning_module)
        # training drops a ragged last batch: a batch of one would break the model's BatchNorm reading normaliser
        return DataLoader(ds, batch_size=h.batch_size, shuffle=shuffle, num_workers=h.num_workers,
                          drop_last=shuffle and len(ds) > h.batch_size, persistent_workers=h.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test", False)
