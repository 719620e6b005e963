"""What every real-image dataset shares: missing-file errors, unknown-label placeholders, decoding, corrupt files.

* :class:`DatasetNotFoundError` / :func:`require` - a missing folder or file, named with the dataset's layout;
* :func:`unknown_labels` - the markers for labels a dataset does not have (never invented);
* :func:`load_image` - decode through :func:`lsi.images.load_image` (which names a corrupt file);
* :class:`CorruptImageHandling` - the ``on_corrupt`` policy of a dataset: ``fail`` raises
  :class:`~lsi.images.CorruptImageError` naming the file; ``skip`` counts the file in ``skipped`` (path ->
  reason), warns once per file with the running count, and returns the next decodable item instead (so batches
  keep their size). Counts live in the process that decoded: with DataLoader workers each worker warns for its
  files; :func:`find_corrupt_images` checks a list of files up front (every file decoded once);
* :func:`indexed_images` - ``{index: path}`` for a folder of images named by number (``42.jpg``, ``00042.png``).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path

import torch

from lsi import images
from lsi.images import IMAGE_EXTENSIONS, CorruptImageError
from lsi.labels import CELEBA_ATTRIBUTE_NAMES

__all__ = ["ON_CORRUPT", "CorruptImageError", "CorruptImageHandling", "DatasetNotFoundError", "find_corrupt_images",
           "indexed_images", "load_image", "require", "unknown_labels"]

UNKNOWN = -1
NUM_LANDMARKS = 68
ON_CORRUPT = ("fail", "skip")


class DatasetNotFoundError(FileNotFoundError, ValueError):
    """A dataset folder or file is missing (the message names the dataset, layout and config key)."""


def require(path: Path, dataset: str, layout: str) -> Path:
    if not path.exists():
        raise DatasetNotFoundError(f"{dataset}: {path} not found. Expected layout: {layout}.")
    return path


def unknown_labels(resolution: int) -> dict:
    """Placeholders for labels a dataset does not have (attributes/segmentation -1, landmarks NaN, identity -1)."""
    return {
        "attributes": torch.full((len(CELEBA_ATTRIBUTE_NAMES),), float(UNKNOWN)),
        "segmentation": torch.full((resolution, resolution), UNKNOWN, dtype=torch.int64),
        "landmarks": torch.full((NUM_LANDMARKS, 2), float("nan")),
        "identity": UNKNOWN, "has_attributes": False, "has_segmentation": False, "has_landmarks": False,
    }


def load_image(path: Path, resolution: int, dataset: str, layout: str) -> torch.Tensor:
    """Decode an image file to ``[3,R,R]`` float [0,1] (bicubic resize); clear errors for missing/corrupt files."""
    require(path, dataset, layout)
    return torch.from_numpy(images.load_image(path, resolution, center_crop=False, what=dataset))


def find_corrupt_images(paths: Iterable[str | Path], dataset: str = "dataset") -> dict[str, str]:
    """Decode every file fully; ``{path: reason}`` for those that fail (missing files count as corrupt too)."""
    bad: dict[str, str] = {}
    for path in paths:
        try:
            images.load_image(path, resolution=8, center_crop=False, what=dataset)
        except (CorruptImageError, FileNotFoundError) as err:
            bad[str(path)] = str(err)
    return bad


def indexed_images(folder: Path, dataset: str, layout: str,
                   extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> dict[int, Path]:
    """``{int(stem): path}`` for the images directly in ``folder`` whose stem is a number (any zero padding)."""
    found: dict[int, Path] = {}
    exts = {e.lower() for e in extensions}
    for p in sorted(require(folder, dataset, layout).iterdir()):
        if p.suffix.lower() in exts and p.stem.isdigit():
            idx = int(p.stem)
            if idx in found:
                raise DatasetNotFoundError(f"{dataset}: {found[idx].name} and {p.name} in {folder} are both image "
                                           f"{idx}; keep one. Expected layout: {layout}.")
            found[idx] = p
    return found


class CorruptImageHandling:
    """Mixin for a Dataset: ``__getitem__`` goes through ``_item(i)`` under the ``on_corrupt`` policy.

    The dataset sets ``name``, ``on_corrupt`` (``fail`` | ``skip``) and implements ``_item(i)`` and
    ``image_path(i)``; ``skipped`` maps the image path of each skipped item to the error (which names the file
    that failed - the image or, for CelebAMask-HQ, one of its part masks).
    """

    name: str = "dataset"
    on_corrupt: str = "fail"

    def _init_corrupt_handling(self, on_corrupt: str) -> None:
        if on_corrupt not in ON_CORRUPT:
            raise ValueError(f"{self.name}: on_corrupt must be 'fail' or 'skip', got {on_corrupt!r}")
        self.on_corrupt = on_corrupt
        self.skipped: dict[str, str] = {}

    def _item(self, i: int) -> dict:
        raise NotImplementedError

    def image_path(self, i: int) -> Path:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, i: int) -> dict:
        if self.on_corrupt == "fail":
            return self._item(i)
        n = len(self)
        for k in range(n):
            j = (i + k) % n
            try:
                return self._item(j)
            except CorruptImageError as err:
                key = str(self.image_path(j))
                if key not in self.skipped:
                    self.skipped[key] = str(err)
                    warnings.warn(f"{self.name}: skipping corrupt item {key} ({err}); {len(self.skipped)} "
                                  "skipped so far (on_corrupt='skip')", stacklevel=2)
        raise CorruptImageError(f"{self.name}: all {n} images are corrupt (first: {next(iter(self.skipped))})")

