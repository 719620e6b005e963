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
from torch.optim.adam import adam as adam_update

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
            live = [p for p in group["params"] if p.grad is not None]
            if not live:
                continue
            if group["algorithm"] == "adam":
                self._adam(live, group)
            else:
                for p in live:
                    self._lion(p, p.grad, group, self.state[p])
        return loss

    def _adam(self, params: list[Tensor], group: dict) -> None:
        """Adam with decoupled weight decay (AdamW when ``weight_decay > 0``) over all ``params`` at once: torch's
        fused kernel (one pass over parameter, gradient and both moments; 5x faster than a per-parameter update
        in Python on the embedded D_theta + 128 masks, measured in docs/performance.md). Same update and state keys
        (``step``, ``exp_avg``, ``exp_avg_sq``) as :class:`torch.optim.Adam` / ``AdamW``."""
        b1, b2 = group["betas"]
        exp_avgs, exp_avg_sqs, steps = [], [], []
        for p in params:
            state = self.state[p]
            if not state:
                state["step"] = torch.zeros((), dtype=torch.float32)
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            elif state["step"].dtype != torch.float32:  # optimiser states saved before the fused update: float64
                state["step"] = state["step"].to(torch.float32)
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
            steps.append(state["step"])
        adam_update(params, [p.grad for p in params], exp_avgs, exp_avg_sqs, [], steps, fused=True,
                    decoupled_weight_decay=True, amsgrad=False, beta1=b1, beta2=b2, lr=group["lr"],
                    weight_decay=group["weight_decay"], eps=group["eps"], maximize=False)

    @staticmethod
    def _lion(p: Tensor, grad: Tensor, group: dict, state: dict) -> None:
        """Four passes: ``c = lerp(m, g, 1 - b1)``, ``sign_``, ``p -= lr c``, ``m = lerp(m, g, 1 - b2)``."""
        b1, b2 = group["betas"]
        if not state:
            state["exp_avg"] = torch.zeros_like(p)
        m = state["exp_avg"]
        if group["weight_decay"]:
            p.mul_(1 - group["lr"] * group["weight_decay"])
        p.add_(m.lerp(grad, 1 - b1).sign_(), alpha=-group["lr"])
        m.lerp_(grad, 1 - b2)

    def __repr__(self) -> str:
        groups = ", ".join(f"{g.get('name', i)}: {g['algorithm']} lr={g['lr']:g}"
                           for i, g in enumerate(self.param_groups))
        return f"GroupwiseOptimizer({groups})"

