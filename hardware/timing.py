"""The one timing model of a capture: pattern clock, scene rate, overheads and total time.

Every consumer derives its numbers from here: ``lsi-capture --plan``, the capture loop (watchdog), the
NI-DAQ sample clock (:class:`PatternClock`), the serial link check and the simulator.

Video-port pattern mode (DLPC350, trigger mode 0): every VSYNC starts the 24-entry LUT, which shows the
``24 / bit_depth`` bit planes of the incoming frame one after the other, each for one pattern period
(``period = exposure + dark``, the DLPC350 needs ``dark == 0`` or ``dark >= min_dark_us = 230``), then the
DMD waits for the next VSYNC. Hence::

    patterns_per_s  = patterns_per_frame * video_fps          (1-bit: 24 * 120 = 2,880; 24 * 60 = 1,440)
    burst_rate_hz   = 1e6 / period_us                         (rate *within* a frame: 2,881.8 at 347 us)
    idle_us         = 1e6 / video_fps - patterns_per_frame * period_us   (>= 0, else refused)

so a 347 us exposure at 60 Hz gives 1,440 patterns/s (8.33 ms of patterns, 8.33 ms idle per frame), not
1e6 / 347 = 2,881.8. A scene of ``n`` patterns (``d`` masks, ``2d`` with complementary patterns, plus the
alignment markers) streams as ``ceil(n / patterns_per_frame)`` whole frames. Per scene::

    scene_s = display_update + display_settle + daq_setup + (frames + latency) / video_fps
              + refs_per_scene * (display_update + reference_settle + daq_setup + (1 + latency) / video_fps)

``ideal_scenes_per_s = patterns_per_s / (d or 2d)`` ignores markers, frame quantisation and overheads
(2,880 patterns/s, d = 128 -> 22.5 scenes/s; 1,440 patterns/s -> 11.25). The session additionally pays the
LUT upload once (``usb_commands * usb_command_s``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hardware.dlpc350_commands import configure_command_count

if TYPE_CHECKING:
    from hardware.rig import DisplayProfile, RigConfig

__all__ = [
    "TimingError",
    "MIN_DARK_US",
    "PLANES_PER_FRAME",
    "check_exposure",
    "PatternClock",
    "TimingModel",
    "serial_line_rate",
    "timing_for",
    "STANDARD_BAUD_RATES",
]

MIN_DARK_US = 230.0  # DLPC350: exposure == period, or exposure <= period - 230 us (TI DLPC350 API)
PLANES_PER_FRAME = 24  # bit planes in a 24-bit video frame
STANDARD_BAUD_RATES = (9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600, 1000000, 2000000, 3000000)


class TimingError(ValueError):
    """Inconsistent exposure, period, frame rate or link settings."""


def check_exposure(exposure_us: float, period_us: float, min_dark_us: float = MIN_DARK_US) -> None:
    """DLPC350 rule: exposure == period, or exposure <= period - ``min_dark_us``; raise :class:`TimingError`."""
    if exposure_us <= 0 or period_us <= 0:
        raise TimingError(f"exposure ({exposure_us} us) and frame period ({period_us} us) must be positive")
    if exposure_us > period_us:
        raise TimingError(f"exposure {exposure_us} us is longer than the pattern period {period_us} us")
    gap = period_us - exposure_us
    if 0 < gap < min_dark_us:
        raise TimingError(
            f"exposure {exposure_us} us and period {period_us} us differ by {gap:g} us: the DLPC350 needs the "
            f"exposure equal to the period or at least {min_dark_us:g} us shorter; use exposure={period_us} "
            f"or exposure<={period_us - min_dark_us:g} (dmd.exposure_us / dmd.frame_period_us)"
        )


@dataclass(frozen=True)
class PatternClock:
    """When each pattern is shown, relative to the VSYNC (TRIG_OUT_2) of its frame.

    Pattern ``k`` of an acquisition starts at ``(k // patterns_per_frame) / video_fps +
    (k % patterns_per_frame) * period_us``; its light lasts ``exposure_us``.
    """

    exposure_us: float
    period_us: float
    video_fps: float
    patterns_per_frame: int = PLANES_PER_FRAME
    min_dark_us: float = MIN_DARK_US

    def __post_init__(self) -> None:
        check_exposure(self.exposure_us, self.period_us, self.min_dark_us)
        if self.video_fps <= 0:
            raise TimingError(f"video_fps must be > 0, got {self.video_fps}")
        if not 1 <= self.patterns_per_frame <= PLANES_PER_FRAME:
            raise TimingError(f"patterns per frame must be in [1, 24], got {self.patterns_per_frame}")
        if self.idle_us < -1.0:  # 1 us slack: 24 x 347 us = 8,328 us fits an 8,333 us frame
            raise TimingError(
                f"{self.patterns_per_frame} patterns of {self.period_us:g} us need "
                f"{self.patterns_per_frame * self.period_us:g} us but one frame at {self.video_fps:g} Hz lasts "
                f"{self.frame_us:.1f} us; use dmd.frame_period_us <= "
                f"{math.floor(self.frame_us / self.patterns_per_frame)}")

    @property
    def frame_us(self) -> float:
        return 1e6 / self.video_fps

    @property
    def frame_s(self) -> float:
        return 1.0 / self.video_fps

    @property
    def dark_us(self) -> float:
        return self.period_us - self.exposure_us

    @property
    def idle_us(self) -> float:
        """Time between the end of a frame's last pattern and the next VSYNC."""
        return self.frame_us - self.patterns_per_frame * self.period_us

    @property
    def burst_rate_hz(self) -> float:
        """Pattern rate within a frame (what an oversampling clock must follow)."""
        return 1e6 / self.period_us

    @property
    def patterns_per_s(self) -> float:
        """Average pattern rate (VSYNC-limited)."""
        return self.patterns_per_frame * self.video_fps

    def pattern_start_us(self, k: int) -> float:
        """Start of pattern ``k`` of a sequence, from the first frame's VSYNC."""
        return (k // self.patterns_per_frame) * self.frame_us + (k % self.patterns_per_frame) * self.period_us

    def frames_for(self, n_patterns: int) -> int:
        return math.ceil(n_patterns / self.patterns_per_frame)


@dataclass
class TimingModel:
    """Timing of a capture (times in microseconds unless the name says ``_s``).

    ``markers`` are extra patterns per scene (alignment markers); ``usb_commands`` the commands of one
    DMD configuration (LUT upload) and ``usb_command_s`` the time each takes.
    """

    exposure_us: float
    d: int
    dark_us: float = 0.0
    video_fps: float = 120.0
    bit_depth: int = 1
    complementary: bool = False
    markers: int = 0
    display_settle_s: float = 0.0
    reference_settle_s: float = 0.0
    refs_per_scene: float = 0.0
    latency_frames: int = 0
    display_update_s: float = 0.0
    daq_setup_s: float = 0.0
    usb_commands: int = 0
    usb_command_s: float = 0.0
    min_dark_us: float = MIN_DARK_US
    clock: PatternClock = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.d < 1:
            raise TimingError(f"d must be >= 1, got {self.d}")
        if self.bit_depth not in (1, 2, 3, 4, 6, 8):
            raise TimingError(f"bit depth must divide 24 (1, 2, 3, 4, 6, 8), got {self.bit_depth}")
        if self.markers < 0 or self.latency_frames < 0 or self.refs_per_scene < 0:
            raise TimingError("markers, latency_frames and refs_per_scene must be >= 0")
        self.clock = PatternClock(self.exposure_us, self.exposure_us + self.dark_us, self.video_fps,
                                  PLANES_PER_FRAME // self.bit_depth, self.min_dark_us)

    # -- pattern clock ---------------------------------------------------------------------------------------
    @property
    def period_us(self) -> float:
        return self.clock.period_us

    @property
    def patterns_per_frame(self) -> int:
        return self.clock.patterns_per_frame

    @property
    def patterns_per_s(self) -> float:
        return self.clock.patterns_per_s

    @property
    def burst_rate_hz(self) -> float:
        return self.clock.burst_rate_hz

    @property
    def frame_s(self) -> float:
        return self.clock.frame_s

    # -- per scene -------------------------------------------------------------------------------------------
    @property
    def mask_patterns(self) -> int:
        return self.d * (2 if self.complementary else 1)

    @property
    def patterns_per_scene(self) -> int:
        return self.mask_patterns + self.markers

    @property
    def frames_per_scene(self) -> int:
        return self.clock.frames_for(self.patterns_per_scene)

    @property
    def ideal_scenes_per_s(self) -> float:
        """Pattern-limited rate: masks only, no frame quantisation, markers or overheads."""
        return self.patterns_per_s / self.mask_patterns

    @property
    def sequence_s(self) -> float:
        """Frames of one scene acquisition (plus the latency lead-in)."""
        return self.frame_s * (self.frames_per_scene + self.latency_frames)

    def reference_s(self, overheads: bool = True) -> float:
        """One reference: white field settle and one frame (plus display update and DAQ set-up)."""
        t = self.reference_settle_s + self.frame_s * (1 + self.latency_frames)
        return t + (self.display_update_s + self.daq_setup_s if overheads else 0.0)

    def scene_s_for(self, overheads: bool = True) -> float:
        t = self.display_settle_s + self.sequence_s + self.refs_per_scene * self.reference_s(overheads)
        return t + (self.display_update_s + self.daq_setup_s if overheads else 0.0)

    @property
    def scene_s(self) -> float:
        """Seconds per scene including display update and DAQ set-up."""
        return self.scene_s_for(True)

    @property
    def scenes_per_s(self) -> float:
        return 1.0 / self.scene_s

    @property
    def setup_s(self) -> float:
        """Once per session: DMD configuration and LUT upload."""
        return self.usb_commands * self.usb_command_s

    def total_s(self, count: int) -> float:
        """Total time for ``count`` scenes, session set-up included."""
        return self.setup_s + count * self.scene_s

    def summary(self, count: int | None = None) -> dict[str, float]:
        """Inputs and derived numbers as a flat dict."""
        out = {k: getattr(self, k) for k in (
            "exposure_us", "dark_us", "period_us", "video_fps", "bit_depth", "d", "complementary", "markers",
            "patterns_per_frame", "patterns_per_s", "burst_rate_hz", "patterns_per_scene", "frames_per_scene",
            "ideal_scenes_per_s", "sequence_s", "scene_s", "scenes_per_s", "setup_s")}
        out["scene_s_no_overheads"] = self.scene_s_for(False)
        if count is not None:
            out.update(count=count, total_s=self.total_s(count))
        return out

    def report(self, count: int | None = None) -> str:
        """Human-readable timing part of ``--plan``."""
        c = self.clock
        bare = self.scene_s_for(False)
        lines = [
            f"video               {self.video_fps:g} Hz, {c.patterns_per_frame} patterns/frame ({self.bit_depth}-bit), "
            f"idle {c.idle_us:,.1f} us/frame",
            f"pattern period      {c.period_us:.1f} us (exposure {c.exposure_us:g} us, dark {c.dark_us:g} us)",
            f"pattern rate        {c.patterns_per_s:,.1f} patterns/s (burst {c.burst_rate_hz:,.1f}/s within a frame)",
            f"patterns per scene  {self.patterns_per_scene} in {self.frames_per_scene} frame(s)"
            + (" (mask + inverse)" if self.complementary else "")
            + (f", incl. {self.markers} alignment markers" if self.markers else ""),
            f"pattern-limited     {self.ideal_scenes_per_s:.2f} scenes/s (masks only)",
            f"frame-limited       {1 / self.sequence_s:.2f} scenes/s ({self.frames_per_scene + self.latency_frames} "
            f"frame(s) of {self.frame_s * 1e3:.2f} ms)",
            f"per scene           {bare * 1e3:.1f} ms -> {1 / bare:.2f} scenes/s without overheads "
            f"(display settle {self.display_settle_s * 1e3:.0f} ms, {self.refs_per_scene:g} reference(s)/scene)",
            f"  with overheads    {self.scene_s * 1e3:.1f} ms -> {self.scenes_per_s:.2f} scenes/s (display update "
            f"{self.display_update_s * 1e3:.0f} ms + DAQ set-up {self.daq_setup_s * 1e3:.0f} ms per acquisition, "
            f"{1 + self.refs_per_scene:g} acquisition(s)/scene)",
            f"session set-up      {self.setup_s:.2f} s (LUT upload: {self.usb_commands} USB commands x "
            f"{self.usb_command_s * 1e3:.0f} ms)",
        ]
        if count is not None:
            total = self.total_s(count)
            lines.append(f"total for {count} scenes  {total:.1f} s ({total / 60:.1f} min)")
        return "\n".join(lines)


def serial_line_rate(lines_per_s: float, line_bytes: int, bits_per_byte: int = 10) -> tuple[float, int | None]:
    """Bits/s a serial ADC needs for ``lines_per_s`` sample lines, and the smallest standard baud rate that
    carries them (None when none does). 8N1 framing sends 10 bits per byte."""
    need = lines_per_s * line_bytes * bits_per_byte
    fits = [b for b in STANDARD_BAUD_RATES if b >= need]
    return need, (fits[0] if fits else None)


def timing_for(rig: RigConfig, d: int, scene_profile: DisplayProfile | None = None) -> TimingModel:
    """The timing model of ``rig`` for ``d`` masks (settle and update times from the scene display profile)."""
    from hardware.alignment import MARKER_PATTERNS  # cycle: alignment imports timing

    cal, dmd = rig.calibration, rig.dmd
    per_group = {"before": 1, "after": 1, "both": 2}[cal.position]
    settle = scene_profile.settle_s if scene_profile is not None else 0.0
    return TimingModel(
        exposure_us=dmd.exposure_us, d=d, dark_us=dmd.frame_period_us - dmd.exposure_us, video_fps=dmd.video_fps,
        complementary=cal.complementary, markers=MARKER_PATTERNS if cal.alignment.markers else 0,
        display_settle_s=settle, reference_settle_s=settle, refs_per_scene=per_group / cal.every if cal.every else 0.0,
        latency_frames=dmd.latency_frames, display_update_s=scene_profile.update_s if scene_profile else 0.0,
        daq_setup_s=rig.detector.setup_s, usb_commands=configure_command_count(), usb_command_s=dmd.usb_command_s,
        min_dark_us=dmd.min_dark_us)
