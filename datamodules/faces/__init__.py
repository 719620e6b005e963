"""Procedural face world: a world latent ``u`` decodes to a 2D face scene with exact ground truth."""

from .render import RenderOutput, render_faces
from .world import (
                    ATTRIBUTE_NAMES,
                    IDENTITY_INDEX,
                    NUISANCE_INDEX,
                    SEG_CLASSES,
                    WORLD_DIM,
                    decode_world,
                    from_gaussian,
                    random_world_latent,
                    sample_world_latent,
                    to_gaussian,
)

__all__ = [
    "ATTRIBUTE_NAMES", "IDENTITY_INDEX", "NUISANCE_INDEX", "SEG_CLASSES", "WORLD_DIM", "RenderOutput",
    "decode_world", "from_gaussian", "random_world_latent", "render_faces", "sample_world_latent", "to_gaussian",
]
