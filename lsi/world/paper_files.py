"""The files of the paper's real path: what each one is, where to get it, and one check of all of them at once.

``check_paper_files({role: path})`` looks at every role given and raises **one** :class:`MissingPaperFilesError`
listing every missing or misplaced file, each with what it is, where to get it and the expected name - so a
researcher fixes their setup in one pass instead of one error at a time. It returns ``{role: Path}`` otherwise.
A role whose path is ``None`` / empty is "not set" and reported as missing when it is required
(``required=``, default: every role in the mapping).

:data:`PAPER_FILES` holds the roles; :func:`default_paper_paths` the ``weights/`` + ``data/`` convention of
docs/reproduce-paper.md (file names as the original sources publish them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PAPER_FILES", "MissingPaperFilesError", "PaperFile", "check_paper_files", "default_paper_paths"]


class MissingPaperFilesError(FileNotFoundError, ValueError):
    """One or more files of the real path are missing (the message lists every one)."""


@dataclass(frozen=True)
class PaperFile:
    what: str
    source: str
    default: str                       # relative to the project root (docs/reproduce-paper.md)
    is_dir: bool = False
    markers: tuple[str, ...] = ()      # for a folder: at least one of these must exist inside it


PAPER_FILES: dict[str, PaperFile] = {
    "generator": PaperFile(
        "StyleGAN-XL FFHQ 256x256 network pickle (G_ema is read as data, no code runs)",
        "https://s3.eu-central-1.amazonaws.com/avg-projects/stylegan_xl/models/ffhq256.pkl (StyleGAN-XL, "
        "github.com/autonomousvision/stylegan-xl), also linked as 'FFHQ StyleGANXL' by github.com/vccimaging/"
        "latent-imaging", "weights/ffhq256.pkl"),
    "encoder": PaperFile(
        "pSp/LSI inversion encoder (GradualStyleEncoder, IR-SE-50) trained for StyleGAN-XL FFHQ-256",
        "'Inversion Model StyleGANXL' (encoder_styleganxl.pt) in "
        "github.com/vccimaging/latent-imaging#pretrained-models",
        "weights/encoder_styleganxl.pt"),
    "identity": PaperFile(
        "IR-SE50 ArcFace for the ID loss",
        "'IR-SE50 Model' (model_ir_se50.pth, TreB1eN/InsightFace_Pytorch) linked by github.com/vccimaging/"
        "latent-imaging and github.com/eladrich/pixel2style2pixel", "weights/model_ir_se50.pth"),
    "dino": PaperFile(
        "DINO ViT-B/8 weights for the DINO loss",
        "https://dl.fbaipublicfiles.com/dino/dino_vitbase8_pretrain/dino_vitbase8_pretrain.pth (facebookresearch/"
        "dino) or model.safetensors of huggingface.co/timm/vit_base_patch8_224.dino",
        "weights/dino_vitbase8_pretrain.pth"),
    "lpips_backbone": PaperFile(
        "LPIPS AlexNet backbone (torchvision ImageNet weights; the linear heads ship with the lpips package)",
        "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth", "weights/alexnet-owt-7be5be79.pth"),
    "celeba_hq": PaperFile(
        "CelebA-HQ images with CelebAMask-HQ annotations (CelebA-HQ-img/<i>.jpg, attribute file, part masks)",
        "CelebAMask-HQ, github.com/switchablenorms/CelebAMask-HQ (CelebA-HQ: github.com/tkarras/"
        "progressive_growing_of_gans)", "data/CelebAMask-HQ", True, ("CelebA-HQ-img",)),
    "celeba": PaperFile(
        "CelebA annotations (list_attr_celeba.txt, identity_CelebA.txt) for the CelebA-HQ-to-CelebA layout",
        "CelebA, mmlab.ie.cuhk.edu.hk/projects/CelebA.html (folder Anno/)", "data/CelebA", True,
        ("list_attr_celeba.txt", "Anno/list_attr_celeba.txt")),
    "ffhq": PaperFile(
        "FFHQ images (images1024x1024/<thousands>/<%05d>.png or thumbnails128x128/)",
        "github.com/NVlabs/ffhq-dataset", "data/FFHQ", True, ("images1024x1024", "thumbnails128x128")),
    "afhq": PaperFile(
        "AFHQ images (train|val/{cat,dog,wild}/*.jpg|png), the paper's second domain",
        "github.com/clovaai/stargan-v2 (AFHQ)", "data/afhq", True, ("train", "val")),
}


def default_paper_paths(root: str | Path = ".") -> dict[str, Path]:
    """``{role: root / default path}`` for every role of :data:`PAPER_FILES`."""
    return {role: Path(root) / spec.default for role, spec in PAPER_FILES.items()}


def _problem(role: str, spec: PaperFile, path: Path | None) -> str | None:
    tail = f"what: {spec.what}; get it from {spec.source}; expected name: {Path(spec.default).name}"
    if path is None:
        return f"- {role}: not set (conventional place: {spec.default}); {tail}"
    if spec.is_dir:
        if not path.is_dir():
            return f"- {role}: folder {path} does not exist; {tail}"
        if spec.markers and not any((path / m).exists() for m in spec.markers):
            return f"- {role}: folder {path} has none of {', '.join(spec.markers)} inside; {tail}"
        return None
    if not path.is_file():
        return f"- {role}: file {path} does not exist{' (it is a folder)' if path.is_dir() else ''}; {tail}"
    return None


def check_paper_files(paths: Mapping[str, str | Path | None],
                      required: Iterable[str] | None = None) -> dict[str, Path]:
    """Check every given role; one :class:`MissingPaperFilesError` lists all problems. Returns ``{role: Path}``.

    ``required``: the roles that must be present (default: all roles in ``paths``); a role in ``required`` but not
    in ``paths`` counts as not set. Unknown role names are an error (listing the known ones).
    """
    required = set(paths) if required is None else set(required)
    unknown = sorted((set(paths) | required) - set(PAPER_FILES))
    if unknown:
        raise ValueError(f"unknown paper file role(s) {unknown}; known roles: {sorted(PAPER_FILES)}")
    problems, found = [], {}
    for role in [r for r in PAPER_FILES if r in paths or r in required]:
        value = paths.get(role)
        path = Path(value).expanduser() if value not in (None, "") else None
        if path is None and role not in required:
            continue
        problem = _problem(role, PAPER_FILES[role], path)
        if problem:
            problems.append(problem)
        elif path is not None:
            found[role] = path
    if problems:
        raise MissingPaperFilesError(f"{len(problems)} file(s) of the paper's real path are missing "
                                     "(docs/reproduce-paper.md says where each goes):\n" + "\n".join(problems))
    return found
