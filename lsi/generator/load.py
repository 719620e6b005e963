"""``load_generator(path)``: an official network pickle or our converted file -> our StyleGAN-family generator.

Accepted files:

* ``.pkl`` - an NVIDIA network pickle of StyleGAN2-ADA, StyleGAN3 (T/R) or StyleGAN-XL; its ``G_ema`` is read
  as data by :mod:`lsi.generator.nvidia_pickle` (no code from the file runs) and rebuilt by our own
  implementation of that family.
* ``.safetensors`` (or its ``.json`` spec) - written by :func:`lsi.generator.convert.convert_generator`.

``trust_pickle=True`` is the one path that runs the pickle's own code: it unpickles with the official
``torch_utils.persistence`` from a checkout of the official repository that *you* put on ``PYTHONPATH``
(:mod:`lsi.generator.trusted`). Use it only for files you trust, e.g. a variant our code does not cover.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from lsi.generator import stylegan2, stylegan3, stylegan_xl
from lsi.generator.converted import read_converted
from lsi.generator.errors import GeneratorFileError
from lsi.generator.loaded import StyleGANGenerator
from lsi.generator.nvidia_pickle import g_ema_record, read_network_pickle
from lsi.generator.pickle_records import ModuleRecord


def spec_from_g_ema(g: ModuleRecord) -> dict:
    """Pick the family of a ``G_ema`` record from its layout and read its spec."""
    children = g.child("synthesis").children()
    if "b4" in children:
        return stylegan2.spec_from_record(g)
    if "input" in children:
        return stylegan_xl.spec_from_record(g) if stylegan_xl.is_xl(g) else stylegan3.spec_from_record(g)
    raise GeneratorFileError(f"G_ema ({g.class_name}) has a synthesis network with children {sorted(children)}: "
                             "neither StyleGAN2 (b4, b8, ...) nor StyleGAN3/XL (input, L0_..., ...)")


def read_pickle_generator(path: str | Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """``(spec, tensors)`` of the ``G_ema`` in a network pickle, read without running its code."""
    g = g_ema_record(read_network_pickle(path), path)
    spec = spec_from_g_ema(g)
    return spec, g.tensors()


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_generator(path: str | Path, device: str | torch.device = "cpu", trust_pickle: bool = False):
    """A frozen generator implementing :class:`lsi.generator.protocol.Generator` plus ``mapping(z, c, psi)``."""
    path = Path(path)
    if not path.exists():
        raise GeneratorFileError(f"generator file {path} does not exist; give a StyleGAN2-ADA/StyleGAN3/"
                                 "StyleGAN-XL network pickle (.pkl) or a converted .safetensors file")
    suffix = path.suffix.lower()
    if suffix in (".safetensors", ".json"):
        spec, tensors = read_converted(path)
    elif suffix in (".pkl", ".pickle"):
        if trust_pickle:
            from lsi.generator.trusted import load_official  # noqa: PLC0415 - the opt-in path only

            return load_official(path, device)
        spec, tensors = read_pickle_generator(path)
    else:
        raise GeneratorFileError(f"{path}: unknown generator file type {suffix!r}; expected .pkl (NVIDIA network "
                                 "pickle) or .safetensors (written by `python -m lsi.generator.convert`)")
    return StyleGANGenerator(spec).load_tensors(tensors, str(path)).to(device)
