"""The training loop of the learned baselines: Adam with cosine decay, a step and wall-clock budget, resumable.

:func:`train` draws minibatches of training rows (indices from a per-step seeded generator, so a resumed run
draws the same batches), calls ``loss_of(index)`` and steps Adam; the learning rate decays from ``lr`` to
``lr / 10`` over ``steps`` (cosine). It stops at ``steps`` - the stated budget - or after ``max_minutes`` of
training (a guard against a stalled machine only), writes ``{model, optimizer, step, seconds, losses}`` to
``checkpoint`` every ``save_every`` steps and at the end, and continues from that file when it exists.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from tqdm import tqdm

__all__ = ["TrainBudget", "train"]


@dataclass(frozen=True)
class TrainBudget:
    """What a learned baseline may spend: ``steps`` of ``batch_size`` scenes, at most ``max_minutes``."""

    steps: int = 1500
    batch_size: int = 32
    lr: float = 1e-3
    max_minutes: float = 30.0
    seed: int = 0
    save_every: int = 200

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.lr <= 0 or self.max_minutes <= 0:
            raise ValueError(f"a training budget needs steps, batch_size, lr and max_minutes > 0, got {self}")

    def to_dict(self) -> dict:
        return asdict(self)


def _lr_at(step: int, budget: TrainBudget) -> float:
    return budget.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(step / budget.steps, 1.0))))


def train(net: nn.Module, loss_of: Callable[[Tensor], Tensor], num_rows: int, budget: TrainBudget,
          checkpoint: Path, desc: str = "train", progress: bool = True,
          after_step: Callable[[], None] | None = None) -> dict:
    """Train ``net`` (its parameters with ``requires_grad``) on rows ``0 .. num_rows - 1``; ``after_step`` runs
    after every optimiser step (e.g. a projection). Returns ``{"steps" (done), "seconds", "final_loss" (mean of the
    last 50), "stopped_by" ("steps" or "max_minutes"), "budget"}``."""
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=budget.lr)
    step, seconds, losses = 0, 0.0, []
    checkpoint = Path(checkpoint)
    if checkpoint.is_file():
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step, seconds, losses = int(state["step"]), float(state["seconds"]), list(state["losses"])

    def save() -> None:
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        tmp = checkpoint.with_suffix(checkpoint.suffix + ".tmp")
        torch.save({"model": net.state_dict(), "optimizer": opt.state_dict(), "step": step, "seconds": seconds,
                    "losses": losses}, tmp)
        tmp.replace(checkpoint)

    net.train()
    stopped_by = "steps"
    with tqdm(total=budget.steps, initial=step, desc=desc, unit="step", disable=not progress, leave=False) as bar:
        while step < budget.steps:
            if seconds >= budget.max_minutes * 60:
                stopped_by = "max_minutes"
                break
            t0 = time.perf_counter()
            g = torch.Generator().manual_seed(budget.seed * 1_000_003 + step)
            index = torch.randint(num_rows, (min(budget.batch_size, num_rows),), generator=g)
            for group in opt.param_groups:
                group["lr"] = _lr_at(step, budget)
            loss = loss_of(index)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if after_step is not None:
                after_step()
            losses.append(float(loss.detach()))
            step += 1
            seconds += time.perf_counter() - t0
            bar.update(1)
            bar.set_postfix(loss=f"{sum(losses[-50:]) / len(losses[-50:]):.4g}")
            if step % budget.save_every == 0:
                save()
    save()
    net.eval()
    tail = losses[-50:]
    return {"steps": step, "seconds": round(seconds, 1), "final_loss": sum(tail) / max(len(tail), 1),
            "stopped_by": stopped_by, "budget": budget.to_dict()}
