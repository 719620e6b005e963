"""The inference graph: one plain network from readings to everything the camera reports, ready to export.

::

    readings y [N, d]  (normalised units: white scene through an all-on mask = 1)
      -> reading normaliser (fixed statistics)  -> D_theta -> + w_avg          ws         [N, num_ws, w_dim]
      -> P_A                                                                    attributes [N, A]  (probabilities)
      -> with the generator G: P_S on G's feature maps                          segmentation [N, h, w] (class ids)
                               P_L on a feature map and ws                      landmarks  [N, 68, 2] in [0, 1]
                               G(ws)                                            image      [N, 3, R, R] in [0, 1]

Outputs come as a tuple in the order of :attr:`InferenceGraph.output_names`. Without the generator
(``reconstruction=False``: the privacy-preserving camera) the graph holds no G weights and cannot produce an image;
P_S and P_L then cannot be exported either (they read G's feature maps).

Folding (equal outputs up to float rounding): ``w_avg`` is added to the bias of D_theta's linear path when it
has one, so the graph's last op on ``ws`` is one Linear instead of a Linear and an add.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn

from lsi.models.digital_encoder import DigitalEncoder
from lsi.models.reading_normaliser import ReadingNormaliser

__all__ = ["InferenceGraph", "LatentReadout"]


class LatentReadout(nn.Module):
    """``readings [N, d] -> ws [N, num_ws, w_dim]``: normaliser, D_theta and ``w_avg`` (folded when possible)."""

    def __init__(self, normaliser: ReadingNormaliser, digital: DigitalEncoder, w_avg: Tensor,
                 fold: bool = True) -> None:
        super().__init__()
        self.normaliser = copy.deepcopy(normaliser).eval()
        self.digital = copy.deepcopy(digital).eval()
        self.num_ws, self.w_dim = digital.num_ws, digital.w_dim
        self.compute_dtype = torch.float32
        folded = fold and self.digital.linear is not None
        if folded:
            with torch.no_grad():
                self.digital.linear.bias.add_(w_avg.expand(self.num_ws, -1).reshape(-1))
        self.register_buffer("w_avg", torch.zeros_like(w_avg) if folded else w_avg.detach().clone())
        self.folded = folded

    def use_bfloat16(self) -> None:
        """D_theta's style blocks in bfloat16. The normaliser, the linear read-out path and ``w_avg`` stay float32:
        readings are tiny differences on a large common mean, and the linear path carries most of the latent at
        small d (in bfloat16 it moved W+ by up to 0.43 on the embedded ratio-512 run; kept in float32, 0.14)."""
        if self.folded:
            raise ValueError("bfloat16 needs an unfolded readout (fold=False): w_avg would lose its precision")
        linear = self.digital.linear
        self.digital.to(torch.bfloat16)
        if linear is not None:
            linear.float()
        self.compute_dtype = torch.bfloat16

    def forward(self, readings: Tensor) -> Tensor:
        z = self.normaliser(readings.float())
        if self.compute_dtype == torch.float32:
            ws = self.digital(z)
        else:
            ws = self.digital.nonlinear(z.to(self.compute_dtype)).float()
            if self.digital.linear is not None:
                ws = ws + self.digital.linear(z).view(-1, self.num_ws, self.w_dim)
        return ws if self.folded else ws + self.w_avg


class InferenceGraph(nn.Module):
    """The exported network (see the module docstring). Build it with :meth:`from_modules`."""

    def __init__(self, readout: LatentReadout, attributes: nn.Module | None = None,
                 segmentation: nn.Module | None = None, landmarks: nn.Module | None = None,
                 generator: nn.Module | None = None, image: bool = False) -> None:
        super().__init__()
        if (segmentation is not None or landmarks is not None or image) and generator is None:
            raise ValueError("segmentation, landmarks and images read the generator G: export it (drop "
                             "--no-reconstruction) or leave those heads out")
        self.readout = readout
        self.attributes, self.segmentation, self.landmarks = attributes, segmentation, landmarks
        self.generator, self.image = generator, bool(image)
        names = [] if segmentation is None else list(segmentation.layers)
        if landmarks is not None and landmarks.layer not in names:
            names.append(landmarks.layer)
        self.feature_layers = tuple(names)

    @classmethod
    def from_modules(cls, lsi: Any, heads: Any = None, reconstruction: bool = True,
                     bfloat16: bool = False) -> InferenceGraph:
        """From a trained ``LatentImagingModule`` (and optionally an ``AllHeads``): P_A whenever the heads have one,
        P_S / P_L and the image only with ``reconstruction`` (they need G). ``bfloat16``: D_theta in bfloat16
        (see :meth:`LatentReadout.use_bfloat16`); heads and G stay float32."""
        readout = LatentReadout(lsi.reading_norm, lsi.digital, lsi.w_avg, fold=not bfloat16)
        if bfloat16:
            readout.use_bfloat16()
        attr = seg = lmk = None
        if heads is not None:
            attr = copy.deepcopy(heads.attr).eval() if heads.attr is not None else None
            seg = copy.deepcopy(heads.seg).eval() if heads.seg is not None else None
            lmk = copy.deepcopy(heads.lmk).eval() if heads.lmk is not None else None
            if not reconstruction and (seg is not None or lmk is not None):
                raise ValueError("--no-reconstruction exports no generator, but P_S and P_L read G's feature maps: "
                                 "train/export an attributes-only head (heads: [attributes]) or keep the generator")
        generator = lsi.world.generator if reconstruction else None
        return cls(readout, attr, seg, lmk, generator, image=reconstruction).eval()

    @property
    def output_names(self) -> tuple[str, ...]:
        names = ["ws"]
        if self.attributes is not None:
            names.append("attributes")
        if self.segmentation is not None:
            names.append("segmentation")
        if self.landmarks is not None:
            names.append("landmarks")
        if self.image:
            names.append("image")
        return tuple(names)

    @property
    def d(self) -> int:
        return self.readout.normaliser.d

    def forward(self, readings: Tensor) -> tuple[Tensor, ...]:
        ws = self.readout(readings)  # [N, num_ws, w_dim]
        out = [ws]
        if self.attributes is not None:
            out.append(torch.sigmoid(self.attributes(ws)))
        feats = self.generator.features(ws, self.feature_layers) if self.feature_layers else {}
        if self.segmentation is not None:
            out.append(self.segmentation(feats).argmax(dim=1))  # [N, h, w] class ids
        if self.landmarks is not None:
            out.append(self.landmarks(feats[self.landmarks.layer], ws))
        if self.image:
            out.append(self.generator.synthesis(ws).clamp(-1, 1) * 0.5 + 0.5)  # [N, 3, R, R] in [0, 1]
        return tuple(out)
