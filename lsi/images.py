"""Image files: the one list of extensions, folder scanning and decoding into scenes.

Shared by the real-face datasets (``datamodules``) and the capture CLI's image-folder scenes (``hardware``):

* :data:`IMAGE_EXTENSIONS` - the suffixes (any case) that count as images;
* :func:`scan_images` - image files under a folder, recursive, as relative POSIX paths sorted as strings (the
  order is part of a capture store's manifest, so it must not depend on the platform);
* :func:`load_image` - decode one file to ``[3, R, R]`` float32 in [0, 1] (RGB, bicubic resize, optionally a
  centre crop to a square first); a file that cannot be decoded raises :class:`CorruptImageError` naming it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

__all__ = ["IMAGE_EXTENSIONS", "CorruptImageError", "load_image", "scan_images"]

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


class CorruptImageError(ValueError):
    """An image file exists but cannot be decoded (the message names the file)."""


def scan_images(root: str | Path, extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> list[str]:
    """Relative POSIX paths of the files under ``root`` (recursive) whose suffix is in ``extensions``, sorted."""
    root = Path(root)
    exts = {e.lower() for e in extensions}
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p.suffix.lower() in exts)


def load_image(path: str | Path, resolution: int = 256, center_crop: bool = True, what: str = "image") -> np.ndarray:
    """Decode ``path`` to ``[3, R, R]`` float32 in [0, 1] (``R = resolution``).

    ``center_crop``: cut the largest centred square first (scenes keep their aspect ratio); otherwise the whole
    image is resized to ``R x R``. ``what`` names the source in the error message (e.g. the dataset).
    """
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
    except FileNotFoundError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise CorruptImageError(f"{what}: cannot decode image file {path} ({err}); the file is corrupt or truncated: "
                                "replace it with a good copy (re-extract it from its original archive)") from err
    if center_crop:
        w, h = im.size
        s = min(w, h)
        im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    if im.size != (resolution, resolution):
        im = im.resize((resolution, resolution), Image.BICUBIC)
    arr = np.asarray(im, dtype=np.float32) / 255.0  # [R, R, 3]
    return np.ascontiguousarray(arr.transpose(2, 0, 1))
