"""Pre-rendered pools of the embedded world for the pretraining recipe (images in [-1, 1], 64 px).

Rendering once and sampling batches from memory keeps the recipe's steps compute-bound on 2 cores.
"""

from __future__ import annotations

import torch
from tqdm import tqdm

from datamodules.faces.render import render_faces
from datamodules.faces.world import random_world_latent, sample_world_latent, to_gaussian


def _render_pool(u: torch.Tensor, size: int, desc: str, chunk: int = 256) -> torch.Tensor:
    """Render ``u [N,K]`` as uint8 images ``[N,3,size,size]`` (4x smaller than float)."""
    out = torch.empty(len(u), 3, size, size, dtype=torch.uint8)
    for lo in tqdm(range(0, len(u), chunk), desc=desc, leave=False):
        img = render_faces(u[lo:lo + chunk], size=size).image
        out[lo:lo + chunk] = (img * 255).round().to(torch.uint8)
    return out


def _to_float(img: torch.Tensor) -> torch.Tensor:
    return img.float() / 127.5 - 1.0


class PriorPool:
    """``n`` faces from the world prior: world latents ``z [n,K]`` and their renderings."""

    def __init__(self, n: int, size: int, seed: int) -> None:
        u = random_world_latent(n, torch.Generator().manual_seed(seed))
        self.z = to_gaussian(u)
        self.images = _render_pool(u, size, "render prior pool")

    def batch(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(0, len(self.z), (n,), generator=gen)
        return self.z[idx], _to_float(self.images[idx])


class IdentityPool:
    """``per_id`` images of each of ``num_identities`` training identities (identity seeds ``0..N-1``)."""

    def __init__(self, num_identities: int, per_id: int, size: int, seed: int) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.labels = torch.arange(num_identities).repeat_interleave(per_id)
        image_seeds = torch.randint(0, 2**31 - 1, (len(self.labels),), generator=gen)
        u = torch.stack([sample_world_latent(int(i), int(s)) for i, s in zip(self.labels, image_seeds)])
        self.images = _render_pool(u, size, "render identity pool")

    def batch(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(0, len(self.labels), (n,), generator=gen)
        img = _to_float(self.images[idx])
        # light augmentation: random horizontal shifts of up to 2 px keep the net from memorising pixels
        shift = int(torch.randint(-2, 3, (1,), generator=gen))
        return self.labels[idx], torch.roll(img, shifts=shift, dims=3)
