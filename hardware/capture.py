"""The capture loop: show a scene, stream the masks through the DMD, read one value per mask, store.

Per scene (skipping scenes that already have a record, so an interrupted capture resumes):

1. references due "before" (every ``calibration.every`` scenes): white field on the scene monitor, settle,
   one reference frame (``ref_planes`` all-on planes, the rest all-off) -> dark and white levels;
2. show the scene, wait the display settle time;
3. arm the detector for ``n = d`` (``2d`` with complementary patterns) samples plus ``24 * latency_frames``
   lead-in samples, present the packed mask frames, read with a watchdog timeout
   (``watchdog_factor x`` the expected duration + margin);
4. refuse NaN/inf readings and readings saturated beyond ``max_saturated_fraction``: stop, or retry the
   scene up to ``max_retries`` times (``on_error``); detector timeouts are handled the same way;
5. references due "after"; write the record atomically (readings in mask-index order).

Readings are reordered from display order (``order`` of the mask file) to mask-index order, so
``record.readings[i]`` is the value of mask ``i`` as the optical encoder expects.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from tqdm import tqdm

from hardware.bitplanes import PLANES_PER_FRAME, pack_masks, pack_planes, validate_binary_masks
from hardware.calibration import (
    ReadingError,
    Reference,
    check_readings,
    reference_from_readings,
    reference_planes,
)
from hardware.protocols import DMD, Detector, DetectorTimeoutError, HardwareError, SceneDisplay
from hardware.rig import DisplayProfile, RigConfig
from hardware.store import CaptureRecord, CaptureStore
from hardware.timing import TimingModel
from lsi.images import IMAGE_EXTENSIONS, load_image, scan_images

__all__ = [
    "Scene",
    "SceneSource",
    "ImageFolderScenes",
    "CaptureAborted",
    "CaptureSummary",
    "CaptureSession",
    "timing_for",
    "measure_latency",
]


class CaptureAborted(RuntimeError):
    """The capture stopped because a scene could not be measured acceptably (see the message)."""


# ------------------------------------------------------------------------------------------------ scenes
@dataclass
class Scene:
    """A scene to capture: stable id, human key, provenance and a loader for ``[3, H, W]`` float32 in [0, 1]."""

    scene_id: int
    key: str
    source: dict[str, Any]
    load: Callable[[], np.ndarray]


@runtime_checkable
class SceneSource(Protocol):
    """What a capture takes: ``len(source)``, ``source[i] -> Scene`` (``IndexError`` past the end) and ``spec``,
    a JSON-able description recorded in the store's manifest. :class:`ImageFolderScenes` is one; sources that
    need a dataset (e.g. the embedded face world, ``datamodules.scenes.EmbeddedScenes``) live with the data."""

    spec: dict[str, Any]

    def __len__(self) -> int: ...

    def __getitem__(self, i: int) -> Scene: ...


class ImageFolderScenes(Sequence[Scene]):
    """Images under ``root`` (recursive, sorted by relative path), first ``count`` of them."""

    def __init__(self, root: str | Path, count: int | None = None, resolution: int = 256) -> None:
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise ValueError(f"--images {str(root)!r} is not a directory")
        files = scan_images(self.root)
        if not files:
            raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {str(self.root)!r}")
        if count is not None:
            if count > len(files):
                raise ValueError(f"--count {count} but only {len(files)} images under {str(self.root)!r}")
            files = files[:count]
        self.files, self.resolution = files, resolution
        self.spec = {"root": str(self.root), "files": files, "resolution": resolution}

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> Scene:  # type: ignore[override]
        rel = self.files[i]
        return Scene(i, rel, {"path": rel}, lambda: load_image(self.root / rel, self.resolution, what="--images"))


# ------------------------------------------------------------------------------------------------ timing
def timing_for(rig: RigConfig, d: int, scene_profile: DisplayProfile) -> TimingModel:
    """Timing model of ``rig`` for ``d`` masks and the scene display's settle time."""
    cal = rig.calibration
    per_group = {"before": 1, "after": 1, "both": 2}[cal.position]
    return TimingModel(
        exposure_us=rig.dmd.exposure_us, d=d, dark_us=rig.dmd.frame_period_us - rig.dmd.exposure_us,
        video_fps=rig.dmd.video_fps, display_settle_s=scene_profile.settle_s,
        reference_settle_s=scene_profile.settle_s, complementary=cal.complementary,
        refs_per_scene=per_group / cal.every if cal.every else 0.0, latency_frames=rig.dmd.latency_frames)


