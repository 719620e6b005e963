"""Benchmark the procedural face renderer (scenes/s on one core) and draw a contact sheet.

    python -m lsi.experiments.faces_bench           # scenes/s at 256x256 and 64x64, one thread
    python -m lsi.experiments.faces_bench --sheet   # also write docs/figures/embedded_faces.png
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from datamodules.faces import random_world_latent, render_faces
from lsi.labels import SEGMENTATION_PALETTE


def bench(size: int, batch: int, seconds: float) -> float:
    """Scenes per second of ``render_faces`` (all ground truth included) at ``size``."""
    gen = torch.Generator().manual_seed(0)
    render_faces(random_world_latent(batch, gen), size)       # warm-up
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        render_faces(random_world_latent(batch, gen), size)
        n += batch
    return n / (time.perf_counter() - t0)


def _draw_landmarks(img: Image.Image, pts: np.ndarray, size: int) -> None:
    d = ImageDraw.Draw(img)
    r = max(1.0, size / 160)
    for i, (x, y) in enumerate(pts * size - 0.5):
        color = (255, 255, 0) if i < 17 else (0, 255, 0) if i < 36 else (0, 200, 255) if i < 48 else (255, 60, 200)
        d.ellipse([x - r, y - r, x + r, y + r], fill=color)


def contact_sheet(path: Path, n: int = 16, size: int = 256, seed: int = 0) -> Path:
    """Faces with landmarks (left) and the class map blended over them (right), ``n`` pairs, 4 per row."""
    out = render_faces(random_world_latent(n, torch.Generator().manual_seed(seed)), size)
    imgs = (out.image.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    segs = SEGMENTATION_PALETTE[out.segmentation.numpy()]
    cols = 4
    sheet = Image.new("RGB", (cols * 2 * size + (cols - 1) * 8, ((n + cols - 1) // cols) * size), (255, 255, 255))
    for i in range(n):
        left = Image.fromarray(imgs[i])
        right = Image.fromarray((0.35 * imgs[i] + 0.65 * segs[i]).astype(np.uint8))
        for tile in (left, right):
            _draw_landmarks(tile, out.landmarks[i].numpy(), size)
        x, y = (i % cols) * (2 * size + 8), (i // cols) * size
        sheet.paste(left, (x, y))
        sheet.paste(right, (x + size, y))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sheet", action="store_true", help="write the contact sheet PNG")
    ap.add_argument("--sheet-path", type=Path, default=Path("docs/figures/embedded_faces.png"))
    ap.add_argument("--seed", type=int, default=0, help="seed of the contact-sheet faces")
    ap.add_argument("--seconds", type=float, default=5.0, help="timing window per resolution")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-bench", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not args.no_bench:
        for size, batch in ((256, 64), (64, 512)):
            print(f"{size}x{size}: {bench(size, batch, args.seconds):8.1f} scenes/s "
                  f"(batch {batch}, {args.threads} thread(s), image + segmentation + landmarks + attributes)")
    if args.sheet:
        print(f"contact sheet: {contact_sheet(args.sheet_path, seed=args.seed)}")


if __name__ == "__main__":
    main()
