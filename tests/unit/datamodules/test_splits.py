"""The paper split: its rule, its JSON file, corrupt-file exclusion, and the DataModule reading it."""

from __future__ import annotations

import json

import pytest

from datamodules.real_faces import CelebAHQDataModule
from datamodules.real_files import CorruptImageError
from datamodules.splits import SplitFileError, make_paper_split_file, paper_split, read_split, write_split
from tests.fixtures import make_celeba_fixture as fixture_mod


def test_paper_sizes():
    split = paper_split(range(30_000), range(70_000))
    assert split["counts"] == {"celeba_hq/train": 28_000, "celeba_hq/val": 0, "celeba_hq/test": 2_000,
                               "ffhq/train": 70_000, "excluded/celeba_hq": 0, "excluded/ffhq": 0}
    assert split["celeba_hq"]["test"] == list(range(28_000, 30_000))


def test_rule_and_round_trip(tmp_path):
    split = paper_split([9, 3, 0, 1, 2, 4, 5, 6, 7, 8], [2, 0], test_size=3, val_size=2)
    assert split["celeba_hq"] == {"train": [0, 1, 2, 3, 4], "val": [5, 6], "test": [7, 8, 9]}
    assert split["ffhq"] == {"train": [0, 2]}
    path = write_split(split, tmp_path / "s" / "split.json")
    raw = json.loads(path.read_text())
    assert raw["format"] == "lsi-split" and raw["version"] == 1 and "last 3 are test" in raw["rule"]
    assert read_split(path) == split
    with pytest.raises(ValueError, match="exceed the 10 CelebA-HQ images"):
        paper_split(range(10), test_size=8, val_size=3)


def test_bad_split_files_are_named(tmp_path):
    with pytest.raises(SplitFileError, match=r"nope\.json does not exist"):
        read_split(tmp_path / "nope.json")
    (tmp_path / "a.json").write_text("{not json")
    with pytest.raises(SplitFileError, match=r"a\.json is not valid JSON"):
        read_split(tmp_path / "a.json")
    (tmp_path / "b.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(SplitFileError, match=r"b\.json: expected \"format\": \"lsi-split\""):
        read_split(tmp_path / "b.json")
    split = paper_split(range(6), test_size=2)
    split["celeba_hq"]["train"].append(5)
    write_split(split, tmp_path / "c.json")
    with pytest.raises(SplitFileError, match="image 5 is in both train and test"):
        read_split(tmp_path / "c.json")
    split = paper_split(range(6), test_size=2)
    split["ffhq"]["train"] = ["00001"]
    write_split(split, tmp_path / "d.json")
    with pytest.raises(SplitFileError, match="ffhq.train must be a list of non-negative integers"):
        read_split(tmp_path / "d.json")


def test_split_file_is_made_once_then_read(tmp_path):
    celeba = fixture_mod.make_celebamask_hq(tmp_path, n=6, size=32, mask_size=16)
    ffhq = fixture_mod.make_ffhq(tmp_path, n=3)
    path = tmp_path / "split.json"
    first = make_paper_split_file(path, celeba.root, ffhq, test_size=2)
    assert first["celeba_hq"]["test"] == [4, 5] and first["ffhq"]["train"] == [0, 1, 2]
    (celeba.root / "CelebA-HQ-img" / "0.jpg").unlink()  # the folder changes; the written split does not
    assert make_paper_split_file(path, celeba.root, ffhq, test_size=2) == first
    remade = make_paper_split_file(path, celeba.root, ffhq, test_size=2, overwrite=True)
    assert remade["celeba_hq"]["train"] == [1, 2, 3]


def test_verify_excludes_corrupt_files_or_fails(tmp_path):
    celeba = fixture_mod.make_celebamask_hq(tmp_path, n=6, size=32, mask_size=16)
    ffhq = fixture_mod.make_ffhq(tmp_path, n=3)
    fixture_mod.corrupt(celeba.root / "CelebA-HQ-img" / "5.jpg")
    fixture_mod.corrupt(ffhq / "images1024x1024" / "00000" / "00001.png", how="garbage")
    split = make_paper_split_file(tmp_path / "v.json", celeba.root, ffhq, test_size=2, verify=True)
    assert split["celeba_hq"]["test"] == [3, 4] and split["ffhq"]["train"] == [0, 2]
    assert list(split["excluded"]["celeba_hq"]) == ["5"] and "5.jpg" in split["excluded"]["celeba_hq"]["5"]
    assert split["counts"]["excluded/celeba_hq"] == 1 and split["counts"]["excluded/ffhq"] == 1
    assert read_split(tmp_path / "v.json")["counts"] == split["counts"]
    with pytest.raises(CorruptImageError, match=r"1 corrupt celeba_hq image\(s\).*5\.jpg"):
        make_paper_split_file(tmp_path / "f.json", celeba.root, None, test_size=2, verify=True, on_corrupt="fail")
    assert not (tmp_path / "f.json").exists()


def test_datamodule_follows_the_split_file(tmp_path):
    celeba = fixture_mod.make_celebamask_hq(tmp_path, n=6, size=32, mask_size=16)
    ffhq = fixture_mod.make_ffhq(tmp_path, n=3)
    path = tmp_path / "paper_split.json"
    write_split(paper_split([0, 1, 2, 3, 4, 5], [0, 2], test_size=2, val_size=0), path)
    dm = CelebAHQDataModule(str(celeba.root), ffhq_root=str(ffhq), batch_size=2, resolution=16, split_file=str(path))
    dm.setup()
    assert len(dm.train_set) == 2 + 4 and len(dm.val_set) == 0 and len(dm.test_set) == 2
    assert dm.val_dataloader() == []  # no validation part: Lightning skips the loop
    assert next(iter(dm.test_dataloader()))["index"].tolist() == [4, 5]
    assert sorted(int(b) for batch in dm.train_dataloader() for b, has in zip(batch["index"], batch["has_attributes"])
                  if not has) == [0, 2]  # the FFHQ images the file lists
    assert dm.corrupt_report() == {"FFHQ": 0, "CelebA-HQ": 0}
    no_ffhq = CelebAHQDataModule(str(celeba.root), split_file=str(path))
    with pytest.raises(ValueError, match=r"lists 2 FFHQ training images but data\.ffhq_root is not set"):
        no_ffhq.setup("fit")


def test_datamodule_writes_a_missing_split_file_and_counts_skips(tmp_path):
    fx = fixture_mod.make_celeba_hq_celeba_layout(tmp_path)
    fixture_mod.corrupt(fx.root / "CelebA-HQ-img" / "00002.png")
    path = tmp_path / "new_split.json"
    dm = CelebAHQDataModule(str(fx.root), celeba_root=str(fx.celeba_root), batch_size=2, resolution=16,
                            test_size=2, val_size=2, split_file=str(path), on_corrupt="skip")
    dm.setup()
    assert read_split(path)["celeba_hq"] == {"train": [0], "val": [1, 2], "test": [3, 7]}
    with pytest.warns(UserWarning, match="00002.png"):
        batch = next(iter(dm.val_dataloader()))
    assert batch["image"].shape == (2, 3, 16, 16) and batch["index"].tolist() == [1, 1]
    assert dm.corrupt_report() == {"CelebA-HQ": 1}
