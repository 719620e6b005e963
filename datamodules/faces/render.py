"""Vectorised renderer of the procedural face world: ``u [B,K] -> image, segmentation, landmarks, attributes``.

Layers are painted in painter's order with signed-distance shapes and anti-aliased coverage
``clamp(0.5 - d / pixel, 0, 1)``; the class map takes the top-most layer with coverage >= 0.5, so it shares
the image's geometry exactly. Large batches are rendered in chunks of about one megapixel to stay in cache.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass

import torch
from torch import Tensor

from . import layers_face as F
from . import layers_head as H
from .canvas import Canvas, pixels_per_unit
from .landmarks import compute_landmarks
from .layout import make_layout
from .world import FaceParams, attributes_from_params, decode_world

CHUNK_PIXELS = 1 << 20
_MALLOC_TUNED = False


class RenderSizeError(ValueError):
    """Requested image size is not supported."""


@dataclass
class RenderOutput:
    """Rendered scenes and their exact ground truth."""

    image: Tensor          # [B,3,S,S] float32 in [0,1]
    segmentation: Tensor   # [B,S,S] int64 in 0..18 (SEG_CLASSES)
    landmarks: Tensor      # [B,68,2] float32, (x, y) in [0,1] (pixel centre / S), iBUG-300W order
    attributes: Tensor     # [B,len(ATTRIBUTE_NAMES)] float32 in {0,1}


def _tune_malloc() -> None:
    """Keep freed temporaries in the heap (glibc): repeated multi-MB temporaries otherwise page-fault on
    every allocation, which makes rendering several times slower. Disable with LSI_NO_MALLOPT=1."""
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return
    _MALLOC_TUNED = True
    if os.environ.get("LSI_NO_MALLOPT") == "1":
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 * 1024 * 1024)     # M_MMAP_THRESHOLD
        libc.mallopt(-1, 256 * 1024 * 1024)    # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


def _render_chunk(p: FaceParams, image: Tensor, seg: Tensor, full_frame: bool = False) -> Tensor:
    """Paint scenes ``p`` into ``image [b,3,S,S]`` and ``seg [b,S,S]`` (views of the outputs); landmarks out."""
    L = make_layout(p)
    cv = Canvas(p.batch, image.shape[-1], image, full_frame)
    k = pixels_per_unit(cv.size, L.scale)
    H.background(cv, p)
    H.cloth(cv, p, L, k)
    H.hair_back(cv, p, L, k)
    H.neck(cv, p, L, k)
    H.ears(cv, p, L, k)
    H.face(cv, p, L, k)
    F.nose(cv, p, L, k)
    F.eyes(cv, p, L, k)
    F.brows(cv, p, L, k)
    F.mustache(cv, p, L, k)
    F.mouth(cv, p, L, k)
    H.hair_front(cv, p, L, k)
    F.glasses(cv, p, L, k)
    H.hat(cv, p, L, k)
    cv.finish((p.light_tint * p.light_int[:, None])[:, :, None, None], seg)
    return compute_landmarks(p, L)


@torch.no_grad()
def render_faces(u: Tensor, size: int = 256, full_frame: bool = False) -> RenderOutput:
    """Render world latents ``u [B,K]`` at ``size x size`` (any size >= 16; 64, 128, 256 typical).

    ``full_frame=True`` evaluates every layer on the whole image instead of its crop (slow; a reference
    that the crops cover every pixel a layer touches).
    """
    if not isinstance(size, int) or size < 16 or size > 2048:
        raise RenderSizeError(f"size must be an int in [16, 2048], got {size!r}")
    _tune_malloc()
    params = decode_world(u)
    B = params.batch
    image = torch.empty(B, 3, size, size)
    seg = torch.empty(B, size, size, dtype=torch.long)
    landmarks = torch.empty(B, 68, 2)
    chunk = max(1, CHUNK_PIXELS // (size * size))
    for lo in range(0, B, chunk):
        hi = min(B, lo + chunk)
        landmarks[lo:hi] = _render_chunk(params.index(slice(lo, hi)), image[lo:hi], seg[lo:hi], full_frame)
    return RenderOutput(image=image, segmentation=seg, landmarks=landmarks,
                        attributes=attributes_from_params(params))
