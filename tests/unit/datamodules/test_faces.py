"""Procedural face world: latents, decoding, rendering and the consistency of its ground truth."""

from __future__ import annotations

import pytest
import torch

from datamodules.faces import (
    ATTRIBUTE_NAMES,
    IDENTITY_INDEX,
    NUISANCE_INDEX,
    SEG_CLASSES,
    WORLD_DIM,
    decode_world,
    from_gaussian,
    random_world_latent,
    render_faces,
    sample_world_latent,
    to_gaussian,
)
from datamodules.faces.render import RenderSizeError
from datamodules.faces.world import LATENT_NAMES, WorldLatentError, attributes_from_params

SEG = {name: i for i, name in enumerate(SEG_CLASSES)}
ATTR = {name: i for i, name in enumerate(ATTRIBUTE_NAMES)}
IX = {name: i for i, name in enumerate(LATENT_NAMES)}


def _prior(n: int, seed: int = 0) -> torch.Tensor:
    return random_world_latent(n, torch.Generator().manual_seed(seed))


def _frontal(n: int, seed: int = 1) -> torch.Tensor:
    """Random identities, facing the camera, no glasses / hat / locks over the ears."""
    u = _prior(n, seed)
    for name, value in (("yaw", 0.5), ("roll", 0.5), ("eyeglasses", 0.999), ("hat", 0.999),
                        ("hair_over_ears", 0.999)):
        u[:, IX[name]] = value
    return u


@pytest.fixture(scope="module")
def frontal():
    u = _frontal(24)
    return u, render_faces(u, 128)


@pytest.fixture(scope="module")
def prior_small():
    u = _prior(300, seed=5)
    return u, render_faces(u, 64)


def _near_class(seg: torch.Tensor, pts: torch.Tensor, classes: list[int], radius: int = 1) -> torch.Tensor:
    """For landmarks ``pts [N,2]`` (normalised), whether a pixel of ``classes`` lies within ``radius``."""
    S = seg.shape[-1]
    ok = []
    for x, y in (pts * S - 0.5).round().long().tolist():
        patch = seg[max(y - radius, 0):y + radius + 1, max(x - radius, 0):x + radius + 1]
        ok.append(bool(torch.isin(patch, torch.tensor(classes)).any()))
    return torch.tensor(ok)


def test_constants():
    assert 32 <= WORLD_DIM <= 48
    assert sorted(IDENTITY_INDEX + NUISANCE_INDEX) == list(range(WORLD_DIM))
    assert not set(IDENTITY_INDEX) & set(NUISANCE_INDEX)
    assert SEG_CLASSES == ("background", "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear",
                           "r_ear", "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth")
    assert len(ATTRIBUTE_NAMES) >= 14
    for name in ("Male", "Smiling", "Eyeglasses", "No_Beard", "Bald", "Black_Hair", "Wearing_Hat", "Young"):
        assert name in ATTRIBUTE_NAMES


def test_world_latent_seeds():
    a, b = sample_world_latent(7, 100), sample_world_latent(7, 100)
    assert torch.equal(a, b) and a.shape == (WORLD_DIM,)
    assert float(a.min()) > 0 and float(a.max()) < 1
    other_image = sample_world_latent(7, 101)
    other_id = sample_world_latent(8, 100)
    idn, nui = list(IDENTITY_INDEX), list(NUISANCE_INDEX)
    assert torch.equal(a[idn], other_image[idn]) and not torch.equal(a[nui], other_image[nui])
    assert torch.equal(a[nui], other_id[nui]) and not torch.equal(a[idn], other_id[idn])
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(random_world_latent(5, g1), random_world_latent(5, g2))


def test_gaussian_maps_round_trip():
    u = _prior(64)
    assert torch.allclose(from_gaussian(to_gaussian(u)), u, atol=1e-5)
    z = to_gaussian(torch.tensor([0.0, 0.5, 1.0]))
    assert torch.isfinite(z).all() and abs(float(z[1])) < 1e-6 and float(z[0]) < -4 and float(z[2]) > 4


