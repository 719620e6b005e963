"""Timing model of a capture (in the spirit of SPAS): pattern rate, scene rate and total time.

Per pattern: ``period = exposure + dark`` where the DLPC350 needs ``dark == 0`` or ``dark >= 230 us``; the
detector integrates during the exposure after ``detector_settle_us``. Patterns travel 24 per video frame,
so a sequence of ``n`` patterns takes ``ceil(n / 24)`` frames of ``24 * period`` (or ``1 / video_fps`` when
the video port runs slower than the patterns). Per scene::

    scene_time = display_settle + overhead + sequence_time
                 + refs_per_scene * (reference_settle + overhead + frame_time * (1 + latency_frames))

``ideal_scenes_per_s = patterns_per_s / patterns_per_scene`` ignores frame quantisation and overheads:
2,880 patterns/s with d = 128 gives 22.5 scenes/s.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

__all__ = ["TimingError", "TimingModel", "MIN_DARK_US", "check_exposure"]

MIN_DARK_US = 230.0
PLANES_PER_FRAME = 24


class TimingError(ValueError):
    """Inconsistent exposure, period, frame rate or detector settings."""


def check_exposure(exposure_us: float, period_us: float) -> None:
    """DLPC350 rule: exposure == period, or exposure <= period - 230 us; raise :class:`TimingError` otherwise."""
    if exposure_us <= 0 or period_us <= 0:
        raise TimingError(f"exposure ({exposure_us} us) and frame period ({period_us} us) must be positive")
    if exposure_us > period_us:
        raise TimingError(f"exposure {exposure_us} us is longer than the pattern period {period_us} us")
    gap = period_us - exposure_us
    if 0 < gap < MIN_DARK_US:
        raise TimingError(
            f"exposure {exposure_us} us and period {period_us} us differ by {gap:g} us: the DLPC350 needs the "
            f"exposure equal to the period or at least {MIN_DARK_US:g} us shorter; use exposure={period_us} "
            f"or exposure<={period_us - MIN_DARK_US:g}"
        )


@dataclass
class TimingModel:
    """Inputs of the timing model (times in microseconds unless the name says ``_s``)."""

    exposure_us: float
    d: int
    dark_us: float = 0.0
    video_fps: float | None = None
    detector_settle_us: float = 0.0
    display_settle_s: float = 0.0
    reference_settle_s: float = 0.0
    complementary: bool = False
    refs_per_scene: float = 0.0
    overhead_s: float = 0.0
    latency_frames: int = 0

    def __post_init__(self) -> None:
        if self.d < 1:
            raise TimingError(f"d must be >= 1, got {self.d}")
        check_exposure(self.exposure_us, self.period_us)
        if self.detector_settle_us >= self.exposure_us:
            raise TimingError(f"detector settle time {self.detector_settle_us} us leaves no integration time in a "
                              f"{self.exposure_us} us exposure; lengthen the exposure or raise the detector bandwidth")
        if self.video_fps is not None:
            if self.video_fps <= 0:
                raise TimingError(f"video_fps must be > 0, got {self.video_fps}")
            budget = 1e6 / self.video_fps
            need = PLANES_PER_FRAME * self.period_us
            if need > budget * (1 + 1e-6):
                raise TimingError(
                    f"24 patterns of {self.period_us:g} us need {need:g} us but one frame at {self.video_fps:g} Hz "
                    f"lasts {budget:.1f} us; use a period <= {math.floor(budget / PLANES_PER_FRAME)} us"
                )

    @property
    def period_us(self) -> float:
        return self.exposure_us + self.dark_us

    @property
    def integration_us(self) -> float:
        """Usable integration time per pattern."""
        return self.exposure_us - self.detector_settle_us

    @property
    def patterns_per_s(self) -> float:
        return 1e6 / self.period_us

    @property
    def frame_s(self) -> float:
        """Duration of one video frame (24 patterns, or the video period if longer)."""
        patterns = PLANES_PER_FRAME * self.period_us * 1e-6
        return max(patterns, 1.0 / self.video_fps) if self.video_fps else patterns

    @property
    def patterns_per_scene(self) -> int:
        return self.d * (2 if self.complementary else 1)

    @property
    def frames_per_scene(self) -> int:
        return math.ceil(self.patterns_per_scene / PLANES_PER_FRAME)

    @property
    def ideal_scenes_per_s(self) -> float:
        """Pattern-limited rate (no frame quantisation, settle or references)."""
        return self.patterns_per_s / self.patterns_per_scene

    @property
    def sequence_s(self) -> float:
        return self.frame_s * (self.frames_per_scene + self.latency_frames)

    @property
    def reference_s(self) -> float:
        """Time of one reference acquisition (white field settle + one frame)."""
        return self.reference_settle_s + self.overhead_s + self.frame_s * (1 + self.latency_frames)

    @property
    def scene_s(self) -> float:
        return self.display_settle_s + self.overhead_s + self.sequence_s + self.refs_per_scene * self.reference_s

    @property
    def scenes_per_s(self) -> float:
        return 1.0 / self.scene_s

    def total_s(self, count: int) -> float:
        """Total time for ``count`` scenes."""
        return count * self.scene_s

    def summary(self, count: int | None = None) -> dict[str, float]:
        """All inputs and derived numbers as a flat dict."""
        out = dict(asdict(self))
        out.update(period_us=self.period_us, patterns_per_s=self.patterns_per_s, frame_s=self.frame_s,
                   patterns_per_scene=self.patterns_per_scene, frames_per_scene=self.frames_per_scene,
                   ideal_scenes_per_s=self.ideal_scenes_per_s, sequence_s=self.sequence_s, scene_s=self.scene_s,
                   scenes_per_s=self.scenes_per_s)
        if count is not None:
            out.update(count=count, total_s=self.total_s(count))
        return out

    def report(self, count: int | None = None) -> str:
        """Human-readable plan."""
        lines = [
            f"pattern period      {self.period_us:.1f} us (exposure {self.exposure_us:g} us, dark {self.dark_us:g} us)",
            f"pattern rate        {self.patterns_per_s:,.1f} patterns/s",
            f"frame rate          {1 / self.frame_s:.2f} frames/s (24 bit planes per frame)",
            f"patterns per scene  {self.patterns_per_scene} in {self.frames_per_scene} frame(s)"
            + (" (mask + inverse)" if self.complementary else ""),
            f"pattern-limited     {self.ideal_scenes_per_s:.2f} scenes/s",
            f"per scene           {self.scene_s * 1e3:.1f} ms -> {self.scenes_per_s:.2f} scenes/s "
            f"(display settle {self.display_settle_s * 1e3:.0f} ms, {self.refs_per_scene:g} reference(s)/scene)",
        ]
        if count is not None:
            total = self.total_s(count)
            lines.append(f"total for {count} scenes  {total:.1f} s ({total / 60:.1f} min)")
        return "\n".join(lines)
