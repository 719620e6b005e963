"""Large layers: background, clothes, hair, neck, necklace, ears and earrings, face and beard, hat.

These cover most pixels, so they use arithmetic-only formulas (no comparisons, ``where``, ``pow`` or ``sin``
on pixel grids: those are several times slower than multiply-adds on CPU).
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import sdf
from .canvas import Canvas, coverage
from .layout import Layout, subset
from .sdf import col, step
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
    d = sdf.ellipse_inv(x, y - CLOTH_CY, 1 / CLOTH_RX, 1 / CLOTH_RY)
    lx, _ = _light(p)
    shade = (x * (0.35 * lx) + 1.0).sub_((y - (CLOTH_CY - CLOTH_RY)).clamp_(min=0.0).mul_(0.6))
    cr.paint(coverage(d, k), p.cloth_rgb, SEG["cloth"], shade=shade)
    # collar: darker band just outside the neckline
    nl = (1.0 - (x * (1 / NECKLINE_W)).square_()).clamp_(min=0.0).sqrt_().mul_(NECKLINE_DEPTH).add_(NECKLINE_Y)
    collar = sdf.intersect((y - nl - 0.012).abs_().sub_(0.012), sdf.hslab(x, NECKLINE_W * 0.95), d)
    cr.paint(coverage(collar, k), p.cloth_rgb * 0.7, None, 0.8, keep_shade=True)
    cr.commit()


def _strands(p: FaceParams, x: Tensor, y: Tensor, a: Tensor) -> Tensor:
    """Hair shading ``[B,h,w]``: strands radiating from above the crown plus the directional light."""
    lx, ly = _light(p)
    t = (x / (y + 0.6)).mul_(11.0)
    f = t - t.floor()
    tex = (f - f.square()).mul_(0.5).add_(0.93)                  # bumps in [0.93, 1.055]
    return tex.add_(x * (0.18 * lx / a)).add_(y * (0.3 * ly))


def _cap(x: Tensor, y: Tensor, p: FaceParams, lower: Tensor) -> Tensor:
    """Hair volume around the skull: an ellipse whose lower half has vertical radius ``lower``."""
    yc = y - CAP_CY
    iry_top = col(1.0 / (p.face_bu - 0.01 + 0.03 * p.hair_vol))
    iry = torch.addcmul(iry_top, step(yc), col(1.0 / lower) - iry_top)
    return sdf.ellipse_inv(x, yc, col(1.0 / (p.face_a + 0.03 + 0.03 * p.hair_vol)), iry)


def _hair_extent(p: FaceParams) -> tuple[Tensor, Tensor, Tensor]:
    """Per item: end of the falling part (y), flare per unit y, and the cap's lower radius."""
    st = p.hair_style
    y_end = torch.where(st == 3, 0.5 + 0.12 * p.hair_vol, torch.where(st == 2, 0.14 + 0.06 * p.hair_vol,
                                                                       torch.full_like(p.hair_vol, -0.1)))
    flare = (st == 3).float() * 0.06 + 0.06
    lower = torch.where(st == 1, 0.15 + 0.03 * p.hair_vol, 0.35)
    return y_end, flare, lower


def hair_back(cv: Canvas, p: FaceParams, L: Layout, k: Tensor) -> None:
    """Hair behind the head, one sub-batch per style so that crops stay tight."""
    for style in (1, 2, 3):
        sub = subset((p.hair_style == style).float(), p, L, k)
        if sub is not None:
            _hair_back(cv, *sub)


def _hair_back(cv: Canvas, items: Tensor | None, p: FaceParams, L: Layout, k: Tensor) -> None:
    y_end, flare, lower = _hair_extent(p)
    hw = p.face_a + 0.05 + 0.03 * p.hair_vol
    top = CAP_CY - (p.face_bu + 0.03)
    half = hw + flare * y_end.clamp(min=0) + 0.01
    bottom = torch.maximum(y_end, CAP_CY + lower + 0.01)
    cr = cv.crop(L.face, _box(-half, half, top, bottom), items)
    x, y = cr.local()
    capd = _cap(x, y, p, lower)
    xa = x.abs()
    out = (y.clamp(min=0.0) * col(flare)).add_(col(hw))
    tip = (xa / out).square_().mul_(0.08)
    fall = sdf.intersect(xa.sub_(out), -0.04 - y, tip.add_(y).sub_(col(y_end)))
    d = torch.minimum(capd, fall)
    shade = _strands(p, x, y, col(p.face_a)).mul_(0.8)
    cr.paint(coverage(d, k), p.hair_rgb, SEG["hair"], shade=shade)
    cr.commit()


