"""Closed-form linear read-outs: ridge regression and the reading normaliser's statistics.

The cheapest read-out that could work: ``L = y W + b`` fitted by ridge regression from readings to E(I). It is
the simple baseline every LSI result is compared with, and the warm start of D_theta's linear path.

Conventions: ``X [N, d]`` (normalised readings), ``Y [N, k]`` (flattened latents); the objective is
``||Y - X W - b||^2 + lam * N * ||W||^2`` (``lam`` per sample, so it means the same for any N; the bias is not
penalised). Solved in float64 through the normal equations of the centred data.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["fit_logistic", "fit_ridge", "reading_statistics"]


def fit_ridge(x: Tensor, y: Tensor, lam: float = 3e-5) -> tuple[Tensor, Tensor]:
    """Ridge regression ``y ~ x @ weight.T + bias``; returns ``weight [k, d]`` and ``bias [k]`` (float32).

    ``lam`` >= 0; with ``lam = 0`` this is ordinary least squares (``x`` must then have full column rank).
    Measured on the embedded world (128 readings, 16,000 training scenes): ``lam`` from 1e-6 to 3e-5 gives the same
    test identity match (72%); 1e-3 loses 5 points.
    """
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
        raise ValueError(f"need x [N, d] and y [N, k] with the same N, got {tuple(x.shape)} and {tuple(y.shape)}")
    if lam < 0:
        raise ValueError(f"ridge lambda must be >= 0, got {lam}")
    xd, yd = x.detach().double(), y.detach().double()
    xm, ym = xd.mean(0), yd.mean(0)
    xc, yc = xd - xm, yd - ym
    gram = xc.T @ xc
    gram.diagonal().add_(lam * len(x))
    weight = torch.linalg.solve(gram, xc.T @ yc).T  # [k, d]
    bias = ym - weight @ xm
    return weight.float().to(x.device), bias.float().to(x.device)


def reading_statistics(readings: Tensor, whiten: bool = False, eps: float = 1e-6) -> tuple[Tensor, Tensor]:
    """Mean ``[d]`` and transform ``[d, d]`` such that ``(y - mean) @ transform`` is standardised per reading
    (``whiten=False``: a diagonal of ``1 / std``) or whitened (ZCA: ``C^(-1/2)``, eigenvalues floored at
    ``eps * max eigenvalue``). ``readings [N, d]``, N >= 2; computed in float64, returned as float32."""
    if readings.ndim != 2 or len(readings) < 2:
        raise ValueError(f"need readings [N >= 2, d], got {tuple(readings.shape)}")
    r = readings.detach().double()
    mean = r.mean(0)
    if not whiten:
        std = r.std(0).clamp_min(1e-12)
        return mean.float(), torch.diag(1.0 / std).float()
    cov = torch.cov(r.T).reshape(r.shape[1], r.shape[1])
    evals, evecs = torch.linalg.eigh(cov)
    floor = eps * evals.max().clamp_min(1e-30)
    transform = evecs @ torch.diag(evals.clamp_min(0).add(floor).rsqrt()) @ evecs.T
    return mean.float(), transform.float()


def fit_logistic(x: Tensor, y: Tensor, steps: int = 400, lr: float = 1e-2, weight_decay: float = 1e-3,
                 seed: int = 0) -> tuple[Tensor, Tensor]:
    """Multi-label logistic regression ``y ~ sigmoid(x @ weight.T + bias)``, fitted full-batch to convergence.

    ``x [N, d]``, ``y [N, A]`` in {0, 1}; returns ``weight [A, d]`` and ``bias [A]`` in the coordinates of ``x``.
    The fit runs on standardised features (Adam, ``steps`` full-batch steps, L2 ``weight_decay``, seeded
    initialisation) and the standardisation is folded back into the weights, so the result is one linear layer
    on the raw features: P_A's form. This is the converged probe of ``python -m lsi.experiments.probe``.
    """
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
        raise ValueError(f"need x [N, d] and y [N, A] with the same N, got {tuple(x.shape)} and {tuple(y.shape)}")
    mu, sd = x.mean(0), x.std(0) + 1e-6
    xs = ((x - mu) / sd).detach()
    with torch.enable_grad(), torch.random.fork_rng():
        torch.manual_seed(seed)
        lin = torch.nn.Linear(x.shape[1], y.shape[1]).to(x)
        opt = torch.optim.Adam(lin.parameters(), lr=lr, weight_decay=weight_decay)
        for _ in range(steps):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(lin(xs), y.to(x))
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        weight = lin.weight / sd
        bias = lin.bias - weight @ mu
    return weight.detach(), bias.detach()
