"""Large layers: background, clothes, hair, neck, necklace, ears and earrings, face and beard, hat."""

from __future__ import annotations

import torch
from torch import Tensor

from . import sdf
from .canvas import Canvas, coverage
from .layout import Layout
from .sdf import col
from .shapes import face_halfwidth_scale
from .world import SEG, FaceParams

NECK_TOP, NECKLINE_Y, NECKLINE_DEPTH, NECKLINE_W = 0.12, 0.395, 0.05, 0.145
CLOTH_CY, CLOTH_RX, CLOTH_RY = 0.64, 0.56, 0.26
CAP_CY = -0.1


def _box(*cols: Tensor) -> Tensor:
    return torch.stack(cols, 1)


def _light(p: FaceParams) -> tuple[Tensor, Tensor]:
    return col(torch.cos(p.light_dir)), col(torch.sin(p.light_dir))


def background(cv: Canvas, p: FaceParams) -> None:
    S = cv.size
    g = (torch.arange(S, dtype=torch.float32) + 0.5) / S - 0.5
    ca, sa = torch.cos(p.bg_angle)[:, None, None], torch.sin(p.bg_angle)[:, None, None]
    t = (ca * g[None, None, :] + sa * g[None, :, None]).add_(0.5)   # [B,S,S]
    c0 = p.bg_rgb0[:, :, None, None]
    torch.addcmul(c0, p.bg_rgb1[:, :, None, None] - c0, t[:, None], out=cv.image)


def cloth(cv: Canvas, p: FaceParams, L: Layout, k: Tensor) -> None:
    B = p.batch
    o = torch.ones(B)
    cr = cv.crop(L.body, _box(-0.62 * o, 0.62 * o, (CLOTH_CY - CLOTH_RY - 0.01) * o, 0.95 * o))
    x, y = cr.local()
    d = sdf.ellipse(x, y, CLOTH_RX, CLOTH_RY, 0.0, CLOTH_CY)
    lx, ly = _light(p)
    shade = (x * (0.35 * lx) + 1.0).sub_((y - (CLOTH_CY - CLOTH_RY)).clamp_(min=0.0).mul_(0.6))
    cr.paint(coverage(d, k), p.cloth_rgb[:, :, None, None] * shade[:, None], SEG["cloth"])
    # collar: darker band just outside the neckline
    nl = NECKLINE_Y + NECKLINE_DEPTH * (1.0 - (x / NECKLINE_W).square()).clamp_(min=0.0).sqrt_()
    collar = sdf.intersect((y - nl - 0.012).abs_().sub_(0.012), sdf.hslab(x, NECKLINE_W * 0.95), d)
    cr.paint(coverage(collar, k), p.cloth_rgb * 0.7, None, 0.8)
    cr.commit()


def _hair_rgb(p: FaceParams, x: Tensor, y: Tensor, a: Tensor) -> Tensor:
    """Hair colour with strands radiating from the crown and the directional light."""
    lx, ly = _light(p)
    tex = torch.sin(x / (y + 0.6) * 70.0).mul_(0.06).add_(1.0)
    tex.add_(x * (0.18 * lx / a)).add_(y * (0.3 * ly))
    return p.hair_rgb[:, :, None, None] * tex[:, None]


def _cap(x: Tensor, y: Tensor, p: FaceParams, lower: Tensor) -> Tensor:
    """Hair volume around the skull: an ellipse whose lower half has vertical radius ``lower``."""
    ry_top = col(p.face_bu - 0.01 + 0.03 * p.hair_vol)
    ry = torch.where(y < CAP_CY, ry_top, col(lower))
    return sdf.ellipse(x, y, p.face_a + 0.03 + 0.03 * p.hair_vol, ry, 0.0, CAP_CY)


def _hair_extent(p: FaceParams) -> tuple[Tensor, Tensor, Tensor]:
    """Per item: end of the falling part (y), flare per unit y, and the cap's lower radius."""
    st = p.hair_style
    y_end = torch.where(st == 3, 0.5 + 0.12 * p.hair_vol, torch.where(st == 2, 0.14 + 0.06 * p.hair_vol,
                                                                       torch.full_like(p.hair_vol, -0.1)))
    flare = (st == 3).float() * 0.06 + 0.06
    lower = torch.where(st == 1, 0.15 + 0.03 * p.hair_vol, 0.35)
    return y_end, flare, lower


