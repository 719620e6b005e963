"""Simulated rig: scene display, DMD and detector sharing one simulated optical path.

Path model (normalised reading units, as the optical encoder ``lsi.physics.operator``):

1. the scene window is rendered exactly as on the real monitor (profile gamma encoding, placement); the
   simulated monitor emits ``(v / 255) ** monitor_gamma`` per channel;
2. the objective images the scene rectangle onto the DMD region of interest: colour channels are averaged
   (a monochrome photodiode), the image is box-resampled onto the mask grid and blurred (``blur_sigma``
   mask pixels); light outside the ROI is stopped by the field stop;
3. the DMD receives packed frames through its (offscreen) HDMI presenter; bit planes are unpacked and
   block-averaged back onto the mask grid, so packing errors show up in the readings;
4. each pattern integrates ``mean((leak + (1 - leak) * m) * E)`` (:func:`lsi.physics.operator.measure`) - off
   mirrors leak ``leak`` of the light;
5. the photodiode responds as a first-order low pass (``tau`` from the gain table at ``detector.gain_db``,
   or ``sim.detector_bandwidth_hz``) and is sampled where ``detector.sampling.point`` says, on the timing
   of the :class:`~hardware.timing.PatternClock` the detector was armed with (:func:`hardware.sampling.respond`):
   sampling at the start of the exposure reads the previous pattern, as a real rig would;
6. source drift multiplies the light by ``1 + drift_per_acquisition * k`` for the ``k``-th acquisition;
7. :class:`lsi.physics.noise.NoiseModel` (``differentiable=False``: exact Poisson) adds shot noise, read noise,
   dark offset, ambient light and the ADC - the same noise model as training.

An all-white scene through an all-on mask therefore reads ~1 before the dark offset and ambient term.
Faults: :meth:`SimDMD.inject_slip` shifts the next presentation by a whole frame (``late``: an idle frame
is shown first) or repeats a frame (``repeat``), optionally counted as a late frame by the presenter.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter

from hardware.bitplanes import PLANES_PER_FRAME, DMDGeometry, plane_channel_bit
from hardware.display import OffscreenDisplay
from hardware.protocols import DetectorTimeoutError, HardwareError
from hardware.rig import DisplayProfile, RigConfig
from hardware.sampling import detector_tau_us, respond, sample_offsets_us
from hardware.timing import PatternClock, check_exposure
from lsi.physics.noise import NoiseModel
from lsi.physics.operator import measure

__all__ = ["OpticalPath", "SimDMD", "SimDetector", "SimSceneDisplay", "SimRig", "build_sim_rig", "frames_to_masks"]


def frames_to_masks(frames: np.ndarray, geometry: DMDGeometry) -> np.ndarray:
    """Effective masks on the mask grid ``[24F, H, W]`` float32: fraction of 'on' mirrors per mask pixel."""
    (sx, sy), (x0, y0, x1, y1), (h, w) = geometry.scale, geometry.roi, geometry.mask_shape
    roi = frames[:, y0:y1, x0:x1, :]
    out = np.empty((frames.shape[0] * PLANES_PER_FRAME, h, w), dtype=np.float32)
    for k in range(out.shape[0]):
        ch, bit = plane_channel_bit(k % PLANES_PER_FRAME)
        bits = (roi[k // PLANES_PER_FRAME, :, :, ch] >> bit) & 1
        out[k] = bits.reshape(h, sy, w, sx).sum(axis=(1, 3), dtype=np.uint16) / float(sx * sy)
    return out


class OpticalPath:
    """Shared state of the simulated rig (see module docstring)."""

    def __init__(self, geometry: DMDGeometry, rig: RigConfig, tau_us: float = 0.0) -> None:
        self.geometry = geometry
        self.rig = rig
        self.sim = rig.sim
        self.latency_frames = rig.dmd.latency_frames
        self.tau_us = tau_us
        sim = self.sim
        self.irradiance = np.zeros(geometry.mask_shape, dtype=np.float64)
        self.noise = NoiseModel(**vars(sim.noise), differentiable=False)
        self.generator = torch.Generator().manual_seed(int(sim.seed))
        self.acquisitions = 0
        self._cache: list[tuple[np.ndarray, np.ndarray]] = []  # (frames, effective masks), keeps ids alive
        self._armed: int | None = None
        self._clock: PatternClock | None = None
        self._stream: list[np.ndarray] = []
        self.dmd_running = False

    # -- inputs --------------------------------------------------------------------------------------------
    def on_scene(self, framebuffer: np.ndarray, rect: tuple[int, int, int, int], monitor_gamma: float) -> None:
        """Compute the irradiance on the mask grid from the monitor's framebuffer."""
        x, y, w, h = rect
        lut = ((np.arange(256, dtype=np.float64) / 255.0) ** monitor_gamma).astype(np.float32)
        mono = lut[framebuffer[y:y + h, x:x + w]].mean(axis=-1)
        gh, gw = self.geometry.mask_shape
        if mono.shape != (gh, gw):
            mono = np.asarray(Image.fromarray(mono.astype(np.float32)).resize((gw, gh), Image.BOX))
        if self.sim.blur_sigma > 0:
            mono = gaussian_filter(mono, self.sim.blur_sigma, mode="nearest")
        self.irradiance = mono.astype(np.float64)

    def _effective(self, frames: np.ndarray) -> np.ndarray:
        for f, masks in self._cache:
            if f is frames:
                return masks
        masks = frames_to_masks(frames, self.geometry)
        self._cache = (self._cache + [(frames, masks)])[-4:]
        return masks

    def on_frames(self, frames: np.ndarray, slip: str | None = None) -> None:
        """Frames arriving at the DMD's video input while the sequence runs (``slip``: an injected fault)."""
        if not self.dmd_running:
            return  # the DMD ignores frames while stopped
        if self._armed is not None:
            idle = np.zeros((PLANES_PER_FRAME,) + self.geometry.mask_shape, dtype=np.float32)
            if not self._stream and self.latency_frames:
                self._stream.append(np.repeat(idle, self.latency_frames, axis=0))
            masks = self._effective(frames)
            if slip == "late":  # the acquisition starts on an idle frame: everything one frame later
                masks = np.concatenate([idle, masks], axis=0)
            elif slip == "repeat":  # the first frame shown twice (the second was not ready in time)
                masks = np.concatenate([masks[:PLANES_PER_FRAME], masks], axis=0)
            self._stream.append(masks)

    # -- detector side ---------------------------------------------------------------------------------------
    def arm(self, n: int, clock: PatternClock) -> None:
        self._armed = int(n)
        self._clock = clock
        self._stream = []

    def clean_readings(self, masks: np.ndarray) -> np.ndarray:
        """Noise-free readings ``[n]`` for effective masks ``[n, H, W]`` under the current irradiance.

        The measurement rule is :func:`lsi.physics.operator.measure` (the optical encoder's ``A``); off mirrors
        add ``leak`` of the light, i.e. the patterns are ``leak + (1 - leak) * m`` (linear, so split in two).
        """
        leak = self.sim.leak
        scene = torch.from_numpy(self.irradiance.astype(masks.dtype))[None, None]  # [1, 1, H, W]
        on = measure(torch.from_numpy(masks), scene)[0].double().numpy()  # float32 matmul; ~1e-6 relative error
        return leak * self.irradiance.mean() + (1.0 - leak) * on

    def collect(self) -> np.ndarray:
        """Noisy readings of the armed acquisition; DetectorTimeoutError when too few patterns were shown."""
        if self._armed is None:
            raise HardwareError("simulated detector read without arm()")
        n, self._armed = self._armed, None
        if len(self._stream) == 1:
            masks = self._stream[0]
        elif self._stream:
            masks = np.concatenate(self._stream, axis=0)
        else:
            masks = np.zeros((0,) + self.geometry.mask_shape, dtype=np.float32)
        self._stream = []
        if masks.shape[0] < n:
            raise DetectorTimeoutError(f"simulated detector armed for {n} samples but only {masks.shape[0]} "
                                       "patterns were shown (was the DMD started and were frames presented?)")
        clean = self.clean_readings(masks[:n])
        if self.tau_us > 0 and self._clock is not None:
            off = float(self.clean_readings(np.zeros((1,) + self.geometry.mask_shape, dtype=np.float32))[0])
            offsets, keep = sample_offsets_us(self.rig, self._clock)
            clean = respond(clean, off, self._clock, self.tau_us, offsets, keep)
        clean = clean * (1.0 + self.sim.drift_per_acquisition * self.acquisitions)
        self.acquisitions += 1
        noisy = self.noise.apply(torch.from_numpy(clean), generator=self.generator)
        return noisy.numpy().astype(np.float64)


