"""lsi.experiments.rig_gap.reading_gap: gain, offset, white residual and where the signal sits below it."""

import pytest
import torch

from lsi.experiments.rig_gap import reading_gap, render


def _readings(n: int = 400, d: int = 16) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    scales = torch.logspace(-5, -1, d)  # a spectrum like a mask set's: a few strong, many weak directions
    basis, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    return (0.5 + (torch.randn(n, d, generator=g, dtype=torch.float64) * scales) @ basis.T).float()


def test_identical_readings_have_no_gap():
    y = _readings()
    gap = reading_gap(y, y.clone())
    assert gap["gain_mean"] == pytest.approx(1.0, abs=1e-5) and gap["residual_rms"] < 1e-6
    assert all(b["residual_rms"] < 1e-6 for b in gap["bands"])


def test_gain_offset_and_white_noise_are_recovered():
    y = _readings()
    sigma = 1e-3
    noise = torch.randn(y.shape, generator=torch.Generator().manual_seed(1)) * sigma
    gap = reading_gap(y, 1.01 * y + 0.02 + noise, normalise=lambda r: (r - y.mean(0)) / y.std(0), bands=4)
    assert gap["gain_mean"] == pytest.approx(1.01, abs=0.02) and gap["offset_mean"] == pytest.approx(0.0, abs=0.05)
    assert gap["residual_rms"] == pytest.approx(sigma, rel=0.15)
    weakest, strongest = gap["bands"][0], gap["bands"][-1]
    assert weakest["signal_rms"] < weakest["residual_rms"]  # drowned by the noise
    assert strongest["signal_rms"] > 10 * strongest["residual_rms"]
    assert gap["normalised"]["rig_minus_simulated"] > 0 and "signal rms" in render(gap)


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="same shape"):
        reading_gap(torch.zeros(4, 3), torch.zeros(4, 2))
