"""The one interface every frozen generator adapter implements.

Shapes: ``ws`` is the W+ latent ``[B, num_ws, w_dim]``; images are ``[B, 3, R, R]`` in ``[-1, 1]``
with ``R = img_resolution``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class Generator(Protocol):
    """A frozen StyleGAN-family generator seen through W+."""

    num_ws: int
    w_dim: int
    img_resolution: int

    @property
    def w_avg(self) -> torch.Tensor:
        """Mean of the mapping network's output, ``[w_dim]``."""

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Names of the intermediate feature maps, ``L<i>_<res>_<channels>``, coarse to fine."""

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor:
        """``[B, num_ws, w_dim]`` -> image ``[B, 3, R, R]`` in ``[-1, 1]``."""

    def features(self, ws: torch.Tensor, names: list[str] | tuple[str, ...]) -> dict[str, torch.Tensor]:
        """Intermediate feature maps ``{name: [B, C, H, W]}`` for the requested layer names."""


def parse_feature_name(name: str) -> tuple[int, int, int]:
    """``'L3_16_128'`` -> ``(index, resolution, channels)``."""
    try:
        head, res, ch = name.split("_")
        if not head.startswith("L"):
            raise ValueError
        return int(head[1:]), int(res), int(ch)
    except ValueError as err:
        raise ValueError(f"feature name {name!r} is not of the form L<index>_<resolution>_<channels>") from err