def test_bad_inputs_raise_value_errors():
    with pytest.raises(WorldLatentError):
        render_faces(torch.rand(2, WORLD_DIM + 1), 64)
    with pytest.raises(ValueError):
        decode_world(torch.rand(WORLD_DIM))
    with pytest.raises(RenderSizeError):
        render_faces(_prior(1), 8)


def test_same_identity_same_identity_params():
    u = torch.stack([sample_world_latent(11, s) for s in (1, 2, 3)])
    p = decode_world(u)
    for name in ("face_a", "face_bl", "jaw_k", "eye_w", "eye_sep", "nose_w", "mouth_w", "hair_style", "male"):
        v = getattr(p, name)
        assert torch.equal(v, v[:1].expand_as(v)), name
    assert torch.equal(p.skin_rgb, p.skin_rgb[:1].expand_as(p.skin_rgb))
    assert len(set(p.yaw.tolist())) == 3 and len(set(p.light_dir.tolist())) == 3


def test_render_shapes_ranges_and_determinism():
    u = _prior(6)
    for size in (64, 96):
        out = render_faces(u, size)
        assert out.image.shape == (6, 3, size, size) and out.image.dtype == torch.float32
        assert out.segmentation.shape == (6, size, size) and out.segmentation.dtype == torch.int64
        assert out.landmarks.shape == (6, 68, 2) and out.landmarks.dtype == torch.float32
        assert out.attributes.shape == (6, len(ATTRIBUTE_NAMES))
        assert float(out.image.min()) >= 0 and float(out.image.max()) <= 1
        assert int(out.segmentation.min()) >= 0 and int(out.segmentation.max()) < len(SEG_CLASSES)
        assert set(out.attributes.unique().tolist()) <= {0.0, 1.0}
        again = render_faces(u.clone(), size)
        assert torch.equal(out.image, again.image) and torch.equal(out.segmentation, again.segmentation)
        assert torch.equal(out.landmarks, again.landmarks)
    # landmarks are analytic: independent of the resolution
    assert torch.allclose(render_faces(u, 64).landmarks, render_faces(u, 96).landmarks)


def test_batch_composition_does_not_change_a_scene():
    u = _prior(9, seed=2)
    together = render_faces(u, 64)
    for i in (0, 4):
        alone = render_faces(u[i:i + 1], 64)
        assert torch.allclose(alone.image[0], together.image[i], atol=1e-4)
        assert (alone.segmentation[0] != together.segmentation[i]).float().mean() < 1e-3


def test_crops_cover_every_touched_pixel():
    """Rendering inside per-layer crops equals evaluating every layer on the whole image."""
    g = torch.Generator().manual_seed(4)
    u = random_world_latent(36, g)
    corners = torch.rand(36, WORLD_DIM, generator=g).round().clamp(1e-6, 1 - 1e-6)
    u[18:] = corners[18:]                                  # extreme poses, sizes, styles
    u[::3, IX["hat"]] = torch.rand(12, generator=g) * 0.09
    u[1::3, IX["eyeglasses"]] = 0.001
    u[2::3, IX["earrings"]] = 0.001
    fast, ref = render_faces(u, 96), render_faces(u, 96, full_frame=True)
    assert float((fast.image - ref.image).abs().max()) < 1e-3
    assert float((fast.segmentation != ref.segmentation).float().mean()) < 1e-5


def test_faces_are_centred_like_ffhq(frontal):
    _, out = frontal
    lm = out.landmarks
    eyes = lm[:, 36:48].mean(1)
    assert ((eyes[:, 0] - 0.5).abs() < 0.05).all()
    assert ((eyes[:, 1] > 0.38) & (eyes[:, 1] < 0.52)).all()
    eye_dist = (lm[:, 36:42].mean(1) - lm[:, 42:48].mean(1)).norm(dim=1)
    assert ((eye_dist > 0.18) & (eye_dist < 0.32)).all()
    face_w = lm[:, 16, 0] - lm[:, 0, 0]
    assert ((face_w > 0.35) & (face_w < 0.6)).all()
    assert (lm[:, 36:42, 0].mean(1) < lm[:, 42:48, 0].mean(1)).all()       # 36-41 is the image-left eye


