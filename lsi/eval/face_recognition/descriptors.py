"""Face-identity embedders for real photographs and the cosine distance used to verify identity.

* :class:`DlibFaceDescriptor` — dlib's ResNet face descriptor (128-d) on the aligned 150x150 face chip.
* :class:`VggFaceEmbedder` — DeepFace's VGG-Face (4096-d, L2-normalised) from LOCAL weights only.

DeepFace cosine thresholds (the LSI paper's): Dlib 0.07, VGG-Face 0.68; a pair whose cosine distance
``1 - cos`` is at most the threshold is judged the same person (see :class:`lsi.eval.metrics.IdentityMatchRate`).
Faces are found with dlib's HOG detector (largest face). DeepFace's default OpenCV Haar detector is not used:
OpenCV 5 wheels no longer ship the cascade files and DeepFace would download them.
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from lsi.eval.face_recognition import FaceModelNotFoundError, FaceToolUnavailableError, WeightsFormatError
from lsi.eval.face_recognition.detectors import as_uint8_rgb, detect_largest_face
from lsi.eval.face_recognition.dlib_models import import_dlib, load_dlib_models

DLIB_COSINE_THRESHOLD = 0.07
VGGFACE_COSINE_THRESHOLD = 0.68
VGGFACE_FILES = ("vgg_face_weights.pth", "vgg_face_weights.h5")
VGGFACE_URL = "https://github.com/serengil/deepface_models/releases/download/v1.0/"
VGGFACE_INPUT = 224


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``1 - cos(a, b)`` over the last axis: ``[E],[E] -> []`` or ``[B,E],[B,E] -> [B]``."""
    return 1.0 - F.cosine_similarity(a.double(), b.double(), dim=-1, eps=1e-12).to(a.dtype)


