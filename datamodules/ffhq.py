"""FFHQ images (no labels), as distributed by NVlabs/ffhq-dataset (config key ``data.ffhq_root``)::

    <ffhq_root>/images1024x1024/<%05d folder by thousands>/<%05d>.png     70,000 images, 00000 .. 69999
    <ffhq_root>/thumbnails128x128/<%05d folder by thousands>/<%05d>.png  (``thumbnails=True``)

Items: ``image [3,R,R]`` float [0,1], ``index`` (the FFHQ number) and the unknown-label markers of
:func:`datamodules.real_files.unknown_labels`. ``indices`` selects images (e.g. from a split file); a corrupt
file fails or is skipped and counted (``on_corrupt``).
"""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset

from datamodules.real_files import (
    CorruptImageHandling,
    DatasetNotFoundError,
    load_image,
    require,
    unknown_labels,
)

__all__ = ["FFHQ", "FFHQ_LAYOUT", "find_ffhq_images"]

FFHQ_LAYOUT = "<ffhq_root>/images1024x1024/<%05d folder>/<%05d>.png (config key: data.ffhq_root)"


def find_ffhq_images(root: str | Path, thumbnails: bool = False) -> dict[int, Path]:
    """``{FFHQ number: png path}`` under ``images1024x1024`` (or ``thumbnails128x128``)."""
    sub = "thumbnails128x128" if thumbnails else "images1024x1024"
    layout = FFHQ_LAYOUT.replace("images1024x1024", sub)
    folder = require(Path(root) / sub, "FFHQ", layout)
    files = {int(p.stem): p for p in sorted(folder.glob("*/*.png")) if p.stem.isdigit()}
    if not files:
        raise DatasetNotFoundError(f"FFHQ: no <%05d>.png images under {folder}. Expected layout: {layout}.")
    return files


class FFHQ(CorruptImageHandling, Dataset):
    """FFHQ images (no labels: attributes/segmentation -1, landmarks NaN, identity -1)."""

    def __init__(self, root: str | Path, resolution: int = 256, thumbnails: bool = False,
                 indices: list[int] | None = None, on_corrupt: str = "fail") -> None:
        self.root, self.resolution = Path(root), int(resolution)
        self.name = "FFHQ"
        self._init_corrupt_handling(on_corrupt)
        sub = "thumbnails128x128" if thumbnails else "images1024x1024"
        self.layout = FFHQ_LAYOUT.replace("images1024x1024", sub)
        self.files = files = find_ffhq_images(self.root, thumbnails)
        folder = self.root / sub
        if indices is None:
            self.indices = sorted(files)
        else:
            absent = [i for i in indices if i not in files]
            if absent:
                raise DatasetNotFoundError(f"FFHQ: the index list asks for {len(absent)} image(s) not under "
                                           f"{folder}, e.g. {absent[:5]}. Expected layout: {self.layout}.")
            self.indices = list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def image_path(self, i: int) -> Path:
        return self.files[self.indices[i]]

    def _item(self, i: int) -> dict:
        item = unknown_labels(self.resolution)
        item["image"] = load_image(self.image_path(i), self.resolution, self.name, self.layout)
        item["index"] = self.indices[i]
        return item
