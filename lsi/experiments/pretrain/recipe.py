"""The reproducible CPU recipe that trains the embedded world's identity net, generator and encoder.

Order: identity network (ArcFace on the world's identities) -> generator (regression onto the renderer:
``G(mapping(z(u))) ~ render(u)``, so sampling the prior gives faces of the world) -> inversion encoder
(latent L1 to the known ``w`` plus pixel and identity losses through the frozen G).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from datamodules.faces.world import WORLD_DIM
from lsi.experiments.pretrain.data import IdentityPool, PriorPool
from lsi.generator.embedded import EmbeddedGenerator, EmbeddedGeneratorConfig
from lsi.identity import ArcMarginHead, IdentityConfig, IdentityNet
from lsi.inversion import EncoderConfig, InversionEncoder
from lsi.world.embedded import freeze, load_encoder, load_generator, load_identity, save_component, weights_path


@dataclass
class RecipeConfig:
    seed: int = 0
    size: int = 64
    id_steps: int = 1000
    id_batch: int = 64
    id_identities: int = 2000
    id_images_per_identity: int = 8
    prior_pool: int = 32000
    gen_steps: int = 3000
    gen_batch: int = 16
    enc_steps: int = 1000
    enc_batch: int = 32
    enc_image_batch: int = 8  # sub-batch that goes through G for the pixel/identity losses
    lr: float = 2e-3
    gen_lr: float = 4e-3
    joint_steps: int = 800
    joint_batch: int = 16
    joint_lr: float = 1e-3


def _cosine_lr(opt: torch.optim.Optimizer, base: float, step: int, total: int, warmup: int = 50) -> None:
    f = min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * step / max(1, total)))
    for g in opt.param_groups:
        g["lr"] = base * max(f, 0.02)


def _sobel(x: torch.Tensor) -> torch.Tensor:
    k = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=x.device)
    k = torch.stack([k, k.t()])[:, None].repeat(x.shape[1], 1, 1, 1)
    return F.conv2d(x, k, padding=1, groups=x.shape[1])


def image_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 + MSE + edge L1 (keeps the small facial parts sharp)."""
    return F.l1_loss(pred, target) + F.mse_loss(pred, target) + 0.5 * F.l1_loss(_sobel(pred), _sobel(target))


