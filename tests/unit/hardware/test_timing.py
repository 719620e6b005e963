"""The one timing model, pinned against the DLP4500 facts (shared/notes/hardware-facts.md):

24 binary patterns per 24-bit video frame -> 2,880 patterns/s at 120 Hz, 1,440 patterns/s at 60 Hz;
d = 128 -> 22.5 and 11.25 scenes/s pattern-limited. The old model took 1e6 / period as the pattern rate
(2,881.8/s, also at 60 Hz) and printed 22.5 scenes/s for a 60 Hz rig.
"""

from __future__ import annotations

import pytest

from hardware.rig import DisplayProfile, RigConfig
from hardware.timing import (
    PatternClock,
    TimingError,
    TimingModel,
    check_exposure,
    serial_line_rate,
    timing_for,
)


def test_120hz_dlp4500_anchor_rates():
    t = TimingModel(exposure_us=347, d=128, video_fps=120.0)
    assert t.patterns_per_s == pytest.approx(2880.0)  # 24 x 120, not 1e6 / 347 = 2,881.8
    assert t.burst_rate_hz == pytest.approx(2881.844, abs=1e-3)
    assert t.ideal_scenes_per_s == pytest.approx(22.5)
    assert TimingModel(exposure_us=347, d=32).ideal_scenes_per_s == pytest.approx(90.0)
    assert TimingModel(exposure_us=347, d=128, complementary=True).ideal_scenes_per_s == pytest.approx(11.25)
    assert t.clock.idle_us == pytest.approx(1e6 / 120 - 24 * 347)  # 5.3 us to the next VSYNC


@pytest.mark.parametrize("exposure", [347, 694])
def test_60hz_rates_come_from_the_video_rate(exposure):
    """60 Hz HDMI: 1,440 patterns/s and 11.25 scenes/s at d = 128, whether the 24 patterns fill the frame
    (694 us) or leave it half idle (347 us, which the old model counted as 2,881.8 patterns/s)."""
    t = TimingModel(exposure_us=exposure, d=128, video_fps=60.0)
    assert t.patterns_per_s == pytest.approx(1440.0)
    assert t.ideal_scenes_per_s == pytest.approx(11.25)
    assert t.frames_per_scene == 6 and t.sequence_s == pytest.approx(6 / 60)
    assert t.burst_rate_hz == pytest.approx(1e6 / exposure)
    assert t.clock.idle_us == pytest.approx(1e6 / 60 - 24 * exposure)
    with pytest.raises(TimingError, match="one frame at 120 Hz"):  # 694 us does not fit 120 Hz
        TimingModel(exposure_us=694, d=128, video_fps=120.0)


def test_pattern_clock_positions():
    c = PatternClock(347, 347, 60.0)
    assert c.pattern_start_us(0) == 0 and c.pattern_start_us(23) == pytest.approx(23 * 347)
    assert c.pattern_start_us(24) == pytest.approx(1e6 / 60)  # next VSYNC, not 24 x 347 us
    assert c.frames_for(24) == 1 and c.frames_for(25) == 2
    assert PatternClock(347, 347, 120.0, patterns_per_frame=8).patterns_per_s == pytest.approx(960)  # 3-bit


def test_frame_quantisation_markers_settle_references_and_overheads():
    t = TimingModel(exposure_us=347, d=128, video_fps=120.0)
    assert t.frames_per_scene == 6 and t.frame_s == pytest.approx(1 / 120)
    assert t.sequence_s == pytest.approx(0.05) and t.scenes_per_s == pytest.approx(20.0)
    m = TimingModel(exposure_us=347, d=140, video_fps=120.0, markers=4)  # 144 patterns: still 6 frames
    assert m.patterns_per_scene == 144 and m.frames_per_scene == 6
    assert TimingModel(exposure_us=347, d=141, video_fps=120.0, markers=4).frames_per_scene == 7
    t = TimingModel(exposure_us=347, d=130, video_fps=120.0, display_settle_s=0.1, reference_settle_s=0.1,
                    refs_per_scene=2, latency_frames=1, display_update_s=0.03, daq_setup_s=0.005,
                    usb_commands=64, usb_command_s=0.021)
    # 130 masks -> 6 frames (+1 latency); each reference: settle + 2 frames; overheads per acquisition
    bare = 0.1 + 7 / 120 + 2 * (0.1 + 2 / 120)
    assert t.scene_s_for(False) == pytest.approx(bare)
    assert t.scene_s == pytest.approx(bare + 3 * (0.03 + 0.005))  # scene + 2 references
    assert t.setup_s == pytest.approx(64 * 0.021)
    assert t.total_s(100) == pytest.approx(64 * 0.021 + 100 * t.scene_s)
    report = t.report(100)
    assert "2,880.0 patterns/s" in report and "total for 100 scenes" in report and "with overheads" in report
    assert t.summary(100)["total_s"] == pytest.approx(t.total_s(100))


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
    check_exposure(100, 200, min_dark_us=100)  # the rule's 230 us is configurable (dmd.min_dark_us)
    with pytest.raises(TimingError, match="one frame at 120 Hz"):
        TimingModel(exposure_us=400, d=10, video_fps=120.0)
    with pytest.raises(TimingError, match="bit depth"):
        TimingModel(exposure_us=100, d=10, bit_depth=5)
    with pytest.raises(TimingError, match="d must be"):
        TimingModel(exposure_us=100, d=0)


def test_timing_for_default_rig():
    rig = RigConfig()
    prof = DisplayProfile(settle_s=0.1, update_s=0.03)
    t = timing_for(rig, 128, prof)
    assert t.period_us == 347 and t.patterns_per_s == pytest.approx(2880.0)
    assert t.refs_per_scene == 2 and t.display_settle_s == 0.1 and t.display_update_s == 0.03
    assert t.markers == 4 and t.daq_setup_s == rig.detector.setup_s and t.usb_commands == 64
    rig.calibration.every, rig.calibration.position = 4, "before"
    assert timing_for(rig, 128, prof).refs_per_scene == pytest.approx(0.25)
    rig.dmd.video_fps = 60.0
    assert timing_for(rig, 128, prof).ideal_scenes_per_s == pytest.approx(11.25)


def test_serial_line_rate():
    need, baud = serial_line_rate(2880, 12)
    assert need == pytest.approx(345_600) and baud == 460_800  # 115,200 baud carries a third of it
    assert serial_line_rate(1440, 12)[1] == 230_400
