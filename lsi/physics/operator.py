"""Optical encoder O: d learnable, quantised DMD masks read by a single (monochrome) photodiode.

Measurement model (normalised units): the detector integrates over pixels and colour channels, and
readings are *means*, so an all-white scene through an all-on mask reads exactly 1.0::

    y_k = 1 / (C * H * W) * sum_{c, p} m_k[p] * x[c, p]            x: [B, C, H, W], C in {1, 3}

With ``complementary=True`` every mask is also shown inverted and the readings are *stacked*:
``y[:, :d]`` uses the masks ``m_k``, ``y[:, d:]`` uses ``1 - m_k`` (same order), so ``y`` is ``[B, 2d]``.

:func:`measure` is this rule and its only implementation: :meth:`OpticalEncoder.A` and the simulated rig
(``hardware.sim``) both call it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lsi.physics import patterns
from lsi.physics.mask_files import MaskFormatError, MaskMeta, load_masks, save_masks
from lsi.physics.noise import NoiseModel

__all__ = [
    "OpticalEncoder", "detector_image", "energy_targets", "measure", "measure_detector_image", "quantise_ste",
    "valid_ratios",
]


def measure(patterns: Tensor, scene: Tensor) -> Tensor:
    """The measurement rule: ``[P, H, W]`` patterns, ``[B, C, H, W]`` scenes -> readings ``[B, P]``.

    ``y[b, k] = mean over c, p of patterns[k, p] * scene[b, c, p]``: the photodiode integrates every pixel and
    colour channel, in normalised units (all-on pattern, all-white scene -> 1.0). Computed in the scene's dtype,
    as :func:`measure_detector_image` of :func:`detector_image` (so both routes give identical readings).
    """
    return measure_detector_image(patterns, detector_image(scene))


def detector_image(scene: Tensor) -> Tensor:
    """What the single (monochrome) photodiode sees of a scene: the channel mean, ``[B, C, H, W] -> [B, H*W]``.
    The measurement is linear in it, so a training loop may cache it once per scene (the staged recipe does)."""
    return scene.mean(dim=1).flatten(1)


def measure_detector_image(patterns: Tensor, image: Tensor) -> Tensor:
    """Readings ``[B, P]`` of detector images ``[B, H*W]`` (:func:`detector_image`) through ``[P, H, W]`` patterns.

    Never under autocast: readings are small differences on a large mean, which bf16's 8-bit mantissa would erase.
    """
    with torch.autocast(image.device.type, enabled=False):
        p = patterns.to(image.dtype).flatten(1)  # [P, N]
        return image @ p.t() / p.shape[1]


def _levels(m: Tensor, n: int) -> Tensor:
    """``round(clamp(m, 0, 1) * n) / n`` in one allocation (clamp, then in place; binary masks skip the scaling).

    Measured on ``[128, 256, 256]`` masks, 2 threads: 30 CPU-ms for 1 bit, 45 for 8 bits, against 88 for the
    out-of-place chain (four passes, four allocations); the values are bit-identical.
    """
    q = m.clamp(0, 1)
    if n == 1:
        return q.round_()
    return q.mul_(n).round_().div_(n)


class _QuantiseSTE(torch.autograd.Function):
    """Forward: exact levels ``round(clamp(m, 0, 1) * n) / n``; backward: identity inside [0, 1], 0 outside."""

    @staticmethod
    def forward(ctx, m: Tensor, n: int) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward((m >= 0) & (m <= 1))
        return _levels(m, n)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        (inside,) = ctx.saved_tensors
        return grad * inside.to(grad.dtype), None


class _QuantiseIdentitySTE(torch.autograd.Function):
    """Forward: the same levels; backward: the identity (nothing saved, no mask-sized gradient pass)."""

    @staticmethod
    def forward(ctx, m: Tensor, n: int) -> Tensor:  # type: ignore[override]
        return _levels(m, n)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        return grad, None


def quantise_ste(masks: Tensor, bits: int, clip_gradient: bool = True) -> Tensor:
    """Quantise to the ``2**bits`` levels ``{0, 1/(2^bits-1), ..., 1}`` with a straight-through gradient.

    ``clip_gradient``: the gradient is zero where ``masks`` lies outside [0, 1]; False passes it through unchanged
    (the identity), which is the same gradient for masks inside [0, 1] and one pass cheaper per step.
    """
    return (_QuantiseSTE if clip_gradient else _QuantiseIdentitySTE).apply(masks, 2**bits - 1)


def valid_ratios(grid: int = 256) -> list[int]:
    """Compression ratios ``r`` with ``grid**2 % r == 0`` (so ``d = grid**2 // r >= 1``)."""
    n = grid * grid
    return [r for r in range(1, n + 1) if n % r == 0]


def energy_targets(d: int, a: float, b: float) -> Tensor:
    """Mean-intensity targets (fractions in [0, 1]) for the energy-efficiency loss, ``[d]`` float32.

    Targets are ``a%, a+1%, a+2%, ...`` (1% apart, index order). When ``d`` exceeds the ``floor(b - a) + 1``
    levels available in ``[a%, b%]`` they *cycle*: target ``i`` is ``a + (i mod n_levels)`` percent, so every
    target stays inside ``[a, b]`` and each level is used ``ceil``/``floor(d / n_levels)`` times.
    """
    if d < 1:
        raise ValueError(f"need d >= 1 masks, got {d}")
    if not 0 <= a <= b <= 100:
        raise ValueError(f"energy range must satisfy 0 <= a <= b <= 100 (percent), got a={a}, b={b}")
    n_levels = int(np.floor(b - a + 1e-9)) + 1
    idx = torch.arange(d, dtype=torch.float64) % n_levels
    return ((a + idx) / 100.0).float()


class OpticalEncoder(nn.Module):
    """Learned quantised DMD masks and a single-pixel detector.

    Args:
        ratio: compression ratio; ``d = grid**2 // ratio`` masks (must divide ``grid**2``).
        bits: mask bit depth (1 = binary DMD patterns).
        grid: DMD grid side (masks are ``grid x grid``).
        init: ``"uniform"`` (0.5 +- small noise), ``"uniform01"`` (U[0,1], the official LSI init),
            ``"random_binary"`` or ``"hadamard"`` (2-D Walsh-Hadamard, low sequency first).
        mask_dropout: train-time dropout on readings (standard inverted dropout: zero + rescale by 1/(1-p)).
        input_dropout: train-time dropout on scene pixels, shared over colour channels (inverted dropout).
        noise: detector noise model applied in :meth:`forward` (train and eval); None = noiseless.
        complementary: also measure ``1 - mask`` (readings stacked as ``[masks | complements]``).
        frozen: masks do not receive gradients.
        seed: seed of the random inits.
    """

    def __init__(
        self,
        ratio: int = 512,
        bits: int = 1,
        grid: int = 256,
        init: str = "uniform",
        mask_dropout: float = 0.0,
        input_dropout: float = 0.0,
        noise: NoiseModel | None = None,
        complementary: bool = False,
        frozen: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__()
        n = grid * grid
        if not isinstance(ratio, (int, np.integer)) or ratio < 1 or n % ratio:
            raise ValueError(
                f"ratio {ratio!r} is invalid for a {grid}x{grid} grid: it must divide {n} so that d = {n} // ratio "
                f"is a whole number >= 1; valid ratios: {valid_ratios(grid)}"
            )
        if not 1 <= bits <= 16:
            raise ValueError(f"bits must be in [1, 16] (1 = binary DMD masks), got {bits}")
        if init not in patterns.INITS:
            raise ValueError(f"unknown mask init {init!r}; choose one of {sorted(patterns.INITS)}")
        for name, p in (("mask_dropout", mask_dropout), ("input_dropout", input_dropout)):
            if not 0 <= p < 1:
                raise ValueError(f"{name} must be in [0, 1), got {p}")
        self.ratio, self.bits, self.grid = int(ratio), int(bits), int(grid)
        self.d = n // self.ratio
        self.mask_dropout, self.input_dropout = float(mask_dropout), float(input_dropout)
        self.noise = noise
        self.complementary = bool(complementary)
        self.init_name = init
        start = patterns.INITS[init](self.d, grid, seed)
        self.masks = nn.Parameter(start, requires_grad=not frozen)
        self._pattern_cache: tuple[tuple, Tensor] | None = None  # (key, patterns): see _cached_patterns

    # -- masks ---------------------------------------------------------------------------------
    @property
    def levels(self) -> int:
        """Highest quantisation code, ``2**bits - 1``."""
        return 2**self.bits - 1

    @property
    def num_readings(self) -> int:
        """Readings per scene: ``d``, or ``2d`` when complementary."""
        return 2 * self.d if self.complementary else self.d

    @property
    def frozen(self) -> bool:
        return not self.masks.requires_grad

    def freeze(self, frozen: bool = True) -> None:
        """Stop (or, with False, resume) mask learning."""
        self.masks.requires_grad_(not frozen)

    def effective_masks(self) -> Tensor:
        """Quantised masks actually shown on the DMD, ``[d, grid, grid]``, with an identity straight-through gradient
        to ``masks`` (the LSI module projects the masks into [0, 1] after every step, where the identity equals the
        clipped STE of :func:`quantise_ste`; it saves a mask-sized boolean and a gradient pass per step)."""
        if self._needs_mask_gradient():
            return quantise_ste(self.masks, self.bits, clip_gradient=False)
        return self._cached_patterns()[: self.d]

    def patterns(self) -> Tensor:
        """All displayed patterns in reading order, ``[num_readings, grid, grid]``.

        While the masks cannot receive a gradient (frozen, or autograd off as in evaluation) the patterns are
        quantised once and served from a cache until the masks change; treat the result as read-only.
        """
        if not self._needs_mask_gradient():
            return self._cached_patterns()
        m = quantise_ste(self.masks, self.bits, clip_gradient=False)
        return torch.cat([m, 1 - m], dim=0) if self.complementary else m

    # -- the pattern cache ---------------------------------------------------------------------
    def _needs_mask_gradient(self) -> bool:
        return self.masks.requires_grad and torch.is_grad_enabled()

    def _pattern_key(self) -> tuple:
        """What the cached patterns depend on: the masks' storage and in-place version (every optimiser step,
        ``copy_`` and ``load_state_dict`` bumps it), dtype, device, bits, complements and inference mode."""
        m = self.masks
        return (m._version, m.data_ptr(), m.dtype, m.device, self.bits, self.complementary,
                torch.is_inference_mode_enabled())

    def _cached_patterns(self) -> Tensor:
        key = self._pattern_key()
        if self._pattern_cache is None or self._pattern_cache[0] != key:
            with torch.no_grad():
                m = _levels(self.masks, self.levels)
                pats = torch.cat([m, 1 - m], dim=0) if self.complementary else m
            self._pattern_cache = (key, pats)
        return self._pattern_cache[1]

    def clear_pattern_cache(self) -> None:
        """Drop the cached patterns (done automatically when the masks change; needed only after replacing
        ``masks.data`` by hand)."""
        self._pattern_cache = None

    def _apply(self, fn, recurse: bool = True):  # .to(), .float(), .cuda(): the cache would be stale
        self.clear_pattern_cache()
        return super()._apply(fn, recurse)

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        self.clear_pattern_cache()
        super()._load_from_state_dict(*args, **kwargs)

    # -- forward operator ----------------------------------------------------------------------
    def _check_scene(self, x: Tensor) -> None:
        if x.ndim != 4 or x.shape[1] not in (1, 3) or tuple(x.shape[2:]) != (self.grid, self.grid):
            raise ValueError(
                f"scene must be [B, 1 or 3, {self.grid}, {self.grid}] (resize/crop to the DMD grid first), "
                f"got {tuple(x.shape)}"
            )

    def A(self, x: Tensor) -> Tensor:
        """Noiseless linear measurement: ``[B, C, grid, grid] -> [B, num_readings]`` (see module docstring)."""
        self._check_scene(x)
        return measure(self.patterns(), x)

    def A_adjoint(self, y: Tensor, channels: int = 1) -> Tensor:
        """Exact adjoint of :meth:`A` for ``channels``-channel scenes: ``[B, num_readings] -> [B, C, grid, grid]``."""
        if y.ndim != 2 or y.shape[1] != self.num_readings:
            raise ValueError(f"readings must be [B, {self.num_readings}], got {tuple(y.shape)}")
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        p = self.patterns().to(y.dtype).flatten(1)
        img = (y @ p) / (p.shape[1] * channels)
        return img.view(-1, 1, self.grid, self.grid).expand(-1, channels, -1, -1).contiguous()

    def forward(self, x: Tensor, add_noise: bool = True, generator: torch.Generator | None = None) -> Tensor:
        """Simulated capture: input dropout (train), :meth:`A`, detector noise, reading dropout (train).

        ``x``: ``[B, C, grid, grid]`` scene in [0, 1] -> ``[B, num_readings]``.
        """
        if self.training and self.input_dropout > 0:
            keep = torch.ones_like(x[:, :1])
            x = x * F.dropout(keep, self.input_dropout, training=True)
        return self.detect(self.A(x), add_noise, generator)

    def forward_detector_image(self, image: Tensor, add_noise: bool = True,
                               generator: torch.Generator | None = None) -> Tensor:
        """:meth:`forward` of detector images ``[B, grid*grid]`` (:func:`detector_image` of the scenes): the same
        readings, dropout and noise, without re-reading the colour scenes."""
        if image.ndim != 2 or image.shape[1] != self.grid * self.grid:
            raise ValueError(f"detector images must be [B, {self.grid * self.grid}], got {tuple(image.shape)}")
        if self.training and self.input_dropout > 0:
            image = image * F.dropout(torch.ones_like(image), self.input_dropout, training=True)
        return self.detect(measure_detector_image(self.patterns(), image), add_noise, generator)

    def detect(self, y: Tensor, add_noise: bool = True, generator: torch.Generator | None = None) -> Tensor:
        """Detector noise, then reading dropout (train), on noiseless readings ``y [B, num_readings]`` (what
        :meth:`forward` does after :meth:`A`; a training loop that caches noiseless readings calls it per step)."""
        if add_noise and self.noise is not None:
            y = self.noise.apply(y, generator=generator)
        if self.training and self.mask_dropout > 0:
            y = F.dropout(y, self.mask_dropout, training=True)
        return y

    # -- energy-efficiency loss ----------------------------------------------------------------
    def mean_intensities(self) -> Tensor:
        """Mean of each quantised mask, ``[d]`` (fraction of on-mirrors for binary masks)."""
        return self.effective_masks().mean(dim=(1, 2))

    def energy_loss(self, a: float, b: float, p: int = 1) -> Tensor:
        """Push the mask means to distinct 1%-spaced targets in ``[a%, b%]`` (scalar).

        Masks are ranked by their current mean (stable sort, detached) and the sorted targets of
        :func:`energy_targets` are assigned in rank order; ``p=1`` -> mean L1, ``p=2`` -> mean squared error.
        """
        if p not in (1, 2):
            raise ValueError(f"energy loss norm p must be 1 or 2, got {p}")
        means = self.mean_intensities()
        targets = torch.sort(energy_targets(self.d, a, b)).values.to(means)
        order = torch.argsort(means.detach(), stable=True)
        diff = means[order] - targets
        return diff.abs().mean() if p == 1 else diff.pow(2).mean()

    # -- mask files ----------------------------------------------------------------------------
    def mask_codes(self) -> np.ndarray:
        """Displayed patterns as integer codes ``[num_readings, grid, grid]`` (uint8, or uint16 above 8 bits)."""
        dtype = np.uint8 if self.bits <= 8 else np.uint16
        with torch.no_grad():
            codes = torch.round(self.patterns().double() * self.levels)
        return codes.cpu().numpy().astype(dtype)

    def export_masks(self, path: str | os.PathLike, source: str = "") -> MaskMeta:
        """Write the displayed patterns (``2d`` when complementary, in reading order) with a sidecar."""
        src = source or (f"lsi.physics.operator.OpticalEncoder(ratio={self.ratio}, bits={self.bits}, "
                         f"init={self.init_name!r})")
        return save_masks(path, self.mask_codes(), ratio=self.ratio, bits=self.bits, source=src)

    def load_masks_into(self, path: str | os.PathLike, freeze: bool = True) -> MaskMeta:
        """Replace the masks with those of a mask file (``d`` masks, or ``2d`` complementary patterns).

        With ``freeze`` the masks stop receiving gradients.
        """
        codes, meta = load_masks(path, bits=self.bits, shape=(self.grid, self.grid))
        count = codes.shape[0]
        if self.complementary and count == 2 * self.d:
            base, comp = codes[: self.d], codes[self.d :]
            if not np.array_equal(comp.astype(np.int64), self.levels - base.astype(np.int64)):
                raise MaskFormatError(
                    f"{str(path)!r} holds {count} patterns but its second half is not the complement of the first; "
                    "a complementary encoder expects [masks | 1 - masks]"
                )
            codes = base
        elif count != self.d:
            expected = f"{self.d}" + (f" or {2 * self.d} (with complements)" if self.complementary else "")
            raise MaskFormatError(
                f"{str(path)!r} holds {count} masks but this encoder (ratio {self.ratio}) needs {expected}; "
                f"build the encoder with ratio={self.grid ** 2 // count if self.grid ** 2 % count == 0 else '?'} "
                "or use OpticalEncoder.from_masks_file"
            )
        values = torch.from_numpy(codes.astype(np.float64) / self.levels).to(self.masks)
        with torch.no_grad():
            self.masks.copy_(values)
        self.freeze(freeze)
        return meta

    @classmethod
    def from_masks_file(cls, path: str | os.PathLike, freeze: bool = True, **kwargs) -> OpticalEncoder:
        """Build an encoder whose ratio/bits/grid match a mask file, and load it (see :meth:`load_masks_into`)."""
        _, meta = load_masks(path, shape=None)
        d = meta.count // 2 if kwargs.get("complementary", False) else meta.count
        if meta.height != meta.width:
            raise MaskFormatError(f"{Path(path).name}: masks must be square, got {meta.height}x{meta.width}")
        enc = cls(ratio=meta.height * meta.width // d, bits=meta.bits, grid=meta.height, **kwargs)
        enc.load_masks_into(path, freeze=freeze)
        return enc

    def extra_repr(self) -> str:
        return (
            f"ratio={self.ratio}, d={self.d}, bits={self.bits}, grid={self.grid}, "
            f"complementary={self.complementary}, frozen={self.frozen}, noise={self.noise}"
        )
