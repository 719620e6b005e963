"""``lsi plan``: does the software keep up with the camera? Software rate next to the optical rate, per d.

::

    lsi plan                                  # the measured rates of docs/performance.json (make bench)
    lsi plan --model model.onnx               # measure this exported model now (about two seconds)
    lsi plan --d 32 128 --video-fps 60

The optical rate comes from the one timing model (:mod:`hardware.timing`): a DLP4500 shows 24 binary patterns per
video frame, 2,880 patterns/s at 120 Hz, so ``d`` masks give ``2880 / d`` scenes/s (pattern-limited; the
frame-limited rate rounds up to whole frames). The software rate is latents/s of readings -> D_theta -> P_A, at
batch 1 on one thread (latency-bound streaming) and batch 256 on all threads (throughput). ``headroom`` = software
rate / optical rate: above 1 the camera never waits for its software.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from hardware.timing import PLANES_PER_FRAME, TimingModel
from lsi.runtime.model import ExportedModel, ModelFileError

__all__ = ["main", "measure_model", "optical_rates"]

DEFAULT_RESULTS = Path(__file__).resolve().parents[2] / "docs" / "performance.json"


def optical_rates(d: int, video_fps: float = 120.0) -> dict[str, float]:
    """Scenes/s of ``d`` binary masks on the DLP4500: pattern-limited and frame-limited (no overheads)."""
    exposure = math.floor(1e6 / video_fps / PLANES_PER_FRAME)  # the longest exposure that fits 24 per frame
    t = TimingModel(exposure_us=exposure, d=d, video_fps=video_fps)
    return {"patterns_per_s": t.patterns_per_s, "pattern_limited": t.ideal_scenes_per_s,
            "frame_limited": 1.0 / t.sequence_s}


def measure_model(model_path: str | Path, seconds: float = 1.0) -> dict[str, float]:
    """Latents/s of an exported model: batch 1 on one thread, batch 256 on all threads."""
    out = {}
    for key, batch, threads in (("batch1_1thread", 1, 1), ("batch256_all", 256, os.cpu_count() or 1)):
        model = ExportedModel.open(model_path, threads=threads)
        lo, hi = model.meta.get("reading_range", (0.0, 1.0))
        y = np.random.default_rng(0).uniform(max(lo, 0.3), min(hi, 0.7), (batch, model.d)).astype(np.float32)
        model.run_raw(y)
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds or n < 3:
            model.run_raw(y)
            n += 1
        out[key] = n * batch / (time.perf_counter() - start)
    return out


def _rows_from_results(path: Path) -> tuple[list[dict[str, Any]], str]:
    if not path.is_file():
        raise ModelFileError(f"{path} does not exist: run `make bench` first, or measure a model with --model")
    data = json.loads(path.read_text())
    return data.get("inference", []), data.get("machine", {}).get("summary", "")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lsi plan", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="an exported model (lsi export) to measure now")
    p.add_argument("--results", default=str(DEFAULT_RESULTS), help="benchmark results (make bench)")
    p.add_argument("--d", type=int, nargs="*", help="numbers of masks to report (default: all measured)")
    p.add_argument("--video-fps", type=float, default=120.0, help="DMD video rate (120 or 60 Hz)")
    args = p.parse_args(argv)
    try:
        if args.model:
            model = ExportedModel.open(args.model)
            rates = measure_model(args.model)
            rows = [{"config": f"{Path(args.model).name} ({model.meta.get('precision', '?')})", "d": model.d,
                     "backend": model.backend, **rates}]
            where = "measured now"
        else:
            rows, where = _rows_from_results(Path(args.results))
            where = f"{args.results}" + (f" ({where})" if where else "")
        if args.d:
            rows = [r for r in rows if r["d"] in set(args.d)]
        if not rows:
            raise ModelFileError("no software rates for these d; run `make bench` or pass --model")
        optical = {d: optical_rates(d, args.video_fps) for d in sorted({r["d"] for r in rows})}
    except (ModelFileError, ValueError, OSError) as err:
        print(f"lsi plan: error: {err}", file=sys.stderr)
        return 2
    print(f"optical: DLP4500 {optical[next(iter(optical))]['patterns_per_s']:,.0f} binary patterns/s "
          f"({args.video_fps:g} Hz video); software: {where}")
    print(f"{'config':<28} {'backend':<22} {'d':>5} {'optical/s':>10} {'b1 1thr/s':>10} {'headroom':>9} "
          f"{'b256 all/s':>11} {'headroom':>9}")
    for r in sorted(rows, key=lambda r: (r["config"], r["d"], r["backend"])):
        opt = optical[r["d"]]["pattern_limited"]
        b1, b256 = r.get("batch1_1thread"), r.get("batch256_all")
        cells = [f"{v:>10,.0f} {v / opt:>8.1f}x" if v else f"{'-':>10} {'-':>9}" for v in (b1, b256)]
        print(f"{r['config']:<28} {r['backend']:<22} {r['d']:>5} {opt:>10,.1f} {cells[0]} {cells[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
