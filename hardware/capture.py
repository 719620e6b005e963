"""The capture loop: show a scene, stream the masks through the DMD, read one value per mask, store.

Per scene (skipping scenes that already have a readable record, so an interrupted capture resumes):

1. references due "before" (every ``calibration.every`` scenes): white field on the scene monitor, settle,
   one reference frame (``ref_planes`` all-on planes, the rest all-off) -> dark and white levels; a
   reference tolerates no clipping (``reference_headroom``) and must show its white block above its dark
   block (alignment);
2. show the scene, wait the display settle time;
3. arm the detector for the scene's sequence (:mod:`hardware.alignment`: head marker, ``n = d`` or ``2d``
   patterns, padding, tail marker = whole frames) plus ``24 * latency_frames`` lead-in samples, present
   the packed frames, read with a watchdog timeout (``watchdog_factor x`` the expected duration + margin);
4. check frame alignment (markers; late frames reported by the presenter <= ``max_late_frames``): a
   misaligned scene is captured again, at most ``alignment.max_recaptures`` times, then the run stops;
5. refuse NaN/inf readings and readings saturated beyond ``max_saturated_fraction``: stop, or retry the
   scene up to ``max_retries`` times (``on_error``); detector timeouts are handled the same way;
   transient link errors (serial checksum, missing sample index) are always retried up to ``max_retries``;
6. references due "after"; write the record atomically (readings in mask-index order).

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

from hardware.alignment import (  # noqa: F401  measure_latency: re-exported (older import path)
    MisalignedError,
    build_sequence,
    check_markers,
    check_reference_alignment,
    measure_latency,
)
from hardware.bitplanes import PLANES_PER_FRAME, display_sequence, pack_planes, validate_binary_masks
from hardware.calibration import (
    ReadingError,
    Reference,
    check_readings,
    check_reference_clipping,
    reference_from_readings,
    reference_planes,
)
from hardware.protocols import (
    DMD,
    Detector,
    DetectorTimeoutError,
    HardwareError,
    SceneDisplay,
    TransientDetectorError,
)
from hardware.rig import RigConfig
from hardware.store import CaptureRecord, CaptureStore
from hardware.timing import timing_for  # noqa: F401  re-exported (older import path)
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


# ------------------------------------------------------------------------------------------------ session
@dataclass
class CaptureSummary:
    written: list[int] = field(default_factory=list)
    skipped: int = 0
    retries: int = 0
    misaligned: int = 0  # acquisitions captured again after a failed alignment check
    inconclusive: int = 0  # scenes too dark for the marker check
    late_frames: int = 0  # reported by the presenter
    elapsed_s: float = 0.0

    def stats(self) -> dict[str, int]:
        return {"retries": self.retries, "misaligned_recaptured": self.misaligned,
                "alignment_inconclusive": self.inconclusive, "late_frames": self.late_frames}


class CaptureSession:
    """Runs a capture on given backends into an open store.

    Args:
        rig: rig configuration (DMD timing, calibration rules, alignment checks).
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
        self.align = self.cal.alignment
        self.geometry = rig.dmd.geometry()
        validate_binary_masks(masks, self.geometry, rig.dmd.expected_masks)
        self.d = masks.shape[0]
        self.order = np.asarray(order, dtype=int)
        if sorted(self.order.tolist()) != list(range(self.d)):
            raise ValueError(f"order must be a permutation of range({self.d}), got {self.order[:10].tolist()}...")
        self.sequence = build_sequence(display_sequence(masks, self.order, self.cal.complementary), self.align.markers)
        self.frames = self.geometry.place(pack_planes(self.sequence.planes))
        self.ref_frames = self.geometry.place(pack_planes(reference_planes(self.geometry.mask_shape,
                                                                           self.cal.ref_planes)))
        self.white = np.ones((3,) + tuple(masks.shape[1:]), dtype=np.float32)
        self.timing = timing_for(rig, self.d)
        self.lead = rig.dmd.latency_frames * PLANES_PER_FRAME
        self.last_span: float | None = None  # white - dark of the latest reference

    # -- measurements -----------------------------------------------------------------------------------------
    def acquire(self, frames: np.ndarray, n: int) -> np.ndarray:
        """Arm, present ``frames``, read ``n`` values (after the latency lead-in) with a watchdog timeout."""
        expected = self.timing.frame_s * (frames.shape[0] + self.rig.dmd.latency_frames)
        timeout = self.cal.watchdog_factor * expected + self.cal.watchdog_margin_s
        self.detector.arm(n + self.lead, self.timing.clock)
        try:
            self.dmd.present(frames)
            raw = np.asarray(self.detector.read(timeout), dtype=np.float64)
        except BaseException:
            self.detector.abort()
            raise
        if raw.shape != (n + self.lead,):
            raise ReadingError(f"detector returned {raw.shape} values, expected {n + self.lead}")
        return raw[self.lead:]

    def _late_frames(self) -> int:
        return int(getattr(self.dmd, "late_frames", 0))

    def _acquire_checked(self, frames: np.ndarray, n: int, what: str) -> tuple[np.ndarray, int]:
        """:meth:`acquire` plus the late-frame limit of the presenter."""
        before = self._late_frames()
        raw = self.acquire(frames, n)
        late = self._late_frames() - before
        if late > self.align.max_late_frames:
            raise MisalignedError(f"{what}: the frame presenter reported {late} late frame(s) during the acquisition "
                                  f"(calibration.alignment.max_late_frames = {self.align.max_late_frames})")
        return raw, late

    def reference(self, role: str) -> Reference:
        """Measure a dark/white reference with a white field on the scene monitor."""
        self.display.show(self.white)
        self.sleep(self.display.settle_s)
        t = self.clock()
        what = f"{role} reference"
        raw, _ = self._acquire_checked(self.ref_frames, PLANES_PER_FRAME, what)
        check_readings(raw, float("inf"), 1.0, what)  # NaN / inf
        check_reference_clipping(raw, self.detector.full_scale, self.cal.reference_headroom, what)
        check_reference_alignment(raw, self.cal.ref_planes, what)
        ref = reference_from_readings(raw, self.cal.ref_planes, t, role)
        self.last_span = ref.white - ref.dark
        return ref

    def measure(self, scene: Scene) -> tuple[np.ndarray, np.ndarray | None, float, dict[str, float], dict[str, Any]]:
        """Show ``scene`` and read it: (readings [d], inverse readings [d] or None, saturated fraction, times,
        alignment)."""
        image = scene.load()
        t_show = self.clock()
        self.display.show(image)
        self.sleep(self.display.settle_s)
        t0 = self.clock()
        what = f"scene {scene.scene_id} ({scene.key})"
        raw, late = self._acquire_checked(self.frames, self.sequence.n_acquire, what)
        t1 = self.clock()
        check_readings(raw, float("inf"), 1.0, what)  # NaN / inf anywhere, markers included
        seq = raw[self.sequence.positions]
        frac = check_readings(seq, self.detector.full_scale, self.cal.max_saturated_fraction, what)
        result = check_markers(raw, self.sequence, self.align, self.last_span)
        if result.status == "misaligned":
            raise MisalignedError(f"{what}: {result.reason}")
        readings = np.empty(self.d)
        inv = None
        if self.cal.complementary:
            readings[self.order] = seq[0::2]
            inv = np.empty(self.d)
            inv[self.order] = seq[1::2]
        else:
            readings[self.order] = seq
        alignment = {**result.to_dict(), "late_frames": late}
        return readings, inv, frac, {"show": t_show, "acquire_start": t0, "acquire_end": t1}, alignment

    # -- loop -------------------------------------------------------------------------------------------------
    def _attempt(self, fn: Callable[[], Any], scene: Scene, what: str, summary: CaptureSummary
                 ) -> tuple[Any, int, int]:
        """Run ``fn`` under the error policy; returns (result, attempts, misaligned recaptures).

        Misaligned acquisitions are captured again (``alignment.max_recaptures``), transient link errors
        retried (``max_retries``); bad readings and detector timeouts follow ``on_error``.
        """
        attempt = misaligned = transient = 0
        while True:
            attempt += 1
            try:
                return fn(), attempt, misaligned
            except MisalignedError as exc:
                misaligned += 1
                summary.misaligned += 1
                self.store.log_event("scene_misaligned", scene_id=scene.scene_id, key=scene.key, step=what,
                                     attempt=attempt, error=str(exc))
                if misaligned <= self.align.max_recaptures:
                    continue
                raise CaptureAborted(
                    f"scene {scene.scene_id} ({scene.key}) not recorded: {what} still misaligned after {misaligned} "
                    f"capture(s): {exc}. Measure dmd.latency_frames with --check-sync and use a VSYNC-locked "
                    "presenter (docs/hardware.md)") from exc
            except TransientDetectorError as exc:
                transient += 1
                self.store.log_event("scene_error", scene_id=scene.scene_id, key=scene.key, step=what,
                                     attempt=attempt, transient=True, error=f"{type(exc).__name__}: {exc}")
                if transient <= self.cal.max_retries:
                    summary.retries += 1
                    continue
                raise CaptureAborted(f"scene {scene.scene_id} ({scene.key}) not recorded: {what} failed after "
                                     f"{transient} link error(s): {exc}") from exc
            except (ReadingError, DetectorTimeoutError) as exc:
                self.store.log_event("scene_error", scene_id=scene.scene_id, key=scene.key, step=what,
                                     attempt=attempt, error=f"{type(exc).__name__}: {exc}")
                if self.cal.on_error == "retry" and attempt - misaligned - transient <= self.cal.max_retries:
                    summary.retries += 1
                    continue
                raise CaptureAborted(f"scene {scene.scene_id} ({scene.key}) not recorded: {what} failed after "
                                     f"{attempt} attempt(s): {exc}") from exc

    def _capture_one(self, scene: Scene, index: int, last: bool, summary: CaptureSummary) -> CaptureRecord:
        every, pos = self.cal.every, self.cal.position
        refs: list[Reference] = []
        if every and index % every == 0 and pos in ("before", "both"):
            refs.append(self._attempt(lambda: self.reference("before"), scene, "reference before", summary)[0])
        (readings, inv, frac, times, alignment), attempts, misaligned = self._attempt(
            lambda: self.measure(scene), scene, "measurement", summary)
        if every and (index % every == every - 1 or last) and pos in ("after", "both"):
            refs.append(self._attempt(lambda: self.reference("after"), scene, "reference after", summary)[0])
        alignment["recaptured"] = misaligned
        summary.inconclusive += alignment["status"] == "inconclusive"
        summary.late_frames += int(alignment["late_frames"])
        return CaptureRecord(scene.scene_id, scene.key, scene.source, readings, inv, refs, times, frac, attempts,
                             alignment)

    def run(self, scenes: SceneSource, progress: bool = True) -> CaptureSummary:
        """Capture every scene without a record; returns a summary. The DMD is stopped on exit."""
        t_start = time.monotonic()
        todo = [s for s in scenes if not self.store.has(s.scene_id)]
        summary = CaptureSummary(skipped=len(scenes) - len(todo))
        self.store.log_event("session_start", pending=len(todo), done=summary.skipped,
                             patterns_per_scene=self.sequence.n_acquire)
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
                                 error=f"{type(exc).__name__}: {exc}", **summary.stats())
            raise
        finally:
            bar.close()
            summary.elapsed_s = time.monotonic() - t_start
            try:
                self._shutdown(quiet=failed)
            finally:
                self._record_stats(summary)
        self.store.log_event("session_end", written=len(summary.written), elapsed_s=summary.elapsed_s,
                             **summary.stats())
        return summary

    def _record_stats(self, summary: CaptureSummary) -> None:
        """Add this session's counts to the manifest; never masks the error that ended the session."""
        counts = {k: v for k, v in summary.stats().items() if v}
        if not counts:
            return
        try:
            self.store.add_stats(**counts)
        except Exception as exc:  # noqa: BLE001 - the counts are also in the records and events
            self.store.log_event("stats_error", error=f"{type(exc).__name__}: {exc}", **counts)

    def _shutdown(self, quiet: bool) -> None:
        """Stop the DMD and abort the detector; while another error propagates, only log failures here."""
        for step in (self.dmd.stop, self.detector.abort):
            try:
                step()
            except HardwareError as exc:
                if not quiet:
                    raise
                self.store.log_event("shutdown_error", error=f"{type(exc).__name__}: {exc}")
