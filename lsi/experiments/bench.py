"""``make bench``: how fast LSI runs on this machine -> ``docs/performance.md`` and ``docs/performance.json``.

Measures (wall clock, medians; see the parts' modules): D_theta + P_A inference per backend for the embedded and
the paper-scale configuration at d in {16, 32, 64, 128, 512, 4096} (:mod:`lsi.experiments.bench_inference`), G
and the G-feature heads, the optical encoder against its matmul, the staged recipe's training steps by part, the
allocator and bf16-autocast trials (:mod:`lsi.experiments.bench_training`), exported models of a trained run
(identity match of each precision on the test split, start-up of ``lsi infer``), and the software / optical rate
per d (:mod:`lsi.runtime.plan`). ``docs/performance.json`` feeds ``lsi plan``. Run it on an idle machine (the
load average is recorded): on 2 shared cores, contention halves every number.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import torch
import torch.nn.functional as F
import yaml

from datamodules import SyntheticFacesDataModule
from lsi.deploy.export import export_model
from lsi.experiments import bench_report
from lsi.experiments.bench_gpu import TITLE as GPU_TITLE
from lsi.experiments.bench_inference import CONFIGS, generator_rates, inference_rates
from lsi.experiments.bench_training import (
    CONFIG,
    allocator_rates,
    autocast_agreement,
    optical_rates,
    training_steps,
)
from lsi.models.imaging import load_lsi
from lsi.report.markdown import replace_section, section_text
from lsi.runtime.model import ExportedModel
from lsi.runtime.plan import optical_rates as dmd_rates
from lsi.world.frozen import frozen_world

ROOT = Path(__file__).resolve().parents[2]
DS = (16, 32, 64, 128, 512, 4096)


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
            "python": platform.python_version(), "torch_threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "(unset)"), "load_start": os.getloadavg()[0]}
    info["summary"] = f"{cpu}, {info['cores']} cores, torch {info['torch']}, onnxruntime {info['onnxruntime']}"
    return info


def _test_scenes(limit: int) -> list[torch.Tensor]:
    src = dict(yaml.safe_load(CONFIG.read_text())["data"]["init_args"]["source"]["init_args"])
    src["batch_size"] = 50
    dm = SyntheticFacesDataModule(**src)
    dm.setup("test")
    out, n = [], 0
    for batch in dm.test_dataloader():
        out.append(batch["image"])
        n += len(batch["image"])
        if n >= limit:
            break
    return out


@torch.no_grad()
def exported_quality(ckpt: Path, limit: int = 400) -> dict[str, Any]:
    """Identity match on the test split of each exported precision (no generator in the files; G applied here),
    against the PyTorch checkpoint; plus ``lsi infer`` start-up for one reading vector (fresh processes)."""
    lsi = load_lsi(str(ckpt))
    world, threshold = lsi.world, lsi.threshold
    scenes = _test_scenes(limit)
    out: dict[str, Any] = {"checkpoint": str(ckpt), "scenes": sum(len(s) for s in scenes), "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {"torch (checkpoint)": None}
        for precision, suffix in (("fp32", "onnx"), ("int8", "onnx"), ("bf16", "pt2")):
            path = Path(tmp) / f"model_{precision}.{suffix}"
            meta = export_model(ckpt, path, reconstruction=False, precision=precision)
            paths[f"{precision} ({suffix})"] = path
            out["models"][f"{precision} ({suffix})"] = {"max_abs_diff_ws": meta["verified"]["ws"],
                                                        "bytes": path.stat().st_size}
        out["models"]["torch (checkpoint)"] = {}
        runners = {k: ExportedModel.open(p) for k, p in paths.items() if p is not None}
        matches = {k: 0 for k in paths}
        for scene in scenes:
            y = lsi.optical.A(scene)
            small = F.interpolate(scene * 2 - 1, size=world.generator.img_resolution, mode="area")
            ref_id = world.identity(small)
            for name in paths:
                ws = lsi.encode_readings(y) if name not in runners else torch.from_numpy(
                    runners[name].run(y.numpy())["ws"])
                rec = world.generator.synthesis(ws).clamp(-1, 1)
                dist = 1 - F.cosine_similarity(world.identity(rec), ref_id, dim=1)
                matches[name] += int((dist <= threshold).sum())
        for name, m in matches.items():
            out["models"][name]["id_match"] = m / out["scenes"]
        one = Path(tmp) / "one.npy"
        np.save(one, y[:1].numpy())
        times = []
        for _ in range(3):
            t = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "lsi", "infer", "--model", str(paths["fp32 (onnx)"]),
                                   "--readings", str(one), "--out", str(Path(tmp) / "o.npz")],
                                  capture_output=True, text=True, cwd=ROOT)
            times.append(time.perf_counter() - t)
            if done.returncode != 0:
                raise RuntimeError(f"lsi infer failed: {done.stderr[-300:]}")
        out["infer_startup_s"] = statistics.median(times)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(ROOT / "docs" / "performance.md"))
    p.add_argument("--json", default=str(ROOT / "docs" / "performance.json"))
    p.add_argument("--ckpt", default="runs/ratio512/lsi.ckpt", help="a trained run for the exported-model checks")
    p.add_argument("--d", type=int, nargs="*", default=list(DS))
    p.add_argument("--configs", nargs="*", default=list(CONFIGS), choices=CONFIGS)
    p.add_argument("--seconds", type=float, default=1.0, help="time budget per inference measurement")
    p.add_argument("--steps", type=int, default=6, help="timed training steps per phase")
    p.add_argument("--test-scenes", type=int, default=400, help="test-split scenes for the identity-match check")
    args = p.parse_args(argv)
    start = time.time()
    results: dict[str, Any] = {"machine": machine()}
    print(f"machine: {results['machine']['summary']}; load {results['machine']['load_start']:.2f}", flush=True)
    print("inference (D_theta + P_A):", flush=True)
    results["inference"] = inference_rates(tuple(args.configs), tuple(args.d), seconds=args.seconds)
    results["optical"] = {str(d): dmd_rates(d) for d in args.d}
    print("G and G-feature heads, optical encoder, training steps ...", flush=True)
    results["generator"] = generator_rates(frozen_world("embedded"), seconds=args.seconds)
    results["optical_encoder"] = optical_rates(seconds=args.seconds)
    results["training"] = training_steps(args.steps)
    results["autocast"] = autocast_agreement()
    results["allocator"] = allocator_rates(max(3, args.steps // 2))
    ckpt = Path(args.ckpt)
    if ckpt.is_file():
        print(f"exported models of {ckpt} ...", flush=True)
        results["exported"] = exported_quality(ckpt, args.test_scenes)
    else:
        print(f"{ckpt} not found: exported-model checks skipped (train one with `make train`)", flush=True)
    results["machine"]["load_end"] = os.getloadavg()[0]
    results["machine"]["seconds"] = round(time.time() - start, 1)
    Path(args.json).write_text(json.dumps(results, indent=1, default=float) + "\n")
    text = bench_report.render(results)
    old = Path(args.out).read_text() if Path(args.out).is_file() else ""
    gpu = section_text(old, GPU_TITLE)
    if gpu and "No GPU was lent" not in gpu:  # keep the last `make bench-gpu` measurement
        text = replace_section(text, GPU_TITLE, gpu.split("\n", 1)[1])
    Path(args.out).write_text(text)
    print(f"wrote {args.out} and {args.json} in {results['machine']['seconds']:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
