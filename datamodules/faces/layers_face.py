"""Small facial layers, each painted inside its own crop: eyes, brows, nose, mustache, mouth, eyeglasses."""

from __future__ import annotations

import torch
from torch import Tensor

from . import sdf
from .canvas import Canvas, coverage
from .layout import Layout, subset
from .sdf import col
from .shapes import (
    EYE_LOWER,
    EYE_UPPER,
    brow_centre,
    brow_thickness,
    eye_lids,
    mouth_curves,
    nose_bridge_halfwidth,
    nose_dims,
)
from .world import SEG, FaceParams

SCLERA = torch.tensor([0.94, 0.92, 0.9])
DARK = torch.tensor([0.07, 0.05, 0.05])


def _rgb(c: Tensor, B: int) -> Tensor:
    return c.expand(B, 3)


def _box(*cols: Tensor) -> Tensor:
    return torch.stack(cols, 1)


def iris_centre(p: FaceParams) -> tuple[Tensor, Tensor, Tensor]:
    """Iris centre and radius in the eye frame (``[B]`` each); gaze moves it inside the almond."""
    w = p.eye_w
    return p.gaze_x * 0.3 * w, p.gaze_y * 0.08 * w - 0.06 * w, 0.43 * w


def eyes(cv: Canvas, p: FaceParams, L: Layout, k: Tensor) -> None:
    B = p.batch
    w = p.eye_w
    wc = col(w)
    ix, iy, ri = iris_centre(p)
    for side, frame in enumerate(L.eyes):
        cls = SEG["l_eye" if side == 0 else "r_eye"]
        cr = cv.crop(frame, _box(-1.12 * w, 1.12 * w, -1.05 * w, 0.45 * w))
        x, y = cr.local()
        up, lo, xn = eye_lids(x, wc)
        xs = xn.square()
        d = torch.maximum((up - y).mul_((1 + 4 * EYE_UPPER ** 2 * xs).rsqrt()),
                          (y - lo).mul_((1 + 4 * EYE_LOWER ** 2 * xs).rsqrt_()))
        # upper-lid crease (decoration of the skin, no class change)
        crease = sdf.intersect((y - up * 1.5 + 0.12 * wc).abs_().sub_(0.03 * wc), xn.abs() - 0.85)
        cr.paint(coverage(crease, k), p.skin_rgb * 0.75, None, 0.6, keep_shade=True)
        shade = ((y - up).clamp_(0.0, 1.0) / (0.35 * wc)).clamp_(max=1.0).mul_(0.22).add_(0.78)
        cr.paint(coverage(d, k), _rgb(SCLERA, B), cls, shade=shade)
        di = torch.sqrt((x - col(ix)).square_().add_((y - col(iy)).square_()))
        ring = (di / col(ri)).clamp_(max=1.0).square_().mul_(-0.55).add_(1.25)
        cr.paint(coverage(torch.maximum(di - col(ri), d), k), p.eye_rgb, cls, shade=ring)
        cr.paint(coverage(torch.maximum(di - col(0.42 * ri), d), k), _rgb(DARK, B) * 0.4, cls)
        hl = sdf.circle(x, y, 0.13 * ri, ix - 0.35 * ri, iy - 0.38 * ri)
        cr.paint(coverage(torch.maximum(hl, d), k), torch.ones(B, 3), cls, 0.85)
        lash = sdf.intersect((y - up + 0.045 * wc).abs_().sub_(0.07 * wc), xn.abs() - 1.04)
        cr.paint(coverage(lash, k), _rgb(DARK, B), cls)
        lower = sdf.intersect((y - lo).abs_().sub_(0.02 * wc), xn.abs() - 0.95)
        cr.paint(coverage(lower, k), p.skin_rgb * 0.55, None, 0.5, keep_shade=True)
        cr.commit()


def brow_rgb(p: FaceParams) -> Tensor:
    dark = torch.where(p.hair_color[:, None] >= 2, 0.55, 0.85)
    return (p.hair_rgb * dark).clamp(0, 1)