def hair_front(cv: Canvas, p: FaceParams, L: Layout, k: Tensor) -> None:
    """Hair in front of the face (above the hairline, fringe, locks over the ears), grouped by lock length."""
    has = (p.hair_style > 0).float()
    for group in (has * (1 - p.hair_over_ears), has * p.hair_over_ears * (p.hair_style == 2).float(),
                  has * p.hair_over_ears * (p.hair_style == 3).float()):
        sub = subset(group, p, L, k)
        if sub is not None:
            _hair_front(cv, *sub)


def _hair_front(cv: Canvas, items: Tensor | None, p: FaceParams, L: Layout, k: Tensor) -> None:
    _, flare, lower = _hair_extent(p)
    lock_end = torch.where(p.hair_over_ears > 0, torch.where(p.hair_style == 3, 0.26, 0.12), -1.0)
    hw = p.face_a + 0.035 + 0.03 * p.hair_vol
    top = CAP_CY - (p.face_bu + 0.03)
    bottom = torch.maximum(torch.minimum(L.hairline + 0.25, CAP_CY + lower), lock_end) + 0.01
    half = hw + 0.05
    cr = cv.crop(L.face, _box(-half, half, top, bottom), items)
    x, y = cr.local()
    a = col(p.face_a)
    xa = x.abs()
    xs = (x / a).square_().square_()
    # hairline: high over the brows, dropping at the temples; with bangs a flat fringe with a scalloped edge
    t = x * (90.0 / 3.14159)
    f = t - t.floor()
    scallop = (f - f.square()).mul_(0.048)
    line = xs.mul_(col(0.16 * (1 - p.bangs))).add_(col(L.hairline)).sub_(scallop.mul_(col(p.bangs)))
    d = torch.maximum(_cap(x, y, p, lower), y - line)
    if bool((p.hair_over_ears > 0).any()):
        # side locks over the ears: between an inner curve that widens downwards and the hair's outer edge
        hl = col(L.hairline)
        u = ((y - hl) / (col(lock_end) - hl + 1e-3)).clamp_(0.0, 1.0)
        inner = u.square_().mul_(0.3).add_(0.8).mul_(a)
        outer = (y.clamp(min=0.0) * col(flare * 0.5)).add_(col(hw))
        side = sdf.intersect(inner.sub_(xa), xa - outer, y - col(lock_end), hl - y)
        d = torch.minimum(d, side)
    cr.paint(coverage(d, k), p.hair_rgb, SEG["hair"], shade=_strands(p, x, y, a))
    cr.commit()


def neck(cv: Canvas, p: FaceParams, L: Layout, k: Tensor) -> None:
    B = p.batch
    o = torch.ones(B)
    nw = 0.1 + 0.02 * p.male
    cr = cv.crop(L.body, _box(-nw - 0.01, nw + 0.01, NECK_TOP * o, (NECKLINE_Y + NECKLINE_DEPTH + 0.01) * o))
    x, y = cr.local()
    nl = (1.0 - (x * (1 / NECKLINE_W)).square_()).clamp_(min=0.0).sqrt_().mul_(NECKLINE_DEPTH).add_(NECKLINE_Y)
    d = sdf.intersect(sdf.hslab(x, nw), y - nl, NECK_TOP - y)
    lx, _ = _light(p)
    shade = ((y - col(p.face_bl)).clamp_(0.0, 0.08) * 2.5 + 0.72).add_(x * (0.5 * lx))
    cr.paint(coverage(d, k), p.skin_rgb, SEG["neck"], shade=shade)
    cr.commit()
    sub = subset(p.necklace, p, L, k)
    if sub is not None:
        _necklace(cv, *sub)


