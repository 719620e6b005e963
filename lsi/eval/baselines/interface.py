"""The one interface of every image-reconstruction baseline: patterns -> measure -> reconstruct.

A :class:`Baseline` shows ``d`` DMD patterns ``[d, grid, grid]`` in [0, 1] (:meth:`Baseline.patterns`), reads a
scene ``[B, 3, grid, grid]`` in [0, 1] through the project's one measurement rule
(:func:`lsi.physics.operator.measure`: readings are *means* over pixels and RGB, ``[B, d]``) and reconstructs an
image ``[B, C, grid, grid]`` in [0, 1] from the readings alone (:meth:`Baseline.reconstruct`).

Colour. A single photodiode integrates the three channels, so the readings see only the channel mean
``g = mean_c x``. Classical methods (Hadamard, FSI, DGI) therefore reconstruct ``g`` (``C = 1``); they are scored as
gray replicated to three channels against the colour scene. Learned methods (FSI-DL, unfolding) and the generator-
based ones (CSGM, the latent ridge) output ``C = 3``: a network trained on colour scenes may learn the world's
colours from gray readings, as LSI does through G.

Resolution. Methods that work at G's 64 px (the learned networks, CSGM, the latent ridge) return their 64-px image
nearest-upsampled to the grid (:func:`upsample_nearest`), so that area-downscaling it back to 64 px, as the
evaluation does, gives exactly their own output.

:class:`TrainingData` is what the trainable baselines learn from: the training split area-downscaled to 64 px,
readings of their fixed patterns at full resolution and E(I).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch.nn.functional as F
from torch import Tensor, nn

from lsi.physics.operator import measure

__all__ = ["Baseline", "BaselineError", "TrainingData", "pooled_patterns", "upsample_nearest"]


class BaselineError(ValueError):
    """A baseline was built or called with settings it cannot work with (the message says which and how to fix)."""


@dataclass
class TrainingData:
    """The training split as the trainable baselines see it.

    ``scenes64``: ``[N, 3, 64, 64]`` float16 in [0, 1], the scenes area-downscaled to G's resolution (exact for
    patterns that are constant on 4x4 blocks: :func:`pooled_patterns`); ``readings``: method name -> ``[N, d]``
    readings of that method's fixed patterns taken at full resolution; ``latents``: E(I) ``[N, num_ws, w_dim]``
    or None; ``identities``: ``[N]`` int64.
    """

    scenes64: Tensor
    identities: Tensor
    readings: dict[str, Tensor] = field(default_factory=dict)
    latents: Tensor | None = None

    def __len__(self) -> int:
        return len(self.scenes64)

    def scenes(self, index: Tensor) -> Tensor:
        """Scenes ``[b, 3, 64, 64]`` float32 of the rows ``index``."""
        return self.scenes64[index].float()


def upsample_nearest(images: Tensor, grid: int) -> Tensor:
    """``[B, C, R, R] -> [B, C, grid, grid]`` by pixel replication (``grid`` a multiple of ``R``)."""
    r = images.shape[-1]
    if grid % r:
        raise BaselineError(f"cannot replicate {r}-px images onto a {grid}-px grid: {grid} is not a multiple of {r}")
    return images if r == grid else images.repeat_interleave(grid // r, -2).repeat_interleave(grid // r, -1)


def pooled_patterns(patterns: Tensor, resolution: int) -> Tensor:
    """Patterns ``[P, grid, grid]`` block-averaged to ``[P, resolution, resolution]``.

    Measuring a ``resolution``-px image nearest-upsampled to the grid with the full patterns equals measuring the
    image itself with these (both are means over the same pixels), so a 64-px model of the scene is compared with
    full-resolution readings exactly.
    """
    return F.avg_pool2d(patterns[:, None], patterns.shape[-1] // resolution)[:, 0]


class Baseline(nn.Module):
    """Base class: ``d`` patterns on a ``grid x grid`` DMD, then a reconstruction from the ``d`` readings.

    Subclasses set ``name`` and ``channels`` (1 = gray, 3 = colour) and implement :meth:`patterns` and
    :meth:`reconstruct`; trainable ones override :meth:`fit` (and set ``trainable``, ``needs_readings``,
    ``needs_latents``). :meth:`budget` states how
    the ``d`` readings are spent and, for iterative or learned methods, the compute they were given.
    """

    name: str = "baseline"
    channels: int = 1
    trainable: bool = False
    #: what :meth:`fit` reads from :class:`TrainingData`: readings of this method's patterns (under its name), E(I)
    needs_readings: bool = False
    needs_latents: bool = False

    def __init__(self, d: int, grid: int = 256) -> None:
        super().__init__()
        if grid < 1 or grid & (grid - 1):
            raise BaselineError(f"the DMD grid must be a power of two, got {grid}")
        if d < 1:
            raise BaselineError(f"need at least one measurement, got d={d}")
        self.d, self.grid = int(d), int(grid)

    # -- the interface -----------------------------------------------------------------------------
    def patterns(self) -> Tensor:
        """The displayed patterns in reading order, ``[d, grid, grid]`` in [0, 1]."""
        raise NotImplementedError

    def reconstruct(self, readings: Tensor) -> Tensor:
        """Readings ``[B, d]`` -> image ``[B, channels, grid, grid]`` in [0, 1]."""
        raise NotImplementedError

    def fit(self, data: TrainingData, workdir: Path, progress: bool = True) -> dict:
        """Learn from the training split (no-op unless ``trainable``); returns what was spent, e.g. steps/seconds."""
        return {}

    def budget(self) -> dict:
        """How the ``d`` readings are spent and the method's settings (for the table)."""
        return {"readings": self.d}

    # -- shared ------------------------------------------------------------------------------------
    def check_scene(self, scene: Tensor) -> None:
        if scene.ndim != 4 or scene.shape[1] not in (1, 3) or tuple(scene.shape[-2:]) != (self.grid, self.grid):
            raise BaselineError(f"{self.name}: scenes must be [B, 3, {self.grid}, {self.grid}] in [0, 1], "
                                f"got {tuple(scene.shape)}")

    def check_readings(self, readings: Tensor) -> None:
        if readings.ndim != 2 or readings.shape[1] != self.d:
            raise BaselineError(f"{self.name}: readings must be [B, {self.d}], got {tuple(readings.shape)}")

    def measure(self, scene: Tensor) -> Tensor:
        """Scene ``[B, C, grid, grid]`` in [0, 1] -> readings ``[B, d]`` (:func:`lsi.physics.operator.measure`)."""
        self.check_scene(scene)
        return measure(self.patterns(), scene)

    def forward(self, scene: Tensor) -> Tensor:
        """Measure, then reconstruct: ``[B, 3, grid, grid] -> [B, channels, grid, grid]``."""
        return self.reconstruct(self.measure(scene))
