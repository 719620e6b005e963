"""The shipped embedded world: safe loading, size budget, and measured-quality floors.

The floors sit below the figures measured by `make eval-embedded` (docs/embedded-world.md) with a margin
for the small sample used here; they catch a broken or untrained checkpoint, not noise.
"""


import pytest
import torch
import torch.nn.functional as F

from datamodules.faces.render import render_faces
from datamodules.faces.world import random_world_latent, to_gaussian
from datamodules.synthetic import SyntheticFaces
from lsi.eval.metrics import psnr
from lsi.world.embedded import FILES, WEIGHTS_DIR, MissingWeightsError, load_embedded_world, load_generator, load_meta

torch.set_num_threads(1)
PSNR_FLOOR_DB = 17.0        # G(E(I)) vs I on test scenes
PRIOR_PSNR_FLOOR_DB = 15.0  # G(mapping(z(u))) vs render(u): sampling the prior gives the world's faces
ID_KEEP_FLOOR = 0.5         # identification accuracy of G(E(I)) relative to the originals'


@pytest.fixture(scope="module")
def world():
    return load_embedded_world()


def test_weights_ship_small_and_load_weights_only():
    total = 0
    for name in FILES.values():
        path = WEIGHTS_DIR / name
        assert path.is_file(), f"{name} missing from the package"
        blob = torch.load(path, map_location="cpu", weights_only=True)
        assert set(blob) >= {"config", "state_dict", "meta"}
        total += path.stat().st_size
    assert total <= 25 * 2**20, f"shipped weights are {total / 2**20:.1f} MiB (budget 25 MiB)"


def test_missing_weights_error_names_the_fix(tmp_path):
    with pytest.raises(MissingWeightsError, match="make pretrain-embedded"):
        load_generator(tmp_path / "embedded_generator.pt")


def test_identity_threshold_is_calibrated():
    thr = load_meta("identity")["far1_threshold"]
    assert 0.0 < thr < 1.0


def _psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return psnr(a, b, data_range=2.0)  # images in [-1, 1]


@torch.no_grad()
def test_reconstruction_psnr_and_identity_above_floor(world):
    ds = SyntheticFaces(split="test", num_identities=12, images_per_identity=3, resolution=256)
    batch = ds.__getitems__(list(range(len(ds))))
    img = torch.stack([b["image"] for b in batch]) * 2 - 1
    ids = torch.tensor([b["identity"] for b in batch])
    small = F.interpolate(img, size=(64, 64), mode="area")
    rec = world.generator.synthesis(world.encoder(img) + world.generator.w_avg).clamp(-1, 1)
    assert _psnr(rec, small).mean() >= PSNR_FLOOR_DB
    emb, emb_rec = world.identity(small), world.identity(rec)
    gallery = torch.arange(len(ids)) % 3 == 0
    def acc(probe):
        sim = probe[~gallery] @ emb[gallery].t()
        return (ids[gallery][sim.argmax(1)] == ids[~gallery]).float().mean()
    a_orig, a_rec = acc(emb), acc(emb_rec)
    assert a_orig > 0.5, "the identity net no longer recognises the world's people"
    assert a_rec >= ID_KEEP_FLOOR * a_orig


@torch.no_grad()
def test_prior_samples_are_faces_of_the_world(world):
    u = random_world_latent(16, torch.Generator().manual_seed(3))
    sample = world.generator(to_gaussian(u)).clamp(-1, 1)
    ref = render_faces(u, size=64).image * 2 - 1
    assert _psnr(sample, ref).mean() >= PRIOR_PSNR_FLOOR_DB
    # different z give different faces
    assert (sample[1:] - sample[:1]).abs().flatten(1).mean(1).min() > 0.02
