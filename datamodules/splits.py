"""The paper's data split as a file: train = FFHQ + the CelebA-HQ train part, test = 2,000 CelebA-HQ images.

The LSI paper trains on FFHQ + CelebA-HQ (28,000) and tests on 2,000 CelebA-HQ images; which 2,000 is not
published (the official code reads pre-split folders). Our rule is deterministic and written down: CelebA-HQ
images sorted by HQ index, the last ``test_size`` (2,000) are the test set, the ``val_size`` before them the
validation set (default 0: the paper has none; its training validates on the test images), the rest (28,000)
train; every FFHQ image trains. The split is written once to a JSON file and read from it afterwards, so a run is
reproducible on any machine and another membership can be used by writing a file in the same format.

File format (JSON object, ``"format": "lsi-split"``, ``"version": 1``)::

    {"format": "lsi-split", "version": 1,
     "rule": "<how the lists were made>",
     "celeba_hq": {"train": [<HQ index>, ...], "val": [...], "test": [...]},   # <root>/CelebA-HQ-img/<i>.jpg
     "ffhq": {"train": [<FFHQ number>, ...]},                                 # images1024x1024/../<%05d>.png
     "excluded": {"celeba_hq": {"<i>": "<why>"}, "ffhq": {"<n>": "<why>"}},   # corrupt files left out
     "counts": {"celeba_hq/train": 28000, "celeba_hq/val": 0, "celeba_hq/test": 2000, "ffhq/train": 70000,
                "excluded/celeba_hq": 0, "excluded/ffhq": 0}}

``make_paper_split_file(..., verify=True)`` decodes every image first; with ``on_corrupt='skip'`` the corrupt
ones go to ``excluded`` (counted) before the rule is applied, with ``'fail'`` one error lists them all.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from datamodules.celeba import find_celeba_hq_images
from datamodules.ffhq import find_ffhq_images
from datamodules.real_files import ON_CORRUPT, CorruptImageError, find_corrupt_images

__all__ = ["SPLIT_FORMAT", "SplitFileError", "make_paper_split_file", "paper_split", "read_split", "write_split"]

SPLIT_FORMAT, SPLIT_VERSION = "lsi-split", 1
PAPER_TEST_SIZE = 2000
PARTS = {"celeba_hq": ("train", "val", "test"), "ffhq": ("train",)}


class SplitFileError(ValueError):
    """A split file is missing fields, has the wrong format, or lists an image twice (the message names it)."""


def paper_split(celeba_indices: Iterable[int], ffhq_indices: Iterable[int] = (), test_size: int = PAPER_TEST_SIZE,
                val_size: int = 0, excluded: dict[str, dict[str, str]] | None = None) -> dict:
    """The split dict of the rule in the module docstring (indices already free of excluded files)."""
    celeba = sorted(set(celeba_indices))
    if test_size < 0 or val_size < 0 or test_size + val_size > len(celeba):
        raise ValueError(f"test_size={test_size} + val_size={val_size} exceed the {len(celeba)} CelebA-HQ images "
                         "available; lower them")
    cut_test, cut_val = len(celeba) - test_size, len(celeba) - test_size - val_size
    excluded = {"celeba_hq": {}, "ffhq": {}, **(excluded or {})}
    split = {
        "format": SPLIT_FORMAT, "version": SPLIT_VERSION,
        "rule": (f"CelebA-HQ sorted by index: the last {test_size} are test, the {val_size} before them val, the "
                 "rest train; every FFHQ image is train; corrupt files excluded first"),
        "celeba_hq": {"train": celeba[:cut_val], "val": celeba[cut_val:cut_test], "test": celeba[cut_test:]},
        "ffhq": {"train": sorted(set(ffhq_indices))},
        "excluded": excluded,
    }
    split["counts"] = _counts(split)
    return split


def _counts(split: dict) -> dict[str, int]:
    counts = {f"{ds}/{part}": len(split[ds][part]) for ds, parts in PARTS.items() for part in parts}
    counts.update({f"excluded/{ds}": len(split["excluded"].get(ds, {})) for ds in PARTS})
    return counts


def write_split(split: dict, path: str | Path) -> Path:
    """Write ``split`` as JSON (atomically: a reader never sees half a file; under DDP every rank may write the same
    content at once, each through its own temporary file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps({**split, "counts": _counts(split)}, indent=1) + "\n")
    os.replace(tmp, path)
    return path


