"""Initial mask sets for the optical encoder: uniform (learnable), random binary, Hadamard (Walsh order).

All functions return float32 tensors of shape ``[d, grid, grid]`` with values in ``[0, 1]``.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["uniform", "random_binary", "hadamard", "hadamard_rows", "walsh_to_natural", "INITS"]


def _check(d: int, grid: int) -> None:
    if d < 1 or grid < 1:
        raise ValueError(f"need d >= 1 masks on a grid >= 1, got d={d}, grid={grid}")


def uniform(d: int, grid: int = 256, seed: int = 0, spread: float = 0.05) -> Tensor:
    """Continuous masks ``0.5 + U(-spread, spread)``, a neutral start for learning. ``[d, grid, grid]``."""
    _check(d, grid)
    g = torch.Generator().manual_seed(seed)
    return 0.5 + spread * (2 * torch.rand(d, grid, grid, generator=g) - 1)


def random_binary(d: int, grid: int = 256, seed: int = 0) -> Tensor:
    """I.i.d. Bernoulli(0.5) masks in ``{0, 1}``. ``[d, grid, grid]``."""
    _check(d, grid)
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(d, grid, grid, generator=g) < 0.5).float()


def walsh_to_natural(k: Tensor, nbits: int) -> Tensor:
    """Natural (Sylvester) row index of the row with sequency ``k``: bit-reverse of the Gray code of ``k``."""
    gray = k ^ (k >> 1)
    out = torch.zeros_like(k)
    for b in range(nbits):
        out |= ((gray >> b) & 1) << (nbits - 1 - b)
    return out


def hadamard_rows(rows: Tensor, n: int) -> Tensor:
    """Rows of the ``n x n`` Sylvester Hadamard matrix (natural order), entries ``+-1``, without building it.

    ``H[i, j] = (-1) ** popcount(i & j)``. ``rows``: int64 ``[r]`` -> float32 ``[r, n]``.
    """
    if n < 1 or n & (n - 1):
        raise ValueError(f"a Sylvester Hadamard matrix needs a power-of-two size, got {n}")
    cols = torch.arange(n, dtype=torch.int64)
    x = rows.to(torch.int64)[:, None] & cols[None, :]
    parity = torch.zeros_like(x)
    while bool(x.any()):
        parity ^= x & 1
        x = x >> 1
    return 1.0 - 2.0 * parity.float()


def hadamard(d: int, grid: int = 256) -> Tensor:
    """The first ``d`` rows (sequency/Walsh order) of the ``grid**2`` Sylvester Hadamard matrix as masks.

    Rows are ordered by sequency (number of sign changes along the flattened row-major mask, lowest
    first, so mask 0 is all-on), mapped to ``{0, 1}`` via ``(1 + H) / 2`` and reshaped to ``grid x grid``.
    Rows are generated on demand; the full matrix is never built. ``[d, grid, grid]``.
    """
    _check(d, grid)
    n = grid * grid
    if n & (n - 1):
        raise ValueError(f"Hadamard masks need grid*grid to be a power of two, got grid={grid}")
    if d > n:
        raise ValueError(f"a {n}x{n} Hadamard matrix has only {n} rows, asked for d={d}")
    nbits = n.bit_length() - 1
    out = torch.empty(d, grid, grid)
    chunk = max(1, (1 << 22) // n)
    for start in range(0, d, chunk):
        k = torch.arange(start, min(d, start + chunk), dtype=torch.int64)
        rows = hadamard_rows(walsh_to_natural(k, nbits), n)
        out[start : start + k.numel()] = ((1.0 + rows) / 2).view(-1, grid, grid)
    return out


INITS = {"uniform": uniform, "random_binary": random_binary, "hadamard": hadamard}
