"""Backend interfaces of the rig (runtime-checkable Protocols) and the shared exception types.

A capture needs three devices:

* :class:`DMD` shows packed bit-plane frames (``[F, 1140, 912, 3]`` uint8, see :mod:`hardware.bitplanes`)
  as binary patterns, one pattern per bit plane;
* :class:`Detector` returns one value per pattern (``[n]`` float64) for an acquisition armed beforehand,
  timed by a :class:`hardware.timing.PatternClock` (the one timing model);
* :class:`SceneDisplay` shows the scene (``[3, H, W]`` or ``[H, W, 3]`` float in [0, 1], linear intensity).

:class:`FramePresenter` is the output that carries frames to the DMD's video port (a fullscreen window on
the DMD's HDMI screen for the real rig). Real, simulated and mock backends all satisfy these Protocols.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from hardware.bitplanes import DMDGeometry

if TYPE_CHECKING:
    from hardware.timing import PatternClock

__all__ = [
    "DMD",
    "Detector",
    "SceneDisplay",
    "FramePresenter",
    "HardwareError",
    "DeviceNotFoundError",
    "DMDConfigError",
    "DetectorError",
    "DetectorTimeoutError",
    "TransientDetectorError",
    "BackendUnavailableError",
]


class HardwareError(RuntimeError):
    """A device failed while running (USB error, lost connection, protocol violation)."""


class DeviceNotFoundError(HardwareError):
    """The device is not connected, not powered, or not accessible to this user."""


class DMDConfigError(HardwareError, ValueError):
    """The DLPC350 refused the pattern configuration (LUT validation failed) or settings are invalid."""


class DetectorError(HardwareError):
    """The detector reported an error or returned malformed data."""


class DetectorTimeoutError(DetectorError, TimeoutError):
    """The detector did not deliver the armed number of samples in time."""


class TransientDetectorError(DetectorError):
    """A link error that repeating the acquisition can cure (serial checksum, missing sample index, samples
    before the start handshake); the capture loop retries the scene (``calibration.max_retries``)."""


class BackendUnavailableError(HardwareError, ImportError):
    """An optional driver package (nidaqmx, pyserial, pyusb, pycrafter4500, tkinter) is missing."""


@runtime_checkable
class FramePresenter(Protocol):
    """Shows 24-bit frames on the DMD's video input, one per display refresh."""

    def present(self, frames: np.ndarray, period_s: float) -> None:
        """Show ``frames`` ``[F, H, W, 3]`` uint8 in order, one per ``period_s``, then an all-off frame."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class DMD(Protocol):
    """A digital micromirror device streaming binary patterns."""

    geometry: DMDGeometry

    def configure(self, exposure_us: int, period_us: int) -> None:
        """Program pattern-sequence mode (video-port source, 24-entry LUT) with these timings."""
        ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def present(self, frames: np.ndarray) -> None:
        """Stream packed frames ``[F, height, width, 3]`` uint8 (bit planes G0..B7) through the DMD."""
        ...

    def close(self) -> None:
        """Stop and return the DMD to video mode; safe to call twice."""
        ...

    def describe(self) -> dict[str, Any]: ...

    # Optional: ``late_frames`` (int), frames the presenter could not show on time; the capture loop
    # compares it before and after each acquisition (calibration.alignment.max_late_frames).


@runtime_checkable
class Detector(Protocol):
    """A single-pixel detector sampled once per DMD pattern."""

    full_scale: float

    def arm(self, n_patterns: int, clock: PatternClock) -> None:
        """Prepare a finite acquisition of ``n_patterns`` values starting at the next sequence start
        (TRIG_OUT_2); ``clock`` says when the patterns come (video rate, period, exposure)."""
        ...

    def read(self, timeout_s: float) -> np.ndarray:
        """Wait for the armed acquisition; return ``[n_patterns]`` float64 (raises DetectorTimeoutError)."""
        ...

    def abort(self) -> None: ...

    def close(self) -> None: ...

    def describe(self) -> dict[str, Any]: ...


@runtime_checkable
class SceneDisplay(Protocol):
    """The monitor that shows scenes to the objective lens."""

    settle_s: float

    def show(self, image: np.ndarray) -> None:
        """Show ``image`` (``[3, H, W]`` or ``[H, W, 3]`` float in [0, 1], linear intensity)."""
        ...

    def close(self) -> None: ...

    def describe(self) -> dict[str, Any]: ...
