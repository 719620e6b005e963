"""The embedded pSp-style inversion encoder E: image -> W+ offset from ``w_avg``.

A small residual backbone gives a 3-level feature pyramid (32, 16, 8 px at the 64 px working
resolution); lateral 1x1 convs merge it top-down (upsample-add), and one ``map-to-style`` head per W+
level reads the coarse, mid or fine map, following the GradualStyle layout of pSp (written from scratch).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lsi.generator.embedded import EqualLinear


@dataclass
class EncoderConfig:
    num_ws: int = 10
    w_dim: int = 128
    width: int = 16           # channels of the stem; stages use 2x, 4x, 8x
    fpn_dim: int = 64         # channels of the merged pyramid maps read by the style heads
    work_resolution: int = 64  # inputs are area-resized to this size first
    coarse_end: int = 3       # W+ levels [0, coarse_end) read the 8 px map
    mid_end: int = 6          # [coarse_end, mid_end) read 16 px, the rest read 32 px

    def to_dict(self) -> dict:
        return asdict(self)


class ResBlock(nn.Module):
    """Pre-activation residual block, optional stride-2 downsampling. ``[B,Cin,H,W] -> [B,Cout,H/s,W/s]``."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(in_ch), nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False), nn.PReLU(out_ch),
            nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False), nn.BatchNorm2d(out_ch),
        )
        self.shortcut = (nn.Identity() if stride == 1 and in_ch == out_ch
                         else nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


class MapToStyle(nn.Module):
    """Stride-2 convs down to 1x1, then an equalised linear layer. ``[B,C,S,S] -> [B,w_dim]``."""

    def __init__(self, ch: int, w_dim: int, spatial: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(int(math.log2(spatial))):
            layers += [nn.Conv2d(ch, ch, 3, 2, 1), nn.LeakyReLU(0.2)]
        self.convs = nn.Sequential(*layers)
        self.linear = EqualLinear(ch, w_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.convs(x).flatten(1))


class InversionEncoder(nn.Module):
    """E: image ``[B,3,H,W]`` in [-1,1] (any H=W >= 64) -> W+ offset ``[B,num_ws,w_dim]`` from ``w_avg``."""

    def __init__(self, cfg: EncoderConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or EncoderConfig()
        c = cfg.width
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.PReLU(c))
        self.stage1 = nn.Sequential(ResBlock(c, 2 * c, 2), ResBlock(2 * c, 2 * c))      # 32 px
        self.stage2 = nn.Sequential(ResBlock(2 * c, 4 * c, 2), ResBlock(4 * c, 4 * c))  # 16 px
        self.stage3 = nn.Sequential(ResBlock(4 * c, 8 * c, 2), ResBlock(8 * c, 8 * c))  # 8 px
        top = cfg.fpn_dim
        self.lat8 = nn.Conv2d(8 * c, top, 1)
        self.lat16 = nn.Conv2d(4 * c, top, 1)
        self.lat32 = nn.Conv2d(2 * c, top, 1)
        s = cfg.work_resolution
        self.styles = nn.ModuleList()
        for i in range(cfg.num_ws):
            spatial = s // 8 if i < cfg.coarse_end else (s // 4 if i < cfg.mid_end else s // 2)
            self.styles.append(MapToStyle(top, cfg.w_dim, spatial))

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        if img.ndim != 4 or img.shape[1] != 3:
            raise ValueError(f"encoder expects images [B,3,H,W], got {tuple(img.shape)}")
        s = self.cfg.work_resolution
        if img.shape[-1] != s:
            img = F.interpolate(img, size=(s, s), mode="area")
        x = self.stem(img.contiguous(memory_format=torch.channels_last))
        c32 = self.stage1(x)
        c16 = self.stage2(c32)
        c8 = self.lat8(self.stage3(c16))
        p16 = F.interpolate(c8, size=c16.shape[-2:], mode="bilinear", align_corners=True) + self.lat16(c16)
        p32 = F.interpolate(p16, size=c32.shape[-2:], mode="bilinear", align_corners=True) + self.lat32(c32)
        out = []
        for i, head in enumerate(self.styles):
            src = c8 if i < self.cfg.coarse_end else (p16 if i < self.cfg.mid_end else p32)
            out.append(head(src))
        return torch.stack(out, dim=1)
