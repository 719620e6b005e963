"""Tests for the optical encoder O (lsi.physics.operator) and mask inits (lsi.physics.patterns)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lsi.physics import patterns as mask_init
from lsi.physics.mask_files import MaskFormatError, load_masks, save_masks
from lsi.physics.noise import NoiseModel
from lsi.physics.operator import OpticalEncoder, energy_targets, quantise_ste, valid_ratios

G = 16  # small DMD grid for fast tests (256 pixels)


def test_ratio_and_d() -> None:
    enc = OpticalEncoder(ratio=512)
    assert enc.d == 128 and enc.masks.shape == (128, 256, 256)
    assert OpticalEncoder(ratio=8, grid=G).d == 32


@pytest.mark.parametrize("ratio", [0, 3, 1000, 2 * 65536, -4])
def test_invalid_ratio_rejected(ratio: int) -> None:
    with pytest.raises(ValueError) as info:
        OpticalEncoder(ratio=ratio)
    msg = str(info.value)
    assert "valid ratios" in msg and "512" in msg and "65536" in msg


def test_valid_ratios_are_divisors() -> None:
    r = valid_ratios(256)
    assert r == [2**k for k in range(17)]
    assert all((G * G) % x == 0 for x in valid_ratios(G))


@pytest.mark.parametrize("bits", [1, 2, 8])
def test_quantised_values_in_level_set(bits: int) -> None:
    enc = OpticalEncoder(ratio=16, grid=G, bits=bits, seed=3)
    with torch.no_grad():
        enc.masks.copy_(torch.rand_like(enc.masks) * 1.4 - 0.2)  # include out-of-range values
    m = enc.effective_masks()
    n = 2**bits - 1
    levels = torch.arange(n + 1, dtype=m.dtype) / n
    assert torch.isin(m, levels).all()
    assert m.min() == 0 and m.max() == 1
    if bits == 8:  # many distinct levels actually used
        assert torch.unique(m).numel() > 100


def test_ste_gradient_flows_to_masks() -> None:
    enc = OpticalEncoder(ratio=16, grid=G, init="uniform")
    x = torch.rand(4, 3, G, G)
    enc(x).pow(2).sum().backward()
    g = enc.masks.grad
    assert g is not None and g.abs().sum() > 0 and torch.isfinite(g).all()
    # outside [0, 1] the STE blocks the gradient
    m = torch.tensor([-0.5, 0.2, 0.7, 1.5], requires_grad=True)
    quantise_ste(m, 1).sum().backward()
    assert torch.equal(m.grad, torch.tensor([0.0, 1.0, 1.0, 0.0]))


def test_frozen_masks_get_no_gradient() -> None:
    enc = OpticalEncoder(ratio=16, grid=G, frozen=True)
    x = torch.rand(2, 1, G, G, requires_grad=True)
    enc(x).sum().backward()
    assert enc.frozen and enc.masks.grad is None and x.grad is not None


def test_white_scene_all_on_mask_reads_one() -> None:
    enc = OpticalEncoder(ratio=G * G // 2, grid=G)
    with torch.no_grad():
        enc.masks.fill_(1.0)
    assert torch.allclose(enc.A(torch.ones(2, 3, G, G)), torch.ones(2, 2))
    assert torch.allclose(enc.A(torch.ones(2, 1, G, G) * 0.25), torch.full((2, 2), 0.25))


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("complementary", [False, True])
def test_adjointness(channels: int, complementary: bool) -> None:
    enc = OpticalEncoder(ratio=8, grid=G, bits=2, init="uniform", complementary=complementary).double()
    with torch.no_grad():
        enc.masks.copy_(torch.rand_like(enc.masks))
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(3, channels, G, G, generator=gen, dtype=torch.float64)
    y = torch.randn(3, enc.num_readings, generator=gen, dtype=torch.float64)
    ax = enc.A(x)
    aty = enc.A_adjoint(y, channels=channels)
    assert ax.shape == (3, enc.num_readings) and aty.shape == x.shape
    lhs = (ax * y).sum()
    rhs = (x * aty).sum()
    assert torch.allclose(lhs, rhs, rtol=1e-6, atol=0)


def test_complementary_layout_is_stacked() -> None:
    enc = OpticalEncoder(ratio=8, grid=G, complementary=True, init="random_binary")
    x = torch.rand(2, 1, G, G)
    y = enc.A(x)
    assert y.shape == (2, 2 * enc.d)
    assert torch.allclose(y[:, : enc.d] + y[:, enc.d :], x.mean(dim=(1, 2, 3))[:, None].expand(-1, enc.d), atol=1e-6)


def test_forward_noise_and_dropout() -> None:
    noise = NoiseModel(photons_full_scale=100.0, read_noise=0.01)
    enc = OpticalEncoder(ratio=8, grid=G, noise=noise, mask_dropout=0.5, input_dropout=0.2)
    x = torch.rand(4, 3, G, G)
    enc.eval()
    clean = enc.A(x)
    assert torch.equal(enc(x, add_noise=False), clean)  # no dropout in eval
    noisy = enc(x, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(noisy, clean) and (noisy - clean).abs().max() < 0.2
    enc.train()
    y = enc(x, add_noise=False)
    assert (y == 0).any()  # dropped readings


def test_energy_targets_values() -> None:
    t = energy_targets(5, 20, 60)
    assert torch.allclose(t, torch.tensor([0.20, 0.21, 0.22, 0.23, 0.24]))
    t = energy_targets(100, 20, 60)  # 41 levels -> cycle
    assert t.min() >= 0.20 - 1e-7 and t.max() <= 0.60 + 1e-7
    assert torch.allclose(torch.unique(t).diff(), torch.full((40,), 0.01), atol=1e-6)
    assert torch.allclose(t[41], t[0])
    with pytest.raises(ValueError, match="0 <= a <= b <= 100"):
        energy_targets(4, 60, 20)


def test_energy_loss_rank_assignment_and_gradient() -> None:
    enc = OpticalEncoder(ratio=64, grid=G, bits=8)  # d = 4
    with torch.no_grad():
        for k, v in enumerate([0.9, 0.1, 0.5, 0.3]):
            enc.masks[k].fill_(v)
    # targets sorted: .10 .11 .12 .13 -> by rank: 0.1->.10, 0.3->.11, 0.5->.12, 0.9->.13
    means = enc.mean_intensities().detach()
    want = ((means.sort().values - torch.tensor([0.10, 0.11, 0.12, 0.13])).abs().mean())
    loss = enc.energy_loss(10, 50)
    assert torch.allclose(loss, want, atol=1e-6)
    loss.backward()
    assert enc.masks.grad.abs().sum() > 0
    assert enc.energy_loss(10, 50, p=2) < loss


def test_export_import_round_trip(tmp_path: Path) -> None:
    src = OpticalEncoder(ratio=8, grid=G, init="random_binary", seed=5)
    path = tmp_path / "masks.npy"
    meta = src.export_masks(path, source="test")
    codes, meta2 = load_masks(path, shape=(G, G))
    assert meta2 == meta and meta.ratio == 8 and meta.count == src.d and codes.dtype == np.uint8
    assert codes.tobytes() == src.mask_codes().tobytes()
    dst = OpticalEncoder(ratio=8, grid=G, init="uniform", seed=9)
    dst.load_masks_into(path, freeze=True)
    assert dst.frozen and not dst.masks.requires_grad
    assert torch.equal(dst.effective_masks(), src.effective_masks())
    dst.export_masks(tmp_path / "again.npy")
    assert (tmp_path / "again.npy").read_bytes() == path.read_bytes()
    dst.load_masks_into(path, freeze=False)
    assert not dst.frozen
    built = OpticalEncoder.from_masks_file(path)
    assert built.ratio == 8 and built.grid == G and built.frozen


def test_complementary_export_and_import(tmp_path: Path) -> None:
    enc = OpticalEncoder(ratio=8, grid=G, complementary=True, init="random_binary")
    meta = enc.export_masks(tmp_path / "c.npy")
    assert meta.count == 2 * enc.d
    other = OpticalEncoder(ratio=8, grid=G, complementary=True)
    other.load_masks_into(tmp_path / "c.npy")
    assert torch.equal(other.patterns(), enc.patterns())


def test_bad_mask_files_rejected(tmp_path: Path) -> None:
    enc = OpticalEncoder(ratio=8, grid=G)
    rng = np.random.default_rng(0)
    binary = (rng.random((enc.d, G, G)) > 0.5).astype(np.uint8)
    # wrong count
    save_masks(tmp_path / "few.npy", binary[:3], ratio=8)
    with pytest.raises(MaskFormatError, match="holds 3 masks but this encoder"):
        enc.load_masks_into(tmp_path / "few.npy")
    # wrong shape
    save_masks(tmp_path / "shape.npy", np.zeros((enc.d, 8, 8), np.uint8), ratio=8)
    with pytest.raises(MaskFormatError, match="16x16"):
        enc.load_masks_into(tmp_path / "shape.npy")
    # float dtype
    with pytest.raises(MaskFormatError, match="dtype uint8, got float64"):
        save_masks(tmp_path / "float.npy", binary.astype(np.float64), ratio=8)
    # value 2 in a 1-bit file (written around the validator, with a matching sidecar)
    bad = binary.copy()
    bad[0, 0, :5] = 2
    save_masks(tmp_path / "two.npy", bad, ratio=8, bits=2)
    with pytest.raises(MaskFormatError, match="2-bit masks but 1-bit"):
        enc.load_masks_into(tmp_path / "two.npy")
    with pytest.raises(MaskFormatError, match="5 pixel"):
        save_masks(tmp_path / "two1.npy", bad, ratio=8, bits=1)
    # non-binary 0/255 image masks
    with pytest.raises(MaskFormatError, match=r"only 0 and 1.*255.*m > 0.5"):
        save_masks(tmp_path / "img.npy", binary * 255, ratio=8)
    assert not enc.frozen  # failed loads leave the encoder untouched


def test_hadamard_rows_match_full_matrix() -> None:
    n = 64
    full = torch.tensor([[1.0]])
    while full.shape[0] < n:
        full = torch.cat([torch.cat([full, full], 1), torch.cat([full, -full], 1)], 0)
    rows = mask_init.hadamard_rows(torch.arange(n), n)
    assert torch.equal(rows, full)
    w = mask_init.walsh_1d(n)
    assert torch.equal(w @ w.t(), n * torch.eye(n))  # orthogonal rows
    sign_changes = (w[:, 1:] != w[:, :-1]).sum(1)
    assert torch.equal(sign_changes, torch.arange(n))  # Walsh (sequency) order
    assert torch.equal(mask_init.hadamard(1, 256), torch.ones(1, 256, 256))


def test_hadamard_masks_vary_along_both_axes() -> None:
    """Regression (issue 9): the old masks were flattened 1-D Walsh rows, constant along every image row."""
    m = mask_init.hadamard(16, 256)
    along_rows = (m[:, :, 1:] != m[:, :, :-1]).flatten(1).any(1)   # changes within a row
    along_cols = (m[:, 1:, :] != m[:, :-1, :]).flatten(1).any(1)   # changes within a column
    assert along_rows.sum() >= 7 and along_cols.sum() >= 7
    assert (along_rows & along_cols).any()  # some patterns vary along both axes at once
    # the second and third patterns are the two first-order patterns: one split left/right, one top/bottom
    assert {tuple(p.tolist()) for p in mask_init.sequency_order_2d(256)[1:3]} == {(0, 1), (1, 0)}


def test_hadamard_2d_is_separable_and_sequency_ordered() -> None:
    n = 16
    s = mask_init.walsh_hadamard_2d(n * n, n, signed=True)
    flat = s.view(n * n, -1)
    assert torch.equal(flat @ flat.t(), n * n * torch.eye(n * n))  # a complete orthogonal set
    w = mask_init.walsh_1d(n)
    for k, (u, v) in enumerate(mask_init.sequency_order_2d(n).tolist()):
        assert torch.equal(s[k], torch.outer(w[u], w[v]))
    total = (s[:, :, 1:] != s[:, :, :-1]).sum((1, 2)) // n + (s[:, 1:, :] != s[:, :-1, :]).sum((1, 2)) // n
    assert (total[1:] >= total[:-1]).all()  # non-decreasing total sequency u + v
    zero_one = mask_init.walsh_hadamard_2d(5, n)
    assert torch.equal(zero_one, (1 + s[:5]) / 2) and torch.isin(zero_one, torch.tensor([0.0, 1.0])).all()


def test_hadamard_256_rows_are_binary_and_orthogonal() -> None:
    m = mask_init.hadamard(8, 256)
    assert m.shape == (8, 256, 256) and torch.isin(m, torch.tensor([0.0, 1.0])).all()
    s = m.view(8, -1) * 2 - 1
    assert torch.equal(s @ s.t(), 65536 * torch.eye(8))


def test_other_inits() -> None:
    u = mask_init.uniform(4, G, seed=1)
    assert (u - 0.5).abs().max() <= 0.05 and u.std() > 0
    assert torch.equal(u, mask_init.uniform(4, G, seed=1))
    r = mask_init.random_binary(4, G, seed=1)
    assert torch.isin(r, torch.tensor([0.0, 1.0])).all() and 0.3 < r.mean() < 0.7
    enc = OpticalEncoder(ratio=G * G // 4, grid=G, init="hadamard")
    assert torch.equal(enc.effective_masks(), mask_init.hadamard(4, G))
    with pytest.raises(ValueError, match="unknown mask init"):
        OpticalEncoder(ratio=8, grid=G, init="gaussian")


def test_uniform01_is_the_official_u01_start() -> None:
    m = mask_init.uniform01(4, 64, seed=1)
    assert m.shape == (4, 64, 64) and float(m.min()) >= 0.0 and float(m.max()) < 1.0
    assert abs(float(m.mean()) - 0.5) < 0.01 and abs(float(m.var()) - 1 / 12) < 0.005  # U[0,1]: mean 1/2, var 1/12
    assert torch.equal(m, mask_init.uniform01(4, 64, seed=1))
    enc = OpticalEncoder(ratio=4096, init="uniform01", seed=1)
    assert torch.equal(enc.masks.detach(), mask_init.uniform01(16, 256, seed=1))


def test_identity_ste_passes_the_gradient_unchanged() -> None:
    m = torch.tensor([-0.5, 0.2, 0.7, 1.5], requires_grad=True)
    quantise_ste(m, 1, clip_gradient=False).sum().backward()
    assert torch.equal(m.grad, torch.ones(4))
    assert torch.equal(quantise_ste(m, 1, clip_gradient=False), quantise_ste(m, 1))


@pytest.mark.parametrize("bits", [1, 3, 8])
def test_one_pass_levels_equal_the_reference_formula(bits: int) -> None:
    m = torch.rand(5, 16, 16, generator=torch.Generator().manual_seed(bits)) * 1.4 - 0.2
    n = 2**bits - 1
    assert torch.equal(quantise_ste(m, bits), torch.round(m.clamp(0, 1) * n) / n)


def test_pattern_cache_serves_frozen_or_eval_masks_and_follows_every_change(tmp_path) -> None:
    enc = OpticalEncoder(ratio=64, grid=G, seed=1, complementary=True)

    def fresh() -> torch.Tensor:
        m = torch.round(enc.masks.detach().clamp(0, 1))
        return torch.cat([m, 1 - m])

    # learning masks under autograd: no cache, the gradient reaches the masks
    assert enc.patterns() is not enc.patterns() and enc.patterns().requires_grad
    with torch.no_grad():  # evaluation: quantised once, then served from the cache
        first = enc.patterns()
        assert enc.patterns() is first and torch.equal(first, fresh())
    opt = torch.optim.SGD([enc.masks], lr=10.0)  # an optimiser step changes the masks in place
    enc(torch.rand(2, 3, G, G))[:, : enc.d].sum().backward()  # (the complements' gradient would cancel it)
    opt.step()
    with torch.no_grad():
        after_step = enc.patterns()
    assert after_step is not first and torch.equal(after_step, fresh()) and not torch.equal(after_step, first)
    enc.freeze()  # frozen: cached even with autograd on
    assert enc.patterns() is enc.patterns() and not enc.patterns().requires_grad
    assert torch.equal(enc.effective_masks(), fresh()[: enc.d])
    other = OpticalEncoder(ratio=64, grid=G, seed=7, complementary=True)
    enc.load_state_dict(other.state_dict())  # a checkpoint
    assert torch.equal(enc.patterns(), fresh()) and torch.equal(enc.patterns(), other.patterns())
    path = tmp_path / "masks.npy"
    OpticalEncoder(ratio=64, grid=G, seed=9, init="random_binary").export_masks(path)
    enc.load_masks_into(path)  # a mask file
    assert torch.equal(enc.patterns(), fresh())
    with torch.no_grad():
        enc.masks.mul_(0).add_(1)  # any in-place edit
    assert torch.equal(enc.patterns()[: enc.d], torch.ones(enc.d, G, G))
    enc.double()  # dtype/device moves
    assert enc.patterns().dtype == torch.float64 and torch.equal(enc.patterns(), fresh())
