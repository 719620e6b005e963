"""Poisson–Gaussian measurement model of a single-pixel detector.

Shared by training (differentiable mode) and the hardware simulator (exact mode).

All quantities are in *normalised reading units*: a reading of 1.0 is what an all-white scene gives
through an all-on mask. For a clean reading ``c`` the noisy reading has

    mean = c + ambient + dark_offset
    var  = (c + ambient) / photons_full_scale + read_noise ** 2      (shot term dropped if photons == 0)

followed, when ``adc_bits > 0``, by saturation at ``full_scale`` (and at 0 from below) and uniform
quantisation to ``2 ** adc_bits`` levels ``k * full_scale / (2 ** adc_bits - 1)``. Without an ADC the
readings are analogue: they are neither clipped nor quantised (``saturated`` still reports readings at or
above ``full_scale``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["NoiseModel"]

_MIN_STD_VAR = 1e-12  # keeps sqrt differentiable where the variance is exactly zero


class _StraightThroughRound(torch.autograd.Function):
    """round() in the forward pass, identity gradient in the backward pass."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        return torch.round(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        return grad


@dataclass
class NoiseModel:
    """Poisson–Gaussian detector noise with optional ADC (see module docstring for the formulas).

    Attributes:
        photons_full_scale: expected photo-electrons for a reading of 1.0; 0 disables shot noise.
        read_noise: Gaussian read-noise standard deviation (normalised units).
        adc_bits: ADC resolution; 0 disables saturation and quantisation.
        full_scale: ADC full scale (normalised units); readings above it saturate when ``adc_bits > 0``.
        dark_offset: additive dark level (normalised units, no shot noise).
        ambient: additive ambient light (normalised units) that carries shot noise.
        differentiable: True -> reparameterised Gaussian approximation of the Poisson term and
            straight-through rounding (training); False -> exact ``torch.poisson`` sampling (simulator).
    """

    photons_full_scale: float = 0.0
    read_noise: float = 0.0
    adc_bits: int = 0
    full_scale: float = 1.0
    dark_offset: float = 0.0
    ambient: float = 0.0
    differentiable: bool = True

    def __post_init__(self) -> None:
        if self.photons_full_scale < 0:
            raise ValueError(f"photons_full_scale must be >= 0 (0 disables shot noise), got {self.photons_full_scale}")
        if self.read_noise < 0:
            raise ValueError(f"read_noise is a standard deviation and must be >= 0, got {self.read_noise}")
        if not isinstance(self.adc_bits, int) or not 0 <= self.adc_bits <= 32:
            raise ValueError(f"adc_bits must be an int in [0, 32] (0 disables the ADC), got {self.adc_bits!r}")
        if self.full_scale <= 0:
            raise ValueError(f"full_scale must be > 0, got {self.full_scale}")
        if self.ambient < 0:
            raise ValueError(f"ambient light must be >= 0, got {self.ambient}")

    @property
    def enabled(self) -> bool:
        """False when every effect is switched off, in which case :meth:`apply` is the identity."""
        return bool(
            self.photons_full_scale > 0
            or self.read_noise > 0
            or self.adc_bits > 0
            or self.dark_offset != 0
            or self.ambient != 0
        )

    def variance(self, clean: Tensor) -> Tensor:
        """Per-reading variance before the ADC, same shape as ``clean``."""
        var = torch.full_like(clean, float(self.read_noise) ** 2)
        if self.photons_full_scale > 0:
            var = var + (clean + self.ambient).clamp_min(0) / self.photons_full_scale
        return var

    def apply(self, clean: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Add measurement noise.

        Args:
            clean: ``[..., d]`` non-negative normalised readings.
            generator: optional RNG (must live on ``clean.device``) for reproducible sampling.
        Returns:
            Noisy readings, same shape and dtype as ``clean``.
        """
        if not self.enabled:
            return clean
        if not torch.is_floating_point(clean):
            raise TypeError(f"clean readings must be a floating-point tensor, got dtype {clean.dtype}")
        signal = clean + self.ambient
        if self.photons_full_scale > 0:
            if self.differentiable:
                shot_std = torch.sqrt(signal.clamp_min(0) / self.photons_full_scale + _MIN_STD_VAR)
                signal = signal + shot_std * self._randn(clean, generator)
            else:
                rate = (signal.detach().clamp_min(0) * self.photons_full_scale)
                counts = torch.poisson(rate, generator=generator)
                signal = counts / self.photons_full_scale
        noisy = signal + self.dark_offset
        if self.read_noise > 0:
            noisy = noisy + self.read_noise * self._randn(clean, generator)
        if self.adc_bits > 0:
            noisy = self._adc(noisy)
        return noisy

    def saturated(self, readings: Tensor) -> Tensor:
        """Boolean mask of readings at or above ``full_scale``, same shape as ``readings``."""
        return readings >= self.full_scale

    def levels(self, dtype: torch.dtype = torch.float64, device: torch.device | str | None = None) -> Tensor:
        """All ``2 ** adc_bits`` ADC output values, ascending (requires ``adc_bits > 0``)."""
        if self.adc_bits <= 0:
            raise ValueError("levels() needs an ADC: set adc_bits > 0")
        n = 2 ** self.adc_bits - 1
        return torch.arange(n + 1, dtype=dtype, device=device) / n * self.full_scale

    # -- internals -------------------------------------------------------------------------------
    def _adc(self, x: Tensor) -> Tensor:
        n = 2 ** self.adc_bits - 1
        codes = x.clamp(0.0, self.full_scale) * (n / self.full_scale)
        codes = _StraightThroughRound.apply(codes) if self.differentiable else torch.round(codes)
        return codes / n * self.full_scale

    @staticmethod
    def _randn(like: Tensor, generator: torch.Generator | None) -> Tensor:
        return torch.randn(like.shape, generator=generator, dtype=like.dtype, device=like.device)
