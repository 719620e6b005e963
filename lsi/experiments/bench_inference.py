"""Inference benchmark parts of ``make bench``: readings -> D_theta + P_A per backend, G and the G-feature heads.

Graphs are :class:`lsi.deploy.graph.InferenceGraph` (what ``lsi export`` writes) with random weights of the two
D_theta configurations — the speed of dense kernels does not depend on the weights' values:

* ``embedded``: ``configs/train_embedded.yaml``'s D_theta (hidden 256, linear blocks 2/3/4, linear path; W+ 10 x
  128) and P_A (21 attributes);
* ``paper``: :meth:`DigitalEncoder.paper_scale` (hidden 1024, attention blocks 4/5/6, 8 tokens x 8 heads; W+ 18 x
  512) and P_A (40 CelebA attributes).

Both with a whitening reading normaliser (a dense ``[d, d]`` transform). Backends: ``torch`` (eager, float32),
``torch-bf16`` (D_theta in bfloat16: what an ``lsi export --precision bf16`` ``.pt2`` holds), ``ort`` (ONNX
Runtime, float32) and ``ort-int8`` (dynamically quantised weight matmuls), the last two exported and run exactly as
``lsi export`` / ``lsi infer`` do.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lsi.deploy.export import export_onnx, quantise_int8
from lsi.deploy.graph import InferenceGraph, LatentReadout
from lsi.models.digital_encoder import DigitalEncoder
from lsi.models.projectors import (
    AttributeProjector,
    LandmarkProjector,
    SegmentationProjector,
    default_landmark_layer,
    default_seg_layers,
)
from lsi.models.reading_normaliser import ReadingNormaliser
from lsi.runtime.model import ExportedModel

__all__ = ["BACKENDS", "CONFIGS", "build_graph", "generator_rates", "inference_rates", "timed"]

CONFIGS = ("embedded", "paper")
BACKENDS = ("torch", "torch-bf16", "ort", "ort-int8")
CASES = (("batch1_1thread", 1, 1), ("batch256_all", 256, None))


def timed(fn: Callable[[], Any], min_reps: int = 5, seconds: float = 1.0, warmup: int = 2) -> dict[str, float]:
    """Wall seconds per call: median (p50), 99th percentile (p99) and the number of calls timed."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_reps or time.perf_counter() - start < seconds:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    arr = np.asarray(times)
    return {"p50_s": float(np.median(arr)), "p99_s": float(np.percentile(arr, 99)), "calls": len(times)}


def build_graph(config: str, d: int, seed: int = 0) -> InferenceGraph:
    """Random-weight readings -> D_theta -> P_A graph of ``config`` (see the module docstring)."""
    torch.manual_seed(seed)
    if config == "embedded":
        digital = DigitalEncoder(d, 10, 128, hidden=256, depths=(2, 3, 4), block="linear", linear_path=True)
        attributes = 21
    elif config == "paper":
        digital = DigitalEncoder.paper_scale(d)
        attributes = 40
    else:
        raise ValueError(f"unknown config {config!r}; choose one of {CONFIGS}")
    with torch.no_grad():
        for p in digital.parameters():  # no exact zeros (zero-initialised output layers): realistic arithmetic
            if p.ndim and not p.abs().sum():
                p.normal_(0, 0.02)
    norm = ReadingNormaliser(d, whiten=True)
    norm.mean.fill_(0.5)
    norm.transform.copy_(torch.eye(d) * 10 + torch.randn(d, d) * 0.1)
    readout = LatentReadout(norm, digital, torch.randn(digital.w_dim) * 0.1)
    return InferenceGraph(readout, AttributeProjector(digital.num_ws, digital.w_dim, attributes)).eval()


def _bf16(graph: InferenceGraph) -> InferenceGraph:
    src = graph.readout
    readout = LatentReadout(src.normaliser, src.digital, src.w_avg, fold=False)
    readout.use_bfloat16()
    return InferenceGraph(readout, graph.attributes).eval()


