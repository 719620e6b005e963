"""Checkpoints written before the models moved into ``lsi/models/`` still load.

LightningCLI records a model's class in the checkpoint as ``hyper_parameters["_class_path"]``, and
``load_from_checkpoint`` refuses a class path that no longer imports. :func:`loadable_checkpoint` rewrites the
old module paths (:data:`MOVED_MODULES`) to the new ones; everything else passes through untouched.
"""

from __future__ import annotations

import io
from pathlib import Path

import torch

__all__ = ["MOVED_MODULES", "loadable_checkpoint"]

#: Module paths of LightningModules before the restructure -> where they live now.
MOVED_MODULES = {"lsi.module": "lsi.models.imaging", "lsi.heads": "lsi.models.heads"}


def loadable_checkpoint(path: str | Path) -> str | Path | io.BytesIO:
    """``path`` itself, or (for a checkpoint naming a moved class) an in-memory copy naming the class's new home.

    Read with ``weights_only=True``, like every checkpoint.
    """
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    hparams = ckpt.get("hyper_parameters") if isinstance(ckpt, dict) else None
    class_path = hparams.get("_class_path") if isinstance(hparams, dict) else None
    if not isinstance(class_path, str):
        return path
    module, _, name = class_path.rpartition(".")
    if module not in MOVED_MODULES:
        return path
    hparams["_class_path"] = f"{MOVED_MODULES[module]}.{name}"
    buffer = io.BytesIO()
    torch.save(ckpt, buffer)
    buffer.seek(0)
    return buffer
