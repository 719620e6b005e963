"""Tests for lsi.physics.noise.NoiseModel."""

from __future__ import annotations

import pytest
import torch

from lsi.physics.noise import NoiseModel

N_SAMPLES = 200_000


def _stats(model: NoiseModel, clean_value: float, seed: int = 0) -> tuple[float, float]:
    clean = torch.full((N_SAMPLES,), clean_value, dtype=torch.float64)
    g = torch.Generator().manual_seed(seed)
    y = model.apply(clean, generator=g)
    return y.mean().item(), y.var().item()


@pytest.mark.parametrize("differentiable", [True, False])
@pytest.mark.parametrize("clean_value", [0.05, 0.4])
def test_mean_and_variance_match_formula(differentiable: bool, clean_value: float) -> None:
    m = NoiseModel(photons_full_scale=500.0, read_noise=0.01, dark_offset=0.02, ambient=0.03,
                   differentiable=differentiable)
    mean, var = _stats(m, clean_value)
    want_mean = clean_value + m.ambient + m.dark_offset
    want_var = (clean_value + m.ambient) / m.photons_full_scale + m.read_noise**2
    # standard error of the mean is sqrt(var/N); of the variance about var*sqrt(2/N)
    assert abs(mean - want_mean) < 5 * (want_var / N_SAMPLES) ** 0.5
    assert abs(var - want_var) < 0.03 * want_var
    assert torch.allclose(m.variance(torch.tensor([clean_value], dtype=torch.float64)),
                          torch.tensor([want_var], dtype=torch.float64))


def test_exact_mode_is_poisson_counts() -> None:
    m = NoiseModel(photons_full_scale=20.0, differentiable=False)
    y = m.apply(torch.full((10_000,), 0.3), generator=torch.Generator().manual_seed(1))
    counts = y * 20.0
    assert torch.allclose(counts, counts.round(), atol=1e-4)  # integer photo-electron counts
    assert (counts >= 0).all()


@pytest.mark.parametrize("differentiable", [True, False])
@pytest.mark.parametrize("bits", [1, 3, 8])
def test_adc_output_takes_only_allowed_levels(differentiable: bool, bits: int) -> None:
    m = NoiseModel(photons_full_scale=100.0, read_noise=0.05, adc_bits=bits, full_scale=0.8,
                   differentiable=differentiable)
    clean = torch.linspace(0, 1.2, 5000, dtype=torch.float64)
    y = m.apply(clean, generator=torch.Generator().manual_seed(0))
    levels = m.levels(dtype=torch.float64)
    assert levels.numel() == 2**bits
    assert torch.isin(y, levels).all()
    assert y.max() <= m.full_scale and y.min() >= 0
    assert m.saturated(y).any()  # clean readings above full scale saturate
    assert torch.equal(m.saturated(y), y >= m.full_scale)


def test_gradients_flow_in_differentiable_mode() -> None:
    m = NoiseModel(photons_full_scale=1000.0, read_noise=0.01, adc_bits=10, differentiable=True)
    clean = torch.rand(64, 16, dtype=torch.float64) * 0.5
    clean.requires_grad_(True)
    y = m.apply(clean, generator=torch.Generator().manual_seed(0))
    (y * torch.arange(16, dtype=torch.float64)).sum().backward()
    assert clean.grad is not None
    assert torch.isfinite(clean.grad).all()
    assert clean.grad.abs().sum() > 0
    # zero-signal readings keep a finite gradient (no sqrt(0) blow-up)
    z = torch.zeros(8, requires_grad=True)
    NoiseModel(photons_full_scale=10.0).apply(z).sum().backward()
    assert torch.isfinite(z.grad).all()


def test_disabled_model_is_identity() -> None:
    m = NoiseModel()
    assert not m.enabled
    x = torch.rand(4, 32)
    assert m.apply(x) is x
    assert NoiseModel(read_noise=0.1).enabled
    assert NoiseModel(dark_offset=0.1).enabled


def test_generator_makes_sampling_reproducible() -> None:
    m = NoiseModel(photons_full_scale=50.0, read_noise=0.02, differentiable=False)
    x = torch.rand(3, 100)
    a = m.apply(x, generator=torch.Generator().manual_seed(7))
    b = m.apply(x, generator=torch.Generator().manual_seed(7))
    c = m.apply(x, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == x.shape and a.dtype == x.dtype


@pytest.mark.parametrize("kwargs, word", [
    ({"photons_full_scale": -1.0}, "photons_full_scale"),
    ({"read_noise": -0.1}, "read_noise"),
    ({"adc_bits": -2}, "adc_bits"),
    ({"full_scale": 0.0}, "full_scale"),
])
def test_invalid_parameters_rejected(kwargs: dict, word: str) -> None:
    with pytest.raises(ValueError, match=word):
        NoiseModel(**kwargs)
