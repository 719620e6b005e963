"""FaRL pseudo ground truth: facer's TorchScript parser format, the celebm alignment, FaRL -> CelebAMask-HQ labels."""

from __future__ import annotations

import pytest
import torch

from lsi.eval.face_parsing import (
    ALIGNED_FACE_POINTS_256,
    FARL_CELEBM_LABELS,
    FarlFaceParser,
    FarlFileError,
    align_grids,
    face_quad,
    similarity_matrix,
)
from lsi.labels import CELEBAMASK_CLASSES
from tests.fixtures.make_farl_fixture import write_constant_parser, write_split_parser


def test_similarity_matrix_recovers_a_known_similarity():
    src = torch.rand(2, 4, 2) * 100
    angle, scale, shift = 0.3, 1.7, torch.tensor([5.0, -3.0])
    rot = scale * torch.tensor([[torch.cos(torch.tensor(angle)), torch.sin(torch.tensor(angle))],
                                [-torch.sin(torch.tensor(angle)), torch.cos(torch.tensor(angle))]])
    dst = src @ rot.T + shift
    m = similarity_matrix(src, dst)
    assert torch.allclose(m[:, :2, :2], rot.expand(2, -1, -1), atol=1e-4)
    assert torch.allclose(m[:, :2, 2], shift.expand(2, -1), atol=1e-3)


def test_face_quad_is_ffhqs_crop_of_the_aligned_points():
    quad = face_quad(ALIGNED_FACE_POINTS_256[None])[0]
    side = float((quad[1] - quad[0]).norm())
    eye_to_eye = float((ALIGNED_FACE_POINTS_256[1] - ALIGNED_FACE_POINTS_256[0]).norm())
    assert side == pytest.approx(2 * 2 * eye_to_eye, rel=1e-4)  # half-side = max(2|e-e|, 1.8|e-m|) = 2|e-e| here
    assert float((quad[2] - quad[1]).norm()) == pytest.approx(side, rel=1e-5)  # a square
    assert float(quad.mean(0)[0]) == pytest.approx(130.65, abs=0.1)  # centre: eyes + 0.1 of the way to the mouth


def test_grids_round_trip():
    corners = torch.tensor([[0.0, 0.0], [448.0, 0.0], [448.0, 448.0], [0.0, 448.0]])[None]
    m = similarity_matrix(face_quad(ALIGNED_FACE_POINTS_256[None]), corners)
    grid, inv_grid = align_grids(m, (256, 256))
    assert grid.shape == (1, 448, 448, 2) and inv_grid.shape == (1, 256, 256, 2)
    img = torch.rand(1, 3, 256, 256)
    there = torch.nn.functional.grid_sample(img, grid, align_corners=False)
    back = torch.nn.functional.grid_sample(there, inv_grid, align_corners=False)
    inner = (slice(None), slice(None), slice(40, 216), slice(40, 216))  # away from the crop's edges
    assert (back - img)[inner].abs().mean() < 0.1  # resampling blur only


@pytest.mark.parametrize("farl", range(19))
def test_farl_labels_map_to_celebamask_classes(tmp_path, farl):
    parser = FarlFaceParser(write_constant_parser(tmp_path / "parser_jit.pt", farl))
    labels = parser.parse(torch.rand(1, 3, 64, 64))
    expected = {"face": "skin", "rr": "r_ear", "lr": "l_ear", "rb": "r_brow", "lb": "l_brow", "re": "r_eye",
                "le": "l_eye", "imouth": "mouth", "llip": "l_lip", "ulip": "u_lip", "eyeg": "eye_g", "earr": "ear_r"}
    name = FARL_CELEBM_LABELS[farl]
    assert labels.dtype == torch.int64 and labels.shape == (1, 64, 64)
    assert (labels[0, 16:48, 16:48] == CELEBAMASK_CLASSES.index(expected.get(name, name))).all()


def test_alignment_puts_the_face_centre_line_where_facer_does(tmp_path):
    hair, face = FARL_CELEBM_LABELS.index("hair"), FARL_CELEBM_LABELS.index("face")
    parser = FarlFaceParser(write_split_parser(tmp_path / "split_jit.pt", hair, face))
    labels = parser.parse(torch.rand(2, 3, 256, 256))
    row = labels[0, 150]
    assert (row[100:125] == CELEBAMASK_CLASSES.index("hair")).all()   # left of the centre line x ~ 130.6
    assert (row[137:160] == CELEBAMASK_CLASSES.index("skin")).all()
    assert torch.equal(labels[0], labels[1])


def test_files_that_are_not_torchscript_are_refused(tmp_path):
    with pytest.raises(FarlFileError, match="does not exist"):
        FarlFaceParser(tmp_path / "missing_jit.pt")
    plain = tmp_path / "state.pt"
    torch.save({"w": torch.zeros(2)}, plain)  # a zip, but a pickle: never handed to torch.jit.load
    with pytest.raises(FarlFileError, match="not a TorchScript archive"):
        FarlFaceParser(plain)
    (tmp_path / "junk.pt").write_bytes(b"not a zip")
    with pytest.raises(FarlFileError, match="TorchScript"):
        FarlFaceParser(tmp_path / "junk.pt")
