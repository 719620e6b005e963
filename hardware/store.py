"""Capture store: one directory, a typed manifest and one append-only record per scene.

Layout::

    <out>/manifest.json            CaptureManifest (written once; identical masks required to resume)
    <out>/events.jsonl             append-only log (sessions, errors, interruptions)
    <out>/records/scene-0000042.npz one record per scene (numpy .npz, no pickle)
    <out>/.lock                    held (flock) by the writing process

Records are written atomically: a temporary file in ``records/`` is written and fsynced, hard-linked to
its final name (which fails if the name exists - records are never overwritten; on filesystems without
hard links an existence check plus ``os.replace`` is used), the temporary name is removed and the directory
fsynced. A crash at any point leaves either no record or a complete one; stale temporary files are
removed when a writer opens the store.
"""

from __future__ import annotations

import io
import json
import os
import time
import uuid
import zipfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from hardware.calibration import Reference

__all__ = [
    "SCHEMA",
    "StoreError",
    "MaskMismatchError",
    "ManifestMismatchError",
    "DuplicateRecordError",
    "StoreLockedError",
    "CorruptRecordError",
    "MaskInfo",
    "TimingInfo",
    "SceneSetInfo",
    "CaptureManifest",
    "CaptureRecord",
    "CaptureStore",
    "software_version",
]

SCHEMA = "lsi-capture/1"
_ROLES = ("before", "after")


class StoreError(ValueError):
    """Problem with a capture directory."""


class MaskMismatchError(StoreError):
    """The directory holds a capture made with different masks."""


class ManifestMismatchError(StoreError):
    """The directory holds a different capture (scene set, complementary mode, ...)."""


class DuplicateRecordError(StoreError):
    """A record for this scene already exists (records are append-only)."""


class StoreLockedError(StoreError):
    """Another process is writing to this capture directory."""


class CorruptRecordError(StoreError):
    """A record file is unreadable or inconsistent with the manifest."""


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


@dataclass
class SceneSetInfo:
    kind: str  # embedded | images
    count: int
    spec: dict[str, Any] = field(default_factory=dict)


@dataclass
class CaptureManifest:
    """Typed metadata of a capture (SPAS style)."""

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

    def check_resumable(self, new: CaptureManifest) -> None:
        """Raise unless ``new`` describes the same capture (masks, order, mode, scene set)."""
        if (self.masks.sha256, self.masks.order) != (new.masks.sha256, new.masks.order):
            raise MaskMismatchError(
                f"the output directory holds a capture made with different masks (sha256 {self.masks.sha256[:12]}..., "
                f"{self.masks.count} masks) than the ones given (sha256 {new.masks.sha256[:12]}..., {new.masks.count} "
                "masks); choose another --out directory or pass the original masks")
        diffs = []
        if self.complementary != new.complementary:
            diffs.append(f"complementary {self.complementary} -> {new.complementary}")
        old_spec, new_spec = _scene_identity(self.scenes), _scene_identity(new.scenes)
        if old_spec != new_spec:
            keys = set(old_spec[1]) | set(new_spec[1])
            changed = sorted(k for k in keys if old_spec[1].get(k) != new_spec[1].get(k))
            diffs.append(f"scene set {self.scenes.kind} -> {new.scenes.kind}, differing in {changed}")
        if diffs:
            raise ManifestMismatchError("cannot resume: the output directory holds a different capture ("
                                        + "; ".join(diffs) + "); use a new --out directory")


def _scene_identity(scenes: SceneSetInfo) -> tuple[str, dict[str, Any]]:
    """What must match to resume: kind and spec, except where the images live (folders may move)."""
    return scenes.kind, {k: v for k, v in scenes.spec.items() if k != "root"}


