"""Hadamard single-pixel imaging: the fast WHT, orthogonal DMD-realisable patterns, exact inversion at full sampling."""

from __future__ import annotations

import pytest
import torch

from lsi.eval.baselines import BaselineError, HadamardImaging
from lsi.eval.baselines.hadamard import fwht, fwht2
from lsi.physics.operator import measure
from lsi.physics.patterns import hadamard_rows

GRID = 16
N = GRID * GRID


def _scenes(b: int = 3) -> torch.Tensor:
    return torch.rand(b, 3, GRID, GRID, generator=torch.Generator().manual_seed(0))


def test_fwht_is_the_sylvester_matrix_and_its_own_inverse_up_to_n():
    x = torch.randn(4, 32, dtype=torch.float64)
    h = hadamard_rows(torch.arange(32), 32).double()
    assert torch.allclose(fwht(x), x @ h.t())
    assert torch.allclose(fwht(fwht(x)), 32 * x)
    img = torch.randn(2, 8, 8, dtype=torch.float64)
    h8 = hadamard_rows(torch.arange(8), 8).double()
    assert torch.allclose(fwht2(img), h8 @ img @ h8)


def test_fwht_refuses_other_lengths():
    with pytest.raises(BaselineError, match="power-of-two"):
        fwht(torch.zeros(3, 12))


def test_split_patterns_are_binary_and_their_signed_versions_orthogonal():
    method = HadamardImaging(N, GRID)
    p = method.patterns()
    assert p.shape == (N, GRID, GRID) and set(p.unique().tolist()) == {0.0, 1.0}
    assert torch.all(p[0] == 1)                                           # pattern 0 is all-on
    signed = (2 * p - 1).flatten(1).double()
    assert torch.allclose(signed @ signed.t(), N * torch.eye(N, dtype=torch.float64))


@pytest.mark.parametrize("scheme, d", [("split", N), ("complementary", 2 * N)])
def test_full_sampling_reconstructs_the_gray_scene_exactly(scheme, d):
    method = HadamardImaging(d, GRID, scheme=scheme)
    scene = _scenes()
    rec = method(scene)
    assert rec.shape == (3, 1, GRID, GRID)
    assert torch.allclose(rec[:, 0], scene.mean(1), atol=1e-5)
    if scheme == "complementary":
        p = method.patterns()
        assert torch.equal(p[N:], 1 - p[:N])


def test_partial_sampling_is_the_pseudo_inverse_of_the_sampled_rows():
    d = 40
    method = HadamardImaging(d, GRID)
    signed = (2 * method.patterns() - 1)
    coef = torch.randn(2, d, dtype=torch.float64) * 0.02
    coef[:, 0] = 0.5
    gray = torch.einsum("bk,khw->bhw", coef, signed.double())              # inside the sampled span
    scene = gray[:, None].expand(-1, 3, -1, -1).float()
    assert torch.allclose(method.coefficients_of(method.measure(scene)).double(), coef, atol=1e-5)
    assert torch.allclose(method.reconstruct(method.measure(scene))[:, 0].double(), gray.clamp(0, 1), atol=1e-5)
    # any scene: the residual is orthogonal to every sampled pattern (least squares on the sampled rows)
    s = _scenes(2)
    residual = s.mean(1) - fwht2(method.spectrum(method.coefficients_of(method.measure(s))))
    assert measure(signed, residual[:, None]).abs().max() < 1e-5


def test_tikhonov_shrinks_towards_the_prior_and_fills_unmeasured_coefficients():
    scene = _scenes(1)
    prior = torch.full((GRID, GRID), 0.3)
    plain = HadamardImaging(8, GRID)
    shrunk = HadamardImaging(8, GRID, tikhonov=1.0)
    with_prior = HadamardImaging(8, GRID, tikhonov=1.0, prior=prior)
    c = plain.coefficients_of(plain.measure(scene))
    assert torch.allclose(shrunk.spectrum(c), plain.spectrum(c) / 2)
    spec = with_prior.spectrum(c)
    rows, cols = with_prior._rows, with_prior._cols
    assert torch.allclose(spec[0, rows[0], cols[0]], (c[0, 0] + 0.3) / 2)     # DC of the prior is 0.3
    assert torch.allclose(spec[0, rows[1:], cols[1:]], c[0, 1:] / 2, atol=1e-7)
    # a flat prior has no other coefficient: the unmeasured ones stay zero
    assert float(spec.abs().sum()) == pytest.approx(float(spec[0, rows, cols].abs().sum()), rel=1e-6)


def test_bad_settings_are_refused():
    with pytest.raises(BaselineError, match="scheme"):
        HadamardImaging(8, GRID, scheme="signed")
    with pytest.raises(BaselineError, match="even"):
        HadamardImaging(7, GRID, scheme="complementary")
    with pytest.raises(BaselineError, match="Walsh-Hadamard patterns"):
        HadamardImaging(N + 1, GRID)
    with pytest.raises(BaselineError, match="readings must be"):
        HadamardImaging(8, GRID).reconstruct(torch.zeros(2, 9))