def brows(cv: Canvas, p: FaceParams, L: Layout, k: Tensor) -> None:
    bw, t, arch = L.brow_w, p.brow_t, p.brow_arch
    for side, frame in enumerate(L.brows):
        sgn = -1.0 if side == 0 else 1.0
        cr = cv.crop(frame, _box(-1.05 * bw, 1.05 * bw, -arch - t, t))
        x, y = cr.local()
        yc = brow_centre(x, col(bw), col(arch), sgn)
        th = brow_thickness(x, col(bw), col(t), sgn)
        d = sdf.intersect((y - yc).abs_().sub_(th * 0.5), x.abs() - col(bw))
        cr.paint(coverage(d, k), brow_rgb(p), SEG["l_brow" if side == 0 else "r_brow"], 0.92)
        cr.commit()


def nose(cv: Canvas, p: FaceParams, L: Layout, k: Tensor) -> None:
    Ln, w = p.nose_len, p.nose_w
    top, ball_cy, rx, ry = nose_dims(Ln, w)
    cr = cv.crop(L.nose, _box(-1.05 * w, 1.05 * w, top - 0.004, Ln + 0.004))
    x, y = cr.local()
    Lc, wc = col(Ln), col(w)
    hw = nose_bridge_halfwidth(y, Lc, wc)
    bridge = sdf.intersect(x.abs() - hw, col(top) - y, y - col(ball_cy))
    ball = sdf.ellipse(x, y, rx, ry, 0.0, ball_cy)
    d = torch.minimum(bridge, ball)
    lx = col(torch.cos(p.light_dir))
    xr = x / wc
    shade = (xr * (0.16 * lx)).add_(0.99).sub_(xr.square().mul_(0.1 * (y / Lc).clamp_(0.3, 1.0)))
    cr.paint(coverage(d, k), p.skin_rgb, SEG["nose"], shade=shade)
    wing = sdf.intersect(sdf.ellipse(x, y, rx, ry, 0.0, ball_cy).abs_().sub_(0.05 * wc), col(ball_cy) - y)
    cr.paint(coverage(wing, k), p.skin_rgb * 0.7, None, 0.55, keep_shade=True)
    for sgn in (-1.0, 1.0):
        nost = sdf.ellipse(x, y, 0.2 * w, 0.1 * w, sgn * 0.45 * w, ball_cy + 0.45 * ry)
        cr.paint(coverage(nost, k), p.skin_rgb * 0.3, SEG["nose"], 0.9, keep_shade=True)
    cr.commit()


def _mouth_box(p: FaceParams, L: Layout) -> Tensor:
    w = L.mouth_w
    sm = p.smile.abs()
    return _box(-w, w, -sm - 0.5 * p.mouth_open - L.lip_u, sm + 0.5 * p.mouth_open + L.lip_l)


def mustache(cv: Canvas, p: FaceParams, L: Layout, k: Tensor) -> None:
    sub = subset(p.mustache, p, L, k)
    if sub is None:
        return
    items, p, L, k = sub
    w = L.mouth_w
    sm = p.smile.abs() * 1.5625                     # corner lift at |x| = 1.25 w
    cr = cv.crop(L.mouth, _box(-1.25 * w, 1.25 * w, -sm - 0.5 * p.mouth_open - L.lip_u - 0.026, sm + 0.017), items)
    x, y = cr.local()
    wc = col(w)
    _, ut, _, _, _ = mouth_curves(x, wc, col(p.smile), col(p.mouth_open), col(L.lip_u), col(L.lip_l))
    xn = (x / wc).abs_()
    bottom = ut.sub_(0.002).add_((xn - 0.8).clamp_(min=0.0).mul_(0.04))
    topc = bottom - (1.0 - 0.45 * xn.square()).mul_(0.022)
    d = sdf.intersect(sdf.band(y, topc, bottom), xn - 1.25)
    cr.paint(coverage(d, k), p.hair_rgb * 0.8, SEG["skin"], 0.95)
    cr.commit()


