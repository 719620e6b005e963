"""AFHQ (Animal Faces-HQ, clovaai/stargan-v2), the paper's second domain (config key ``data.root``)::

    <root>/train/{cat,dog,wild}/*.jpg|png      512x512 (AFHQ v1: ~5k per class; v2 likewise)
    <root>/val/{cat,dog,wild}/*.jpg|png        500 per class

:class:`AFHQ` reads one split and any of the categories (:data:`lsi.labels.AFHQ_CATEGORIES`); files are sorted
by category, then by name. Items: ``image [3,R,R]`` float [0,1], ``category`` (index into ``AFHQ_CATEGORIES``),
``index`` (position in the dataset), ``path`` (relative to ``root``) and the unknown-label markers of
:func:`datamodules.real_files.unknown_labels` (no face labels exist for animals). :class:`AFHQDataModule` trains
on ``train`` and validates / tests on ``val``.
"""

from __future__ import annotations

from pathlib import Path

from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, Dataset

from datamodules.real_files import CorruptImageHandling, DatasetNotFoundError, load_image, require, unknown_labels
from lsi.images import scan_images
from lsi.labels import AFHQ_CATEGORIES

__all__ = ["AFHQ", "AFHQ_LAYOUT", "AFHQDataModule"]

AFHQ_LAYOUT = "<root>/{train,val}/{cat,dog,wild}/*.jpg|png (config key: data.root)"


class AFHQ(CorruptImageHandling, Dataset):
    """One AFHQ split (``train`` or ``val``) of the chosen ``categories``."""

    def __init__(self, root: str | Path, split: str = "train",
                 categories: tuple[str, ...] | list[str] = AFHQ_CATEGORIES, resolution: int = 256,
                 on_corrupt: str = "fail") -> None:
        self.root, self.resolution = Path(root), int(resolution)
        self.name = f"AFHQ {split}"
        self._init_corrupt_handling(on_corrupt)
        if split not in ("train", "val"):
            raise ValueError(f"AFHQ split must be 'train' or 'val', got {split!r}")
        unknown = [c for c in categories if c not in AFHQ_CATEGORIES]
        if unknown or not categories:
            raise ValueError(f"AFHQ categories must be a non-empty subset of {AFHQ_CATEGORIES}, got {list(categories)}")
        split_dir = require(self.root / split, "AFHQ", AFHQ_LAYOUT)
        self.items: list[tuple[Path, int]] = []
        for cat in categories:
            folder = require(split_dir / cat, "AFHQ", AFHQ_LAYOUT)
            self.items += [(folder / rel, AFHQ_CATEGORIES.index(cat)) for rel in scan_images(folder)]
        if not self.items:
            raise DatasetNotFoundError(f"AFHQ: no images in {split_dir}/{{{','.join(categories)}}}. "
                                       f"Expected layout: {AFHQ_LAYOUT}.")

    def __len__(self) -> int:
        return len(self.items)

    def image_path(self, i: int) -> Path:
        return self.items[i][0]

    def _item(self, i: int) -> dict:
        path, category = self.items[i]
        item = unknown_labels(self.resolution)
        item["image"] = load_image(path, self.resolution, self.name, AFHQ_LAYOUT)
        item["category"], item["index"] = category, i
        item["path"] = path.relative_to(self.root).as_posix()
        return item


class AFHQDataModule(LightningDataModule):
    """Train on AFHQ ``train``, validate and test on ``val`` (the categories given, e.g. ``[wild]``)."""

    def __init__(self, root: str, categories: list[str] | None = None, batch_size: int = 8, resolution: int = 256,
                 num_workers: int = 0, on_corrupt: str = "fail") -> None:
        super().__init__()
        self.save_hyperparameters()
        self.train_set: AFHQ | None = None
        self.val_set: AFHQ | None = None

    def _set(self, split: str) -> AFHQ:
        h = self.hparams
        return AFHQ(h.root, split, tuple(h.categories or AFHQ_CATEGORIES), h.resolution, h.on_corrupt)

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit") and self.train_set is None:
            self.train_set = self._set("train")
        if self.val_set is None:
            self.val_set = self._set("val")

    def _loader(self, ds: Dataset | None, shuffle: bool) -> DataLoader:
        if ds is None:
            raise RuntimeError("call setup() before requesting a dataloader")
        h = self.hparams
        return DataLoader(ds, batch_size=h.batch_size, shuffle=shuffle, num_workers=h.num_workers,
                          drop_last=shuffle, persistent_workers=h.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, False)