def embed_batch(embedder: Callable[[Any], tuple[torch.Tensor, bool]],
                images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Run a single-image embedder over ``images [B,3,H,W]`` -> (emb ``[B,E]`` (zeros where missing), found ``[B]``)."""
    embs, found = zip(*(embedder(img) for img in images))
    return torch.stack(embs), torch.tensor(found, dtype=torch.bool)


class DlibFaceDescriptor:
    """dlib ResNet face descriptor of the largest face.

    ``__call__(image uint8 [H,W,3] RGB | float tensor [3,H,W]) -> (emb [128] float32, found)``;
    the embedding is all zeros when no face is found.
    """

    dim = 128
    threshold = DLIB_COSINE_THRESHOLD

    def __init__(self, upsample: int = 1, chip_size: int = 150, padding: float = 0.25, num_jitters: int = 0) -> None:
        self.upsample, self.chip_size, self.padding, self.num_jitters = upsample, chip_size, padding, num_jitters
        self._models = load_dlib_models(with_recognizer=True)
        self._dlib = import_dlib()

    def __call__(self, image: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, bool]:
        img = as_uint8_rgb(image)
        rect = detect_largest_face(img, self.upsample, self._models.detector)
        if rect is None:
            return torch.zeros(self.dim), False
        shape = self._models.shape_predictor(img, rect)
        chip = self._dlib.get_face_chip(img, shape, size=self.chip_size, padding=self.padding)
        desc = self._models.recognizer.compute_face_descriptor(chip, self.num_jitters)
        return torch.tensor(np.asarray(desc), dtype=torch.float32), True

    def batch(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``images [B,3,H,W]`` -> (emb ``[B,128]``, found ``[B]``)."""
        return embed_batch(self, images)


# ----------------------------------------------------------------------------------------------------------
# VGG-Face (DeepFace)

def deepface_weights_dir() -> Path:
    """DeepFace's weights folder: ``$DEEPFACE_HOME/.deepface/weights`` (``DEEPFACE_HOME`` defaults to ``~``)."""
    return Path(os.environ.get("DEEPFACE_HOME", os.path.expanduser("~"))) / ".deepface" / "weights"


def resolve_vggface_weights(weights_path: str | Path | None = None) -> Path:
    """Find the VGG-Face weights: a file, a folder holding ``vgg_face_weights.pth``/``.h5``, or DeepFace's folder."""
    if weights_path is not None and Path(weights_path).is_file():
        return Path(weights_path)
    folder = Path(weights_path) if weights_path is not None else deepface_weights_dir()
    if folder.is_dir():
        for name in VGGFACE_FILES:
            if (folder / name).is_file():
                return folder / name
    raise FaceModelNotFoundError(
        f"VGG-Face weights not found at {folder}. Put vgg_face_weights.pth (PyTorch, preferred) or "
        f"vgg_face_weights.h5 (needs TensorFlow) there, downloaded on a machine with network access from "
        f"{VGGFACE_URL}vgg_face_weights.pth, or pass the file/folder as `weights_path` (default folder: "
        f"{deepface_weights_dir()}). Nothing is downloaded at run time."
    )


def _deepface_torch_vgg() -> Any:
    if importlib.util.find_spec("deepface") is None:
        raise FaceToolUnavailableError(
            "VGG-Face needs deepface: `pip install deepface==0.0.103 werkzeug` (or the `eval` extra)."
        )
    from deepface.models.facial_recognition.pytorch import VGGFace
    return VGGFace


def _load_torch_vgg(path: Path) -> nn.Module:
    vgg = _deepface_torch_vgg()
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    base = vgg.VggFaceBaseModel()
    try:
        base.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as err:
        raise WeightsFormatError(
            f"{path} is not a DeepFace PyTorch VGG-Face state dict (conv1_1 ... fc8): {err}"
        ) from err
    return vgg.VggFaceDescriptor(base).eval()


class _KerasVgg(nn.Module):
    """Adapter: DeepFace's TensorFlow VGG-Face (``.h5``) behind the ``[n,3,224,224] BGR -> [n,4096]`` interface."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        if importlib.util.find_spec("tensorflow") is None:
            raise FaceToolUnavailableError(
                f"{path.name} is a TensorFlow/Keras weights file but TensorFlow is not installed (this project "
                f"does not install it). Use the PyTorch weights vgg_face_weights.pth from {VGGFACE_URL} instead."
            )
        from deepface.models.facial_recognition.tf import VGGFace as tf_vgg
        from tensorflow.keras.layers import Flatten
        from tensorflow.keras.models import Model
        base = tf_vgg.base_model()
        base.load_weights(str(path))
        self.keras = Model(inputs=base.layers[0].input, outputs=Flatten()(base.layers[-5].output))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.keras(x.permute(0, 2, 3, 1).cpu().numpy(), training=False).numpy()
        return torch.from_numpy(out)


class VggFaceEmbedder:
    """DeepFace VGG-Face embedding (4096-d, L2-normalised) of the largest face.

    Pre-processing follows DeepFace: the face is rotated so that the eyes are level, the detector box is
    cropped, resized (keeping its aspect, black padding) to 224x224, scaled to [0,1] and fed as BGR.
    ``model`` may be given instead of weights (any module ``[n,3,224,224] -> [n,F]``, e.g. in tests).
    ``__call__(image) -> (emb [F] float32, found)``; zeros when no face is found.
    """

    threshold = VGGFACE_COSINE_THRESHOLD

    def __init__(self, weights_path: str | None = None, model: nn.Module | None = None,
                 device: str = "cpu", upsample: int = 1) -> None:
        if model is None:
            path = resolve_vggface_weights(weights_path)
            model = _KerasVgg(path) if path.suffix == ".h5" else _load_torch_vgg(path)
        self.device = torch.device(device)
        self.model = model.to(self.device).eval() if isinstance(model, nn.Module) else model
        self.upsample = upsample
        self._models = load_dlib_models()

    def face_input(self, image: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, bool]:
        """Aligned face crop ``[3,224,224]`` float32 BGR in [0,1] (zeros, False when no face)."""
        img = as_uint8_rgb(image)
        rect = detect_largest_face(img, self.upsample, self._models.detector)
        if rect is None:
            return torch.zeros(3, VGGFACE_INPUT, VGGFACE_INPUT), False
        pts = np.array([[p.x, p.y] for p in self._models.shape_predictor(img, rect).parts()], dtype=np.float64)
        eye_a, eye_b = pts[36:42].mean(0), pts[42:48].mean(0)  # image-left eye, image-right eye
        angle = math.degrees(math.atan2(eye_b[1] - eye_a[1], eye_b[0] - eye_a[0]))
        box = (rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1)
        centre = ((box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0)
        face = Image.fromarray(img).rotate(angle, resample=Image.BILINEAR, center=centre).crop(box)
        scale = VGGFACE_INPUT / max(face.size)
        size = (max(1, round(face.width * scale)), max(1, round(face.height * scale)))
        canvas = np.zeros((VGGFACE_INPUT, VGGFACE_INPUT, 3), dtype=np.float32)
        top, left = (VGGFACE_INPUT - size[1]) // 2, (VGGFACE_INPUT - size[0]) // 2
        canvas[top:top + size[1], left:left + size[0]] = np.asarray(face.resize(size, Image.BILINEAR), np.float32)
        bgr = canvas[..., ::-1] / 255.0
        return torch.from_numpy(np.ascontiguousarray(bgr.transpose(2, 0, 1))), True

    @torch.no_grad()
    def __call__(self, image: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, bool]:
        x, found = self.face_input(image)
        if not found:
            return torch.zeros(self._dim()), False
        emb = self.model(x[None].to(self.device)).reshape(1, -1).float().cpu()[0]
        self._out_dim = emb.numel()
        return F.normalize(emb, dim=0), True

    def _dim(self) -> int:
        if not hasattr(self, "_out_dim"):
            with torch.no_grad():
                self._out_dim = int(self.model(torch.zeros(1, 3, VGGFACE_INPUT, VGGFACE_INPUT,
                                                           device=self.device)).reshape(1, -1).shape[1])
        return self._out_dim

    def batch(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``images [B,3,H,W]`` -> (emb ``[B,F]``, found ``[B]``)."""
        return embed_batch(self, images)