def _runner(backend: str, graph: InferenceGraph, folder: Path, threads: int) -> Callable[[np.ndarray], Any]:
    if backend in ("torch", "torch-bf16"):
        model = graph if backend == "torch" else _bf16(graph)

        def run(y: np.ndarray) -> Any:
            torch.set_num_threads(threads)
            with torch.inference_mode():
                return model(torch.from_numpy(y))
        return run
    path = folder / f"{backend}.onnx"
    if not path.is_file():
        fp32 = folder / "ort.onnx"
        if not fp32.is_file():
            export_onnx(graph, fp32, torch.full((2, graph.d), 0.5))
        if backend == "ort-int8":
            quantise_int8(fp32, path)
    return ExportedModel.open(path, threads=threads, check_metadata=False).run_raw


def inference_rates(configs: tuple[str, ...], ds: tuple[int, ...], backends: tuple[str, ...] = BACKENDS,
                    seconds: float = 1.0, log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """One row per (config, d, backend): latents/s and p50/p99 latency (ms) per case (see :data:`CASES`)."""
    rows = []
    all_threads = os.cpu_count() or 1
    for config in configs:
        for d in ds:
            graph = build_graph(config, d)
            rng = np.random.default_rng(d)
            with tempfile.TemporaryDirectory() as tmp:
                for backend in backends:
                    row: dict[str, Any] = {"config": config, "d": d, "backend": backend}
                    for case, batch, threads in CASES:
                        threads = threads or all_threads
                        run = _runner(backend, graph, Path(tmp), threads)
                        y = rng.uniform(0.45, 0.55, (batch, d)).astype(np.float32)
                        t = timed(lambda run=run, y=y: run(y), min_reps=20 if batch == 1 else 5, seconds=seconds)
                        row[case] = batch / t["p50_s"]
                        row[f"{case}_p50_ms"], row[f"{case}_p99_ms"] = t["p50_s"] * 1e3, t["p99_s"] * 1e3
                    rows.append(row)
                    log(f"  {config:8s} d={d:5d} {backend:10s} b1/1thr {row['batch1_1thread']:9,.0f}/s   "
                        f"b256/{all_threads}thr {row['batch256_all']:9,.0f}/s")
            torch.set_num_threads(all_threads)
    return rows


def generator_rates(world: Any, seconds: float = 1.0) -> list[dict[str, Any]]:
    """Embedded G synthesis and the G-feature heads (P_S + P_L on G's maps, random projector weights), torch eager:
    batch 1 on one thread and batch 32 on all threads (images/s, p50/p99 ms)."""
    g = world.generator
    seg = SegmentationProjector(default_seg_layers(g.feature_names)).eval()
    lmk = LandmarkProjector(default_landmark_layer(g.feature_names), g.num_ws, g.w_dim).eval()
    names = tuple(dict.fromkeys([*seg.layers, lmk.layer]))

    def heads(ws: torch.Tensor) -> Any:
        feats = g.features(ws, names)
        return seg(feats), lmk(feats[lmk.layer], ws)

    rows = []
    for part, fn in (("G synthesis", g.synthesis), ("P_S + P_L (G features)", heads)):
        row: dict[str, Any] = {"part": part}
        for case, batch, threads in (("batch1_1thread", 1, 1), ("batch32_all", 32, os.cpu_count() or 1)):
            torch.set_num_threads(threads)
            ws = g.w_avg.expand(batch, g.num_ws, -1) + torch.randn(batch, g.num_ws, g.w_dim) * 0.5
            with torch.inference_mode():
                t = timed(lambda fn=fn, ws=ws: fn(ws), min_reps=5, seconds=seconds)
            row[case] = batch / t["p50_s"]
            row[f"{case}_p50_ms"], row[f"{case}_p99_ms"] = t["p50_s"] * 1e3, t["p99_s"] * 1e3
        rows.append(row)
    torch.set_num_threads(os.cpu_count() or 1)
    return rows
