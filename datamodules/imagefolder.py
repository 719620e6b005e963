"""Any folder of face photographs as a dataset with the common item keys (labels unknown).

Useful for evaluating on one's own aligned face crops (e.g. the scenes shown on the rig's monitor). Files are
found recursively (:func:`lsi.images.scan_images`), sorted by relative path; items are ``image [3,R,R]`` float
[0,1] plus the unknown-label placeholders of :mod:`datamodules.celeba` (attributes/segmentation -1, landmarks NaN,
identity -1), ``index`` and ``path`` (relative path string).
"""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset

from datamodules.celeba import DatasetNotFoundError, load_image, unknown_labels
from lsi.images import IMAGE_EXTENSIONS, scan_images


class ImageFolderFaces(Dataset):
    """Images under ``root`` (recursive), resized to ``resolution`` x ``resolution`` (bicubic)."""

    def __init__(self, root: str | Path, resolution: int = 256,
                 extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> None:
        self.root, self.resolution = Path(root), int(resolution)
        self.layout = f"<root>/**/*{{{','.join(extensions)}}}"
        if not self.root.is_dir():
            raise DatasetNotFoundError(f"image folder {self.root} not found. Expected layout: {self.layout}.")
        self.files = [self.root / rel for rel in scan_images(self.root, extensions)]
        if not self.files:
            raise DatasetNotFoundError(f"image folder {self.root} holds no images. Expected layout: {self.layout}.")

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict:
        item = unknown_labels(self.resolution)
        item["image"] = load_image(self.files[i], self.resolution, f"image folder {self.root}", self.layout)
        item["index"] = i
        item["path"] = str(self.files[i].relative_to(self.root))
        return item
