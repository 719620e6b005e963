"""Perceptual losses that never download anything.

- ``lpips``: the ``lpips`` package's linear heads (shipped inside the package) on an AlexNet/VGG backbone
  whose torchvision weights the user provides as a local file (``alexnet-owt-7be5be79.pth`` or
  ``vgg16-397923af.pth``), loaded with ``weights_only=True``.
- ``identity-features``: the documented offline variant for the embedded world: normalised activations of
  the embedded identity network's residual stages, compared like LPIPS (unit-normalised channels, squared
  difference, spatial mean, summed over stages) with uniform channel weights.

Both map ``(a, b)`` images ``[B,3,H,W]`` in [-1,1] to a distance ``[B]``.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from lsi.world.frozen import frozen_world

BACKBONE_FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}


class LpipsLocal(nn.Module):
    def __init__(self, backbone_path: str | Path, net: str = "alex") -> None:
        super().__init__()
        import lpips  # builds torchvision's model zoo on import: only when the lpips loss is chosen

        path = Path(backbone_path)
        if not path.is_file():
            raise FileNotFoundError(
                f"LPIPS backbone weights not found at {path}. Put torchvision's {BACKBONE_FILES[net]} there "
                "(it is the ImageNet checkpoint torchvision downloads for models.{alexnet|vgg16}) and set "
                "model.lpips_backbone_path, or use model.perceptual=identity-features.")
        self.model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)
        state = torch.load(path, map_location="cpu", weights_only=True)
        feats = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
        own = {}
        for sname, sl in self.model.net.named_children():
            for pname, _ in sl.named_parameters():
                idx, kind = pname.split(".", 1)
                own[f"{sname}.{pname}"] = feats[f"{idx}.{kind}"]
        self.model.net.load_state_dict(own)
        self.model.eval().requires_grad_(False)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.model(a, b).flatten()


class IdentityFeatureDistance(nn.Module):
    """LPIPS-style distance on the frozen embedded identity network's stage activations."""

    def __init__(self) -> None:
        super().__init__()
        self._body = [frozen_world().identity.body]  # list: keep the shared frozen net unregistered

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        body = self._body[0]
        s = 64
        x = F.interpolate(torch.cat([a, b]), size=(s, s), mode="area")
        total = torch.zeros(a.shape[0], device=a.device)
        for i, layer in enumerate(body):
            x = layer(x)
            if i >= 3 and i % 2 == 0:  # after each residual stage
                fa, fb = F.normalize(x[: a.shape[0]], dim=1), F.normalize(x[a.shape[0]:], dim=1)
                total = total + (fa - fb).square().sum(1).mean(dim=(1, 2))
        return total


def build_perceptual(kind: str, backbone_path: str | None = None) -> nn.Module:
    if kind == "lpips":
        if not backbone_path:
            raise ValueError("perceptual='lpips' needs model.lpips_backbone_path (a local torchvision backbone "
                             "checkpoint); nothing is downloaded. Or use perceptual='identity-features'.")
        return LpipsLocal(backbone_path)
    if kind == "identity-features":
        return IdentityFeatureDistance()
    raise ValueError(f"unknown perceptual loss {kind!r}; choose 'lpips' or 'identity-features'")
