"""The scene cache: exact round trip of scenes and labels, readings identical to the optical encoder's, reuse,
fingerprint-keyed invalidation, atomic builds and derived arrays."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from datamodules import CachedScenesDataModule, SceneCache, SceneCacheError, SyntheticFaces, SyntheticFacesDataModule
from lsi.physics.operator import OpticalEncoder


@pytest.fixture(scope="module")
def faces():
    return SyntheticFaces("train", num_identities=3, images_per_identity=2, resolution=256)


@pytest.fixture(scope="module")
def cache(faces, tmp_path_factory):
    return SceneCache.build(faces, tmp_path_factory.mktemp("cache"), "faces", faces.cache_fingerprint(), chunk=4,
                            progress=False)


def rendered_as_cached(faces, chunk=4):
    """The dataset's items rendered in the cache's chunks. (The vectorised renderer is not batch-invariant to the
    last bit: a scene rendered alone can differ from the same scene rendered in a batch by one 8-bit level on a
    pixel or two; the cache stores what its build rendered.)"""
    n = len(faces)
    return [it for s in range(0, n, chunk) for it in faces.__getitems__(list(range(s, min(n, s + chunk))))]


def test_round_trip_is_exact(faces, cache):
    assert len(cache) == len(faces) == 6
    items = rendered_as_cached(faces)
    batch = cache.batch(torch.tensor([4, 1]))
    for row, i in enumerate((4, 1)):
        item = items[i]
        assert torch.equal(batch["image"][row], item["image"])
        assert torch.equal(batch["segmentation"][row], item["segmentation"])
        assert torch.equal(batch["landmarks"][row], item["landmarks"])
        assert torch.equal(batch["attributes"][row].float(), item["attributes"])
        assert int(batch["identity"][row]) == item["identity"]
    assert cache.images.dtype == torch.uint8 and tuple(cache.images.shape) == (6, 3, 256, 256)


def test_cache_reproduces_optical_encoder_readings_exactly(faces, cache):
    enc = OpticalEncoder(ratio=4096, init="random_binary", seed=3)
    scenes = torch.stack([it["image"] for it in rendered_as_cached(faces)])
    from_cache = enc.A(cache.batch(torch.arange(len(cache)), ["image"])["image"])
    assert torch.equal(from_cache, enc.A(scenes))


def test_reuse_and_fingerprint(faces, cache, tmp_path):
    again = SceneCache.build(faces, cache.root.parent, "faces", faces.cache_fingerprint(), progress=False)
    assert again.root == cache.root  # found, not rebuilt
    other = SyntheticFaces("train", num_identities=2, images_per_identity=2, resolution=256)
    assert other.cache_fingerprint() != faces.cache_fingerprint()
    built = SceneCache.build(other, cache.root.parent, "faces", other.cache_fingerprint(), progress=False)
    assert built.root != cache.root and len(built) == 4


def test_crashed_build_leaves_nothing_that_looks_finished(faces, tmp_path):
    class Broken:
        def __len__(self):
            return 4

        def __getitems__(self, ids):
            if ids[0] >= 2:
                raise RuntimeError("renderer crashed")
            return faces.__getitems__(ids)

    with pytest.raises(RuntimeError, match="renderer crashed"):
        SceneCache.build(Broken(), tmp_path, "broken", {"v": 1}, chunk=2, progress=False)
    assert not list(tmp_path.glob("broken-*/manifest.json"))
    # the next build of the same data replaces the partial folder and completes
    ok = SceneCache.build(faces, tmp_path, "broken", {"v": 1}, chunk=2, progress=False)
    assert len(ok) == 6 and not list(tmp_path.glob("*.partial-*"))


def test_unreadable_cache_is_refused_with_the_fix(cache, tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"format": 1, "count": 3, "fields": {"image": {}},
                                                        "fingerprint": {}}))
    np.save(tmp_path / "image.npy", np.zeros((2, 3, 4, 4), np.uint8))
    with pytest.raises(SceneCacheError, match="holds 2 rows.*delete"):
        SceneCache(tmp_path)
    with pytest.raises(SceneCacheError, match="not a finished scene cache"):
        SceneCache(tmp_path / "nothing")


def test_derived_arrays_are_computed_once(cache):
    calls = []

    def compute(idx):
        calls.append(len(idx))
        return cache.batch(idx, ["image"])["image"].mean(dim=(1, 2, 3))[:, None] * 2

    first = cache.derived("brightness", {"k": 1}, compute, chunk=4, progress=False)
    second = cache.derived("brightness", {"k": 1}, compute, chunk=4, progress=False)
    assert calls == [4, 2] and torch.equal(first, second) and first.shape == (6, 1)
    expected = cache.batch(torch.arange(6), ["image"])["image"].mean(dim=(1, 2, 3)) * 2
    assert torch.allclose(first[:, 0], expected)
    cache.derived("brightness", {"k": 2}, compute, chunk=6, progress=False)  # another key: computed again
    assert calls == [4, 2, 6]


def test_datamodule_yields_index_batches(tmp_path):
    source = SyntheticFacesDataModule(batch_size=2, num_train_identities=3, images_per_identity=2,
                                      num_val_identities=1, num_test_identities=1)
    dm = CachedScenesDataModule(source, cache_dir=str(tmp_path), batch_size=4, progress=False)
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    assert len(batches) == 1 and set(batches[0]) == {"index"} and len(batches[0]["index"]) == 4
    assert next(iter(dm.val_dataloader()))["image"].shape[1:] == (3, 256, 256)
    with pytest.raises(ValueError, match="fewer than batch_size"):
        CachedScenesDataModule(source, cache_dir=str(tmp_path), batch_size=64, progress=False).train_dataloader()
