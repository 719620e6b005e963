"""``CachedScenesDataModule``: the training split of any scene datamodule served from a :class:`SceneCache`.

The cache is written once (``setup("fit")``, with a progress bar) and shared by every later run with the same
data: ``make table`` renders the procedural training scenes once for all eight ratios. The training loader then
yields only shuffled row indices, ``{"index": [B] int64}``: a module trained on it reads what it needs from
:attr:`CachedScenesDataModule.train_cache` (scenes as uint8, labels, derived arrays such as E(I)), so a step
that needs no scene (a read-out trained on cached readings) costs no image traffic at all. Validation, test and
predict loaders are the source datamodule's own.

YAML::

    data:
      class_path: datamodules.CachedScenesDataModule
      init_args:
        source: {class_path: datamodules.SyntheticFacesDataModule, init_args: {...}}
        cache_dir: runs/cache
        batch_size: 256
"""

from __future__ import annotations

from pathlib import Path

import lightning
import torch
from torch.utils.data import DataLoader, Dataset

from .scene_cache import SceneCache, SceneCacheError

__all__ = ["CachedScenesDataModule"]


class _Indices(Dataset):
    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return i


def _collate_indices(ids: list[int]) -> dict[str, torch.Tensor]:
    return {"index": torch.tensor(ids, dtype=torch.int64)}


class CachedScenesDataModule(lightning.LightningDataModule):
    """Index batches over ``source.train_set`` cached in ``cache_dir``; val/test/predict delegate to ``source``.

    Args:
        source: a datamodule with ``train_set`` (items with ``image [3,S,S]`` in [0,1] and labels) whose dataset
            has ``cache_fingerprint()`` (what defines its content).
        cache_dir: where caches live (one sub-folder per dataset fingerprint).
        batch_size: rows per training batch (the last incomplete batch of an epoch is dropped).
        seed: shuffling seed.
        progress: progress bar while the cache is written.
    """

    def __init__(self, source: lightning.LightningDataModule, cache_dir: str = "runs/cache", batch_size: int = 256,
                 seed: int = 0, progress: bool = True) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.source, self.cache_dir, self.batch_size = source, Path(cache_dir), batch_size
        self.seed, self.progress = seed, progress
        self.train_cache: SceneCache | None = None

    def setup(self, stage: str | None = None) -> None:
        self.source.setup(stage)
        if stage in (None, "fit") and self.train_cache is None:
            self.train_cache = self.cache("train")

    def cache(self, split: str = "train") -> SceneCache:
        """The cache of ``source.<split>_set`` (written first if absent)."""
        dataset = getattr(self.source, f"{split}_set", None)
        if dataset is None:
            raise SceneCacheError(f"{type(self.source).__name__} has no {split}_set to cache")
        fingerprint = getattr(dataset, "cache_fingerprint", None)
        if fingerprint is None:
            raise SceneCacheError(f"{type(dataset).__name__} has no cache_fingerprint(); it cannot be cached safely "
                                  "(the cache could not tell when its content changed)")
        return SceneCache.build(dataset, self.cache_dir, f"{type(dataset).__name__.lower()}-{split}", fingerprint(),
                                progress=self.progress)

    def train_dataloader(self) -> DataLoader:
        if self.train_cache is None:
            self.setup("fit")
        assert self.train_cache is not None
        n = len(self.train_cache)
        if n < self.batch_size:
            raise ValueError(f"the training split has {n} scenes, fewer than batch_size {self.batch_size}; "
                             "lower data.init_args.batch_size or use more training identities")
        gen = torch.Generator().manual_seed(self.seed)
        return DataLoader(_Indices(n), batch_size=self.batch_size, shuffle=True, generator=gen, drop_last=True,
                          collate_fn=_collate_indices)

    def val_dataloader(self):
        return self.source.val_dataloader()

    def test_dataloader(self):
        return self.source.test_dataloader()

    def predict_dataloader(self):
        return self.source.predict_dataloader()
