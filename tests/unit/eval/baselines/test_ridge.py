"""The latent ridge read-out equals a reference least-squares solution and recovers a linear map."""

from __future__ import annotations

import pytest
import torch

from lsi.eval.baselines import BaselineError, LatentRidge, TrainingData
from lsi.world.frozen import frozen_world


def test_the_read_out_equals_the_augmented_least_squares_solution(tmp_path):
    """The fitted map (readings standardised on the training split) is the least-squares solution of
    ``[x 1; sqrt(lam N) I 0] [W; b] = [y; 0]``: ridge with an unpenalised intercept."""
    gen = frozen_world().generator
    n, d, latent = 120, 6, gen.num_ws * gen.w_dim
    g = torch.Generator().manual_seed(0)
    readings = 0.5 + 0.1 * torch.rand(n, d, generator=g, dtype=torch.float64)
    latents = torch.randn(n, gen.num_ws, gen.w_dim, generator=g, dtype=torch.float64)
    data = TrainingData(torch.zeros(n, 3, 64, 64, dtype=torch.float16), torch.arange(n) // 4,
                        {"lsi_ridge": readings.float()}, latents.float())
    ridge = LatentRidge(torch.rand(d, 16, 16), gen)
    ridge.fit(data, tmp_path, progress=False)
    x = readings.float().double()
    xs = (x - x.mean(0)) / x.std(0)
    lam = ridge.lam * n
    a = torch.cat([torch.cat([xs, torch.ones(n, 1, dtype=torch.float64)], 1),
                   torch.cat([lam ** 0.5 * torch.eye(d, dtype=torch.float64), torch.zeros(d, 1, dtype=torch.float64)],
                             1)])
    ref = torch.linalg.lstsq(a, torch.cat([latents.flatten(1), torch.zeros(d, latent, dtype=torch.float64)])).solution
    assert torch.allclose(ridge.weight.double(), ref[:d], atol=1e-4)
    assert torch.allclose(ridge.bias.double(), ref[d], atol=1e-4)


def test_fit_recovers_a_linear_map_from_readings_to_latents(tmp_path):
    gen = frozen_world().generator
    d, n, latent = 8, 400, gen.num_ws * gen.w_dim
    g = torch.Generator().manual_seed(1)
    patterns = (torch.rand(d, 16, 16, generator=g) < 0.5).float()
    readings = torch.rand(n, d, generator=g)
    true_w = torch.randn(d, latent, generator=g) * 0.1
    latents = (readings @ true_w + gen.w_avg.repeat(gen.num_ws)).view(n, gen.num_ws, gen.w_dim)
    data = TrainingData(torch.zeros(n, 3, 64, 64, dtype=torch.float16), torch.arange(n) // 4,
                        {"lsi_ridge": readings}, latents)
    ridge = LatentRidge(patterns, gen)
    info = ridge.fit(data, tmp_path, progress=False)
    assert info["lambda"] == min(info["holdout_latent_mse"], key=info["holdout_latent_mse"].get)
    assert torch.allclose(ridge.latent(readings[:5]), latents[:5], atol=1e-3)
    restored = LatentRidge(patterns, gen)
    restored.load_state_dict(ridge.state_dict())
    assert restored.lam == ridge.lam and torch.equal(restored.latent(readings[:5]), ridge.latent(readings[:5]))


def test_reconstruction_is_g_of_the_latent_upsampled(tmp_path):
    gen = frozen_world().generator
    ridge = LatentRidge((torch.rand(4, 256, 256) < 0.5).float(), gen)            # untrained: latent = w_avg
    rec = ridge.reconstruct(torch.rand(2, 4))
    expected = gen.synthesis(gen.w_avg.expand(1, gen.num_ws, -1)).clamp(-1, 1) * 0.5 + 0.5
    assert rec.shape == (2, 3, 256, 256)
    assert torch.allclose(rec[:, :, ::4, ::4], expected.expand(2, -1, -1, -1), atol=1e-5)


def test_fit_needs_readings_and_latents(tmp_path):
    ridge = LatentRidge(torch.rand(4, 16, 16), frozen_world().generator)
    with pytest.raises(BaselineError, match="readings"):
        ridge.fit(TrainingData(torch.zeros(4, 3, 64, 64), torch.arange(4)), tmp_path)