class SimSceneDisplay(OffscreenDisplay):
    """Offscreen scene monitor feeding the optical path."""

    def __init__(self, profile: DisplayProfile, path: OpticalPath, realtime: bool = False) -> None:
        super().__init__(profile)
        self.path = path
        self.realtime = realtime

    def show(self, image: Any) -> None:
        super().show(image)
        self.path.on_scene(self.framebuffer, self.rect, self.path.sim.monitor_gamma)
        if self.realtime:
            time.sleep(self.profile.settle_s)

    def describe(self) -> dict[str, Any]:
        return {"backend": "sim", "profile": self.profile.name, "monitor_gamma": self.path.sim.monitor_gamma}


class SimDMD:
    """Simulated DLP4500 streaming frames from its (offscreen) HDMI presenter into the optical path."""

    def __init__(self, geometry: DMDGeometry, path: OpticalPath, presenter: OffscreenDisplay, video_fps: float = 120.0,
                 realtime: bool = False) -> None:
        self.geometry = geometry
        self.path = path
        self.presenter = presenter
        self.video_fps = video_fps
        self.realtime = realtime
        self.exposure_us = self.period_us = 0
        self._slips: list[tuple[str, bool]] = []
        presenter.observers.append(self._on_present)

    def configure(self, exposure_us: int, period_us: int) -> None:
        check_exposure(exposure_us, period_us, self.path.rig.dmd.min_dark_us)
        self.exposure_us, self.period_us = exposure_us, period_us

    def start(self) -> None:
        if not self.period_us:
            raise HardwareError("simulated DMD started before configure()")
        self.path.dmd_running = True

    def stop(self) -> None:
        self.path.dmd_running = False

    def present(self, frames: np.ndarray) -> None:
        self.presenter.present(frames, 1.0 / self.video_fps)
        if self.realtime:
            time.sleep(frames.shape[0] / self.video_fps)

    @property
    def late_frames(self) -> int:
        return self.presenter.late_frames

    def inject_slip(self, kind: str = "late", count_as_late: bool = False, times: int = 1) -> None:
        """Fault for the next ``times`` acquisitions: ``late`` shows an idle frame first (all readings one frame
        late), ``repeat`` shows a frame twice, ``count`` changes nothing but the presenter's late-frame count;
        ``count_as_late`` makes the presenter report a late frame as a timer-driven window would."""
        if kind not in ("late", "repeat", "count"):
            raise ValueError(f"slip kind must be late, repeat or count, got {kind!r}")
        self._slips.extend([(kind, count_as_late or kind == "count")] * times)

    def _on_present(self, kind: str, payload: Any) -> None:
        if kind != "frames":
            return
        slip = None
        if self._slips and self.path.dmd_running and self.path._armed is not None:
            slip, counted = self._slips.pop(0)
            self.presenter.late_frames += int(counted)
        self.path.on_frames(payload, slip)

    def close(self) -> None:
        self.stop()

    def describe(self) -> dict[str, Any]:
        return {"backend": "sim", "roi": list(self.geometry.roi), "exposure_us": self.exposure_us,
                "period_us": self.period_us, "video_fps": self.video_fps}


