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


def test_module_refuses_a_checkpoint_of_another_world_and_dino_without_weights():
    import pytest

    from lsi.models.imaging import LatentImagingModule

    module = LatentImagingModule(ratio=4096, digital={"hidden": 16, "depths": [1, 1, 1]})
    num_ws, w_dim = module.latent_shape
    meta = {"ratio": 4096, "d": module.optical.d, "bits": 1, "num_ws": 18, "w_dim": 512, "generator": "ffhq256.pkl"}
    with pytest.raises(ValueError, match=r"W\+ \[18, 512\] of generator 'ffhq256.pkl'.*model.init_args.world"):
        module.on_load_checkpoint({"lsi": meta})
    module.on_load_checkpoint({"lsi": {**meta, "num_ws": num_ws, "w_dim": w_dim}})  # the same world: accepted
    with pytest.raises(ValueError, match="world.dino"):  # the embedded world has no DINO ViT: fail at once
        LatentImagingModule(ratio=4096, lambda_dino=0.1, digital={"hidden": 16, "depths": [1, 1, 1]})
