"""lsi.images: one list of extensions, one folder scan (order fixed), one loader with a clear error."""

import numpy as np
import pytest
from PIL import Image

from lsi.images import IMAGE_EXTENSIONS, CorruptImageError, load_image, scan_images


def _save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_scan_is_recursive_case_blind_and_sorted_as_strings(tmp_path):
    pixel = np.zeros((2, 2, 3), np.uint8)
    for rel in ("b/x.PNG", "a-c.jpg", "a/b.jpeg", "notes.txt"):
        if rel.endswith(".txt"):
            (tmp_path / rel).write_text("no image")
        else:
            _save(tmp_path / rel, pixel)
    # string order: '-' sorts before '/', so "a-c.jpg" comes before "a/b.jpeg"
    assert scan_images(tmp_path) == ["a-c.jpg", "a/b.jpeg", "b/x.PNG"]
    assert scan_images(tmp_path, (".png",)) == ["b/x.PNG"]
    assert ".png" in IMAGE_EXTENSIONS and ".webp" in IMAGE_EXTENSIONS


def test_load_crops_or_stretches_to_a_square(tmp_path):
    wide = np.zeros((4, 8, 3), np.uint8)
    wide[:, 2:6] = 255  # the centred 4x4 square is white, the sides black
    _save(tmp_path / "wide.png", wide)
    cropped = load_image(tmp_path / "wide.png", resolution=4)
    assert cropped.shape == (3, 4, 4) and cropped.dtype == np.float32
    np.testing.assert_array_equal(cropped, np.ones((3, 4, 4), np.float32))
    stretched = load_image(tmp_path / "wide.png", resolution=4, center_crop=False)
    assert stretched.shape == (3, 4, 4) and stretched.min() < 0.5  # the black sides are kept


def test_corrupt_file_is_named_and_missing_file_is_not_called_corrupt(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(CorruptImageError, match="scenes: cannot decode image file .*broken.png"):
        load_image(tmp_path / "broken.png", what="scenes")
    with pytest.raises(FileNotFoundError):
        load_image(tmp_path / "absent.png")
