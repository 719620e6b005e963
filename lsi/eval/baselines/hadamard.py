"""Hadamard single-pixel imaging: 2-D Walsh-Hadamard patterns, low sequency first, inverted by the fast WHT.

Patterns are :func:`lsi.physics.patterns.walsh_hadamard_2d` in sequency order (pattern 0 = all-on). A DMD shows
only 0/1 mirrors, so the signed (+-1) pattern ``h_k`` is obtained in one of two ways, both within the same ``d``:

* ``scheme="split"`` (default): the 0/1 patterns ``(1 + h_k) / 2``; with the all-on reading ``y_0`` the signed
  coefficient is ``s_k = 2 y_k - y_0`` (``s_0 = y_0``): ``d`` coefficients from ``d`` readings;
* ``scheme="complementary"``: ``d / 2`` patterns and their complements (readings stacked ``[m | 1 - m]`` as in
  :class:`lsi.physics.operator.OpticalEncoder`), ``s_k = y_k - y_k'``: ``d / 2`` coefficients, robust to an
  unknown offset (ambient light) but half as many.

Readings are means over the ``N`` pixels, so ``s_k = (1/N) sum_p h_k[p] g[p]`` and, the ``h_k`` being orthogonal
with ``sum h_k^2 = N``, the gray image is ``g = sum_k s_k h_k``: the pseudo-inverse of the sampled rows puts the
measured coefficients into a ``grid x grid`` spectrum (zero elsewhere) and applies the 2-D fast Walsh-Hadamard
transform, ``O(N log N)``; no ``N x N`` matrix is ever built. ``tikhonov=lam`` solves
``min ||H_S g - s||^2 + lam ||g - g_prior||^2`` instead (shrinks the measured coefficients towards those of
``prior`` and fills the unmeasured ones from it; ``prior=None`` is the zero image).
"""

from __future__ import annotations

import torch
from torch import Tensor

from lsi.eval.baselines.interface import Baseline, BaselineError
from lsi.physics.patterns import sequency_order_2d, walsh_hadamard_2d, walsh_to_natural

__all__ = ["HadamardImaging", "fwht", "fwht2", "natural_indices"]

SCHEMES = ("split", "complementary")


def fwht(x: Tensor, dim: int = -1) -> Tensor:
    """Unnormalised fast Walsh-Hadamard transform along ``dim`` (Sylvester / natural order): ``H_n x``.

    ``H[i, j] = (-1) ** popcount(i & j)``; applying it twice gives ``n x``. ``n`` must be a power of two.
    """
    x = x.movedim(dim, -1)
    n = x.shape[-1]
    if n < 1 or n & (n - 1):
        raise BaselineError(f"the fast Walsh-Hadamard transform needs a power-of-two length, got {n}")
    shape = x.shape
    y = x.reshape(-1, n)
    h = 1
    while h < n:
        y = y.view(-1, n // (2 * h), 2, h)                  # [rows, blocks, (upper, lower), h]
        y = torch.stack((y[:, :, 0] + y[:, :, 1], y[:, :, 0] - y[:, :, 1]), dim=2)
        h *= 2
    return y.reshape(shape).movedim(-1, dim)


def fwht2(x: Tensor) -> Tensor:
    """2-D transform over the last two axes: ``H x H`` for ``x [..., n, n]``."""
    return fwht(fwht(x, -1), -2)


def natural_indices(d: int, grid: int) -> tuple[Tensor, Tensor]:
    """Natural (Sylvester) row and column indices of the first ``d`` 2-D Walsh patterns in sequency order."""
    uv = sequency_order_2d(grid)[:d]
    nbits = grid.bit_length() - 1
    return walsh_to_natural(uv[:, 0], nbits), walsh_to_natural(uv[:, 1], nbits)


class HadamardImaging(Baseline):
    """2-D Walsh-Hadamard single-pixel imaging (gray output), see the module docstring."""

    name = "hadamard"
    channels = 1

    def __init__(self, d: int, grid: int = 256, scheme: str = "split", tikhonov: float = 0.0,
                 prior: Tensor | None = None) -> None:
        super().__init__(d, grid)
        if scheme not in SCHEMES:
            raise BaselineError(f"unknown Hadamard scheme {scheme!r}; choose one of {SCHEMES}")
        if scheme == "complementary" and d % 2:
            raise BaselineError(f"the complementary scheme spends readings in pairs: d must be even, got {d}")
        if tikhonov < 0:
            raise BaselineError(f"tikhonov must be >= 0, got {tikhonov}")
        self.scheme, self.tikhonov = scheme, float(tikhonov)
        self.coefficients = d if scheme == "split" else d // 2
        if self.coefficients > grid * grid:
            raise BaselineError(f"a {grid}x{grid} grid has {grid * grid} Walsh-Hadamard patterns; the {scheme} scheme "
                                f"with d={d} asks for {self.coefficients}")
        base = walsh_hadamard_2d(self.coefficients, grid)                       # [k, grid, grid] in {0, 1}
        shown = base if scheme == "split" else torch.cat([base, 1 - base])
        self.register_buffer("_patterns", shown, persistent=False)
        rows, cols = natural_indices(self.coefficients, grid)
        self.register_buffer("_rows", rows, persistent=False)
        self.register_buffer("_cols", cols, persistent=False)
        if prior is not None and tuple(prior.shape) != (grid, grid):
            raise BaselineError(f"the Tikhonov prior must be a gray [{grid}, {grid}] image, got {tuple(prior.shape)}")
        self.register_buffer("_prior", None if prior is None else prior.float(), persistent=False)

    def patterns(self) -> Tensor:
        return self._patterns

    def coefficients_of(self, readings: Tensor) -> Tensor:
        """Readings ``[B, d]`` -> signed Walsh coefficients ``s [B, k]`` in sequency order."""
        self.check_readings(readings)
        if self.scheme == "complementary":
            k = self.coefficients
            return readings[:, :k] - readings[:, k:]
        s = 2 * readings - readings[:, :1]
        return torch.cat([readings[:, :1], s[:, 1:]], dim=1)

    def spectrum(self, coefficients: Tensor) -> Tensor:
        """Coefficients ``[B, k]`` -> natural-order spectrum ``[B, grid, grid]``, with the Tikhonov/prior rule."""
        b, n = coefficients.shape[0], self.grid
        if self._prior is None:
            full = coefficients.new_zeros(b, n, n)
            measured = coefficients / (1 + self.tikhonov)
        else:
            prior = fwht2(self._prior.to(coefficients)) / (n * n)                  # [grid, grid]
            full = prior.expand(b, n, n).clone()
            sampled = prior[self._rows, self._cols]
            measured = (coefficients + self.tikhonov * sampled) / (1 + self.tikhonov)
        full[:, self._rows, self._cols] = measured
        return full

    def reconstruct(self, readings: Tensor) -> Tensor:
        gray = fwht2(self.spectrum(self.coefficients_of(readings)))               # [B, grid, grid]
        return gray.clamp(0, 1)[:, None]

    def budget(self) -> dict:
        use = (f"{self.d} 0/1 patterns incl. the all-on one -> {self.coefficients} signed coefficients"
               if self.scheme == "split" else
               f"{self.coefficients} complementary pairs -> {self.coefficients} signed coefficients")
        return {"readings": self.d, "scheme": self.scheme, "readings_use": use, "tikhonov": self.tikhonov,
                "prior": self._prior is not None, "training": "none"}
