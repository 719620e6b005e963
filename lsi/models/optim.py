"""The LSI module's optimiser: one optimiser whose parameter groups each use their own update rule.

D_theta learns with Adam; the masks with Adam or Lion (Chen et al. 2023): ``c = b1 m + (1 - b1) g``,
``p <- p (1 - lr wd) - lr sign(c)``, ``m <- b2 m + (1 - b2) g`` — every mask pixel moves by exactly ``lr`` per
step whatever its gradient's size; the official LSI code optimises its masks this way (lr 1e-4, wd 1e-2).
One optimiser rather than two: Lightning's automatic optimisation takes one, and its ``global_step`` (which the
staged recipe's phases are counted in) then advances once per batch.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["GroupwiseOptimizer"]

ALGORITHMS = ("adam", "lion")


class GroupwiseOptimizer(torch.optim.Optimizer):
    """Adam or Lion per parameter group (``group["algorithm"]``).

    Group keys: ``lr``, ``algorithm`` (``adam`` | ``lion``), ``betas`` (default (0.9, 0.999) for Adam,
    (0.9, 0.99) for Lion), ``weight_decay`` (decoupled, default 0), ``eps`` (Adam, 1e-8), ``name`` (free text).
    """

    def __init__(self, groups: list[dict[str, Any]]) -> None:
        for g in groups:
            algo = g.setdefault("algorithm", "adam")
            if algo not in ALGORITHMS:
                raise ValueError(f"unknown algorithm {algo!r} for parameter group {g.get('name')}; use {ALGORITHMS}")
            g.setdefault("betas", (0.9, 0.999) if algo == "adam" else (0.9, 0.99))
            g.setdefault("weight_decay", 0.0)
            g.setdefault("eps", 1e-8)
            if g["lr"] < 0 or g["weight_decay"] < 0:
                raise ValueError(f"lr and weight_decay must be >= 0 in group {g.get('name')}")
        super().__init__(groups, {"lr": 1e-3})

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    (self._adam if group["algorithm"] == "adam" else self._lion)(p, p.grad, group, self.state[p])
        return loss

    @staticmethod
    def _adam(p: Tensor, grad: Tensor, group: dict, state: dict) -> None:
        b1, b2 = group["betas"]
        if not state:
            state["step"] = torch.zeros((), dtype=torch.float64)
            state["exp_avg"] = torch.zeros_like(p)
            state["exp_avg_sq"] = torch.zeros_like(p)
        state["step"] += 1
        t = float(state["step"])
        if group["weight_decay"]:
            p.mul_(1 - group["lr"] * group["weight_decay"])
        state["exp_avg"].lerp_(grad, 1 - b1)
        state["exp_avg_sq"].mul_(b2).addcmul_(grad, grad, value=1 - b2)
        denom = (state["exp_avg_sq"] / (1 - b2**t)).sqrt_().add_(group["eps"])
        p.addcdiv_(state["exp_avg"], denom, value=-group["lr"] / (1 - b1**t))

    @staticmethod
    def _lion(p: Tensor, grad: Tensor, group: dict, state: dict) -> None:
        b1, b2 = group["betas"]
        if not state:
            state["exp_avg"] = torch.zeros_like(p)
        m = state["exp_avg"]
        if group["weight_decay"]:
            p.mul_(1 - group["lr"] * group["weight_decay"])
        p.add_(torch.sign(m.mul(b1).add_(grad, alpha=1 - b1)), alpha=-group["lr"])
        m.mul_(b2).add_(grad, alpha=1 - b2)

    def __repr__(self) -> str:
        groups = ", ".join(f"{g.get('name', i)}: {g['algorithm']} lr={g['lr']:g}"
                           for i, g in enumerate(self.param_groups))
        return f"GroupwiseOptimizer({groups})"

