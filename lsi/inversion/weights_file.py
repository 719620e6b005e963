"""Reading foreign PyTorch weight files safely, with errors that say what the file is and where to get it.

One home for the rules every real-path loader (pSp encoder, IR-SE50 ArcFace, DINO, LPIPS backbone) follows:

* :func:`read_torch_file` - ``torch.load(path, map_location='cpu', weights_only=True)``: nothing in the file can
  run code. Both torch formats are read: the zip format (torch >= 1.6) and the *legacy* non-zip format
  (``_use_new_zipfile_serialization=False``, e.g. ``model_ir_se50.pth`` from 2018); torch 2.14's weights-only
  unpickler reads the legacy format itself (it allows ``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2``
  and the ``torch.<Type>Storage`` classes the legacy format references), so no reader of our own is needed.
  Tensors saved on CUDA (``cuda:0`` locations) land on the CPU.
* :func:`load_state_strict` - ``module.load_state_dict(state, strict=True)`` after a key/shape comparison whose
  error lists the missing, unexpected and mis-shaped keys. BatchNorm ``num_batches_tracked`` counters, which
  files written before torch 0.4.1 lack, are filled in (they are not weights).

Errors: :class:`WeightsFileError` (a ``ValueError``) for a file that exists but is not what it should be;
:class:`MissingWeightsFileError` (also a ``FileNotFoundError``) for a file that is not there.
"""

from __future__ import annotations

import pickle
import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

__all__ = ["MissingWeightsFileError", "WeightsFileError", "load_state_strict", "read_torch_file", "tensor_state"]


class WeightsFileError(ValueError):
    """A weights file is unreadable, unsafe, or does not match the network it is meant for (the message names it)."""


class MissingWeightsFileError(WeightsFileError, FileNotFoundError):
    """A weights file does not exist (the message says what it is and where to get it)."""


def read_torch_file(path: str | Path, what: str, source: str) -> object:
    """``torch.load(path, weights_only=True)`` on the CPU; ``what``: the file's role, ``source``: where to get it."""
    path = Path(path)
    if not path.is_file():
        raise MissingWeightsFileError(f"{what} not found: {path} does not exist. Get it from {source} and put it "
                                      "there (or point the config at it).")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # weights_only refused a global: the file carries code or custom classes
        raise WeightsFileError(f"{what} {path} cannot be read safely: {err}. Only plain state dicts of tensors "
                               "are accepted: re-save the weights as a state dict (torch.save(model.state_dict(), "
                               f"path)) or get the original file from {source}.") from err
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError, KeyError, IndexError, TypeError,
            AttributeError, struct.error) as err:  # what garbage bytes make the (legacy) unpickler raise
        raise WeightsFileError(f"{what} {path} is not a readable torch file ({err}); it is truncated or of "
                               f"another format: download it again from {source}.") from err


def tensor_state(obj: object, path: str | Path, what: str, source: str) -> dict[str, torch.Tensor]:
    """``obj`` checked to be a mapping of names to tensors (a state dict)."""
    if not isinstance(obj, Mapping) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                               for k, v in obj.items()):
        kind = type(obj).__name__
        raise WeightsFileError(f"{what} {path} holds a {kind}, not a state dict of tensors; get the right file "
                               f"from {source}")
    return dict(obj)


def _fill_batch_counters(module: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = dict(state)
    for name, buf in module.named_buffers():
        if name.endswith("num_batches_tracked") and name not in out:
            out[name] = torch.zeros((), dtype=buf.dtype)
    return out


def load_state_strict(module: nn.Module, state: Mapping[str, torch.Tensor], path: str | Path, what: str,
                      source: str, assign: bool = False) -> nn.Module:
    """Load ``state`` into ``module`` strictly; a mismatch raises :class:`WeightsFileError` listing the keys.

    ``assign=True`` takes the file's tensors over (cast to the module's float dtype) instead of copying into the
    module's: for a module built on the ``meta`` device, which skips the random initialisation of its weights
    (measured: 2 s of the 6.6 s it took to load the 1 GiB pSp encoder by copying).
    """
    state = _fill_batch_counters(module, dict(state))
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k}: file {tuple(state[k].shape)} vs network {tuple(v.shape)}" for k, v in own.items()
              if k in state and state[k].shape != v.shape]
    if missing or unexpected or shapes:
        def head(items: list[str]) -> str:
            return ", ".join(items[:6]) + (f" ... ({len(items)} in all)" if len(items) > 6 else "")

        parts = [f"missing keys: {head(missing)}" if missing else "",
                 f"unexpected keys: {head(unexpected)}" if unexpected else "",
                 f"shape mismatches: {head(shapes)}" if shapes else ""]
        raise WeightsFileError(f"{what} {path} does not match the network: " + "; ".join(p for p in parts if p)
                               + f". Is it the right file? Get it from {source}.")
    if assign:
        state = {k: v.to(own[k].dtype) if v.is_floating_point() else v for k, v in state.items()}
    module.load_state_dict(state, strict=True, assign=assign)
    return module
