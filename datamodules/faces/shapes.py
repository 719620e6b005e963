"""Parametric feature curves shared by the renderer and the landmark computation (so they agree exactly).

Every function is elementwise: parameters must already broadcast against the coordinates (``[B,1,1]`` for
pixel grids ``[B,h,w]``, ``[B,1]`` for point sets ``[B,N]``). Coordinates are each feature's local frame.
"""

from __future__ import annotations

import torch
from torch import Tensor

# ---- face outline: ellipse with upper/lower vertical radii, x-radius tapering towards the chin


def face_halfwidth_scale(y: Tensor, bl, jaw_k) -> Tensor:
    """Taper ``A(y)/a`` of the face outline: 1 above the centre, ``1 - k (y/bl)^2`` below."""
    t = (y / bl).clamp(min=0.0)
    return 1.0 - jaw_k * t * t


def face_outline_point(t: Tensor, a, bu, bl, jaw_k, jaw_sq) -> tuple[Tensor, Tensor]:
    """Outline point at angle ``t`` (0 = top, pi = chin).

    The outline is ``(x/A(y))^2 + P(y/B) = 1`` with ``B = bu`` above and ``bl`` below the centre and
    ``P(Y) = Y^2`` above, ``Y^2 (1 + sq (Y^2 - 1))`` below (``sq`` in [0,1) squares the jaw). With
    ``y = -B cos t`` the point is ``x = A(y) sqrt(1 - P)`` (sign of ``sin t``), exactly on the outline.
    """
    ct = torch.cos(t)
    lower = (ct <= 0).float()
    y = torch.where(ct > 0, -bu * ct, -bl * ct)
    y2 = ct * ct
    P = y2 * (1.0 + jaw_sq * lower * (y2 - 1.0))
    sign = torch.sign(torch.sin(t))
    return sign * a * face_halfwidth_scale(y, bl, jaw_k) * (1.0 - P).clamp(min=0.0).sqrt(), y


# ---- eye: almond between two parabolas meeting at the corners (+-w, 0)

EYE_UPPER, EYE_LOWER = 0.52, 0.32      # lid heights relative to the half-width


def eye_lids(x: Tensor, w) -> tuple[Tensor, Tensor, Tensor]:
    """``(upper, lower, slope)``: lid curves at ``x`` and the magnitude scale of their slope."""
    xn = x / w
    p = 1.0 - xn * xn
    return -EYE_UPPER * w * p, EYE_LOWER * w * p, xn


# ---- brow: arched centre line with thickness tapering to the outer end (side -1 image-left, +1 right)


def brow_centre(x: Tensor, bw, arch, side: float) -> Tensor:
    xn = x / bw
    q = (xn + side * 0.3) / 1.3
    return -arch * (1.0 - q * q)


def brow_thickness(x: Tensor, bw, t, side: float) -> Tensor:
    xn = (x / bw).clamp(-1.0, 1.0)
    return t * (1.0 - 0.5 * (side * xn + 1.0) * 0.5)


# ---- nose: tapered bridge from y = 0 (eye level) to the base at y = L, plus the nasal tip/alae ellipse

def nose_dims(L, w):
    """``(bridge_top, ball_cy, ball_rx, ball_ry)`` of a nose of length ``L`` and base half-width ``w``."""
    ry = 0.55 * w
    return 0.16 * L, L - ry, w, ry


def nose_bridge_halfwidth(y: Tensor, L, w) -> Tensor:
    t = (y / L).clamp(0.0, 1.0)
    return 0.22 * w + 0.45 * w * t * t


# ---- mouth: lips as bands between curves of x/w in [-1, 1]; corners at (+-w, c(+-w))

def mouth_curves(x: Tensor, w, smile, open_, tu, tl) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """``(c, upper_top, upper_bottom, lower_top, lower_bottom)`` at ``x`` (local units, y down)."""
    xn = x / w
    x2 = xn * xn
    sp = (1.0 - x2).clamp(min=0.0).sqrt()
    c = -smile * x2
    bow = 1.0 - 0.3 * (1.0 - xn.abs() / 0.24).clamp(min=0.0)
    half = 0.5 * open_ * sp
    ub = c - half
    lt = c + half
    return c, ub - tu * sp * bow, ub, lt, lt + tl * sp
