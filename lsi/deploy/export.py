"""``lsi export``: a trained LSI checkpoint (and heads) -> one exported, verified inference model.

::

    lsi export --ckpt runs/ratio512/lsi.ckpt --out model.onnx [--heads heads.ckpt] [--no-reconstruction]
               [--precision fp32|bf16|int8]

Formats, by the suffix of ``--out``:

* ``.onnx`` (ONNX Runtime; opset 17): ``fp32``, or ``int8`` — D_theta's and P_A's weight matmuls dynamically
  quantised (int8 weights, one scale per weight tensor, activations quantised per batch at run time; the normaliser, the
  linear read-out path and G stay float32: the readings' information sits in small differences).
* ``.pt2`` (``torch.export``, run with torch): ``fp32`` or ``bf16`` (D_theta in bfloat16; ONNX Runtime's CPU
  kernels have no bfloat16 matmul).

The graph is :class:`lsi.deploy.graph.InferenceGraph`; ``--no-reconstruction`` leaves the generator out (the
privacy-preserving camera: no G weight or op is in the file, no image can be made). Every export is verified
against the PyTorch modules on readings drawn from the checkpoint's reading statistics; the largest absolute
difference of each output must stay within :data:`TOLERANCE` for the precision, else the export is refused.
The model's contract (``d``, outputs, attribute names, mask hashes, reading range, the verification) is stored
in the file as JSON (ONNX metadata ``lsi``; ``.pt2`` extra file ``lsi.json``), read by ``lsi infer``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lsi.deploy.graph import InferenceGraph
from lsi.labels import EMBEDDED_ATTRIBUTE_NAMES
from lsi.models.heads import load_heads
from lsi.models.imaging import load_lsi
from lsi.physics.mask_files import masks_sha256
from lsi.runtime.model import ExportedModel

__all__ = ["ExportError", "TOLERANCE", "export_model", "export_onnx", "main", "quantise_int8", "verification_readings"]

#: Largest absolute difference to the PyTorch modules allowed per precision and output (ws: W+ units; attributes:
#: probabilities; landmarks: fractions of the image; image: [0, 1] pixels). Segmentation ids are checked as the
#: fraction of pixels that agree (``segmentation_agreement``). fp32 differs by summation order only; the reduced
#: precisions by their rounding (measured on the embedded run and the paper-scale D_theta: docs/performance.md).
TOLERANCE = {
    "fp32": {"ws": 1e-3, "attributes": 1e-4, "landmarks": 1e-4, "image": 1e-3, "segmentation_agreement": 0.999},
    "bf16": {"ws": 0.15, "attributes": 0.05, "landmarks": 0.01, "image": 0.05, "segmentation_agreement": 0.95},
    "int8": {"ws": 0.15, "attributes": 0.05, "landmarks": 0.01, "image": 0.05, "segmentation_agreement": 0.95},
}
FORMATS = {".onnx": ("fp32", "int8"), ".pt2": ("fp32", "bf16")}
#: Readings outside this range (normalised units) are refused by ``lsi infer``: a mean of mask x scene lies in
#: [0, 1]; the margin admits detector noise.
READING_RANGE = (-0.05, 1.05)


class ExportError(ValueError):
    """An export that cannot be made or does not reproduce the PyTorch model."""


@torch.no_grad()
def verification_readings(graph: InferenceGraph, n: int = 64, seed: int = 0) -> torch.Tensor:
    """``[n, d]`` readings with the training readings' statistics (mean and covariance the normaliser was
    fitted on: ``y = mean + z @ inverse(transform)``, ``z ~ N(0, I)``), clipped to the valid range."""
    norm = graph.readout.normaliser
    z = torch.randn(n, graph.d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    y = norm.mean.double() + z @ torch.linalg.pinv(norm.transform.double())
    return y.clamp(*READING_RANGE).float()


def export_onnx(graph: InferenceGraph, path: Path, example: torch.Tensor) -> None:
    names = graph.output_names
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(graph, (example,), str(path), dynamo=False, opset_version=17, input_names=["readings"],
                          output_names=list(names), dynamic_axes={n: {0: "batch"} for n in ("readings", *names)})


def _gemms_as_matmuls(model: Any) -> None:
    """Gemm nodes with a constant B -> MatMul (+ Add of the bias): ONNX Runtime's dynamic quantisation covers MatMul
    only (the stem of D_theta, its feeds and P_A export as Gemm). Same arithmetic."""
    from onnx import helper, numpy_helper  # export-time only

    inits = {i.name: i for i in model.graph.initializer}
    nodes, replaced = [], set()
    for node in model.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if (node.op_type != "Gemm" or node.input[1] not in inits or attrs.get("transA", 0)
                or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0):
            nodes.append(node)
            continue
        weight = numpy_helper.to_array(inits[node.input[1]])
        name = node.input[1] + "_matmul"
        model.graph.initializer.append(numpy_helper.from_array(
            np.ascontiguousarray(weight.T if attrs.get("transB", 0) else weight), name))
        replaced.add(node.input[1])
        has_bias = len(node.input) > 2 and node.input[2]
        product = node.output[0] + "_product" if has_bias else node.output[0]
        nodes.append(helper.make_node("MatMul", [node.input[0], name], [product], name=node.name + "_matmul"))
        if has_bias:
            nodes.append(helper.make_node("Add", [product, node.input[2]], [node.output[0]], name=node.name + "_bias"))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    used = {i for n in model.graph.node for i in n.input}
    keep = [i for i in model.graph.initializer if not (i.name in replaced and i.name not in used)]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)


def quantise_int8(src: Path, dst: Path) -> None:
    """Dynamic int8 quantisation of the weight matmuls of D_theta (blocks, stem, feeds, mixer) and P_A: 2-D weights
    per output channel, the ``[levels, K, N]`` weights of the grouped linears per tensor (ONNX Runtime's
    DynamicQuantizeMatMul refuses per-channel zero points there). Not quantised: the normaliser, the linear
    read-out path (it carries most of the signal at small d) and G."""
    import onnx  # heavy, export-time only (the `deploy` extra)
    from onnxruntime.quantization import QuantType, quantize_dynamic  # export-time only

    model = onnx.load(str(src))
    _gemms_as_matmuls(model)
    consts = {i.name: len(i.dims) for i in model.graph.initializer}
    wanted = {n.name: max(consts[i] for i in n.input if i in consts) for n in model.graph.node
              if n.op_type == "MatMul" and any(i in consts for i in n.input)
              and n.name.startswith(("/readout/digital/", "/attributes/"))
              and not n.name.startswith("/readout/digital/linear/")}
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic logs a "pre-process first" hint at WARNING on the root logger
    try:
        with tempfile.TemporaryDirectory() as tmp:
            stage = Path(tmp) / "gemm-free.onnx"
            onnx.save(model, str(stage))
            for per_channel, rank in ((True, 2), (False, 3)):
                nodes = [n for n, r in wanted.items() if r == rank]
                out = Path(tmp) / f"rank{rank}.onnx"
                if nodes:
                    quantize_dynamic(str(stage), str(out), weight_type=QuantType.QInt8, per_channel=per_channel,
                                     nodes_to_quantize=nodes)
                    stage = out
            dst.write_bytes(stage.read_bytes())
    finally:
        root.setLevel(level)


def _write_onnx_metadata(path: Path, meta: dict[str, Any]) -> None:
    import onnx  # export-time only

    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key, entry.value = "lsi", json.dumps(meta)
    onnx.save(model, str(path))


def _compare(reference: InferenceGraph, runner: ExportedModel, readings: torch.Tensor,
             precision: str) -> dict[str, float]:
    """Largest differences of the exported file's outputs to the float32 PyTorch graph; refused beyond tolerance."""
    with torch.no_grad():
        ref = dict(zip(reference.output_names, (t.float().numpy() for t in reference(readings))))
    got = runner.run_raw(readings.numpy())
    diffs: dict[str, float] = {}
    for name, want in ref.items():
        have = got[name]
        if have.shape != want.shape:
            raise ExportError(f"exported output {name!r} has shape {have.shape}, PyTorch gives {want.shape}")
        if name == "segmentation":
            diffs["segmentation_agreement"] = float((have == want).mean())
        else:
            diffs[name] = float(np.abs(have.astype(np.float64) - want).max())
    tol = TOLERANCE[precision]
    bad = [f"{k}: {v:.3g} (allowed {'>=' if k == 'segmentation_agreement' else '<='} {tol[k]:g})"
           for k, v in diffs.items() if (v < tol[k] if k == "segmentation_agreement" else v > tol[k])]
    if bad:
        raise ExportError(f"the {precision} export does not reproduce the PyTorch model: {'; '.join(bad)}")
    return diffs


