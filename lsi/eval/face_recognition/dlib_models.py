"""Find and load the dlib models shipped by the ``face_recognition_models`` package.

The package is located WITHOUT importing it (its ``__init__`` needs ``pkg_resources``, absent from modern
setuptools): ``importlib.util.find_spec`` gives its folder, else the ``site-packages`` folders are searched.
Loaded models are cached per process (``functools.lru_cache``).
"""

from __future__ import annotations

import functools
import importlib.util
import site
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsi.eval.face_recognition import FaceModelNotFoundError, FaceToolUnavailableError

PACKAGE = "face_recognition_models"
MODEL_FILES = {
    "landmarks68": "shape_predictor_68_face_landmarks.dat",
    "landmarks5": "shape_predictor_5_face_landmarks.dat",
    "recognition": "dlib_face_recognition_resnet_model_v1.dat",
    "cnn_detector": "mmod_human_face_detector.dat",
}
INSTALL_HINT = "pip install face_recognition_models  (or: pip install 'latent-space-imaging[eval]')"


def import_dlib() -> Any:
    """Import ``dlib`` or raise :class:`FaceToolUnavailableError` with the install command."""
    try:
        import dlib
    except ImportError as err:
        raise FaceToolUnavailableError(
            "dlib is not installed; the dlib landmark/identity tools need it. Install it with "
            "`pip install dlib-bin` (prebuilt wheel) or `pip install 'latent-space-imaging[eval]'`."
        ) from err
    return dlib


def _candidate_dirs() -> list[Path]:
    dirs: list[Path] = []
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        dirs.extend(Path(p) for p in spec.submodule_search_locations)
    roots = list(sys.path)
    try:
        roots += site.getsitepackages() + [site.getusersitepackages()]
    except AttributeError:  # some embedded interpreters lack these helpers
        pass
    dirs.extend(Path(r) / PACKAGE for r in roots if r)
    return dirs


@functools.cache
def models_dir() -> Path:
    """Folder ``.../face_recognition_models/models`` holding the ``.dat`` files."""
    for d in _candidate_dirs():
        if (d / "models").is_dir():
            return d / "models"
    raise FaceModelNotFoundError(
        f"the '{PACKAGE}' package (dlib model files) was not found on sys.path. Install it with "
        f"`{INSTALL_HINT}`; it provides models/{MODEL_FILES['landmarks68']} and "
        f"models/{MODEL_FILES['recognition']}."
    )


def dlib_model_path(kind: str) -> Path:
    """Path of one model file; ``kind`` in ``MODEL_FILES`` (landmarks68, landmarks5, recognition, cnn_detector)."""
    if kind not in MODEL_FILES:
        raise ValueError(f"unknown dlib model kind {kind!r}; expected one of {sorted(MODEL_FILES)}")
    path = models_dir() / MODEL_FILES[kind]
    if not path.is_file():
        raise FaceModelNotFoundError(
            f"dlib model file {path.name} is missing from {path.parent}; reinstall with "
            f"`pip install --force-reinstall face_recognition_models`."
        )
    return path


@dataclass(frozen=True)
class DlibModels:
    """The loaded dlib objects: HOG frontal face detector, 68-point shape predictor, ResNet descriptor."""

    detector: Any
    shape_predictor: Any
    recognizer: Any | None


@functools.cache
def _load(kind: str) -> Any:
    dlib = import_dlib()
    if kind == "detector":
        return dlib.get_frontal_face_detector()
    if kind == "landmarks68":
        return dlib.shape_predictor(str(dlib_model_path("landmarks68")))
    if kind == "recognition":
        return dlib.face_recognition_model_v1(str(dlib_model_path("recognition")))
    raise ValueError(f"unknown dlib model kind {kind!r}")


def load_dlib_models(with_recognizer: bool = False) -> DlibModels:
    """The detector, the 68-point predictor and optionally the face descriptor (each loaded once per process)."""
    return DlibModels(
        detector=_load("detector"),
        shape_predictor=_load("landmarks68"),
        recognizer=_load("recognition") if with_recognizer else None,
    )
