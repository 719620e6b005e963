"""Packing 1-bit masks into 24-bit RGB video frames for the DLP4500 video port.

In pattern-sequence mode with the video port as source, the DLPC350 shows the 24 bit planes of every
incoming RGB frame as 24 binary patterns, in the order G0..G7, R0..R7, B0..B7 (1-bit pattern numbers 0-23
of TI DLPU010 table 2-66; ``G0`` is the least significant bit of the green channel). ``d`` patterns are
streamed as ``ceil(d / 24)`` frames; the unused planes of the last frame are all-off.

Geometry: masks (normally ``256 x 256``) are placed into the ``1140 x 912`` (rows x columns) DMD frame at
``offset = (x0, y0)`` with every mask pixel covering ``scale = (sx, sy)`` mirrors (columns x rows). The
DLP4500 has a diamond array whose rows are half as far apart as its columns, so ``sy = 2 * sx`` keeps mask
pixels square; the default ``(2, 4)`` maps 256 x 256 masks onto 512 x 1024 mirrors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "PLANES_PER_FRAME",
    "PLANE_NAMES",
    "DMD_WIDTH",
    "DMD_HEIGHT",
    "MaskGeometryError",
    "DMDGeometry",
    "plane_channel_bit",
    "sequence_slots",
    "frame_map",
    "pack_planes",
    "unpack_frames",
    "pack_masks",
    "validate_binary_masks",
    "display_sequence",
]

PLANES_PER_FRAME = 24
DMD_WIDTH = 912  # columns of the DLP4500 micromirror array
DMD_HEIGHT = 1140  # rows
_CHANNEL_ORDER = ("G", "R", "B")  # bit-plane order within a frame
_RGB_INDEX = {"R": 0, "G": 1, "B": 2}  # channel index in an RGB frame array
PLANE_NAMES = tuple(f"{c}{b}" for c in _CHANNEL_ORDER for b in range(8))


class MaskGeometryError(ValueError):
    """Masks do not fit the DMD (wrong size, not binary, or the ROI leaves the mirror array)."""


def plane_channel_bit(plane: int) -> tuple[int, int]:
    """``(rgb_channel_index, bit)`` carrying bit plane ``plane`` (0..23); e.g. 0 -> (1, 0) = G0, 8 -> (0, 0) = R0."""
    if not 0 <= plane < PLANES_PER_FRAME:
        raise ValueError(f"bit plane must be in [0, {PLANES_PER_FRAME - 1}], got {plane}")
    return _RGB_INDEX[_CHANNEL_ORDER[plane // 8]], plane % 8


@dataclass(frozen=True)
class DMDGeometry:
    """Where masks land on the mirror array.

    Attributes:
        width, height: mirror array size (912 x 1140 for the DLP4500).
        offset: ``(x0, y0)`` top-left mirror (column, row) of the mask region of interest.
        scale: ``(sx, sy)`` mirrors per mask pixel along columns and rows.
        mask_shape: ``(H, W)`` of one mask.
    """

    width: int = DMD_WIDTH
    height: int = DMD_HEIGHT
    offset: tuple[int, int] = (200, 58)
    scale: tuple[int, int] = (2, 4)
    mask_shape: tuple[int, int] = (256, 256)

    def __post_init__(self) -> None:
        sx, sy = self.scale
        x0, y0 = self.offset
        if sx < 1 or sy < 1:
            raise MaskGeometryError(f"ROI scale must be >= 1 mirror per mask pixel, got {self.scale}")
        if x0 < 0 or y0 < 0:
            raise MaskGeometryError(f"ROI offset must be non-negative, got {self.offset}")
        h, w = self.mask_shape
        if x0 + w * sx > self.width or y0 + h * sy > self.height:
            raise MaskGeometryError(
                f"{h}x{w} masks at scale (sx={sx}, sy={sy}) from offset (x0={x0}, y0={y0}) cover columns "
                f"{x0}..{x0 + w * sx - 1} and rows {y0}..{y0 + h * sy - 1}, outside the {self.width}x{self.height} "
                "mirror array; reduce dmd.roi.scale or dmd.roi.offset in the rig config"
            )

    @property
    def roi(self) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)`` mirror bounds of the mask region (exclusive ends)."""
        (x0, y0), (sx, sy), (h, w) = self.offset, self.scale, self.mask_shape
        return x0, y0, x0 + w * sx, y0 + h * sy

    @classmethod
    def centred(cls, scale: tuple[int, int] = (2, 4), mask_shape: tuple[int, int] = (256, 256),
                width: int = DMD_WIDTH, height: int = DMD_HEIGHT) -> DMDGeometry:
        """ROI centred on the mirror array."""
        x0 = (width - mask_shape[1] * scale[0]) // 2
        y0 = (height - mask_shape[0] * scale[1]) // 2
        return cls(width, height, (max(x0, 0), max(y0, 0)), tuple(scale), tuple(mask_shape))  # type: ignore[arg-type]

    def place(self, small: np.ndarray) -> np.ndarray:
        """Upscale ``[..., H, W, C]`` mask-grid frames into full ``[..., height, width, C]`` frames (zeros outside)."""
        (sx, sy), (x0, y0, x1, y1) = self.scale, self.roi
        big = np.repeat(np.repeat(small, sy, axis=-3), sx, axis=-2)
        out = np.zeros(small.shape[:-3] + (self.height, self.width, small.shape[-1]), dtype=small.dtype)
        out[..., y0:y1, x0:x1, :] = big
        return out

    def extract(self, full: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`place` for block-constant frames: ``[..., height, width, C] -> [..., H, W, C]``."""
        (sx, sy), (x0, y0, x1, y1) = self.scale, self.roi
        return full[..., y0:y1:sy, x0:x1:sx, :]


def validate_binary_masks(masks: np.ndarray, geometry: DMDGeometry, expected_count: int | None = None) -> None:
    """Raise :class:`MaskGeometryError` unless ``masks`` is ``[d, H, W]`` uint8/bool with values in {0, 1}
    matching ``geometry.mask_shape`` (and ``expected_count`` masks when given)."""
    if not isinstance(masks, np.ndarray) or masks.ndim != 3:
        shape = getattr(masks, "shape", None)
        raise MaskGeometryError(f"masks must be a [d, H, W] array, got {type(masks).__name__} with shape {shape}")
    if masks.dtype not in (np.uint8, np.bool_):
        raise MaskGeometryError(f"DMD masks must be 1-bit uint8 (0/1), got dtype {masks.dtype}; export them with "
                                "lsi.physics.mask_files.save_masks(..., bits=1)")
    if tuple(masks.shape[1:]) != tuple(geometry.mask_shape):
        raise MaskGeometryError(
            f"masks are {masks.shape[1]}x{masks.shape[2]} but the rig's DMD region of interest expects "
            f"{geometry.mask_shape[0]}x{geometry.mask_shape[1]} masks (dmd.roi.mask_shape in the rig config)"
        )
    if masks.dtype == np.uint8 and masks.size and int(masks.max()) > 1:
        raise MaskGeometryError(f"DMD masks must be binary (0/1); found value {int(masks.max())}. "
                                "Multi-bit masks cannot be shown as 1-bit patterns")
    if expected_count is not None and masks.shape[0] != expected_count:
        raise MaskGeometryError(f"the rig expects {expected_count} masks (dmd.expected_masks) but the file holds "
                                f"{masks.shape[0]}")


def sequence_slots(n_patterns: int) -> np.ndarray:
    """``[n, 2]`` int array: (frame, plane) of sequence position ``k`` = ``(k // 24, k % 24)``."""
    k = np.arange(n_patterns)
    return np.stack([k // PLANES_PER_FRAME, k % PLANES_PER_FRAME], axis=1)


def frame_map(order: list[int] | np.ndarray, complementary: bool = False,
              offset: int = 0) -> dict[str, list[list[int]]]:
    """Which frame and bit plane carried each mask (indexed by mask index, not display position).

    Display position ``p`` shows mask ``order[p]``; with ``complementary`` every mask is followed by its
    inverse (positions ``2p`` and ``2p + 1``); ``offset`` planes (the head alignment marker) come first.
    Returns ``{"mask": [[frame, plane], ...]}`` plus ``"inverse"`` when complementary; plane names are
    ``PLANE_NAMES[plane]``.
    """
    order = np.asarray(order, dtype=int)
    d = order.size
    step = 2 if complementary else 1
    slots = sequence_slots(d * step + offset)
    pos = np.empty(d, dtype=int)
    pos[order] = np.arange(d) * step + offset
    out = {"mask": slots[pos].tolist()}
    if complementary:
        out["inverse"] = slots[pos + 1].tolist()
    return out


def pack_planes(planes: np.ndarray) -> np.ndarray:
    """Pack ``[n, H, W]`` binary planes (display order) into ``[ceil(n/24), H, W, 3]`` uint8 RGB frames.

    Plane ``k`` goes to frame ``k // 24`` and bit plane ``k % 24`` (G0..G7, R0..R7, B0..B7); the unused
    planes of the last frame stay 0 (all mirrors off).
    """
    if planes.ndim != 3:
        raise ValueError(f"planes must be [n, H, W], got shape {planes.shape}")
    n, h, w = planes.shape
    frames = np.zeros((math.ceil(n / PLANES_PER_FRAME), h, w, 3), dtype=np.uint8)
    bits = (planes != 0).astype(np.uint8)
    for k in range(n):
        ch, bit = plane_channel_bit(k % PLANES_PER_FRAME)
        frames[k // PLANES_PER_FRAME, :, :, ch] |= bits[k] << bit
    return frames


def unpack_frames(frames: np.ndarray, n: int | None = None) -> np.ndarray:
    """Inverse of :func:`pack_planes`: ``[F, H, W, 3]`` uint8 -> ``[n or 24F, H, W]`` uint8 in {0, 1}."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be [F, H, W, 3] uint8, got {frames.shape} {frames.dtype}")
    total = frames.shape[0] * PLANES_PER_FRAME
    n = total if n is None else n
    if not 0 <= n <= total:
        raise ValueError(f"cannot unpack {n} planes from {frames.shape[0]} frames ({total} planes)")
    out = np.empty((n,) + frames.shape[1:3], dtype=np.uint8)
    for k in range(n):
        ch, bit = plane_channel_bit(k % PLANES_PER_FRAME)
        out[k] = (frames[k // PLANES_PER_FRAME, :, :, ch] >> bit) & 1
    return out


def display_sequence(masks: np.ndarray, order: list[int] | np.ndarray | None = None,
                     complementary: bool = False) -> np.ndarray:
    """Masks in display order ``[d or 2d, H, W]`` (``mask, inverse, mask, inverse, ...`` when complementary)."""
    order = np.arange(masks.shape[0]) if order is None else np.asarray(order, dtype=int)
    seq = (masks[order] != 0).astype(np.uint8)
    if complementary:
        inv = 1 - seq
        seq = np.stack([seq, inv], axis=1).reshape((-1,) + seq.shape[1:])
    return seq


def pack_masks(masks: np.ndarray, geometry: DMDGeometry, order: list[int] | np.ndarray | None = None,
               complementary: bool = False) -> np.ndarray:
    """Full-resolution video frames ``[F, height, width, 3]`` uint8 showing ``masks`` in display order."""
    validate_binary_masks(masks, geometry)
    return geometry.place(pack_planes(display_sequence(masks, order, complementary)))

