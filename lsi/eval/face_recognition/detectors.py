"""68-point face landmarks (iBUG-300W order) and face parsing on real photographs.

* :class:`DlibLandmarks` — dlib HOG frontal face detector (largest face) + the 68-point shape predictor.
* :class:`FarlLandmarks` / :class:`FarlSegmentation` — optional FaRL models through the ``pyfacer`` package
  (``import facer``), with every model file passed explicitly (nothing is downloaded).

Coordinates: single-image calls return pixel coordinates ``(x, y)`` as the backends give them (pixel ``i``
has its centre at ``i``). Batch helpers return the embedded world's convention: ``(x + 0.5) / W`` and
``(y + 0.5) / H``, i.e. pixel-centre coordinates divided by the image size, in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lsi.eval.face_recognition import FaceModelNotFoundError, FaceToolUnavailableError
from lsi.eval.face_recognition.dlib_models import load_dlib_models
from lsi.labels import CELEBAMASK_CLASSES

NUM_LANDMARKS = 68


def as_uint8_rgb(image: np.ndarray | torch.Tensor) -> np.ndarray:
    """Any single image -> C-contiguous ``uint8`` ``[H,W,3]`` RGB.

    Accepts numpy/torch ``[H,W,3]``, ``[H,W,4]`` (alpha dropped), ``[H,W]`` (grey) or torch ``[3,H,W]``;
    integer images are taken as 0..255, floating images as [0, 1] (clipped).
    """
    if isinstance(image, torch.Tensor):
        t = image.detach().cpu()
        if t.ndim == 3 and t.shape[0] in (1, 3) and t.shape[-1] not in (3, 4):
            t = t.permute(1, 2, 0)
        arr = t.numpy()
    else:
        arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.ndim != 3 or arr.shape[-1] not in (3, 4):
        raise ValueError(f"expected an image [H,W,3], [H,W] or [3,H,W]; got shape {tuple(arr.shape)}")
    arr = arr[..., :3]
    if np.issubdtype(arr.dtype, np.floating):
        arr = np.clip(np.round(arr * 255.0), 0, 255)
    return np.ascontiguousarray(arr.astype(np.uint8))


def detect_largest_face(img: np.ndarray, upsample: int = 1, detector: Any | None = None) -> Any | None:
    """Largest dlib face rectangle in a ``uint8 [H,W,3]`` image, or None.

    The HOG detector runs without upsampling first and only upsamples (up to ``upsample`` times) when no
    face was found; among detections the largest box wins (ties: higher score).
    """
    detector = detector or load_dlib_models().detector
    for level in range(max(upsample, 0) + 1):
        rects, scores, _ = detector.run(img, level, 0.0)
        if len(rects):
            best = max(range(len(rects)), key=lambda i: (rects[i].area(), scores[i]))
            return rects[best]
    return None


def normalise_points(points: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Pixel coordinates ``[...,2]`` -> pixel-centre coordinates / size, in [0, 1]."""
    scale = points.new_tensor([width, height])
    return (points + 0.5) / scale


@dataclass
class LandmarkResult:
    points: torch.Tensor   # [68,2] float32 pixel (x, y); NaN when not found
    found: bool
    box: tuple[int, int, int, int] | None  # (left, top, right, bottom) of the face used