def mouth(cv: Canvas, p: FaceParams, L: Layout, k: Tensor) -> None:
    B = p.batch
    cr = cv.crop(L.mouth, _mouth_box(p, L))
    x, y = cr.local()
    w = col(L.mouth_w)
    c, ut, ub, lt, lb = mouth_curves(x, w, col(p.smile), col(p.mouth_open), col(L.lip_u), col(L.lip_l))
    edge = x.abs() - w
    closed = (p.mouth_open <= 0).float() * 10.0
    inner = sdf.intersect(sdf.band(y, ub, lt) + col(closed), edge)
    cr.paint(coverage(inner, k), torch.tensor([0.3, 0.06, 0.08]).expand(B, 3), SEG["mouth"])
    teeth = sdf.intersect(inner, y - ub - 0.6 * col(p.mouth_open), x.abs() - 0.78 * w)
    cr.paint(coverage(teeth, k), torch.tensor([0.93, 0.9, 0.84]).expand(B, 3), SEG["mouth"])
    lip = p.lip_rgb
    cr.paint(coverage(sdf.intersect(sdf.band(y, ut, ub), edge), k), lip * 0.86, SEG["u_lip"])
    lower = sdf.intersect(sdf.band(y, lt, lb), edge)
    shine = ((y - lt) / (lb - lt + 1e-4)).clamp_(0, 1).sub_(0.45).square_().mul_(-0.6).add_(1.08)
    cr.paint(coverage(lower, k), lip, SEG["l_lip"], shade=shine)
    line = sdf.intersect((y - c).abs_().sub_(0.0025), edge)
    cr.paint(coverage(line, k) * col(1 - p.open_flag), lip * 0.45, None, 0.8, keep_shade=True)
    cr.commit()


def glasses(cv: Canvas, p: FaceParams, L: Layout, k: Tensor) -> None:
    sub = subset(p.glasses, p, L, k)
    if sub is None:
        return
    items, p, L, k = sub
    st = p.glasses_style
    sun = (st < 0.22).float()
    rnd = ((st >= 0.22) & (st < 0.6)).float()
    lw, lh = p.eye_w * 1.45, p.eye_w * (0.95 + 0.15 * rnd)
    t = 0.006 + 0.004 * (st * 7 % 1.0)
    a = p.face_a
    box = _box(L.face_dx - a - 0.01, L.face_dx + a + 0.01, p.eye_y - 1.15 * lh, p.eye_y + 1.15 * lh)
    cr = cv.crop(L.head, box, items)
    x, y = cr.local()
    ly = y - col(p.eye_y)
    lens = None
    for ex, fx in zip(L.eye_x, L.eye_fx):
        lx = (x - col(ex)) / col(fx)
        dl = torch.lerp(sdf.box(lx, ly, lw, lh, 0.45 * lh), sdf.ellipse(lx, ly, lw, lh), col(rnd))
        lens = dl if lens is None else torch.minimum(lens, dl)
    tint = torch.where(sun[:, None] > 0, torch.tensor([0.08, 0.08, 0.1]), torch.tensor([0.75, 0.85, 0.95]))
    cr.paint(coverage(lens, k), tint, SEG["eye_g"], 0.15 + 0.75 * sun)
    rim = lens.abs_().sub_(col(t) * 0.5)
    ex_l, ex_r = L.eye_x[0] + lw * L.eye_fx[0], L.eye_x[1] - lw * L.eye_fx[1]
    bar = (ly - col(-0.35 * lh)).abs_().sub_(col(t) * 0.5)
    bridge = torch.maximum(bar, sdf.hslab(x, (ex_r - ex_l) * 0.5 + 0.004, (ex_r + ex_l) * 0.5))
    out_l, out_r = L.eye_x[0] - lw * L.eye_fx[0], L.eye_x[1] + lw * L.eye_fx[1]
    edge_l, edge_r = col(L.face_dx - a - 0.002), col(L.face_dx + a + 0.002)
    arm_l = sdf.intersect(bar, x - col(out_l) - 0.003, edge_l - x)
    arm_r = sdf.intersect(bar, col(out_r) - 0.003 - x, x - edge_r)
    frame = sdf.union(rim, bridge, arm_l, arm_r)
    hue = st * 13 % 1.0
    rgb = torch.stack([0.1 + 0.5 * hue, 0.08 + 0.25 * hue, 0.08 + 0.1 * (1 - hue)], 1)
    cr.paint(coverage(frame, k), rgb, SEG["eye_g"])
    cr.commit()


__all__ = ["eyes", "brows", "nose", "mustache", "mouth", "glasses", "iris_centre", "brow_rgb"]
