"""AFHQ (train|val/{cat,dog,wild}) on a tiny tree written in the real layout."""

from __future__ import annotations

import pytest
import torch

from datamodules.afhq import AFHQ, AFHQDataModule
from datamodules.real_files import DatasetNotFoundError
from lsi.labels import AFHQ_CATEGORIES
from tests.fixtures.make_afhq_fixture import CATEGORIES, make_afhq


def test_categories_match_the_folder_names():
    assert AFHQ_CATEGORIES == CATEGORIES


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_items_and_categories(tmp_path, ext):
    root = make_afhq(tmp_path, ext=ext)
    ds = AFHQ(root, "train", resolution=16)
    assert len(ds) == 9
    items = [ds[i] for i in range(len(ds))]
    assert [it["category"] for it in items] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert items[4]["path"] == f"train/dog/flickr_dog_000003{ext}"  # sorted by name within a category
    for it in items:  # the red channel encodes the category the image was written for
        assert abs(float(it["image"][0].mean()) - (40 + 80 * it["category"]) / 255) < 0.02
        assert it["image"].shape == (3, 16, 16) and it["identity"] == -1 and not it["has_attributes"]
    wild = AFHQ(root, "val", categories=["wild"], resolution=8)
    assert len(wild) == 2 and {wild[i]["category"] for i in range(2)} == {2}


def test_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"AFHQ.*train not found.*\{train,val\}/\{cat,dog,wild\}"):
        AFHQ(tmp_path / "none")
    root = make_afhq(tmp_path, per_class={"train": 1})
    with pytest.raises(DatasetNotFoundError, match="val not found"):
        AFHQ(root, "val")
    with pytest.raises(ValueError, match="subset of"):
        AFHQ(root, categories=["horse"])
    with pytest.raises(ValueError, match="'train' or 'val'"):
        AFHQ(root, "test")


def test_datamodule(tmp_path):
    root = make_afhq(tmp_path)
    dm = AFHQDataModule(str(root), categories=["cat", "wild"], batch_size=2, resolution=8)
    dm.setup()
    assert len(dm.train_set) == 6 and len(dm.val_set) == 4
    train = list(dm.train_dataloader())
    assert len(train) == 3 and all(b["image"].shape == (2, 3, 8, 8) for b in train)
    test = next(iter(dm.test_dataloader()))
    assert torch.equal(test["category"], torch.tensor([0, 0]))
