"""One frozen generator world per process, shared by the encoder module and every downstream head.

The frozen networks are deliberately *not* registered as submodules of the LightningModules: checkpoints
then hold only what is trained (masks, D_theta, heads), and several modules reuse one copy in memory.

:func:`downscale_scene` is how a scene meets G's output: in G's range [-1, 1], area-averaged to G's resolution.
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F

from lsi.world.embedded import EmbeddedWorld, load_embedded_world


@lru_cache(maxsize=4)
def _load(generator: str, weights_dir: str | None) -> EmbeddedWorld:
    if generator != "embedded":
        raise ValueError(
            f"generator {generator!r} is not available: this release ships the 'embedded' generator; "
            "the StyleGAN-XL adapter is tracked separately")
    return load_embedded_world(weights_dir)


def frozen_world(generator: str = "embedded", weights_dir: str | None = None,
                 device: torch.device | str = "cpu") -> EmbeddedWorld:
    """The shared frozen world, moved (in place, once) to ``device``."""
    world = _load(generator, weights_dir)
    dev = torch.device(device)
    if world.generator.w_avg.device != dev:
        for net in (world.generator, world.encoder, world.identity):
            net.to(dev)
    return world


def downscale_scene(scene: torch.Tensor, resolution: int) -> torch.Tensor:
    """Scene ``[B,3,H,W]`` in [0,1] -> ``[B,3,R,R]`` in [-1,1] (area average): what G's images are compared with."""
    return F.interpolate(scene * 2 - 1, size=(resolution, resolution), mode="area")
