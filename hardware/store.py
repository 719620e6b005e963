"""Capture store: one directory, a typed manifest and one append-only record per scene.

Layout::

    <out>/manifest.json            CaptureManifest (hardware.manifest); written at creation, only its
                                   ``stats`` block is rewritten (atomically) at the end of each session
    <out>/events.jsonl             append-only log (sessions, errors, interruptions, quarantined records)
    <out>/records/scene-0000042.npz one record per scene (numpy .npz, no pickle)
    <out>/quarantine/              unreadable records moved aside on resume (then captured again)
    <out>/.lock                    held (flock) by the writing process

Resuming requires the same identity (:meth:`CaptureManifest.check_resumable`) and re-reads every record:
a record that cannot be read (empty, truncated, inconsistent) is moved to ``quarantine/`` with a
``record_quarantined`` event and its scene is captured again. Events are appended one JSON line at a
time; a line torn by a crash mid-write is terminated before the next append, and :func:`read_events`
skips and counts torn lines.

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
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hardware.calibration import Reference
from hardware.manifest import (
    SCHEMA,
    CaptureManifest,
    ManifestMismatchError,
    MaskInfo,
    MaskMismatchError,
    SceneSetInfo,
    StoreError,
    TimingInfo,
    software_version,
)

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
    "read_events",
    "software_version",
]

_ROLES = ("before", "after")


class DuplicateRecordError(StoreError):
    """A record for this scene already exists (records are append-only)."""


class StoreLockedError(StoreError):
    """Another process is writing to this capture directory."""


class CorruptRecordError(StoreError):
    """A record file is unreadable or inconsistent with the manifest."""


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
    alignment: dict[str, Any] = field(default_factory=dict)  # marker check, recaptures, late frames

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
                                         "saturated_fraction": self.saturated_fraction,
                                         "alignment": self.alignment})),
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
                   saturated_fraction=float(meta["saturated_fraction"]), attempts=int(meta["attempts"]),
                   alignment=dict(meta.get("alignment", {})))


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
            resuming = path.is_file()
            if resuming:
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
            if resuming:
                store.quarantine_unreadable()
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
        """Append one JSON line to events.jsonl (flushed and fsynced), on a fresh line even after a torn write."""
        line = json.dumps({"t": time.time(), "event": kind, "pid": os.getpid(), **data}, default=str)
        with open(self.root / "events.jsonl", "a+b") as fh:
            end = fh.seek(0, os.SEEK_END)
            if end:
                fh.seek(end - 1)
                if fh.read(1) != b"\n":  # the previous writer died mid-line
                    line = "\n" + line
            fh.write((line + "\n").encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())

    def events(self) -> tuple[list[dict[str, Any]], int]:
        """The events of this store and the number of torn (unparseable) lines skipped."""
        return read_events(self.root / "events.jsonl")

    def quarantine_unreadable(self) -> list[str]:
        """Move every record that cannot be read to ``quarantine/`` (logged); returns their problems."""
        problems = []
        for sid in self.scene_ids():
            try:
                self.read(sid)
            except CorruptRecordError as exc:
                src = self.record_path(sid)
                qdir = self.root / "quarantine"
                qdir.mkdir(exist_ok=True)
                dst = qdir / f"{src.stem}-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}{src.suffix}"
                os.replace(src, dst)
                _fsync_dir(self.records_dir)
                self.log_event("record_quarantined", scene_id=sid, moved_to=f"quarantine/{dst.name}",
                               reason=str(exc))
                problems.append(str(exc))
        if problems:
            self.add_stats(quarantined=len(problems))
        return problems

    def add_stats(self, **counts: int) -> None:
        """Add ``counts`` to the manifest's ``stats`` block (atomic rewrite of manifest.json)."""
        if not self.writable:
            raise StoreError("store opened read-only")
        stats = dict(self.manifest.stats)
        for k, v in counts.items():
            stats[k] = int(stats.get(k, 0)) + int(v)
        self.manifest.stats = stats
        self._atomic_write(self.root / "manifest.json", self.manifest.to_json().encode("utf-8"))

    # -- reading ---------------------------------------------------------------------------------------------
    def read(self, scene_id: int) -> CaptureRecord:
        """Load and check one record."""
        path = self.record_path(scene_id)
        try:
            with np.load(path, allow_pickle=False) as z:
                rec = CaptureRecord.from_arrays(z)
        except FileNotFoundError:
            raise
        except (OSError, EOFError, ValueError, KeyError, TypeError, IndexError, zipfile.BadZipFile, zlib.error,
                json.JSONDecodeError) as exc:  # empty file: EOFError; truncated: BadZipFile / zlib.error
            size = path.stat().st_size if path.exists() else 0
            raise CorruptRecordError(f"{path.name} is unreadable ({size} bytes): {type(exc).__name__}: {exc}") \
                from exc
        d = self.manifest.masks.count
        if rec.scene_id != scene_id or rec.readings.shape != (d,) or (
                rec.readings_inv is not None and rec.readings_inv.shape != (d,)):
            raise CorruptRecordError(f"{path.name} is inconsistent with the manifest (scene {rec.scene_id}, "
                                     f"{rec.readings.shape} readings, expected {d})")
        return rec

    def records(self) -> list[CaptureRecord]:
        return [self.read(i) for i in self.scene_ids()]

    def verify(self) -> list[str]:
        """Problems found (unreadable, empty or truncated records, stray files); empty when the store is sound.
        Never raises for a bad record."""
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


def read_events(path: str | os.PathLike) -> tuple[list[dict[str, Any]], int]:
    """Events of an ``events.jsonl`` in order, skipping torn lines; returns ``(events, torn_count)``."""
    events, torn = [], 0
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return [], 0
    for line in raw.split(b"\n"):
        if not line.strip():
            continue
        try:
            ev = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            torn += 1
            continue
        if isinstance(ev, dict):
            events.append(ev)
        else:
            torn += 1
    return events, torn
