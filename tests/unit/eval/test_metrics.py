"""Evaluation metrics against hand-computed values."""

from __future__ import annotations

import math
from unittest import mock

import pytest
import torch
from torch import nn

from lsi.eval.face_recognition import FaceModelNotFoundError, WeightsFormatError
from lsi.eval.face_recognition.fid_features import (
    FID_WEIGHTS_CONFIG_KEY,
    INCEPTION_FILENAME,
    FeatureModule,
    InceptionFeatures,
)
from lsi.eval.metrics import (
    DLIB_COSINE_THRESHOLD,
    FID,
    NME,
    VGGFACE_COSINE_THRESHOLD,
    AttributeAccuracy,
    IdentityMatchRate,
    SegmentationF1,
    impostor_distances,
    threshold_at_far,
    verification_rates,
)


def _unit(angle: float) -> torch.Tensor:
    return torch.tensor([math.cos(angle), math.sin(angle)])


# ---------------------------------------------------------------------------------------------- identity

def test_identity_thresholds_are_deepface_values():
    assert DLIB_COSINE_THRESHOLD == 0.07 and VGGFACE_COSINE_THRESHOLD == 0.68
    assert IdentityMatchRate.dlib().threshold == 0.07 and IdentityMatchRate.vggface().threshold == 0.68


def test_identity_identical_embeddings_match():
    m = IdentityMatchRate(0.07)
    e = torch.randn(5, 16)
    m.update(e, e * 3.0)  # cosine distance is scale free
    out = m.compute()
    assert out["match_rate"] == 1.0 and out["no_face_rate"] == 0.0 and int(out["n"]) == 5
    assert abs(float(out["mean_distance"])) < 1e-12


def test_identity_distance_against_threshold():
    # cosine distances 1 - cos(angle): angle 0.3 -> 0.0447 (match at 0.07), 0.4 -> 0.0789 (no), pi/2 -> 1 (no)
    ref = torch.stack([_unit(0.0)] * 3)
    rec = torch.stack([_unit(0.3), _unit(0.4), _unit(math.pi / 2)])
    m = IdentityMatchRate(0.07)
    m.update(ref, rec)
    out = m.compute()
    assert out["match_rate"].item() == pytest.approx(1 / 3)
    expected_mean = ((1 - math.cos(0.3)) + (1 - math.cos(0.4)) + 1.0) / 3
    assert out["mean_distance"].item() == pytest.approx(expected_mean, abs=1e-9)


def test_identity_no_face_counts_as_failure():
    m = IdentityMatchRate(0.68)
    e = torch.randn(4, 8)
    m.update(e, e.clone(), valid=torch.tensor([True, True, False, True]))
    m.update(None, torch.randn(2, 8))  # no face found in the originals of a whole batch
    out = m.compute()
    assert int(out["n"]) == 6
    assert out["match_rate"].item() == pytest.approx(3 / 6)
    assert out["no_face_rate"].item() == pytest.approx(3 / 6)
    m.reset()
    m.update(None, None, valid=torch.zeros(3, dtype=torch.bool))
    assert m.compute()["match_rate"] == 0.0 and m.compute()["no_face_rate"] == 1.0


def test_threshold_at_far_on_constructed_scores():
    impostor = torch.linspace(0.01, 1.0, 100)          # 0.01, 0.02, ..., 1.00
    genuine = torch.tensor([0.001, 0.005, 0.3])
    t1 = threshold_at_far(genuine, impostor, far=0.01)  # one false accept allowed: 0.01 accepted, 0.02 not
    assert t1 == pytest.approx(0.015, abs=1e-6)
    tar, far = verification_rates(genuine, impostor, t1)
    assert far == pytest.approx(0.01) and tar == pytest.approx(2 / 3)
    t0 = threshold_at_far(genuine, impostor, far=0.0)   # no false accept: midway between 0.005 and 0.01
    assert t0 == pytest.approx(0.0075, abs=1e-6)
    assert verification_rates(genuine, impostor, t0)[1] == 0.0
    t10 = threshold_at_far(genuine, impostor, far=0.1)  # ten allowed: between 0.10 and 0.11
    assert t10 == pytest.approx(0.105, abs=1e-6) and verification_rates(genuine, impostor, t10)[1] == pytest.approx(0.1)
    assert threshold_at_far(genuine, impostor, far=1.0) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        threshold_at_far(genuine, impostor, far=1.5)


