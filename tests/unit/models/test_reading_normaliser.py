"""The reading normaliser: fixed statistics, fitted explicitly, never moved by forward passes; old checkpoints."""

from __future__ import annotations

import pytest
import torch

from lsi.models.reading_normaliser import ReadingNormaliser


def test_fit_then_fixed_in_train_and_eval():
    norm = ReadingNormaliser(4)
    assert torch.equal(norm(torch.ones(2, 4)), torch.ones(2, 4))  # identity until fitted
    r = 0.5 + 0.01 * torch.randn(1000, 4, generator=torch.Generator().manual_seed(0))
    norm.fit(r)
    z = norm(r)
    assert torch.allclose(z.mean(0), torch.zeros(4), atol=1e-4) and torch.allclose(z.std(0), torch.ones(4), atol=1e-3)
    before = norm.state_dict()
    norm.train()
    norm(torch.randn(8, 4) * 10)  # a training forward pass moves nothing (unlike a BatchNorm's running stats)
    assert all(torch.equal(before[k], v) for k, v in norm.state_dict().items())
    norm.eval()
    assert torch.equal(norm(r[:3]), z[:3])


def test_bad_readings_are_refused():
    norm = ReadingNormaliser(3)
    with pytest.raises(ValueError, match=r"\[N, 3\]"):
        norm.fit(torch.zeros(5, 4))
    bad = torch.zeros(5, 3)
    bad[2, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        norm.fit(bad)
    with pytest.raises(ValueError, match=r"\[B, 3\]"):
        norm(torch.zeros(2, 2))


def test_checkpoints_with_the_old_batchnorm_load():
    bn = torch.nn.BatchNorm1d(3, affine=False)
    bn.running_mean.copy_(torch.tensor([0.5, 0.4, 0.3]))
    bn.running_var.copy_(torch.tensor([4.0, 1.0, 0.25]))
    norm = ReadingNormaliser(3)
    norm.load_state_dict(bn.state_dict())
    y = torch.tensor([[0.5, 1.4, 0.8]])
    bn.eval()
    assert torch.allclose(norm(y), bn(y), atol=1e-6) and bool(norm.fitted)


def test_recentre_moves_only_the_mean():
    g = torch.Generator().manual_seed(1)
    norm = ReadingNormaliser(6, whiten=True)
    with pytest.raises(ValueError, match="fitted"):
        norm.recentre(torch.rand(4, 6, generator=g))
    norm.fit(torch.rand(500, 6, generator=g))
    transform = norm.transform.clone()
    measured = 0.3 + torch.rand(20, 6, generator=g)
    norm.recentre(measured)
    assert torch.equal(norm.transform, transform)
    assert torch.allclose(norm.mean, measured.mean(0)) and torch.allclose(norm(measured).mean(0), torch.zeros(6),
                                                                          atol=1e-5)
    with pytest.raises(ValueError, match="NaN"):
        norm.recentre(torch.full((2, 6), float("nan")))
