"""Closed-form read-outs: the ridge solution equals a reference least-squares solution; reading statistics."""

from __future__ import annotations

import pytest
import torch

from lsi.eval.linear_readout import fit_ridge, reading_statistics


def test_ridge_equals_reference_least_squares():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 6, generator=g, dtype=torch.float64)
    y = x @ torch.randn(6, 3, generator=g, dtype=torch.float64) + 0.1 * torch.randn(50, 3, generator=g,
                                                                                       dtype=torch.float64) + 2.0
    lam = 0.05
    weight, bias = fit_ridge(x.float(), y.float(), lam)
    # reference: augmented least squares [x 1; sqrt(lam N) I 0] [w; b] = [y; 0] (bias unpenalised)
    n, d = x.shape
    a = torch.cat([torch.cat([x, torch.ones(n, 1, dtype=torch.float64)], 1),
                   torch.cat([(lam * n) ** 0.5 * torch.eye(d, dtype=torch.float64), torch.zeros(d, 1,
                                                                                            dtype=torch.float64)], 1)])
    b = torch.cat([y, torch.zeros(d, 3, dtype=torch.float64)])
    ref = torch.linalg.lstsq(a, b).solution
    assert torch.allclose(weight.double(), ref[:d].T, atol=1e-5)
    assert torch.allclose(bias.double(), ref[d], atol=1e-5)
    # lam = 0 is ordinary least squares
    w0, b0 = fit_ridge(x.float(), y.float(), 0.0)
    ols = torch.linalg.lstsq(torch.cat([x, torch.ones(n, 1, dtype=torch.float64)], 1), y).solution
    assert torch.allclose(w0.double(), ols[:d].T, atol=1e-4) and torch.allclose(b0.double(), ols[d], atol=1e-4)


def test_ridge_input_errors():
    with pytest.raises(ValueError, match="same N"):
        fit_ridge(torch.zeros(4, 2), torch.zeros(5, 1))
    with pytest.raises(ValueError, match=">= 0"):
        fit_ridge(torch.zeros(4, 2), torch.zeros(4, 1), -1.0)


def test_reading_statistics_standardise_and_whiten():
    g = torch.Generator().manual_seed(1)
    mix = torch.tensor([[1.0, 0.9, 0.0], [0.0, 0.1, 0.0], [0.0, 0.0, 3.0]])
    r = 0.5 + torch.randn(4000, 3, generator=g) @ mix
    mean, t = reading_statistics(r)
    z = (r - mean) @ t
    assert torch.allclose(z.std(0), torch.ones(3), atol=1e-3) and torch.allclose(t, torch.diag(t.diagonal()))
    mean, t = reading_statistics(r, whiten=True, eps=0.0)
    z = (r - mean) @ t
    assert torch.allclose(torch.cov(z.T), torch.eye(3), atol=1e-3)
    assert torch.allclose(t, t.T, atol=1e-5)  # ZCA: symmetric
