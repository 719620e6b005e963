"""The group-wise optimiser: its Adam is torch's Adam; its Lion is the published update."""

from __future__ import annotations

import copy

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


def test_adam_group_with_weight_decay_matches_torch_adamw_over_many_parameters():
    """The fused update over a whole group: several shapes, decoupled weight decay, a parameter that misses a
    gradient now and then (its step count lags), equal to torch's AdamW parameter by parameter."""
    g = torch.Generator().manual_seed(1)
    shapes = [(7,), (4, 3), (2, 16, 16)]
    ours_p = [torch.randn(s, generator=g, requires_grad=True) for s in shapes]
    ref_p = [p.detach().clone().requires_grad_(True) for p in ours_p]
    ours = GroupwiseOptimizer([{"params": ours_p, "lr": 3e-3, "weight_decay": 0.1, "betas": (0.8, 0.99)}])
    ref = torch.optim.AdamW(ref_p, lr=3e-3, weight_decay=0.1, betas=(0.8, 0.99))
    for step in range(6):
        for i, (a, b) in enumerate(zip(ours_p, ref_p)):
            grad = None if (i == 1 and step % 2) else torch.randn(a.shape, generator=g)
            a.grad = None if grad is None else grad.clone()
            b.grad = None if grad is None else grad.clone()
        ours.step()
        ref.step()
    for a, b in zip(ours_p, ref_p):
        assert torch.allclose(a, b, atol=1e-6)
    assert float(ours.state[ours_p[1]]["step"]) == 3 and float(ours.state[ours_p[0]]["step"]) == 6


def test_adam_resumes_a_state_saved_with_float64_step():
    """Optimiser states written before the fused update kept ``step`` as float64; they resume unchanged."""
    a = torch.ones(3, requires_grad=True)
    opt = GroupwiseOptimizer([{"params": [a], "lr": 0.1}])
    a.grad = torch.ones(3)
    opt.step()
    state = copy.deepcopy(opt.state_dict())  # state_dict() holds the live moment tensors
    state["state"][0]["step"] = state["state"][0]["step"].double()
    b = torch.ones(3, requires_grad=True)
    fresh = GroupwiseOptimizer([{"params": [b], "lr": 0.1}])
    fresh.load_state_dict(state)
    with torch.no_grad():
        b.copy_(a)
    a.grad, b.grad = torch.ones(3), torch.ones(3)
    opt.step()
    fresh.step()
    assert torch.equal(a, b) and float(fresh.state[b]["step"]) == 2
