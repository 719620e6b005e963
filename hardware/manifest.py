"""Typed capture metadata (``manifest.json``) and the identity a resumed capture must match.

A capture's *identity* is every setting that changes what a stored reading means: the masks and their
order, complementary mode, the scene set, the detector gain, the scene and DMD display profiles, the
calibration schedule, the rig's DMD / detector / sampling / alignment settings, the timing, the
simulated-or-real flag and the units. :meth:`CaptureManifest.check_resumable` compares the identities of the
stored and the new manifest and refuses a resume naming every differing field with both values.

Not part of the identity (:data:`NOT_IDENTITY`): provenance (devices, software version, creation time,
statistics), operational policy (error policy, retries, watchdog, USB retries, time estimates, the plan's
residual limits and the alignment check's thresholds - every record keeps its own alignment result), the
serial link's speed, where things are (image folder, serial port, window position) and, for real
captures, the simulator settings. The alignment markers themselves (they change the sequence) are part
of the identity.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

__all__ = [
    "SCHEMA",
    "StoreError",
    "MaskMismatchError",
    "ManifestMismatchError",
    "MaskInfo",
    "TimingInfo",
    "SceneSetInfo",
    "CaptureManifest",
    "NOT_IDENTITY",
    "software_version",
]

SCHEMA = "lsi-capture/1"

_OPERATIONAL_CAL = ("on_error", "max_retries", "watchdog_factor", "watchdog_margin_s", "alignment.max_recaptures",
                    "alignment.max_late_frames", "alignment.tolerance", "alignment.min_signal")
_PLACEMENT = ("name", "x", "y", "monitor", "backend", "update_s")
NOT_IDENTITY: tuple[str, ...] = (
    "devices", "software_version", "created", "schema", "stats", "timing.expected_scene_s", "scenes.spec.root",
    *(f"calibration.{k}" for k in _OPERATIONAL_CAL), *(f"rig.calibration.{k}" for k in _OPERATIONAL_CAL),
    *(f"display_profile.{k}" for k in _PLACEMENT), *(f"dmd_profile.{k}" for k in _PLACEMENT),
    "rig.name", "rig.display", "rig.dmd.vendor_id", "rig.dmd.product_id", "rig.dmd.expected_masks",
    "rig.dmd.max_masks", "rig.dmd.usb_retries", "rig.dmd.usb_command_s", "rig.detector.setup_s",
    "rig.detector.serial.port", "rig.detector.serial.line_timeout_s", "rig.detector.serial.baudrate",
    "rig.detector.serial.usb_cdc", "rig.detector.serial.line_bytes", "rig.detector.nidaqmx.max_rate_hz",
    "rig.detector.photodiode", "rig.detector.sampling.warn_residual", "rig.detector.sampling.max_residual",
    "rig.sim.realtime",
)


class StoreError(ValueError):
    """Problem with a capture directory."""


class MaskMismatchError(StoreError):
    """The directory holds a capture made with different masks."""


class ManifestMismatchError(StoreError):
    """The directory holds a different capture (scene set, gain, timing, profiles, ...)."""


def software_version() -> str:
    """Installed version of this package (``0+unknown`` when not installed)."""
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version("latent-space-imaging")
    except PackageNotFoundError:
        return "0+unknown"


@dataclass
class MaskInfo:
    sha256: str
    count: int
    height: int
    width: int
    bits: int
    ratio: int
    order: list[int]
    source: str = ""


@dataclass
class TimingInfo:
    exposure_us: float
    period_us: float
    video_fps: float
    patterns_per_s: float
    patterns_per_scene: int
    frames_per_scene: int
    scene_settle_s: float
    reference_settle_s: float
    latency_frames: int
    expected_scene_s: float
    burst_rate_hz: float = 0.0
    patterns_per_frame: int = 24
    markers: int = 0
    sampling_point: str = ""
    sample_us: float = 0.0


@dataclass
class SceneSetInfo:
    kind: str  # embedded | images
    count: int
    spec: dict[str, Any] = field(default_factory=dict)


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: obj}


def _excluded(key: str, excluded: tuple[str, ...]) -> bool:
    return any(key == e or key.startswith(e + ".") for e in excluded)


def _short(value: Any) -> str:
    text = "<absent>" if value is _ABSENT else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_ABSENT = object()


@dataclass
class CaptureManifest:
    """Typed metadata of a capture (SPAS style). ``sequence`` describes the per-scene pattern layout
    (alignment markers); ``stats`` is the only part rewritten after creation (end of each session)."""

    masks: MaskInfo
    timing: TimingInfo
    scenes: SceneSetInfo
    complementary: bool
    calibration: dict[str, Any]
    devices: dict[str, Any]
    detector_gain_db: int
    display_profile: dict[str, Any]
    dmd_profile: dict[str, Any]
    frame_map: dict[str, list[list[int]]]
    plane_names: list[str]
    rig: dict[str, Any]
    simulated: bool
    units: str = "V"
    software_version: str = field(default_factory=software_version)
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    schema: str = SCHEMA
    sequence: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> CaptureManifest:
        try:
            data = json.loads(text)
            if data.get("schema") != SCHEMA:
                raise StoreError(f"manifest schema {data.get('schema')!r} is not {SCHEMA!r}")
            data["masks"] = MaskInfo(**data["masks"])
            data["timing"] = TimingInfo(**data["timing"])
            data["scenes"] = SceneSetInfo(**data["scenes"])
            return cls(**data)
        except (json.JSONDecodeError, TypeError, KeyError, AttributeError) as exc:
            raise StoreError(f"manifest.json is malformed: {exc}") from exc

    def identity(self) -> dict[str, Any]:
        """Flat ``{dotted.field: value}`` of every setting that changes what a reading means."""
        excluded = NOT_IDENTITY + (() if self.simulated else ("rig.sim",))
        flat = _flatten(json.loads(json.dumps(asdict(self))))
        return {k: v for k, v in flat.items() if not _excluded(k, excluded)}

    def check_resumable(self, new: CaptureManifest) -> None:
        """Raise unless ``new`` describes the same capture; the error names each differing field."""
        if (self.masks.sha256, self.masks.order) != (new.masks.sha256, new.masks.order):
            raise MaskMismatchError(
                f"the output directory holds a capture made with different masks (sha256 {self.masks.sha256[:12]}..., "
                f"{self.masks.count} masks) than the ones given (sha256 {new.masks.sha256[:12]}..., {new.masks.count} "
                "masks); choose another --out directory or pass the original masks")
        old_id, new_id = self.identity(), new.identity()
        diffs = [k for k in sorted(set(old_id) | set(new_id)) if old_id.get(k, _ABSENT) != new_id.get(k, _ABSENT)]
        if diffs:
            shown = [f"{k}: stored {_short(old_id.get(k, _ABSENT))}, now {_short(new_id.get(k, _ABSENT))}"
                     for k in diffs]
            what = " (a different scene set)" if any(k.startswith("scenes.") for k in diffs) else ""
            raise ManifestMismatchError(
                f"cannot resume: the output directory holds a capture made with other settings{what}; "
                f"{len(diffs)} differing field(s): " + "; ".join(shown)
                + ". Rerun with the stored settings or use a new --out directory")
