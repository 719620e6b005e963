"""LSI's own linear read-out (``lsi_ridge``): closed-form ridge regression from LSI's readings to E(I), then G.

The simplest latent-space baseline: the *same* ``d`` masks as a trained LSI checkpoint (given as patterns), but a
linear map instead of D_theta. Readings are standardised with the training split's mean and standard deviation
(:func:`lsi.eval.linear_readout.reading_statistics`), the latent target is E(I) flattened to ``num_ws * w_dim``,
and the map is the project's closed-form ridge (:func:`lsi.eval.linear_readout.fit_ridge`: minimises
``||Y - X W - b||^2 + lam N ||W||^2``, intercept unpenalised). ``lam`` is chosen from :data:`LAMBDAS` by the latent
MSE on a held-out fifth of the training identities, then the map is refitted on all of them. The reconstruction
is ``G(standardise(y) W + b)`` at 64 px, nearest-upsampled to the DMD grid.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from lsi.eval.baselines.interface import Baseline, BaselineError, TrainingData, upsample_nearest
from lsi.eval.linear_readout import fit_ridge, reading_statistics

__all__ = ["LAMBDAS", "LatentRidge"]

#: ridge strengths tried, per training row (the convention of :func:`lsi.eval.linear_readout.fit_ridge`)
LAMBDAS = (1e-6, 1e-5, 3e-5, 1e-4, 1e-3, 1e-2, 1e-1)


class LatentRidge(Baseline):
    """Standardised readings of LSI's masks -> ridge -> W+ -> G (colour output)."""

    name = "lsi_ridge"
    channels = 3
    trainable = True
    needs_readings = True
    needs_latents = True

    def __init__(self, patterns: Tensor, generator: nn.Module, holdout: float = 0.2) -> None:
        if patterns.ndim != 3 or patterns.shape[1] != patterns.shape[2]:
            raise BaselineError(f"lsi_ridge needs LSI's displayed patterns [d, grid, grid], "
                                f"got {tuple(patterns.shape)}")
        super().__init__(patterns.shape[0], patterns.shape[1])
        if not 0 < holdout < 1:
            raise BaselineError(f"holdout must be a fraction in (0, 1), got {holdout}")
        self._g = [generator]  # the shared frozen G, kept out of this module's state
        self.holdout = float(holdout)
        latent = generator.num_ws * generator.w_dim
        self.register_buffer("_patterns", patterns.detach().float().clone(), persistent=False)
        self.register_buffer("mean", torch.zeros(self.d))
        self.register_buffer("std", torch.ones(self.d))
        self.register_buffer("weight", torch.zeros(self.d, latent))
        self.register_buffer("bias", generator.w_avg.detach().repeat(generator.num_ws))
        self.lam, self.selection = float("nan"), {}

    def patterns(self) -> Tensor:
        return self._patterns

    def standardise(self, readings: Tensor) -> Tensor:
        return (readings - self.mean) / self.std

    def latent(self, readings: Tensor) -> Tensor:
        """Readings ``[B, d]`` -> W+ ``[B, num_ws, w_dim]``."""
        self.check_readings(readings)
        g = self.generator
        return (self.standardise(readings) @ self.weight + self.bias).view(-1, g.num_ws, g.w_dim)

    @property
    def generator(self) -> nn.Module:
        return self._g[0]

    def reconstruct(self, readings: Tensor) -> Tensor:
        with torch.no_grad():
            rec = self.generator.synthesis(self.latent(readings)).clamp(-1, 1) * 0.5 + 0.5
        return upsample_nearest(rec, self.grid)

    def fit(self, data: TrainingData, workdir: Path, progress: bool = True) -> dict:
        if self.name not in data.readings or data.latents is None:
            raise BaselineError("lsi_ridge fits readings of LSI's masks to E(I): TrainingData needs "
                                "readings['lsi_ridge'] and latents")
        x, y = data.readings[self.name].double(), data.latents.flatten(1).double()
        mean, transform = reading_statistics(x)                               # diag(1 / std)
        std = 1.0 / transform.diagonal().double()
        xs = (x - mean.double()) / std
        ids = data.identities
        cut = torch.quantile(ids.double().unique(), 1 - self.holdout)
        train, held = ids.double() <= cut, ids.double() > cut                  # whole identities held out
        for lam in LAMBDAS:
            w, b = fit_ridge(xs[train], y[train], lam)                         # [L, d], [L]
            self.selection[lam] = float((xs[held].float() @ w.t() + b - y[held].float()).square().mean())
        self.lam = min(self.selection, key=self.selection.get)
        w, b = fit_ridge(xs, y, self.lam)
        self.mean.copy_(mean)
        self.std.copy_(std.float())
        self.weight.copy_(w.t())
        self.bias.copy_(b)
        return {"lambda": self.lam, "holdout_latent_mse": self.selection, "train_rows": len(xs)}

    def budget(self) -> dict:
        return {"readings": self.d, "readings_use": f"the {self.d} masks of the LSI checkpoint",
                "training": "closed-form ridge (lsi.eval.linear_readout) to E(I), lambda chosen on held-out "
                            "training identities",
                "lambda": self.lam}

    def get_extra_state(self) -> dict:
        return {"lam": self.lam, "selection": self.selection}

    def set_extra_state(self, state: dict) -> None:
        self.lam = float(state["lam"])
        self.selection = {float(k): float(v) for k, v in state.get("selection", {}).items()}
