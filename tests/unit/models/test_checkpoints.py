"""Checkpoints written before the models moved into lsi/models/ still load (their class path is rewritten)."""

import io

import torch

from lsi.models.checkpoints import loadable_checkpoint
from lsi.models.imaging import LatentImagingModule, load_lsi


def test_old_class_path_is_mapped_to_the_new_home(lsi_ckpt, tmp_path):
    ckpt = torch.load(lsi_ckpt, map_location="cpu", weights_only=True)
    assert ckpt["hyper_parameters"]["_class_path"] == "lsi.models.imaging.LatentImagingModule"
    assert loadable_checkpoint(lsi_ckpt) == lsi_ckpt  # current checkpoints pass through untouched
    ckpt["hyper_parameters"]["_class_path"] = "lsi.module.LatentImagingModule"  # as written before the move
    old = tmp_path / "old.ckpt"
    torch.save(ckpt, old)
    buffer = loadable_checkpoint(old)
    assert isinstance(buffer, io.BytesIO)
    rewritten = torch.load(buffer, map_location="cpu", weights_only=True)
    assert rewritten["hyper_parameters"]["_class_path"] == "lsi.models.imaging.LatentImagingModule"
    module = load_lsi(str(old))
    assert isinstance(module, LatentImagingModule) and not module.training
    assert module.encoder_fingerprint() == load_lsi(str(lsi_ckpt)).encoder_fingerprint()
