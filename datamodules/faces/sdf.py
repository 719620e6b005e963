"""Signed-distance shapes on batched coordinate grids (negative inside, in local units).

All functions take local coordinates ``x, y [B,h,w]`` and per-item parameters as ``[B]`` tensors or floats.
Distances are first-order accurate near the zero level set, which is all anti-aliasing and the
segmentation threshold (coverage >= 0.5 <=> d <= 0) need; far away they only need the right sign.
"""

from __future__ import annotations

import torch
from torch import Tensor


def col(v: Tensor | float) -> Tensor | float:
    """``[B]`` -> ``[B,1,1]`` for broadcasting against grids (floats and grids pass through)."""
    return v.view(-1, 1, 1) if isinstance(v, Tensor) and v.dim() == 1 else v


def ellipse(x: Tensor, y: Tensor, rx, ry, cx=0.0, cy=0.0) -> Tensor:
    """Ellipse with radii ``rx, ry`` centred at ``(cx, cy)``: ``(|p/r|^2 - 1) / |grad|``."""
    rx, ry, cx, cy = col(rx), col(ry), col(cx), col(cy)
    X = (x - cx) / rx if isinstance(cx, Tensor) or cx != 0.0 else x / rx
    Y = (y - cy) / ry if isinstance(cy, Tensor) or cy != 0.0 else y / ry
    f = X * X + Y * Y - 1.0
    g = (X / rx).square_().add_((Y / ry).square_()).rsqrt_()
    return f.mul_(g).mul_(0.5)


def ellipse_inv(x: Tensor, y: Tensor, irx, iry) -> Tensor:
    """Ellipse centred at the origin given inverse radii (may vary per pixel, e.g. a different lower half)."""
    X = x * irx
    Y = y * iry
    g = (X * irx).square_().add_((Y * iry).square_()).rsqrt_()
    return X.square_().add_(Y.square_()).sub_(1.0).mul_(g).mul_(0.5)


def step(v: Tensor) -> Tensor:
    """1 where ``v > 0``, 0 where ``v <= 0`` (arithmetic only: comparisons are slow on CPU)."""
    return (v * 1e30).clamp_(0.0, 1.0)


def circle(x: Tensor, y: Tensor, r, cx=0.0, cy=0.0) -> Tensor:
    cx, cy, r = col(cx), col(cy), col(r)
    return torch.sqrt((x - cx).square_().add_((y - cy).square_())).sub_(r)


def box(x: Tensor, y: Tensor, hx, hy, r=0.0, cx=0.0, cy=0.0) -> Tensor:
    """Rounded box of half-sizes ``hx, hy`` and corner radius ``r`` (``r <= min(hx, hy)``)."""
    hx, hy, r, cx, cy = col(hx), col(hy), col(r), col(cx), col(cy)
    qx = (x - cx).abs_().sub_(hx - r)
    qy = (y - cy).abs_().sub_(hy - r)
    outside = torch.sqrt(qx.clamp(min=0).square_().add_(qy.clamp(min=0).square_()))
    inside = torch.maximum(qx, qy).clamp_(max=0)
    return outside.add_(inside).sub_(r)


def band(y: Tensor, top: Tensor, bottom: Tensor) -> Tensor:
    """Region ``top(x) <= y <= bottom(x)`` given the two curves evaluated on the grid (vertical distance)."""
    return torch.maximum(top - y, y - bottom)


def hslab(x: Tensor, half: Tensor | float, cx=0.0) -> Tensor:
    """Vertical slab ``|x - cx| <= half``."""
    cx, half = col(cx), col(half)
    return (x - cx).abs_().sub_(half)


def union(*ds: Tensor) -> Tensor:
    out = ds[0]
    for d in ds[1:]:
        out = torch.minimum(out, d)
    return out


def intersect(*ds: Tensor) -> Tensor:
    out = ds[0]
    for d in ds[1:]:
        out = torch.maximum(out, d)
    return out


def subtract(a: Tensor, b: Tensor) -> Tensor:
    """``a`` minus ``b``."""
    return torch.maximum(a, -b)
