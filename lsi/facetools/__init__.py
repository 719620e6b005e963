"""Real-face tools used to evaluate on real photographs: landmarks, identity embedders, FID features.

Every backend is optional and imported lazily (``dlib`` + ``face_recognition_models`` for landmarks and
the Dlib identity descriptor, ``deepface`` for VGG-Face, ``pyfacer`` for FaRL, ``torch-fidelity`` for the
Inception FID network). Nothing is ever downloaded: model files must already be on disk, and a missing
package or file raises an error that says what to install or where to put which file.

Public names (imported on first access)::

    DlibLandmarks, FarlLandmarks, FarlSegmentation, as_uint8_rgb, detect_largest_face,
    farl_to_celebamask                                                                    (landmarks)
    DlibFaceDescriptor, VggFaceEmbedder, cosine_distance, embed_batch                     (identity)
    InceptionFeatures, FeatureModule, resolve_inception_weights                           (fid)
    dlib_model_path, load_dlib_models                                                     (dlib_models)
"""

from __future__ import annotations

import importlib
from typing import Any


#: The 19 CelebAMask-HQ segmentation classes (0 = background, then the 18 annotated parts in the order in
#: which later parts overwrite earlier ones when the per-part masks are merged).
CELEBAMASK_CLASSES: tuple[str, ...] = (
    "background", "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear",
    "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth",
)


class FaceToolUnavailableError(ImportError):
    """An optional package a face tool needs is not installed (the message names the pip command)."""


class FaceModelNotFoundError(FileNotFoundError, ValueError):
    """A model/weights file a face tool needs is not on disk (the message names the file and folder)."""


class WeightsFormatError(ValueError):
    """A weights file exists but does not hold what the tool expects."""


_LAZY = {
    "DlibLandmarks": "landmarks",
    "FarlLandmarks": "landmarks",
    "FarlSegmentation": "landmarks",
    "as_uint8_rgb": "landmarks",
    "detect_largest_face": "landmarks",
    "farl_to_celebamask": "landmarks",
    "DlibFaceDescriptor": "identity",
    "VggFaceEmbedder": "identity",
    "cosine_distance": "identity",
    "embed_batch": "identity",
    "InceptionFeatures": "fid",
    "FeatureModule": "fid",
    "resolve_inception_weights": "fid",
    "dlib_model_path": "dlib_models",
    "load_dlib_models": "dlib_models",
}

__all__ = ["CELEBAMASK_CLASSES", "FaceToolUnavailableError", "FaceModelNotFoundError", "WeightsFormatError", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f"{__name__}.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