class SimDetector:
    """Simulated photodiode + ADC reading the optical path (normalised units)."""

    def __init__(self, path: OpticalPath) -> None:
        self.path = path
        self.full_scale = float(path.noise.full_scale) if path.noise.adc_bits > 0 else float("inf")

    def arm(self, n_patterns: int, clock: PatternClock) -> None:
        self.path.arm(n_patterns, clock)

    def read(self, timeout_s: float) -> np.ndarray:
        return self.path.collect()

    def abort(self) -> None:
        self.path._armed = None

    def close(self) -> None:
        self.abort()

    def describe(self) -> dict[str, Any]:
        return {"backend": "sim", "noise": vars(self.path.noise), "leak": self.path.sim.leak,
                "blur_sigma": self.path.sim.blur_sigma, "drift_per_acquisition": self.path.sim.drift_per_acquisition,
                "tau_us": self.path.tau_us, "sampling_point": self.path.rig.detector.sampling.point}


@dataclass
class SimRig:
    """The three simulated devices and their shared optical path."""

    dmd: SimDMD
    detector: SimDetector
    scene_display: SimSceneDisplay
    path: OpticalPath


def build_sim_rig(rig: RigConfig, scene_profile: DisplayProfile, dmd_profile: DisplayProfile) -> SimRig:
    """Simulated rig for ``rig`` (geometry, timing and ``rig.sim``) and the two display profiles."""
    geometry = rig.dmd.geometry()
    path = OpticalPath(geometry, rig, detector_tau_us(rig))
    presenter = OffscreenDisplay(dmd_profile)
    dmd = SimDMD(geometry, path, presenter, rig.dmd.video_fps, rig.sim.realtime)
    return SimRig(dmd, SimDetector(path), SimSceneDisplay(scene_profile, path, rig.sim.realtime), path)
