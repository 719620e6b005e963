"""Tests for the masks.npy + JSON sidecar format (lsi.physics.mask_files)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lsi.physics.mask_files import (
    MaskFileNotFoundError,
    MaskFormatError,
    MaskMeta,
    load_masks,
    masks_sha256,
    save_masks,
    validate_masks,
)


def _binary(d: int = 4, hw: int = 256, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((d, hw, hw)) > 0.5).astype(np.uint8)


def test_round_trip_bytes_and_meta(tmp_path: Path) -> None:
    m = _binary()
    path = tmp_path / "masks.npy"
    meta = save_masks(path, m, ratio=16384, order=[3, 2, 1, 0], source="unit test")
    assert (tmp_path / "masks.json").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no temporaries left
    loaded, meta2 = load_masks(path)
    assert loaded.dtype == np.uint8 and np.array_equal(loaded, m)
    assert loaded.tobytes() == m.tobytes()
    assert meta2 == meta
    assert (meta2.count, meta2.height, meta2.width, meta2.bits, meta2.ratio) == (4, 256, 256, 1, 16384)
    assert meta2.order == [3, 2, 1, 0] and meta2.source == "unit test" and meta2.created
    assert meta2.sha256 == masks_sha256(m)
    assert MaskMeta.from_json(meta.to_json()) == meta


def test_multibit_round_trip(tmp_path: Path) -> None:
    m = np.random.default_rng(1).integers(0, 256, size=(2, 8, 8)).astype(np.uint8)
    save_masks(tmp_path / "m.npy", m, ratio=32, bits=8)
    loaded, meta = load_masks(tmp_path / "m.npy", shape=(8, 8), bits=8)
    assert np.array_equal(loaded, m) and meta.bits == 8
    with pytest.raises(MaskFormatError, match="8-bit masks but 1-bit"):
        load_masks(tmp_path / "m.npy", shape=(8, 8), bits=1)


def test_hash_changes_with_content_and_shape() -> None:
    m = _binary(2, 16)
    m2 = m.copy()
    m2[0, 0, 0] ^= 1
    assert masks_sha256(m) != masks_sha256(m2)
    assert masks_sha256(m) != masks_sha256(m.reshape(2, 8, 32))
    assert masks_sha256(m) == masks_sha256(m.copy())


@pytest.mark.parametrize("bad, pattern", [
    (np.zeros((256, 256), np.uint8), "3 dimensions"),
    (np.zeros((0, 256, 256), np.uint8), "no masks"),
    (np.zeros((2, 128, 256), np.uint8), "256x256"),
    (np.zeros((2, 256, 256), np.float32), "dtype uint8, got float32.*m > 0.5"),
])
def test_validate_rejects_bad_arrays(bad: np.ndarray, pattern: str) -> None:
    with pytest.raises(MaskFormatError, match=pattern):
        validate_masks(bad)


def test_validate_reports_non_binary_count_and_value() -> None:
    m = _binary(2)
    m[0, :3, 0] = 2
    m[1, 5, 5] = 255
    with pytest.raises(MaskFormatError) as info:
        validate_masks(m)
    msg = str(info.value)
    assert "4 pixel(s)" in msg and "2, 255" in msg and "(m > 0.5).astype(np.uint8)" in msg


def test_validate_multibit_range() -> None:
    m = np.full((1, 4, 4), 4, np.uint8)
    validate_masks(m, bits=3, shape=(4, 4))
    m[0, 0, 0] = 9
    with pytest.raises(MaskFormatError, match=r"\[0, 7\].*1 pixel"):
        validate_masks(m, bits=3, shape=(4, 4))
    with pytest.raises(MaskFormatError, match="bits"):
        validate_masks(m, bits=0)


def test_missing_file_and_sidecar(tmp_path: Path) -> None:
    with pytest.raises(MaskFileNotFoundError, match="does not exist"):
        load_masks(tmp_path / "nope.npy")
    np.save(tmp_path / "bare.npy", _binary(8))
    with pytest.raises(MaskFileNotFoundError) as info:
        load_masks(tmp_path / "bare.npy")
    assert "save_masks" in str(info.value) and "ratio=8192" in str(info.value)
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, ValueError)


def test_hash_mismatch_detected(tmp_path: Path) -> None:
    m = _binary(3)
    path = tmp_path / "masks.npy"
    save_masks(path, m, ratio=21845)
    m[1, 10, 10] ^= 1
    np.save(path, m)  # edited after export
    with pytest.raises(MaskFormatError, match="modified after export"):
        load_masks(path)


def test_sidecar_inconsistent_or_malformed(tmp_path: Path) -> None:
    path = tmp_path / "masks.npy"
    save_masks(path, _binary(2), ratio=32768)
    side = tmp_path / "masks.json"
    data = json.loads(side.read_text())
    data.pop("bits")
    side.write_text(json.dumps(data))
    with pytest.raises(MaskFormatError, match="missing key"):
        load_masks(path)
    side.write_text("{not json")
    with pytest.raises(MaskFormatError, match="not valid JSON"):
        load_masks(path)


def test_save_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(MaskFormatError, match="permutation"):
        save_masks(tmp_path / "a.npy", _binary(3), ratio=1, order=[0, 0, 1])
    with pytest.raises(MaskFormatError, match=".npy"):
        save_masks(tmp_path / "a.bin", _binary(3), ratio=1)
    with pytest.raises(MaskFormatError, match="only 0 and 1"):
        save_masks(tmp_path / "a.npy", _binary(3) * 2, ratio=1)
    assert not (tmp_path / "a.npy").exists()


def test_load_refuses_pickles(tmp_path: Path) -> None:
    path = tmp_path / "obj.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "obj.json").write_text("{}")
    with pytest.raises(MaskFormatError, match="pickled"):
        load_masks(path)
