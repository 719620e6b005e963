"""Training-side parts of ``make bench``: the optical encoder against its matmul, the staged recipe's steps split by
part (before/after the fused optimiser and one-pass quantiser), allocator settings, bf16 autocast for G + identity.

The steps are those of :class:`lsi.models.staged.StagedRecipe` on the model of ``configs/train_embedded.yaml``
(ratio 512: d = 128 masks of 256 x 256, batch 256), on random detector images and targets (the time of a step does
not depend on the values): *joint* — O on cached detector images, D_theta, L_lat, backward, optimiser, mask clamp;
*readout* — D_theta on cached readings; *image* — readout + pixel/identity losses through G on 32 samples.
``python -m lsi.experiments.bench_training --joint-steps N`` prints the joint-step and learning-``A`` times (used to
compare allocator settings, which must be set before the process starts).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from lsi.experiments.bench_inference import timed
from lsi.models.imaging import LatentImagingModule
from lsi.physics.operator import OpticalEncoder, measure, measure_detector_image

__all__ = ["ALLOCATORS", "allocator_rates", "optical_rates", "training_steps"]

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "train_embedded.yaml"
#: glibc malloc settings compared for the joint step: by default every >= 32 MiB tensor (the masks, their gradient,
#: Adam's moments) is a fresh mmap whose pages fault in on first touch; without mmap and trimming they are reused
ALLOCATORS = {"glibc default": {}, "glibc, no mmap, no trim": {"MALLOC_MMAP_MAX_": "0",
                                                               "MALLOC_TRIM_THRESHOLD_": str(1 << 40)}}


class _FourPassSTE(torch.autograd.Function):
    """The quantiser before this benchmark's work: ``round(clamp(m) * n) / n`` out of place, clipped STE."""

    @staticmethod
    def forward(ctx, m: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward((m >= 0) & (m <= 1))
        return torch.round(m.clamp(0, 1) * 1) / 1

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (inside,) = ctx.saved_tensors
        return grad * inside.to(grad.dtype)


def optical_rates(d: int = 128, batch: int = 32, seconds: float = 1.0) -> list[dict[str, Any]]:
    """``OpticalEncoder.A`` on ``[batch, 3, 256, 256]`` scenes against the equivalent matmul (ms per call)."""
    enc = OpticalEncoder(ratio=65536 // d)
    scene = torch.rand(batch, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    patterns = enc.patterns().detach().clone()

    def before() -> torch.Tensor:
        return measure(_FourPassSTE.apply(enc.masks), scene)

    cases: list[tuple[str, Callable[[], Any], bool]] = [
        ("equivalent matmul (patterns given)", lambda: measure(patterns, scene), False),
        ("A, masks learning, before (4-pass quantiser)", before, True),
        ("A, masks learning (one-pass quantiser)", lambda: enc.A(scene), True),
        ("A, frozen or eval (cached patterns)", lambda: enc.A(scene), False),
    ]
    rows = []
    for name, fn, grad in cases:
        with torch.set_grad_enabled(grad):
            t = timed(fn, min_reps=5, seconds=seconds)
        rows.append({"case": name, "ms": t["p50_s"] * 1e3, "p99_ms": t["p99_s"] * 1e3})
    return rows


def build_module() -> LatentImagingModule:
    args = yaml.safe_load(CONFIG.read_text())["model"]["init_args"]
    return LatentImagingModule(**args)


def _optimizer(module: LatentImagingModule, before: bool) -> torch.optim.Optimizer:
    if before:  # torch's single-tensor Adam: the per-parameter Python loop GroupwiseOptimizer used to run
        return torch.optim.Adam(module.parameters(), lr=1e-3, foreach=False, fused=False)
    return module.configure_optimizers()["optimizer"]


def _step(parts: dict[str, list[float]], name: str, fn: Callable[[], Any]) -> Any:
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    parts.setdefault(name, []).append(time.perf_counter() - t)
    parts.setdefault(name + " [cpu]", []).append(time.process_time() - c)
    return out


def _run_steps(phase: str, steps: int, before: bool = False, autocast: bool = False) -> dict[str, float]:
    """Median wall and CPU milliseconds per part of ``steps`` steps of ``phase`` (2 warm-up steps first)."""
    torch.manual_seed(0)
    module = build_module().train()
    g = module.world.generator
    batch, d = 256, module.optical.num_readings
    images = torch.rand(batch, 256 * 256)
    readings = torch.rand(batch, d) * 0.1 + 0.45
    target = module.w_avg + torch.randn(batch, g.num_ws, g.w_dim) * 0.3
    scene = torch.rand(32, 3, 256, 256)
    module.optical.freeze(phase != "joint")
    opt = _optimizer(module, before)
    parts: dict[str, list[float]] = {}
    for i in range(steps + 2):
        if i == 2:
            parts.clear()
        t0, c0 = time.perf_counter(), time.process_time()
        if phase == "joint":
            if before:
                y = _step(parts, "O forward", lambda: measure_detector_image(
                    _FourPassSTE.apply(module.optical.masks), images))
            else:
                y = _step(parts, "O forward", lambda: module.optical.forward_detector_image(images))
        else:
            y = readings
        def latent_part(y: torch.Tensor = y) -> tuple[torch.Tensor, torch.Tensor]:
            ws = module.encode_readings(y)
            return ws, F.l1_loss(ws, target)

        ws, loss = _step(parts, "D_theta forward + L_lat", latent_part)
        if phase == "image":
            def image_part(ws: torch.Tensor = ws) -> torch.Tensor:
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                    out = module.image_losses(ws[:32], scene)
                return out["pix"].float() + 0.5 * out["id"].float()
            module.hparams.lambda_pix, module.hparams.lambda_id = 1.0, 0.5
            loss = loss + _step(parts, "G + identity forward", image_part)
        _step(parts, "backward", loss.backward)
        _step(parts, "optimizer", lambda: (opt.step(), opt.zero_grad(set_to_none=True)))
        if phase == "joint":
            _step(parts, "clamp masks", lambda: module.optical.masks.data.clamp_(0, 1))
        parts.setdefault("step", []).append(time.perf_counter() - t0)
        parts.setdefault("step [cpu]", []).append(time.process_time() - c0)
    return {k: float(np.median(v)) * 1e3 for k, v in parts.items()}


def training_steps(steps: int = 6) -> dict[str, dict[str, float]]:
    """Per part (ms, median) for joint (before/after), readout and image (fp32 / bf16 autocast for G + identity)."""
    return {"joint": _run_steps("joint", steps), "joint, before": _run_steps("joint", steps, before=True),
            "readout": _run_steps("readout", steps), "image": _run_steps("image", max(3, steps // 2)),
            "image, bf16 autocast G + identity": _run_steps("image", max(3, steps // 2), autocast=True)}


@torch.no_grad()
def autocast_agreement() -> dict[str, float]:
    """How much bf16 autocast changes the image losses and their gradient w.r.t. the latent (one batch of 32)."""
    module = build_module().eval()
    g = module.world.generator
    scene = torch.rand(32, 3, 256, 256, generator=torch.Generator().manual_seed(1))
    ws0 = g.w_avg + torch.randn(32, g.num_ws, g.w_dim, generator=torch.Generator().manual_seed(2)) * 0.5
    module.hparams.lambda_pix, module.hparams.lambda_id = 1.0, 0.5
    out = {}
    for name, on in (("fp32", False), ("bf16", True)):
        ws = ws0.clone().requires_grad_(True)
        with torch.enable_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=on):
            losses = module.image_losses(ws, scene)
            total = losses["pix"].float() + 0.5 * losses["id"].float()
            (grad,) = torch.autograd.grad(total, ws)
        out[name] = (float(total), grad.flatten())
    return {"loss_fp32": out["fp32"][0], "loss_bf16": out["bf16"][0],
            "grad_cosine": float(F.cosine_similarity(out["fp32"][1], out["bf16"][1], dim=0))}


def allocator_rates(steps: int = 5, rounds: int = 2) -> dict[str, dict[str, float]]:
    """Joint step (wall and CPU ms) and the learning ``OpticalEncoder.A`` (wall ms) under each of :data:`ALLOCATORS`,
    in fresh processes (malloc reads its settings at start-up; the parent's ``MALLOC_*`` settings are not
    inherited), alternating the settings ``rounds`` times; medians over the rounds. CPU-ms (user + system, page
    faults included) is the number to compare on a shared machine."""
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in ALLOCATORS}
    base = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    for _ in range(rounds):
        for name, env in ALLOCATORS.items():
            done = subprocess.run([sys.executable, "-m", "lsi.experiments.bench_training", "--joint-steps",
                                   str(steps)], env={**base, **env}, capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                raise RuntimeError(f"allocator run {name!r} failed: {done.stderr[-400:]}")
            runs[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {name: {k: float(np.median([r[k] for r in rs])) for k in rs[0]} for name, rs in runs.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="one staged joint step, timed (for allocator comparisons)")
    p.add_argument("--joint-steps", type=int, default=5)
    args = p.parse_args(argv)
    learning = next(r for r in optical_rates() if r["case"] == "A, masks learning (one-pass quantiser)")
    joint = _run_steps("joint", args.joint_steps)
    print(json.dumps({"joint step": joint["step"], "joint step [cpu]": joint["step [cpu]"],
                      "A, masks learning": learning["ms"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
