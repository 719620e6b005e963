"""Timing model numbers for known cases (hardware facts: 2,880 patterns/s, d=128 -> 22.5 scenes/s)."""

from __future__ import annotations

import pytest

from hardware.capture import timing_for
from hardware.rig import DisplayProfile, RigConfig
from hardware.timing import TimingError, TimingModel, check_exposure

PERIOD_2880 = 1e6 / 2880  # 347.2 us: 24 patterns per 120 Hz frame


def test_dlp4500_anchor_rates():
    t = TimingModel(exposure_us=PERIOD_2880, d=128)
    assert t.patterns_per_s == pytest.approx(2880.0)
    assert t.ideal_scenes_per_s == pytest.approx(22.5)
    assert TimingModel(exposure_us=PERIOD_2880, d=32).ideal_scenes_per_s == pytest.approx(90.0)
    assert TimingModel(exposure_us=PERIOD_2880, d=128, complementary=True).ideal_scenes_per_s == pytest.approx(11.25)
    half = TimingModel(exposure_us=2 * PERIOD_2880, d=128)  # 60 Hz video: 1,440 patterns/s
    assert half.patterns_per_s == pytest.approx(1440.0)


def test_frame_quantisation_settle_and_references():
    t = TimingModel(exposure_us=PERIOD_2880, d=128, video_fps=120.0)
    assert t.frames_per_scene == 6 and t.frame_s == pytest.approx(1 / 120)
    assert t.sequence_s == pytest.approx(0.05) and t.scenes_per_s == pytest.approx(20.0)
    t = TimingModel(exposure_us=PERIOD_2880, d=130, video_fps=120.0, display_settle_s=0.1, reference_settle_s=0.1,
                    refs_per_scene=2, latency_frames=1)
    # 130 masks -> 6 frames (+1 latency) ; each reference: settle + 2 frames
    expected = 0.1 + 7 / 120 + 2 * (0.1 + 2 / 120)
    assert t.scene_s == pytest.approx(expected)
    assert t.total_s(100) == pytest.approx(100 * expected)
    report = t.report(100)
    assert "2,880.0 patterns/s" in report and "total for 100 scenes" in report
    assert t.summary(100)["total_s"] == pytest.approx(100 * expected)


def test_slow_video_dominates_frame_time():
    t = TimingModel(exposure_us=100, dark_us=0, d=48, video_fps=60.0)
    assert t.frame_s == pytest.approx(1 / 60)  # patterns finish early, the next frame comes at 60 Hz
    assert t.sequence_s == pytest.approx(2 / 60)


@pytest.mark.parametrize("exposure,dark,match", [(300, 100, "230"), (0, 0, "positive"), (100, -50, "longer")])
def test_exposure_rules(exposure, dark, match):
    with pytest.raises(TimingError, match=match):
        TimingModel(exposure_us=exposure, dark_us=dark, d=10)


def test_other_consistency_checks():
    check_exposure(347, 347)
    check_exposure(100, 330)
    with pytest.raises(TimingError, match="one frame at 120 Hz"):
        TimingModel(exposure_us=400, d=10, video_fps=120.0)
    with pytest.raises(TimingError, match="settle"):
        TimingModel(exposure_us=100, d=10, detector_settle_us=100)
    with pytest.raises(TimingError, match="d must be"):
        TimingModel(exposure_us=100, d=0)


def test_timing_for_default_rig():
    rig = RigConfig()
    prof = DisplayProfile(settle_s=0.1)
    t = timing_for(rig, 128, prof)
    assert t.period_us == 347 and t.patterns_per_s == pytest.approx(1e6 / 347)
    assert t.refs_per_scene == 2 and t.display_settle_s == 0.1
    rig.calibration.every, rig.calibration.position = 4, "before"
    assert timing_for(rig, 128, prof).refs_per_scene == pytest.approx(0.25)
