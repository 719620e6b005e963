"""Tests for lsi.report.mask_figures.save_mask_grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lsi.physics.patterns import hadamard
from lsi.report.mask_figures import save_mask_grid


def test_writes_valid_png_from_uint8(tmp_path: Path) -> None:
    masks = (np.random.default_rng(0).random((10, 32, 32)) > 0.5).astype(np.uint8)
    out = save_mask_grid(masks, tmp_path / "sub" / "grid.png", max_masks=6, ncols=3, title="test")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(out) as im:
        im.verify()
    with Image.open(out) as im:
        w, h = im.size
        arr = np.asarray(im.convert("L"))
    assert w > h  # 3 columns x 2 rows
    assert arr.std() > 10  # not blank


def test_accepts_tensor_and_rejects_bad_shape(tmp_path: Path) -> None:
    out = save_mask_grid(hadamard(4, 16), tmp_path / "t.png", title=None)
    with Image.open(out) as im:
        assert im.format == "PNG"
    with pytest.raises(ValueError, match=r"\[d, H, W\]"):
        save_mask_grid(torch.zeros(16, 16), tmp_path / "bad.png")
