"""The 68 iBUG-300W landmarks, computed analytically from the same curves and frames as the pixels.

Order: jaw 0-16 (image-left to image-right along the outline), brows 17-21 / 22-26, nose bridge 27-30,
nostril base 31-35, eyes 36-41 (image-left eye) / 42-47, outer lips 48-59, inner lips 60-67. Points are in
normalised image coordinates (pixel centre / size), hidden points keep their geometric position.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .canvas import apply
from .layout import Layout
from .shapes import brow_centre, eye_lids, face_outline_point, mouth_curves, nose_dims
from .world import FaceParams

_JAW_T0 = 1.42     # outline angle of points 0 / 16 (0 = top of the head, pi = chin)


def _c(v: Tensor) -> Tensor:
    return v[:, None]


def _pts(frame: Tensor, x: Tensor, y: Tensor) -> Tensor:
    qx, qy = apply(frame, x, y)
    return torch.stack([qx, qy], -1)


def compute_landmarks(p: FaceParams, L: Layout) -> Tensor:
    """``[B,68,2]`` landmark positions in normalised image coordinates."""
    B = p.batch
    parts: list[Tensor] = []
    # jaw: outline angles from 2*pi - t0 (image-left, x < 0) through pi (chin) to t0 (image-right)
    t = torch.linspace(2 * math.pi - _JAW_T0, _JAW_T0, 17).expand(B, 17)
    jx, jy = face_outline_point(t, _c(p.face_a), _c(p.face_bu), _c(p.face_bl), _c(p.jaw_k), _c(p.jaw_sq))
    parts.append(_pts(L.face, jx, jy))
    # brows: five points along the centre line, image-left to image-right in both brows
    xs = torch.linspace(-0.9, 0.9, 5)[None] * _c(L.brow_w)
    for side, frame in zip((-1.0, 1.0), L.brows):
        parts.append(_pts(frame, xs, brow_centre(xs, _c(L.brow_w), _c(p.brow_arch), side)))
    # nose: bridge 27-30 down to the tip, base 31-35 across the nostrils
    top, ball_cy, rx, ry = nose_dims(p.nose_len, p.nose_w)
    f = torch.linspace(0.0, 1.0, 4)[None]
    by = _c(top) + 0.04 * _c(p.nose_len) + f * (_c(ball_cy) - _c(top) - 0.04 * _c(p.nose_len))
    parts.append(_pts(L.nose, torch.zeros_like(by), by))
    bx = torch.tensor([-0.62, -0.32, 0.0, 0.32, 0.62])[None] * _c(rx)
    parts.append(_pts(L.nose, bx, (_c(ball_cy) + 0.7 * _c(ry)).expand_as(bx)))
    # eyes: corner, upper lid x2, corner, lower lid x2 (clockwise on screen)
    ew = _c(p.eye_w)
    ex = torch.tensor([-1.0, -1 / 3, 1 / 3, 1.0, 1 / 3, -1 / 3])[None] * ew
    up, lo, _ = eye_lids(ex, ew)
    ey = torch.cat([up[:, :3], lo[:, 3:]], 1)
    for frame in L.eyes:
        parts.append(_pts(frame, ex, ey))
    # mouth
    w = _c(L.mouth_w)
    args = (w, _c(p.smile), _c(p.mouth_open), _c(L.lip_u), _c(L.lip_l))
    ox = torch.tensor([-1.0, -0.6, -0.26, 0.0, 0.26, 0.6, 1.0, 0.6, 0.3, 0.0, -0.3, -0.6])[None] * w
    c, ut, _, _, lb = mouth_curves(ox, *args)
    oy = torch.cat([c[:, :1], ut[:, 1:6], c[:, 6:7], lb[:, 7:]], 1)
    parts.append(_pts(L.mouth, ox, oy))
    ix = torch.tensor([-0.88, -0.45, 0.0, 0.45, 0.88, 0.45, 0.0, -0.45])[None] * w
    c, _, ub, lt, _ = mouth_curves(ix, *args)
    iy = torch.cat([c[:, :1], ub[:, 1:4], c[:, 4:5], lt[:, 5:]], 1)
    parts.append(_pts(L.mouth, ix, iy))
    out = torch.cat(parts, 1)
    if out.shape[1] != 68:
        raise RuntimeError(f"landmark assembly produced {out.shape[1]} points instead of 68")
    return out
