"""Where a rig's readings part from the model's: ``python -m lsi.experiments.rig_gap --run runs/rig512
--capture runs/capture-rig512`` (any trained run and a store captured with its masks).

For every captured scene the rig's drift-corrected readings ``y_rig [N, d]`` are set against the model's noiseless
readings ``y_sim [N, d]`` of the same displayed image (its O, :meth:`OpticalEncoder.A`):

1. per mask, the affine fit ``y_rig ~ gain * y_sim + offset`` (a miscalibrated rig shows gains far from 1);
2. the residual after that fit, rms per reading (white detector noise: the same in every direction);
3. in the eigenbasis of ``y_sim``'s covariance, weakest directions first, in ``bands`` bands: the signal's rms
   against the residual's. Where the residual is larger, a D_theta trained on noiseless readings, which leans on
   those directions, reads mostly noise there: train with the rig's noise (``make train-rig``);
4. in the model's normalised space (what D_theta reads): the spread of the simulated readings against the mean
   distance between rig and simulated readings of the same scene.

Measured on the simulated rig (docs/hardware.md, Known limitations): gains 1.0015 +- 0.0014, a white residual of
1.2e-3 rms (the shot noise), and signal below it in the 64 weakest of 128 directions.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import Tensor

from datamodules.measured import MeasuredDataset
from lsi.models.imaging import load_lsi
from lsi.report.records import write_json


def reading_gap(y_sim: Tensor, y_rig: Tensor, normalise=None, bands: int = 4) -> dict:
    """The numbers of the module docstring for readings ``y_sim, y_rig [N, d]`` (N >= 2) of the same scenes;
    ``normalise`` maps ``[N, d]`` readings to D_theta's input (the model's reading normaliser)."""
    if y_sim.shape != y_rig.shape or y_sim.ndim != 2 or len(y_sim) < 2:
        raise ValueError(f"need two reading arrays [N >= 2, d] of the same shape, got {tuple(y_sim.shape)} and "
                         f"{tuple(y_rig.shape)}")
    s, r = y_sim.double(), y_rig.double()
    sc, rc = s - s.mean(0), r - r.mean(0)
    gain = (rc * sc).sum(0) / (sc * sc).sum(0).clamp_min(1e-30)
    offset = r.mean(0) - gain * s.mean(0)
    residual = r - (gain * s + offset)
    evals, evecs = torch.linalg.eigh(torch.cov(s.T).reshape(s.shape[1], s.shape[1]))  # ascending variance
    signal_e, noise_e = sc @ evecs, (rc - sc) @ evecs
    edges = torch.linspace(0, s.shape[1], bands + 1).round().long().tolist()
    out = {"scenes": len(s), "readings": s.shape[1],
           "gain_mean": float(gain.mean()), "gain_std": float(gain.std()), "offset_mean": float(offset.mean()),
           "signal_std": float(s.std(0).mean()), "residual_rms": float(residual.std(0).mean()),
           "bands": [{"directions": f"{lo}-{hi}", "signal_rms": float(signal_e[:, lo:hi].pow(2).mean().sqrt()),
                      "residual_rms": float(noise_e[:, lo:hi].pow(2).mean().sqrt())}
                     for lo, hi in zip(edges[:-1], edges[1:]) if hi > lo]}
    if normalise is not None:
        zs, zr = normalise(y_sim.float()).double(), normalise(y_rig.float()).double()
        out["normalised"] = {"simulated_spread": float(zs.std(0).norm()),
                             "rig_minus_simulated": float((zr - zs).norm(dim=1).mean())}
    return out


@torch.no_grad()
def measure_gap(run: Path, capture: Path, batch: int = 50) -> dict:
    module = load_lsi(str(run / "lsi.ckpt")).eval()
    data = MeasuredDataset(capture, with_labels=False)
    sims = []
    for start in range(0, len(data), batch):
        images = torch.stack([data[i]["image"] for i in range(start, min(start + batch, len(data)))])
        sims.append(module.optical.A(images))
    return reading_gap(torch.cat(sims), data.readings, module.reading_norm)


def render(gap: dict) -> str:
    lines = [f"{gap['scenes']} scenes x {gap['readings']} readings: gain {gap['gain_mean']:.4f} +- "
             f"{gap['gain_std']:.4f}, offset {gap['offset_mean']:+.4f}; across-scene signal std {gap['signal_std']:.2e}"
             f", residual after the per-mask affine fit {gap['residual_rms']:.2e} rms",
             "eigen-directions (weakest first)   signal rms   residual rms"]
    lines += [f"  {b['directions']:>12}                  {b['signal_rms']:.2e}     {b['residual_rms']:.2e}"
              for b in gap["bands"]]
    if "normalised" in gap:
        n = gap["normalised"]
        lines.append(f"normalised (D_theta's input): simulated spread {n['simulated_spread']:.3f}, |rig - simulated| "
                     f"{n['rig_minus_simulated']:.3f} per scene")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, default=Path("runs/rig512"), help="trained run (lsi.ckpt)")
    p.add_argument("--capture", type=Path, default=Path("runs/capture-rig512"), help="store captured with its masks")
    p.add_argument("--json", type=Path, default=None, help="default <capture>/rig_gap.json")
    args = p.parse_args(argv)
    for path in (args.run / "lsi.ckpt", args.capture / "manifest.json"):
        if not path.is_file():
            raise SystemExit(f"rig_gap: {path} not found (train with `make train-rig`, capture with "
                             "`make hardware-e2e` or lsi-capture)")
    gap = measure_gap(args.run, args.capture)
    print(render(gap))
    write_json(args.json or args.capture / "rig_gap.json", gap)
    return gap


if __name__ == "__main__":
    main()
