"""IR-SE-50: the residual backbone with squeeze-excitation under pSp's GradualStyleEncoder and IR-SE50 ArcFace.

Written from the published layout (the key names are those of pSp checkpoints' ``encoder.*`` entries and of
``model_ir_se50.pth``); ``width`` is 64 in both real networks, the tests use smaller widths with the same keys::

    input_layer.0   Conv2d(3, w, 3, stride 1, pad 1, bias=False)
    input_layer.1   BatchNorm2d(w)
    input_layer.2   PReLU(w)
    body.0 .. body.23   IR-SE units, stages of 3 / 4 / 14 / 3 units with depths w, 2w, 4w, 8w
        shortcut_layer   MaxPool2d(1, stride) when the depth stays (no keys), else
                         {0: Conv2d(in, d, 1, stride, bias=False), 1: BatchNorm2d(d)}
        res_layer        {0: BatchNorm2d(in), 1: Conv2d(in, d, 3, 1, 1, bias=False), 2: PReLU(d),
                          3: Conv2d(d, d, 3, stride, 1, bias=False), 4: BatchNorm2d(d),
                          5: SE {fc1: Conv2d(d, d/16, 1, bias=False), fc2: Conv2d(d/16, d, 1, bias=False)}}
        output = res_layer(x) + shortcut_layer(x)

The first unit of every stage has stride 2 (applied by ``res_layer.3`` and the shortcut). Shapes for an input
``[B,3,H,W]``: input_layer ``[B,w,H,W]``; after stage k (units 2, 6, 20, 23) ``[B, 2^k w, H/2^(k+1), W/2^(k+1)]``;
e.g. H = 256 gives 128, 64, 32, 16 px and H = 112 gives 56, 28, 14, 7 px.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["STAGE_END_UNITS", "STAGE_UNITS", "IRSEUnit", "SqueezeExcite", "make_body", "make_input_layer",
           "width_of"]

#: units per stage of IR-SE-50 (body.0-23)
STAGE_UNITS: tuple[int, ...] = (3, 4, 14, 3)
#: index of the last unit of each stage: pSp taps the outputs of units 6, 20 and 23
STAGE_END_UNITS: tuple[int, ...] = (2, 6, 20, 23)
SE_REDUCTION = 16


class SqueezeExcite(nn.Module):
    """Channel gate: global average -> 1x1 conv (d -> d/16) -> ReLU -> 1x1 conv (d/16 -> d) -> sigmoid, times x."""

    def __init__(self, channels: int, reduction: int = SE_REDUCTION) -> None:
        super().__init__()
        if channels < reduction:
            raise ValueError(f"squeeze-excitation needs at least {reduction} channels, got {channels}")
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, bias=False)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = x.mean(dim=(2, 3), keepdim=True)  # [B, d, 1, 1]
        gate = torch.sigmoid(self.fc2(torch.relu(self.fc1(gate))))
        return x * gate


class IRSEUnit(nn.Module):
    """One improved-residual unit with SE: ``[B,in,H,W] -> [B,depth,H/stride,W/stride]``."""

    def __init__(self, in_ch: int, depth: int, stride: int) -> None:
        super().__init__()
        if in_ch == depth:
            self.shortcut_layer: nn.Module = nn.MaxPool2d(1, stride)  # a strided pick; no weights
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(in_ch, depth, 1, stride, bias=False), nn.BatchNorm2d(depth))
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(in_ch),
            nn.Conv2d(in_ch, depth, 3, 1, 1, bias=False),
            nn.PReLU(depth),
            nn.Conv2d(depth, depth, 3, stride, 1, bias=False),
            nn.BatchNorm2d(depth),
            SqueezeExcite(depth),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


def make_input_layer(width: int = 64) -> nn.Sequential:
    """``input_layer``: ``[B,3,H,W] -> [B,width,H,W]``."""
    return nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.PReLU(width))


def make_body(width: int = 64) -> nn.Sequential:
    """``body``: the 24 IR-SE units, ``[B,width,H,W] -> [B,8 width,H/16,W/16]``."""
    units: list[nn.Module] = []
    in_ch = width
    for stage, count in enumerate(STAGE_UNITS):
        depth = width * 2 ** stage
        for k in range(count):
            units.append(IRSEUnit(in_ch, depth, 2 if k == 0 else 1))
            in_ch = depth
    return nn.Sequential(*units)


def width_of(state: dict[str, torch.Tensor]) -> int:
    """The backbone width of a state dict (the output channels of ``input_layer.0``); 64 for the real networks."""
    weight = state.get("input_layer.0.weight")
    if weight is None or weight.ndim != 4:
        raise KeyError("input_layer.0.weight")
    return int(weight.shape[0])
