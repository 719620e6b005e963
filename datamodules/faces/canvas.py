"""Batched painter's canvas: planar RGB + class map, painted layer by layer inside per-layer crops.

Frames are batched affine maps ``F [B,3,3]`` from a shape's local coordinates to normalised image
coordinates (pixel ``(i, j)`` has centre ``((j + 0.5)/S, (i + 0.5)/S)``). A :class:`Crop` covers the pixels a
layer can touch: either one box shared by the whole batch (a view into the canvas, no copies) or one box per
item (gathered and scattered back) when the items' boxes are far apart relative to their size.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def affine(a: Tensor, b: Tensor, c: Tensor, d: Tensor, tx: Tensor, ty: Tensor) -> Tensor:
    """``[B,3,3]`` matrix ``[[a, b, tx], [c, d, ty], [0, 0, 1]]`` from ``[B]`` entries."""
    z, o = torch.zeros_like(a), torch.ones_like(a)
    return torch.stack([a, b, tx, c, d, ty, z, z, o], 1).view(-1, 3, 3)


def translate(tx: Tensor, ty: Tensor) -> Tensor:
    o, z = torch.ones_like(tx), torch.zeros_like(tx)
    return affine(o, z, z, o, tx, ty)


def rotate_scale(angle: Tensor, sx: Tensor | float = 1.0, sy: Tensor | float = 1.0) -> Tensor:
    """Rotation by ``angle`` (radians, clockwise on screen since y points down) after scaling x, y."""
    co, si = torch.cos(angle), torch.sin(angle)
    z = torch.zeros_like(angle)
    return affine(co * sx, -si * sy, si * sx, co * sy, z, z)


def apply(frame: Tensor, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Map local points ``x, y [B,N]`` through ``frame [B,3,3]``."""
    return (frame[:, 0, 0:1] * x + frame[:, 0, 1:2] * y + frame[:, 0, 2:3],
            frame[:, 1, 0:1] * x + frame[:, 1, 1:2] * y + frame[:, 1, 2:3])


class Canvas:
    """RGB image ``[B,3,S,S]`` and class map ``[B,S,S]`` (uint8) painted in painter's order."""

    def __init__(self, batch: int, size: int):
        self.batch, self.size = batch, size
        self.image = torch.zeros(batch, 3, size, size)
        self.seg = torch.zeros(batch, size, size, dtype=torch.uint8)
        self._cols = torch.arange(size, dtype=torch.float32)

    def crop(self, frame: Tensor, box: tuple[float, float, float, float] | Tensor, mode: str = "auto") -> Crop:
        """Crop covering the local box ``(x0, x1, y0, y1)`` (floats or ``[B,4]``) of ``frame`` for every item."""
        return Crop(self, frame, box, mode)

    def full(self, frame: Tensor) -> Crop:
        return Crop(self, frame, None, "full")


