"""Real face datasets: CelebA-HQ / CelebAMask-HQ (labels) and FFHQ (images), plus a LightningDataModule.

Expected layouts (nothing is downloaded; set the config keys ``data.root`` / ``data.ffhq_root``)::

    <root>/CelebA-HQ-img/<i>.jpg                                   i = 0..29999, 1024x1024
    <root>/CelebAMask-HQ-attribute-anno.txt                        count line, 40 names, "<i>.jpg" + 40 x {-1,1}
    <root>/CelebAMask-HQ-mask-anno/<i // 2000>/<%05d>_<part>.png   512x512 binary part masks (18 parts)
    <root>/CelebA-HQ-to-CelebA-mapping.txt                         optional: "idx orig_idx orig_file"
    <celeba_root>[/Anno]/list_attr_celeba.txt, identity_CelebA.txt  optional CelebA annotations
    <ffhq_root>/images1024x1024/<%05d folder by thousands>/<%05d>.png   (or thumbnails128x128/...)

Items use the embedded world's keys: ``image [3,R,R]`` float [0,1], ``attributes [40]`` float {0,1},
``segmentation [R,R]`` int64 in 0..18 (:data:`SEG_CLASSES`, nearest resize), ``landmarks [68,2]`` in [0,1]
(pixel-centre coords / R), ``identity`` int, ``index`` int, plus ``has_attributes``, ``has_segmentation``
and ``has_landmarks`` flags. Unknown labels are marked, never invented: attributes and segmentation -1
(use ``ignore_index=-1``), landmarks NaN, identity -1.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from PIL import Image, UnidentifiedImageError
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from lsi import images
from lsi.images import CorruptImageError
from lsi.labels import CELEBA_ATTRIBUTE_NAMES, CELEBAMASK_CLASSES

ATTRIBUTE_NAMES_CELEBA: tuple[str, ...] = CELEBA_ATTRIBUTE_NAMES
SEG_CLASSES: tuple[str, ...] = CELEBAMASK_CLASSES
MASK_PARTS: tuple[str, ...] = SEG_CLASSES[1:]
UNKNOWN = -1
NUM_LANDMARKS = 68
HQ_IMG, HQ_ATTR, HQ_MASK = "CelebA-HQ-img", "CelebAMask-HQ-attribute-anno.txt", "CelebAMask-HQ-mask-anno"
HQ_MAPPING = "CelebA-HQ-to-CelebA-mapping.txt"
CELEBAMASK_LAYOUT = (f"<root>/{HQ_IMG}/<i>.jpg, <root>/{HQ_ATTR}, <root>/{HQ_MASK}/<i//2000>/<%05d>_<part>.png "
                     f"(config key: data.root)")
FFHQ_LAYOUT = "<ffhq_root>/images1024x1024/<%05d folder>/<%05d>.png (config key: data.ffhq_root)"

LandmarkProvider = Callable[[torch.Tensor], tuple[torch.Tensor, bool]]


class DatasetNotFoundError(FileNotFoundError, ValueError):
    """A dataset folder or file is missing (the message names the dataset, layout and config key)."""


class AnnotationFormatError(ValueError):
    """An annotation file does not follow its documented format."""


def _require(path: Path, dataset: str, layout: str) -> Path:
    if not path.exists():
        raise DatasetNotFoundError(f"{dataset}: {path} not found. Expected layout: {layout}.")
    return path


def read_attribute_file(path: str | Path) -> tuple[tuple[str, ...], dict[str, np.ndarray]]:
    """Parse a CelebA-style attribute file -> (names, {file name: int8 [40] in {-1,1}})."""
    lines = Path(path).read_text().splitlines()
    if len(lines) < 2:
        raise AnnotationFormatError(f"{path}: expected a count line and a header line of attribute names")
    names = tuple(lines[1].split())
    rows: dict[str, np.ndarray] = {}
    for lineno, line in enumerate(lines[2:], start=3):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != len(names) + 1:
            raise AnnotationFormatError(
                f"{path}:{lineno}: expected a file name and {len(names)} values, got {len(parts)} fields")
        values = np.array([int(v) for v in parts[1:]], dtype=np.int8)
        if not np.isin(values, (-1, 1)).all():
            raise AnnotationFormatError(f"{path}:{lineno}: attribute values must be -1 or 1")
        rows[parts[0]] = values
    return names, rows


def read_hq_mapping(path: str | Path) -> dict[int, str]:
    """``CelebA-HQ-to-CelebA-mapping.txt`` -> {HQ index: original CelebA file name}."""
    out: dict[int, str] = {}
    for line in Path(path).read_text().splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 3:
            out[int(parts[0])] = parts[2]
    return out


def read_identity_file(path: str | Path) -> dict[str, int]:
    """``identity_CelebA.txt`` -> {CelebA file name: identity}."""
    return {p[0]: int(p[1]) for p in (line.split() for line in Path(path).read_text().splitlines()) if len(p) == 2}


def load_image(path: Path, resolution: int, dataset: str, layout: str) -> torch.Tensor:
    """Decode an image file to ``[3,R,R]`` float [0,1] (bicubic resize); clear errors for missing/corrupt files."""
    _require(path, dataset, layout)
    return torch.from_numpy(images.load_image(path, resolution, center_crop=False, what=dataset))


def load_celebamask_segmentation(mask_root: Path, index: int, resolution: int) -> torch.Tensor:
    """Merge the per-part masks of image ``index`` into one ``[R,R]`` int64 map (later parts overwrite)."""
    folder = _require(mask_root / str(index // 2000), "CelebAMask-HQ", CELEBAMASK_LAYOUT)
    seg: np.ndarray | None = None
    for cls, part in enumerate(MASK_PARTS, start=1):
        path = folder / f"{index:05d}_{part}.png"
        if not path.is_file():
            continue
        try:
            with Image.open(path) as im:
                im = im.convert("L")
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
            raise CorruptImageError(f"CelebAMask-HQ: cannot decode mask file {path} ({err})") from err
        if im.size != (resolution, resolution):
            im = im.resize((resolution, resolution), Image.NEAREST)
        arr = np.asarray(im)
        if seg is None:
            seg = np.zeros(arr.shape, dtype=np.int64)
        seg[arr > 0] = cls
    if seg is None:
        raise DatasetNotFoundError(f"CelebAMask-HQ: no part mask for image {index} in {folder} "
                                   f"(expected e.g. {index:05d}_skin.png). Expected layout: {CELEBAMASK_LAYOUT}.")
    return torch.from_numpy(seg)


def split_indices(indices: list[int], split: str, test_size: int, val_size: int) -> list[int]:
    """Deterministic split by index order: test = last ``test_size``, val = the ``val_size`` before, train = rest."""
    n = len(indices)
    if test_size < 0 or val_size < 0 or test_size + val_size > n:
        raise ValueError(f"test_size={test_size} + val_size={val_size} must not exceed the {n} images available; "
                         f"lower data.test_size / data.val_size")
    cut_test, cut_val = n - test_size, n - test_size - val_size
    parts = {"train": indices[:cut_val], "val": indices[cut_val:cut_test], "test": indices[cut_test:], "all": indices}
    if split not in parts:
        raise ValueError(f"split must be one of {sorted(parts)}, got {split!r}")
    return parts[split]


def unknown_labels(resolution: int) -> dict:
    """Placeholders for labels a dataset does not have (attributes/segmentation -1, landmarks NaN, identity -1)."""
    return {
        "attributes": torch.full((len(ATTRIBUTE_NAMES_CELEBA),), float(UNKNOWN)),
        "segmentation": torch.full((resolution, resolution), UNKNOWN, dtype=torch.int64),
        "landmarks": torch.full((NUM_LANDMARKS, 2), float("nan")),
        "identity": UNKNOWN, "has_attributes": False, "has_segmentation": False, "has_landmarks": False,
    }


class CelebAMaskHQ(Dataset):
    """CelebA-HQ images with CelebAMask-HQ attributes and segmentation (optional landmarks and identities).

    ``attribute_source``: ``"celebamask"`` (CelebAMask-HQ-attribute-anno.txt) or ``"celeba"`` (list_attr_celeba.txt
    through CelebA-HQ-to-CelebA-mapping.txt; needs ``celeba_root``). Identities come from identity_CelebA.txt
    when ``celeba_root`` has it. ``landmarks``: None, a ``.npy`` cache ``[N,68,2]`` in [0,1] indexed by CelebA-HQ
    index (NaN rows = no face; see :func:`build_landmark_cache`) or a provider ``(image [3,R,R]) -> (px [68,2],
    found)`` run on the resized image.
    """

    def __init__(self, root: str | Path, split: str = "test", resolution: int = 256, test_size: int = 2000,
                 val_size: int = 500, attribute_source: str = "celebamask", celeba_root: str | Path | None = None,
                 segmentation: bool = True, landmarks: str | Path | LandmarkProvider | None = None) -> None:
        self.root, self.resolution, self.segmentation = Path(root), int(resolution), segmentation
        name = "CelebAMask-HQ"
        _require(self.root, name, CELEBAMASK_LAYOUT)
        img_dir = _require(self.root / HQ_IMG, name, CELEBAMASK_LAYOUT)
        all_idx = sorted(int(p.stem) for p in img_dir.iterdir() if p.suffix.lower() == ".jpg" and p.stem.isdigit())
        if not all_idx:
            raise DatasetNotFoundError(f"{name}: no <i>.jpg images in {img_dir}. Expected layout: {CELEBAMASK_LAYOUT}.")
        self.indices = split_indices(all_idx, split, test_size, val_size)
        if segmentation:
            _require(self.root / HQ_MASK, name, CELEBAMASK_LAYOUT)
        self.attributes = self._read_attributes(attribute_source, celeba_root)
        self.identities = self._read_identities(celeba_root)
        self._landmark_cache: np.ndarray | None = None
        self._landmark_provider: LandmarkProvider | None = None
        if isinstance(landmarks, (str, Path)):
            cache = np.load(_require(Path(landmarks), "landmark cache", "<file>.npy [N,68,2]"), allow_pickle=False)
            if cache.ndim != 3 or cache.shape[1:] != (NUM_LANDMARKS, 2) or cache.shape[0] <= max(self.indices):
                raise AnnotationFormatError(f"landmark cache {landmarks} has shape {cache.shape}; expected "
                                            f"[N>{max(self.indices)},68,2] indexed by CelebA-HQ index")
            self._landmark_cache = cache.astype(np.float32)
        elif landmarks is not None:
            self._landmark_provider = landmarks

    def _read_attributes(self, source: str, celeba_root: str | Path | None) -> dict[int, np.ndarray]:
        if source == "celebamask":
            path = _require(self.root / HQ_ATTR, "CelebAMask-HQ", CELEBAMASK_LAYOUT)
            names, rows = read_attribute_file(path)
            keyed = {i: rows.get(f"{i}.jpg") for i in self.indices}
        elif source == "celeba":
            if celeba_root is None:
                raise ValueError("attribute_source='celeba' needs celeba_root (folder of list_attr_celeba.txt)")
            path = self._celeba_file(celeba_root, "list_attr_celeba.txt")
            names, rows = read_attribute_file(path)
            mapping = read_hq_mapping(_require(self.root / HQ_MAPPING, "CelebA-HQ mapping", f"<root>/{HQ_MAPPING}"))
            keyed = {i: rows.get(mapping.get(i, "")) for i in self.indices}
        else:
            raise ValueError(f"attribute_source must be 'celebamask' or 'celeba', got {source!r}")
        if names != ATTRIBUTE_NAMES_CELEBA:
            raise AnnotationFormatError(f"{path}: header does not list the 40 CelebA attributes in CelebA order")
        missing = [i for i, v in keyed.items() if v is None]
        if missing:
            raise AnnotationFormatError(f"{path}: no attribute row for CelebA-HQ image(s) {missing[:5]}"
                                        f"{' ...' if len(missing) > 5 else ''}")
        return keyed  # type: ignore[return-value]

    def _read_identities(self, celeba_root: str | Path | None) -> dict[int, int]:
        if celeba_root is None:
            return {}
        try:
            ids = read_identity_file(self._celeba_file(celeba_root, "identity_CelebA.txt"))
            mapping = read_hq_mapping(self.root / HQ_MAPPING) if (self.root / HQ_MAPPING).is_file() else {}
        except DatasetNotFoundError:
            return {}
        return {i: ids[mapping[i]] for i in self.indices if i in mapping and mapping[i] in ids}

    @staticmethod
    def _celeba_file(celeba_root: str | Path, name: str) -> Path:
        for cand in (Path(celeba_root) / name, Path(celeba_root) / "Anno" / name):
            if cand.is_file():
                return cand
        raise DatasetNotFoundError(f"CelebA: {name} not found in {celeba_root} or {celeba_root}/Anno "
                                   f"(config key: data.celeba_root)")

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        idx = self.indices[i]
        r = self.resolution
        item = unknown_labels(r)
        item["image"] = load_image(self.root / HQ_IMG / f"{idx}.jpg", r, "CelebAMask-HQ", CELEBAMASK_LAYOUT)
        item["attributes"] = torch.from_numpy((self.attributes[idx] > 0).astype(np.float32))
        item["has_attributes"] = True
        if self.segmentation:
            item["segmentation"] = load_celebamask_segmentation(self.root / HQ_MASK, idx, r)
            item["has_segmentation"] = True
        if self._landmark_cache is not None:
            pts = torch.from_numpy(self._landmark_cache[idx].copy())
            item["landmarks"], item["has_landmarks"] = pts, bool(torch.isfinite(pts).all())
        elif self._landmark_provider is not None:
            pts, found = self._landmark_provider(item["image"])
            if found:
                item["landmarks"], item["has_landmarks"] = (pts.float() + 0.5) / r, True
        item["identity"] = self.identities.get(idx, UNKNOWN)
        item["index"] = idx
        return item


class FFHQ(Dataset):
    """FFHQ images (no labels: attributes/segmentation -1, landmarks NaN, identity -1).

    ``thumbnails=True`` reads ``thumbnails128x128`` instead of ``images1024x1024``.
    """

    def __init__(self, root: str | Path, resolution: int = 256, thumbnails: bool = False,
                 indices: list[int] | None = None) -> None:
        self.root, self.resolution = Path(root), int(resolution)
        sub = "thumbnails128x128" if thumbnails else "images1024x1024"
        self.layout = FFHQ_LAYOUT.replace("images1024x1024", sub)
        folder = _require(self.root / sub, "FFHQ", self.layout)
        files = {int(p.stem): p for p in folder.glob("*/*.png") if p.stem.isdigit()}
        if not files:
            raise DatasetNotFoundError(f"FFHQ: no <%05d>.png images under {folder}. Expected layout: {self.layout}.")
        self.files = files
        self.indices = sorted(files) if indices is None else list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        idx = self.indices[i]
        path = self.files.get(idx, self.root / "missing" / f"{idx:05d}.png")
        item = unknown_labels(self.resolution)
        item["image"] = load_image(path, self.resolution, "FFHQ", self.layout)
        item["index"] = idx
        return item


def build_landmark_cache(dataset: CelebAMaskHQ, provider: LandmarkProvider, path: str | Path,
                         size: int | None = None) -> np.ndarray:
    """Run ``provider`` over ``dataset`` and save ``[N,68,2]`` float32 landmarks in [0,1] (NaN = no face).

    ``N = size`` or ``max(index) + 1``; rows are CelebA-HQ indices. Returns the array.
    """
    n = size or max(dataset.indices) + 1
    out = np.full((n, NUM_LANDMARKS, 2), np.nan, dtype=np.float32)
    r = dataset.resolution
    for i in range(len(dataset)):
        idx = dataset.indices[i]
        image = load_image(dataset.root / HQ_IMG / f"{idx}.jpg", r, "CelebAMask-HQ", CELEBAMASK_LAYOUT)
        pts, found = provider(image)
        if found:
            out[idx] = ((pts.float() + 0.5) / r).numpy()
    np.save(Path(path), out, allow_pickle=False)
    return out


class CelebAHQDataModule(LightningDataModule):
    """Train on FFHQ (+ the CelebA-HQ train part), validate/test on CelebA-HQ (paper: 2,000 test images).

    The CelebA-HQ split is by index: the last ``test_size`` images are the test set, the ``val_size`` before
    them the validation set, the rest the training part.
    """

    def __init__(self, root: str, ffhq_root: str | None = None, batch_size: int = 8, resolution: int = 256,
                 num_workers: int = 0, test_size: int = 2000, val_size: int = 500,
                 attribute_source: str = "celebamask", celeba_root: str | None = None,
                 landmarks_cache: str | None = None, ffhq_thumbnails: bool = False) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None

    def _celeba(self, split: str) -> CelebAMaskHQ:
        h = self.hparams
        return CelebAMaskHQ(h.root, split=split, resolution=h.resolution, test_size=h.test_size,
                            val_size=h.val_size, attribute_source=h.attribute_source, celeba_root=h.celeba_root,
                            landmarks=h.landmarks_cache)

    def setup(self, stage: str | None = None) -> None:
        h = self.hparams
        if stage in (None, "fit") and self.train_set is None:
            parts: list[Dataset] = []
            if h.ffhq_root:
                parts.append(FFHQ(h.ffhq_root, resolution=h.resolution, thumbnails=h.ffhq_thumbnails))
            celeba_train = self._celeba("train")
            if len(celeba_train):
                parts.append(celeba_train)
            if not parts:
                raise ValueError("no training images: the CelebA-HQ train part is empty (test_size + val_size cover "
                                 "the whole set) and data.ffhq_root is not set")
            self.train_set = parts[0] if len(parts) == 1 else ConcatDataset(parts)
        if stage in (None, "fit", "validate") and self.val_set is None:
            self.val_set = self._celeba("val")
        if stage in (None, "test", "predict") and self.test_set is None:
            self.test_set = self._celeba("test")

    def _loader(self, ds: Dataset | None, shuffle: bool) -> DataLoader:
        if ds is None:
            raise RuntimeError("call setup() before requesting a dataloader")
        h = self.hparams
        return DataLoader(ds, batch_size=h.batch_size, shuffle=shuffle, num_workers=h.num_workers,
                          drop_last=shuffle, persistent_workers=h.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, False)
