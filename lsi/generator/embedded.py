"""The embedded generator: a tiny StyleGAN2-family network with 64x64 output.

Architecture (facts of the StyleGAN2 family, written from scratch):
mapping MLP z -> w; learned constant 4x4 input; per resolution two modulated/demodulated 3x3 convs and a
modulated 1x1 ToRGB (skip architecture). W+ has ``num_ws = 2 * log2(R) - 2`` levels (10 at 64x64).
Every conv output is exposed as a feature map named ``L<i>_<res>_<channels>``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

_LRELU_GAIN = math.sqrt(2.0)


@dataclass
class EmbeddedGeneratorConfig:
    z_dim: int = 40
    w_dim: int = 128
    mapping_layers: int = 4
    img_resolution: int = 64
    channels: dict[int, int] = field(default_factory=lambda: {4: 256, 8: 192, 16: 128, 32: 48, 64: 24})

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = {str(k): v for k, v in self.channels.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> EmbeddedGeneratorConfig:
        d = dict(d)
        d["channels"] = {int(k): int(v) for k, v in d["channels"].items()}
        return cls(**d)


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate (weights scaled at run time)."""

    def __init__(self, in_dim: int, out_dim: int, bias_init: float = 0.0, lr_mul: float = 1.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class MappingNetwork(nn.Module):
    """z ``[B, z_dim]`` -> w ``[B, w_dim]``."""

    # lr_mul 1: this G is trained by regression, where StyleGAN's adversarial-stability 0.01 slows it ~10x
    def __init__(self, z_dim: int, w_dim: int, num_layers: int, lr_mul: float = 1.0) -> None:
        super().__init__()
        dims = [z_dim] + [w_dim] * num_layers
        self.layers = nn.ModuleList(EqualLinear(a, b, lr_mul=lr_mul) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = z * torch.rsqrt(z.square().mean(dim=1, keepdim=True) + 1e-8)  # 2nd-moment normalisation
        for layer in self.layers:
            x = F.leaky_relu(layer(x), 0.2) * _LRELU_GAIN
        return x


class ModulatedConv(nn.Module):
    """Style-modulated conv with optional demodulation.

    Computed as ``demod * conv(x * style)``, which equals the per-sample weight modulation of StyleGAN2 but
    runs as one ordinary conv (fast on CPU). ``x [B, Cin, H, W]``, ``w [B, w_dim]`` -> ``[B, Cout, H', W']``.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, w_dim: int, demodulate: bool = True,
                 upsample: bool = False, activate: bool = True) -> None:
        super().__init__()
        self.affine = EqualLinear(w_dim, in_ch, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.scale = 1.0 / math.sqrt(in_ch * kernel * kernel)
        self.demodulate, self.upsample, self.activate = demodulate, upsample, activate
        self.padding = kernel // 2

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        style = self.affine(w)  # [B, Cin]
        weight = self.weight * self.scale
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        out = F.conv2d(x * style[:, :, None, None], weight, padding=self.padding)
        if self.demodulate:
            # d_o = rsqrt(sum_{i,k} (w_oik * s_i)^2) = rsqrt(sum_i s_i^2 * sum_k w_oik^2)
            wsq = weight.square().sum(dim=(2, 3))  # [Cout, Cin]
            demod = torch.rsqrt(style.square() @ wsq.t() + 1e-8)  # [B, Cout]
            out = out * demod[:, :, None, None]
        out = out + self.bias[None, :, None, None]
        if self.activate:
            out = F.leaky_relu(out, 0.2) * _LRELU_GAIN
        return out


class SynthesisNetwork(nn.Module):
    """W+ ``[B, num_ws, w_dim]`` -> RGB ``[B, 3, R, R]`` plus named feature maps."""

    def __init__(self, cfg: EmbeddedGeneratorConfig) -> None:
        super().__init__()
        res_log2 = int(math.log2(cfg.img_resolution))
        if 2**res_log2 != cfg.img_resolution or res_log2 < 3:
            raise ValueError(f"img_resolution must be a power of two >= 8, got {cfg.img_resolution}")
        self.resolutions = [2**i for i in range(2, res_log2 + 1)]
        ch = cfg.channels
        self.const = nn.Parameter(torch.randn(1, ch[4], 4, 4))
        self.convs = nn.ModuleList()
        self.torgbs = nn.ModuleList()
        self.layer_specs: list[tuple[int, int, int]] = []  # (w index, resolution, channels) per conv
        self.convs.append(ModulatedConv(ch[4], ch[4], 3, cfg.w_dim))
        self.layer_specs.append((0, 4, ch[4]))
        self.torgbs.append(ModulatedConv(ch[4], 3, 1, cfg.w_dim, demodulate=False, activate=False))
        w_idx = 1
        for res in self.resolutions[1:]:
            prev = ch[res // 2]
            self.convs.append(ModulatedConv(prev, ch[res], 3, cfg.w_dim, upsample=True))
            self.layer_specs.append((w_idx, res, ch[res]))
            self.convs.append(ModulatedConv(ch[res], ch[res], 3, cfg.w_dim))
            self.layer_specs.append((w_idx + 1, res, ch[res]))
            self.torgbs.append(ModulatedConv(ch[res], 3, 1, cfg.w_dim, demodulate=False, activate=False))
            w_idx += 2
        self.num_ws = w_idx + 1  # the last ToRGB reads one more level
        self.feature_names = tuple(f"L{i}_{r}_{c}" for i, (_, r, c) in enumerate(self.layer_specs))

    def forward(self, ws: torch.Tensor, names: tuple[str, ...] | list[str] = (),
                need_image: bool = True) -> tuple[torch.Tensor | None, dict]:
        if ws.ndim != 3 or ws.shape[1] != self.num_ws:
            raise ValueError(f"ws must be [B, {self.num_ws}, w_dim], got {tuple(ws.shape)}")
        wanted = set(names)
        unknown = wanted - set(self.feature_names)
        if unknown:
            raise ValueError(f"unknown feature names {sorted(unknown)}; available: {self.feature_names}")
        feats: dict[str, torch.Tensor] = {}
        # NHWC: ~1.5x faster convs on CPU
        x = self.const.expand(ws.shape[0], -1, -1, -1).contiguous(memory_format=torch.channels_last)
        rgb = None
        conv_iter = iter(enumerate(zip(self.convs, self.layer_specs)))
        for level, torgb in enumerate(self.torgbs):
            n_convs = 1 if level == 0 else 2
            for _ in range(n_convs):
                i, (conv, (w_i, _, _)) = next(conv_iter)
                x = conv(x, ws[:, w_i])
                if self.feature_names[i] in wanted:
                    feats[self.feature_names[i]] = x
            if not need_image and len(feats) == len(wanted):
                break  # every requested feature map is computed; skip the finer layers
            w_rgb = ws[:, 1 + 2 * level]  # ToRGB shares the index of the next block's first conv
            y = torgb(x, w_rgb)
            rgb = y if rgb is None else F.interpolate(rgb, scale_factor=2, mode="bilinear", align_corners=False) + y
        return rgb, feats


class EmbeddedGenerator(nn.Module):
    """Tiny StyleGAN2-family generator implementing :class:`lsi.generator.protocol.Generator`."""

    def __init__(self, cfg: EmbeddedGeneratorConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or EmbeddedGeneratorConfig()
        self.mapping = MappingNetwork(self.cfg.z_dim, self.cfg.w_dim, self.cfg.mapping_layers)
        self.synthesis_net = SynthesisNetwork(self.cfg)
        self.register_buffer("w_avg_buf", torch.zeros(self.cfg.w_dim))
        self.num_ws = self.synthesis_net.num_ws
        self.w_dim = self.cfg.w_dim
        self.img_resolution = self.cfg.img_resolution
        self.z_dim = self.cfg.z_dim

    @property
    def w_avg(self) -> torch.Tensor:
        return self.w_avg_buf

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.synthesis_net.feature_names

    def map(self, z: torch.Tensor, truncation: float = 1.0) -> torch.Tensor:
        """z ``[B, z_dim]`` -> W+ ``[B, num_ws, w_dim]`` (the same w at every level)."""
        w = self.mapping(z)
        if truncation != 1.0:
            w = self.w_avg + truncation * (w - self.w_avg)
        return w[:, None, :].expand(-1, self.num_ws, -1)

    @torch.no_grad()
    def update_w_avg(self, n: int = 4096, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.z_dim, generator=g)
        self.w_avg_buf.copy_(self.mapping(z).mean(0))

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor:
        return self.synthesis_net(ws)[0]

    def features(self, ws: torch.Tensor, names: list[str] | tuple[str, ...]) -> dict[str, torch.Tensor]:
        return self.synthesis_net(ws, tuple(names), need_image=False)[1]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.synthesis(self.map(z))
