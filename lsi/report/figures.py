"""Result figures of the LSI paper for ``make table`` (PNG, matplotlib ``Figure`` with Agg, no pyplot state).

* :func:`save_reconstruction_figure` — Fig. 4: originals and their LSI reconstructions across ratios.
* :func:`save_attribute_bars` — Fig. 6: sigmoid of P_A's logits at (two) ratios, overlaid, against ground truth.
* :func:`save_landmark_overlays` — Fig. 7: P_L's 68 points against the ground truth, per ratio.
* :func:`save_segmentation_overlays` — Fig. 8: P_S's class map over the image, per ratio, and the ground truth.
* :func:`save_method_rows` — Fig. 9: the same test faces (columns), one row per method (scene, G(E(I)) on top).
* :func:`save_metric_curves` — Table 1 as curves: each metric against the ratio, ours next to the paper's.

Images are ``[N,3,H,W]`` float in [0,1]; landmarks ``[N,68,2]`` as (x, y) in [0,1] (pixel centre / size);
class maps ``[N,H,W]`` int64. Per-ratio inputs are mappings ``{ratio: tensor}`` (ratio 512 -> label "1:512";
string keys are used verbatim).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from lsi.labels import SEGMENTATION_PALETTE

__all__ = ["save_reconstruction_figure", "save_method_rows", "save_attribute_bars", "save_landmark_overlays",
           "save_segmentation_overlays", "save_metric_curves", "segmentation_palette", "ratio_label"]

def ratio_label(key: int | str) -> str:
    """``512 -> "1:512"``; strings unchanged."""
    return f"1:{key}" if isinstance(key, (int, np.integer)) else str(key)


def segmentation_palette(num_classes: int = 19) -> np.ndarray:
    """``[num_classes, 3]`` RGB colours in [0,1] of :data:`lsi.labels.SEGMENTATION_PALETTE` (repeated beyond the 19
    CelebAMask-HQ classes; class 0, the background, is drawn transparent in overlays)."""
    palette = SEGMENTATION_PALETTE.astype(np.float64) / 255.0
    return np.stack([palette[i % len(palette)] for i in range(num_classes)])


def _images(images: torch.Tensor, name: str = "images") -> np.ndarray:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] not in (1, 3):
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"{name} must be a [N,3,H,W] tensor in [0,1], got {shape}")
    arr = images.detach().float().cpu().clamp(0, 1)
    if arr.shape[1] == 1:
        arr = arr.expand(-1, 3, -1, -1)
    return arr.permute(0, 2, 3, 1).numpy()


def _per_ratio(values: Mapping, n: int, name: str) -> list[tuple[str, torch.Tensor]]:
    if not values:
        raise ValueError(f"{name} must map at least one ratio to a tensor")
    out = []
    for key, t in values.items():
        if not isinstance(t, torch.Tensor) or t.shape[0] != n:
            shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"{name}[{key!r}] must be a tensor with {n} samples first, got {shape}")
        out.append((ratio_label(key), t.detach().cpu()))
    return out


def _save(fig, path: str | os.PathLike, dpi: int) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, format="png")
    return path


def _axes(rows: int, cols: int, cell: float, title: str | None):
    from matplotlib.figure import Figure  # matplotlib is heavy: imported when a figure is drawn

    fig = Figure(figsize=(cell * cols, cell * rows + (0.5 if title else 0.1)), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    return fig, axes


def save_reconstruction_figure(originals: torch.Tensor, reconstructions: Mapping[int | str, torch.Tensor],
                               path: str | os.PathLike, inversions: torch.Tensor | None = None,
                               title: str | None = "LSI reconstructions across compression ratios",
                               dpi: int = 100) -> Path:
    """Fig. 4: one row per sample: original | G(E(I)) (if given) | reconstruction at each ratio."""
    orig = _images(originals, "originals")
    n = orig.shape[0]
    cols = [("original", orig)]
    if inversions is not None:
        cols.append(("G(E(I))", _images(inversions, "inversions")))
    cols += [(label, _images(t, f"reconstructions[{label}]")) for label, t in
             _per_ratio(reconstructions, n, "reconstructions")]
    fig, axes = _axes(n, len(cols), 1.6, title)
    for c, (label, imgs) in enumerate(cols):
        axes[0, c].set_title(label, fontsize=9)
        for r in range(n):
            axes[r, c].imshow(imgs[r], interpolation="nearest")
    return _save(fig, path, dpi)


def save_method_rows(rows: Mapping[str, torch.Tensor], path: str | os.PathLike,
                     title: str | None = "Reconstructions of the same test faces", dpi: int = 100) -> Path:
    """Fig. 9: one row per entry of ``rows`` (label -> ``[N, 1|3, H, W]`` in [0, 1], gray shown as gray), the same
    ``N`` faces in every row, labels on the left."""
    if not rows:
        raise ValueError("rows must map at least one label to a batch of images")
    arrays = [(label, _images(t, f"rows[{label!r}]")) for label, t in rows.items()]
    n = arrays[0][1].shape[0]
    bad = [label for label, a in arrays if a.shape[0] != n]
    if bad:
        raise ValueError(f"every row must show the same {n} faces; rows {bad} have another count")
    fig, axes = _axes(len(arrays), n, 1.1, title)
    for r, (label, imgs) in enumerate(arrays):
        axes[r, 0].set_ylabel(label, fontsize=8, rotation=0, ha="right", va="center")
        for c in range(n):
            axes[r, c].imshow(imgs[c], interpolation="nearest")
    return _save(fig, path, dpi)


def save_attribute_bars(probabilities: Mapping[int | str, torch.Tensor], truth: torch.Tensor,
                        names: Sequence[str], path: str | os.PathLike,
                        title: str | None = "Attributes: sigmoid(P_A(L)) vs ground truth", dpi: int = 100) -> Path:
    """Fig. 6: per sample, bars of each ratio's attribute probabilities overlaid; ground truth as outlines.

    ``probabilities[ratio]``: ``[N,A]`` in [0,1] (apply ``sigmoid`` to logits first); ``truth``: ``[N,A]`` in {0,1}.
    """
    if truth.ndim != 2 or truth.shape[1] != len(names):
        raise ValueError(f"truth must be [N,{len(names)}] (one column per name), got {tuple(truth.shape)}")
    n, a = truth.shape
    series = _per_ratio(probabilities, n, "probabilities")
    for label, p in series:
        if p.shape != (n, a) or float(p.min()) < 0 or float(p.max()) > 1:
            raise ValueError(f"probabilities[{label}] must be [N,A]={n, a} in [0,1] (sigmoid of logits), "
                             f"got shape {tuple(p.shape)}")
    from matplotlib.figure import Figure  # matplotlib is heavy: imported when a figure is drawn

    fig = Figure(figsize=(max(6.0, 0.38 * a + 1.5), 2.4 * n + 0.6), layout="constrained")
    axes = fig.subplots(n, 1, squeeze=False)[:, 0]
    x = np.arange(a)
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"]
    for i, ax in enumerate(axes):
        for k, (label, p) in enumerate(series):
            ax.bar(x, p[i].numpy(), width=0.8, alpha=0.55, color=colours[k % len(colours)], label=label)
        ax.bar(x, truth[i].float().cpu().numpy(), width=0.8, fill=False, edgecolor="black", linewidth=1.0,
               label="ground truth")
        ax.set_ylim(0, 1.05)
        ax.set_ylabel(f"sample {i}", fontsize=8)
        ax.set_xticks(x, [] if i < n - 1 else list(names), rotation=70, fontsize=7)
    axes[0].legend(fontsize=7, ncols=len(series) + 1, loc="upper right")
    if title:
        fig.suptitle(title)
    return _save(fig, path, dpi)


def save_landmark_overlays(images: torch.Tensor, predictions: Mapping[int | str, torch.Tensor],
                           truth: torch.Tensor, path: str | os.PathLike,
                           title: str | None = "Landmarks: P_L(L) (red) vs ground truth (green)",
                           dpi: int = 100) -> Path:
    """Fig. 7: one row per sample, one column per ratio: the image with predicted and true 68 points."""
    imgs = _images(images)
    n, h, w = imgs.shape[:3]
    if truth.ndim != 3 or truth.shape[0] != n or truth.shape[-1] != 2:
        raise ValueError(f"truth must be [N,K,2] with N={n}, got {tuple(truth.shape)}")
    series = _per_ratio(predictions, n, "predictions")
    for label, p in series:
        if p.shape != truth.shape:
            raise ValueError(f"predictions[{label}] must match truth {tuple(truth.shape)}, got {tuple(p.shape)}")
    gt = truth.detach().float().cpu().numpy()
    fig, axes = _axes(n, len(series), 2.0, title)
    for c, (label, p) in enumerate(series):
        axes[0, c].set_title(label, fontsize=9)
        pts = p.float().numpy()
        for r in range(n):
            ax = axes[r, c]
            ax.imshow(imgs[r], interpolation="bilinear")
            ax.scatter(gt[r, :, 0] * w - 0.5, gt[r, :, 1] * h - 0.5, s=5, c="lime", linewidths=0)
            ax.scatter(pts[r, :, 0] * w - 0.5, pts[r, :, 1] * h - 0.5, s=5, c="red", linewidths=0)
            ax.set_xlim(-0.5, w - 0.5)
            ax.set_ylim(h - 0.5, -0.5)
    return _save(fig, path, dpi)


def _overlay(img: np.ndarray, labels: np.ndarray, palette: np.ndarray, alpha: float) -> np.ndarray:
    colours = palette[labels]
    a = np.where(labels[..., None] > 0, alpha, 0.0)
    return img * (1 - a) + colours * a


def save_segmentation_overlays(images: torch.Tensor, predictions: Mapping[int | str, torch.Tensor],
                               truth: torch.Tensor, path: str | os.PathLike, num_classes: int = 19,
                               alpha: float = 0.55, title: str | None = "Segmentation: P_S(features of G(L))",
                               dpi: int = 100) -> Path:
    """Fig. 8: one row per sample: image | ground truth | prediction at each ratio (class colours over image)."""
    imgs = _images(images)
    n, h, w = imgs.shape[:3]
    if truth.ndim != 3 or truth.shape[0] != n:
        raise ValueError(f"truth must be an [N,H,W] class map with N={n}, got {tuple(truth.shape)}")
    series = _per_ratio(predictions, n, "predictions")
    palette = segmentation_palette(num_classes)

    def labels_at_image_size(t: torch.Tensor, name: str) -> np.ndarray:
        if t.ndim != 3:
            raise ValueError(f"{name} must be an [N,H,W] class map, got {tuple(t.shape)}")
        t = t.long()
        if int(t.min()) < 0 or int(t.max()) >= num_classes:
            raise ValueError(f"{name} holds labels outside [0, {num_classes})")
        if t.shape[-2:] != (h, w):
            t = torch.nn.functional.interpolate(t[:, None].float(), size=(h, w), mode="nearest")[:, 0].long()
        return t.numpy()

    cols = [("ground truth", labels_at_image_size(truth.detach().cpu(), "truth"))]
    cols += [(label, labels_at_image_size(p, f"predictions[{label}]")) for label, p in series]
    fig, axes = _axes(n, len(cols) + 1, 1.8, title)
    axes[0, 0].set_title("image", fontsize=9)
    for r in range(n):
        axes[r, 0].imshow(imgs[r], interpolation="bilinear")
    for c, (label, maps) in enumerate(cols, start=1):
        axes[0, c].set_title(label, fontsize=9)
        for r in range(n):
            axes[r, c].imshow(_overlay(imgs[r], maps[r], palette, alpha), interpolation="nearest")
    return _save(fig, path, dpi)


def save_metric_curves(panels: Mapping[str, Mapping[str, Mapping[int, float | None]]], path: str | os.PathLike,
                       title: str | None = "Table 1 across compression ratios", dpi: int = 100) -> Path:
    """Table 1 as curves: ``panels[metric][series] = {ratio: value}``, one panel per metric, log2 ratio axis.

    Missing values (``None``/NaN) leave gaps. Series whose label starts with ``"paper"`` are drawn dashed, those
    starting with ``"constant"`` (a floor such as :mod:`lsi.eval.floors`) dotted.
    """
    if not panels or any(not series for series in panels.values()):
        raise ValueError("panels must map each metric name to at least one series {label: {ratio: value}}")
    from matplotlib.figure import Figure  # matplotlib is heavy: imported when a figure is drawn

    fig = Figure(figsize=(3.2 * len(panels), 3.0), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (metric, series) in zip(axes, panels.items()):
        ratios: set[int] = set()
        for label, values in series.items():
            pts = sorted((int(r), float(v)) for r, v in values.items() if v is not None and v == v)
            if not pts:
                continue
            ratios.update(r for r, _ in pts)
            style = "--" if label.startswith("paper") else ":" if label.startswith("constant") else "-"
            ax.plot([r for r, _ in pts], [v for _, v in pts], marker="o", markersize=3, linestyle=style,
                    label=label)
        ax.set_xscale("log", base=2)
        ticks = sorted(ratios)
        ax.set_xticks(ticks, [ratio_label(r) for r in ticks], rotation=60, fontsize=7)
        ax.set_title(metric, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    if title:
        fig.suptitle(title)
    return _save(fig, path, dpi)