def _attribute_names(count: int) -> list[str]:
    return list(EMBEDDED_ATTRIBUTE_NAMES) if count == len(EMBEDDED_ATTRIBUTE_NAMES) else [
        f"attribute_{i}" for i in range(count)]


def export_model(ckpt: str | Path, out: str | Path, heads: str | Path | None = None, reconstruction: bool = True,
                 precision: str = "fp32") -> dict[str, Any]:
    """Export, verify and describe; returns the metadata written into the file (``verified`` holds the
    differences to PyTorch)."""
    out = Path(out)
    if out.suffix not in FORMATS:
        raise ExportError(f"--out {out}: use a .onnx (ONNX Runtime) or .pt2 (torch.export) file name")
    if precision not in FORMATS[out.suffix]:
        other = next(s for s, p in FORMATS.items() if precision in p) if precision in TOLERANCE else None
        raise ExportError(f"--precision {precision} is not available for {out.suffix} (choose {FORMATS[out.suffix]})"
                          + (f"; {precision} exports as {other}" if other else ""))
    lsi = load_lsi(str(ckpt))
    head_module = load_heads(heads, lsi_checkpoint=str(ckpt)) if heads else None
    reference = InferenceGraph.from_modules(lsi, head_module, reconstruction)  # fp32: what every export is held to
    graph = InferenceGraph.from_modules(lsi, head_module, reconstruction, bfloat16=True) if precision == "bf16" \
        else reference
    readings = verification_readings(reference)
    optical = lsi.optical
    codes = optical.mask_codes()
    meta: dict[str, Any] = {
        "format": "lsi-export", "version": 1, "precision": precision, "d": graph.d, "outputs": list(graph.output_names),
        "num_ws": graph.readout.num_ws, "w_dim": graph.readout.w_dim, "reconstruction": bool(reconstruction),
        "ratio": optical.ratio, "bits": optical.bits, "complementary": optical.complementary,
        "masks_sha256": sorted({masks_sha256(codes)} | ({masks_sha256(codes[:optical.d])}
                                                          if optical.complementary else set())),
        "reading_range": list(READING_RANGE), "encoder_fingerprint": lsi.encoder_fingerprint(),
        "checkpoint": str(ckpt), "heads": str(heads) if heads else None, "torch": torch.__version__,
    }
    if head_module is not None and head_module.attr is not None:
        meta["attribute_names"] = _attribute_names(head_module.attr.linear.out_features)
    if reconstruction:
        meta["img_resolution"] = int(lsi.world.generator.img_resolution)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".onnx":
        with tempfile.TemporaryDirectory() as tmp:
            fp32 = Path(tmp) / "fp32.onnx"
            export_onnx(graph, fp32, readings[:2])
            if precision == "int8":
                quantise_int8(fp32, out)
            else:
                out.write_bytes(fp32.read_bytes())
        meta["verified"] = _compare(reference, ExportedModel.open(out, check_metadata=False), readings, precision)
        _write_onnx_metadata(out, meta)
    else:
        batch = torch.export.Dim("batch", min=1, max=1 << 20)
        program = torch.export.export(graph, (readings[:2],), dynamic_shapes={"readings": {0: batch}})
        torch.export.save(program, str(out), extra_files={"lsi.json": json.dumps(meta)})
        meta["verified"] = _compare(reference, ExportedModel.open(out, check_metadata=False), readings, precision)
        torch.export.save(program, str(out), extra_files={"lsi.json": json.dumps(meta)})
    return meta


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lsi export", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", required=True, help="the trained lsi.ckpt (masks, normaliser, D_theta, w_avg)")
    p.add_argument("--out", required=True, help="model.onnx (ONNX Runtime) or model.pt2 (torch.export)")
    p.add_argument("--heads", help="a heads checkpoint trained on this lsi.ckpt (P_A; P_S/P_L need G)")
    p.add_argument("--no-reconstruction", action="store_true",
                   help="leave the generator out: latents and attributes only, no image can be made")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "int8"))
    args = p.parse_args(argv)
    for flag, path in (("--ckpt", args.ckpt), ("--heads", args.heads)):
        if path and not Path(path).is_file():
            print(f"lsi export: error: {flag} {path} does not exist", file=sys.stderr)
            return 2
    try:
        meta = export_model(args.ckpt, args.out, args.heads, not args.no_reconstruction, args.precision)
    except (ValueError, OSError, RuntimeError, KeyError) as err:
        print(f"lsi export: error: {err}", file=sys.stderr)
        return 2
    diffs = ", ".join(f"{k} {v:.2g}" for k, v in meta["verified"].items())
    print(f"wrote {args.out}: {args.precision}, d={meta['d']}, outputs {', '.join(meta['outputs'])}; "
          f"verified against PyTorch (max |diff|: {diffs})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
