"""Tests for the digital encoder D_theta (lsi.models.digital_encoder)."""

from __future__ import annotations

import itertools

import pytest
import torch

from lsi.models.digital_encoder import DigitalEncoder, SpatialGatingMLP, default_groups


@pytest.mark.parametrize("num_ws, w_dim, d_in", [(10, 128, 128), (18, 512, 32), (14, 64, 4), (1, 16, 8), (3, 8, 2)])
def test_output_shape(num_ws: int, w_dim: int, d_in: int) -> None:
    enc = DigitalEncoder(d_in, num_ws, w_dim, hidden=32, depths=(1, 1, 2))
    y = enc(torch.rand(5, d_in))
    assert y.shape == (5, num_ws, w_dim)
    assert torch.isfinite(y).all()


def test_default_groups() -> None:
    assert default_groups(18) == (4, 8)
    assert default_groups(10) == (2, 4)
    assert default_groups(1) == (1, 1)
    enc = DigitalEncoder(8, 18, 16, hidden=16, depths=(4, 5, 6))
    assert enc.bounds == (0, 4, 8, 18)
    depths = [len(g.mixers) for g in enc.level_groups]
    sizes = [g.n for g in enc.level_groups]
    assert depths == [4, 5, 6] and sizes == [4, 4, 10]


OPTIONS = list(itertools.product(["linear", "attention"], [True, False], ["sum", "gmlp"], [True, False]))


@pytest.mark.parametrize("block, residual, aggregate, mixer", OPTIONS)
def test_option_combinations_forward_backward(block: str, residual: bool, aggregate: str, mixer: bool) -> None:
    torch.manual_seed(0)
    enc = DigitalEncoder(12, 6, 16, hidden=32, depths=(1, 2, 2), block=block, residual=residual,
                         aggregate=aggregate, mixer=mixer, dropout=0.1, heads=2, tokens=4, groups=(2, 3))
    enc.train()
    x = torch.rand(4, 12)
    y = enc(x)
    assert y.shape == (4, 6, 16)
    y.square().sum().backward()
    grads = [p.grad for p in enc.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    # the stems and the heads of every group learn
    for group in enc.level_groups:
        assert group.stem_weight.grad.abs().sum() > 0
        assert group.head.weight.grad.abs().sum() > 0


def test_output_depends_on_input() -> None:
    torch.manual_seed(0)
    enc = DigitalEncoder(16, 10, 32, hidden=32, depths=(1, 1, 1)).eval()
    a, b = torch.rand(2, 16), torch.rand(2, 16)
    ya, yb = enc(a), enc(b)
    assert (ya - yb).abs().mean() > 1e-4
    assert torch.equal(enc(a), ya)  # deterministic in eval
    # every level of the output reacts to the input
    assert ((ya[0] - ya[1]).abs().sum(dim=1) > 0).all()


def test_hierarchical_feed_reaches_later_groups() -> None:
    torch.manual_seed(0)
    enc = DigitalEncoder(8, 6, 8, hidden=16, depths=(1, 1, 1), groups=(2, 4), mixer=False).eval()
    x = torch.rand(3, 8)
    base = enc(x)
    with torch.no_grad():
        enc.level_groups[0].head.bias.add_(1.0)  # change only the coarse outputs
    out = enc(x)
    assert not torch.allclose(out[:, 2:], base[:, 2:])  # mid and fine see the coarse summary


def test_gmlp_mixer_mixes_levels() -> None:
    torch.manual_seed(0)
    sgu = SpatialGatingMLP(levels=5, dim=8)
    x = torch.randn(2, 5, 8)
    assert torch.equal(sgu(x), x)  # identity at init
    with torch.no_grad():
        for p in sgu.parameters():
            p.add_(0.1 * torch.randn_like(p))
    x2 = x.clone()
    x2[:, 0] += torch.randn(2, 8)  # (a constant shift would vanish in the LayerNorm)
    diff = (sgu(x2) - sgu(x)).abs().sum(dim=(0, 2))
    assert (diff[1:] > 0).all()  # a change at level 0 reaches the other levels


def test_invalid_configurations() -> None:
    with pytest.raises(ValueError, match="block"):
        DigitalEncoder(8, 4, 8, block="conv")
    with pytest.raises(ValueError, match="groups"):
        DigitalEncoder(8, 4, 8, groups=(3, 2))
    with pytest.raises(ValueError, match="divisible"):
        DigitalEncoder(8, 4, 8, hidden=30, block="attention")
    with pytest.raises(ValueError, match=r"readings must be \[B, 8\]"):
        DigitalEncoder(8, 4, 8, hidden=16)(torch.rand(2, 9))


def test_paper_scale_preset() -> None:
    enc = DigitalEncoder.paper_scale(128, hidden=64, tokens=4, heads=2)
    assert (enc.num_ws, enc.w_dim) == (18, 512)
    assert enc.level_groups[0].mixers[0].__class__.__name__ == "GroupedTokenAttention"
    assert enc(torch.rand(2, 128)).shape == (2, 18, 512)
    full = DigitalEncoder.paper_scale(128)
    assert full.hidden == 1024
