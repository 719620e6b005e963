"""Shipped weights of the embedded world: generator G, inversion encoder E and identity network.

Each component is one ``.pt`` file holding plain tensors and dicts (``{"config", "state_dict", "meta"}``),
stored in float16 to stay small and loaded with ``torch.load(weights_only=True)`` into float32 modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from lsi.generator.embedded import EmbeddedGenerator, EmbeddedGeneratorConfig
from lsi.identity import IdentityConfig, IdentityNet
from lsi.inversion import EncoderConfig, InversionEncoder

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"  # lsi/weights/: package data, not a module
FILES = {"generator": "embedded_generator.pt", "encoder": "embedded_encoder.pt", "identity": "embedded_identity.pt"}


class MissingWeightsError(FileNotFoundError):
    """A weights file the embedded world needs is absent."""


def weights_path(component: str, weights_dir: str | Path | None = None) -> Path:
    if component not in FILES:
        raise ValueError(f"unknown component {component!r}; expected one of {sorted(FILES)}")
    return Path(weights_dir or WEIGHTS_DIR) / FILES[component]


def save_component(module: nn.Module, config: dict, path: str | Path, meta: dict | None = None) -> Path:
    """Write ``{"config", "state_dict" (fp16 floats), "meta"}`` atomically to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: (v.detach().half() if v.is_floating_point() else v.detach()).cpu().clone()
             for k, v in module.state_dict().items()}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"config": config, "state_dict": state, "meta": meta or {}}, tmp)
    tmp.replace(path)
    return path


def _load(component: str, path: str | Path | None) -> dict:
    p = Path(path) if path else weights_path(component)
    if not p.is_file():
        raise MissingWeightsError(
            f"embedded {component} weights not found at {p}. They ship with the package; if you removed them, "
            f"recreate them with `make pretrain-embedded` (CPU, under 45 min).")
    blob = torch.load(p, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or not {"config", "state_dict"} <= set(blob):
        raise ValueError(f"{p} is not an embedded-world weights file (expected keys 'config' and 'state_dict')")
    return blob


def _restore(module: nn.Module, blob: dict, path_hint: str) -> nn.Module:
    state = {k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()}
    try:
        module.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"weights {path_hint} do not match the architecture in their config: {err}") from err
    return module


def load_generator(path: str | Path | None = None) -> EmbeddedGenerator:
    blob = _load("generator", path)
    gen = EmbeddedGenerator(EmbeddedGeneratorConfig.from_dict(blob["config"]))
    return _restore(gen, blob, str(path or weights_path("generator")))


def load_encoder(path: str | Path | None = None) -> InversionEncoder:
    blob = _load("encoder", path)
    return _restore(InversionEncoder(EncoderConfig(**blob["config"])), blob, str(path or weights_path("encoder")))


def load_identity(path: str | Path | None = None) -> IdentityNet:
    blob = _load("identity", path)
    return _restore(IdentityNet(IdentityConfig(**blob["config"])), blob, str(path or weights_path("identity")))


def load_meta(component: str, path: str | Path | None = None) -> dict:
    return dict(_load(component, path).get("meta", {}))


def update_meta(component: str, weights_dir: str | Path | None = None, **values) -> None:
    """Add ``values`` to a shipped weights file's ``meta`` (e.g. the identity net's calibrated threshold)."""
    path = weights_path(component, weights_dir)
    blob = _load(component, path)
    blob["meta"] = {**blob.get("meta", {}), **values}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(blob, tmp)
    tmp.replace(path)


def freeze(module: nn.Module) -> nn.Module:
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


@dataclass
class EmbeddedWorld:
    """The frozen trio every LSI module of the embedded default shares."""

    generator: EmbeddedGenerator
    encoder: InversionEncoder
    identity: IdentityNet


def load_embedded_world(weights_dir: str | Path | None = None) -> EmbeddedWorld:
    d = Path(weights_dir) if weights_dir else None
    return EmbeddedWorld(
        generator=freeze(load_generator(weights_path("generator", d))),
        encoder=freeze(load_encoder(weights_path("encoder", d))),
        identity=freeze(load_identity(weights_path("identity", d))),
    )
