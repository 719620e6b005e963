"""Frame alignment: make sure every stored reading belongs to the pattern it is filed under.

The scene display and the DMD's HDMI input are not VSYNC-locked to the acquisition: a frame presented
late, a repeated frame or an acquisition that starts on an idle frame shifts the readings by whole frames
(24 patterns). Each scene's pattern sequence therefore carries markers (``calibration.alignment.markers``)::

    plane 0, 1            all-on, all-off          (head marker, first frame)
    plane 2 .. 2+n-1      the n patterns (masks, or mask/inverse pairs)
    padding               all-off
    plane 24F-2, 24F-1    all-on, all-off          (tail marker, last two planes of the last frame)

and the whole ``F`` frames are acquired. Physics gives the test: an all-on mask passes at least as much
light as any mask and an all-off mask at most as little, so the two on-markers must be the largest readings
of the acquisition and the two off-markers the smallest (within ``tolerance`` x the range). A shift by whole
frames puts idle (dark) or mask readings at the marker positions and fails the test; a duplicated frame in
the middle moves the tail marker out of place. A scene whose readings span less than ``min_signal`` x
``(white - dark)`` of the last reference (or are flat) is too dark to check: it is stored and counted as
*inconclusive*. A reference frame (``ref_planes`` all-on, then all-off) must show its white block strictly
above its dark block.

Misaligned acquisitions raise :class:`MisalignedError`; the capture loop captures the scene again (at most
``max_recaptures`` times) and counts it in the record and in the manifest's ``stats``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hardware.bitplanes import PLANES_PER_FRAME, pack_planes
from hardware.calibration import ReadingError
from hardware.protocols import DMD, Detector, SceneDisplay
from hardware.rig import AlignmentConfig, RigConfig
from hardware.timing import timing_for

__all__ = ["MisalignedError", "SceneSequence", "sequence_layout", "build_sequence", "AlignmentResult", "check_markers",
           "check_reference_alignment", "measure_latency", "MARKER_PATTERNS"]

MARKER_PATTERNS = 4  # head on/off + tail on/off


class MisalignedError(ReadingError):
    """Readings are not where the sequence put the patterns (frames shifted, repeated or late)."""


@dataclass
class SceneSequence:
    """The planes streamed for one scene and where the patterns of interest sit in them.

    Attributes:
        planes: ``[N, H, W]`` uint8 in display order (``N = 24F`` with markers, else the ``n`` patterns).
        positions: ``[n]`` index in ``planes`` (and in the acquired readings) of each display-sequence pattern.
        head, tail: ``(on, off)`` plane indices of the markers, or None without markers.
    """

    planes: np.ndarray
    positions: np.ndarray
    head: tuple[int, int] | None = None
    tail: tuple[int, int] | None = None

    @property
    def n_acquire(self) -> int:
        """Readings to acquire per scene."""
        return int(self.planes.shape[0])

    @property
    def markers(self) -> int:
        return MARKER_PATTERNS if self.head is not None else 0

    def describe(self) -> dict[str, object]:
        """For the manifest (``sequence``): :func:`sequence_layout` of this sequence."""
        return sequence_layout(int(self.positions.size), self.head is not None)


def sequence_layout(n_patterns: int, markers: bool) -> dict[str, object]:
    """Where ``n_patterns`` and the markers sit in one scene's acquisition (stored in the manifest)."""
    if not markers:
        return {"patterns_acquired": n_patterns, "first_pattern": 0, "head_marker": None, "tail_marker": None}
    total = math.ceil((n_patterns + MARKER_PATTERNS) / PLANES_PER_FRAME) * PLANES_PER_FRAME
    return {"patterns_acquired": total, "first_pattern": 2, "head_marker": [0, 1],
            "tail_marker": [total - 2, total - 1]}


def build_sequence(display_seq: np.ndarray, markers: bool) -> SceneSequence:
    """Lay out ``display_seq`` ``[n, H, W]`` (display order) with or without alignment markers."""
    n = display_seq.shape[0]
    if not markers:
        return SceneSequence((display_seq != 0).astype(np.uint8), np.arange(n))
    total = int(sequence_layout(n, markers)["patterns_acquired"])  # type: ignore[call-overload]
    planes = np.zeros((total,) + display_seq.shape[1:], dtype=np.uint8)
    planes[0] = 1
    planes[2:2 + n] = display_seq != 0
    planes[total - 2] = 1
    return SceneSequence(planes, np.arange(2, 2 + n), (0, 1), (total - 2, total - 1))


