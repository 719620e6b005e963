"""CelebA-HQ's second layout (images + CelebA annotations), FFHQ selections, and the on_corrupt policy."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from datamodules.annotations import AnnotationFormatError
from datamodules.celeba import CelebAMaskHQ
from datamodules.ffhq import FFHQ
from datamodules.real_files import CorruptImageError, DatasetNotFoundError, find_corrupt_images
from tests.fixtures import make_celeba_fixture as fixture_mod


def test_celeba_layout_reads_celeba_annotations_through_the_mapping(tmp_path):
    fx = fixture_mod.make_celeba_hq_celeba_layout(tmp_path)
    ds = CelebAMaskHQ(fx.root, split="all", resolution=24, test_size=0, val_size=0, celeba_root=fx.celeba_root)
    assert ds.layout == "celeba" and ds.indices == [0, 1, 2, 3, 7] and not ds.segmentation
    for i, idx in enumerate(ds.indices):
        item = ds[i]
        assert item["index"] == idx and item["image"].shape == (3, 24, 24)
        np.testing.assert_array_equal(item["attributes"].numpy(), fx.attributes[idx].astype(np.float32))
        assert item["identity"] == fx.identities[idx]
        assert not item["has_segmentation"] and (item["segmentation"] == -1).all()
        assert ds.image_path(i).name == f"{idx:05d}.png"


def test_celeba_layout_with_images_in_the_root_and_unpadded_names(tmp_path):
    fx = fixture_mod.make_celeba_hq_celeba_layout(tmp_path, image_dir=None, ext=".jpg", pad=0)
    ds = CelebAMaskHQ(fx.root, split="test", resolution=16, test_size=2, val_size=1, celeba_root=fx.celeba_root)
    assert [ds[i]["index"] for i in range(len(ds))] == [3, 7]
    assert ds.image_path(1).name == "7.jpg"


def test_celeba_layout_errors(tmp_path):
    fx = fixture_mod.make_celeba_hq_celeba_layout(tmp_path)
    with pytest.raises(DatasetNotFoundError, match=r"list_attr_celeba\.txt not found.*data\.celeba_root"):
        CelebAMaskHQ(fx.root, split="all", test_size=0, val_size=0)  # no celeba_root, nothing in root
    with pytest.raises(DatasetNotFoundError, match=r"asks for 1 image\(s\) not in .*\[5\]"):
        CelebAMaskHQ(fx.root, indices=[0, 5], celeba_root=fx.celeba_root)
    (fx.root / "CelebA-HQ-img" / "1.jpg").write_bytes((fx.root / "CelebA-HQ-img" / "00001.png").read_bytes())
    with pytest.raises(DatasetNotFoundError, match=r"00001\.png and 1\.jpg .* are both image 1"):
        CelebAMaskHQ(fx.root, split="all", test_size=0, val_size=0, celeba_root=fx.celeba_root)
    (fx.root / "CelebA-HQ-img" / "1.jpg").unlink()
    mapping = fx.root / "CelebA-HQ-to-CelebA-mapping.txt"
    mapping.write_text(mapping.read_text() + "seven 12\n")
    with pytest.raises(AnnotationFormatError, match=r"CelebA-HQ-to-CelebA-mapping\.txt:7"):
        CelebAMaskHQ(fx.root, split="all", test_size=0, val_size=0, celeba_root=fx.celeba_root)


def test_selected_indices_and_ffhq_selection(tmp_path):
    celeba = fixture_mod.make_celebamask_hq(tmp_path, n=6, size=32, mask_size=16)
    ds = CelebAMaskHQ(celeba.root, indices=[5, 0, 3], resolution=16)
    assert [ds[i]["index"] for i in range(3)] == [5, 0, 3]
    ffhq = fixture_mod.make_ffhq(tmp_path, n=4)
    sel = FFHQ(ffhq, resolution=8, indices=[3, 1])
    assert [sel[i]["index"] for i in range(2)] == [3, 1]
    with pytest.raises(DatasetNotFoundError, match=r"FFHQ: the index list asks for 1 image.*\[9\]"):
        FFHQ(ffhq, indices=[1, 9])


def test_on_corrupt_fail_names_the_file_and_skip_counts_it(tmp_path):
    celeba = fixture_mod.make_celebamask_hq(tmp_path, n=5, size=32, mask_size=16)
    fixture_mod.corrupt(celeba.root / "CelebA-HQ-img" / "1.jpg")
    strict = CelebAMaskHQ(celeba.root, split="all", resolution=16, test_size=0, val_size=0)
    with pytest.raises(CorruptImageError, match=r"1\.jpg"):
        strict[1]
    lenient = CelebAMaskHQ(celeba.root, split="all", resolution=16, test_size=0, val_size=0, on_corrupt="skip")
    with pytest.warns(UserWarning, match=r"skipping corrupt item .*1\.jpg.*1 skipped so far"):
        item = lenient[1]
    assert item["index"] == 2  # the next decodable item stands in: batches keep their size
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a file already counted does not warn again
        items = [lenient[i] for i in range(len(lenient))]
    assert [it["index"] for it in items] == [0, 2, 2, 3, 4]
    assert list(lenient.skipped) == [str(celeba.root / "CelebA-HQ-img" / "1.jpg")]
    # a corrupt part mask counts against its image, and the reason names the mask file
    fixture_mod.corrupt(celeba.root / "CelebAMask-HQ-mask-anno" / "0" / "00004_skin.png", how="garbage")
    with pytest.warns(UserWarning, match="00004_skin.png"):
        assert lenient[4]["index"] == 0  # wraps around to the first item
    assert "00004_skin.png" in lenient.skipped[str(celeba.root / "CelebA-HQ-img" / "4.jpg")]
    with pytest.raises(ValueError, match="on_corrupt must be 'fail' or 'skip'"):
        CelebAMaskHQ(celeba.root, on_corrupt="ignore")


def test_ffhq_skip_and_everything_corrupt(tmp_path):
    ffhq = fixture_mod.make_ffhq(tmp_path, n=3)
    for k in range(3):
        fixture_mod.corrupt(ffhq / "images1024x1024" / "00000" / f"{k:05d}.png", how="garbage")
    ds = FFHQ(ffhq, resolution=8, on_corrupt="skip")
    with pytest.warns(UserWarning), pytest.raises(CorruptImageError, match="all 3 images are corrupt"):
        ds[0]
    assert len(ds.skipped) == 3
    paths = [ffhq / "thumbnails128x128" / "00000" / f"{k:05d}.png" for k in range(3)] + [tmp_path / "gone.png"]
    bad = find_corrupt_images(paths, "FFHQ")
    assert list(bad) == [str(tmp_path / "gone.png")] and "gone.png" in bad[str(tmp_path / "gone.png")]


def test_item_tensors_collate(tmp_path):
    fx = fixture_mod.make_celeba_hq_celeba_layout(tmp_path)
    ds = CelebAMaskHQ(fx.root, split="all", resolution=16, test_size=0, val_size=0, celeba_root=fx.celeba_root)
    batch = torch.utils.data.default_collate([ds[0], ds[1]])
    assert batch["image"].shape == (2, 3, 16, 16) and batch["attributes"].shape == (2, 40)
