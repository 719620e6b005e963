"""Real-dataset loaders (CelebAMask-HQ, CelebA, FFHQ) on tiny fixtures written in the exact real formats."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from datamodules.celeba import (
    ATTRIBUTE_NAMES_CELEBA,
    FFHQ,
    SEG_CLASSES,
    CelebAHQDataModule,
    CelebAMaskHQ,
    CorruptImageError,
    DatasetNotFoundError,
    build_landmark_cache,
    split_indices,
)
from tests.fixtures import make_celeba_fixture as fixture_mod


@pytest.fixture()
def celeba(tmp_path):
    return fixture_mod.make_celebamask_hq(tmp_path, n=6, size=64, mask_size=32)


def test_attribute_names_match_fixture_header():
    assert ATTRIBUTE_NAMES_CELEBA == tuple(fixture_mod.ATTRS)
    assert len(ATTRIBUTE_NAMES_CELEBA) == 40 and ATTRIBUTE_NAMES_CELEBA[20] == "Male"
    assert SEG_CLASSES[0] == "background" and SEG_CLASSES[1:] == fixture_mod.PARTS


def test_split_indices_last_images_are_test():
    idx = list(range(10))
    assert split_indices(idx, "test", 3, 2) == [7, 8, 9]
    assert split_indices(idx, "val", 3, 2) == [5, 6]
    assert split_indices(idx, "train", 3, 2) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="test_size"):
        split_indices(idx, "test", 8, 5)


def test_items_keys_shapes_and_ground_truth(celeba):
    ds = CelebAMaskHQ(celeba.root, split="all", resolution=32, test_size=0, val_size=0)
    assert len(ds) == 6
    for i in range(6):
        item = ds[i]
        assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.float32
        assert 0.0 <= float(item["image"].min()) and float(item["image"].max()) <= 1.0
        assert item["index"] == i and item["identity"] == -1
        np.testing.assert_array_equal(item["attributes"].numpy(), celeba.attributes[i].astype(np.float32))
        assert item["segmentation"].dtype == torch.int64
        # mask resolution 32 == loader resolution: the merged map must equal the written ground truth exactly
        np.testing.assert_array_equal(item["segmentation"].numpy(), celeba.segmentation[i])
        assert item["landmarks"].shape == (68, 2) and torch.isnan(item["landmarks"]).all()
        assert item["has_attributes"] and item["has_segmentation"] and not item["has_landmarks"]


def test_overwrite_order_later_parts_win(celeba):
    ds = CelebAMaskHQ(celeba.root, split="all", resolution=32, test_size=0, val_size=0)
    seg = ds[0]["segmentation"]
    # eyes/nose lie inside skin: the later parts must overwrite skin (class 1)
    assert (seg == SEG_CLASSES.index("l_eye")).any() and (seg == SEG_CLASSES.index("nose")).any()
    assert (seg == SEG_CLASSES.index("cloth")).sum() > 0


def test_resize_to_256_nearest_segmentation(celeba):
    ds = CelebAMaskHQ(celeba.root, split="test", resolution=256, test_size=2, val_size=1)
    assert [ds[i]["index"] for i in range(len(ds))] == [4, 5]
    item = ds[1]
    assert item["image"].shape == (3, 256, 256) and item["segmentation"].shape == (256, 256)
    labels = set(item["segmentation"].unique().tolist())
    assert labels <= set(np.unique(celeba.segmentation[5]).tolist())  # nearest: no new labels


def test_celeba_attribute_source_and_identities(celeba):
    ds = CelebAMaskHQ(celeba.root, split="all", resolution=16, test_size=0, val_size=0,
                      attribute_source="celeba", celeba_root=celeba.celeba_root, segmentation=False)
    for i in range(6):
        item = ds[i]
        np.testing.assert_array_equal(item["attributes"].numpy(), celeba.celeba_attributes[i].astype(np.float32))
        assert item["identity"] == celeba.identities[i]
        assert not item["has_segmentation"] and (item["segmentation"] == -1).all()


def test_landmark_cache_and_provider(celeba, tmp_path):
    ds = CelebAMaskHQ(celeba.root, split="all", resolution=32, test_size=0, val_size=0, segmentation=False)

    calls = []

    def provider(img):  # a deterministic fake landmark detector that finds a face on every other call
        calls.append(img.shape)
        return torch.arange(136, dtype=torch.float32).reshape(68, 2) % 31, len(calls) % 2 == 1

    cache = build_landmark_cache(ds, provider, tmp_path / "lm.npy")
    assert calls == [(3, 32, 32)] * 6
    assert cache.shape == (6, 68, 2)
    assert np.isfinite(cache[0::2]).all() and np.isnan(cache[1::2]).all()
    ds2 = CelebAMaskHQ(celeba.root, split="all", resolution=32, test_size=0, val_size=0, segmentation=False,
                       landmarks=str(tmp_path / "lm.npy"))
    expected = (torch.arange(136, dtype=torch.float32).reshape(68, 2) % 31 + 0.5) / 32
    assert ds2[2]["has_landmarks"] and torch.allclose(ds2[2]["landmarks"], expected)
    assert not ds2[3]["has_landmarks"] and torch.isnan(ds2[3]["landmarks"]).all()
    ds3 = CelebAMaskHQ(celeba.root, split="all", resolution=32, test_size=0, val_size=0, segmentation=False,
                       landmarks=provider)
    calls.clear()
    first, second = ds3[0], ds3[1]
    assert first["has_landmarks"] and torch.allclose(first["landmarks"], expected)
    assert not second["has_landmarks"] and torch.isnan(second["landmarks"]).all()


def test_missing_root_and_files_give_clear_errors(celeba, tmp_path):
    with pytest.raises(DatasetNotFoundError, match="CelebAMask-HQ.*data.root"):
        CelebAMaskHQ(tmp_path / "nope")
    (celeba.root / "CelebA-HQ-img" / "2.jpg").unlink()
    ds = CelebAMaskHQ(celeba.root, split="all", resolution=32, test_size=0, val_size=0)
    assert 2 not in ds.indices  # images are listed from the folder
    for p in (celeba.root / "CelebAMask-HQ-mask-anno" / "0").glob("00003_*.png"):
        p.unlink()
    with pytest.raises(DatasetNotFoundError, match="00003_skin.png"):
        ds[ds.indices.index(3)]
    with pytest.raises(DatasetNotFoundError):
        CelebAMaskHQ(celeba.root, split="all", test_size=0, val_size=0, attribute_source="celeba",
                     celeba_root=tmp_path / "no_celeba")


def test_corrupt_jpeg_names_the_file(celeba):
    path = celeba.root / "CelebA-HQ-img" / "1.jpg"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])  # truncated JPEG
    ds = CelebAMaskHQ(celeba.root, split="all", resolution=32, test_size=0, val_size=0)
    with pytest.raises(CorruptImageError, match="1.jpg"):
        ds[1]
    path.write_bytes(b"not an image at all")
    with pytest.raises(CorruptImageError, match="1.jpg"):
        ds[1]


def test_ffhq_layout_and_unknown_labels(tmp_path):
    root = fixture_mod.make_ffhq(tmp_path, n=3)
    ds = FFHQ(root, resolution=24)
    assert len(ds) == 3 and ds.indices == [0, 1, 2]
    item = ds[2]
    assert item["image"].shape == (3, 24, 24) and item["index"] == 2 and item["identity"] == -1
    assert (item["attributes"] == -1).all() and (item["segmentation"] == -1).all()
    assert not item["has_attributes"] and not item["has_segmentation"]
    thumbs = FFHQ(root, resolution=16, thumbnails=True)
    assert thumbs[0]["image"].shape == (3, 16, 16)
    with pytest.raises(DatasetNotFoundError, match="FFHQ.*images1024x1024.*data.ffhq_root"):
        FFHQ(tmp_path / "missing")


def test_datamodule_train_val_test(celeba, tmp_path):
    ffhq = fixture_mod.make_ffhq(tmp_path, n=3)
    dm = CelebAHQDataModule(str(celeba.root), ffhq_root=str(ffhq), batch_size=2, resolution=32,
                            test_size=2, val_size=1)
    dm.setup()
    assert len(dm.train_set) == 3 + 3 and len(dm.val_set) == 1 and len(dm.test_set) == 2
    batch = next(iter(dm.test_dataloader()))
    assert batch["image"].shape == (2, 3, 32, 32) and batch["segmentation"].shape == (2, 32, 32)
    assert batch["attributes"].shape == (2, 40) and batch["index"].tolist() == [4, 5]
    train = list(dm.train_dataloader())  # FFHQ and CelebA-HQ items collate together
    assert len(train) == 3 and all(b["image"].shape == (2, 3, 32, 32) for b in train)
    seen_ffhq = torch.cat([b["has_attributes"] for b in train])
    assert (~seen_ffhq).sum() == 3


def test_label_conventions_match_the_embedded_world():
    world = pytest.importorskip("datamodules.faces.world")
    assert tuple(world.SEG_CLASSES) == SEG_CLASSES
    assert set(world.ATTRIBUTE_NAMES) <= set(ATTRIBUTE_NAMES_CELEBA)