# ---------------------------------------------------------------------------------------------- attributes

def test_attribute_accuracy_perfect_and_known():
    m = AttributeAccuracy()
    target = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    m.update(torch.where(target > 0, 5.0, -5.0), target)   # logits
    assert m.compute().item() == 1.0
    m = AttributeAccuracy(num_attributes=2)
    logits = torch.tensor([[2.0, -1.0], [-3.0, 4.0]])
    target = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    m.update(logits, target)
    assert m.per_attribute().tolist() == [0.5, 1.0]
    assert m.compute().item() == pytest.approx(0.75)


def test_attribute_accuracy_probabilities_and_unknown_labels():
    m = AttributeAccuracy(input_type="probs")
    probs = torch.tensor([[0.9, 0.2], [0.4, 0.6], [0.7, 0.1]])
    target = torch.tensor([[1.0, 0.0], [1.0, -1.0], [0.0, float("nan")]])  # -1 / NaN: unknown, ignored
    m.update(probs, target)
    # attribute 0: correct, wrong, wrong -> 1/3 ; attribute 1: only row 0 known, correct -> 1
    assert m.per_attribute()[0].item() == pytest.approx(1 / 3) and m.per_attribute()[1].item() == 1.0
    auto = AttributeAccuracy()  # probabilities in [0,1] are recognised as such
    auto.update(probs, target)
    assert torch.allclose(auto.per_attribute(), m.per_attribute())


# ---------------------------------------------------------------------------------------------- segmentation

def test_segmentation_f1_perfect():
    m = SegmentationF1(num_classes=19)
    t = torch.randint(0, 19, (2, 8, 8))
    m.update(t.clone(), t)
    assert m.compute().item() == pytest.approx(1.0)


def test_segmentation_f1_known_confusion():
    target = torch.tensor([[0, 0, 1, 1, 2, 2]])
    pred = torch.tensor([[0, 1, 1, 1, 2, 3]])
    # class 0: TP1 FP0 FN1 -> 2/3 ; class 1: TP2 FP1 FN0 -> 4/5 ; class 2: TP1 FP0 FN1 -> 2/3 ; class 3: TP0 FP1 -> 0
    m = SegmentationF1(num_classes=4)
    m.update(pred, target)
    assert m.per_class()[:4].tolist() == pytest.approx([2 / 3, 4 / 5, 2 / 3, 0.0])
    assert m.compute().item() == pytest.approx((2 / 3 + 4 / 5 + 2 / 3) / 3)          # classes in ground truth
    u = SegmentationF1(num_classes=4, average_over="union")
    u.update(pred, target)
    assert u.compute().item() == pytest.approx((2 / 3 + 4 / 5 + 2 / 3 + 0.0) / 4)    # + predicted-only class 3
    nb = SegmentationF1(num_classes=4, include_background=False)
    nb.update(pred, target)
    assert nb.compute().item() == pytest.approx((4 / 5 + 2 / 3) / 2)


def test_segmentation_f1_accumulates_and_ignores():
    m = SegmentationF1(num_classes=3, ignore_index=255)
    m.update(torch.tensor([[0, 1]]), torch.tensor([[0, 255]]))     # second pixel ignored
    m.update(torch.tensor([[1, 2]]), torch.tensor([[1, -1]]))      # negative target (unknown) ignored
    logits = torch.zeros(1, 3, 1, 2)
    logits[0, 2, 0, :] = 1.0                                       # [B,C,H,W] scores -> argmax 2
    m.update(logits, torch.tensor([[[2, 1]]]))
    # class 0: TP1 ; class 1: TP1 FN1 -> 2/3 ; class 2: TP1 FP1 -> 2/3
    assert m.per_class().tolist() == pytest.approx([1.0, 2 / 3, 2 / 3])
    with pytest.raises(ValueError, match="labels must lie"):
        m.update(torch.tensor([[5]]), torch.tensor([[0]]))


# ---------------------------------------------------------------------------------------------- landmarks

def test_nme_perfect_and_constant_offset():
    s = 50.0
    corners = torch.tensor([[0.0, 0.0], [s, 0.0], [0.0, s], [s, s]])
    gt = torch.cat([corners, torch.rand(64, 2) * s])[None]      # bbox is the s x s square
    m = NME()
    m.update(gt.clone(), gt)
    assert m.compute().item() == 0.0
    m = NME(alpha=100.0)
    m.update(gt + torch.tensor([3.0, 4.0]), gt)
    assert m.compute().item() == pytest.approx(5.0 / (s * math.sqrt(2)) * 100.0, rel=1e-6)


