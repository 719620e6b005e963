"""Downstream projectors P: plain networks that read the LSI latent L (and G's feature maps under it).

- :class:`AttributeProjector` (P_A): one linear layer ``[B, num_ws*w_dim] -> [B, A]``.
- :class:`SegmentationProjector` (P_S): six of G's feature maps under L merged coarse -> fine (bilinear upsample,
  3x3 conv to the next level's width, sum), a final 3x3 conv to the classes.
- :class:`LandmarkProjector` (P_L): one coarse feature map modulated by a linear projection of L, a conv to 68
  channels, bilinear resize to 8x8, then a per-point linear 64 -> 2; coordinates in [0, 1].

Feature maps are named ``L<i>_<res>_<channels>`` (:func:`lsi.generator.protocol.parse_feature_name`);
:func:`default_seg_layers` / :func:`default_landmark_layer` pick them for any generator. The LightningModules that
train these are in :mod:`lsi.models.heads`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lsi.generator.protocol import parse_feature_name

__all__ = ["AttributeProjector", "LandmarkProjector", "SegmentationProjector", "default_landmark_layer",
           "default_seg_layers", "PAPER_LANDMARK_LAYER", "PAPER_SEG_LAYERS"]

#: StyleGAN-XL layer of the paper's P_L.
PAPER_LANDMARK_LAYER = "L3_36_1024"


def default_seg_layers(feature_names: tuple[str, ...]) -> tuple[str, ...]:
    """Six maps coarse -> fine (in layer order) for P_S when none are configured.

    The paper's StyleGAN-XL layers (:data:`PAPER_SEG_LAYERS`) when the generator has them all; otherwise, ToRGB
    outputs (3 channels) left out: the last conv at the 2nd-coarsest resolution, both convs of the 3rd, the last of
    the 4th and both of the finest, returned by layer index (with fewer than five resolutions: six layers spread
    evenly over the layer order). For the embedded generator (64 px): 8, 16, 16, 32, 64, 64 px."""
    if all(n in feature_names for n in PAPER_SEG_LAYERS):
        return PAPER_SEG_LAYERS
    by_res: dict[int, list[str]] = {}
    for n in sorted(feature_names, key=lambda n: parse_feature_name(n)[0]):
        _, res, ch = parse_feature_name(n)
        if ch != 3:
            by_res.setdefault(res, []).append(n)
    res = sorted(by_res)
    if len(res) < 5:  # few resolutions (tiny generators): six maps spread evenly over the layer order
        layers = sorted((n for group in by_res.values() for n in group), key=lambda n: parse_feature_name(n)[0])
        if not layers:
            raise ValueError(f"cannot pick segmentation layers from {feature_names}; set seg_layers explicitly")
        picks = {layers[round(i * (len(layers) - 1) / 5)] for i in range(6)}
        return tuple(sorted(picks, key=lambda n: parse_feature_name(n)[0]))
    picks = {by_res[res[1]][-1], *by_res[res[2]][-2:], by_res[res[-2]][-1], *by_res[res[-1]][-2:]}
    return tuple(sorted(picks, key=lambda n: parse_feature_name(n)[0]))


def default_landmark_layer(feature_names: tuple[str, ...]) -> str:
    """The coarse map P_L reads when none is configured: the paper's ``L3_36_1024`` when the generator has it,
    else the first of :func:`default_seg_layers` (the last conv at the 2nd-coarsest resolution)."""
    if PAPER_LANDMARK_LAYER in feature_names:
        return PAPER_LANDMARK_LAYER
    return default_seg_layers(feature_names)[0]


#: StyleGAN-XL layers of the paper's P_S, coarse -> fine in layer order (hooks [4, 9, 11, 13, 15, 16] of
#: ``G.synthesis``); their resolutions are not monotone: L15 is 276 px (margin), L16 256 px.
PAPER_SEG_LAYERS = ("L3_36_1024", "L9_52_1024", "L11_84_1024", "L13_148_919", "L15_276_256", "L16_256_256")


class AttributeProjector(nn.Module):
    """P_A: ``[B, num_ws, w_dim] -> [B, A]`` logits.

    No standardisation here, unlike P_S / P_L: near-constant latent dimensions would be blown up to unit
    variance (measured: 74% instead of 79% accuracy at 1:512 after 300 steps).
    """

    def __init__(self, num_ws: int, w_dim: int, num_attributes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(num_ws * w_dim, num_attributes)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.linear(latent.flatten(1))


class SegmentationProjector(nn.Module):
    """P_S: feature maps in layer order (coarse -> fine) -> class logits at the last map's resolution.

    The order is that of the layer indices, not of the resolutions: StyleGAN-XL's margin layers make them
    non-monotone (the paper's L15_276_256 comes before L16_256_256); each merge resizes to the next map's size.

    Each map is first standardised per channel (non-learned batch norm; an affine map at test time): G's
    activations are small (std ~0.1 in the embedded G), which otherwise leaves the linear decoder far from the
    weight scale it needs after a short training.
    """

    def __init__(self, layers: tuple[str, ...], num_classes: int = 19) -> None:
        super().__init__()
        specs = [parse_feature_name(n) for n in layers]
        indices = [s[0] for s in specs]
        if not layers or any(b <= a for a, b in zip(indices, indices[1:])):
            raise ValueError(f"segmentation layers must go coarse -> fine in layer order (strictly increasing "
                             f"L<index>), got {layers}")
        self.layers = tuple(layers)
        self.norms = nn.ModuleList(nn.BatchNorm2d(s[2], affine=False) for s in specs)
        self.merges = nn.ModuleList(nn.Conv2d(a[2], b[2], 3, padding=1) for a, b in zip(specs[:-1], specs[1:]))
        self.classifier = nn.Conv2d(specs[-1][2], num_classes, 3, padding=1)

    def forward(self, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        x = self.norms[0](feats[self.layers[0]])
        for name, norm, merge in zip(self.layers[1:], self.norms[1:], self.merges):
            nxt = norm(feats[name])
            x = merge(F.interpolate(x, size=nxt.shape[-2:], mode="bilinear", align_corners=False)) + nxt
        return self.classifier(x)


class LandmarkProjector(nn.Module):
    """P_L: coarse map ``[B,C,h,w]`` modulated by ``Linear(L)``, conv to 68, resize to 8x8, per-point 64 -> 2.

    The map is standardised per channel first (non-learned batch norm, as in :class:`SegmentationProjector`).
    """

    def __init__(self, layer: str, num_ws: int, w_dim: int, num_points: int = 68) -> None:
        super().__init__()
        _, _, ch = parse_feature_name(layer)
        self.layer = layer
        self.norm = nn.BatchNorm2d(ch, affine=False)
        self.modulation = nn.Linear(num_ws * w_dim, ch)
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)
        self.conv = nn.Conv2d(ch, num_points, 3, padding=1)
        self.point_weight = nn.Parameter(torch.randn(num_points, 64, 2) * 0.01)
        self.point_bias = nn.Parameter(torch.full((num_points, 2), 0.5))

    def forward(self, feat: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        x = self.norm(feat) * (1 + self.modulation(latent.flatten(1)))[:, :, None, None]
        x = F.interpolate(self.conv(x), size=(8, 8), mode="bilinear", align_corners=False).flatten(2)  # [B,68,64]
        return torch.einsum("bpk,pkc->bpc", x, self.point_weight) + self.point_bias
