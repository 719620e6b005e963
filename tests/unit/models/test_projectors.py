"""P_S reads G's layers in layer order (StyleGAN-XL's resolutions are not monotone); default layer choices."""

from __future__ import annotations

import pytest
import torch

from lsi.models.projectors import (
    PAPER_LANDMARK_LAYER,
    PAPER_SEG_LAYERS,
    SegmentationProjector,
    default_landmark_layer,
    default_seg_layers,
)
from lsi.world.frozen import frozen_world

#: the tiny StyleGAN-XL fixture's layers (tests/unit/generator/stylegan_fixtures.py): 36 -> 84 -> 64 px
TINY_XL = ("L0_36_64", "L1_36_64", "L2_36_64", "L3_36_45", "L5_36_45", "L6_84_19", "L7_84_8", "L8_64_8", "L9_64_3")


def test_paper_layers_are_accepted_although_276_px_comes_before_256_px():
    proj = SegmentationProjector(PAPER_SEG_LAYERS)
    assert proj.layers == PAPER_SEG_LAYERS
    names = (*PAPER_SEG_LAYERS, "L17_256_3", "L0_36_1024")
    assert default_seg_layers(names) == PAPER_SEG_LAYERS and default_landmark_layer(names) == PAPER_LANDMARK_LAYER


def test_layers_out_of_layer_order_are_refused():
    with pytest.raises(ValueError, match="layer order"):
        SegmentationProjector(("L9_52_1024", "L3_36_1024"))
    with pytest.raises(ValueError, match="layer order"):
        SegmentationProjector(("L3_36_1024", "L3_36_1024"))


def test_embedded_defaults_are_unchanged():
    names = frozen_world().generator.feature_names
    assert default_seg_layers(names) == ("L2_8_192", "L3_16_128", "L4_16_128", "L6_32_48", "L7_64_24", "L8_64_24")
    assert default_landmark_layer(names) == "L2_8_192"


def test_non_monotone_maps_merge_in_layer_order():
    layers = default_seg_layers(TINY_XL)
    assert layers == ("L0_36_64", "L1_36_64", "L3_36_45", "L5_36_45", "L7_84_8", "L8_64_8")  # no ToRGB (3 ch)
    proj = SegmentationProjector(layers, num_classes=5).eval()
    feats = {}
    for name in layers:
        _, res, ch = (int(v) for v in name[1:].split("_"))
        feats[name] = torch.randn(2, ch, res, res)
    assert proj(feats).shape == (2, 5, 64, 64)  # the last map's size (64 px after the 84 px one)