def read_split(path: str | Path) -> dict:
    """Read and check a split file (format, version, integer lists, no image in two CelebA-HQ parts)."""
    path = Path(path)
    if not path.is_file():
        raise SplitFileError(f"split file {path} does not exist; write it with "
                             "datamodules.splits.make_paper_split_file (or set data.split_file)")
    try:
        split = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SplitFileError(f"split file {path} is not valid JSON ({err})") from err
    if not isinstance(split, dict) or split.get("format") != SPLIT_FORMAT or split.get("version") != SPLIT_VERSION:
        raise SplitFileError(f"split file {path}: expected \"format\": \"{SPLIT_FORMAT}\" and \"version\": "
                             f"{SPLIT_VERSION} (see datamodules/splits.py)")
    for ds, parts in PARTS.items():
        block = split.get(ds, {})
        if not isinstance(block, dict):
            raise SplitFileError(f"split file {path}: field {ds!r} must be an object of lists")
        for part in parts:
            values = block.setdefault(part, [])
            if not isinstance(values, list) or not all(isinstance(v, int) and v >= 0 for v in values):
                raise SplitFileError(f"split file {path}: {ds}.{part} must be a list of non-negative integers")
        split[ds] = block
    seen: dict[int, str] = {}
    for part in PARTS["celeba_hq"]:
        for idx in split["celeba_hq"][part]:
            if idx in seen:
                raise SplitFileError(f"split file {path}: CelebA-HQ image {idx} is in both {seen[idx]} and {part}")
            seen[idx] = part
    split.setdefault("excluded", {})
    return split


def make_paper_split_file(path: str | Path, celeba_root: str | Path, ffhq_root: str | Path | None = None,
                          test_size: int = PAPER_TEST_SIZE, val_size: int = 0, verify: bool = False,
                          on_corrupt: str = "skip", ffhq_thumbnails: bool = False, layout: str = "auto",
                          image_dir: str | None = None, overwrite: bool = False) -> dict:
    """Read the split file at ``path`` if it exists (unless ``overwrite``), else make it from the folders and write it.

    ``verify``: decode every image first (slow: every file is read once) and exclude (``on_corrupt='skip'``) or
    refuse (``'fail'``) corrupt ones.
    """
    if on_corrupt not in ON_CORRUPT:
        raise ValueError(f"on_corrupt must be 'fail' or 'skip', got {on_corrupt!r}")
    path = Path(path)
    if path.is_file() and not overwrite:
        return read_split(path)
    celeba = find_celeba_hq_images(celeba_root, layout, image_dir)
    ffhq = find_ffhq_images(ffhq_root, ffhq_thumbnails) if ffhq_root else {}
    excluded: dict[str, dict[str, str]] = {"celeba_hq": {}, "ffhq": {}}
    if verify:
        for ds, files in (("celeba_hq", celeba), ("ffhq", ffhq)):
            bad = find_corrupt_images(files.values(), ds)
            by_index = {str(i): bad[str(p)] for i, p in files.items() if str(p) in bad}
            if by_index and on_corrupt == "fail":
                raise CorruptImageError(f"{len(by_index)} corrupt {ds} image(s): "
                                        + "; ".join(list(by_index.values())[:5]))
            excluded[ds] = by_index
    split = paper_split([i for i in celeba if str(i) not in excluded["celeba_hq"]],
                        [i for i in ffhq if str(i) not in excluded["ffhq"]], test_size, val_size, excluded)
    write_split(split, path)
    return split