def hair_back(cv: Canvas, p: FaceParams, L: Layout, k: Tensor) -> None:
    has = (p.hair_style > 0).float()
    if has.sum() == 0:
        return
    y_end, flare, lower = _hair_extent(p)
    hw = p.face_a + 0.05 + 0.03 * p.hair_vol
    top = -0.04 - (p.face_bu + 0.08)
    half = hw + flare * y_end.clamp(min=0) + 0.01
    bottom = torch.maximum(y_end, 0.02 + lower - 0.04)
    cr = cv.crop(L.face, _box(-half * has, half * has, top * has, bottom * has))
    x, y = cr.local()
    capd = _cap(x, y, p, col(lower))
    xa = x.abs()
    out = col(hw) + y.clamp(min=0.0) * col(flare)
    tip = (xa / out).square_().mul_(0.08)
    fall = sdf.intersect(xa - out, -0.04 - y, y - col(y_end) + tip)
    d = sdf.union(capd, fall)
    cr.paint(coverage(d, k) * col(has), _hair_rgb(p, x, y, col(p.face_a)) * 0.8, SEG["hair"])
    cr.commit()


def hair_front(cv: Canvas, p: FaceParams, L: Layout, k: Tensor) -> None:
    has = (p.hair_style > 0).float()
    if has.sum() == 0:
        return
    y_end, flare, lower = _hair_extent(p)
    lock_end = torch.where(p.hair_over_ears > 0, torch.where(p.hair_style == 3, 0.26, 0.12), -1.0)
    hw = p.face_a + 0.035 + 0.03 * p.hair_vol
    top = -0.04 - (p.face_bu + 0.08)
    bottom = torch.maximum(L.hairline + 0.22, lock_end + 0.01)
    half = hw + 0.05
    cr = cv.crop(L.face, _box(-half * has, half * has, top * has, bottom * has))
    x, y = cr.local()
    a = col(p.face_a)
    xa = x.abs()
    xs = (x / a).square_()
    bangs = col(p.bangs) > 0
    wave = torch.sin(x * 90.0).abs_().mul_(0.012)
    line = col(L.hairline) + xs * torch.where(bangs, 0.04, 0.16) + torch.where(bangs, wave, 0.0 * wave)
    d = sdf.intersect(_cap(x, y, p, col(lower)), y - line)
    # side locks over the ears: between an inner curve that widens downwards and the hair's outer edge
    hl = col(L.hairline)
    t = ((y - hl) / (col(lock_end) - hl + 1e-3)).clamp_(0.0, 1.0)
    inner = a * (0.8 + 0.3 * t * t)
    outer = col(hw) + y.clamp(min=0.0) * col(flare * 0.5)
    side = sdf.intersect(inner - xa, xa - outer, y - col(lock_end), hl - y)
    d = sdf.union(d, side)
    cr.paint(coverage(d, k) * col(has), _hair_rgb(p, x, y, a), SEG["hair"])
    cr.commit()


def neck(cv: Canvas, p: FaceParams, L: Layout, k: Tensor) -> None:
    B = p.batch
    o = torch.ones(B)
    nw = 0.1 + 0.02 * p.male
    cr = cv.crop(L.body, _box(-nw - 0.01, nw + 0.01, NECK_TOP * o, (NECKLINE_Y + NECKLINE_DEPTH + 0.01) * o))
    x, y = cr.local()
    nl = NECKLINE_Y + NECKLINE_DEPTH * (1.0 - (x / NECKLINE_W).square()).clamp_(min=0.0).sqrt_()
    d = sdf.intersect(sdf.hslab(x, nw), y - nl, NECK_TOP - y)
    lx, _ = _light(p)
    shade = ((y - col(p.face_bl)).clamp_(0.0, 0.08) * 2.5 + 0.72).add_(x * (0.5 * lx))
    cr.paint(coverage(d, k), p.skin_rgb[:, :, None, None] * shade[:, None], SEG["neck"])
    if p.necklace.sum() > 0:
        yn = 0.33 + 0.085 * (1.0 - (x / col(nw)).square())
        dn = sdf.intersect((y - yn).abs_().sub_(0.0045), sdf.hslab(x, nw))
        dn = sdf.union(dn, sdf.circle(x, y, 0.011, 0.0, 0.33 + 0.085 + 0.012))
        metal = torch.where(p.male[:, None] > 0, torch.tensor([0.75, 0.75, 0.78]), torch.tensor([0.9, 0.75, 0.35]))
        cr.paint(coverage(dn, k) * col(p.necklace), metal, SEG["neck_l"])
    cr.commit()


