"""MeasuredDataModule over small simulated captures: shapes, labels, corrections, deterministic splits."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from datamodules.measured import MeasuredDataModule, MeasuredDataset, split_of
from hardware.rig import RigConfig, SimNoiseConfig, rig_to_dict
from lsi.cli.capture import main
from lsi.images import load_image as load_image_file
from lsi.physics.mask_files import save_masks
from lsi.physics.operator import measure

GRID, D = 32, 24


def write_rig(path: Path, grid: int, scale: tuple[int, int], drift: float = 0.0) -> Path:
    rig = RigConfig()
    rig.dmd.roi.mask_shape, rig.dmd.roi.scale = (grid, grid), scale
    rig.calibration.every, rig.calibration.position = 2, "both"
    rig.sim = dataclasses.replace(rig.sim, drift_per_acquisition=drift, blur_sigma=0.0, noise=SimNoiseConfig(
        photons_full_scale=1e6, read_noise=1e-4, adc_bits=16, full_scale=4.0, dark_offset=0.02, ambient=0.005))
    path.write_text(yaml.safe_dump(rig_to_dict(rig)))
    return path


def ideal(masks: np.ndarray, img: np.ndarray) -> np.ndarray:
    """Noiseless readings ``[d]`` of ``img [3,H,W]`` through ``masks [d,H,W]``: the measurement operator itself."""
    return measure(torch.from_numpy(masks), torch.from_numpy(img)[None].double())[0].numpy()


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("measured")
    rng = np.random.default_rng(0)
    masks = (rng.random((D, GRID, GRID)) > 0.5).astype(np.uint8)
    save_masks(tmp / "masks.npy", masks, ratio=GRID * GRID // D, bits=1)
    (tmp / "imgs").mkdir()
    for i in range(10):
        base = rng.random((4, 4, 3))  # smooth images so readings vary between masks
        img = np.asarray(Image.fromarray((base * 255).astype(np.uint8)).resize((GRID, GRID), Image.BILINEAR))
        Image.fromarray(img).save(tmp / "imgs" / f"{i:02d}.png")
    out = tmp / "cap"
    rig = write_rig(tmp / "rig.yaml", GRID, (4, 8), drift=0.03)
    assert main(["--masks", str(tmp / "masks.npy"), "--images", str(tmp / "imgs"), "--rig", str(rig),
                 "--display", "sim", "--out", str(out), "--simulate", "--resolution", str(GRID), "--complementary",
                 "--no-progress"]) == 0
    return {"out": out, "masks": masks, "imgs": tmp / "imgs", "tmp": tmp}


def test_items_shapes_and_drift_correction(capture):
    ds = MeasuredDataset(capture["out"], correction="drift", resolution=GRID)
    assert len(ds) == 10
    item = ds[3]
    assert item["readings"].shape == (D,) and item["readings"].dtype == torch.float32
    assert item["image"].shape == (3, GRID, GRID) and item["key"] == "03.png"
    assert item["has_attributes"] is False and item["has_landmarks"] is False
    img = load_image_file(capture["imgs"] / "03.png", GRID)
    np.testing.assert_allclose(item["image"].numpy(), img)
    errs = {}
    for mode in ("drift", "normalize"):
        ds = MeasuredDataset(capture["out"], correction=mode, resolution=GRID)
        errs[mode] = max(np.abs(ds.readings[i].numpy() - ideal(capture["masks"], load_image_file(
            capture["imgs"] / f"{i:02d}.png", GRID))).max() for i in range(10))
    assert errs["drift"] < 0.01  # sources drift by 3% per acquisition; interpolated references remove it
    assert errs["normalize"] > 3 * errs["drift"]
    raw = MeasuredDataset(capture["out"], correction="none", resolution=GRID)
    assert raw.readings[0].mean() > 0.02  # raw detector units include the dark offset


def test_complementary_combinations(capture):
    pos = MeasuredDataset(capture["out"], combine="positive", resolution=GRID).readings
    stacked = MeasuredDataset(capture["out"], combine="stacked", resolution=GRID).readings
    diff = MeasuredDataset(capture["out"], combine="differential", resolution=GRID).readings
    assert stacked.shape == (10, 2 * D) and torch.equal(stacked[:, :D], pos)
    torch.testing.assert_close(diff, stacked[:, :D] - stacked[:, D:])
    img = load_image_file(capture["imgs"] / "00.png", GRID)
    # inverse masks read mean(scene) - mask reading
    torch.testing.assert_close(stacked[0, D:].double(), torch.from_numpy(img.mean() - ideal(capture["masks"], img)),
                               atol=0.01, rtol=0)


def test_deterministic_splits_and_loaders(capture):
    dm = MeasuredDataModule(str(capture["out"]), batch_size=2, fractions=(0.6, 0.2, 0.2), resolution=GRID)
    ids = dm.split_ids()
    assert sorted(sum(ids.values(), [])) == list(range(10))
    assert ids == MeasuredDataModule(str(capture["out"]), fractions=(0.6, 0.2, 0.2)).split_ids()
    keys = {f"{i:02d}.png": split_of(f"{i:02d}.png", (0.6, 0.2, 0.2)) for i in range(10)}
    assert [i for i in range(10) if keys[f"{i:02d}.png"] == "train"] == ids["train"]
    assert split_of("x", (0.6, 0.2, 0.2), salt="a") in ("train", "val", "test")
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert batch["readings"].shape == (2, D) and batch["image"].shape == (2, 3, GRID, GRID)
    with pytest.raises(ValueError, match="sum"):
        MeasuredDataModule(str(capture["out"]), fractions=(0.5, 0.2, 0.2))


def test_moved_images_and_bad_options(capture, tmp_path):
    moved = tmp_path / "moved"
    shutil.copytree(capture["imgs"], moved)
    ds = MeasuredDataset(capture["out"], image_root=moved, resolution=GRID)
    assert ds[0]["image"].shape == (3, GRID, GRID)
    with pytest.raises(FileNotFoundError, match="image_root"):
        MeasuredDataset(capture["out"], image_root=tmp_path / "nowhere", resolution=GRID)[0]
    with pytest.raises(ValueError, match="correction"):
        MeasuredDataset(capture["out"], correction="magic")


def test_embedded_capture_yields_labels(tmp_path):
    from datamodules.synthetic import SyntheticFaces

    rng = np.random.default_rng(1)
    masks = (rng.random((8, 256, 256)) > 0.5).astype(np.uint8)
    save_masks(tmp_path / "m.npy", masks, ratio=65536 // 8, bits=1)
    rig = write_rig(tmp_path / "rig.yaml", 256, (2, 4))
    out = tmp_path / "cap"
    args = ["--masks", str(tmp_path / "m.npy"), "--dataset", "embedded", "--split", "test", "--identities", "2",
            "--images-per-identity", "2", "--count", "4", "--rig", str(rig), "--display", "sim", "--out", str(out),
            "--simulate", "--no-progress"]
    assert main(args) == 0
    dm = MeasuredDataModule(str(out), batch_size=4, fractions=(1.0, 0.0, 0.0))
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert batch["readings"].shape == (4, 8) and batch["image"].shape == (4, 3, 256, 256)
    assert batch["landmarks"].shape == (4, 68, 2) and batch["segmentation"].shape == (4, 256, 256)
    assert batch["attributes"].ndim == 2 and batch["identity"].shape == (4,)
    assert bool(batch["has_landmarks"].all())
    ref = SyntheticFaces("test", 2, 2, resolution=256, seed=0)
    k = int(batch["scene_id"][0])
    torch.testing.assert_close(batch["image"][0], torch.as_tensor(ref[k]["image"]).float())
    assert int(batch["identity"][0]) == int(ref[k]["identity"])
    img = ref[k]["image"].numpy()
    # measured (drift-corrected) readings follow the encoder convention on the re-rendered image
    np.testing.assert_allclose(batch["readings"][0].numpy(), ideal(masks, img), atol=0.01)