# ------------------------------------------------------------------------------------------------ session
@dataclass
class CaptureSummary:
    written: list[int] = field(default_factory=list)
    skipped: int = 0
    retries: int = 0
    elapsed_s: float = 0.0


class CaptureSession:
    """Runs a capture on given backends into an open store.

    Args:
        rig: rig configuration (DMD timing, calibration rules).
        masks: ``[d, H, W]`` uint8 binary masks; ``order``: display order (permutation of ``range(d)``).
        dmd, detector, scene_display: backends (real, simulated or mock).
        store: a store opened with :meth:`CaptureStore.open_for_writing`.
        sleep: called with the display settle time (a no-op for the non-realtime simulator).
    """

    def __init__(self, rig: RigConfig, masks: np.ndarray, order: Sequence[int], dmd: DMD, detector: Detector,
                 scene_display: SceneDisplay, store: CaptureStore, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time) -> None:
        self.rig, self.dmd, self.detector, self.display, self.store = rig, dmd, detector, scene_display, store
        self.sleep, self.clock = sleep, clock
        self.cal = rig.calibration
        self.geometry = rig.dmd.geometry()
        validate_binary_masks(masks, self.geometry, rig.dmd.expected_masks)
        self.d = masks.shape[0]
        self.order = np.asarray(order, dtype=int)
        if sorted(self.order.tolist()) != list(range(self.d)):
            raise ValueError(f"order must be a permutation of range({self.d}), got {self.order[:10].tolist()}...")
        self.n = self.d * (2 if self.cal.complementary else 1)
        self.frames = pack_masks(masks, self.geometry, self.order, self.cal.complementary)
        self.ref_frames = self.geometry.place(pack_planes(reference_planes(self.geometry.mask_shape,
                                                                           self.cal.ref_planes)))
        self.white = np.ones((3,) + tuple(masks.shape[1:]), dtype=np.float32)
        self.timing = TimingModel(exposure_us=rig.dmd.exposure_us, d=self.d,
                                  dark_us=rig.dmd.frame_period_us - rig.dmd.exposure_us, video_fps=rig.dmd.video_fps,
                                  complementary=self.cal.complementary, latency_frames=rig.dmd.latency_frames)
        self.lead = rig.dmd.latency_frames * PLANES_PER_FRAME

    # -- measurements -----------------------------------------------------------------------------------------
    def acquire(self, frames: np.ndarray, n: int) -> np.ndarray:
        """Arm, present ``frames``, read ``n`` values (after the latency lead-in) with a watchdog timeout."""
        expected = self.timing.frame_s * (frames.shape[0] + self.rig.dmd.latency_frames)
        timeout = self.cal.watchdog_factor * expected + self.cal.watchdog_margin_s
        self.detector.arm(n + self.lead, self.timing.patterns_per_s)
        try:
            self.dmd.present(frames)
            raw = np.asarray(self.detector.read(timeout), dtype=np.float64)
        except BaseException:
            self.detector.abort()
            raise
        if raw.shape != (n + self.lead,):
            raise ReadingError(f"detector returned {raw.shape} values, expected {n + self.lead}")
        return raw[self.lead:]

    def reference(self, role: str) -> Reference:
        """Measure a dark/white reference with a white field on the scene monitor."""
        self.display.show(self.white)
        self.sleep(self.display.settle_s)
        t = self.clock()
        raw = self.acquire(self.ref_frames, PLANES_PER_FRAME)
        check_readings(raw, self.detector.full_scale, self.cal.max_saturated_fraction, f"{role} reference")
        return reference_from_readings(raw, self.cal.ref_planes, t, role)

    def measure(self, scene: Scene) -> tuple[np.ndarray, np.ndarray | None, float, dict[str, float]]:
        """Show ``scene`` and read it: (readings [d], inverse readings [d] or None, saturated fraction, times)."""
        image = scene.load()
        t_show = self.clock()
        self.display.show(image)
        self.sleep(self.display.settle_s)
        t0 = self.clock()
        raw = self.acquire(self.frames, self.n)
        t1 = self.clock()
        frac = check_readings(raw, self.detector.full_scale, self.cal.max_saturated_fraction, f"scene {scene.key}")
        seq = raw[0::2] if self.cal.complementary else raw
        readings = np.empty(self.d)
        readings[self.order] = seq
        inv = None
        if self.cal.complementary:
            inv = np.empty(self.d)
            inv[self.order] = raw[1::2]
        return readings, inv, frac, {"show": t_show, "acquire_start": t0, "acquire_end": t1}

    # -- loop -------------------------------------------------------------------------------------------------
    def _attempt(self, fn: Callable[[], Any], scene: Scene, what: str, summary: CaptureSummary) -> tuple[Any, int]:
        """Run ``fn`` under the error policy (bad readings and detector timeouts: stop or retry)."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn(), attempt
            except (ReadingError, DetectorTimeoutError) as exc:
                self.store.log_event("scene_error", scene_id=scene.scene_id, key=scene.key, step=what,
                                     attempt=attempt, error=f"{type(exc).__name__}: {exc}")
                if self.cal.on_error == "retry" and attempt <= self.cal.max_retries:
                    summary.retries += 1
                    continue
                raise CaptureAborted(f"scene {scene.scene_id} ({scene.key}) not recorded: {what} failed after "
                                     f"{attempt} attempt(s): {exc}") from exc

    def _capture_one(self, scene: Scene, index: int, last: bool, summary: CaptureSummary) -> CaptureRecord:
        every, pos = self.cal.every, self.cal.position
        refs: list[Reference] = []
        if every and index % every == 0 and pos in ("before", "both"):
            refs.append(self._attempt(lambda: self.reference("before"), scene, "reference before", summary)[0])
        (readings, inv, frac, times), attempts = self._attempt(lambda: self.measure(scene), scene, "measurement",
                                                               summary)
        if every and (index % every == every - 1 or last) and pos in ("after", "both"):
            refs.append(self._attempt(lambda: self.reference("after"), scene, "reference after", summary)[0])
        return CaptureRecord(scene.scene_id, scene.key, scene.source, readings, inv, refs, times, frac, attempts)

    def run(self, scenes: SceneSource, progress: bool = True) -> CaptureSummary:
        """Capture every scene without a record; returns a summary. The DMD is stopped on exit."""
        t_start = time.monotonic()
        todo = [s for s in scenes if not self.store.has(s.scene_id)]
        summary = CaptureSummary(skipped=len(scenes) - len(todo))
        self.store.log_event("session_start", pending=len(todo), done=summary.skipped)
        bar = tqdm(total=len(scenes), initial=summary.skipped, unit="scene", disable=not progress,
                   dynamic_ncols=True, desc="capture")
        failed = False
        try:
            self.dmd.configure(self.rig.dmd.exposure_us, self.rig.dmd.frame_period_us)
            self.dmd.start()
            for i, scene in enumerate(todo):
                record = self._capture_one(scene, i, i == len(todo) - 1, summary)
                self.store.write(record)
                summary.written.append(scene.scene_id)
                bar.update(1)
        except BaseException as exc:
            failed = True
            self.store.log_event("session_stopped", written=len(summary.written),
                                 error=f"{type(exc).__name__}: {exc}")
            raise
        finally:
            bar.close()
            summary.elapsed_s = time.monotonic() - t_start
            self._shutdown(quiet=failed)
        self.store.log_event("session_end", written=len(summary.written), elapsed_s=summary.elapsed_s)
        return summary

    def _shutdown(self, quiet: bool) -> None:
        """Stop the DMD and abort the detector; while another error propagates, only log failures here."""
        for step in (self.dmd.stop, self.detector.abort):
            try:
                step()
            except HardwareError as exc:
                if not quiet:
                    raise
                self.store.log_event("shutdown_error", error=f"{type(exc).__name__}: {exc}")


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
        timing = TimingModel(exposure_us=rig.dmd.exposure_us, d=n, video_fps=rig.dmd.video_fps,
                             dark_us=rig.dmd.frame_period_us - rig.dmd.exposure_us)
        detector.arm(n, timing.patterns_per_s)
        dmd.present(frames)
        raw = np.asarray(detector.read(rig.calibration.watchdog_factor * timing.sequence_s
                                       + rig.calibration.watchdog_margin_s), dtype=np.float64)
    finally:
        dmd.stop()
    for k in range(max_frames + 1):
        block = raw[k * PLANES_PER_FRAME:(k + 1) * PLANES_PER_FRAME]
        if block.size == PLANES_PER_FRAME and block[0::2].min() > block[1::2].max():
            return k, raw
    return None, raw
