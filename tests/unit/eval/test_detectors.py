"""dlib 68-point landmarks on a real photograph shipped by scikit-image, model lookup, FaRL wrapper errors."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from skimage import data

from lsi.eval.face_recognition import FaceModelNotFoundError, FaceToolUnavailableError, dlib_models
from lsi.eval.face_recognition.detectors import (
    FARL_FILES,
    DlibLandmarks,
    FarlLandmarks,
    FarlSegmentation,
    as_uint8_rgb,
    farl_to_celebamask,
)
from lsi.labels import CELEBAMASK_CLASSES


@pytest.fixture(scope="module")
def dlib_lm():
    return DlibLandmarks()


@pytest.fixture(scope="module")
def astronaut():
    return data.astronaut()  # 512x512 RGB photo of Eileen Collins


def test_model_files_are_found_without_importing_the_package():
    for kind in ("landmarks68", "recognition", "cnn_detector"):
        path = dlib_models.dlib_model_path(kind)
        assert path.is_file() and path.stat().st_size > 100_000
    with pytest.raises(ValueError, match="unknown dlib model kind"):
        dlib_models.dlib_model_path("nope")


def test_missing_model_package_message(monkeypatch):
    monkeypatch.setattr(dlib_models, "_candidate_dirs", lambda: [])
    dlib_models.models_dir.cache_clear()
    try:
        with pytest.raises(FaceModelNotFoundError, match="pip install face_recognition_models"):
            dlib_models.models_dir()
    finally:
        dlib_models.models_dir.cache_clear()


def test_astronaut_68_landmarks_geometry(dlib_lm, astronaut):
    res = dlib_lm.detect(astronaut)
    assert res.found and res.points.shape == (68, 2) and res.points.dtype == torch.float32
    pts = res.points
    h, w = astronaut.shape[:2]
    assert (pts[:, 0] >= 0).all() and (pts[:, 0] < w).all() and (pts[:, 1] >= 0).all() and (pts[:, 1] < h).all()
    left, top, right, bottom = res.box
    size = right - left
    margin = 0.25 * size  # the jaw line may leave the tight HOG box a little
    assert (pts[:, 0] > left - margin).all() and (pts[:, 0] < right + margin).all()
    assert (pts[:, 1] > top - margin).all() and (pts[:, 1] < bottom + margin).all()
    eye_a, eye_b, mouth, nose = pts[36:42].mean(0), pts[42:48].mean(0), pts[48:68].mean(0), pts[27:36].mean(0)
    assert eye_a[1] < nose[1] < mouth[1] and eye_b[1] < mouth[1]      # eyes above nose above mouth
    assert eye_a[0] < eye_b[0]                                       # points 36-41 are the image-left eye
    assert pts[8, 1] > mouth[1]                                      # chin below the mouth
    assert abs(float(eye_a[1] - eye_b[1])) < 0.2 * size              # roughly level eyes (upright face)


def test_tensor_input_and_batch_normalisation(dlib_lm, astronaut):
    px, found = dlib_lm(astronaut)
    chw = torch.from_numpy(astronaut).permute(2, 0, 1).float() / 255.0
    px_t, found_t = dlib_lm(chw)  # float [3,H,W] in [0,1] gives the same result
    assert found and found_t and torch.allclose(px, px_t)
    non_face = torch.from_numpy(np.ascontiguousarray(data.coffee()[:400, :400])).permute(2, 0, 1).float() / 255.0
    batch = torch.stack([chw[:, :400, :400], non_face])
    lm, ok = dlib_lm.batch(batch)
    assert ok.tolist() == [True, False]
    assert torch.isnan(lm[1]).all()
    assert (lm[0] > 0).all() and (lm[0] < 1).all()
    px_crop, _ = dlib_lm(astronaut[:400, :400])
    assert torch.allclose(lm[0], (px_crop + 0.5) / 400)


def test_as_uint8_rgb_conversions():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert as_uint8_rgb(grey).shape == (3, 4, 3)
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    assert as_uint8_rgb(rgba).shape == (2, 2, 3)
    assert as_uint8_rgb(torch.ones(3, 5, 6)).max() == 255 and as_uint8_rgb(torch.ones(3, 5, 6)).shape == (5, 6, 3)
    with pytest.raises(ValueError, match="expected an image"):
        as_uint8_rgb(np.zeros((2, 2, 2, 2)))


def test_farl_label_mapping_to_celebamask():
    farl_names = ["background", "neck", "face", "cloth", "rr", "lr", "rb", "lb", "re", "le", "nose", "imouth",
                  "llip", "ulip", "hair", "eyeg", "hat", "earr", "neck_l"]
    mapped = farl_to_celebamask(torch.arange(19).reshape(1, 19), farl_names)[0]
    assert [CELEBAMASK_CLASSES[i] for i in mapped] == [
        "background", "neck", "skin", "cloth", "r_ear", "l_ear", "r_brow", "l_brow", "r_eye", "l_eye", "nose",
        "mouth", "l_lip", "u_lip", "hair", "eye_g", "hat", "ear_r", "neck_l"]
    assert sorted(mapped.tolist()) == list(range(19))
    with pytest.raises(ValueError, match="no CelebAMask-HQ class"):
        farl_to_celebamask(torch.zeros(2, dtype=torch.long), ["background", "teeth"])


def test_farl_missing_files_and_package_errors(tmp_path):
    with pytest.raises(FaceModelNotFoundError) as err:
        FarlLandmarks(weights_dir=str(tmp_path))
    assert FARL_FILES["detector"][0] in str(err.value) and "github.com" in str(err.value)
    with pytest.raises(FaceModelNotFoundError, match=FARL_FILES["parser"][0].replace(".", r"\.")):
        (tmp_path / FARL_FILES["detector"][0]).write_bytes(b"x")
        FarlSegmentation(weights_dir=str(tmp_path))
    if importlib.util.find_spec("facer") is not None:
        return  # pyfacer installed: the missing-package path cannot be exercised here
    for key in ("aligner", "parser"):
        (tmp_path / FARL_FILES[key][0]).write_bytes(b"x")
    with pytest.raises(FaceToolUnavailableError, match="pip install pyfacer"):
        FarlLandmarks(weights_dir=str(tmp_path))
    with pytest.raises(FaceToolUnavailableError, match="pip install pyfacer"):
        FarlSegmentation(weights_dir=str(tmp_path))
