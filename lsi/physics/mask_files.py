"""The mask file format: ``masks.npy`` plus a JSON sidecar.

* ``<name>.npy``: array of shape ``(count, height, width)`` (normally ``(d, 256, 256)``), dtype ``uint8``
  (``uint16`` for 9-16 bit masks), values in ``{0, ..., 2**bits - 1}`` (``{0, 1}`` for binary DMD masks).
  Stored with ``np.save``; loaded with ``allow_pickle=False``.
* ``<name>.json``: :class:`MaskMeta` (ratio, bits, count, height, width, sha256, order, created, source).
  ``sha256`` is :func:`masks_sha256` of the array, so a ``.npy`` edited after export is detected.
  ``order`` is a permutation of ``range(count)``: the display order on the DMD.

Both files are written atomically (temporary file in the same directory, fsync, ``os.replace``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

import numpy as np

__all__ = [
    "MaskFormatError",
    "MaskFileNotFoundError",
    "MaskMeta",
    "validate_masks",
    "masks_sha256",
    "sidecar_path",
    "save_masks",
    "load_masks",
]

_MAX_BITS = 16


class MaskFormatError(ValueError):
    """A mask array, ``.npy`` file or JSON sidecar does not follow the mask file format."""


class MaskFileNotFoundError(MaskFormatError, FileNotFoundError):
    """The mask ``.npy`` file or its JSON sidecar does not exist."""


@dataclass
class MaskMeta:
    """JSON sidecar contents describing a mask file."""

    ratio: int
    bits: int
    count: int
    height: int
    width: int
    sha256: str
    order: list[int] = field(default_factory=list)
    created: str = ""
    source: str = ""

    def to_json(self) -> str:
        """Serialise to an indented JSON string."""
        return json.dumps(dataclasses.asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> MaskMeta:
        """Parse a sidecar; raises :class:`MaskFormatError` on malformed JSON or missing/extra keys."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise MaskFormatError(f"mask sidecar is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise MaskFormatError(f"mask sidecar must be a JSON object, got {type(data).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [n for n in ("ratio", "bits", "count", "height", "width", "sha256") if n not in data]
        if missing:
            raise MaskFormatError(f"mask sidecar is missing key(s) {missing}; expected keys {names}")
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise MaskFormatError(f"mask sidecar has unknown key(s) {unknown}; expected keys {names}")
        try:
            meta = cls(
                ratio=int(data["ratio"]),
                bits=int(data["bits"]),
                count=int(data["count"]),
                height=int(data["height"]),
                width=int(data["width"]),
                sha256=str(data["sha256"]),
                order=[int(i) for i in data.get("order", [])] or list(range(int(data["count"]))),
                created=str(data.get("created", "")),
                source=str(data.get("source", "")),
            )
        except (TypeError, ValueError) as exc:
            raise MaskFormatError(f"mask sidecar has a value of the wrong type: {exc}") from exc
        return meta


def _check_bits(bits: int) -> None:
    if not isinstance(bits, (int, np.integer)) or not 1 <= int(bits) <= _MAX_BITS:
        raise MaskFormatError(f"bits must be an integer in [1, {_MAX_BITS}], got {bits!r}")


def validate_masks(masks: np.ndarray, bits: int = 1, shape: tuple[int, int] | None = (256, 256)) -> None:
    """Check a mask array against the format; raise :class:`MaskFormatError` saying what is wrong.

    Args:
        masks: ``(count, height, width)`` integer array.
        bits: bit depth; values must lie in ``{0, ..., 2**bits - 1}``.
        shape: required ``(height, width)``, or None to accept any.
    """
    _check_bits(bits)
    if not isinstance(masks, np.ndarray):
        raise MaskFormatError(f"masks must be a numpy array, got {type(masks).__name__}")
    if masks.ndim != 3:
        raise MaskFormatError(
            f"masks must have 3 dimensions (count, height, width), got {masks.ndim} with shape {masks.shape}; "
            "stack single masks with np.stack(list_of_masks)"
        )
    if masks.shape[0] == 0:
        raise MaskFormatError(f"mask array holds no masks (shape {masks.shape}); count must be >= 1")
    if shape is not None and tuple(masks.shape[1:]) != tuple(shape):
        raise MaskFormatError(
            f"each mask must be {shape[0]}x{shape[1]} (the DMD grid), got {masks.shape[1]}x{masks.shape[2]} "
            f"(array shape {masks.shape})"
        )
    want = np.uint8 if bits <= 8 else np.uint16
    if masks.dtype != want:
        hint = (
            "; binarise with `(m > 0.5).astype(np.uint8)`"
            if bits == 1
            else f"; convert with `np.round(m * {2 ** bits - 1}).astype(np.{np.dtype(want).name})` for masks in [0, 1]"
        )
        raise MaskFormatError(f"{bits}-bit masks must have dtype {np.dtype(want).name}, got {masks.dtype}{hint}")
    top = 2**bits - 1
    bad = masks > top
    n_bad = int(np.count_nonzero(bad))
    if n_bad:
        values = np.unique(masks[bad])
        shown = ", ".join(str(int(v)) for v in values[:8]) + (", ..." if values.size > 8 else "")
        if bits == 1:
            raise MaskFormatError(
                f"1-bit masks must contain only 0 and 1, but {n_bad} pixel(s) hold other values ({shown}); "
                "binarise with `(m > 0.5).astype(np.uint8)`"
            )
        raise MaskFormatError(
            f"{bits}-bit masks must hold values in [0, {top}], but {n_bad} pixel(s) are above {top} "
            f"(values {shown}); rescale or pass the right bits"
        )


def masks_sha256(masks: np.ndarray) -> str:
    """SHA-256 (hex) of the dtype, shape and C-order bytes of ``masks``."""
    arr = np.ascontiguousarray(masks)
    h = hashlib.sha256()
    h.update(f"{arr.dtype.str}|{'x'.join(str(s) for s in arr.shape)}|".encode())
    h.update(arr.tobytes())
    return h.hexdigest()


def sidecar_path(path: str | os.PathLike) -> Path:
    """The JSON sidecar next to a ``.npy`` mask file: ``masks.npy`` -> ``masks.json``."""
    p = Path(path)
    if p.suffix != ".npy":
        raise MaskFormatError(f"mask files must end with .npy, got {str(p)!r}")
    return p.with_suffix(".json")


def _check_order(order: list[int], count: int) -> list[int]:
    order = [int(i) for i in order]
    if sorted(order) != list(range(count)):
        raise MaskFormatError(
            f"order must be a permutation of range({count}) (each mask index once), got {len(order)} entries "
            f"{order[:10]}{'...' if len(order) > 10 else ''}"
        )
    return order


def _atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename durable; not possible on every platform
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def save_masks(
    path: str | os.PathLike,
    masks: np.ndarray,
    *,
    ratio: int,
    bits: int = 1,
    order: list[int] | None = None,
    source: str = "",
) -> MaskMeta:
    """Validate and write ``masks`` to ``path`` (``.npy``) and its JSON sidecar, both atomically.

    Args:
        path: target ``.npy`` path; the sidecar is the same path with ``.json``.
        masks: ``(count, H, W)`` uint8 array with values in ``{0..2**bits-1}``.
        ratio: compression ratio the masks were trained for (``H*W // d``).
        bits: bit depth of the mask values.
        order: display order (permutation of ``range(count)``); default identity.
        source: free text describing where the masks come from (checkpoint, init, ...).
    Returns:
        The :class:`MaskMeta` written to the sidecar.
    """
    path = Path(path)
    json_path = sidecar_path(path)
    validate_masks(masks, bits=bits, shape=None)
    if int(ratio) < 1:
        raise MaskFormatError(f"ratio must be a positive integer, got {ratio!r}")
    count = int(masks.shape[0])
    meta = MaskMeta(
        ratio=int(ratio),
        bits=int(bits),
        count=count,
        height=int(masks.shape[1]),
        width=int(masks.shape[2]),
        sha256=masks_sha256(masks),
        order=_check_order(order if order is not None else list(range(count)), count),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        source=str(source),
    )
    arr = np.ascontiguousarray(masks)
    _atomic_write(path, lambda fh: np.save(fh, arr, allow_pickle=False))
    _atomic_write(json_path, lambda fh: fh.write(meta.to_json().encode("utf-8")))
    return meta


def load_masks(
    path: str | os.PathLike, *, bits: int | None = None, shape: tuple[int, int] | None = (256, 256)
) -> tuple[np.ndarray, MaskMeta]:
    """Load and verify a mask file and its sidecar.

    Args:
        path: the ``.npy`` file.
        bits: expected bit depth (None: take it from the sidecar).
        shape: required ``(H, W)`` of each mask, or None to accept any.
    Returns:
        ``(masks, meta)`` with ``masks`` of shape ``(count, H, W)``.
    Raises:
        MaskFileNotFoundError: the ``.npy`` or the sidecar is missing.
        MaskFormatError: unreadable file, hash mismatch, sidecar inconsistent with the array, or invalid masks.
    """
    path = Path(path)
    json_path = sidecar_path(path)
    if not path.is_file():
        raise MaskFileNotFoundError(f"mask file {str(path)!r} does not exist")
    try:
        masks = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise MaskFormatError(
            f"cannot read {str(path)!r} as a .npy array (pickled objects are refused): {exc}"
        ) from exc
    if not isinstance(masks, np.ndarray):
        raise MaskFormatError(f"{str(path)!r} holds a {type(masks).__name__}, expected a single array")
    if not json_path.is_file():
        d = masks.shape[0] if masks.ndim == 3 and masks.shape[0] else "d"
        ratio = masks.shape[1] * masks.shape[2] // masks.shape[0] if masks.ndim == 3 and masks.shape[0] else "R"
        raise MaskFileNotFoundError(
            f"sidecar {str(json_path)!r} for {str(path)!r} is missing; if the {d} masks are trustworthy create one "
            f"with: python -c \"import numpy as np; from lsi.physics.mask_files import save_masks; p='{path}'; "
            f"save_masks(p, np.load(p), ratio={ratio}, bits=1, source='manual')\""
        )
    meta = MaskMeta.from_json(json_path.read_text(encoding="utf-8"))
    digest = masks_sha256(masks)
    if digest != meta.sha256:
        raise MaskFormatError(
            f"{str(path)!r} does not match its sidecar hash (sha256 {digest[:12]}... vs {meta.sha256[:12]}... in "
            f"{json_path.name}): the .npy was modified after export; re-export it with "
            "lsi.physics.mask_files.save_masks"
        )
    if bits is not None and int(bits) != meta.bits:
        raise MaskFormatError(f"{str(path)!r} holds {meta.bits}-bit masks but {bits}-bit masks were requested")
    validate_masks(masks, bits=meta.bits, shape=shape)
    if (meta.count, meta.height, meta.width) != tuple(masks.shape):
        raise MaskFormatError(
            f"sidecar {json_path.name} describes {meta.count}x{meta.height}x{meta.width} masks but the array is "
            f"{'x'.join(map(str, masks.shape))}"
        )
    _check_order(meta.order, meta.count)
    return masks, meta
