"""Fourier single-pixel imaging: the 4-step phase-shift identity, exact inversion at full sampling, binary patterns."""

from __future__ import annotations

import pytest
import torch

from lsi.eval.baselines import BaselineError, FourierImaging
from lsi.eval.baselines.fourier import bayer_dither, floyd_steinberg, half_plane_frequencies

GRID = 16
FULL = 4 * (GRID * GRID // 2 + 2)


def _scenes(b: int = 2, grid: int = GRID) -> torch.Tensor:
    return torch.rand(b, 3, grid, grid, generator=torch.Generator().manual_seed(1))


def test_half_plane_with_conjugates_covers_every_bin_once():
    f = half_plane_frequencies(GRID)
    assert len(f) == GRID * GRID // 2 + 2 and f[0].tolist() == [0, 0]
    bins = {(int(x) % GRID, int(y) % GRID) for x, y in f} | {(-int(x) % GRID, -int(y) % GRID) for x, y in f}
    assert len(bins) == GRID * GRID
    radius = f[:, 0] ** 2 + f[:, 1] ** 2
    assert torch.all(radius[1:] >= radius[:-1])                              # low frequencies first


def test_phase_shift_identity_gives_the_dft_coefficients():
    method = FourierImaging(4 * 20, GRID, dither="none")
    scene = _scenes()
    coef = method.coefficients_of(method.measure(scene))                     # [B, 20] complex
    spectrum = torch.fft.fft2(scene.mean(1).double())                         # [B, fy, fx]
    fx, fy = method.freqs[:, 0], method.freqs[:, 1]
    assert torch.allclose(coef, spectrum[:, fy % GRID, fx % GRID], atol=1e-3)


def test_full_sampling_reconstructs_exactly():
    method = FourierImaging(FULL, GRID, dither="none")
    scene = _scenes()
    rec = method(scene)
    assert rec.shape == (2, 1, GRID, GRID)
    assert torch.allclose(rec[:, 0], scene.mean(1), atol=1e-5)


@pytest.mark.parametrize("dither", ["floyd_steinberg", "bayer"])
def test_dithered_patterns_are_binary_and_keep_low_frequencies(dither):
    grid = 64
    method = FourierImaging(4 * 12, grid, dither=dither)
    assert set(method.patterns().unique().tolist()) == {0.0, 1.0}
    y, x = torch.meshgrid(torch.linspace(0, 1, grid), torch.linspace(0, 1, grid), indexing="ij")
    smooth = (0.5 + 0.3 * torch.sin(3 * x) * torch.cos(2 * y))[None, None].expand(1, 3, -1, -1)
    exact = FourierImaging(4 * 12, grid, dither="none")
    a = method.coefficients_of(method.measure(smooth))
    b = exact.coefficients_of(exact.measure(smooth))
    assert float((a - b).abs().max() / b.abs().max()) < 0.03


def test_floyd_steinberg_preserves_the_local_mean():
    gray = torch.full((1, 32, 32), 0.25)
    binary = floyd_steinberg(gray)
    assert set(binary.unique().tolist()) == {0.0, 1.0}
    assert float(binary.mean()) == pytest.approx(0.25, abs=0.02)
    assert float(bayer_dither(gray).mean()) == pytest.approx(0.25, abs=0.02)


def test_idle_readings_and_bad_settings():
    method = FourierImaging(10, GRID, dither="none")                         # 2 coefficients, 2 idle readings
    assert method.patterns().shape == (10, GRID, GRID) and method.num_coefficients == 2
    assert "2 idle" in method.budget()["readings_use"]
    with pytest.raises(BaselineError, match="4 readings per coefficient"):
        FourierImaging(3, GRID)
    with pytest.raises(BaselineError, match="dither"):
        FourierImaging(8, GRID, dither="halftone")
