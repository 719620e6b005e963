"""Pose and feature placement: batched affine frames (local -> normalised image) for every part of a scene.

* body frame: translation + scale (neck, clothes, necklace);
* head frame: body frame plus roll about the neck pivot;
* feature frames: head frame, then the feature centre moved by yaw on a cylinder (features at lateral
  position ``x0`` on a cylinder of radius ``R`` move to ``R sin(asin(x0/R) + yaw)`` and are foreshortened by
  the cosine ratio), an optional in-plane tilt and the foreshortening as an x-scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .canvas import affine, rotate_scale, translate
from .shapes import nose_dims
from .world import FaceParams

HEAD_ORIGIN = (0.5, 0.52)   # image position of the face centre at zero shift
PIVOT_Y = 0.30              # roll pivot (top of the neck) in head units below the face centre


def _yaw(x0: Tensor, radius: Tensor, yaw: Tensor) -> tuple[Tensor, Tensor]:
    phi = torch.asin((x0 / radius).clamp(-0.999, 0.999))
    return radius * torch.sin(phi + yaw), (torch.cos(phi + yaw) / torch.cos(phi)).clamp(min=0.25)


@dataclass
class Layout:
    """Frames ``[B,3,3]`` and derived feature sizes ``[B]`` (head units) of a batch of scenes."""

    scale: Tensor
    body: Tensor
    head: Tensor
    face: Tensor
    face_dx: Tensor
    eyes: tuple[Tensor, Tensor]
    eye_x: tuple[Tensor, Tensor]
    eye_fx: tuple[Tensor, Tensor]
    brows: tuple[Tensor, Tensor]
    ears: tuple[Tensor, Tensor]
    ear_fx: tuple[Tensor, Tensor]
    nose: Tensor
    mouth: Tensor
    mouth_y: Tensor
    mouth_w: Tensor
    lip_u: Tensor
    lip_l: Tensor
    brow_w: Tensor
    hairline: Tensor
    hat_line: Tensor


class _Subset:
    """Read-only view of a subset of a batch of ``FaceParams`` / ``Layout``: fields are indexed on first use."""

    def __init__(self, parent, items: Tensor):
        self._parent, self._items = parent, items

    def __getattr__(self, name: str):
        v = getattr(self._parent, name)
        if isinstance(v, tuple):
            v = tuple(t[self._items] for t in v)
        elif isinstance(v, Tensor):
            v = v[self._items]
        else:
            return v
        setattr(self, name, v)
        return v

    @property
    def batch(self) -> int:
        return int(self._items.numel())


def subset(mask: Tensor, p: FaceParams, L: Layout, k: Tensor):
    """``(items, p, L, k)`` restricted to the items where ``mask`` is nonzero (``items`` is ``None`` when that
    is the whole batch), or ``None`` if there are none. ``p`` and ``L`` of a proper subset are lazy views."""
    items = torch.nonzero(mask > 0).flatten()
    if items.numel() == 0:
        return None
    if items.numel() == mask.numel():
        return None, p, L, k
    return items, _Subset(p, items), _Subset(L, items), k[items]


def make_layout(p: FaceParams) -> Layout:
    B = p.batch
    o = torch.ones(B)
    z = torch.zeros(B)
    s = p.scale
    cx, cy = HEAD_ORIGIN[0] + p.shift_x, HEAD_ORIGIN[1] + p.shift_y
    body = affine(s, z, z, s, cx, cy)
    # head: q = c + s*pivot + s R(roll) (h - pivot)
    head = translate(cx, cy + s * PIVOT_Y) @ rotate_scale(p.roll, s, s) @ translate(z, -PIVOT_Y * o)
    radius = p.face_a * 1.12
    face_dx = 0.28 * radius * torch.sin(p.yaw)
    face = head @ translate(face_dx, z)
    eyes, eye_x, eye_fx, brows, ears, ear_fx = [], [], [], [], [], []
    for side in (-1.0, 1.0):
        ex, fx = _yaw(side * p.eye_sep, radius, p.yaw)
        eye_x.append(ex)
        eye_fx.append(fx)
        tilt = -side * p.eye_tilt
        eyes.append(head @ translate(ex, p.eye_y) @ rotate_scale(tilt, fx, o))
        bx, bfx = _yaw(side * (p.eye_sep + 0.1 * p.eye_w), radius, p.yaw)
        brows.append(head @ translate(bx, p.eye_y - p.brow_h) @ rotate_scale(-side * 0.05 * o, bfx, o))
        ax = torch.sin(side * 1.75 + p.yaw) * p.face_a
        ears.append(head @ translate(ax + face_dx * 0.5, p.eye_y + 0.05))
        ear_fx.append(0.55 + 0.45 * torch.sin(side * 1.75 + p.yaw).abs())
    # nose: bridge moves with the face surface, tip further (it sticks out): shear along y
    bridge_x, _ = _yaw(z, radius, p.yaw)
    tip_x = 1.4 * bridge_x
    L = p.nose_len
    _, ball_cy, _, _ = nose_dims(L, p.nose_w)
    shear = (tip_x - bridge_x) / ball_cy
    nose = head @ affine(o, shear, z, o, bridge_x, p.eye_y)
    mouth_y = p.eye_y + L + 0.072 + 0.6 * p.lip_t
    mouth_x, mfx = _yaw(z, radius * 1.08, p.yaw)
    mouth = head @ translate(mouth_x, mouth_y) @ rotate_scale(z, mfx, o)
    mouth_w = p.mouth_w * (1.0 + 1.6 * p.smile.clamp(min=0.0))
    brow_top = p.eye_y - p.brow_h - p.brow_arch - 0.6 * p.brow_t - 0.004    # highest point of the brows
    recede = 0.05 * p.male * ((p.age - 0.4) / 0.6).clamp(0, 1)
    hairline = torch.where(p.bangs > 0, brow_top - 0.004, brow_top - 0.075 - recede)
    return Layout(
        scale=s, body=body, head=head, face=face, face_dx=face_dx, eyes=tuple(eyes), eye_x=tuple(eye_x),
        eye_fx=tuple(eye_fx), brows=tuple(brows), ears=tuple(ears), ear_fx=tuple(ear_fx), nose=nose,
        mouth=mouth, mouth_y=mouth_y, mouth_w=mouth_w, lip_u=p.lip_t, lip_l=p.lip_t * 1.35,
        brow_w=p.eye_w * 1.3, hairline=hairline, hat_line=brow_top - 0.045,
    )
