"""Deep unfolding (ISTA-Net+ / SAUNet family) with a learned, quantised sensing matrix.

Sensing. ``d`` learnable masks on a 64 x 64 grid of 4 x 4-mirror superpixels, quantised with LSI's straight-
through estimator (:func:`lsi.physics.operator.quantise_ste`, ``bits`` = 1: 2 levels, 8: 256 levels) and shown
nearest-upsampled on the 256 x 256 DMD. Measuring a 256-px scene with them equals measuring its 64-px area
average with the 64-px masks (:func:`~lsi.eval.baselines.interface.pooled_patterns`), so training runs on 64-px
scenes and is exact. ``M [d, 4096]`` (quantised masks), readings ``y = M g / 4096`` (means of the gray image
``g``). Masks start from the first ``d`` 2-D Walsh-Hadamard patterns: ``0.5 + spread (2h - 1)`` with LSI's
spread 0.05 at 1 bit (quantised: exactly Hadamard, yet each mirror a small step from flipping) and 0.5 (the 0/1
patterns themselves) at higher bit depths; ``init="uniform"`` is LSI's own start, ``0.5 + U(-0.05, 0.05)``.

Reconstruction (``stages`` = K unrolled iterations on a colour image ``x [B, 3, 64, 64]``):

    x_0     = replicate(M^+ y)                                   M^+ = M^T (M M^T + eps I)^-1 (min-norm inverse)
    z_k     = x_k + rho_k * replicate(M^+ (4096 y - M mean_c(x_k)))   relaxed projection onto {M g = 4096 y}
    x_{k+1} = z_k + P_k(z_k)                                      P_k: a SmallUNet prior per stage

(the gradient step of ISTA-Net+ with the pseudo-inverse as its preconditioner). Trained end to end - masks,
``rho_k`` and the priors - with the pixel MSE of ``x_K`` against the colour scene at 64 px.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lsi.eval.baselines.interface import Baseline, BaselineError, TrainingData, upsample_nearest
from lsi.eval.baselines.networks import SmallUNet
from lsi.eval.baselines.training import TrainBudget, train
from lsi.physics.operator import quantise_ste
from lsi.physics.patterns import walsh_hadamard_2d

__all__ = ["UnfoldingNet"]

RESOLUTION = 64
INITS = ("hadamard", "uniform")


class UnfoldingNet(Baseline):
    """Learned quantised masks + K unrolled projection / CNN-prior stages (colour output)."""

    channels = 3
    trainable = True

    def __init__(self, d: int, grid: int = 256, bits: int = 1, stages: int = 5, width: int = 8,
                 init: str = "hadamard", budget: TrainBudget | None = None, seed: int = 0) -> None:
        super().__init__(d, grid)
        if grid % RESOLUTION:
            raise BaselineError(f"the unfolding net senses {RESOLUTION}-px superpixels: the grid must be a multiple "
                                f"of {RESOLUTION}, got {grid}")
        if d > RESOLUTION * RESOLUTION:
            raise BaselineError(f"at most {RESOLUTION ** 2} masks on a {RESOLUTION}-px superpixel grid, got d={d}")
        if not 1 <= bits <= 16:
            raise BaselineError(f"bits must be in [1, 16], got {bits}")
        if stages < 1:
            raise BaselineError(f"need at least one unrolled stage, got {stages}")
        if init not in INITS:
            raise BaselineError(f"unknown mask init {init!r}; choose one of {INITS}")
        self.name = f"unfolding_{bits}bit"
        self.bits, self.stages, self.width, self.init = int(bits), int(stages), int(width), init
        self.train_budget = budget or TrainBudget()
        if init == "hadamard":
            spread = 0.05 if bits == 1 else 0.5
            start = 0.5 + spread * walsh_hadamard_2d(d, RESOLUTION, signed=True)
        else:
            g = torch.Generator().manual_seed(seed)
            start = 0.5 + 0.05 * (2 * torch.rand(d, RESOLUTION, RESOLUTION, generator=g) - 1)
        self.masks = nn.Parameter(start)                                          # [d, 64, 64] latent in [0, 1]
        self.rho = nn.Parameter(torch.ones(stages))
        self.priors = nn.ModuleList(SmallUNet(3, 3, width) for _ in range(stages))
        self.trained: dict = {}

    # -- sensing -----------------------------------------------------------------------------------
    def quantised_masks(self) -> Tensor:
        """The masks the DMD shows, ``[d, 64, 64]`` on ``2**bits`` levels (straight-through gradient)."""
        return quantise_ste(self.masks, self.bits)

    def patterns(self) -> Tensor:
        return upsample_nearest(self.quantised_masks()[None], self.grid)[0]

    def readings64(self, scenes64: Tensor) -> Tensor:
        """Readings of 64-px scenes ``[B, 3, 64, 64]`` (equal to those of their 256-px originals), ``[B, d]``."""
        return scenes64.mean(1).flatten(1) @ self.quantised_masks().flatten(1).t() / RESOLUTION ** 2

    # -- reconstruction ----------------------------------------------------------------------------
    def _pinv(self, m: Tensor) -> tuple[Tensor, Tensor]:
        gram = m @ m.t()                                                          # [d, d]
        eps = 1e-4 * gram.diagonal().mean().clamp_min(1e-6)
        chol = torch.linalg.cholesky(gram + eps * torch.eye(len(gram), dtype=m.dtype, device=m.device))
        return m, chol

    @staticmethod
    def _apply_pinv(op: tuple[Tensor, Tensor], r: Tensor) -> Tensor:
        m, chol = op
        return torch.cholesky_solve(r.t(), chol).t() @ m                          # [B, 4096]

    def unrolled(self, readings: Tensor) -> Tensor:
        """Readings ``[B, d]`` -> colour image ``[B, 3, 64, 64]`` (unclamped), differentiable in everything."""
        m = self.quantised_masks().flatten(1)                                     # [d, 4096]
        op = self._pinv(m)
        target = readings * RESOLUTION ** 2                                       # M g
        x = self._apply_pinv(op, target).view(-1, 1, RESOLUTION, RESOLUTION).expand(-1, 3, -1, -1)
        for k, prior in enumerate(self.priors):
            residual = target - x.mean(1).flatten(1) @ m.t()
            z = x + self.rho[k] * self._apply_pinv(op, residual).view(-1, 1, RESOLUTION, RESOLUTION)
            x = z + prior(z)
        return x

    def reconstruct(self, readings: Tensor) -> Tensor:
        self.check_readings(readings)
        with torch.no_grad():
            return upsample_nearest(self.unrolled(readings).clamp(0, 1), self.grid)

    def fit(self, data: TrainingData, workdir: Path, progress: bool = True) -> dict:
        def loss_of(index: Tensor) -> Tensor:
            scenes = data.scenes(index)
            return F.mse_loss(self.unrolled(self.readings64(scenes)), scenes)

        def project_masks() -> None:
            with torch.no_grad():
                self.masks.clamp_(0, 1)  # LSI's projection: outside [0, 1] the straight-through gradient is zero

        self.trained = train(self, loss_of, len(data), self.train_budget, Path(workdir) / "train.pt",
                             desc=self.name, progress=progress, after_step=project_masks)
        return self.trained

    def budget(self) -> dict:
        return {"readings": self.d, "readings_use": f"{self.d} learned {self.bits}-bit masks on 4x4-mirror "
                f"superpixels", "bits": self.bits, "stages": self.stages, "init": self.init,
                "training": f"masks + {self.stages} stages (SmallUNet(width={self.width}) priors), pixel MSE at 64 px",
                "train_budget": self.train_budget.to_dict(), **({"trained": self.trained} if self.trained else {})}

    def get_extra_state(self) -> dict:
        return {"trained": self.trained}

    def set_extra_state(self, state: dict) -> None:
        self.trained = dict(state.get("trained", {}))