def test_nme_averages_images_and_skips_invalid():
    a = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])[None]   # diag 10 sqrt2
    b = torch.tensor([[0.0, 0.0], [30.0, 0.0], [0.0, 40.0], [30.0, 40.0]])[None]   # diag 50
    gt = torch.cat([a, b, a])
    pred = gt.clone()
    pred[0] += torch.tensor([1.0, 0.0])     # error 1 / (10 sqrt 2)
    pred[1] += torch.tensor([0.0, 5.0])     # error 5 / 50
    pred[2] += 100.0                        # skipped by valid=False
    m = NME(alpha=1.0)
    m.update(pred, gt, valid=torch.tensor([True, True, False]))
    nan_gt = gt[:1].clone()
    nan_gt[0, 0, 0] = float("nan")          # not found -> skipped
    m.update(pred[:1], nan_gt)
    expected = (1 / (10 * math.sqrt(2)) + 5 / 50) / 2
    assert m.compute().item() == pytest.approx(expected, rel=1e-9)


# ---------------------------------------------------------------------------------------------- FID

def test_fid_custom_features_identical_and_shifted():
    fid = FID(lambda x: x.flatten(1), num_features=12)
    x = torch.rand(64, 3, 2, 2, generator=torch.Generator().manual_seed(0))
    fid.update(x, real=True)
    fid.update(x.clone(), real=False)
    assert abs(fid.compute().item()) < 1e-6
    fid.reset()
    fid.update(x, real=True)
    fid.update(x + 0.5, real=False)         # same covariance, mean shifted by 0.5 in 12 dims -> 12 * 0.25
    assert fid.compute().item() == pytest.approx(3.0, rel=1e-4)


def test_fid_custom_module_without_num_features():
    class Pool(nn.Module):
        def forward(self, x):
            return nn.functional.adaptive_avg_pool2d(x, 2).flatten(1)

    fid = FID(Pool(), input_img_size=(3, 8, 8))
    assert fid.real_features_sum.shape == (12,)
    x = torch.rand(32, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    fid.update(x, real=True)
    fid.update(x.flip(0), real=False)       # same set in another order
    assert abs(fid.compute().item()) < 1e-6
    assert isinstance(FeatureModule(lambda t: t, 3), nn.Module)


def test_fid_missing_inception_weights_message(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(FileNotFoundError) as err:
        FID(weights_path=tmp_path / "nowhere.pth")
    msg = str(err.value)
    assert INCEPTION_FILENAME in msg and "torch-fidelity" in msg and FID_WEIGHTS_CONFIG_KEY in msg
    with pytest.raises(FaceModelNotFoundError):
        FID()                               # nothing in the (empty) torch hub cache either
    bad = tmp_path / INCEPTION_FILENAME
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    with pytest.raises(WeightsFormatError):
        FID(weights_path=bad)


@pytest.fixture(scope="module")
def random_inception(tmp_path_factory):
    """A randomly initialised torch-fidelity InceptionV3 saved as a local weights file (no download)."""
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    with mock.patch.object(fe, "load_state_dict_from_url", lambda *a, **k: None), \
            mock.patch.object(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None):
        net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    path = tmp_path_factory.mktemp("incep") / INCEPTION_FILENAME
    torch.save(net.state_dict(), path)
    return path


@pytest.mark.slow
def test_fid_inception_path_from_local_file(random_inception):
    fid = FID(weights_path=random_inception.parent)     # a folder holding the file works too
    assert fid.inception.use_antialias is False
    x = torch.rand(3, 3, 48, 48, generator=torch.Generator().manual_seed(2))
    fid.update(x, real=True)
    fid.update(x, real=False)
    assert abs(fid.compute().item()) < 1e-6
    feats = InceptionFeatures(random_inception)
    f_float = feats(x)
    f_uint8 = feats((x * 255).round().to(torch.uint8))
    assert f_float.shape == (3, 2048) and torch.equal(f_float, f_uint8)


def test_states_reduce_like_ddp():
    """Two 'ranks' merged with the metric's own reduction give the single-process result."""
    e = torch.randn(6, 8)
    valid = torch.tensor([True, False, True, True, True, False])
    whole, a, b = IdentityMatchRate(0.07), IdentityMatchRate(0.07), IdentityMatchRate(0.07)
    whole.update(e, e + 0.01, valid)
    a.update(e[:3], e[:3] + 0.01, valid[:3])
    b.update(e[3:], e[3:] + 0.01, valid[3:])
    a.merge_state(b)
    assert {k: float(v) for k, v in a.compute().items()} == pytest.approx(
        {k: float(v) for k, v in whole.compute().items()})
    t, p = torch.randint(0, 5, (4, 6, 6)), torch.randint(0, 5, (4, 6, 6))
    s_whole, s_a, s_b = SegmentationF1(5), SegmentationF1(5), SegmentationF1(5)
    s_whole.update(p, t)
    s_a.update(p[:2], t[:2])
    s_b.update(p[2:], t[2:])
    s_a.merge_state(s_b)
    assert s_a.compute().item() == pytest.approx(s_whole.compute().item())


def test_identification_top1_against_a_gallery() -> None:
    from lsi.eval.metrics import first_of_each_identity, identification_top1

    ids = torch.tensor([7, 7, 3, 3, 3, 9])
    first = first_of_each_identity(ids)
    assert first.tolist() == [True, False, True, False, False, True]
    gallery = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])          # people 7, 3, 9
    probes = torch.tensor([[0.9, 0.1], [0.2, 0.9], [0.9, 0.3]])            # 7 ok, 3 ok, 3 wrong (nearest 7)
    acc = identification_top1(gallery, ids[first], probes, ids[~first])
    assert acc == pytest.approx(2 / 3)


