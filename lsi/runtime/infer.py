"""``lsi infer``: readings in, latents and semantics out, from an exported model (``lsi export``), no Lightning.

::

    lsi infer --model model.onnx --readings readings.npy --out out.npz      # a [N, d] (or [d]) .npy
    lsi infer --model model.onnx --store runs/capture512 --out out.npz      # a capture store (lsi-capture)
    echo "0.51 0.49 ..." | lsi infer --model model.onnx --jsonl              # stdin: one scene per line
    lsi infer --model model.onnx --readings r.npy --out out.npz --images recon/   # + PNG reconstructions

Readings are in normalised units (white scene through an all-on mask = 1); a capture store is corrected with its
references first (``--correction``, as ``MeasuredDataModule`` does) and must come from the model's masks.
Output: ``.npz`` with ``ws [N, num_ws, w_dim]`` and, as the model has them, ``attributes [N, A]`` (probabilities),
``landmarks [N, 68, 2]``, ``segmentation [N, h, w]``, plus ``scene_ids`` for a store; or ``--jsonl``: one JSON
object per scene (to ``--out`` or stdout). ``--images DIR`` writes ``scene-<i>.png`` (needs a model exported with
the generator). Exit status 0 on success, 2 on a bad input (one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from hardware.calibration import CORRECTION_MODES, corrected_record
from hardware.store import CaptureStore, StoreError
from lsi.runtime.model import ExportedModel, ModelFileError, ReadingsError

__all__ = ["main", "read_readings"]


def _from_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise ReadingsError(f"--readings {path} does not exist")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise ReadingsError(f"--readings {path} is not a readable .npy array of numbers ({err}); save readings "
                            "with numpy.save(path, array) as a float [N, d] array") from err


def _from_store(root: Path, model: ExportedModel, correction: str) -> tuple[np.ndarray, list[int]]:
    try:
        store = CaptureStore.open(root)
    except (StoreError, OSError, ValueError) as err:
        raise ReadingsError(f"--store {root}: {err}") from err
    man = store.manifest
    if man.masks.sha256 not in model.meta.get("masks_sha256", []):
        raise ReadingsError(f"--store {root} was captured with masks sha256 {man.masks.sha256[:12]}... but the "
                            f"model was trained with other masks; export the lsi.ckpt whose masks.npy made this "
                            "capture, or capture again with this model's masks")
    combine = "stacked" if model.meta.get("complementary") else "positive"
    records = store.records()
    if not records:
        raise ReadingsError(f"--store {root} holds no scene records")
    saturated = [r.scene_id for r in records if r.saturated_fraction > 0]
    if saturated:
        raise ReadingsError(f"--store {root}: scene(s) {saturated[:5]} have saturated readings (the detector hit its "
                            "full scale); lower the detector gain or the scene brightness and capture them again")
    refs = [ref for rec in records for ref in rec.references] if correction != "none" else []
    try:
        rows = [corrected_record(r.readings, r.readings_inv, r.timestamps.get("acquire_start", 0.0), refs,
                                 correction, combine) for r in records]
    except ValueError as err:
        raise ReadingsError(f"--store {root}: {err}") from err
    return np.stack(rows), [r.scene_id for r in records]


def _from_lines(lines: list[str]) -> np.ndarray:
    rows = []
    for i, line in enumerate(lines, 1):
        text = line.replace(",", " ").split()
        if not text:
            continue
        try:
            rows.append([float(v) for v in text])
        except ValueError as err:
            raise ReadingsError(f"stdin line {i}: {err}; give one scene per line, numbers separated by spaces or "
                                "commas") from err
    if not rows:
        raise ReadingsError("no readings on stdin: give one scene per line, numbers separated by spaces or commas")
    if len({len(r) for r in rows}) != 1:
        raise ReadingsError(f"stdin: lines hold different numbers of readings ({sorted({len(r) for r in rows})})")
    return np.asarray(rows)


def read_readings(args: argparse.Namespace, model: ExportedModel) -> tuple[np.ndarray, list[int] | None]:
    """The readings the arguments name, checked against the model: ``([N, d] float32, scene ids or None)``."""
    if args.readings and args.store:
        raise ReadingsError("give either --readings or --store, not both")
    if args.store:
        y, ids = _from_store(Path(args.store), model, args.correction)
        return model.check_readings(y, f"--store {args.store}"), ids
    if args.readings and args.readings != "-":
        return model.check_readings(_from_npy(Path(args.readings)), f"--readings {args.readings}"), None
    return model.check_readings(_from_lines(sys.stdin.read().splitlines()), "stdin"), None


def _write_images(images: np.ndarray, folder: Path, ids: list[int]) -> None:
    from PIL import Image  # only with --images

    folder.mkdir(parents=True, exist_ok=True)
    pixels = (np.clip(images, 0, 1) * 255 + 0.5).astype(np.uint8).transpose(0, 2, 3, 1)  # [N, R, R, 3]
    for i, img in zip(ids, pixels):
        Image.fromarray(img).save(folder / f"scene-{i:07d}.png")


def _jsonl(out: dict[str, np.ndarray], ids: list[int], meta: dict[str, Any]) -> list[str]:
    names = meta.get("attribute_names")
    lines = []
    for row, sid in enumerate(ids):
        obj: dict[str, Any] = {"scene": sid, "ws": out["ws"][row].round(6).tolist()}
        if "attributes" in out:
            probs = out["attributes"][row].round(5).tolist()
            obj["attributes"] = dict(zip(names, probs)) if names else probs
        if "landmarks" in out:
            obj["landmarks"] = out["landmarks"][row].round(5).tolist()
        lines.append(json.dumps(obj))
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lsi infer", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="model.onnx or model.pt2 written by `lsi export`")
    p.add_argument("--readings", help="a .npy of [N, d] (or [d]) readings; '-' or nothing: stdin lines")
    p.add_argument("--store", help="a capture store directory (lsi-capture --out)")
    p.add_argument("--correction", default="drift", choices=CORRECTION_MODES,
                   help="reference correction of a capture store (default drift, as MeasuredDataModule)")
    p.add_argument("--out", help="out.npz, or with --jsonl a .jsonl file (default: stdout)")
    p.add_argument("--jsonl", action="store_true", help="JSON lines (one scene per line) instead of .npz")
    p.add_argument("--images", help="folder for PNG reconstructions (needs a model exported with the generator)")
    p.add_argument("--batch", type=int, default=256, help="scenes per model call")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads (default: all cores)")
    args = p.parse_args(argv)
    try:
        if not args.jsonl and not args.out:
            raise ReadingsError("give --out out.npz (or --jsonl to write JSON lines to stdout)")
        if args.out and not args.jsonl and not args.out.endswith(".npz"):
            raise ReadingsError(f"--out {args.out}: an .npz file name (or add --jsonl for JSON lines)")
        if args.batch < 1:
            raise ReadingsError(f"--batch must be >= 1, got {args.batch}")
        model = ExportedModel.open(args.model, threads=args.threads)
        if args.images and "image" not in model.outputs:
            raise ReadingsError(f"--images needs a model exported with the generator; {args.model} was exported "
                                "with --no-reconstruction (latents and attributes only)")
        readings, ids = read_readings(args, model)
        out = model.run(readings, batch=args.batch)
    except (ReadingsError, ModelFileError) as err:
        print(f"lsi infer: error: {err}", file=sys.stderr)
        return 2
    ids = ids if ids is not None else list(range(len(readings)))
    if args.images:
        _write_images(out["image"], Path(args.images), ids)
    results = {k: v for k, v in out.items() if k != "image"}
    if args.jsonl:
        text = "\n".join(_jsonl(results, ids, model.meta)) + "\n"
        if args.out and args.out != "-":
            Path(args.out).write_text(text)
        else:
            sys.stdout.write(text)
    else:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        np.savez(args.out, scene_ids=np.asarray(ids), **results)
        shapes = ", ".join(f"{k} {list(v.shape)}" for k, v in results.items())
        print(f"wrote {args.out}: {len(ids)} scene(s), {shapes}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    sys.exit(main())
