"""Real-face tools used to evaluate on real photographs: landmarks, identity embedders, FID features.

Every backend is optional and imported lazily (``dlib`` + ``face_recognition_models`` for landmarks and
the Dlib identity descriptor, ``deepface`` for VGG-Face, ``pyfacer`` for FaRL, ``torch-fidelity`` for the
Inception FID network). Nothing is ever downloaded: model files must already be on disk, and a missing
package or file raises an error that says what to install or where to put which file.

Public names (imported on first access)::

    DlibLandmarks, FarlLandmarks, FarlSegmentation, as_uint8_rgb, detect_largest_face,
    farl_to_celebamask                                                                    (detectors)
    DlibFaceDescriptor, VggFaceEmbedder, cosine_distance, embed_batch                     (descriptors)
    InceptionFeatures, FeatureModule, resolve_inception_weights                           (fid_features)
    dlib_model_path, load_dlib_models                                                     (dlib_models)

The submodules import the error classes below from this package, so it reaches them lazily (a cycle otherwise).
"""

from __future__ import annotations

import importlib
from typing import Any


class FaceToolUnavailableError(ImportError):
    """An optional package a face tool needs is not installed (the message names the pip command)."""


class FaceModelNotFoundError(FileNotFoundError, ValueError):
    """A model/weights file a face tool needs is not on disk (the message names the file and folder)."""


class WeightsFormatError(ValueError):
    """A weights file exists but does not hold what the tool expects."""


_LAZY = {
    "DlibLandmarks": "detectors",
    "FarlLandmarks": "detectors",
    "FarlSegmentation": "detectors",
    "as_uint8_rgb": "detectors",
    "detect_largest_face": "detectors",
    "farl_to_celebamask": "detectors",
    "DlibFaceDescriptor": "descriptors",
    "VggFaceEmbedder": "descriptors",
    "cosine_distance": "descriptors",
    "embed_batch": "descriptors",
    "InceptionFeatures": "fid_features",
    "FeatureModule": "fid_features",
    "resolve_inception_weights": "fid_features",
    "dlib_model_path": "dlib_models",
    "load_dlib_models": "dlib_models",
}

__all__ = ["FaceToolUnavailableError", "FaceModelNotFoundError", "WeightsFormatError", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f"{__name__}.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
