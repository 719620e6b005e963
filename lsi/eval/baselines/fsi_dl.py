"""FSI-DL: Fourier single-pixel imaging followed by a small learned CNN that refines the reconstruction.

The patterns and the inverse FFT are those of :class:`lsi.eval.baselines.fourier.FourierImaging`; its gray
full-resolution image is area-downscaled to G's 64 px (lossless: ``d // 4`` low frequencies are far below 64 px's
band limit) and a :class:`~lsi.eval.baselines.networks.SmallUNet` maps it to a colour image,
``rgb = gray + net(gray)`` ``[B, 3, 64, 64]``, trained with the pixel MSE against the training scenes at 64 px
(the loss of deep single-pixel reconstruction networks). The output is nearest-upsampled to the DMD grid.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from lsi.eval.baselines.fourier import FourierImaging
from lsi.eval.baselines.interface import Baseline, BaselineError, TrainingData, upsample_nearest
from lsi.eval.baselines.networks import SmallUNet
from lsi.eval.baselines.training import TrainBudget, train

__all__ = ["FourierDeepLearning"]

RESOLUTION = 64


class FourierDeepLearning(Baseline):
    """FSI + CNN refiner (colour output), see the module docstring."""

    name = "fsi_dl"
    channels = 3
    trainable = True
    needs_readings = True

    def __init__(self, d: int, grid: int = 256, dither: str = "floyd_steinberg", width: int = 16,
                 budget: TrainBudget | None = None) -> None:
        super().__init__(d, grid)
        if grid % RESOLUTION:
            raise BaselineError(f"FSI-DL refines at {RESOLUTION} px: the grid must be a multiple of it, got {grid}")
        self.fsi = FourierImaging(d, grid, dither)
        self.refiner = SmallUNet(1, 3, width)
        self.width, self.train_budget = width, budget or TrainBudget()
        self.fsi.requires_grad_(False)
        self.trained: dict = {}

    def patterns(self) -> Tensor:
        return self.fsi.patterns()

    def fsi_gray64(self, readings: Tensor) -> Tensor:
        """Readings ``[B, d]`` -> FSI's gray image at 64 px ``[B, 1, 64, 64]``."""
        return F.avg_pool2d(self.fsi.reconstruct(readings), self.grid // RESOLUTION)

    def refine(self, gray64: Tensor) -> Tensor:
        """``[B, 1, 64, 64] -> [B, 3, 64, 64]`` (unclamped)."""
        return gray64.expand(-1, 3, -1, -1) + self.refiner(gray64)

    def reconstruct(self, readings: Tensor) -> Tensor:
        self.check_readings(readings)
        with torch.no_grad():
            return upsample_nearest(self.refine(self.fsi_gray64(readings)).clamp(0, 1), self.grid)

    def fit(self, data: TrainingData, workdir: Path, progress: bool = True) -> dict:
        if self.name not in data.readings:
            raise BaselineError(f"{self.name} trains on readings of its own patterns: TrainingData.readings lacks "
                                f"{self.name!r}")
        readings = data.readings[self.name]
        with torch.no_grad():
            inputs = torch.cat([self.fsi_gray64(readings[i:i + 256]) for i in range(0, len(readings), 256)])

        def loss_of(index: Tensor) -> Tensor:
            return F.mse_loss(self.refine(inputs[index]), data.scenes(index))

        self.trained = train(self.refiner, loss_of, len(data), self.train_budget, Path(workdir) / "train.pt",
                             desc=self.name, progress=progress)
        return self.trained

    def budget(self) -> dict:
        return {**self.fsi.budget(), "training": f"SmallUNet(width={self.width}) refiner, pixel MSE at 64 px",
                "train_budget": self.train_budget.to_dict(), **({"trained": self.trained} if self.trained else {})}

    def get_extra_state(self) -> dict:
        return {"trained": self.trained}

    def set_extra_state(self, state: dict) -> None:
        self.trained = dict(state.get("trained", {}))
