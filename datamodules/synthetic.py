"""Dataset and LightningDataModule of the procedural face world (the default data of every command).

Item ``i`` of a split shows identity ``j = i // images_per_identity`` in its ``i % images_per_identity``-th
photo. Identity components of the world latent come from the identity seed
``seed * 10_000_000 + split_offset + j`` (``split_offset``: train 0, val 1_000_000, test 2_000_000), so splits
never share a person; nuisance components come from a hash of (identity seed, photo index). Images are
quantised to 8 bits, like real photographs, so cached (uint8) and freshly rendered items are identical.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

import lightning
import torch
from torch.utils.data import DataLoader, Dataset

from .faces.render import render_faces
from .faces.world import sample_world_latent, to_gaussian


@cache
def renderer_source_hash() -> str:
    """sha256 (16 hex digits) of the procedural world's source files (``datamodules/faces/*.py``)."""
    h = hashlib.sha256()
    for path in sorted((Path(__file__).parent / "faces").glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


SPLIT_OFFSETS = {"train": 0, "val": 1_000_000, "test": 2_000_000}
SEED_STRIDE = 10_000_000
_MASK64 = (1 << 64) - 1


class DatasetConfigError(ValueError):
    """Invalid dataset or datamodule configuration."""


def _mix(a: int, b: int) -> int:
    """SplitMix64-style hash of two integers -> non-negative 63-bit seed."""
    z = (a * 0x9E3779B97F4A7C15 + b * 0xBF58476D1CE4E5B9 + 0x94D049BB133111EB) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (z ^ (z >> 31)) >> 1


class SyntheticFaces(Dataset):
    """Faces of ``num_identities`` people x ``images_per_identity`` photos with exact ground truth.

    Items are dicts: ``image [3,S,S]`` float in [0,1], ``attributes [A]`` float {0,1}, ``landmarks [68,2]``
    (x, y in [0,1]), ``segmentation [S,S]`` int64, ``identity`` int (``split_offset + j``: unique across
    splits), ``z [K]`` = ``to_gaussian(u)``, ``index`` int. ``__getitems__`` renders a whole batch at once.
    """

    def __init__(self, split: str = "train", num_identities: int = 1000, images_per_identity: int = 8,
                 resolution: int = 256, seed: int = 0, cache: bool = False):
        if split not in SPLIT_OFFSETS:
            raise DatasetConfigError(f"split must be one of {sorted(SPLIT_OFFSETS)}, got {split!r}")
        if not 0 < num_identities <= 1_000_000:
            raise DatasetConfigError(f"num_identities must be in [1, 1000000], got {num_identities}")
        if images_per_identity < 1:
            raise DatasetConfigError(f"images_per_identity must be >= 1, got {images_per_identity}")
        if seed < 0:
            raise DatasetConfigError(f"seed must be >= 0, got {seed}")
        self.split, self.num_identities, self.images_per_identity = split, num_identities, images_per_identity
        self.resolution, self.seed, self.cache = resolution, seed, cache
        self._cache: dict[int, dict[str, Any]] = {}

    def __len__(self) -> int:
        return self.num_identities * self.images_per_identity

    def identity_of(self, index: int) -> int:
        """Global identity id of item ``index`` (unique across splits)."""
        return SPLIT_OFFSETS[self.split] + index // self.images_per_identity

    def identity_seed(self, index: int) -> int:
        return self.seed * SEED_STRIDE + self.identity_of(index)

    def latent(self, index: int) -> torch.Tensor:
        """World latent ``u [K]`` of item ``index``."""
        self._check(index)
        id_seed = self.identity_seed(index)
        return sample_world_latent(id_seed, _mix(id_seed, index % self.images_per_identity))

    def _check(self, index: int) -> None:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a {self.split} set of {len(self)} items")

    def _render(self, indices: list[int]) -> list[dict[str, Any]]:
        u = torch.stack([self.latent(i) for i in indices])
        out = render_faces(u, self.resolution)
        image = out.image.mul(255.0).round_().to(torch.uint8)
        seg = out.segmentation.to(torch.uint8)
        z = to_gaussian(u)
        attrs = out.attributes.to(torch.uint8)
        return [{"image": image[n], "segmentation": seg[n], "landmarks": out.landmarks[n], "attributes": attrs[n],
                 "identity": self.identity_of(i), "z": z[n], "index": i} for n, i in enumerate(indices)]

    @staticmethod
    def _decode(raw: dict[str, Any]) -> dict[str, Any]:
        return {"image": raw["image"].float().div_(255.0), "attributes": raw["attributes"].float(),
                "landmarks": raw["landmarks"].clone(), "segmentation": raw["segmentation"].long(),
                "identity": raw["identity"], "z": raw["z"].clone(), "index": raw["index"]}

    def __getitems__(self, indices: list[int]) -> list[dict[str, Any]]:
        indices = [int(i) for i in indices]
        for i in indices:
            self._check(i)
        missing = [i for i in dict.fromkeys(indices) if i not in self._cache]
        rendered = dict(zip(missing, self._render(missing))) if missing else {}
        if self.cache:
            self._cache.update(rendered)
        return [self._decode(self._cache[i] if i in self._cache else rendered[i]) for i in indices]

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.__getitems__([index])[0]

    def cache_fingerprint(self) -> dict[str, Any]:
        """What defines this split's content (for :class:`datamodules.scene_cache.SceneCache`): the split's
        settings and a hash of the renderer's source, so a changed renderer never reuses old scenes."""
        return {"dataset": "SyntheticFaces", "split": self.split, "num_identities": self.num_identities,
                "images_per_identity": self.images_per_identity, "resolution": self.resolution, "seed": self.seed,
                "renderer": renderer_source_hash()}


class SyntheticFacesDataModule(lightning.LightningDataModule):
    """Train/val/test/predict loaders over :class:`SyntheticFaces` (predict = test split).

    The train loader is shuffled with a generator seeded by ``seed``; val/test/predict are in order.
    """

    def __init__(self, batch_size: int = 32, num_train_identities: int = 2000, num_val_identities: int = 100,
                 num_test_identities: int = 100, images_per_identity: int = 8, resolution: int = 256,
                 num_workers: int = 0, seed: int = 0, cache: bool = False):
        super().__init__()
        if batch_size < 1:
            raise DatasetConfigError(f"batch_size must be >= 1, got {batch_size}")
        if num_workers < 0:
            raise DatasetConfigError(f"num_workers must be >= 0, got {num_workers}")
        self.save_hyperparameters()
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        kw = dict(images_per_identity=images_per_identity, resolution=resolution, seed=seed, cache=cache)
        self.train_set = SyntheticFaces("train", num_train_identities, **kw)
        self.val_set = SyntheticFaces("val", num_val_identities, **kw)
        self.test_set = SyntheticFaces("test", num_test_identities, **kw)

    def _loader(self, ds: SyntheticFaces, shuffle: bool) -> DataLoader:
        gen = torch.Generator().manual_seed(self.seed) if shuffle else None
        return DataLoader(ds, batch_size=self.batch_size, shuffle=shuffle, generator=gen,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)
