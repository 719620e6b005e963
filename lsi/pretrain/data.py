"""Batches of the embedded world for the pretraining recipe (images in [-1, 1])."""

from __future__ import annotations

import torch

from datamodules.faces.render import render_faces
from datamodules.faces.world import random_world_latent, sample_world_latent, to_gaussian


def prior_batch(n: int, size: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random faces from the world prior: ``(z [n,K], image [n,3,size,size] in [-1,1])``."""
    u = random_world_latent(n, gen)
    img = render_faces(u, size=size).image
    return to_gaussian(u), img * 2 - 1


def identity_batch(n: int, num_identities: int, size: int, gen: torch.Generator,
                   seed_offset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Faces of random training identities with random nuisance: ``(labels [n], image [n,3,size,size])``."""
    labels = torch.randint(0, num_identities, (n,), generator=gen)
    image_seeds = torch.randint(0, 2**31 - 1, (n,), generator=gen)
    u = torch.stack([sample_world_latent(int(seed_offset + i), int(s)) for i, s in zip(labels, image_seeds)])
    return labels, render_faces(u, size=size).image * 2 - 1
