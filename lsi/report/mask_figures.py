"""Mask grid figure (cf. Fig. 3 of the LSI paper): each mask in grayscale with its index and mean intensity.

Uses ``matplotlib.figure.Figure`` directly (Agg rendering, no pyplot state), so it is safe on headless machines.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

__all__ = ["save_mask_grid"]


def save_mask_grid(
    masks: np.ndarray | torch.Tensor,
    path: str | os.PathLike,
    max_masks: int = 64,
    ncols: int = 8,
    title: str | None = "Learned masks",
    dpi: int = 100,
    bits: int | None = None,
) -> Path:
    """Save a grid of masks as a PNG.

    Args:
        masks: ``[d, H, W]`` masks, either in ``[0, 1]`` (float) or integer codes (uint8/uint16) divided by
            ``2**bits - 1`` for display and intensity.
        path: output file (``.png``); parent directories are created.
        max_masks: show at most this many (the first ones).
        ncols: grid columns.
        title: figure title, or None.
        dpi: output resolution.
        bits: bit depth of integer codes; None infers the smallest ``k`` with ``masks.max() <= 2**k - 1``.
    Returns:
        The written path.
    """
    from matplotlib.figure import Figure  # not pyplot: renders with Agg, leaves the global backend alone

    if isinstance(masks, torch.Tensor):
        masks = masks.detach().cpu().numpy()
    arr = np.asarray(masks)
    if arr.ndim != 3 or arr.shape[0] == 0:
        raise ValueError(f"masks must be a non-empty [d, H, W] array, got shape {arr.shape}")
    if max_masks < 1 or ncols < 1:
        raise ValueError(f"max_masks and ncols must be >= 1, got {max_masks}, {ncols}")
    if np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool:
        scale = 2 ** max(1, int(arr.max()).bit_length()) - 1 if bits is None else 2**bits - 1
        arr = arr.astype(np.float64) / scale
    else:
        arr = arr.astype(np.float64)
    n = min(arr.shape[0], max_masks)
    cols = min(ncols, n)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(1.6 * cols, 1.75 * rows + (0.4 if title else 0.0)))
    axes = fig.subplots(rows, cols, squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.set_axis_off()
            continue
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():  # thin frame so all-on (white) masks stay visible
            spine.set_edgecolor("0.6")
            spine.set_linewidth(0.6)
        ax.imshow(arr[k], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_title(f"#{k}  {100 * arr[k].mean():.1f}%", fontsize=8)
    if title:
        shown = f" (first {n} of {arr.shape[0]})" if n < arr.shape[0] else ""
        fig.suptitle(f"{title}{shown}", fontsize=10)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi, format="png")
    return out