@dataclass
class AlignmentResult:
    status: str  # ok | inconclusive | misaligned
    reason: str
    head_step: float = float("nan")
    tail_step: float = float("nan")

    def to_dict(self) -> dict[str, object]:
        return {"status": self.status, "reason": self.reason, "head_step": self.head_step,
                "tail_step": self.tail_step}


def check_markers(raw: np.ndarray, seq: SceneSequence, cfg: AlignmentConfig, span: float | None = None
                  ) -> AlignmentResult:
    """Check the marker readings of one acquisition ``raw`` ``[seq.n_acquire]``.

    Args:
        span: ``white - dark`` of the latest reference (detector units), if any; sets the darkness limit.
    """
    if seq.head is None or seq.tail is None:
        return AlignmentResult("ok", "no markers")
    r = np.asarray(raw, dtype=np.float64)
    (h_on, h_off), (t_on, t_off) = seq.head, seq.tail
    head_step, tail_step = float(r[h_on] - r[h_off]), float(r[t_on] - r[t_off])
    lo, hi = float(r.min()), float(r.max())
    rng = hi - lo
    if not rng > 0 or (span is not None and span > 0 and rng < cfg.min_signal * span):
        return AlignmentResult("inconclusive", f"readings span {rng:.3g}, too dark to check alignment"
                               + (f" (< {cfg.min_signal:g} x reference span {span:.3g})" if span else ""),
                               head_step, tail_step)
    tol = cfg.tolerance * rng
    bad = [f"{name} on-marker (reading {k}) = {r[k]:.4g} is below the maximum {hi:.4g}"
           for name, k in (("head", h_on), ("tail", t_on)) if r[k] < hi - tol]
    bad += [f"{name} off-marker (reading {k}) = {r[k]:.4g} is above the minimum {lo:.4g}"
            for name, k in (("head", h_off), ("tail", t_off)) if r[k] > lo + tol]
    if bad:
        return AlignmentResult("misaligned", "; ".join(bad), head_step, tail_step)
    return AlignmentResult("ok", "markers in place", head_step, tail_step)


def check_reference_alignment(raw: np.ndarray, ref_planes: int, what: str = "reference") -> None:
    """Raise :class:`MisalignedError` unless every white-block reading exceeds every dark-block reading."""
    r = np.asarray(raw, dtype=np.float64)
    white, dark = r[:ref_planes], r[ref_planes:]
    if not white.min() > dark.max():
        raise MisalignedError(
            f"{what}: the all-on block (min {white.min():.4g}) is not above the all-off block (max {dark.max():.4g}); "
            "the acquisition is shifted by frames (check dmd.latency_frames with --check-sync) or the scene "
            "monitor shows no white field")


def measure_latency(rig: RigConfig, dmd: DMD, detector: Detector, display: SceneDisplay, max_frames: int = 3,
                    sleep: Callable[[float], None] = time.sleep) -> tuple[int | None, np.ndarray]:
    """Bring-up check of frame alignment: find ``dmd.latency_frames``.

    With a white field on the scene monitor, streams one frame whose bit planes alternate on/off followed by
    ``max_frames`` all-off frames, acquires ``24 * (max_frames + 1)`` samples from the start trigger and
    returns the index of the first 24-sample block whose even samples are all brighter than its odd ones
    (None when there is none: check the wiring, the DMD input and the optics), plus the raw readings.
    """
    geometry = rig.dmd.geometry()
    planes = np.zeros((PLANES_PER_FRAME * (1 + max_frames),) + geometry.mask_shape, dtype=np.uint8)
    planes[0:PLANES_PER_FRAME:2] = 1
    frames = geometry.place(pack_planes(planes))
    display.show(np.ones((3,) + geometry.mask_shape, dtype=np.float32))
    sleep(display.settle_s)
    dmd.configure(rig.dmd.exposure_us, rig.dmd.frame_period_us)
    dmd.start()
    try:
        n = planes.shape[0]
        timing = timing_for(rig, n)
        detector.arm(n, timing.clock)
        dmd.present(frames)
        raw = np.asarray(detector.read(rig.calibration.watchdog_factor * timing.frame_s * frames.shape[0]
                                       + rig.calibration.watchdog_margin_s), dtype=np.float64)
    finally:
        dmd.stop()
    for k in range(max_frames + 1):
        block = raw[k * PLANES_PER_FRAME:(k + 1) * PLANES_PER_FRAME]
        if block.size == PLANES_PER_FRAME and block[0::2].min() > block[1::2].max():
            return k, raw
    return None, raw
