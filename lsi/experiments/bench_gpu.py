"""``make bench-gpu``: training steps on a CUDA card in fp32 and bf16 -> the GPU section of ``docs/performance.md``.

Two steps, each timed after warm-up with ``torch.cuda.synchronize`` (images or latents per second, peak memory):

* the image-phase step of the staged recipe on the embedded world at batch 32: O on detector images, D_theta,
  L_lat, G + identity losses on all 32 samples, backward, fused Adam (the real-path StyleGAN-XL generator is not
  shipped: the embedded G stands in, as issue 13 allows);
* the paper-scale D_theta (:meth:`DigitalEncoder.paper_scale`, d = 128) forward + backward + Adam at batch 256.

bf16 = ``torch.autocast("cuda", dtype=torch.bfloat16)`` around the forward passes. Without a CUDA device it says
so and writes nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from lsi.experiments.bench_training import build_module
from lsi.models.digital_encoder import DigitalEncoder
from lsi.report.markdown import write_section

ROOT = Path(__file__).resolve().parents[2]
TITLE = "## GPU (`make bench-gpu`)"


def _time(step: Any, steps: int) -> float:
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def _time_training(loss_fn, opt, bf16: bool, steps: int) -> tuple[float, float]:
    """Seconds per optimiser step of ``loss_fn`` (under bf16 autocast when asked) and the peak GiB allocated."""

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    torch.cuda.reset_peak_memory_stats()
    sec = _time(step, steps)
    return sec, torch.cuda.max_memory_allocated() / 2**30


def image_step(bf16: bool, steps: int, batch: int = 32) -> dict[str, float]:
    dev = torch.device("cuda")
    module = build_module().to(dev).train()
    hp = module.hparams
    hp.lambda_pix, hp.lambda_id = 1.0, 0.5
    g = module.world.generator
    images = torch.rand(batch, 256 * 256, device=dev)
    scene = torch.rand(batch, 3, 256, 256, device=dev)
    target = module.w_avg + torch.randn(batch, g.num_ws, g.w_dim, device=dev) * 0.3
    opt = module.configure_optimizers()["optimizer"]

    def loss() -> torch.Tensor:
        ws = module.encode_readings(module.optical.forward_detector_image(images))
        losses = module.image_losses(ws, scene)
        return F.l1_loss(ws.float(), target) + losses["pix"].float() + 0.5 * losses["id"].float()

    sec, peak = _time_training(loss, opt, bf16, steps)
    return {"imgs_per_s": batch / sec, "ms": sec * 1e3, "peak_gib": peak}


def paper_step(bf16: bool, steps: int, batch: int = 256, d: int = 128) -> dict[str, float]:
    dev = torch.device("cuda")
    enc = DigitalEncoder.paper_scale(d).to(dev).train()
    opt = torch.optim.Adam(enc.parameters(), lr=1e-4, fused=True)
    y, target = torch.rand(batch, d, device=dev), torch.randn(batch, 18, 512, device=dev) * 0.1

    sec, peak = _time_training(lambda: F.l1_loss(enc(y).float(), target), opt, bf16, steps)
    return {"latents_per_s": batch / sec, "ms": sec * 1e3, "peak_gib": peak}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(ROOT / "docs" / "performance.md"))
    p.add_argument("--steps", type=int, default=20)
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench-gpu: no CUDA device on this machine: nothing measured, docs/performance.md left as it is")
        return 0
    card = torch.cuda.get_device_name(0)
    lines = [f"Card: {card} ({torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB), torch "
             f"{torch.__version__}, CUDA {torch.version.cuda}; {args.steps} timed steps after 3 warm-up steps.", "",
             "| step | precision | rate | ms/step | peak memory |", "|---|---|---:|---:|---:|"]
    for bf16 in (False, True):
        name = "bf16 autocast" if bf16 else "fp32"
        r = image_step(bf16, args.steps)
        lines.append(f"| image phase, embedded G + identity, batch 32 | {name} | {r['imgs_per_s']:,.0f} imgs/s | "
                     f"{r['ms']:.1f} | {r['peak_gib']:.2f} GiB |")
        r = paper_step(bf16, args.steps)
        lines.append(f"| paper-scale D_θ (d = 128), batch 256 | {name} | {r['latents_per_s']:,.0f} latents/s | "
                     f"{r['ms']:.1f} | {r['peak_gib']:.2f} GiB |")
        print(lines[-2], lines[-1], sep="\n", flush=True)
    write_section(args.out, TITLE, "\n".join(lines), new_document="# Performance (`make bench`)\n")
    print(f"wrote the GPU section of {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
