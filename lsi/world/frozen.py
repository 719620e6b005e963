"""One frozen world per process, shared by the encoder module and every downstream head.

:func:`frozen_world` returns the :class:`FrozenWorld` of a :class:`lsi.world.spec.WorldSpec` (the embedded one by
default), built once per process and spec and moved in place to the device asked for. Under DDP every rank is
its own process and so holds its own frozen copy on its own device; nothing here is a parameter of a module, so DDP
never synchronises it.

The frozen networks are deliberately *not* registered as submodules of the LightningModules: checkpoints
then hold only what is trained (masks, D_theta, heads), and several modules reuse one copy in memory.

Contracts of a world (shapes; images in [-1, 1]):

* ``world.generator``: :class:`lsi.generator.protocol.Generator` (``synthesis(ws [B,num_ws,w_dim]) -> [B,3,R,R]``);
* ``world.invert(img [B,3,S,S]) -> [B,num_ws,w_dim]``: E(I) as the **absolute** W+ (the embedded E returns offsets
  from ``w_avg``, which are added here; a pSp checkpoint adds its own ``latent_avg``, a flat encoder state dict gets
  ``G.w_avg`` - the LSI convention);
* ``world.identity(img [B,3,S,S]) -> [B,E]`` unit embeddings (embedded net, or IR-SE50 ArcFace with pSp's crop);
* ``world.dino_loss`` (:class:`lsi.world.perceptual.DinoFeatureLoss` or None) and ``world.lpips_backbone``.

:func:`downscale_scene` is how a scene meets G's output: in G's range [-1, 1], area-averaged to G's resolution.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lsi.generator import load_generator
from lsi.identity import load_arcface
from lsi.inversion import load_psp_encoder
from lsi.world.embedded import freeze, load_encoder, load_identity, load_meta, weights_path
from lsi.world.embedded import load_generator as load_embedded_generator
from lsi.world.perceptual import DinoFeatureLoss
from lsi.world.spec import WorldSpec

__all__ = ["FrozenWorld", "WorldSpec", "build_world", "downscale_scene", "frozen_world"]


@dataclass(eq=False)
class FrozenWorld:
    """The frozen networks of one :class:`WorldSpec` (module docstring)."""

    spec: WorldSpec
    generator: Any
    encoder: nn.Module
    identity: nn.Module
    dino_loss: DinoFeatureLoss | None = None
    _device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def encoder_offsets(self) -> bool:
        """True when ``encoder`` returns offsets from ``w_avg`` (the embedded E), False for the absolute W+."""
        return self.spec.resolved_encoder_kind == "embedded"

    def invert(self, img: torch.Tensor) -> torch.Tensor:
        """E(I): ``img [B,3,S,S]`` in [-1,1] -> absolute W+ ``[B, num_ws, w_dim]``."""
        ws = self.encoder(img)
        return ws + self.generator.w_avg if self.encoder_offsets else ws

    @property
    def identity_threshold(self) -> float | None:
        """The cosine-distance threshold of an identity match: configured, or the embedded net's shipped 1%-FAR
        one; None (ArcFace without a configured value) = calibrate on the evaluated originals (spec docstring)."""
        if self.spec.identity_threshold is not None:
            return float(self.spec.identity_threshold)
        if self.spec.resolved_identity_kind != "embedded":
            return None
        path = weights_path("identity", self.spec.weights_dir)
        meta = load_meta("identity", path)
        if "far1_threshold" not in meta:
            raise ValueError(f"identity weights {path} carry no 'far1_threshold'; set model.init_args.id_threshold "
                             "or run `make eval-embedded` to calibrate it")
        return float(meta["far1_threshold"])

    @property
    def lpips_backbone(self) -> str | None:
        return self.spec.lpips_backbone

    def to(self, device: torch.device | str) -> FrozenWorld:
        dev = torch.device(device)
        if dev != self._device:
            for net in (self.generator, self.encoder, self.identity, self.dino_loss):
                if net is not None:
                    net.to(dev)
            self._device = dev
        return self


def _generator(spec: WorldSpec) -> Any:
    if spec.resolved_generator_kind == "embedded":
        return freeze(load_embedded_generator(weights_path("generator", spec.weights_dir)))
    return load_generator(spec.generator)  # frozen, eval, fp32 on CPU


def _encoder(spec: WorldSpec, generator: Any) -> nn.Module:
    if spec.resolved_encoder_kind == "embedded":
        return freeze(load_encoder(weights_path("encoder", spec.weights_dir)))
    # a checkpoint's own latent_avg when it has one (pSp training checkpoints); a flat state dict gets G.w_avg
    encoder = load_psp_encoder(spec.encoder, fallback_latent_avg=generator.w_avg.detach().cpu())
    if encoder.num_ws != generator.num_ws or encoder.w_dim != generator.w_dim:
        raise ValueError(f"world.encoder {spec.encoder} writes W+ [{encoder.num_ws}, {encoder.w_dim}] but "
                         f"world.generator {spec.generator} reads [{generator.num_ws}, {generator.w_dim}]: use the "
                         "encoder trained for this generator")
    return freeze(encoder)


def _identity(spec: WorldSpec) -> nn.Module:
    if spec.resolved_identity_kind == "embedded":
        return freeze(load_identity(weights_path("identity", spec.weights_dir)))
    return load_arcface(spec.identity)


def build_world(spec: WorldSpec) -> FrozenWorld:
    """Load every network of ``spec`` (on the CPU); missing files fail first, all listed in one error."""
    spec.check_files()
    generator = _generator(spec)
    world = FrozenWorld(spec, generator, _encoder(spec, generator), _identity(spec))
    if spec.dino:
        world.dino_loss = DinoFeatureLoss(spec.dino)
    return world


@lru_cache(maxsize=4)
def _shared(spec: WorldSpec) -> FrozenWorld:
    return build_world(spec)


def frozen_world(spec: WorldSpec | dict | str | None = None, weights_dir: str | Path | None = None,
                 device: torch.device | str = "cpu") -> FrozenWorld:
    """The shared frozen world of ``spec`` (default: embedded), moved (in place, once) to ``device``.

    ``spec`` may also be a ``world`` dict or, as before, a generator name (``"embedded"``) with ``weights_dir``.
    """
    if not isinstance(spec, WorldSpec):
        if isinstance(spec, dict):
            spec = WorldSpec.from_config(spec, weights_dir=None if weights_dir is None else str(weights_dir))
        else:
            spec = WorldSpec.from_config(None, spec or "embedded", None if weights_dir is None else str(weights_dir))
    return _shared(spec).to(device)


def downscale_scene(scene: torch.Tensor, resolution: int) -> torch.Tensor:
    """Scene ``[B,3,H,W]`` in [0,1] -> ``[B,3,R,R]`` in [-1,1] (area average): what G's images are compared with."""
    return F.interpolate(scene * 2 - 1, size=(resolution, resolution), mode="area")
