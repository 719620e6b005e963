"""Dark/white references, saturation and NaN checks, drift correction.

A *reference* is one video frame measured while the scene monitor shows a uniform white field: its first
``ref_planes`` bit planes are all-on (white level ``W``), the rest all-off (dark level ``D``: detector
offset, ambient light and off-mirror leakage). In normalised units the white field through an all-on mask
is 1, so a scene reading ``y`` maps to the optical encoder's units as

    y_norm = (y - D(t)) / (W(t) - D(t))

where ``D(t)``, ``W(t)`` are interpolated linearly in time between the references bracketing the scene
(``mode="drift"``), or are medians over the whole capture (``mode="normalize"``). With complementary
patterns the differential reading ``(y+ - y-) / (W - D)`` cancels offsets and ambient light.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from hardware.bitplanes import PLANES_PER_FRAME

__all__ = [
    "ReadingError",
    "NaNReadingError",
    "SaturationError",
    "Reference",
    "reference_planes",
    "reference_from_readings",
    "check_readings",
    "check_reference_clipping",
    "interpolate_references",
    "correct",
    "corrected_record",
    "CORRECTION_MODES",
    "COMBINE_MODES",
]

CORRECTION_MODES = ("none", "dark", "normalize", "drift")


class ReadingError(ValueError):
    """Readings unfit to be stored."""


class NaNReadingError(ReadingError):
    """A reading is NaN or infinite (detector glitch, broken connection)."""


class SaturationError(ReadingError):
    """Too many readings at or above the detector's full scale."""


@dataclass
class Reference:
    """One dark/white reference measurement (detector units, ``t`` in Unix seconds)."""

    t: float
    white: float
    dark: float
    white_std: float
    dark_std: float
    role: str = "before"  # before | after

    def to_dict(self) -> dict:
        return asdict(self)


def reference_planes(mask_shape: tuple[int, int], ref_planes: int) -> np.ndarray:
    """``[24, H, W]`` uint8: ``ref_planes`` all-on planes followed by all-off planes (one video frame)."""
    if not 1 <= ref_planes < PLANES_PER_FRAME:
        raise ValueError(f"ref_planes must be in [1, {PLANES_PER_FRAME - 1}], got {ref_planes}")
    planes = np.zeros((PLANES_PER_FRAME,) + tuple(mask_shape), dtype=np.uint8)
    planes[:ref_planes] = 1
    return planes


def reference_from_readings(raw: np.ndarray, ref_planes: int, t: float, role: str = "before") -> Reference:
    """Summarise the 24 readings of a reference frame."""
    raw = np.asarray(raw, dtype=np.float64)
    if raw.shape != (PLANES_PER_FRAME,):
        raise ReadingError(f"a reference frame gives {PLANES_PER_FRAME} readings, got {raw.shape}")
    white, dark = raw[:ref_planes], raw[ref_planes:]
    return Reference(t=float(t), white=float(white.mean()), dark=float(dark.mean()),
                     white_std=float(white.std()), dark_std=float(dark.std()), role=role)


def check_readings(raw: np.ndarray, full_scale: float, max_saturated_fraction: float, what: str = "scene") -> float:
    """Raise on NaN/inf or on more than ``max_saturated_fraction`` readings >= ``full_scale``.

    Returns:
        The saturated fraction (0 when none).
    """
    raw = np.asarray(raw, dtype=np.float64)
    bad = ~np.isfinite(raw)
    if bad.any():
        idx = np.flatnonzero(bad)
        raise NaNReadingError(f"{what}: {idx.size} of {raw.size} readings are NaN/inf (first at index {idx[0]}); "
                              "check the detector connection and range")
    frac = float(np.mean(raw >= full_scale)) if raw.size else 0.0
    if frac > max_saturated_fraction:
        raise SaturationError(
            f"{what}: {frac:.1%} of readings are saturated (>= {full_scale:g}), more than the allowed "
            f"{max_saturated_fraction:.1%}; lower the PDA100A2 gain, the scene brightness or raise the DAQ range")
    return frac


