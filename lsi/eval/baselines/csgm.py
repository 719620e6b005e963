"""CSGM (Bora et al., ICML 2017): compressed sensing with the frozen generator G as the prior.

Masks: the Hadamard baseline's DMD patterns (``masks="hadamard"``, 0/1 split scheme, low sequency first) or
i.i.d. random binary ones (``masks="random"``). Reconstruction: gradient descent (Adam at a constant ``lr``) on G's W+
latent, starting from ``w_avg`` at every level, to match the readings:

    min_w  ||A(up(G(w))) - y||^2 / ||y||^2  +  reg * ||w - w_avg||^2 / (num_ws * w_dim)

``G`` renders 64 px; its image is compared with the 256-px readings by measuring it nearest-upsampled to the
DMD grid through the same operator, computed exactly as the 64-px image measured with the patterns averaged over
4 x 4 blocks (:func:`~lsi.eval.baselines.interface.pooled_patterns`). The budget is ``steps`` Adam iterations per
scene (stated in the table); the output is ``G(w)`` nearest-upsampled to the grid. Nothing is trained.

Settings measured on 20-40 training scenes at 1:256 (not the test split): lr 0.03 beat 0.01 and 0.1 (PSNR 18.1 vs
17.2 / 17.7 dB at 100 steps; a cosine decay from 0.05 or 0.1 was worse); 200 steps beat 100 and 50 (PSNR 19.0 vs
17.9 / 17.3 dB, identity distance 0.75 vs 0.82 / 0.87); Hadamard masks beat random ones (17.3 vs 16.0 dB at 50
steps); a pull towards ``w_avg`` (``reg`` 1e-3, 1e-2) did not help (17.9, 17.7 dB).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lsi.eval.baselines.hadamard import HadamardImaging
from lsi.eval.baselines.interface import Baseline, BaselineError, pooled_patterns, upsample_nearest
from lsi.physics.operator import measure
from lsi.physics.patterns import random_binary

__all__ = ["CSGM"]

MASKS = ("hadamard", "random")


class CSGM(Baseline):
    """Generator-prior reconstruction by optimising W+ (colour output), see the module docstring."""

    name = "csgm"
    channels = 3

    def __init__(self, d: int, generator: nn.Module, grid: int = 256, masks: str = "hadamard", steps: int = 200,
                 lr: float = 0.03, reg: float = 0.0, batch_size: int = 50, seed: int = 0) -> None:
        super().__init__(d, grid)
        if masks not in MASKS:
            raise BaselineError(f"unknown CSGM masks {masks!r}; choose one of {MASKS}")
        if steps < 1 or lr <= 0 or reg < 0 or batch_size < 1:
            raise BaselineError(f"CSGM needs steps >= 1, lr > 0, reg >= 0, batch_size >= 1; got steps={steps}, "
                                f"lr={lr}, reg={reg}, batch_size={batch_size}")
        res = int(generator.img_resolution)
        if grid % res:
            raise BaselineError(f"G's {res}-px images cannot be replicated onto a {grid}-px grid")
        self._g = [generator]  # the shared frozen G, kept out of this module's parameters and state
        self.masks_kind, self.steps, self.lr, self.reg, self.batch_size = masks, int(steps), float(lr), float(reg), \
            int(batch_size)
        shown = (HadamardImaging(d, grid).patterns() if masks == "hadamard" else random_binary(d, grid, seed))
        self.register_buffer("_patterns", shown, persistent=False)
        self.register_buffer("_pooled", pooled_patterns(shown, res), persistent=False)      # [d, 64, 64]

    @property
    def generator(self) -> nn.Module:
        return self._g[0]

    def patterns(self) -> Tensor:
        return self._patterns

    def start(self, batch: int) -> Tensor:
        g = self.generator
        return g.w_avg.detach().expand(batch, g.num_ws, -1).clone()

    def losses(self, ws: Tensor, readings: Tensor) -> Tensor:
        """Per-scene objective ``[B]`` of latents ``ws [B, num_ws, w_dim]`` against ``readings [B, d]``."""
        img = self.generator.synthesis(ws) * 0.5 + 0.5                                   # [B, 3, 64, 64]
        pred = measure(self._pooled, img)
        fit = (pred - readings).square().sum(1) / readings.square().sum(1).clamp_min(1e-12)
        prior = (ws - self.generator.w_avg).square().flatten(1).mean(1)
        return fit + self.reg * prior

    def optimise(self, readings: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Adam on W+ for a batch: ``(ws [B, num_ws, w_dim], initial loss [B], final loss [B])``."""
        ws = self.start(len(readings)).requires_grad_(True)
        opt = torch.optim.Adam([ws], lr=self.lr)
        with torch.enable_grad():
            first = None
            for _ in range(self.steps):
                loss = self.losses(ws, readings)
                first = loss.detach() if first is None else first
                opt.zero_grad(set_to_none=True)
                loss.sum().backward()  # scenes are independent: summing keeps each one's gradient its own
                opt.step()
        with torch.no_grad():
            last = self.losses(ws, readings)
        return ws.detach(), first, last

    def reconstruct(self, readings: Tensor) -> Tensor:
        self.check_readings(readings)
        out = []
        for chunk in readings.split(self.batch_size):
            ws, _, _ = self.optimise(chunk)
            with torch.no_grad():
                out.append(self.generator.synthesis(ws).clamp(-1, 1) * 0.5 + 0.5)
        return upsample_nearest(torch.cat(out), self.grid)

    def budget(self) -> dict:
        use = (f"{self.d} Hadamard 0/1 patterns (split scheme)" if self.masks_kind == "hadamard"
               else f"{self.d} random 0/1 masks")
        return {"readings": self.d, "readings_use": use, "masks": self.masks_kind, "steps": self.steps,
                "lr": self.lr, "reg": self.reg, "start": "w_avg", "training": "none (per-scene optimisation)"}