def test_part_landmarks_lie_in_their_classes(frontal):
    _, out = frontal
    for b in range(out.image.shape[0]):
        seg, lm = out.segmentation[b], out.landmarks[b]
        assert _near_class(seg, lm[36:42], [SEG["l_eye"]]).all()
        assert _near_class(seg, lm[42:48], [SEG["r_eye"]]).all()
        assert _near_class(seg, lm[48:68], [SEG["mouth"], SEG["u_lip"], SEG["l_lip"]]).all()
        assert _near_class(seg, lm[27:36], [SEG["nose"]]).all()
        assert _near_class(seg, lm[17:22], [SEG["l_brow"]]).all()
        assert _near_class(seg, lm[22:27], [SEG["r_brow"]]).all()
        # points inside the parts (not on their outline) fall exactly inside
        assert _near_class(seg, lm[36:42].mean(0, keepdim=True), [SEG["l_eye"]], radius=0).all()
        assert _near_class(seg, lm[42:48].mean(0, keepdim=True), [SEG["r_eye"]], radius=0).all()
        assert _near_class(seg, lm[[28, 29, 30, 33]], [SEG["nose"]], radius=0).all()


def test_jaw_landmarks_on_the_face_outline(frontal):
    _, out = frontal
    for b in range(out.image.shape[0]):
        seg, lm = out.segmentation[b], out.landmarks[b]
        skin = _near_class(seg, lm[:17], [SEG["skin"]])
        other = _near_class(seg, lm[:17], [c for c in range(len(SEG_CLASSES)) if c != SEG["skin"]])
        assert (skin & other).all(), b


def test_accessory_attributes_match_pixels(prior_small):
    _, out = prior_small
    seg, a = out.segmentation, out.attributes
    count = lambda cls: (seg == SEG[cls]).flatten(1).sum(1)    # noqa: E731
    assert torch.equal(a[:, ATTR["Eyeglasses"]] > 0, count("eye_g") > 0)
    assert torch.equal(a[:, ATTR["Wearing_Hat"]] > 0, count("hat") > 0)
    assert torch.equal(a[:, ATTR["Wearing_Earrings"]] > 0, count("ear_r") > 0)
    assert torch.equal(a[:, ATTR["Wearing_Necklace"]] > 0, count("neck_l") > 0)
    bald = a[:, ATTR["Bald"]] > 0
    assert (count("hair")[bald] == 0).all()
    visible = ~bald & (a[:, ATTR["Wearing_Hat"]] == 0)
    assert (count("hair")[visible] > 40).all()
    # every pixel class of the world shows up somewhere in a few hundred scenes
    assert set(seg.unique().tolist()) == set(range(len(SEG_CLASSES)))


def test_attribute_frequencies_are_not_degenerate():
    a = attributes_from_params(decode_world(_prior(600, seed=9)))
    freq = a.mean(0)
    for name, f in zip(ATTRIBUTE_NAMES, freq.tolist()):
        assert 0.01 < f < 0.99, (name, f)
    male = a[:, ATTR["Male"]] > 0
    assert a[~male, ATTR["No_Beard"]].min() == 1 and a[~male, ATTR["Mustache"]].max() == 0


def test_edges_are_anti_aliased(prior_small):
    _, out = prior_small
    lum = out.image[:40].mean(1)
    seg = out.segmentation[:40]
    left, a, b, right = lum[..., :-3], lum[..., 1:-2], lum[..., 2:-1], lum[..., 3:]
    edge = (seg[..., 1:-2] != seg[..., 2:-1]) & ((right - left).abs() > 0.2)
    jump = (right - left).abs()
    steepest = torch.maximum(torch.maximum((a - left).abs(), (b - a).abs()), (right - b).abs())
    split = steepest < 0.85 * jump        # a hard edge puts (almost) the whole jump into one pixel step
    assert int(edge.sum()) > 500
    assert float(split[edge].float().mean()) > 0.3
    assert out.image.unique().numel() > 5000
