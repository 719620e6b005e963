"""Sampling point, photodiode settling and the plan (issue 14, points 7, 11 and the serial line rate of 12).

The old rig sampled on TRIG_OUT_1's rising edge, i.e. at the start of each exposure, when the photodiode
still shows the previous pattern; nothing checked the exposure against the detector's bandwidth.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

from hardware.bitplanes import pack_masks
from hardware.plan import PlanRefused, make_plan
from hardware.rig import RigConfig, RigConfigError, load_display_profile
from hardware.sampling import (
    check_sampling,
    load_photodiode,
    respond,
    sample_offsets_us,
)
from hardware.sim import build_sim_rig
from hardware.timing import PatternClock
from tests.fixtures.capture_rig import GRID, make_data, small_rig

CLOCK = PatternClock(347, 347, 120.0)


@pytest.fixture
def data(tmp_path):
    return make_data(tmp_path)



def rig_at(fps: float = 120.0, exposure: int = 347, gain: int = 40, point: str = "end", **det) -> RigConfig:
    rig = RigConfig()
    rig.dmd.video_fps, rig.dmd.exposure_us, rig.dmd.frame_period_us = fps, exposure, exposure
    rig.detector.gain_db, rig.detector.sampling.point = gain, point
    for k, v in det.items():
        setattr(rig.detector.nidaqmx, k, v)
    rig.validate()
    return rig


def test_pda100a2_table():
    t = load_photodiode("pda100a2")
    assert t.model == "PDA100A2" and t.verified is False  # not confirmed against the spec sheet (see docs)
    bws = [t.bandwidth(g) for g in range(0, 80, 10)]
    assert bws[0] == 11.0e6 and all(a > b for a, b in zip(bws, bws[1:]))  # slower with every gain step
    assert t.tau_us(60) == pytest.approx(1e6 / (2 * math.pi * 3.0e3))


def test_bad_photodiode_table_is_refused(tmp_path):
    p = tmp_path / "pd.yaml"
    p.write_text(yaml.safe_dump({"model": "X", "bandwidth_hz": {0: 1e6, 10: 1e5}}))
    with pytest.raises(RigConfigError, match="every gain"):
        load_photodiode(p)


def test_sample_offsets():
    assert sample_offsets_us(rig_at(), CLOCK)[0][0] == pytest.approx(347 - 5.0384, abs=1e-3)  # falling edge, -5 us
    assert sample_offsets_us(rig_at(point="start"), CLOCK)[0][0] == 0.0
    t, keep = sample_offsets_us(rig_at(point="integrate", oversample=4, settle_samples=1), CLOCK)
    np.testing.assert_allclose(t, np.arange(4) * 347 / 4)
    assert keep.tolist() == [False, True, True, True]


def test_respond_is_a_first_order_step():
    levels = np.array([1.0, 0.0, 1.0])
    offsets, keep = np.array([100.0]), np.array([True])
    y = respond(levels, 0.0, CLOCK, 50.0, offsets, keep)
    assert y[0] == pytest.approx(1 - math.exp(-100 / 50))  # rise from the off level
    v_end0 = 1 - math.exp(-347 / 50)  # output when pattern 0 ends
    assert y[1] == pytest.approx(v_end0 * math.exp(-100 / 50))  # decaying towards pattern 1's level 0
    np.testing.assert_array_equal(respond(levels, 0.0, CLOCK, 0.0, offsets, keep), levels)


@pytest.mark.parametrize("fps,exposure,gain,status", [
    (120, 347, 40, "ok"), (120, 347, 50, "ok"), (120, 347, 60, "warn"), (120, 347, 70, "refuse"),
    (60, 347, 40, "ok"), (60, 347, 50, "ok"), (60, 347, 60, "warn"), (60, 694, 60, "ok")])
def test_settling_check_at_120_and_60_hz(fps, exposure, gain, status):
    rig = rig_at(fps, exposure, gain)
    assert check_sampling(rig, PatternClock(exposure, exposure, fps)).status == status


def test_sampling_at_the_start_of_the_exposure_is_refused():
    plan = make_plan(rig_at(point="start"), 128)
    assert plan.sampling.status == "refuse" and plan.sampling.residual > 0.99
    with pytest.raises(PlanRefused, match=r"detector.sampling.point: end"):
        plan.check()
    integrate = make_plan(rig_at(gain=60, point="integrate", oversample=4, settle_samples=1), 128)
    assert integrate.sampling.status == "refuse"  # first kept sample 87 us in: 20% of the previous pattern
    assert make_plan(rig_at(gain=60, point="integrate", oversample=4, settle_samples=3), 128).sampling.status == "warn"


def test_simulated_readings_follow_the_sampling_point():
    """The simulated photodiode makes the fault visible: sampled at the start of each exposure it reads the
    previous pattern; at the end, the pattern itself."""
    rng = np.random.default_rng(0)
    masks = (rng.random((24, GRID, GRID)) > 0.5).astype(np.uint8)
    img = np.full((3, GRID, GRID), 0.8, np.float32)
    img[:, : GRID // 2] = 0.1
    out = {}
    for point in ("end", "start"):
        rig = small_rig()
        rig.detector.sampling.point = point
        sim = build_sim_rig(rig, load_display_profile("sim"), load_display_profile("dmd_hdmi"))
        sim.dmd.configure(347, 347)
        sim.dmd.start()
        sim.scene_display.show(img)
        sim.detector.arm(24, CLOCK)
        sim.dmd.present(pack_masks(masks, rig.dmd.geometry()))
        out[point] = sim.detector.read(1.0) - 0.01  # minus the dark offset
    settled = sim.path.clean_readings(masks.astype(np.float32))
    np.testing.assert_allclose(out["end"], settled, atol=2e-3)
    np.testing.assert_allclose(out["start"][1:], settled[:-1], atol=2e-3)  # one pattern late


def test_serial_link_must_carry_the_pattern_rate():
    rig = rig_at()
    rig.detector.backend = "serial"
    rig.detector.serial.baudrate = 115200
    plan = make_plan(rig, 128)
    assert any("115,200 baud cannot carry 345,600 bit/s" in r and "baudrate: 460800" in r for r in plan.refusals)
    rig.detector.serial.baudrate = 460800
    assert make_plan(rig, 128).refusals == []
    rig.detector.serial.baudrate, rig.detector.serial.usb_cdc = 115200, True
    assert make_plan(rig, 128).refusals == []
    rig60 = rig_at(fps=60)
    rig60.detector.backend, rig60.detector.serial.baudrate = "serial", 230400  # 1,440 lines/s fit
    assert make_plan(rig60, 128).refusals == []
