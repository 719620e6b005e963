"""Measure the embedded world (G, E, identity net) on the test split and write ``docs/embedded-world.md``.

Measures: PSNR of G(E(I)) against I (area-downscaled to G's resolution); identity accuracy (top-1
identification against a one-image-per-identity gallery of originals) for originals and for G(E(I));
the pair match rate of (I, G(E(I))) at the identity net's 1%-FAR threshold (fixed on the val split);
linear-probe attribute accuracy from E(I).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torchvision.utils import save_image
from tqdm import tqdm

from datamodules.faces.render import render_faces
from datamodules.faces.world import ATTRIBUTE_NAMES, random_world_latent, to_gaussian
from datamodules.synthetic import SyntheticFaces
from lsi.eval.linear_readout import fit_logistic
from lsi.eval.metrics import first_of_each_identity, identification_top1, psnr, threshold_at_far
from lsi.experiments.pretrain.report import write_report
from lsi.world.embedded import WEIGHTS_DIR, EmbeddedWorld, load_embedded_world, update_meta
from lsi.world.frozen import downscale_scene


@torch.no_grad()
def encode_split(world: EmbeddedWorld, split: str, num_identities: int, per_id: int,
                 batch_size: int = 64) -> dict[str, torch.Tensor]:
    """Run E, G and the identity net over a split; returns stacked tensors."""
    ds = SyntheticFaces(split=split, num_identities=num_identities, images_per_identity=per_id, resolution=256)
    out: dict[str, list[torch.Tensor]] = {k: [] for k in ("ws", "psnr", "emb", "emb_rec", "attr", "identity")}
    res = world.generator.img_resolution
    for batch in tqdm(DataLoader(ds, batch_size=batch_size), desc=f"encode {split}", leave=False):
        img = batch["image"] * 2 - 1
        small = downscale_scene(batch["image"], res)
        ws = world.encoder(img) + world.generator.w_avg
        rec = world.generator.synthesis(ws).clamp(-1, 1)
        out["psnr"].append(psnr(rec, small, data_range=2.0))
        out["ws"].append(ws.flatten(1))
        out["emb"].append(world.identity(small))
        out["emb_rec"].append(world.identity(rec))
        out["attr"].append(batch["attributes"])
        out["identity"].append(batch["identity"])
    return {k: torch.cat(v) for k, v in out.items()}


@torch.no_grad()
def prior_psnr(world: EmbeddedWorld, n: int = 256) -> float:
    """PSNR of prior samples G(mapping(z(u))) against the renderer's image of the same world latent u."""
    u = random_world_latent(n, torch.Generator().manual_seed(123))
    g = world.generator
    sample = g(to_gaussian(u)).clamp(-1, 1)
    ref = render_faces(u, size=g.img_resolution).image * 2 - 1
    return float(psnr(sample, ref, data_range=2.0).mean())


def far_threshold(emb: torch.Tensor, ids: torch.Tensor, far: float = 0.01) -> float:
    """Cosine-distance threshold giving ``far`` false accepts over all impostor pairs of a split."""
    dist = 1 - F.normalize(emb, dim=1) @ F.normalize(emb, dim=1).t()
    same = ids[:, None] == ids[None, :]
    off_diag = ~torch.eye(len(ids), dtype=torch.bool)
    return float(threshold_at_far(dist[same & off_diag], dist[~same], far=far))


def linear_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                 steps: int = 400) -> torch.Tensor:
    """Logistic-regression probe per attribute (:func:`lsi.eval.linear_readout.fit_logistic`); returns the
    per-attribute test accuracy ``[A]``."""
    weight, bias = fit_logistic(train_x, train_y, steps=steps)
    with torch.no_grad():
        return (((test_x @ weight.T + bias) > 0).float() == test_y).float().mean(0)


@torch.no_grad()
def measure(world: EmbeddedWorld, test_ids: int = 100, per_id: int = 8) -> dict:
    test = encode_split(world, "test", test_ids, per_id)
    val = encode_split(world, "val", 50, per_id)
    train = encode_split(world, "train", 300, 4)
    first = first_of_each_identity(test["identity"])
    gal, gal_ids = test["emb"][first], test["identity"][first]
    probe_ids = test["identity"][~first]
    acc_orig = identification_top1(gal, gal_ids, test["emb"][~first], probe_ids)
    acc_rec = identification_top1(gal, gal_ids, test["emb_rec"][~first], probe_ids)
    thr = far_threshold(val["emb"], val["identity"])
    pair_dist = 1 - F.cosine_similarity(test["emb"], test["emb_rec"], dim=1)
    probe_acc = linear_probe(train["ws"], train["attr"], test["ws"], test["attr"])
    return {
        "prior_psnr_db": prior_psnr(world),
        "test_images": int(len(test["psnr"])),
        "psnr_db": float(test["psnr"].mean()),
        "identity_acc_original": acc_orig,
        "identity_acc_reconstruction": acc_rec,
        "identity_acc_retained": acc_rec / max(acc_orig, 1e-9),
        "far1_threshold": thr,
        "pair_match_rate_at_far1": float((pair_dist <= thr).float().mean()),
        "attribute_probe_acc_mean": float(probe_acc.mean()),
        "attribute_probe_acc": {n: float(a) for n, a in zip(ATTRIBUTE_NAMES, probe_acc)},
    }


def save_figures(world: EmbeddedWorld, fig_dir: Path) -> None:
    """Prior samples and test reconstructions as PNG grids."""
    fig_dir.mkdir(parents=True, exist_ok=True)
    g = world.generator
    z = torch.randn(32, g.z_dim, generator=torch.Generator().manual_seed(0))
    save_image(g(z).clamp(-1, 1) * 0.5 + 0.5, fig_dir / "embedded_prior_samples.png", nrow=8)
    ds = SyntheticFaces(split="test", num_identities=16, images_per_identity=1, resolution=256)
    img = torch.stack([ds[i]["image"] for i in range(16)]) * 2 - 1
    small = F.interpolate(img, size=(g.img_resolution,) * 2, mode="area")
    rec = g.synthesis(world.encoder(img) + g.w_avg).clamp(-1, 1)
    rows = torch.cat([small[:8], rec[:8], small[8:], rec[8:]])
    save_image(rows * 0.5 + 0.5, fig_dir / "embedded_reconstructions.png", nrow=8)


def evaluate_embedded_world(weights_dir: Path | None = None, report: Path = Path("docs/embedded-world.md"),
                            recipe_log: dict | None = None) -> dict:
    t0 = time.time()
    log_path = Path(weights_dir or WEIGHTS_DIR) / "recipe_log.json"
    if recipe_log is None and log_path.is_file():
        recipe_log = json.loads(log_path.read_text())
    world = load_embedded_world(weights_dir)
    m = measure(world)
    # the identity match rate of every later evaluation uses this calibrated 1%-FAR threshold
    update_meta("identity", weights_dir, far1_threshold=m["far1_threshold"])
    save_figures(world, report.parent / "figures")
    m["eval_seconds"] = time.time() - t0
    Path(report.parent / "embedded-world.json").write_text(json.dumps({"metrics": m, "recipe": recipe_log}, indent=2))
    write_report(report, m, recipe_log, world)
    print(json.dumps(m, indent=2))
    return m


if __name__ == "__main__":
    evaluate_embedded_world()