def ears(cv: Canvas, p: FaceParams, L: Layout, k: Tensor) -> None:
    es = p.ear_size
    for side, (frame, fx) in enumerate(zip(L.ears, L.ear_fx)):
        sgn = -1.0 if side == 0 else 1.0
        rx, ry = 0.036 * es * fx, 0.068 * es
        cr = cv.crop(frame, _box(-rx - 0.02, rx + 0.02, -ry - 0.005, ry + 0.05))
        x, y = cr.local()
        d = sdf.ellipse(x, y, rx, ry)
        cr.paint(coverage(d, k), p.skin_rgb * 0.93, SEG["l_ear" if side == 0 else "r_ear"])
        inner = sdf.ellipse(x, y, rx * 0.45, ry * 0.6, -sgn * rx * 0.15, -ry * 0.05)
        cr.paint(coverage(inner, k), p.skin_rgb * 0.72, None, 0.8)
        if p.earrings.sum() > 0:
            hoop = (p.earring_style > 0.5).float()
            cyr = ry + 0.016
            stud = sdf.circle(x, y, 0.0095, 0.0, cyr - 0.004)
            ring = sdf.circle(x, y, 0.017, 0.0, cyr + 0.006).abs_().sub_(0.003)
            de = torch.where(col(hoop) > 0, ring, stud)
            metal = torch.tensor([0.92, 0.78, 0.32]).expand(p.batch, 3)
            cr.paint(coverage(de, k) * col(p.earrings), metal, SEG["ear_r"])
        cr.commit()


def face(cv: Canvas, p: FaceParams, L: Layout, k: Tensor) -> None:
    a, bu, bl = p.face_a, p.face_bu, p.face_bl
    cr = cv.crop(L.face, _box(-a - 0.005, a + 0.005, -bu - 0.005, bl + 0.005))
    x, y = cr.local()
    ac, bl_, jk = col(a), col(bl), col(p.jaw_k)
    A = face_halfwidth_scale(y, bl_, jk).mul_(ac)
    Bv = torch.where(y < 0, col(bu), bl_)
    X = x / A
    Y = y / Bv
    r2 = X * X + Y * Y
    g = (X / A).square_().add_((Y / Bv).square_()).rsqrt_()
    d = (r2 - 1.0).mul_(g).mul_(0.5)
    lx, ly = _light(p)
    shade = (X * (0.16 * lx)).add_(Y * (0.16 * ly)).add_(1.06).sub_(r2.clamp_(max=1.0).square_().mul_(0.2))
    cov = coverage(d, k)
    cr.paint(cov, p.skin_rgb[:, :, None, None] * shade[:, None], SEG["skin"])
    if p.beard.sum() > 0:
        top = col(L.mouth_y) - 0.03 - (x / ac).abs_().pow_(3).mul_(0.17)
        db = sdf.intersect(d, top - y)
        alpha = (0.3 + 0.65 * p.beard_density) * p.beard
        fade = ((y - top) / 0.03).clamp_(0.0, 1.0).mul_(0.6).add_(0.4).mul_(coverage(db, k))
        cr.paint(fade, p.hair_rgb * 0.85, None, alpha)
    cr.commit()


def hat(cv: Canvas, p: FaceParams, L: Layout, k: Tensor) -> None:
    on = p.hat
    if on.sum() == 0:
        return
    a = p.face_a
    brim = (p.hat_style >= 0.5).float()
    line = L.hat_line
    crown_top = torch.minimum(line - 0.27, -0.04 - (p.face_bu + 0.1 + 0.03 * p.hair_vol))
    half = a + 0.05 + 0.08 * brim
    cr = cv.crop(L.face, _box(-half * on, half * on, crown_top * on, (line + 0.02) * on))
    x, y = cr.local()
    beanie = sdf.intersect(sdf.ellipse(x, y, a + 0.045 + 0.03 * p.hair_vol, col(line) - col(crown_top),
                                       0.0, col(line)), y - col(line))
    ch = (line - 0.02 - crown_top) * 0.5
    crown = sdf.box(x, y, a * 0.92, ch, 0.05, 0.0, line - 0.02 - ch)
    brim_d = sdf.ellipse(x, y, a + 0.12, 0.026, 0.0, line - 0.012)
    d = torch.where(col(brim) > 0, sdf.union(crown, brim_d), beanie)
    hue = (p.hat_style * 2.0) % 1.0
    rgb = torch.stack([0.25 + 0.6 * hue, 0.2 + 0.3 * (1 - hue), 0.25 + 0.25 * torch.sin(hue * 6.0).abs()], 1)
    lx, _ = _light(p)
    shade = (x * (0.8 * lx)).add_(1.0)
    cr.paint(coverage(d, k) * col(on), rgb[:, :, None, None] * shade[:, None], SEG["hat"])
    band = sdf.intersect(d, (y - col(line) + 0.022 + 0.01 * col(brim)).abs_().sub_(0.012))
    cr.paint(coverage(band, k) * col(on), rgb * 0.6, None)
    cr.commit()


__all__ = ["background", "cloth", "hair_back", "hair_front", "neck", "ears", "face", "hat"]
