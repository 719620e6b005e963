"""Our converted generator format: ``<name>.safetensors`` (the tensors) + ``<name>.json`` (the spec) side by side.

The safetensors file holds the official ``G_ema.state_dict()`` tensors under their original names
(``mapping.fc0.weight``, ``synthesis.L3_36_1024.affine.bias``, ``synthesis.b8.conv0.noise_const``, ...),
contiguous fp32/fp16 exactly as pickled. The JSON file holds::

    {"format": "lsi-stylegan-generator", "format_version": 1,
     "source": {"file": "<pickle name>", "sha256": "<hex>"},
     "spec": {"kind": "stylegan2" | "stylegan3" | "stylegan_xl", "mapping": {...}, "synthesis": {...}}}

where ``spec`` carries every per-layer attribute needed to rebuild the network (see the family modules).
Reading it needs no pickle at all: safetensors is a plain header + raw buffers.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from lsi.generator.errors import GeneratorFileError

FORMAT = "lsi-stylegan-generator"
FORMAT_VERSION = 1


def config_path(tensors_path: str | Path) -> Path:
    """``out.safetensors`` -> ``out.json``."""
    return Path(tensors_path).with_suffix(".json")


def write_converted(out_path: str | Path, spec: dict, tensors: dict[str, torch.Tensor], source: dict) -> Path:
    out_path = Path(out_path)
    if out_path.suffix != ".safetensors":
        raise GeneratorFileError(f"output {out_path} must end in .safetensors (the JSON spec is written beside it)")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}, str(out_path),
              metadata={"format": FORMAT, "format_version": str(FORMAT_VERSION)})
    doc = {"format": FORMAT, "format_version": FORMAT_VERSION, "source": source, "spec": spec}
    config_path(out_path).write_text(json.dumps(doc, indent=1) + "\n")
    return out_path


def read_converted(path: str | Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """``(spec, tensors)`` of a converted generator given its ``.safetensors`` or ``.json`` path."""
    path = Path(path)
    tensors_path = path.with_suffix(".safetensors")
    cfg_path = config_path(tensors_path)
    for p, what in ((tensors_path, "tensors"), (cfg_path, "JSON spec")):
        if not p.is_file():
            raise GeneratorFileError(f"converted generator {what} {p} does not exist; write both files with "
                                     "`python -m lsi.generator.convert in.pkl out.safetensors`")
    try:
        doc = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as err:
        raise GeneratorFileError(f"{cfg_path} is not valid JSON ({err}); re-run the conversion") from err
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("spec"), dict):
        raise GeneratorFileError(f"{cfg_path} is not a {FORMAT} spec (field 'format' must be {FORMAT!r} and "
                                 "'spec' an object); re-run the conversion")
    if doc.get("format_version") != FORMAT_VERSION:
        raise GeneratorFileError(f"{cfg_path}: format_version {doc.get('format_version')!r} is not supported "
                                 f"(this code reads {FORMAT_VERSION}); re-run the conversion")
    try:
        tensors = load_file(str(tensors_path), device="cpu")
    except (SafetensorError, OSError) as err:
        raise GeneratorFileError(f"{tensors_path} is not a readable safetensors file ({err})") from err
    return doc["spec"], tensors
