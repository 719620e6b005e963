"""Heads' losses skip unknown labels (real CelebA-HQ has no landmarks, the celeba layout no masks)."""

from __future__ import annotations

import torch

from lsi.models.heads import focal_loss, known_rows


def test_focal_loss_ignores_unknown_pixels():
    logits = torch.randn(2, 4, 3, 3, requires_grad=True)
    target = torch.randint(0, 4, (2, 3, 3))
    partial = target.clone()
    partial[1] = -1
    assert torch.allclose(focal_loss(logits, partial), focal_loss(logits[:1], target[:1]))
    unknown = focal_loss(logits, torch.full_like(target, -1))
    assert unknown.item() == 0.0
    unknown.backward()  # still part of the graph


def test_known_rows_marks_nan_landmarks():
    lmk = torch.rand(3, 68, 2)
    lmk[1, 5, 0] = float("nan")
    assert known_rows(lmk).tolist() == [True, False, True]
