"""SyntheticFaces dataset and SyntheticFacesDataModule: items, determinism, splits, batching, caching."""

from __future__ import annotations

import inspect

import pytest
import torch

from datamodules import SyntheticFaces, SyntheticFacesDataModule
from datamodules.faces import ATTRIBUTE_NAMES, IDENTITY_INDEX, NUISANCE_INDEX, WORLD_DIM, from_gaussian
from datamodules.synthetic import SPLIT_OFFSETS, DatasetConfigError

RES = 64


def _ds(**kw) -> SyntheticFaces:
    args = dict(split="train", num_identities=5, images_per_identity=3, resolution=RES, seed=0)
    args.update(kw)
    return SyntheticFaces(**args)


def _same(a: dict, b: dict) -> bool:
    return all(torch.equal(torch.as_tensor(a[k]), torch.as_tensor(b[k])) for k in a)


def test_item_layout():
    ds = _ds()
    assert len(ds) == 15
    item = ds[4]
    assert set(item) == {"image", "attributes", "landmarks", "segmentation", "identity", "z", "index"}
    assert item["image"].shape == (3, RES, RES) and item["image"].dtype == torch.float32
    assert 0 <= float(item["image"].min()) and float(item["image"].max()) <= 1
    assert item["attributes"].shape == (len(ATTRIBUTE_NAMES),) and item["attributes"].dtype == torch.float32
    assert item["landmarks"].shape == (68, 2) and item["segmentation"].shape == (RES, RES)
    assert item["segmentation"].dtype == torch.int64
    assert item["z"].shape == (WORLD_DIM,) and item["index"] == 4
    assert item["identity"] == 1                                          # 4 // images_per_identity
    assert torch.allclose(from_gaussian(item["z"]), ds.latent(4), atol=1e-5)
    # 8-bit images, like photographs
    assert torch.equal(item["image"] * 255, (item["image"] * 255).round())
    with pytest.raises(IndexError):
        ds[15]


def test_deterministic_and_seeded():
    a, b = _ds(), _ds()
    assert _same(a[7], b[7])
    other = _ds(seed=1)[7]
    assert not torch.equal(a[7]["z"], other["z"])


def test_splits_are_disjoint_by_identity():
    sets = {s: _ds(split=s, num_identities=4, images_per_identity=2) for s in SPLIT_OFFSETS}
    ids = {s: {ds.identity_of(i) for i in range(len(ds))} for s, ds in sets.items()}
    assert not ids["train"] & ids["val"] and not ids["train"] & ids["test"] and not ids["val"] & ids["test"]
    idn = list(IDENTITY_INDEX)
    lat = {s: torch.stack([ds.latent(i)[idn] for i in range(len(ds))]) for s, ds in sets.items()}
    for s in ("val", "test"):
        assert torch.cdist(lat["train"], lat[s]).min() > 1e-3


def test_identity_fixed_nuisance_varies_within_a_person():
    ds = _ds(images_per_identity=4)
    us = torch.stack([ds.latent(i) for i in range(4, 8)])                  # all of identity 1
    idn, nui = list(IDENTITY_INDEX), list(NUISANCE_INDEX)
    assert torch.equal(us[:, idn], us[:1, idn].expand(4, -1))
    assert torch.cdist(us[:, nui], us[:, nui]).fill_diagonal_(1.0).min() > 1e-3
    assert torch.cdist(us[:1, idn], ds.latent(0)[None, idn]).min() > 1e-3


def test_getitems_matches_getitem_and_cache():
    ds, cached = _ds(), _ds(cache=True)
    batch = ds.__getitems__([5, 2, 5, 11])
    assert [b["index"] for b in batch] == [5, 2, 5, 11]
    for b in batch:
        assert _same(b, ds[b["index"]])
    first = cached.__getitems__([2, 5])
    assert len(cached._cache) == 2
    assert _same(first[0], batch[1]) and _same(cached[5], batch[0])
    cached[5]["image"].zero_()                       # callers cannot corrupt the cache
    assert _same(cached[5], batch[0])


def test_config_errors():
    with pytest.raises(DatasetConfigError):
        SyntheticFaces(split="training")
    with pytest.raises(DatasetConfigError):
        SyntheticFaces(num_identities=0)
    with pytest.raises(ValueError):
        SyntheticFacesDataModule(batch_size=0)


def test_datamodule_loaders():
    kw = dict(batch_size=4, num_train_identities=4, num_val_identities=2, num_test_identities=2,
              images_per_identity=2, resolution=RES, seed=3)
    dm, dm2 = SyntheticFacesDataModule(**kw), SyntheticFacesDataModule(**kw)
    dm.setup("fit")
    train = next(iter(dm.train_dataloader()))
    assert train["image"].shape == (4, 3, RES, RES) and train["segmentation"].shape == (4, RES, RES)
    assert train["landmarks"].shape == (4, 68, 2) and train["z"].shape == (4, WORLD_DIM)
    assert train["identity"].dtype == torch.int64
    assert torch.equal(train["index"], next(iter(dm2.train_dataloader()))["index"])   # seeded shuffle
    order = torch.cat([b["index"] for b in dm.train_dataloader()])
    assert sorted(order.tolist()) == list(range(8)) and order.tolist() != list(range(8))
    val = [b["index"].tolist() for b in dm.val_dataloader()]
    assert val == [[0, 1, 2, 3]] and val == [b["index"].tolist() for b in dm.val_dataloader()]
    test = next(iter(dm.test_dataloader()))
    assert (test["identity"] >= SPLIT_OFFSETS["test"]).all()
    assert torch.equal(next(iter(dm.predict_dataloader()))["image"], test["image"])


def test_datamodule_arguments_are_plain_values():
    sig = inspect.signature(SyntheticFacesDataModule.__init__)
    for name, param in list(sig.parameters.items())[1:]:
        assert param.annotation in (int, bool, str, float, "int", "bool", "str", "float"), name
        assert isinstance(param.default, (int, bool, str, float)), name
