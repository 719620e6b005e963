"""Batched painter's canvas: flat colour + shading + class map, painted layer by layer inside crops.

Frames are batched affine maps ``F [B,3,3]`` from a shape's local coordinates to normalised image
coordinates (pixel ``(i, j)`` has centre ``((j + 0.5)/S, (i + 0.5)/S)``). A :class:`Crop` holds the pixels a
layer can touch for a set of items, in one of three ways chosen by cost:

* ``view``: one box shared by the whole batch, a view into the canvas (no copies);
* ``sliced``: one box shared by a subset of items, copied out and back by batch indexing;
* ``gather``: one small box per item, gathered and scattered back by flat indices;
* ``loop``: one large box per item, copied out and back with plain slices (one Python step per item).
"""

from __future__ import annotations

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


def invert(frame: Tensor) -> Tensor:
    """Inverse of affine frames ``[B,3,3]`` (last row 0 0 1), in closed form."""
    a, b, tx = frame[:, 0, 0], frame[:, 0, 1], frame[:, 0, 2]
    c, d, ty = frame[:, 1, 0], frame[:, 1, 1], frame[:, 1, 2]
    det = a * d - b * c
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    return affine(ia, ib, ic, id_, -(ia * tx + ib * ty), -(ic * tx + id_ * ty))


