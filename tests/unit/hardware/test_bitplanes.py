"""Bit-plane packing: round trips, G,R,B plane order, ROI placement and the mask -> (frame, plane) map."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hardware.bitplanes import (
    PLANE_NAMES,
    DMDGeometry,
    MaskGeometryError,
    display_sequence,
    frame_map,
    pack_masks,
    pack_planes,
    plane_channel_bit,
    unpack_frames,
    validate_binary_masks,
)


def test_plane_order_is_g_r_b():
    assert PLANE_NAMES[:3] == ("G0", "G1", "G2") and PLANE_NAMES[8] == "R0" and PLANE_NAMES[23] == "B7"
    assert [plane_channel_bit(k) for k in (0, 7, 8, 15, 16, 23)] == [(1, 0), (1, 7), (0, 0), (0, 7), (2, 0), (2, 7)]
    # a single plane on sets exactly the expected channel bit
    for k in range(24):
        planes = np.zeros((24, 2, 2), np.uint8)
        planes[k] = 1
        frame = pack_planes(planes)[0]
        ch, bit = plane_channel_bit(k)
        expected = np.zeros(3, np.uint8)
        expected[ch] = 1 << bit
        assert (frame == expected).all()
    with pytest.raises(ValueError):
        plane_channel_bit(24)


@pytest.mark.parametrize("d", [1, 24, 25, 128, 130, 500])
def test_pack_unpack_round_trip(d):
    rng = np.random.default_rng(d)
    planes = (rng.random((d, 8, 6)) > 0.5).astype(np.uint8)
    frames = pack_planes(planes)
    assert frames.shape == (math.ceil(d / 24), 8, 6, 3) and frames.dtype == np.uint8
    back = unpack_frames(frames)
    assert np.array_equal(back[:d], planes)
    assert not back[d:].any()  # padding planes of the last frame are all-off
    assert np.array_equal(unpack_frames(frames, d), planes)


@pytest.mark.parametrize("d,frames", [(128, 6), (130, 6), (500, 21)])
def test_frame_map(d, frames):
    order = np.random.default_rng(0).permutation(d)
    fmap = frame_map(order)["mask"]
    assert len(fmap) == d
    # mask order[p] is displayed at position p -> frame p // 24, plane p % 24
    for p in (0, 1, 23, 24, d - 1):
        assert fmap[order[p]] == [p // 24, p % 24]
    assert max(f for f, _ in fmap) == frames - 1
    assert len({tuple(x) for x in fmap}) == d  # one slot per mask
    comp = frame_map(order, complementary=True)
    assert comp["mask"][order[0]] == [0, 0] and comp["inverse"][order[0]] == [0, 1]
    assert comp["inverse"][order[d - 1]] == [(2 * d - 1) // 24, (2 * d - 1) % 24]


def test_geometry_place_extract_and_pack_masks():
    g = DMDGeometry(offset=(10, 20), scale=(2, 4), mask_shape=(16, 16))
    assert g.roi == (10, 20, 42, 84)
    rng = np.random.default_rng(1)
    masks = (rng.random((30, 16, 16)) > 0.5).astype(np.uint8)
    order = rng.permutation(30)
    frames = pack_masks(masks, g, order)
    assert frames.shape == (2, 1140, 912, 3)
    planes = unpack_frames(frames)
    # outside the ROI every mirror is off
    outside = planes.copy()
    outside[:, 20:84, 10:42] = 0
    assert not outside.any()
    # every mask pixel covers a 4-row x 2-column block of identical mirrors
    roi = planes[:, 20:84, 10:42]
    assert np.array_equal(roi, np.repeat(np.repeat(roi[:, ::4, ::2], 4, axis=1), 2, axis=2))
    back = g.extract(planes[..., None])[..., 0]
    assert np.array_equal(back[:30], masks[order])
    comp = unpack_frames(pack_masks(masks, g, order, complementary=True), 60)
    assert np.array_equal(g.extract(comp[..., None])[..., 0], display_sequence(masks, order, True))
    assert np.array_equal(display_sequence(masks, order, True)[1::2], 1 - masks[order])


def test_centred_default_geometry_fits_dlp4500():
    g = DMDGeometry.centred()
    assert g.roi == (200, 58, 712, 1082) and g.width == 912 and g.height == 1140
    with pytest.raises(MaskGeometryError, match="outside the 912x1140"):
        DMDGeometry(offset=(500, 0), scale=(2, 4))
    native = DMDGeometry(offset=(0, 0), scale=(1, 1), mask_shape=(1140, 912))
    assert native.roi == (0, 0, 912, 1140)


def test_validate_binary_masks():
    g = DMDGeometry.centred()
    ok = np.zeros((3, 256, 256), np.uint8)
    validate_binary_masks(ok, g, expected_count=3)
    with pytest.raises(MaskGeometryError, match="binary"):
        validate_binary_masks(ok + 2, g)
    with pytest.raises(MaskGeometryError, match="128x128"):
        validate_binary_masks(np.zeros((3, 128, 128), np.uint8), g)
    with pytest.raises(MaskGeometryError, match="uint8"):
        validate_binary_masks(ok.astype(np.float32), g)
    with pytest.raises(MaskGeometryError, match="expects 4 masks"):
        validate_binary_masks(ok, g, expected_count=4)
