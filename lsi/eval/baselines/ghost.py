"""Differential ghost imaging (DGI, Ferri et al., PRL 2010) with random binary masks.

Masks are i.i.d. Bernoulli(1/2) on square cells of ``cell x cell`` mirrors (a speckle grain), so ``M =
(grid / cell)^2`` unknown cell values ``g_j`` (the gray image averaged over each cell). With bucket readings
``y_k`` (means, as every reading of this project) and total pattern intensities ``S_k = mean_p m_k[p]``, DGI
correlates

    G_j = <y m_j> - (<y> / <S>) <S m_j>          (<.> = mean over the d readings)

whose expectation is ``q (1 - q) / M * (g_j - mean g)`` (``q``: share of on-cells); subtracting the reference-arm
term removes the fluctuation of the total intensity that plain ghost imaging suffers from. The image is
``g_j = <y> / <S> + M / (q (1 - q)) * G_j``, bilinearly interpolated from the cell grid to full resolution.

The per-cell signal-to-noise ratio of a correlation estimate grows as ``sqrt(d / M)``: at ``d = 256`` single-
mirror cells would be pure noise, and cells larger than needed blur the face. :meth:`GhostImaging.fit` therefore
chooses ``cell`` among :data:`CELL_CHOICES` by the mean PSNR (at 64 px) on training scenes: a hyper-parameter
chosen on training data, nothing learned beyond it.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from lsi.eval.baselines.interface import Baseline, BaselineError, TrainingData, pooled_patterns
from lsi.eval.metrics import psnr
from lsi.physics.operator import measure

__all__ = ["CELL_CHOICES", "GhostImaging", "dgi_estimate"]

#: candidate speckle cells (mirrors); all are multiples of 4, so 64-px training scenes measure them exactly
CELL_CHOICES = (4, 8, 16, 32, 64)


def dgi_estimate(readings: Tensor, cell_masks: Tensor) -> Tensor:
    """DGI of readings ``[B, d]`` taken with 0/1 ``cell_masks [d, h, w]`` -> cell image ``[B, h, w]`` (calibrated)."""
    m = cell_masks.flatten(1).to(readings.dtype)                     # [d, M]
    big_m = m.shape[1]
    s = m.mean(1)                                                    # [d] total intensities
    q = m.mean()
    y_mean, s_mean = readings.mean(1, keepdim=True), s.mean()        # [B, 1], scalar
    corr_y = readings @ m / m.shape[0]                               # [B, M] <y m_j>
    corr_s = (s @ m / m.shape[0])[None]                              # [1, M] <S m_j>
    g = corr_y - y_mean / s_mean * corr_s
    image = y_mean / s_mean + big_m / (q * (1 - q)) * g
    return image.view(-1, *cell_masks.shape[1:])


class GhostImaging(Baseline):
    """DGI with random binary cell masks (gray output), see the module docstring."""

    name = "dgi"
    channels = 1
    trainable = True  # only the cell size is chosen on training data

    def __init__(self, d: int, grid: int = 256, cell: int = 16, seed: int = 0, selection_scenes: int = 256) -> None:
        super().__init__(d, grid)
        self.seed, self.selection_scenes = int(seed), int(selection_scenes)
        self.selection: dict[int, float] = {}
        self.set_cell(cell)

    def set_cell(self, cell: int) -> None:
        if cell < 1 or self.grid % cell:
            raise BaselineError(f"the DGI cell size must divide the {self.grid}-px grid, got {cell}")
        self.cell = int(cell)
        side = self.grid // cell
        g = torch.Generator().manual_seed(self.seed)
        cells = (torch.rand(self.d, side, side, generator=g) < 0.5).float()     # [d, side, side]
        self.register_buffer("cell_masks", cells, persistent=False)

    def patterns(self) -> Tensor:
        return self.cell_masks.repeat_interleave(self.cell, 1).repeat_interleave(self.cell, 2)

    def reconstruct(self, readings: Tensor) -> Tensor:
        self.check_readings(readings)
        cells = dgi_estimate(readings.double(), self.cell_masks).float()        # [B, side, side]
        up = F.interpolate(cells[:, None], size=(self.grid, self.grid), mode="bilinear", align_corners=False)
        return up.clamp(0, 1)

    def fit(self, data: TrainingData, workdir: Path, progress: bool = True) -> dict:
        """Choose the cell size by mean PSNR at 64 px on the first ``selection_scenes`` training scenes."""
        if self.grid % 64:
            raise BaselineError(f"choosing the DGI cell on 64-px training scenes needs a grid multiple of 64, "
                                f"got {self.grid}")
        n = min(self.selection_scenes, len(data))
        scenes = data.scenes(torch.arange(n))                                  # [n, 3, 64, 64]
        target = scenes.mean(1, keepdim=True)
        for cell in CELL_CHOICES:
            if self.grid % cell or cell % (self.grid // 64):
                continue  # not constant on the blocks of a 64-px scene
            self.set_cell(cell)
            readings = measure(pooled_patterns(self.patterns(), 64), scenes)   # exact: patterns are 4x4-constant
            rec = F.avg_pool2d(self.reconstruct(readings), self.grid // 64)
            self.selection[cell] = float(psnr(rec, target).mean())
        best = max(self.selection, key=self.selection.get)
        self.set_cell(best)
        return {"cell": best, "selection_psnr": self.selection, "selection_scenes": n}

    def budget(self) -> dict:
        return {"readings": self.d, "readings_use": f"{self.d} random 0/1 masks on {self.cell}x{self.cell}-mirror "
                f"cells ({(self.grid // self.cell) ** 2} cells)", "cell": self.cell,
                "training": "cell size chosen on training scenes by PSNR" if self.selection else "none"}

    def get_extra_state(self) -> dict:
        return {"cell": self.cell, "selection": self.selection}

    def set_extra_state(self, state: dict) -> None:
        self.selection = {int(k): float(v) for k, v in state.get("selection", {}).items()}
        self.set_cell(int(state["cell"]))
