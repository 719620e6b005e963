"""Fourier single-pixel imaging (FSI): 4-step phase-shifting sinusoids, binarised for the DMD, inverse FFT.

For spatial frequency ``f = (fx, fy)`` (cycles per image) the four patterns are
``P_phi(x, y) = 1/2 + 1/2 cos(2 pi (fx x + fy y) / n + phi)``, ``phi in {0, pi/2, pi, 3 pi/2}``, and with
readings ``D_phi`` (means over the ``N = n^2`` pixels of ``P_phi * g``) the phase-shift identity gives the
discrete Fourier coefficient ``F(f) = sum_p g[p] e^{-2 pi i f.p / n}`` of the gray image ``g``:

    F(f) = N * ((D_0 - D_pi) + i (D_{pi/2} - D_{3pi/2}))

Every coefficient costs four readings, so ``d`` readings give ``d // 4`` coefficients (DC included, the rest of
``d`` idle), taken low frequencies first from one half of the spectrum (:func:`half_plane_frequencies`); the other
half follows by conjugate symmetry, the unmeasured coefficients are zero, and ``g = Re ifft2(F)``.

A DMD shows binary mirrors, so the gray sinusoids are binarised (``dither``):

* ``"floyd_steinberg"`` (default): error diffusion (weights 7/16, 3/16, 5/16, 1/16, raster order) of each
  full-resolution pattern; the binarisation error is pushed to high spatial frequencies, where faces carry little
  energy, so the low-frequency coefficients stay accurate (Zhang et al., Optics Express 2017);
* ``"bayer"``: ordered dithering with an 8x8 Bayer threshold matrix (faster, more structured error);
* ``"none"``: the gray patterns themselves (not DMD-realisable; the exact reference of the identity above).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from lsi.eval.baselines.interface import Baseline, BaselineError

__all__ = ["FourierImaging", "bayer_dither", "floyd_steinberg", "half_plane_frequencies", "sinusoid_patterns"]

DITHERS = ("floyd_steinberg", "bayer", "none")
PHASES = (0.0, math.pi / 2, math.pi, 3 * math.pi / 2)


def half_plane_frequencies(grid: int) -> Tensor:
    """All frequencies ``(fx, fy)`` of one half of the ``grid x grid`` spectrum, low first: ``[grid^2/2 + 2, 2]``.

    Together with their conjugates ``(-fx, -fy)`` they cover every DFT bin once; the four self-conjugate bins
    (DC and the Nyquist ones) appear once. Sorted by ``fx^2 + fy^2``, then by angle.
    """
    if grid < 2 or grid & (grid - 1):
        raise BaselineError(f"FSI needs a power-of-two grid >= 2, got {grid}")
    h = grid // 2
    fx, fy = torch.meshgrid(torch.arange(-h + 1, h + 1), torch.arange(0, h + 1), indexing="ij")
    fx, fy = fx.flatten(), fy.flatten()
    keep = ((fy > 0) & (fy < h)) | (fx >= 0)        # rows fy = 0 and fy = n/2 pair (fx, fy) with (-fx, fy)
    fx, fy = fx[keep], fy[keep]
    angle = torch.atan2(fy.double(), fx.double())
    order = np.lexsort((angle.numpy(), (fx * fx + fy * fy).numpy()))
    return torch.stack([fx, fy], dim=1)[torch.from_numpy(order)]


def sinusoid_patterns(freqs: Tensor, grid: int) -> Tensor:
    """Gray 4-step patterns ``[4 k, grid, grid]`` in [0, 1], coefficient-major (``4 i + j`` = frequency i, phase j)."""
    y, x = torch.meshgrid(torch.arange(grid, dtype=torch.float64), torch.arange(grid, dtype=torch.float64),
                          indexing="ij")
    theta = 2 * math.pi * (freqs[:, 0, None, None] * x + freqs[:, 1, None, None] * y) / grid   # [k, grid, grid]
    pats = [0.5 + 0.5 * torch.cos(theta + phi) for phi in PHASES]
    return torch.stack(pats, dim=1).flatten(0, 1).float()


def floyd_steinberg(gray: Tensor) -> Tensor:
    """Binarise ``[P, H, W]`` patterns in [0, 1] by Floyd-Steinberg error diffusion (all patterns at once)."""
    img = gray.double().permute(1, 2, 0).numpy().copy()          # [H, W, P]: one pixel of every pattern at a time
    h, w, _ = img.shape
    out = np.zeros_like(img)
    for r in range(h):
        row, below = img[r], img[r + 1] if r + 1 < h else None
        for c in range(w):
            old = row[c]
            new = (old >= 0.5).astype(np.float64)
            out[r, c] = new
            err = old - new
            if c + 1 < w:
                row[c + 1] += err * (7 / 16)
            if below is not None:
                if c > 0:
                    below[c - 1] += err * (3 / 16)
                below[c] += err * (5 / 16)
                if c + 1 < w:
                    below[c + 1] += err * (1 / 16)
    return torch.from_numpy(out).permute(2, 0, 1).float().contiguous()


def bayer_matrix(size: int = 8) -> Tensor:
    """Ordered-dither thresholds ``[size, size]`` in (0, 1) (recursive Bayer construction)."""
    m = torch.zeros(1, 1)
    while m.shape[0] < size:
        m = torch.cat([torch.cat([4 * m, 4 * m + 2], 1), torch.cat([4 * m + 3, 4 * m + 1], 1)], 0)
    return (m + 0.5) / m.numel()


def bayer_dither(gray: Tensor, size: int = 8) -> Tensor:
    """Binarise ``[P, H, W]`` patterns in [0, 1] against a tiled Bayer threshold matrix."""
    t = bayer_matrix(min(size, gray.shape[-1]))
    reps = (gray.shape[-2] // t.shape[0] + 1, gray.shape[-1] // t.shape[1] + 1)
    tiled = t.repeat(*reps)[: gray.shape[-2], : gray.shape[-1]]
    return (gray >= tiled).float()


class FourierImaging(Baseline):
    """4-step phase-shifting FSI with binarised patterns (gray output), see the module docstring."""

    name = "fsi"
    channels = 1

    def __init__(self, d: int, grid: int = 256, dither: str = "floyd_steinberg") -> None:
        super().__init__(d, grid)
        if dither not in DITHERS:
            raise BaselineError(f"unknown dither {dither!r}; choose one of {DITHERS}")
        available = grid * grid // 2 + 2
        self.num_coefficients = d // 4
        if not 1 <= self.num_coefficients <= available:
            raise BaselineError(f"4-step FSI spends 4 readings per coefficient and a {grid}x{grid} grid has "
                                f"{available} independent ones: need 4 <= d <= {4 * available}, got d={d}")
        self.dither = dither
        freqs = half_plane_frequencies(grid)[: self.num_coefficients]
        gray = sinusoid_patterns(freqs, grid)
        shown = {"floyd_steinberg": floyd_steinberg, "bayer": bayer_dither, "none": lambda p: p}[dither](gray)
        if shown.shape[0] < d:  # idle readings (d not a multiple of 4): all-off patterns, read and ignored
            shown = torch.cat([shown, shown.new_zeros(d - shown.shape[0], grid, grid)])
        self.register_buffer("_patterns", shown, persistent=False)
        self.register_buffer("freqs", freqs, persistent=False)

    def patterns(self) -> Tensor:
        return self._patterns

    def coefficients_of(self, readings: Tensor) -> Tensor:
        """Readings ``[B, d]`` -> complex Fourier coefficients ``[B, k]`` of the gray image (the identity above)."""
        self.check_readings(readings)
        k, n = self.num_coefficients, self.grid
        r = readings[:, : 4 * k].double().view(-1, k, 4)
        return n * n * torch.complex(r[..., 0] - r[..., 2], r[..., 1] - r[..., 3])

    def spectrum(self, coefficients: Tensor) -> Tensor:
        """Coefficients ``[B, k]`` -> full DFT ``[B, grid, grid]`` (rows fy, columns fx) by conjugate symmetry."""
        n = self.grid
        fx, fy = self.freqs[:, 0], self.freqs[:, 1]
        spec = torch.zeros(coefficients.shape[0], n, n, dtype=coefficients.dtype, device=coefficients.device)
        spec[:, (-fy) % n, (-fx) % n] = coefficients.conj()
        spec[:, fy % n, fx % n] = coefficients                    # self-conjugate bins keep the measured value
        return spec

    def reconstruct(self, readings: Tensor) -> Tensor:
        gray = torch.fft.ifft2(self.spectrum(self.coefficients_of(readings))).real   # [B, grid, grid]
        return gray.float().clamp(0, 1)[:, None]

    def budget(self) -> dict:
        idle = self.d - 4 * self.num_coefficients
        return {"readings": self.d, "readings_use": f"{self.num_coefficients} coefficients x 4 phase steps"
                + (f", {idle} idle" if idle else ""), "dither": self.dither, "training": "none"}
