"""Simulated rig: normalisation, encoder convention, contrast, gamma, shared noise model, device protocols."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from hardware.bitplanes import pack_masks
from hardware.protocols import DMD, Detector, DetectorTimeoutError, SceneDisplay
from hardware.rig import DisplayProfile, RigConfig, SimNoiseConfig, load_display_profile
from hardware.sim import build_sim_rig, frames_to_masks
from hardware.timing import PatternClock
from lsi.physics.noise import NoiseModel
from lsi.physics.operator import OpticalEncoder
from lsi.physics.operator import measure as measurement_rule

CLOCK = PatternClock(347, 347, 120.0)  # the default rig: 24 x 347 us per 120 Hz frame

QUIET = SimNoiseConfig(photons_full_scale=0.0, read_noise=0.0, adc_bits=0, full_scale=2.0, dark_offset=0.0,
                       ambient=0.0)


def make_rig(noise: SimNoiseConfig = QUIET, leak: float = 0.0, blur: float = 0.0, gamma: float = 2.2,
             scene_gamma: float = 2.2, mask_shape=(32, 32), drift: float = 0.0):
    rig = RigConfig()
    rig.dmd.roi.mask_shape = mask_shape
    rig.dmd.roi.scale = (4, 8)
    rig.sim = dataclasses.replace(rig.sim, noise=noise, leak=leak, blur_sigma=blur, monitor_gamma=gamma,
                                  drift_per_acquisition=drift)
    scene = DisplayProfile(name="s", backend="offscreen", width=40, height=36, gamma=scene_gamma, settle_s=0.0,
                           fit="contain", image_size=mask_shape[0])
    dmd = load_display_profile("dmd_hdmi")
    sim = build_sim_rig(rig, scene, dmd)
    sim.dmd.configure(347, 347)
    sim.dmd.start()
    return rig, sim


def measure(rig, sim, image, masks):
    frames = pack_masks(masks, rig.dmd.geometry())
    sim.scene_display.show(image)
    sim.detector.arm(masks.shape[0], CLOCK)
    sim.dmd.present(frames)
    return sim.detector.read(1.0)


def test_backends_satisfy_protocols():
    _, sim = make_rig()
    assert isinstance(sim.dmd, DMD) and isinstance(sim.detector, Detector)
    assert isinstance(sim.scene_display, SceneDisplay)
    assert isinstance(sim.path.noise, NoiseModel) and sim.path.noise.differentiable is False


def test_white_scene_all_on_reads_one_and_contrast_leaks():
    rig, sim = make_rig(leak=0.001)
    masks = np.stack([np.ones((32, 32), np.uint8), np.zeros((32, 32), np.uint8)])
    y = measure(rig, sim, np.ones((3, 32, 32)), masks)
    np.testing.assert_allclose(y, [1.0, 0.001], atol=1e-9)


def test_readings_follow_the_encoder_convention():
    rig, sim = make_rig()
    rng = np.random.default_rng(0)
    img = rng.random((3, 32, 32)).astype(np.float32)
    masks = (rng.random((30, 32, 32)) > 0.5).astype(np.uint8)
    y = measure(rig, sim, img, masks)
    ideal = measurement_rule(torch.from_numpy(masks), torch.from_numpy(img)[None].double())[0].numpy()
    np.testing.assert_allclose(y, ideal, atol=3e-3)  # uint8 display quantisation only
    assert np.corrcoef(y, ideal)[0, 1] > 0.99


def test_noiseless_readings_equal_the_operator_A():
    """One measurement rule: with noise, leak, blur and gamma off the rig reads exactly ``A(masks, scene)``."""
    rig, sim = make_rig(gamma=1.0, scene_gamma=1.0)
    enc = OpticalEncoder(ratio=32, grid=32, init="random_binary", seed=1)  # 32 binary 32x32 masks
    img = np.random.default_rng(1).integers(0, 256, (3, 32, 32)) / 255.0  # exact on the 8-bit display
    y = measure(rig, sim, img, enc.mask_codes())
    expected = enc.A(torch.from_numpy(img)[None])[0].detach().numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-9)  # float32 accumulation only


def test_gamma_mismatch_is_visible():
    gray = np.full((3, 32, 32), 0.5)
    on = np.ones((1, 32, 32), np.uint8)
    rig, sim = make_rig(gamma=2.2, scene_gamma=2.2)
    assert measure(rig, sim, gray, on)[0] == pytest.approx(0.5, abs=3e-3)
    rig, sim = make_rig(gamma=2.2, scene_gamma=1.0)  # uncorrected content on a gamma-2.2 monitor
    assert measure(rig, sim, gray, on)[0] == pytest.approx(0.5 ** 2.2, abs=3e-3)


def test_noise_statistics_come_from_the_shared_model():
    noise = SimNoiseConfig(photons_full_scale=1.0e4, read_noise=2e-3, adc_bits=0, full_scale=2.0, dark_offset=0.05,
                           ambient=0.01)
    rig, sim = make_rig(noise=noise)
    masks = np.ones((24, 32, 32), np.uint8)
    runs = np.stack([measure(rig, sim, np.full((3, 32, 32), 0.5), masks) for _ in range(40)]).ravel()
    level = 0.5  # gamma-corrected grey
    model = NoiseModel(**vars(noise), differentiable=False)
    expected_std = float(model.variance(torch.tensor([level], dtype=torch.float64)).sqrt())
    assert runs.mean() == pytest.approx(level + noise.dark_offset + noise.ambient, abs=2e-3)
    assert runs.std() == pytest.approx(expected_std, rel=0.15)


def test_drift_and_adc_saturation():
    rig, sim = make_rig(drift=0.1)
    on = np.ones((1, 32, 32), np.uint8)
    y = [measure(rig, sim, np.ones((3, 32, 32)), on)[0] for _ in range(3)]
    np.testing.assert_allclose(y, [1.0, 1.1, 1.2], atol=1e-9)
    sat = SimNoiseConfig(photons_full_scale=0.0, read_noise=0.0, adc_bits=8, full_scale=0.8, dark_offset=0.0,
                         ambient=0.0)
    rig, sim = make_rig(noise=sat)
    y = measure(rig, sim, np.ones((3, 32, 32)), on)
    assert y[0] == pytest.approx(0.8) and sim.detector.full_scale == 0.8


def test_timeouts_without_frames_or_stopped_dmd():
    rig, sim = make_rig()
    sim.detector.arm(24, CLOCK)
    with pytest.raises(DetectorTimeoutError, match="only 0 patterns"):
        sim.detector.read(0.1)
    sim.dmd.stop()
    sim.detector.arm(1, CLOCK)
    sim.dmd.present(pack_masks(np.ones((1, 32, 32), np.uint8), rig.dmd.geometry()))
    with pytest.raises(DetectorTimeoutError):
        sim.detector.read(0.1)


def test_latency_frames_prepend_idle_patterns():
    rig = RigConfig()
    rig.dmd.latency_frames = 1
    rig.sim = dataclasses.replace(rig.sim, noise=QUIET, leak=0.0, blur_sigma=0.0)
    sim = build_sim_rig(rig, load_display_profile("sim"), load_display_profile("dmd_hdmi"))
    sim.dmd.configure(347, 347)
    sim.dmd.start()
    sim.scene_display.show(np.ones((3, 256, 256)))
    sim.detector.arm(25, CLOCK)
    sim.dmd.present(pack_masks(np.ones((1, 256, 256), np.uint8), rig.dmd.geometry()))
    y = sim.detector.read(1.0)
    assert not y[:24].any() and y[24] == pytest.approx(1.0, abs=1e-6)


def test_frames_to_masks_block_average():
    rig = RigConfig()
    g = rig.dmd.geometry()
    masks = (np.random.default_rng(3).random((5, 256, 256)) > 0.5).astype(np.uint8)
    eff = frames_to_masks(pack_masks(masks, g), g)
    assert eff.shape == (24, 256, 256)
    np.testing.assert_array_equal(eff[:5], masks.astype(np.float32))
    assert not eff[5:].any()