def apply(frame: Tensor, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Map local points ``x, y [B,N]`` through ``frame [B,3,3]``."""
    return (frame[:, 0, 0:1] * x + frame[:, 0, 1:2] * y + frame[:, 0, 2:3],
            frame[:, 1, 0:1] * x + frame[:, 1, 1:2] * y + frame[:, 1, 2:3])


_ONE = torch.tensor(1.0)
# rough CPU costs (ns) used to pick a crop mode: per pixel of layer arithmetic, extra per pixel for batch
# indexing / flat gathers, and per item for the Python loop of the ``loop`` mode
COST_PIXEL, COST_SLICED, COST_GATHER, COST_LOOP_ITEM = 20.0, 2.0, 20.0, 20000.0


class Canvas:
    """Flat-colour image ``[B,3,S,S]``, shading map ``[B,S,S]`` and class map ``[B,S,S]`` (float-coded ints).

    Layers composite a flat colour into ``image`` and their shading factor into ``shade`` with the same
    weights; the final picture is ``image * shade``. The class map stays float so that updating it is plain
    arithmetic (comparisons and masked writes are several times slower on CPU).
    """

    def __init__(self, batch: int, size: int, image: Tensor | None = None, full_frame: bool = False):
        self.batch, self.size, self.full_frame = batch, size, full_frame
        self.image = torch.empty(batch, 3, size, size) if image is None else image
        self.shade = torch.ones(batch, size, size)
        self.seg = torch.zeros(batch, size, size)

    def finish(self, gain: Tensor, seg_out: Tensor) -> None:
        """``image <- clamp(colour * shade * gain [B,3,1,1], 0, 1)`` in place; class map written to ``seg_out``."""
        self.image.mul_(self.shade[:, None]).mul_(gain).clamp_(0.0, 1.0)
        seg_out.copy_(self.seg)

    def crop(self, frame: Tensor, box: Tensor, items: Tensor | None = None, mode: str = "auto") -> Crop:
        """Crop covering the local box ``[n,4] = (x0, x1, y0, y1)`` of ``frame [n,3,3]`` for ``items``
        (indices into the batch; ``None``: all items, ``n = B``)."""
        return Crop(self, frame, box, items, mode)


class Crop:
    """Pixels a layer may touch, with local coordinates ``x, y [n,h,w]`` of ``frame`` at the pixel centres.

    ``rgb [n,3,h,w]``, ``shade [n,h,w]`` and ``seg [n,h,w]`` are views or copies of the canvas;
    :meth:`commit` writes copies back.
    """

    def __init__(self, canvas: Canvas, frame: Tensor, box: Tensor, items: Tensor | None, mode: str):
        B, S = canvas.batch, canvas.size
        n = B if items is None else int(items.numel())
        if frame.shape[0] != n or box.shape[0] != n:
            raise ValueError(f"crop frame/box must have one row per item ({n}), got {frame.shape[0]} and "
                             f"{box.shape[0]}")
        self.canvas, self.frame, self.n = canvas, frame, n
        self.items = torch.arange(B) if items is None else items
        cx = torch.stack([box[:, 0], box[:, 1], box[:, 1], box[:, 0]], 1)
        cy = torch.stack([box[:, 2], box[:, 2], box[:, 3], box[:, 3]], 1)
        ix, iy = apply(frame, cx, cy)
        px0 = (ix.amin(1) * S - 1).floor().clamp(0, S).long()
        px1 = (ix.amax(1) * S + 1).ceil().clamp(0, S).long()
        py0 = (iy.amin(1) * S - 1).floor().clamp(0, S).long()
        py1 = (iy.amax(1) * S + 1).ceil().clamp(0, S).long()
        if canvas.full_frame:       # reference mode (tests): every layer evaluated on the whole image
            px0, py0 = torch.zeros_like(px0), torch.zeros_like(py0)
            px1, py1 = torch.full_like(px1, S), torch.full_like(py1, S)
        w = int((px1 - px0).max().clamp(min=1))
        h = int((py1 - py0).max().clamp(min=1))
        if mode == "auto":
            union = max(int(px1.max() - px0.min()), 1) * max(int(py1.max() - py0.min()), 1)
            costs = {"gather": n * w * h * (COST_PIXEL + COST_GATHER),
                     "loop": n * (w * h * (COST_PIXEL + COST_SLICED) + COST_LOOP_ITEM)}
            if items is None:
                costs["view"] = n * union * COST_PIXEL
            else:
                costs["sliced"] = n * union * (COST_PIXEL + COST_SLICED)
            mode = min(costs, key=costs.get)
        self.mode = mode
        if mode in ("view", "sliced"):
            ux0, uy0 = int(px0.min()), int(py0.min())
            w, h = max(int(px1.max()) - ux0, 1), max(int(py1.max()) - uy0, 1)
            x0 = torch.full((n,), min(ux0, S - w), dtype=torch.long)
            y0 = torch.full((n,), min(uy0, S - h), dtype=torch.long)
        else:
            x0 = torch.minimum(px0, torch.full_like(px0, S - w))
            y0 = torch.minimum(py0, torch.full_like(py0, S - h))
        self.h, self.w, self.x0, self.y0 = h, w, x0, y0
        if mode == "view":
            xs, ys = int(x0[0]), int(y0[0])
            self.rgb = canvas.image[:, :, ys:ys + h, xs:xs + w]
            self.shade = canvas.shade[:, ys:ys + h, xs:xs + w]
            self.seg = canvas.seg[:, ys:ys + h, xs:xs + w]
        elif mode == "sliced":
            xs, ys = int(x0[0]), int(y0[0])
            self._box = (slice(ys, ys + h), slice(xs, xs + w))
            self.rgb = canvas.image[self.items, :, self._box[0], self._box[1]]
            self.shade = canvas.shade[self.items, self._box[0], self._box[1]]
            self.seg = canvas.seg[self.items, self._box[0], self._box[1]]
        elif mode == "gather":
            pix = ((y0[:, None, None] + torch.arange(h)[:, None]) * S + x0[:, None, None] + torch.arange(w))
            pix = pix.view(n, 1, h * w) + (self.items * (S * S)).view(n, 1, 1)
            self._pix = pix.view(-1)                                            # into [B*S*S] planes
            planes = (self.items * (3 * S * S)).view(n, 1, 1) + (torch.arange(3) * (S * S)).view(1, 3, 1)
            self._rgb_idx = (pix - (self.items * (S * S)).view(n, 1, 1) + planes).view(-1)
            self.rgb = canvas.image.view(-1).index_select(0, self._rgb_idx).view(n, 3, h, w)
            self.shade = canvas.shade.view(-1).index_select(0, self._pix).view(n, h, w)
            self.seg = canvas.seg.view(-1).index_select(0, self._pix).view(n, h, w)
        else:
            self._where = list(zip(self.items.tolist(), y0.tolist(), x0.tolist()))
            self.rgb = torch.stack([canvas.image[b, :, ys:ys + h, xs:xs + w] for b, ys, xs in self._where])
            self.shade = torch.stack([canvas.shade[b, ys:ys + h, xs:xs + w] for b, ys, xs in self._where])
            self.seg = torch.stack([canvas.seg[b, ys:ys + h, xs:xs + w] for b, ys, xs in self._where])

    def local(self, frame: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Local coordinates ``x, y [n,h,w]`` of ``frame`` (default: the crop's frame) at the pixel centres."""
        frame = self.frame if frame is None else frame
        S = self.canvas.size
        g = invert(frame)
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

    def paint(self, cov: Tensor, rgb: Tensor, cls: int | None, alpha: Tensor | float | None = None,
              shade: Tensor | None = None, keep_shade: bool = False) -> None:
        """Composite flat colour ``rgb [n,3]`` and ``shade [n,h,w]`` (default 1; ``keep_shade``: leave the
        shading below untouched) with weight ``cov * alpha``; pixels with ``cov >= 0.5`` take class ``cls``
        (``None`` keeps the classes: decorations such as creases, collars, beard)."""
        w = cov if alpha is None else cov * (alpha.view(-1, 1, 1) if isinstance(alpha, Tensor) else alpha)
        self.rgb.lerp_(rgb[:, :, None, None], w[:, None])
        if shade is not None:
            self.shade.lerp_(shade, w)
        elif not keep_shade:
            self.shade.lerp_(_ONE, w)
        if cls is not None:
            # exact {0,1} indicator of cov >= 0.5 without comparisons (cov is a float32 in [0,1])
            m = (cov - 0.5).mul_(2.0 ** 30).add_(1.0).clamp_(0.0, 1.0)
            self.seg.lerp_(torch.tensor(float(cls)), m)

    def commit(self) -> None:
        """Write copied crops back into the canvas (no-op for views)."""
        cv = self.canvas
        if self.mode == "sliced":
            cv.image[self.items, :, self._box[0], self._box[1]] = self.rgb
            cv.shade[self.items, self._box[0], self._box[1]] = self.shade
            cv.seg[self.items, self._box[0], self._box[1]] = self.seg
        elif self.mode == "gather":
            cv.image.view(-1).index_copy_(0, self._rgb_idx, self.rgb.reshape(-1))
            cv.shade.view(-1).index_copy_(0, self._pix, self.shade.reshape(-1))
            cv.seg.view(-1).index_copy_(0, self._pix, self.seg.reshape(-1))
        elif self.mode == "loop":
            h, w = self.h, self.w
            for i, (b, ys, xs) in enumerate(self._where):
                cv.image[b, :, ys:ys + h, xs:xs + w] = self.rgb[i]
                cv.shade[b, ys:ys + h, xs:xs + w] = self.shade[i]
                cv.seg[b, ys:ys + h, xs:xs + w] = self.seg[i]


def coverage(d: Tensor, k: Tensor) -> Tensor:
    """Anti-aliased coverage ``clamp(0.5 - d * k, 0, 1)`` of a signed distance ``d`` (``k`` = pixels/unit)."""
    return (0.5 - d * k).clamp_(0.0, 1.0)


def pixels_per_unit(size: int, scale: Tensor) -> Tensor:
    """``[B,1,1]`` pixels per head unit."""
    return (size * scale).view(-1, 1, 1)


__all__ = ["Canvas", "Crop", "affine", "translate", "rotate_scale", "invert", "apply", "coverage",
           "pixels_per_unit"]