def _necklace(cv: Canvas, items: Tensor | None, p: FaceParams, L: Layout, k: Tensor) -> None:
    nw = 0.1 + 0.02 * p.male
    o = torch.ones_like(nw)
    cr = cv.crop(L.body, _box(-nw, nw, 0.32 * o, 0.44 * o), items)
    x, y = cr.local()
    yn = (1.0 - (x / col(nw)).square_()).mul_(0.085).add_(0.33)
    dn = sdf.intersect((y - yn).abs_().sub_(0.0045), sdf.hslab(x, nw))
    dn = torch.minimum(dn, sdf.circle(x, y, 0.0125, 0.0, 0.33 + 0.085 + 0.013))
    metal = torch.where(p.male[:, None] > 0, torch.tensor([0.75, 0.75, 0.78]), torch.tensor([0.9, 0.75, 0.35]))
    cr.paint(coverage(dn, k), metal, SEG["neck_l"])
    cr.commit()


def ears(cv: Canvas, p: FaceParams, L: Layout, k: Tensor) -> None:
    es = p.ear_size
    for side, (frame, fx) in enumerate(zip(L.ears, L.ear_fx)):
        sgn = -1.0 if side == 0 else 1.0
        rx, ry = 0.036 * es * fx, 0.068 * es
        cr = cv.crop(frame, _box(-rx, rx, -ry, ry))
        x, y = cr.local()
        d = sdf.ellipse(x, y, rx, ry)
        cr.paint(coverage(d, k), p.skin_rgb * 0.93, SEG["l_ear" if side == 0 else "r_ear"])
        inner = sdf.ellipse(x, y, rx * 0.45, ry * 0.6, -sgn * rx * 0.15, -ry * 0.05)
        cr.paint(coverage(inner, k), p.skin_rgb * 0.72, None, 0.8, keep_shade=True)
        cr.commit()
    sub = subset(p.earrings, p, L, k)
    if sub is not None:
        _earrings(cv, *sub)


def _earrings(cv: Canvas, items: Tensor | None, p: FaceParams, L: Layout, k: Tensor) -> None:
    metal = torch.tensor([0.92, 0.78, 0.32]).expand(p.batch, 3)
    hoop = col((p.earring_style > 0.5).float())
    cyr = 0.068 * p.ear_size + 0.016
    o = torch.ones_like(cyr)
    for frame in L.ears:
        cr = cv.crop(frame, _box(-0.02 * o, 0.02 * o, cyr - 0.015, cyr + 0.033), items)
        x, y = cr.local()
        # radii >= 0.0125 keep at least one pixel centre inside even at 64x64
        stud = sdf.circle(x, y, 0.0125, 0.0, cyr - 0.002)
        ring = sdf.circle(x, y, 0.016, 0.0, cyr + 0.006).abs_().sub_(0.0032)
        bead = sdf.circle(x, y, 0.0125, 0.0, cyr + 0.02)
        cr.paint(coverage(torch.lerp(stud, torch.minimum(ring, bead), hoop), k), metal, SEG["ear_r"])
        cr.commit()


