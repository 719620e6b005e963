"""The real-face LightningDataModule: train on FFHQ + the CelebA-HQ train part, validate / test on CelebA-HQ.

Which images go where:

* ``split_file`` set (the paper setting): the lists of that JSON file (:mod:`datamodules.splits`); when the file
  does not exist yet it is made from the folders with the paper's rule (``test_size`` 2,000 test images) and
  written, so every later run reads the same split;
* otherwise the older index rule of :func:`datamodules.celeba.split_indices` (last ``test_size`` test, the
  ``val_size`` before them validation) and every FFHQ image.

An empty validation part (the paper split's default) means no validation loop. ``on_corrupt`` (``fail`` | ``skip``)
applies to every dataset; :meth:`CelebAHQDataModule.corrupt_report` counts the files skipped in this process.
"""

from __future__ import annotations

from lightning.pytorch import LightningDataModule
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from datamodules.celeba import CelebAMaskHQ
from datamodules.ffhq import FFHQ
from datamodules.splits import make_paper_split_file

__all__ = ["CelebAHQDataModule"]


class CelebAHQDataModule(LightningDataModule):
    """FFHQ (+ the CelebA-HQ train part) for training, CelebA-HQ for validation and testing (paper: 2,000 test).

    ``layout`` / ``image_dir`` / ``attribute_source`` / ``celeba_root``: the CelebA-HQ layout
    (:mod:`datamodules.celeba`); ``ffhq_root`` / ``ffhq_thumbnails``: FFHQ (:mod:`datamodules.ffhq`).
    """

    def __init__(self, root: str, ffhq_root: str | None = None, batch_size: int = 8, resolution: int = 256,
                 num_workers: int = 0, test_size: int = 2000, val_size: int = 500,
                 attribute_source: str | None = None, celeba_root: str | None = None,
                 landmarks_cache: str | None = None, ffhq_thumbnails: bool = False, layout: str = "auto",
                 image_dir: str | None = None, split_file: str | None = None, on_corrupt: str = "fail") -> None:
        super().__init__()
        self.save_hyperparameters()
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None
        self._split: dict | None = None
        self._datasets: list[Dataset] = []

    def split(self) -> dict | None:
        """The split file's content (made and written on first use), or None without ``split_file``."""
        h = self.hparams
        if h.split_file and self._split is None:
            self._split = make_paper_split_file(h.split_file, h.root, h.ffhq_root, test_size=h.test_size,
                                                val_size=h.val_size, ffhq_thumbnails=h.ffhq_thumbnails,
                                                layout=h.layout, image_dir=h.image_dir)
        return self._split

    def _celeba(self, part: str) -> CelebAMaskHQ:
        h = self.hparams
        split = self.split()
        ds = CelebAMaskHQ(h.root, split=part, resolution=h.resolution, test_size=h.test_size, val_size=h.val_size,
                          attribute_source=h.attribute_source, celeba_root=h.celeba_root,
                          landmarks=h.landmarks_cache, layout=h.layout, image_dir=h.image_dir,
                          indices=None if split is None else split["celeba_hq"][part], on_corrupt=h.on_corrupt)
        self._datasets.append(ds)
        return ds

    def _ffhq(self) -> FFHQ | None:
        h = self.hparams
        split = self.split()
        listed = None if split is None else split["ffhq"]["train"]
        if not h.ffhq_root:
            if listed:
                raise ValueError(f"the split file {h.split_file} lists {len(listed)} FFHQ training images but "
                                 "data.ffhq_root is not set; set it to the FFHQ folder")
            return None
        if listed is not None and not listed:
            return None
        ds = FFHQ(h.ffhq_root, resolution=h.resolution, thumbnails=h.ffhq_thumbnails, indices=listed,
                  on_corrupt=h.on_corrupt)
        self._datasets.append(ds)
        return ds

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit") and self.train_set is None:
            parts: list[Dataset] = [ds for ds in (self._ffhq(), self._celeba("train")) if ds is not None and len(ds)]
            if not parts:
                raise ValueError("no training images: the CelebA-HQ train part is empty (test_size + val_size cover "
                                 "the whole set) and data.ffhq_root is not set")
            self.train_set = parts[0] if len(parts) == 1 else ConcatDataset(parts)
        if stage in (None, "fit", "validate") and self.val_set is None:
            self.val_set = self._celeba("val")
        if stage in (None, "test", "predict") and self.test_set is None:
            self.test_set = self._celeba("test")

    def corrupt_report(self) -> dict[str, int]:
        """``{dataset name: files skipped as corrupt}`` in this process (``on_corrupt='skip'``)."""
        report: dict[str, int] = {}
        for ds in self._datasets:
            report[ds.name] = report.get(ds.name, 0) + len(ds.skipped)
        return report

    def _loader(self, ds: Dataset | None, shuffle: bool) -> DataLoader | list:
        if ds is None:
            raise RuntimeError("call setup() before requesting a dataloader")
        if len(ds) == 0:  # an empty validation part: Lightning skips the loop
            return []
        h = self.hparams
        return DataLoader(ds, batch_size=h.batch_size, shuffle=shuffle, num_workers=h.num_workers,
                          drop_last=shuffle, persistent_workers=h.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, True)

    def val_dataloader(self) -> DataLoader | list:
        return self._loader(self.val_set, False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, False)