@dataclass
class CaptureRecord:
    """One scene: raw readings (mask-index order), references and timestamps."""

    scene_id: int
    key: str
    source: dict[str, Any]
    readings: np.ndarray  # [d] detector units
    readings_inv: np.ndarray | None = None  # [d] inverse masks (complementary mode)
    references: list[Reference] = field(default_factory=list)
    timestamps: dict[str, float] = field(default_factory=dict)
    saturated_fraction: float = 0.0
    attempts: int = 1

    def arrays(self) -> dict[str, np.ndarray]:
        refs = self.references
        out = {
            "readings": np.asarray(self.readings, dtype=np.float64),
            "ref_t": np.array([r.t for r in refs], dtype=np.float64),
            "ref_white": np.array([r.white for r in refs], dtype=np.float64),
            "ref_dark": np.array([r.dark for r in refs], dtype=np.float64),
            "ref_white_std": np.array([r.white_std for r in refs], dtype=np.float64),
            "ref_dark_std": np.array([r.dark_std for r in refs], dtype=np.float64),
            "ref_role": np.array([_ROLES.index(r.role) for r in refs], dtype=np.int8),
            "meta": np.array(json.dumps({"scene_id": self.scene_id, "key": self.key, "source": self.source,
                                         "timestamps": self.timestamps, "attempts": self.attempts,
                                         "saturated_fraction": self.saturated_fraction})),
        }
        if self.readings_inv is not None:
            out["readings_inv"] = np.asarray(self.readings_inv, dtype=np.float64)
        return out

    @classmethod
    def from_arrays(cls, z: Any) -> CaptureRecord:
        meta = json.loads(str(z["meta"]))
        refs = [Reference(float(t), float(w), float(d), float(ws), float(ds), _ROLES[int(r)]) for t, w, d, ws, ds, r in
                zip(z["ref_t"], z["ref_white"], z["ref_dark"], z["ref_white_std"], z["ref_dark_std"], z["ref_role"])]
        return cls(scene_id=int(meta["scene_id"]), key=str(meta["key"]), source=meta["source"],
                   readings=np.array(z["readings"]), readings_inv=np.array(z["readings_inv"]) if "readings_inv" in z
                   else None, references=refs, timestamps=meta["timestamps"],
                   saturated_fraction=float(meta["saturated_fraction"]), attempts=int(meta["attempts"]))


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # not possible on every platform
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class CaptureStore:
    """A capture directory. Use :meth:`open_for_writing` (locks, may resume) or :meth:`open` (read-only)."""

    def __init__(self, root: str | os.PathLike, manifest: CaptureManifest, writable: bool = False) -> None:
        self.root = Path(root)
        self.records_dir = self.root / "records"
        self.manifest = manifest
        self.writable = writable
        self._lock_fd: int | None = None

    # -- opening ---------------------------------------------------------------------------------------------
    @classmethod
    def open(cls, root: str | os.PathLike) -> CaptureStore:
        """Open an existing capture read-only."""
        root = Path(root)
        path = root / "manifest.json"
        if not path.is_file():
            raise StoreError(f"{str(root)!r} is not a capture directory (no manifest.json)")
        return cls(root, CaptureManifest.from_json(path.read_text(encoding="utf-8")))

    @classmethod
    def open_for_writing(cls, root: str | os.PathLike, manifest: CaptureManifest, resume: bool) -> CaptureStore:
        """Create a new capture, or resume the one in ``root`` (refusing a different one)."""
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        (root / "records").mkdir(exist_ok=True)
        store = cls(root, manifest, writable=True)
        store._lock()
        try:
            path = root / "manifest.json"
            if path.is_file():
                old = CaptureManifest.from_json(path.read_text(encoding="utf-8"))
                old.check_resumable(manifest)
                if not resume:
                    raise StoreError(f"{str(root)!r} already holds this capture ({len(store.scene_ids())} records); "
                                     "pass --resume to continue it, or choose a new --out directory")
                store.manifest = old
                store.log_event("resume", devices=manifest.devices, software_version=manifest.software_version,
                                images_root=manifest.scenes.spec.get("root"))
            else:
                others = [p.name for p in root.iterdir() if p.name not in ("records", ".lock", "events.jsonl")
                          and not p.name.startswith(".tmp-manifest.json-")]  # a torn first manifest write
                if others or any(store.records_dir.iterdir()):
                    raise StoreError(f"{str(root)!r} is not empty and has no manifest.json; refusing to write a "
                                     "capture into it")
                store._atomic_write(path, manifest.to_json().encode("utf-8"))
            store._clean_tmp()
        except BaseException:
            store.close()
            raise
        return store

    def _lock(self) -> None:
        self._lock_fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locking
            return
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(self._lock_fd)
            self._lock_fd = None
            raise StoreLockedError(f"another process is writing to {str(self.root)!r}; wait for it to finish") from exc

    def close(self) -> None:
        """Release the writer lock."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing releases the flock
            self._lock_fd = None

    def __enter__(self) -> CaptureStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _clean_tmp(self) -> list[str]:
        removed = []
        for d in (self.root, self.records_dir):
            for p in d.glob(".tmp-*"):
                p.unlink(missing_ok=True)
                removed.append(p.name)
        if removed:
            self.log_event("cleaned_tmp", files=removed)
        return removed

    # -- writing ---------------------------------------------------------------------------------------------
    def _atomic_write(self, path: Path, data: bytes, exclusive: bool = False) -> None:
        tmp = path.parent / f".tmp-{path.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            if exclusive:
                if path.exists():
                    raise DuplicateRecordError(f"{path.name} already exists; records are never overwritten")
                try:
                    os.link(tmp, path)  # atomic and refuses to replace an existing file
                except FileExistsError as exc:
                    raise DuplicateRecordError(f"{path.name} already exists; records are never overwritten") from exc
                except OSError:
                    os.replace(tmp, path)  # filesystem without hard links
            else:
                os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(path.parent)

    def record_path(self, scene_id: int) -> Path:
        return self.records_dir / f"scene-{int(scene_id):07d}.npz"

    def has(self, scene_id: int) -> bool:
        return self.record_path(scene_id).is_file()

    def scene_ids(self) -> list[int]:
        """Scene ids with a record, ascending."""
        return sorted(int(p.stem.split("-")[1]) for p in self.records_dir.glob("scene-*.npz"))

    def write(self, record: CaptureRecord) -> Path:
        """Append a record; raises :class:`DuplicateRecordError` if the scene already has one."""
        if not self.writable:
            raise StoreError("store opened read-only")
        d = self.manifest.masks.count
        if np.shape(record.readings) != (d,) or (self.manifest.complementary != (record.readings_inv is not None)):
            raise CorruptRecordError(f"record for scene {record.scene_id} does not match the manifest ({d} readings"
                                     f"{', with inverse readings' if self.manifest.complementary else ''})")
        path = self.record_path(record.scene_id)
        if path.exists():
            raise DuplicateRecordError(f"scene {record.scene_id} already has a record ({path.name}); records are "
                                       "append-only")
        buf = io.BytesIO()
        np.savez(buf, **record.arrays())
        self._atomic_write(path, buf.getvalue(), exclusive=True)
        return path

    def log_event(self, kind: str, **data: Any) -> None:
        """Append one JSON line to events.jsonl (flushed and fsynced)."""
        line = json.dumps({"t": time.time(), "event": kind, "pid": os.getpid(), **data}, default=str)
        with open(self.root / "events.jsonl", "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    # -- reading ---------------------------------------------------------------------------------------------
    def read(self, scene_id: int) -> CaptureRecord:
        """Load and check one record."""
        path = self.record_path(scene_id)
        try:
            with np.load(path, allow_pickle=False) as z:
                rec = CaptureRecord.from_arrays(z)
        except FileNotFoundError:
            raise
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
            raise CorruptRecordError(f"{path.name} is unreadable: {exc}") from exc
        d = self.manifest.masks.count
        if rec.scene_id != scene_id or rec.readings.shape != (d,) or (
                rec.readings_inv is not None and rec.readings_inv.shape != (d,)):
            raise CorruptRecordError(f"{path.name} is inconsistent with the manifest (scene {rec.scene_id}, "
                                     f"{rec.readings.shape} readings, expected {d})")
        return rec

    def records(self) -> list[CaptureRecord]:
        return [self.read(i) for i in self.scene_ids()]

    def verify(self) -> list[str]:
        """Problems found (unreadable records, stray files); empty when the store is sound."""
        problems = []
        for i in self.scene_ids():
            try:
                self.read(i)
            except CorruptRecordError as exc:
                problems.append(str(exc))
        stray = [p.name for p in self.records_dir.iterdir() if not p.name.startswith("scene-")]
        if stray:
            problems.append(f"stray files in records/: {stray}")
        return problems

