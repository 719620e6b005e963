"""P_S against FaRL pseudo ground truth: FaRL labels of the inputs in training, of the reconstructions when scored."""

from __future__ import annotations

import torch

from lsi.eval.face_parsing import FARL_CELEBM_LABELS
from lsi.labels import CELEBAMASK_CLASSES
from lsi.models.heads import AllHeads
from tests.fixtures.make_farl_fixture import write_constant_parser


def test_farl_labels_replace_the_dataset_masks(lsi_ckpt, tmp_path):
    parser = write_constant_parser(tmp_path / "face_parsing.farl.celebm_jit.pt", FARL_CELEBM_LABELS.index("hair"))
    heads = AllHeads(str(lsi_ckpt), heads=("segmentation",), num_attributes=21, farl_parser=str(parser))
    scene = torch.rand(2, 3, 256, 256)
    batch = {"image": scene, "segmentation": torch.full((2, 256, 256), -1)}
    latent = heads.latent(batch)
    train = heads.prepare_targets(batch, latent, "train")["segmentation"]   # FaRL of the input scenes
    test = heads.prepare_targets(batch, latent, "test")["segmentation"]     # FaRL of G(L)
    r = heads.generator.img_resolution
    assert train.shape == (2, 256, 256) and test.shape == (2, r, r)
    hair = CELEBAMASK_CLASSES.index("hair")
    assert (train[:, 64:192, 64:192] == hair).all() and (test[:, r // 4:3 * r // 4, r // 4:3 * r // 4] == hair).all()
    plain = AllHeads(str(lsi_ckpt), heads=("segmentation",), num_attributes=21)
    assert plain.prepare_targets(batch, latent, "test") is batch  # no FaRL: the dataset's labels
