"""A StyleGAN-family generator rebuilt by our code, seen through :class:`lsi.generator.protocol.Generator`.

``G.mapping(z, c=None, truncation_psi=1.0, truncation_cutoff=None)`` -> ws ``[B, num_ws, w_dim]``;
``G.synthesis(ws, noise_mode='const')`` -> image ``[B, img_channels, R, R]`` (roughly ``[-1, 1]``; ``const``
noise is the default and makes it deterministic); ``G.synthesis.named_children()`` yields the layers in the
original order (``b4 ... b<R>`` for StyleGAN2; ``input, L0_..., ...`` for StyleGAN3/XL) so that hooks set by
index see the same layers as on the official network; ``G.features(ws, names)`` -> ``{name: [B, C, H, W]}``
in fp32. The generator is frozen (``requires_grad=False``, eval mode); gradients still flow to ``ws``.
"""

from __future__ import annotations

import torch
from torch import nn

from lsi.generator import stylegan2, stylegan3, stylegan_xl
from lsi.generator.errors import GeneratorFileError

FAMILIES = {"stylegan2": stylegan2, "stylegan3": stylegan3, "stylegan_xl": stylegan_xl}
# Buffers the official code keeps for training only (StyleGAN-XL's filter interpolation); never read here.
_TRAINING_ONLY_BUFFERS = ("up_filter4", "up_filter16", "down_filter4", "down_filter16")


class StyleGANGenerator(nn.Module):
    """Our rebuild of an official StyleGAN2-ADA / StyleGAN3 / StyleGAN-XL ``G_ema``."""

    def __init__(self, spec: dict) -> None:
        super().__init__()
        if spec.get("kind") not in FAMILIES:
            raise GeneratorFileError(f"unknown generator kind {spec.get('kind')!r}; expected one of {sorted(FAMILIES)}")
        self.spec = spec
        self.kind = spec["kind"]
        self.mapping, self.synthesis = FAMILIES[self.kind].build(spec)
        self.z_dim, self.c_dim = self.mapping.z_dim, self.mapping.c_dim
        self.w_dim, self.num_ws = self.synthesis.w_dim, self.synthesis.num_ws
        self.img_resolution, self.img_channels = self.synthesis.img_resolution, self.synthesis.img_channels
        if self.mapping.num_ws != self.num_ws or self.mapping.w_dim != self.w_dim:
            raise GeneratorFileError(f"mapping outputs {self.mapping.num_ws} x {self.mapping.w_dim} but synthesis "
                                     f"reads {self.num_ws} x {self.w_dim}; the file is inconsistent")

    def load_tensors(self, tensors: dict[str, torch.Tensor], source: str) -> StyleGANGenerator:
        """Load the official ``state_dict`` tensors strictly (names and shapes must all match)."""
        tensors = {k: v for k, v in tensors.items() if k.rsplit(".", 1)[-1] not in _TRAINING_ONLY_BUFFERS}
        own = self.state_dict()
        missing = sorted(set(own) - set(tensors))
        extra = sorted(set(tensors) - set(own))
        bad = [f"{k}: file {tuple(tensors[k].shape)} vs {tuple(own[k].shape)}" for k in own
               if k in tensors and tensors[k].shape != own[k].shape]
        if missing or extra or bad:
            raise GeneratorFileError(f"{source}: tensors do not fit the {self.kind} layout described by the file "
                                     f"(missing {missing[:8]}, unexpected {extra[:8]}, wrong shape {bad[:8]})")
        self.load_state_dict(tensors, strict=True)
        self.requires_grad_(False)
        return self.eval()

    @property
    def w_avg(self) -> torch.Tensor:
        """``[w_dim]``; for class-conditional StyleGAN-XL (``w_avg [c_dim, w_dim]``) the mean over classes."""
        w_avg = self.mapping.w_avg
        return w_avg.mean(0) if w_avg.ndim == 2 else w_avg

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.synthesis.feature_names

    def features(self, ws: torch.Tensor, names, noise_mode: str = "const") -> dict[str, torch.Tensor]:
        return self.synthesis.features(ws, tuple(names), noise_mode=noise_mode)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                noise_mode: str = "const") -> torch.Tensor:
        return self.synthesis(self.mapping(z, c, truncation_psi=truncation_psi), noise_mode=noise_mode)