def train_identity(cfg: RecipeConfig, out_dir: Path) -> IdentityNet:
    pool = IdentityPool(cfg.id_identities, cfg.id_images_per_identity, cfg.size, cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    net = IdentityNet(IdentityConfig(work_resolution=cfg.size))
    head = ArcMarginHead(net.cfg.emb_dim, cfg.id_identities)
    opt = torch.optim.Adam(list(net.parameters()) + list(head.parameters()), lr=cfg.lr, weight_decay=5e-5)
    bar = tqdm(range(cfg.id_steps), desc="identity net", dynamic_ncols=True)
    for step in bar:
        _cosine_lr(opt, cfg.lr, step, cfg.id_steps)
        labels, img = pool.batch(cfg.id_batch, gen)
        logits = head(net(img), labels)
        loss = F.cross_entropy(logits, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 20 == 0:
            acc = (logits.argmax(1) == labels).float().mean().item()
            bar.set_postfix(loss=f"{loss.item():.3f}", acc=f"{acc:.2f}")
    save_component(net, net.cfg.to_dict(), out_dir / "embedded_identity.pt",
                   meta={"steps": cfg.id_steps, "identities": cfg.id_identities})
    return freeze(net)


def train_generator(cfg: RecipeConfig, out_dir: Path, pool: PriorPool) -> EmbeddedGenerator:
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    torch.manual_seed(cfg.seed + 1)
    net = EmbeddedGenerator(EmbeddedGeneratorConfig(z_dim=WORLD_DIM, img_resolution=cfg.size))
    opt = torch.optim.Adam(net.parameters(), lr=cfg.gen_lr, betas=(0.0, 0.99))
    bar = tqdm(range(cfg.gen_steps), desc="generator", dynamic_ncols=True)
    ema = None
    for step in bar:
        _cosine_lr(opt, cfg.gen_lr, step, cfg.gen_steps)
        z, img = pool.batch(cfg.gen_batch, gen)
        loss = image_loss(net(z), img)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
        if step % 10 == 0:
            bar.set_postfix(loss=f"{ema:.4f}")
    net.update_w_avg()
    save_component(net, net.cfg.to_dict(), out_dir / "embedded_generator.pt", meta={"steps": cfg.gen_steps})
    return freeze(net)


def train_encoder(cfg: RecipeConfig, out_dir: Path, g: EmbeddedGenerator, idnet: IdentityNet,
                  pool: PriorPool) -> InversionEncoder:
    gen = torch.Generator().manual_seed(cfg.seed + 2)
    torch.manual_seed(cfg.seed + 2)
    enc = InversionEncoder(EncoderConfig(num_ws=g.num_ws, w_dim=g.w_dim, work_resolution=cfg.size))
    opt = torch.optim.Adam(enc.parameters(), lr=cfg.lr * 0.5)
    w_avg = g.w_avg
    bar = tqdm(range(cfg.enc_steps), desc="inversion encoder", dynamic_ncols=True)
    for step in bar:
        _cosine_lr(opt, cfg.lr * 0.5, step, cfg.enc_steps)
        z, img = pool.batch(cfg.enc_batch, gen)
        with torch.no_grad():
            w_true = g.map(z)
        ws = enc(img) + w_avg
        loss_lat = F.l1_loss(ws, w_true)
        k = cfg.enc_image_batch
        rec = g.synthesis(ws[:k])
        loss_img = image_loss(rec, img[:k])
        loss_id = (1 - F.cosine_similarity(idnet(rec), idnet(img[:k]), dim=1)).mean()
        loss = loss_lat + loss_img + 0.5 * loss_id
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 10 == 0:
            bar.set_postfix(lat=f"{loss_lat.item():.3f}", img=f"{loss_img.item():.3f}", id=f"{loss_id.item():.3f}")
    save_component(enc, enc.cfg.to_dict(), out_dir / "embedded_encoder.pt", meta={"steps": cfg.enc_steps})
    return freeze(enc)


def train_joint(cfg: RecipeConfig, out_dir: Path, g: EmbeddedGenerator, idnet: IdentityNet,
                enc: InversionEncoder, pool: PriorPool) -> tuple[EmbeddedGenerator, InversionEncoder]:
    """Autoencoder polish: G's synthesis and E trained together on G(E(I)) ~ I (pixel + identity), while an L1
    anchor keeps E(I) on the mapping's latent of I and a prior term keeps G(mapping(z)) ~ I (G stays generative)."""
    gen = torch.Generator().manual_seed(cfg.seed + 3)
    torch.manual_seed(cfg.seed + 3)
    for net in (g.synthesis_net, enc):
        net.train().requires_grad_(True)
    params = list(g.synthesis_net.parameters()) + list(enc.parameters())
    opt = torch.optim.Adam(params, lr=cfg.joint_lr, betas=(0.0, 0.99))
    bar = tqdm(range(cfg.joint_steps), desc="joint G+E polish", dynamic_ncols=True)
    for step in bar:
        _cosine_lr(opt, cfg.joint_lr, step, cfg.joint_steps, warmup=20)
        z, img = pool.batch(cfg.joint_batch, gen)
        with torch.no_grad():
            w_true = g.map(z)
        ws = enc(img) + g.w_avg
        rec = g.synthesis(torch.cat([ws, w_true[: cfg.joint_batch // 4]]))
        rec_enc, rec_prior = rec[: len(ws)], rec[len(ws):]
        loss_img = image_loss(rec_enc, img)
        loss_prior = image_loss(rec_prior, img[: len(rec_prior)])
        loss_id = (1 - F.cosine_similarity(idnet(rec_enc), idnet(img), dim=1)).mean()
        loss = loss_img + 0.5 * loss_prior + 0.5 * loss_id + F.l1_loss(ws, w_true)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 10 == 0:
            bar.set_postfix(img=f"{loss_img.item():.3f}", prior=f"{loss_prior.item():.3f}", id=f"{loss_id.item():.3f}")
    save_component(g, g.cfg.to_dict(), out_dir / "embedded_generator.pt",
                   meta={"steps": cfg.gen_steps, "joint_steps": cfg.joint_steps})
    save_component(enc, enc.cfg.to_dict(), out_dir / "embedded_encoder.pt",
                   meta={"steps": cfg.enc_steps, "joint_steps": cfg.joint_steps})
    return freeze(g), freeze(enc)


def run_recipe(cfg: RecipeConfig, stages: list[str], out_dir: Path) -> dict[str, float]:
    """Run the named stages in order; returns seconds per stage."""
    torch.set_num_threads(max(1, torch.get_num_threads()))
    out_dir.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    idnet = g = pool = enc = None
    for stage in stages:
        if stage in ("generator", "encoder", "joint") and pool is None:
            pool = PriorPool(cfg.prior_pool, cfg.size, cfg.seed + 10)
        t0 = time.time()
        if stage == "identity":
            idnet = train_identity(cfg, out_dir)
        elif stage == "generator":
            g = train_generator(cfg, out_dir, pool)
        elif stage == "encoder":
            g = g or freeze(load_generator(weights_path("generator", out_dir)))
            idnet = idnet or freeze(load_identity(weights_path("identity", out_dir)))
            enc = train_encoder(cfg, out_dir, g, idnet, pool)
        elif stage == "joint":
            g = g or freeze(load_generator(weights_path("generator", out_dir)))
            idnet = idnet or freeze(load_identity(weights_path("identity", out_dir)))
            enc = enc or freeze(load_encoder(weights_path("encoder", out_dir)))
            g, enc = train_joint(cfg, out_dir, g, idnet, enc, pool)
        else:
            raise ValueError(f"unknown stage {stage!r}; choose from identity, generator, encoder, joint")
        times[stage] = time.time() - t0
    return times
