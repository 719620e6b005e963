"""The embedded identity network: an ArcFace-style face embedder trained on the embedded world's identities.

``IdentityNet``: image ``[B,3,H,W]`` in [-1,1] -> L2-normalised embedding ``[B,emb_dim]``.
``ArcMarginHead``: additive angular margin classifier used only while training.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lsi.inversion.embedded import ResBlock


@dataclass
class IdentityConfig:
    emb_dim: int = 128
    width: int = 16
    work_resolution: int = 64

    def to_dict(self) -> dict:
        return asdict(self)


class IdentityNet(nn.Module):
    """Small residual CNN face embedder (unit-norm output)."""

    def __init__(self, cfg: IdentityConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or IdentityConfig()
        c = cfg.width
        self.body = nn.Sequential(
            nn.Conv2d(3, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.PReLU(c),
            ResBlock(c, 2 * c, 2), ResBlock(2 * c, 2 * c),          # 32 px
            ResBlock(2 * c, 4 * c, 2), ResBlock(4 * c, 4 * c),      # 16 px
            ResBlock(4 * c, 8 * c, 2), ResBlock(8 * c, 8 * c),      # 8 px
        )
        spatial = cfg.work_resolution // 8
        self.head = nn.Sequential(
            nn.BatchNorm2d(8 * c), nn.Dropout(0.1), nn.Flatten(),
            nn.Linear(8 * c * spatial * spatial, cfg.emb_dim), nn.BatchNorm1d(cfg.emb_dim),
        )

    def features(self, img: torch.Tensor) -> torch.Tensor:
        """Un-normalised embedding ``[B, emb_dim]`` (also the FID feature of the embedded world)."""
        s = self.cfg.work_resolution
        if img.shape[-1] != s:
            img = F.interpolate(img, size=(s, s), mode="area")
        return self.head(self.body(img.contiguous(memory_format=torch.channels_last)))

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.features(img), dim=1)


class ArcMarginHead(nn.Module):
    """ArcFace logits ``s * cos(theta + m)`` for the true class, ``s * cos(theta)`` for the others."""

    def __init__(self, emb_dim: int, num_classes: int, scale: float = 30.0, margin: float = 0.3) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(num_classes, emb_dim) * 0.01)
        self.scale, self.margin = scale, margin

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cos = F.linear(emb, F.normalize(self.weight, dim=1)).clamp(-1 + 1e-7, 1 - 1e-7)
        theta = torch.acos(cos)
        target = torch.cos(theta + self.margin)
        # keep the margin monotonic when theta + m passes pi
        target = torch.where(theta + self.margin < math.pi, target, cos - self.margin * math.sin(self.margin))
        one_hot = F.one_hot(labels, cos.shape[1]).bool()
        return self.scale * torch.where(one_hot, target, cos)

