"""Feature extractors for the Fréchet distance (:class:`lsi.eval.metrics.FID`).

* Real world: the TF-ported InceptionV3 of torch-fidelity (pool3, 2048-d) loaded from a LOCAL file
  ``pt_inception-2015-12-05-6726825d.pth`` (torch-fidelity release asset; the same weights are also published
  as ``weights-inception-2015-12-05-6726825d.pth``); resizing without antialiasing gives the usual TF numbers.
* Embedded world: any callable / module mapping images to ``[B,F]`` features (e.g. the embedded identity
  network's penultimate features), wrapped by :class:`FeatureModule`.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from lsi.eval.face_recognition import FaceModelNotFoundError, FaceToolUnavailableError, WeightsFormatError

INCEPTION_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
INCEPTION_FILENAMES = (INCEPTION_FILENAME, "weights-inception-2015-12-05-6726825d.pth")
INCEPTION_URL = ("https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
                 "weights-inception-2015-12-05-6726825d.pth")
#: Name of the setting that points to the Inception weights (documented for config files).
FID_WEIGHTS_CONFIG_KEY = "fid_weights_path"
_REQUIRED_KEYS = {"Conv2d_1a_3x3.conv.weight": None, "Mixed_7c.branch_pool.conv.weight": None,
                  "fc.weight": (1008, 2048)}


def _search_dirs() -> list[Path]:
    return [Path(torch.hub.get_dir()) / "checkpoints"]


def resolve_inception_weights(path: str | Path | None = None) -> Path:
    """Locate and validate the Inception FID weights.

    ``path`` may be the file or a folder holding it; without ``path`` the torch hub cache
    (``$TORCH_HOME/hub/checkpoints``) is searched. Raises :class:`FaceModelNotFoundError` naming the file,
    its source and the config key when nothing is found.
    """
    candidates: list[Path] = []
    if path is not None:
        p = Path(path).expanduser()
        candidates += [p] if not p.is_dir() else [p / n for n in INCEPTION_FILENAMES]
    else:
        candidates += [d / n for d in _search_dirs() for n in INCEPTION_FILENAMES]
    for c in candidates:
        if c.is_file():
            validate_inception_weights(c)
            return c
    looked = ", ".join(str(c) for c in candidates)
    raise FaceModelNotFoundError(
        f"FID Inception weights {INCEPTION_FILENAME} not found (looked at: {looked}). Download it on a machine "
        f"with network access from the torch-fidelity release {INCEPTION_URL} (same weights; keep either name), "
        f"then set `{FID_WEIGHTS_CONFIG_KEY}` to its path (or put it in {_search_dirs()[0]}). "
        f"Nothing is downloaded at run time."
    )


def validate_inception_weights(path: str | Path) -> None:
    """Load with ``weights_only=True`` (plain tensors only) and check the torch-fidelity InceptionV3 keys."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as err:
        raise WeightsFormatError(
            f"{path} is not a plain tensor state dict loadable with weights_only=True: {err}") from err
    if not isinstance(state, dict):
        raise WeightsFormatError(f"{path} holds a {type(state).__name__}, expected an InceptionV3 state dict")
    for key, shape in _REQUIRED_KEYS.items():
        if key not in state or (shape is not None and tuple(state[key].shape) != shape):
            raise WeightsFormatError(
                f"{path} is not the torch-fidelity/pytorch-fid InceptionV3 ({INCEPTION_FILENAME}): key {key!r} "
                f"{'missing' if key not in state else f'has shape {tuple(state[key].shape)}'}"
            )


def to_uint8_images(images: torch.Tensor) -> torch.Tensor:
    """``[B,3,H,W]`` uint8 passes; floating images in [0,1] are rounded to uint8."""
    if images.dtype == torch.uint8:
        return images
    return (images.float() * 255.0).round().clamp(0, 255).to(torch.uint8)


class FeatureModule(nn.Module):
    """Wrap any callable ``images -> features`` as a frozen module returning ``[B,F]`` float features.

    ``num_features`` (if known) spares torchmetrics a dummy forward pass to discover the size. For the embedded
    world pass e.g. ``lambda x: identity_net.features(x * 2 - 1)`` (images in [0,1] -> penultimate features).
    """

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], num_features: int | None = None) -> None:
        super().__init__()
        self.fn = fn
        if isinstance(fn, nn.Module):
            fn.eval().requires_grad_(False)
        if num_features is not None:
            self.num_features = int(num_features)

    def train(self, mode: bool = True) -> FeatureModule:
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out = self.fn(images)
        return out.reshape(out.shape[0], -1).float()


class InceptionFeatures(nn.Module):
    """InceptionV3 pool3 features ``[B,2048]`` (TF-compatible, no antialias) from ``[B,3,H,W]`` uint8 or [0,1]."""

    num_features = 2048

    def __init__(self, weights_path: str | Path | None = None, antialias: bool = False) -> None:
        super().__init__()
        path = resolve_inception_weights(weights_path)
        try:
            from torchmetrics.image.fid import NoTrainInceptionV3
            net = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"],
                                     feature_extractor_weights_path=str(path), antialias=antialias)
        except ModuleNotFoundError as err:
            raise FaceToolUnavailableError(
                "Inception FID features need torch-fidelity: pip install torch-fidelity") from err
        self.net = net

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(to_uint8_images(images)).reshape(images.shape[0], -1).float()
