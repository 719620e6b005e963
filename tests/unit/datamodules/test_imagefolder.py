"""ImageFolderFaces: recursive listing, common keys, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from datamodules.celeba import CorruptImageError, DatasetNotFoundError
from datamodules.imagefolder import ImageFolderFaces


def test_image_folder_items(tmp_path):
    (tmp_path / "sub").mkdir()
    Image.fromarray(np.full((40, 40, 3), 255, np.uint8)).save(tmp_path / "b.png")
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "sub" / "a.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    ds = ImageFolderFaces(tmp_path, resolution=16)
    assert len(ds) == 2 and [ds[i]["path"] for i in range(2)] == ["b.png", "sub/a.jpg"]
    white, black = ds[0], ds[1]
    assert white["image"].shape == (3, 16, 16) and torch.allclose(white["image"], torch.ones(3, 16, 16))
    assert float(black["image"].max()) < 0.05
    assert white["identity"] == -1 and (white["attributes"] == -1).all() and not white["has_landmarks"]


def test_image_folder_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="not found"):
        ImageFolderFaces(tmp_path / "missing")
    with pytest.raises(DatasetNotFoundError, match="no images"):
        ImageFolderFaces(tmp_path)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(CorruptImageError, match="broken.jpg"):
        ImageFolderFaces(tmp_path)[0]