class Crop:
    """Pixels a layer may touch, with local coordinates ``x, y [B,h,w]`` of ``frame`` at the pixel centres."""

    def __init__(self, canvas: Canvas, frame: Tensor, box, mode: str):
        B, S = canvas.batch, canvas.size
        self.canvas, self.frame = canvas, frame
        if mode == "full":
            x0 = y0 = torch.zeros(B, dtype=torch.long)
            h = w = S
            self.gather = False
        else:
            if not isinstance(box, Tensor):
                box = torch.tensor(box, dtype=torch.float32).expand(B, 4)
            cx = torch.stack([box[:, 0], box[:, 1], box[:, 1], box[:, 0]], 1)
            cy = torch.stack([box[:, 2], box[:, 2], box[:, 3], box[:, 3]], 1)
            ix, iy = apply(frame, cx, cy)
            px0 = (ix.amin(1) * S - 1).floor().clamp(0, S).long()
            px1 = (ix.amax(1) * S + 1).ceil().clamp(0, S).long()
            py0 = (iy.amin(1) * S - 1).floor().clamp(0, S).long()
            py1 = (iy.amax(1) * S + 1).ceil().clamp(0, S).long()
            w_item = int((px1 - px0).max().clamp(min=1))
            h_item = int((py1 - py0).max().clamp(min=1))
            ux0, ux1, uy0, uy1 = int(px0.min()), int(px1.max()), int(py0.min()), int(py1.max())
            union = max(ux1 - ux0, 1) * max(uy1 - uy0, 1)
            self.gather = mode == "gather" or (mode == "auto" and B > 1 and union > 1.6 * w_item * h_item
                                                 and w_item * h_item < 0.12 * S * S)
            if self.gather:
                w, h = w_item, h_item
                x0 = torch.minimum(px0, torch.full_like(px0, S - w))
                y0 = torch.minimum(py0, torch.full_like(py0, S - h))
            else:
                w, h = max(ux1 - ux0, 1), max(uy1 - uy0, 1)
                x0 = torch.full((B,), min(ux0, S - w), dtype=torch.long)
                y0 = torch.full((B,), min(uy0, S - h), dtype=torch.long)
        self.h, self.w, self.x0, self.y0 = h, w, x0, y0
        if self.gather:
            ii = torch.arange(h)
            jj = torch.arange(w)
            flat = (y0[:, None, None] + ii[:, None]) * S + x0[:, None, None] + jj
            self._idx = flat.view(B, 1, h * w)
            self.rgb = canvas.image.view(B, 3, S * S).gather(2, self._idx.expand(B, 3, h * w)).view(B, 3, h, w)
            self.seg = canvas.seg.view(B, S * S).gather(1, self._idx[:, 0]).view(B, h, w)
        else:
            xs, ys = int(x0[0]), int(y0[0])
            self.rgb = canvas.image[:, :, ys:ys + h, xs:xs + w]
            self.seg = canvas.seg[:, ys:ys + h, xs:xs + w]
        self._coords: Tensor | None = None

    def local(self, frame: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Local coordinates ``x, y [B,h,w]`` of ``frame`` (default: the crop's frame) at the pixel centres."""
        frame = self.frame if frame is None else frame
        S = self.canvas.size
        g = torch.linalg.inv(frame)
        j = torch.arange(self.w, dtype=torch.float32)
        i = torch.arange(self.h, dtype=torch.float32)
        qx0 = (self.x0.float() + 0.5) / S
        qy0 = (self.y0.float() + 0.5) / S
        out = []
        for r in range(2):
            a, b, c = g[:, r, 0], g[:, r, 1], g[:, r, 2]
            row = (a / S)[:, None, None] * j[None, None, :]
            col = (b / S)[:, None, None] * i[None, :, None] + (a * qx0 + b * qy0 + c)[:, None, None]
            out.append(row + col)
        return out[0], out[1]

    def paint(self, cov: Tensor, rgb: Tensor, cls: int | None, alpha: Tensor | float | None = None) -> None:
        """Blend ``rgb`` (``[B,3]`` or ``[B,3,h,w]``) with weight ``cov*alpha``; label pixels with ``cov >= .5``."""
        if rgb.dim() == 2:
            rgb = rgb[:, :, None, None]
        w = cov if alpha is None else cov * (alpha if not isinstance(alpha, Tensor) else alpha.view(-1, 1, 1))
        self.rgb.lerp_(rgb, w[:, None])
        if cls is not None:
            self.seg.masked_fill_(cov >= 0.5, cls)

    def commit(self) -> None:
        """Write a gathered crop back into the canvas (no-op for view crops)."""
        if self.gather:
            B, S = self.canvas.batch, self.canvas.size
            n = self.h * self.w
            self.canvas.image.view(B, 3, S * S).scatter_(2, self._idx.expand(B, 3, n), self.rgb.reshape(B, 3, n))
            self.canvas.seg.view(B, S * S).scatter_(1, self._idx[:, 0], self.seg.reshape(B, n))


def coverage(d: Tensor, k: Tensor) -> Tensor:
    """Anti-aliased coverage ``clamp(0.5 - d * k, 0, 1)`` of a signed distance ``d`` (``k`` = pixels/unit)."""
    return (0.5 - d * k).clamp_(0.0, 1.0)


def pixels_per_unit(size: int, scale: Tensor) -> Tensor:
    """``[B,1,1]`` pixels per head unit."""
    return (size * scale).view(-1, 1, 1)


__all__ = ["Canvas", "Crop", "affine", "translate", "rotate_scale", "apply", "coverage", "pixels_per_unit",
           "math"]
