"""Identity embedders on real photographs shipped by scikit-image (astronaut) and matplotlib (Grace Hopper)."""

from __future__ import annotations

import importlib.util

import matplotlib.cbook as cbook
import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data
from torch import nn

from lsi.eval.face_recognition import FaceModelNotFoundError, FaceToolUnavailableError, WeightsFormatError
from lsi.eval.face_recognition.descriptors import (
    DLIB_COSINE_THRESHOLD,
    DlibFaceDescriptor,
    VggFaceEmbedder,
    cosine_distance,
    resolve_vggface_weights,
)
from lsi.eval.metrics import IdentityMatchRate


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    return np.array(Image.fromarray(img).resize((size, size), Image.BICUBIC))


@pytest.fixture(scope="module")
def astronaut():
    return data.astronaut()


@pytest.fixture(scope="module")
def hopper():
    with cbook.get_sample_data("grace_hopper.jpg") as f:
        img = np.asarray(Image.open(f).convert("RGB"))
    return np.ascontiguousarray(img[44:556])  # 512x512, face kept


@pytest.fixture(scope="module")
def dlib_desc():
    return DlibFaceDescriptor()


def test_dlib_descriptor_same_and_different_person(dlib_desc, astronaut, hopper):
    e, found = dlib_desc(astronaut)
    assert found and e.shape == (128,) and e.dtype == torch.float32
    e_again, _ = dlib_desc(astronaut.copy())
    assert float(cosine_distance(e, e_again)) < 1e-6
    brighter = np.clip(astronaut.astype(np.float32) * 1.2 + 10, 0, 255).astype(np.uint8)
    flipped = np.ascontiguousarray(astronaut[:, ::-1])
    for variant in (brighter, flipped, _resize(astronaut, 256)):
        e_v, ok = dlib_desc(variant)
        assert ok and float(cosine_distance(e, e_v)) < DLIB_COSINE_THRESHOLD
    e_h, ok = dlib_desc(hopper)
    assert ok and float(cosine_distance(e, e_h)) > DLIB_COSINE_THRESHOLD


def test_dlib_descriptor_no_face(dlib_desc):
    e, found = dlib_desc(data.coffee())
    assert not found and torch.count_nonzero(e) == 0


def test_dlib_batch_feeds_identity_match_rate(dlib_desc, astronaut, hopper):
    to_t = lambda a: torch.from_numpy(_resize(a, 256)).permute(2, 0, 1).float() / 255.0  # noqa: E731
    coffee = np.ascontiguousarray(data.coffee()[:400, :400])
    orig = torch.stack([to_t(astronaut), to_t(astronaut), to_t(astronaut)])
    recon = torch.stack([to_t(np.ascontiguousarray(astronaut[:, ::-1])), to_t(hopper), to_t(coffee)])
    e_o, f_o = dlib_desc.batch(orig)
    e_r, f_r = dlib_desc.batch(recon)
    assert f_o.tolist() == [True, True, True] and f_r.tolist() == [True, True, False]
    m = IdentityMatchRate.dlib()
    m.update(e_o, e_r, valid=f_o & f_r)
    out = m.compute()
    assert out["match_rate"].item() == pytest.approx(1 / 3) and out["no_face_rate"].item() == pytest.approx(1 / 3)


def test_vggface_missing_weights_message(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPFACE_HOME", str(tmp_path))
    with pytest.raises(FaceModelNotFoundError) as err:
        VggFaceEmbedder()
    msg = str(err.value)
    assert "vgg_face_weights.pth" in msg and str(tmp_path / ".deepface" / "weights") in msg
    assert not (tmp_path / ".deepface" / "weights" / "vgg_face_weights.pth").exists()  # nothing downloaded


def test_vggface_h5_needs_tensorflow_and_bad_pth(tmp_path):
    h5 = tmp_path / "vgg_face_weights.h5"
    h5.write_bytes(b"\x89HDF\r\n")
    assert resolve_vggface_weights(tmp_path) == h5
    if importlib.util.find_spec("tensorflow") is None:
        with pytest.raises(FaceToolUnavailableError, match="TensorFlow is not installed"):
            VggFaceEmbedder(weights_path=str(h5))
    bad = tmp_path / "vgg_face_weights.pth"
    torch.save({"conv1_1.weight": torch.zeros(1)}, bad)
    assert resolve_vggface_weights(tmp_path) == bad  # the PyTorch file is preferred
    with pytest.raises(WeightsFormatError, match="VGG-Face"):
        VggFaceEmbedder(weights_path=str(tmp_path))


class _Recorder(nn.Module):
    """Stand-in for VGG-Face: records its input and returns a few pooled values as the embedding."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.last = x.clone()
        return nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)


def test_vggface_preprocessing_with_injected_model(astronaut):
    stub = _Recorder()
    emb = VggFaceEmbedder(model=stub)
    x, found = emb.face_input(astronaut)
    assert found and x.shape == (3, 224, 224) and 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    # BGR order: the astronaut's face crop is skin-toned, so red (channel 2 in BGR) dominates blue (channel 0)
    assert x[2].mean() > x[0].mean()
    e, ok = emb(astronaut)
    assert ok and e.shape == (48,) and abs(float(e.norm()) - 1.0) < 1e-5
    assert stub.last.shape == (1, 3, 224, 224) and torch.allclose(stub.last[0], x)
    e2, ok2 = emb(np.clip(astronaut.astype(np.float32) * 1.1, 0, 255).astype(np.uint8))
    assert ok2 and float(cosine_distance(e, e2)) < 0.01
    z, none = emb(data.coffee())
    assert not none and z.shape == (48,) and torch.count_nonzero(z) == 0