# ---------------------------------------------------------------------------------------------- paper conventions

def test_identity_match_both_no_face_conventions():
    """DeepFace.verify semantics: a pair without a detected face raises and is skipped (excluded denominator)."""
    m = IdentityMatchRate(0.1)
    e = torch.randn(5, 8)
    far = torch.randn(5, 8)
    m.update(e, torch.cat([e[:2], far[2:]]), valid=torch.tensor([True, True, True, False, False]))
    out = m.compute()
    assert out["match_rate"].item() == pytest.approx(2 / 5)           # no face = failure
    assert out["match_rate_detected"].item() == pytest.approx(2 / 3)  # no face left out
    assert int(out["no_face"]) == 2
    m.reset()
    m.update(None, None, valid=torch.zeros(2, dtype=torch.bool))
    assert math.isnan(m.compute()["match_rate_detected"].item())


def test_segmentation_f1_all_classes_counts_absent_as_zero():
    target = torch.tensor([[0, 0, 1, 1, 2, 2]])
    pred = torch.tensor([[0, 1, 1, 1, 2, 3]])
    m = SegmentationF1(num_classes=19, average_over="all")
    m.update(pred, target)
    assert m.compute().item() == pytest.approx((2 / 3 + 4 / 5 + 2 / 3 + 0.0) / 19)
    nb = SegmentationF1(num_classes=19, average_over="all", include_background=False)
    nb.update(pred, target)
    assert nb.compute().item() == pytest.approx((4 / 5 + 2 / 3) / 18)


def test_impostor_distances_pairs_of_different_people():
    emb = torch.stack([_unit(0.0), _unit(0.1), _unit(math.pi / 2)])
    all_pairs = impostor_distances(emb)
    assert all_pairs.tolist() == pytest.approx([1 - math.cos(0.1), 1.0, 1 - math.cos(math.pi / 2 - 0.1)])
    same_person = impostor_distances(emb, torch.tensor([7, 7, 8]))  # pair (0, 1) is genuine: left out
    assert same_person.tolist() == pytest.approx([1.0, 1 - math.cos(math.pi / 2 - 0.1)])
    assert len(impostor_distances(emb, torch.tensor([7, -1, 8]))) == 1  # unknown identities left out


def test_ssim_is_one_for_identical_images_and_lower_with_noise():
    from lsi.eval.metrics import ssim

    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 32, 32, generator=g)
    assert torch.allclose(ssim(x, x), torch.ones(2), atol=1e-5)
    noisy = (x + 0.2 * torch.randn(2, 3, 32, 32, generator=g)).clamp(0, 1)
    s = ssim(noisy, x)
    assert s.shape == (2,) and bool((s < 0.9).all())
    with pytest.raises(ValueError, match="one shape"):
        ssim(x, x[:1])