def _face_sdf(x: Tensor, y: Tensor, p: FaceParams) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Face outline ``(x/A(y))^2 + P(y/B) = 1`` (see ``shapes.face_outline_point``): ``(d, X, Y, r2)``."""
    h = step(y)                                                   # 1 on the lower half
    ib = torch.addcmul(col(1 / p.face_bu), h, col(1 / p.face_bl - 1 / p.face_bu))      # 1/B
    Y = y * ib
    Y2 = Y.square()
    # 1/A(y); the taper is clamped so that it stays positive far below the chin (outside the face)
    inv_a = (Y2 * h).mul_(col(-p.jaw_k)).add_(1.0).clamp_(min=0.2).mul_(col(p.face_a)).reciprocal_()
    X = x * inv_a
    sqh = h.mul_(col(p.jaw_sq))
    r2 = (Y2 - 1.0).mul_(sqh).add_(1.0).mul_(Y2).add_(X.square())
    gx = (X * inv_a).mul_(2.0)
    gy = (Y2.mul_(2.0).sub_(1.0)).mul_(sqh).add_(1.0).mul_(Y).mul_(ib).mul_(2.0)
    d = (r2 - 1.0).mul_(gx.square_().add_(gy.square_()).rsqrt_())
    return d, X, Y, r2


def face(cv: Canvas, p: FaceParams, L: Layout, k: Tensor) -> None:
    a, bu, bl = p.face_a, p.face_bu, p.face_bl
    cr = cv.crop(L.face, _box(-a, a, -bu, bl))
    x, y = cr.local()
    d, X, Y, r2 = _face_sdf(x, y, p)
    lx, ly = _light(p)
    shade = (X.mul_(0.16 * lx)).add_(Y.mul_(0.16 * ly)).add_(1.06).sub_(r2.clamp_(max=1.0).square_().mul_(0.2))
    cr.paint(coverage(d, k), p.skin_rgb, SEG["skin"], shade=shade)
    cr.commit()
    sub = subset(p.beard, p, L, k)
    if sub is not None:
        _beard(cv, *sub)


def _beard(cv: Canvas, items: Tensor | None, p: FaceParams, L: Layout, k: Tensor) -> None:
    """Facial hair over the lower face (class stays skin), fading in at its upper edge."""
    a = p.face_a
    cr = cv.crop(L.face, _box(-a, a, L.mouth_y - 0.2, p.face_bl), items)
    x, y = cr.local()
    d = _face_sdf(x, y, p)[0]
    xa = (x / col(a)).abs_()
    top = col(L.mouth_y) - 0.03 - xa.square().mul_(xa).mul_(0.17)
    db = torch.maximum(d, top - y)
    fade = ((y - top) / 0.03).clamp_(0.0, 1.0).mul_(0.6).add_(0.4).mul_(coverage(db, k))
    cr.paint(fade, p.hair_rgb * 0.85, None, 0.3 + 0.65 * p.beard_density, keep_shade=True)
    cr.commit()


def hat(cv: Canvas, p: FaceParams, L: Layout, k: Tensor) -> None:
    sub = subset(p.hat, p, L, k)
    if sub is None:
        return
    items, p, L, k = sub
    a = p.face_a
    brim = (p.hat_style >= 0.5).float()
    line = L.hat_line
    crown_top = torch.minimum(line - 0.27, CAP_CY - (p.face_bu + 0.05 + 0.03 * p.hair_vol))
    half = a + 0.08 + 0.05 * brim
    cr = cv.crop(L.face, _box(-half, half, crown_top, line + 0.02), items)
    x, y = cr.local()
    beanie = sdf.intersect(sdf.ellipse(x, y, a + 0.045 + 0.03 * p.hair_vol, col(line) - col(crown_top),
                                       0.0, col(line)), y - col(line))
    ch = (line - 0.02 - crown_top) * 0.5
    crown = sdf.box(x, y, a * 0.92, ch, 0.05, 0.0, line - 0.02 - ch)
    brim_d = sdf.ellipse(x, y, a + 0.12, 0.026, 0.0, line - 0.012)
    d = torch.lerp(beanie, torch.minimum(crown, brim_d), col(brim))
    hue = (p.hat_style * 2.0) % 1.0
    rgb = torch.stack([0.25 + 0.6 * hue, 0.2 + 0.3 * (1 - hue), 0.25 + 0.25 * torch.sin(hue * 6.0).abs()], 1)
    lx, _ = _light(p)
    cr.paint(coverage(d, k), rgb, SEG["hat"], shade=(x * (0.8 * lx)).add_(1.0))
    band = sdf.intersect(d, (y - col(line) + 0.022 + 0.01 * col(brim)).abs_().sub_(0.012))
    cr.paint(coverage(band, k), rgb * 0.6, None, keep_shade=True)
    cr.commit()


__all__ = ["background", "cloth", "hair_back", "hair_front", "neck", "ears", "face", "hat"]
