"""Display rendering (offscreen), profiles and rig config loading."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from hardware.display import OffscreenDisplay, TkDisplay, encode, open_display, render_scene, scene_rect, to_hwc
from hardware.protocols import SceneDisplay
from hardware.rig import (
    DisplayProfile,
    RigConfig,
    RigConfigError,
    from_dict,
    load_display_profile,
    load_rig,
    rig_to_dict,
)


def prof(**kw) -> DisplayProfile:
    base = dict(name="t", backend="offscreen", width=100, height=60, gamma=2.2, settle_s=0.0, fit="contain")
    base.update(kw)
    return DisplayProfile(**base)


def test_to_hwc_accepts_common_layouts():
    chw = np.random.default_rng(0).random((3, 8, 6)).astype(np.float32)
    np.testing.assert_array_equal(to_hwc(chw), chw.transpose(1, 2, 0))
    np.testing.assert_array_equal(to_hwc(torch.from_numpy(chw)), chw.transpose(1, 2, 0))
    gray = to_hwc(np.full((4, 4), 255, np.uint8))
    assert gray.shape == (4, 4, 3) and gray.max() == 1
    with pytest.raises(ValueError, match="NaN"):
        to_hwc(np.full((3, 4, 4), np.nan))
    with pytest.raises(ValueError, match="shape"):
        to_hwc(np.zeros((2, 3, 4, 5)))


def test_scene_rect_modes():
    assert scene_rect(prof(), (256, 256)) == (20, 0, 60, 60)
    assert scene_rect(prof(image_size=50), (256, 256)) == (25, 5, 50, 50)
    assert scene_rect(prof(fit="stretch"), (256, 256)) == (0, 0, 100, 60)
    assert scene_rect(prof(fit="native"), (20, 30)) == (35, 20, 30, 20)
    with pytest.raises(RigConfigError, match="does not fit"):
        scene_rect(prof(image_size=80), (256, 256))


def test_render_encodes_gamma_and_background():
    p = prof(image_size=40, background=0.25)
    fb = render_scene(np.full((3, 16, 16), 0.5, np.float32), p)
    assert fb.shape == (60, 100, 3) and fb.dtype == np.uint8
    assert (fb[30, 50] == round(255 * 0.5 ** (1 / 2.2))).all()
    assert (fb[0, 0] == round(255 * 0.25 ** (1 / 2.2))).all()
    assert encode(np.array([0.0, 1.0]), 1.0).tolist() == [0, 255]
    # decoding with the monitor's gamma recovers linear intensities to within quantisation
    x = np.linspace(0, 1, 101)
    assert np.abs((encode(x, 2.2) / 255.0) ** 2.2 - x).max() <= 2.2 * 0.5 / 255  # half an LSB x max slope


def test_offscreen_display_show_and_present():
    d = OffscreenDisplay(prof(image_size=40))
    assert isinstance(d, SceneDisplay)
    events = []
    d.observers.append(lambda kind, payload: events.append(kind))
    d.show(np.ones((3, 8, 8)))
    assert d.rect == (30, 10, 40, 40) and d.shown == 1 and d.framebuffer[30, 50].tolist() == [255, 255, 255]
    dmd = OffscreenDisplay(prof(width=12, height=10, gamma=1.0, fit="native", bit_exact=True))
    frames = np.random.default_rng(0).integers(0, 256, (3, 10, 12, 3), dtype=np.uint8)
    dmd.present(frames, 1 / 120)
    assert dmd.presented == 3 and not dmd.framebuffer.any()  # back to all-off after the sequence
    with pytest.raises(ValueError, match="unchanged"):
        dmd.present(frames[:, :5], 1 / 120)
    assert events == ["scene"]


def test_profiles_and_validation(tmp_path):
    eizo = load_display_profile("eizo")
    assert (eizo.width, eizo.height, eizo.gamma, eizo.backend) == (4096, 2160, 2.2, "tk")
    dmd = load_display_profile("dmd_hdmi")
    assert dmd.bit_exact and (dmd.width, dmd.height, dmd.gamma, dmd.fit) == (912, 1140, 1.0, "native")
    assert isinstance(open_display(eizo, offscreen=True), OffscreenDisplay)
    with pytest.raises(RigConfigError, match="known: .*eizo"):
        load_display_profile("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("width: 10\nheight: 10\ngamma: 2.2\nfit: native\nbit_exact: true\n")
    with pytest.raises(RigConfigError, match="bit_exact"):
        load_display_profile(bad)
    bad.write_text("widht: 10\n")
    with pytest.raises(RigConfigError, match="unknown key.*widht"):
        load_display_profile(bad)


def test_rig_loading_is_strict(tmp_path):
    rig = load_rig()
    assert rig.dmd.geometry().roi == (200, 58, 712, 1082)
    assert rig.detector.nidaqmx.sample_clock == "PFI0" and rig.detector.nidaqmx.start_trigger == "PFI1"
    assert from_dict(RigConfig, rig_to_dict(rig)) == rig  # JSON snapshot round-trips
    p = tmp_path / "rig.yaml"
    p.write_text("dmd:\n  exposur_us: 100\n")
    with pytest.raises(RigConfigError, match="exposur_us"):
        load_rig(p)
    p.write_text("detector:\n  gain_db: 35\n")
    with pytest.raises(RigConfigError, match="gain_db"):
        load_rig(p)
    p.write_text("dmd:\n  roi:\n    scale: [4, 8]\n")
    with pytest.raises(ValueError, match="outside"):
        load_rig(p)
    p.write_text("calibration:\n  every: two\n")
    with pytest.raises(RigConfigError, match="every must be a int"):
        load_rig(p)
    with pytest.raises(RigConfigError, match="not found"):
        load_rig(tmp_path / "missing.yaml")


@pytest.mark.hardware
@pytest.mark.skipif(os.environ.get("LSI_HARDWARE") != "1", reason="needs a desktop with the Eizo (LSI_HARDWARE=1)")
def test_tk_window_opens():
    d = TkDisplay(load_display_profile("eizo"))
    d.show(np.ones((3, 256, 256)))
    d.close()
