"""One check of every file of the real path: all problems in one error, each with what it is and where to get it."""

from __future__ import annotations

import pytest

from lsi.world.paper_files import PAPER_FILES, MissingPaperFilesError, check_paper_files, default_paper_paths


def _complete_tree(root):
    paths = default_paper_paths(root)
    for role, spec in PAPER_FILES.items():
        p = paths[role]
        if spec.is_dir:
            (p / spec.markers[0]).mkdir(parents=True, exist_ok=True)
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(b"x")
    return paths


def test_complete_setup_passes_and_uses_the_documented_names(tmp_path):
    paths = _complete_tree(tmp_path)
    assert check_paper_files(paths) == paths
    names = {role: p.name for role, p in paths.items()}
    assert names["generator"] == "ffhq256.pkl" and names["identity"] == "model_ir_se50.pth"
    assert names["encoder"] == "encoder_styleganxl.pt" and names["dino"] == "dino_vitbase8_pretrain.pth"
    assert names["lpips_backbone"] == "alexnet-owt-7be5be79.pth"
    assert all(str(p.relative_to(tmp_path)).startswith(("weights/", "data/")) for p in paths.values())


def test_every_problem_is_listed_in_one_error(tmp_path):
    paths = _complete_tree(tmp_path)
    paths["generator"].unlink()
    paths["identity"].unlink()
    (paths["ffhq"] / "images1024x1024").rmdir()            # folder there, layout marker missing
    paths["dino"] = None                                   # not set
    paths["encoder"] = tmp_path / "weights"                # a folder where a file belongs
    with pytest.raises(MissingPaperFilesError) as info:
        check_paper_files(paths)
    msg = str(info.value)
    assert msg.startswith("5 file(s) of the paper's real path are missing")
    for needle in ("generator: file", "ffhq256.pkl", "autonomousvision/stylegan-xl",
                   "identity: file", "TreB1eN", "ffhq: folder", "images1024x1024, thumbnails128x128",
                   "dino: not set (conventional place: weights/dino_vitbase8_pretrain.pth)", "facebookresearch",
                   "encoder: file", "(it is a folder)", "vccimaging/latent-imaging"):
        assert needle in msg, needle
    assert isinstance(info.value, FileNotFoundError)


def test_optional_roles_and_unknown_names(tmp_path):
    paths = _complete_tree(tmp_path)
    subset = {"generator": paths["generator"], "afhq": None}
    assert check_paper_files(subset, required=["generator"]) == {"generator": paths["generator"]}
    with pytest.raises(MissingPaperFilesError, match="celeba_hq: not set"):
        check_paper_files(subset, required=["generator", "celeba_hq"])
    with pytest.raises(ValueError, match=r"unknown paper file role\(s\) \['stylegan'\]"):
        check_paper_files({"stylegan": paths["generator"]})
