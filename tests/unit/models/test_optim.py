"""The group-wise optimiser: its Adam is torch's Adam; its Lion is the published update."""

from __future__ import annotations

import torch

from lsi.models.optim import GroupwiseOptimizer


def test_adam_group_matches_torch_adam():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(5, 3, generator=g, requires_grad=True)
    b = a.detach().clone().requires_grad_(True)
    ours = GroupwiseOptimizer([{"params": [a], "lr": 1e-2, "algorithm": "adam"}])
    ref = torch.optim.Adam([b], lr=1e-2)
    for _ in range(5):
        grad = torch.randn(5, 3, generator=g)
        a.grad, b.grad = grad.clone(), grad.clone()
        ours.step()
        ref.step()
    assert torch.allclose(a, b, atol=1e-6)


def test_lion_update_by_hand():
    p = torch.tensor([0.5, 0.5, 0.5], requires_grad=True)
    opt = GroupwiseOptimizer([{"params": [p], "lr": 0.1, "algorithm": "lion", "weight_decay": 0.5}])
    p.grad = torch.tensor([2.0, -0.001, 0.0])
    opt.step()
    # c = 0.9 * 0 + 0.1 * g -> sign; p = p (1 - 0.1 * 0.5) - 0.1 sign(c)
    assert torch.allclose(p.detach(), torch.tensor([0.375, 0.575, 0.475]))
    assert torch.allclose(opt.state[p]["exp_avg"], 0.01 * torch.tensor([2.0, -0.001, 0.0]))
    p.grad = torch.tensor([-1.0, -1.0, 1.0])
    opt.step()  # c = 0.9 m + 0.1 g = [0.018 - 0.1, ..] -> signs [-1, -1, +1]
    assert torch.allclose(p.detach(), torch.tensor([0.375 * 0.95 + 0.1, 0.575 * 0.95 + 0.1, 0.475 * 0.95 - 0.1]))


def test_two_groups_two_rules_and_frozen_parameters():
    w = torch.ones(2, requires_grad=True)
    m = torch.ones(2, requires_grad=True)
    opt = GroupwiseOptimizer([{"params": [w], "lr": 0.1, "name": "encoder"},
                              {"params": [m], "lr": 0.1, "algorithm": "lion", "name": "masks"}])
    w.grad = torch.ones(2)  # masks frozen: no grad, no update, no state
    opt.step()
    assert torch.equal(m, torch.ones(2)) and m not in opt.state and not torch.equal(w, torch.ones(2))
    assert "masks: lion" in repr(opt)