class DlibLandmarks:
    """dlib 68-point landmarks of the largest frontal face.

    ``__call__(image) -> (points [68,2] float32 pixel (x, y), found)``; points are NaN when no face is found.
    """

    def __init__(self, upsample: int = 1) -> None:
        self.upsample = upsample
        self._models = load_dlib_models()

    def detect(self, image: np.ndarray | torch.Tensor) -> LandmarkResult:
        img = as_uint8_rgb(image)
        rect = detect_largest_face(img, self.upsample, self._models.detector)
        if rect is None:
            return LandmarkResult(torch.full((NUM_LANDMARKS, 2), float("nan")), False, None)
        shape = self._models.shape_predictor(img, rect)
        pts = torch.tensor([[p.x, p.y] for p in shape.parts()], dtype=torch.float32)
        return LandmarkResult(pts, True, (rect.left(), rect.top(), rect.right(), rect.bottom()))

    def __call__(self, image: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, bool]:
        res = self.detect(image)
        return res.points, res.found

    def batch(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``images [B,3,H,W]`` (float [0,1] or uint8) -> (landmarks ``[B,68,2]`` in [0,1], found ``[B]`` bool)."""
        return batch_landmarks(self, images)


def batch_landmarks(provider: Any, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Run a single-image provider ``(image) -> (points px [68,2], found)`` over ``images [B,3,H,W]``.

    Returns landmarks ``[B,68,2]`` normalised to [0,1] (NaN where not found) and found ``[B]`` bool.
    """
    h, w = images.shape[-2:]
    out = torch.full((images.shape[0], NUM_LANDMARKS, 2), float("nan"))
    found = torch.zeros(images.shape[0], dtype=torch.bool)
    for i, img in enumerate(images):
        pts, ok = provider(img)
        if ok:
            out[i], found[i] = normalise_points(pts, h, w), True
    return out, found


# ----------------------------------------------------------------------------------------------------------
# FaRL through pyfacer (optional)

FARL_FILES = {
    "detector": ("mobilenet0.25_Final.pth",
                 "https://github.com/elliottzheng/face-detection/releases/download/0.0.1/mobilenet0.25_Final.pth"),
    "aligner": ("face_alignment.farl.ibug300w.main_ema_jit.pt",
                "https://github.com/FacePerceiver/facer/releases/download/models-v1/"
                "face_alignment.farl.ibug300w.main_ema_jit.pt"),
    "parser": ("face_parsing.farl.celebm.main_ema_181500_jit.pt",
               "https://github.com/FacePerceiver/facer/releases/download/models-v1/"
               "face_parsing.farl.celebm.main_ema_181500_jit.pt"),
}

#: FaRL CelebAMask-HQ ("celebm") parser label names -> our CelebAMask-HQ class names.
FARL_CELEBM_TO_CELEBAMASK = {
    "background": "background", "face": "skin", "nose": "nose", "eyeg": "eye_g", "le": "l_eye", "re": "r_eye",
    "lb": "l_brow", "rb": "r_brow", "lr": "l_ear", "rr": "r_ear", "imouth": "mouth", "ulip": "u_lip",
    "llip": "l_lip", "hair": "hair", "hat": "hat", "earr": "ear_r", "neck_l": "neck_l", "neck": "neck",
    "cloth": "cloth",
}


def farl_to_celebamask(labels: torch.Tensor, label_names: list[str] | tuple[str, ...]) -> torch.Tensor:
    """Re-index a FaRL label map (indices into ``label_names``) to :data:`CELEBAMASK_CLASSES` (int64)."""
    lut = torch.zeros(len(label_names), dtype=torch.int64)
    for i, name in enumerate(label_names):
        if name not in FARL_CELEBM_TO_CELEBAMASK:
            raise ValueError(f"FaRL label {name!r} has no CelebAMask-HQ class; use the 'farl/celebm/448' parser")
        lut[i] = CELEBAMASK_CLASSES.index(FARL_CELEBM_TO_CELEBAMASK[name])
    return lut[labels.long().cpu()]


def _model_file(path: str | Path | None, weights_dir: str | Path | None, key: str) -> str:
    name, url = FARL_FILES[key]
    candidate = Path(path) if path else (Path(weights_dir) / name if weights_dir else None)
    if candidate is None or not candidate.is_file():
        where = str(candidate) if candidate else "(no path given)"
        raise FaceModelNotFoundError(
            f"FaRL {key} model file not found: {where}. Download {name} from {url} on a machine with network "
            f"access, copy it next to the other FaRL files and pass its folder as `weights_dir` (or the file as "
            f"`{key}_path`). Nothing is downloaded at run time."
        )
    return str(candidate)


def _import_facer() -> Any:
    try:
        import facer
    except ImportError as err:
        raise FaceToolUnavailableError(
            "the FaRL landmark/parsing backend needs the `pyfacer` package (imported as `facer`): "
            "`pip install pyfacer` (it also needs timm). Alternatively use DlibLandmarks."
        ) from err
    return facer


class _FarlBase:
    def __init__(self, detector_path: str | None, weights_dir: str | None, device: str) -> None:
        self._detector_file = _model_file(detector_path, weights_dir, "detector")
        self.device = torch.device(device)

    def _load(self) -> Any:
        facer = _import_facer()
        self.detector = facer.face_detector("retinaface/mobilenet", device=self.device, model_path=self._detector_file)
        return facer

    def _faces(self, image: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, dict[str, Any] | None]:
        img = torch.from_numpy(as_uint8_rgb(image)).permute(2, 0, 1)[None].to(self.device)
        with torch.inference_mode():
            faces = self.detector(img)
        if faces["rects"].numel() == 0:
            return img, None
        r = faces["rects"]
        k = int(((r[:, 2] - r[:, 0]) * (r[:, 3] - r[:, 1])).argmax())
        one = {key: v[k:k + 1] for key, v in faces.items()
               if isinstance(v, torch.Tensor) and v.shape[:1] == r.shape[:1]}
        one["image_ids"] = torch.zeros(1, dtype=torch.long, device=self.device)
        return img, one


class FarlLandmarks(_FarlBase):
    """FaRL iBUG-300W 68-point landmarks (the paper's landmark pseudo ground truth).

    Needs ``pyfacer`` and two local files: the RetinaFace detector (``mobilenet0.25_Final.pth``) and the
    aligner (``face_alignment.farl.ibug300w.main_ema_jit.pt``); see :data:`FARL_FILES` for sources.
    ``__call__(image) -> (points [68,2] float32 pixel (x, y), found)``.
    """

    def __init__(self, aligner_path: str | None = None, detector_path: str | None = None,
                 weights_dir: str | None = None, device: str = "cpu") -> None:
        super().__init__(detector_path, weights_dir, device)
        aligner_file = _model_file(aligner_path, weights_dir, "aligner")
        facer = self._load()
        if not hasattr(facer, "face_aligner"):
            raise FaceToolUnavailableError("the installed pyfacer has no face_aligner; upgrade: pip install -U pyfacer")
        self.aligner = facer.face_aligner("farl/ibug300w/448", device=self.device, model_path=aligner_file)

    def __call__(self, image: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, bool]:
        img, faces = self._faces(image)
        if faces is None:
            return torch.full((NUM_LANDMARKS, 2), float("nan")), False
        with torch.inference_mode():
            faces = self.aligner(img, faces)
        return faces["alignment"][0].float().cpu(), True

    def batch(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``images [B,3,H,W]`` -> (landmarks ``[B,68,2]`` in [0,1], found ``[B]`` bool)."""
        return batch_landmarks(self, images)


class FarlSegmentation(_FarlBase):
    """FaRL CelebAMask-HQ face parser, output re-indexed to :data:`CELEBAMASK_CLASSES`.

    Needs ``pyfacer`` and local files ``mobilenet0.25_Final.pth`` and
    ``face_parsing.farl.celebm.main_ema_181500_jit.pt``.
    ``__call__(image) -> (labels [H,W] int64, found)``; all background when no face is found.
    """

    def __init__(self, parser_path: str | None = None, detector_path: str | None = None,
                 weights_dir: str | None = None, device: str = "cpu") -> None:
        super().__init__(detector_path, weights_dir, device)
        parser_file = _model_file(parser_path, weights_dir, "parser")
        facer = self._load()
        self.parser = facer.face_parser("farl/celebm/448", device=self.device, model_path=parser_file)

    def __call__(self, image: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, bool]:
        img, faces = self._faces(image)
        if faces is None:
            return torch.zeros(img.shape[-2:], dtype=torch.int64), False
        with torch.inference_mode():
            faces = self.parser(img, faces)
        seg = faces["seg"]
        return farl_to_celebamask(seg["logits"][0].argmax(0), seg["label_names"]), True

    def batch(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``images [B,3,H,W]`` -> (labels ``[B,H,W]`` int64, found ``[B]`` bool)."""
        outs, found = zip(*(self(img) for img in images))
        return torch.stack(outs), torch.tensor(found, dtype=torch.bool)
