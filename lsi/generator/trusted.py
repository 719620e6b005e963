"""The opt-in ``trust_pickle=True`` path: unpickle with *your* checkout of the official code. Runs the file's code.

NVIDIA network pickles carry the source of their modules and the official loader executes it. This path does
exactly that, so use it only for files you trust, and only when our own implementation does not cover a
network (a custom variant). Put your checkout of NVlabs/stylegan2-ada-pytorch, NVlabs/stylegan3 or
autonomousvision/stylegan-xl on ``PYTHONPATH`` (it needs ``dnnlib`` and ``torch_utils``; StyleGAN-XL files
also need ``dill``). Nothing here is imported unless ``trust_pickle=True`` is passed.

The official ``G_ema`` is wrapped in :class:`OfficialGenerator`, which implements the same interface as our
rebuild: ``mapping(z, c, truncation_psi)``, ``synthesis(ws, noise_mode='const')`` (fp32 on CPU), the
synthesis children in their original order, and ``features`` through forward hooks with the same names.
"""

from __future__ import annotations

import importlib
import pickle
from pathlib import Path

import torch
from torch import nn

from lsi.generator.errors import GeneratorFileError


class OfficialSynthesis(nn.Module):
    """Calls the official synthesis network; its children are the official layers, in order."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        object.__setattr__(self, "net", net)  # not registered: named_children() must be the official layers
        for name, child in net.named_children():
            self.add_module(name, child)
        self.w_dim, self.num_ws = int(net.w_dim), int(net.num_ws)
        self.img_resolution, self.img_channels = int(net.img_resolution), int(net.img_channels)
        if hasattr(net, "layer_names"):  # StyleGAN3 / XL: the layer names themselves
            self.feature_layers = {str(n): str(n) for n in net.layer_names}
        else:  # StyleGAN2: conv outputs, named like our rebuild
            paths = [f"b{r}.{c}" for r in net.block_resolutions for c in ("conv0", "conv1")
                     if hasattr(getattr(net, f"b{r}"), c)]
            self.feature_layers = {f"L{i}_{net.get_submodule(p).resolution}_{net.get_submodule(p).weight.shape[0]}": p
                                   for i, p in enumerate(paths)}
        self.feature_names = tuple(self.feature_layers)

    def forward(self, ws: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        return self.net(ws, noise_mode=noise_mode, force_fp32=ws.device.type != "cuda")

    def features(self, ws: torch.Tensor, names, noise_mode: str = "const") -> dict[str, torch.Tensor]:
        unknown = set(names) - set(self.feature_names)
        if unknown:
            raise ValueError(f"unknown feature names {sorted(unknown)}; available: {self.feature_names}")
        feats: dict[str, torch.Tensor] = {}
        hooks = [self.net.get_submodule(self.feature_layers[n]).register_forward_hook(
            lambda _m, _i, out, n=n: feats.__setitem__(n, out.float())) for n in names]
        try:
            self(ws, noise_mode)
        finally:
            for h in hooks:
                h.remove()
        return feats


class OfficialGenerator(nn.Module):
    """The official ``G_ema`` behind our generator interface."""

    kind = "official"

    def __init__(self, g: nn.Module) -> None:
        super().__init__()
        self.g_mapping = g.mapping
        self.synthesis = OfficialSynthesis(g.synthesis)
        self.z_dim, self.c_dim = int(g.z_dim), int(g.c_dim)
        self.w_dim, self.num_ws = self.synthesis.w_dim, self.synthesis.num_ws
        self.img_resolution, self.img_channels = self.synthesis.img_resolution, self.synthesis.img_channels

    def mapping(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None) -> torch.Tensor:
        c = torch.zeros(z.shape[0], self.c_dim, device=z.device) if c is None else c
        return self.g_mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)

    @property
    def w_avg(self) -> torch.Tensor:
        w_avg = self.g_mapping.w_avg
        return w_avg.mean(0) if w_avg.ndim == 2 else w_avg

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.synthesis.feature_names

    def features(self, ws: torch.Tensor, names, noise_mode: str = "const") -> dict[str, torch.Tensor]:
        return self.synthesis.features(ws, tuple(names), noise_mode)


def load_official(path: str | Path, device: str | torch.device = "cpu") -> OfficialGenerator:
    """Unpickle ``path`` with the official code from ``PYTHONPATH`` (this executes the pickle's code)."""
    for module in ("dnnlib", "torch_utils.persistence"):
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise GeneratorFileError(
                f"trust_pickle=True needs the official code: {module!r} is not importable. Put your checkout of "
                "NVlabs/stylegan3, NVlabs/stylegan2-ada-pytorch or autonomousvision/stylegan-xl on PYTHONPATH, or "
                "drop trust_pickle to use our own implementation (no code from the file runs).") from err
    with open(path, "rb") as f:
        data = pickle.load(f)  # noqa: S301 - the explicit opt-in: the user trusts this file
    g = data["G_ema"] if isinstance(data, dict) and "G_ema" in data else data
    if not isinstance(g, nn.Module):
        raise GeneratorFileError(f"{path}: no 'G_ema' network in the pickle")
    return OfficialGenerator(g.eval().requires_grad_(False)).to(device)
