"""Render the measured embedded-world figures into ``docs/embedded-world.md``."""

from __future__ import annotations

from pathlib import Path

from lsi.world.embedded import EmbeddedWorld


def _params(module) -> str:
    return f"{sum(p.numel() for p in module.parameters()) / 1e6:.2f} M"


def write_report(path: Path, m: dict, recipe: dict | None, world: EmbeddedWorld) -> None:
    g = world.generator
    secs = (recipe or {}).get("stage_seconds", {})
    total = (recipe or {}).get("total_seconds")
    attr_rows = "\n".join(f"| {k} | {v * 100:.1f}% |" for k, v in m["attribute_probe_acc"].items())
    recipe_line = ("Training time of the recipe on this run: " +
                   ", ".join(f"{k} {v / 60:.1f} min" for k, v in secs.items()) +
                   (f"; total {total / 60:.1f} min." if total else ".")) if secs else ""
    text = f"""# The embedded world

The real datasets and the StyleGAN-XL/pSp/ArcFace weights cannot be downloaded here, so every command runs
out of the box on an embedded world: procedural faces with exact ground truth (`datamodules/faces/`), a tiny
StyleGAN2-family generator G, a pSp-style inversion encoder E and an ArcFace-style identity network, all
trained on the CPU by `make pretrain-embedded` and shipped in `lsi/weights/` (float16, loaded with
`weights_only=True`).

## Components

| component | what it is | parameters |
|---|---|---|
| G | mapping MLP (z {g.z_dim}-d -> w {g.w_dim}-d), const 4x4 input, modulated/demodulated 3x3 convs, skip ToRGB, {g.img_resolution}x{g.img_resolution} output, W+ = {g.num_ws} x {g.w_dim} | {_params(g)} |
| E | residual backbone, 3-level feature pyramid, one map-to-style head per W+ level, output = offset from `w_avg` | {_params(world.encoder)} |
| identity net | residual CNN, 128-d unit embedding, ArcFace margin loss over the world's training identities | {_params(world.identity)} |

G is **not** trained adversarially: the world is procedural, so each face is a deterministic function of its
world latent u, and G is trained by regression so that `G(mapping(z(u)))` reproduces the rendering of u
(L1 + L2 + edge loss). Sampling z ~ N(0, I) therefore gives faces of the world (see the prior samples below);
fine details are softer than the renderer's. E is trained with an L1 loss to the known latent `mapping(z)`
plus pixel and identity losses through the frozen G.

{recipe_line}

## Quality on the test split (identities never seen in training)

Measured with `make eval-embedded` (`python -m lsi.experiments.pretrain.evaluate`) on {m['test_images']} test images
(100 identities x 8 images, 256x256 scenes; G's output is compared with the scene area-downscaled to
{g.img_resolution}x{g.img_resolution}).

| measure | value |
|---|---|
| PSNR of G(E(I)) vs I | {m['psnr_db']:.2f} dB |
| PSNR of prior samples G(mapping(z(u))) vs the rendering of u (256 samples) | {m['prior_psnr_db']:.2f} dB |
| identity accuracy, originals (top-1 vs a gallery of one original per identity) | {m['identity_acc_original'] * 100:.1f}% |
| identity accuracy, G(E(I)) probes against the same gallery | {m['identity_acc_reconstruction'] * 100:.1f}% |
| share of the originals' identity accuracy kept by G(E(I)) (goal >= 90%) | {m['identity_acc_retained'] * 100:.1f}% |
| identity-net threshold at 1% false accepts (val split, cosine distance) | {m['far1_threshold']:.3f} |
| pair match rate of (I, G(E(I))) at that threshold | {m['pair_match_rate_at_far1'] * 100:.1f}% |
| linear-probe attribute accuracy from E(I) (mean) | {m['attribute_probe_acc_mean'] * 100:.1f}% |

Per-attribute probe accuracy:

| attribute | accuracy |
|---|---|
{attr_rows}

## Honest limits of the embedded world

- G is trained by regression in under 40 CPU minutes. It reproduces what identifies a face in this world
  (face shape and size, skin tone, hair style and colour, beard, hat, glasses, background, pose) but not the
  small parts: eyes, brows and mouths are blurred away (compare the figures below). Expression attributes
  therefore sit near chance in the probe (Smiling, Mouth_Slightly_Open), and any downstream number that
  depends on fine detail is bounded by this G, not by LSI.
- The identity network is small (width 16) and trained for 1000 steps; its 1%-FAR threshold is loose, so the
  pair match rate of (I, G(E(I))) saturates. The identification accuracy rows above are the stricter measure.
- All numbers are for procedural faces; they say nothing about CelebA-HQ. The real path (StyleGAN-XL, pSp,
  ArcFace, CelebA-HQ) loads local files and is exercised on tiny fixtures only.

![prior samples](figures/embedded_prior_samples.png)

*Samples of G's prior (z ~ N(0, I)).*

![reconstructions](figures/embedded_reconstructions.png)

*Rows 1 and 3: test scenes (downscaled); rows 2 and 4: G(E(I)).*

![faces](figures/embedded_faces.png)

*The procedural world at 256x256 with landmarks and segmentation.*
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
