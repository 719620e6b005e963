"""CelebA-HQ with labels, in its two common layouts (nothing is downloaded; config key ``data.root``).

Layout ``celebamask`` (CelebAMask-HQ as distributed)::

    <root>/CelebA-HQ-img/<i>.jpg                                   i = 0..29999, 1024x1024
    <root>/CelebAMask-HQ-attribute-anno.txt                        count line, 40 names, "<i>.jpg" + 40 x {-1,1}
    <root>/CelebAMask-HQ-mask-anno/<i // 2000>/<%05d>_<part>.png   512x512 binary part masks (18 parts)
    <root>/CelebA-HQ-to-CelebA-mapping.txt                         optional: "idx orig_idx orig_file"

Layout ``celeba`` (CelebA-HQ images + CelebA's own annotations)::

    <root>/<image_dir>/<i>.<jpg|png>           numbered by HQ index, any zero padding (42.jpg, 00042.png);
                                               image_dir defaults to CelebA-HQ-img, else the images sit in <root>
    <root>/CelebA-HQ-to-CelebA-mapping.txt     HQ index -> original CelebA file
    <celeba_root or root>[/Anno]/list_attr_celeba.txt, identity_CelebA.txt (identities optional)

``layout='auto'`` picks ``celebamask`` when the CelebAMask-HQ attribute file is there, else ``celeba``.
Annotation formats: :mod:`datamodules.annotations`.

Items: ``image [3,R,R]`` float [0,1], ``attributes [40]`` float {0,1}, ``segmentation [R,R]`` int64 in 0..18
(:data:`SEG_CLASSES`, nearest resize), ``landmarks [68,2]`` in [0,1] (pixel-centre coords / R), ``identity`` int,
``index`` int (the HQ index), and the flags ``has_attributes``, ``has_segmentation``, ``has_landmarks``. Unknown
labels are marked, never invented: attributes and segmentation -1 (``ignore_index=-1``), landmarks NaN, identity -1.
Which images: ``indices`` (e.g. from a split file, :mod:`datamodules.splits`) or ``split`` of
:func:`split_indices`. A corrupt file: ``on_corrupt='fail'`` raises naming it, ``'skip'`` counts it
(:class:`~datamodules.real_files.CorruptImageHandling`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from datamodules.annotations import AnnotationFormatError, read_attribute_file, read_hq_mapping, read_identity_file
from datamodules.ffhq import FFHQ, FFHQ_LAYOUT
from datamodules.real_files import (
    NUM_LANDMARKS,
    UNKNOWN,
    CorruptImageError,
    CorruptImageHandling,
    DatasetNotFoundError,
    indexed_images,
    load_image,
    require,
    unknown_labels,
)
from lsi.labels import CELEBA_ATTRIBUTE_NAMES, CELEBAMASK_CLASSES

__all__ = ["ATTRIBUTE_NAMES_CELEBA", "FFHQ", "FFHQ_LAYOUT", "SEG_CLASSES", "AnnotationFormatError", "CelebAMaskHQ",
           "CorruptImageError", "DatasetNotFoundError", "build_landmark_cache", "find_celeba_hq_images",
           "load_celebamask_segmentation",
           "load_image", "read_attribute_file", "read_hq_mapping", "read_identity_file", "split_indices",
           "unknown_labels"]

ATTRIBUTE_NAMES_CELEBA: tuple[str, ...] = CELEBA_ATTRIBUTE_NAMES
SEG_CLASSES: tuple[str, ...] = CELEBAMASK_CLASSES
MASK_PARTS: tuple[str, ...] = SEG_CLASSES[1:]
HQ_IMG, HQ_ATTR, HQ_MASK = "CelebA-HQ-img", "CelebAMask-HQ-attribute-anno.txt", "CelebAMask-HQ-mask-anno"
HQ_MAPPING = "CelebA-HQ-to-CelebA-mapping.txt"
CELEBAMASK_LAYOUT = (f"<root>/{HQ_IMG}/<i>.jpg, <root>/{HQ_ATTR}, <root>/{HQ_MASK}/<i//2000>/<%05d>_<part>.png "
                     f"(config key: data.root)")
CELEBA_LAYOUT = (f"<root>/{HQ_IMG}/<i>.jpg|png (or the images in <root>), <root>/{HQ_MAPPING}, "
                 "<celeba_root>[/Anno]/list_attr_celeba.txt (config keys: data.root, data.celeba_root)")
LAYOUTS = ("auto", "celebamask", "celeba")

LandmarkProvider = Callable[[torch.Tensor], tuple[torch.Tensor, bool]]


def load_celebamask_segmentation(mask_root: Path, index: int, resolution: int) -> torch.Tensor:
    """Merge the per-part masks of image ``index`` into one ``[R,R]`` int64 map (later parts overwrite)."""
    folder = require(mask_root / str(index // 2000), "CelebAMask-HQ", CELEBAMASK_LAYOUT)
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


def _celeba_file(roots: list[Path], name: str) -> Path:
    for root in roots:
        for cand in (root / name, root / "Anno" / name):
            if cand.is_file():
                return cand
    raise DatasetNotFoundError(f"CelebA: {name} not found in {' or '.join(f'{r}[/Anno]' for r in roots)} "
                               f"(config key: data.celeba_root)")


def find_celeba_hq_images(root: str | Path, layout: str = "auto", image_dir: str | None = None) -> dict[int, Path]:
    """``{HQ index: image path}`` of a CelebA-HQ folder in either layout (see the module docstring)."""
    root = Path(root)
    layout_text = CELEBAMASK_LAYOUT if layout == "celebamask" else CELEBA_LAYOUT
    img_dir = root / (image_dir or HQ_IMG)
    if image_dir is None and layout != "celebamask" and not img_dir.is_dir() and root.is_dir():
        img_dir = root
    files = indexed_images(img_dir, "CelebA-HQ", layout_text)
    if not files:
        raise DatasetNotFoundError(f"CelebA-HQ: no numbered images (<i>.jpg) in {img_dir}. "
                                   f"Expected layout: {layout_text}.")
    return files


class CelebAMaskHQ(CorruptImageHandling, Dataset):
    """CelebA-HQ images with attributes, CelebAMask-HQ segmentation when present, optional landmarks / identities.

    ``attribute_source``: ``celebamask`` (CelebAMask-HQ-attribute-anno.txt) or ``celeba`` (list_attr_celeba.txt
    through the HQ mapping); default by layout. ``segmentation``: default True for the celebamask layout, False
    for the celeba layout. ``landmarks``: None, a ``.npy`` cache ``[N,68,2]`` in [0,1] indexed by CelebA-HQ index
    (NaN rows = no face; :func:`build_landmark_cache`) or a provider ``(image [3,R,R]) -> (px [68,2], found)``.
    """

    def __init__(self, root: str | Path, split: str = "test", resolution: int = 256, test_size: int = 2000,
                 val_size: int = 500, attribute_source: str | None = None, celeba_root: str | Path | None = None,
                 segmentation: bool | None = None, landmarks: str | Path | LandmarkProvider | None = None,
                 layout: str = "auto", image_dir: str | None = None, indices: list[int] | None = None,
                 on_corrupt: str = "fail") -> None:
        self.root, self.resolution = Path(root), int(resolution)
        self.name = "CelebA-HQ"
        self._init_corrupt_handling(on_corrupt)
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        require(self.root, self.name, f"{CELEBAMASK_LAYOUT}; or {CELEBA_LAYOUT}")
        if layout == "auto":
            layout = "celebamask" if (self.root / HQ_ATTR).is_file() else "celeba"
        self.layout = layout
        self.layout_text = CELEBAMASK_LAYOUT if layout == "celebamask" else CELEBA_LAYOUT
        self.celeba_roots = [Path(celeba_root)] if celeba_root is not None else []
        self.celeba_roots.append(self.root)
        self.files = find_celeba_hq_images(self.root, layout, image_dir)
        img_dir = next(iter(self.files.values())).parent
        all_idx = sorted(self.files)
        if indices is None:
            self.indices = split_indices(all_idx, split, test_size, val_size)
        else:
            absent = [i for i in indices if i not in self.files]
            if absent:
                raise DatasetNotFoundError(f"{self.name}: the index list asks for {len(absent)} image(s) not in "
                                           f"{img_dir}, e.g. {absent[:5]}. Expected layout: {self.layout_text}.")
            self.indices = list(indices)
        self.segmentation = layout == "celebamask" if segmentation is None else segmentation
        if self.segmentation:
            require(self.root / HQ_MASK, "CelebAMask-HQ", CELEBAMASK_LAYOUT)
        source = attribute_source or ("celebamask" if layout == "celebamask" else "celeba")
        self.attributes = self._read_attributes(source)
        self.identities = self._read_identities()
        self._landmark_cache: np.ndarray | None = None
        self._landmark_provider: LandmarkProvider | None = None
        if isinstance(landmarks, (str, Path)):
            cache = np.load(require(Path(landmarks), "landmark cache", "<file>.npy [N,68,2]"), allow_pickle=False)
            top = max(self.indices, default=-1)
            if cache.ndim != 3 or cache.shape[1:] != (NUM_LANDMARKS, 2) or cache.shape[0] <= top:
                raise AnnotationFormatError(f"landmark cache {landmarks} has shape {cache.shape}; expected "
                                            f"[N>{top},68,2] indexed by CelebA-HQ index")
            self._landmark_cache = cache.astype(np.float32)
        elif landmarks is not None:
            self._landmark_provider = landmarks

    def _mapping(self) -> dict[int, str]:
        return read_hq_mapping(require(self.root / HQ_MAPPING, "CelebA-HQ mapping", self.layout_text))

    def _read_attributes(self, source: str) -> dict[int, np.ndarray]:
        if source == "celebamask":
            path = require(self.root / HQ_ATTR, "CelebAMask-HQ", CELEBAMASK_LAYOUT)
            names, rows = read_attribute_file(path)
            keyed = {i: rows.get(f"{i}.jpg") for i in self.indices}
        elif source == "celeba":
            path = _celeba_file(self.celeba_roots, "list_attr_celeba.txt")
            names, rows = read_attribute_file(path)
            mapping = self._mapping()
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

    def _read_identities(self) -> dict[int, int]:
        """Identities when identity_CelebA.txt and the HQ mapping are both there (optional), else none."""
        try:
            ids = read_identity_file(_celeba_file(self.celeba_roots, "identity_CelebA.txt"))
            mapping = self._mapping()
        except DatasetNotFoundError:
            return {}
        return {i: ids[mapping[i]] for i in self.indices if i in mapping and mapping[i] in ids}

    def __len__(self) -> int:
        return len(self.indices)

    def image_path(self, i: int) -> Path:
        return self.files[self.indices[i]]

    def _item(self, i: int) -> dict:
        idx = self.indices[i]
        r = self.resolution
        item = unknown_labels(r)
        item["image"] = load_image(self.files[idx], r, self.name, self.layout_text)
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
        image = load_image(dataset.image_path(i), r, dataset.name, dataset.layout_text)
        pts, found = provider(image)
        if found:
            out[idx] = ((pts.float() + 0.5) / r).numpy()
    np.save(Path(path), out, allow_pickle=False)
    return out


def __getattr__(name: str):
    if name == "CelebAHQDataModule":  # moved to datamodules.real_faces; the old import path keeps working
        from datamodules.real_faces import CelebAHQDataModule  # local: real_faces imports this module

        return CelebAHQDataModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