def check_reference_clipping(raw: np.ndarray, full_scale: float, headroom: float, what: str = "reference") -> None:
    """References tolerate no clipping: raise :class:`SaturationError` if any reading of the reference frame
    reaches ``(1 - headroom) * full_scale``.

    Scenes may tolerate a few saturated readings (``max_saturated_fraction``), but a clipped white level
    rescales every normalised reading of the capture (a white clipped at 0.55 of its true level would
    inflate them by 1.8), so the scenes' tolerance does not apply here.
    """
    raw = np.asarray(raw, dtype=np.float64)
    limit = (1.0 - headroom) * full_scale
    clipped = np.flatnonzero(raw >= limit)
    if clipped.size:
        raise SaturationError(
            f"{what}: {clipped.size} of {raw.size} readings reach {raw[clipped].max():g} >= {limit:g} "
            f"({1 - headroom:.0%} of full scale {full_scale:g}); a clipped reference would scale every normalised "
            "reading. Lower the PDA100A2 gain or the white level (calibration.reference_headroom sets the margin)")


def interpolate_references(refs: list[Reference], t: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Dark and white levels at times ``t`` (linear in time, held constant beyond the first/last reference)."""
    if not refs:
        raise ValueError("no references in this capture: set calibration.every >= 1, or use correction 'none'")
    refs = sorted(refs, key=lambda r: r.t)
    times = np.array([r.t for r in refs])
    dark = np.array([r.dark for r in refs])
    white = np.array([r.white for r in refs])
    t = np.asarray(t, dtype=np.float64)
    return np.interp(t, times, dark), np.interp(t, times, white)


def correct(raw: np.ndarray, dark: float, white: float, mode: str) -> np.ndarray:
    """Apply a correction ``mode`` (none | dark | normalize | drift) given the dark/white levels."""
    raw = np.asarray(raw, dtype=np.float64)
    if mode == "none":
        return raw
    if mode == "dark":
        return raw - dark
    if mode in ("normalize", "drift"):
        span = white - dark
        if not span > 0:
            raise ReadingError(f"white reference ({white:g}) is not above the dark reference ({dark:g}); the "
                               "references are unusable (scene display off? detector saturated?)")
        return (raw - dark) / span
    raise ValueError(f"unknown correction {mode!r}; choose one of {CORRECTION_MODES}")


#: how a complementary capture's two readings per mask become the model's input: ``positive`` (y+ only),
#: ``differential`` (y+ - y-) or ``stacked`` ([y+ | y-], 2d values)
COMBINE_MODES = ("positive", "differential", "stacked")


def reference_levels(refs: list[Reference], t: float, correction: str) -> tuple[float, float]:
    """Dark and white levels a scene acquired at time ``t`` is corrected with (``none``: 0 and 1)."""
    if correction == "none":
        return 0.0, 1.0
    if correction == "drift":
        dark, white = interpolate_references(refs, t)
        return float(dark), float(white)
    if not refs:
        raise ValueError("no references in this capture: set calibration.every >= 1, or use correction 'none'")
    return float(np.median([r.dark for r in refs])), float(np.median([r.white for r in refs]))


def corrected_record(readings: np.ndarray, readings_inv: np.ndarray | None, t: float, refs: list[Reference],
                     correction: str = "drift", combine: str = "positive") -> np.ndarray:
    """One scene's readings in the optical encoder's units: ``[d]`` (``[2d]`` stacked), float64.

    ``readings`` / ``readings_inv``: raw values of the masks / their complements (None without complements);
    ``t``: the acquisition start; ``refs``: the capture's references (see :func:`reference_levels`).
    """
    if correction not in CORRECTION_MODES:
        raise ValueError(f"correction must be one of {CORRECTION_MODES}, got {correction!r}")
    if combine not in COMBINE_MODES:
        raise ValueError(f"combine must be one of {COMBINE_MODES}, got {combine!r}")
    dark, white = reference_levels(refs, t, correction)
    pos = correct(readings, dark, white, correction)
    if combine == "positive":
        return pos
    if readings_inv is None:
        raise ValueError(f"combine={combine!r} needs a capture with complementary patterns")
    neg = correct(readings_inv, dark, white, correction)
    return np.concatenate([pos, neg]) if combine == "stacked" else pos - neg
