"""FaRL face parsing as the paper's pseudo ground truth for P_S (read from a local file; nothing is downloaded).

The paper evaluates P_S against FaRL's segmentation of the reconstruction I' ("generating masks using reconstructed
faces I' with FaRL as ground truth"); the official training labels the input images the same way. FaRL's
CelebAMask-HQ parser is published by the ``facer`` toolkit as a TorchScript archive,
``face_parsing.farl.celebm.main_ema_181500_jit.pt`` (github.com/FacePerceiver/facer, release models-v1):
``net(x [B,3,448,448] float in [0,1]) -> (logits [B,19,448,448], extra)``. :class:`FarlFaceParser` runs it the
way ``facer.face_parser('farl/celebm/448')`` does, written here from those facts (the alignment grids agree with
facer's own transform code to 1e-6, checked locally):

1. face points: the official LSI code does not detect faces on its aligned 256 px images, it assumes the five fixed
   points :data:`ALIGNED_FACE_POINTS_256` (eyes, nose, mouth corners; scaled to the image size here);
2. the ``celebm`` alignment: FFHQ's oriented crop rectangle of the points (:func:`face_quad`: eye and mouth centres,
   side ``max(2 |eye-eye|, 1.8 |eye-mouth|)``, centred 0.1 of the way from the eyes to the mouth) mapped onto the
   448 x 448 square by a least-squares similarity transform (:func:`similarity_matrix`);
3. bilinear sampling into the square (pixel centres, ``align_corners=False``), the network, and the logits sampled
   back onto the image's own pixels (outside the square: all logits 0, i.e. background);
4. argmax, and FaRL's label order (:data:`FARL_CELEBM_LABELS`) mapped to CelebAMask-HQ's
   (:data:`lsi.labels.CELEBAMASK_CLASSES`), so the labels compare with every other segmentation in the project.

Loading a TorchScript archive runs the TorchScript program it holds (torch's own interpreter, no Python from the
file): the path is given explicitly by the user, and a file that is not a TorchScript archive (e.g. a pickle) is
refused before anything is read. FaRL's landmark model (``ibug300w``) needs FaRL's ViT backbone and is not built here.
"""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import torch
import torch.nn.functional as F

from lsi.labels import CELEBAMASK_CLASSES

__all__ = ["ALIGNED_FACE_POINTS_256", "FARL_CELEBM_LABELS", "FARL_SOURCE", "FarlFaceParser", "FarlFileError",
           "align_grids", "face_quad", "similarity_matrix"]

FARL_SOURCE = ("face_parsing.farl.celebm.main_ema_181500_jit.pt from the facer toolkit's release models-v1 "
               "(https://github.com/FacePerceiver/facer/releases/tag/models-v1)")
#: FaRL's CelebAMask-HQ parser classes, in its output order (facer's ``farl/celebm/448`` label names)
FARL_CELEBM_LABELS = ("background", "neck", "face", "cloth", "rr", "lr", "rb", "lb", "re", "le", "nose", "imouth",
                      "llip", "ulip", "hair", "eyeg", "hat", "earr", "neck_l")
_TO_CELEBAMASK = {"background": "background", "neck": "neck", "face": "skin", "cloth": "cloth", "rr": "r_ear",
                  "lr": "l_ear", "rb": "r_brow", "lb": "l_brow", "re": "r_eye", "le": "l_eye", "nose": "nose",
                  "imouth": "mouth", "llip": "l_lip", "ulip": "u_lip", "hair": "hair", "eyeg": "eye_g", "hat": "hat",
                  "earr": "ear_r", "neck_l": "neck_l"}
#: FaRL output index -> CelebAMask-HQ class index
FARL_TO_CELEBAMASK = torch.tensor([CELEBAMASK_CLASSES.index(_TO_CELEBAMASK[n]) for n in FARL_CELEBM_LABELS])
#: the five points (left eye, right eye, nose, left and right mouth corner; x, y in pixels) that the official LSI code
#: assumes for every aligned 256 x 256 face instead of running a detector
ALIGNED_FACE_POINTS_256 = torch.tensor([[97.1746, 115.4525], [163.3413, 116.1134], [134.1400, 160.9091],
                                        [103.5579, 189.0539], [154.8323, 189.5556]])
WARPED_SIZE = 448


class FarlFileError(ValueError):
    """The FaRL file is missing or not the TorchScript archive facer publishes."""


def _rot90(v: torch.Tensor) -> torch.Tensor:
    return torch.stack([-v[..., 1], v[..., 0]], dim=-1)


def face_quad(points: torch.Tensor) -> torch.Tensor:
    """FFHQ's oriented crop rectangle of five face points ``[B,5,2]`` -> corners ``[B,4,2]`` (top-left, top-right,
    bottom-right, bottom-left in the face's own frame)."""
    p = points.double()
    eye_avg = (p[:, 0] + p[:, 1]) * 0.5 + 0.5
    mouth_avg = (p[:, 3] + p[:, 4]) * 0.5 + 0.5
    eye_to_eye, eye_to_mouth = p[:, 1] - p[:, 0], mouth_avg - eye_avg
    x = eye_to_eye - _rot90(eye_to_mouth)
    x = x / x.norm(dim=-1, keepdim=True)
    x = x * torch.maximum(eye_to_eye.norm(dim=-1) * 2.0, eye_to_mouth.norm(dim=-1) * 1.8)[:, None]
    y = _rot90(x)
    c = eye_avg + eye_to_mouth * 0.1
    return torch.stack([c - x - y, c + x - y, c + x + y, c - x + y], dim=1).float()


def similarity_matrix(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """Least-squares similarity (rotation, uniform scale, shift) taking ``src [B,N,2]`` to ``dst [B,N,2]``: ``[B,3,3]``
    acting on column vectors ``(x, y, 1)``."""
    ms, md = src.mean(1, keepdim=True), dst.mean(1, keepdim=True)
    s, d = src - ms, dst - md
    norm = s.square().sum((1, 2))
    a = (s * d).sum((1, 2)) / norm
    b = (d[..., 0] * s[..., 1] - d[..., 1] * s[..., 0]).sum(1) / norm
    dx = md[:, 0, 0] - a * ms[:, 0, 0] - b * ms[:, 0, 1]
    dy = md[:, 0, 1] + b * ms[:, 0, 0] - a * ms[:, 0, 1]
    zero, one = torch.zeros_like(a), torch.ones_like(a)
    return torch.stack([a, b, dx, -b, a, dy, zero, zero, one], dim=-1).view(-1, 3, 3)


def _pixel_centres(h: int, w: int, batch: int, device: torch.device) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(h, device=device) + 0.5, torch.arange(w, device=device) + 0.5,
                            indexing="ij")
    return torch.stack([xx, yy, torch.ones_like(xx)], -1).view(1, h * w, 3).expand(batch, -1, -1).float()


def align_grids(matrix: torch.Tensor, image_hw: tuple[int, int], warped: int = WARPED_SIZE
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """``grid_sample`` grids of the alignment ``matrix [B,3,3]`` (image pixels -> warped pixels): into the warped
    square ``[B,S,S,2]`` and back onto the image ``[B,H,W,2]``, both normalised for ``align_corners=False``."""
    b, (h, w) = matrix.shape[0], image_hw
    dev = matrix.device
    src = _pixel_centres(warped, warped, b, dev) @ torch.linalg.inv(matrix).transpose(1, 2)  # [B,S*S,3]
    grid = src[..., :2] / src[..., 2:] / torch.tensor([w, h], device=dev) * 2 - 1
    dst = _pixel_centres(h, w, b, dev) @ matrix.transpose(1, 2)  # [B,H*W,3]
    inv_grid = dst[..., :2] / dst[..., 2:] / warped * 2 - 1
    return grid.view(b, warped, warped, 2), inv_grid.view(b, h, w, 2)


def _check_torchscript(path: Path) -> None:
    if not path.is_file():
        raise FarlFileError(f"FaRL face parser {path} does not exist; get {FARL_SOURCE} and give its local path "
                            "(model.init_args.farl_parser)")
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError) as err:
        raise FarlFileError(f"FaRL face parser {path} is not a TorchScript archive ({err}); expected {FARL_SOURCE}") \
            from err
    if not any("/code/" in n for n in names) or not any(n.endswith("constants.pkl") for n in names):
        raise FarlFileError(f"FaRL face parser {path} is a zip file but not a TorchScript archive (no code/ and "
                            f"constants.pkl entries: a plain torch.save?); expected {FARL_SOURCE}")


class FarlFaceParser:
    """FaRL's CelebAMask-HQ face parser on aligned faces: ``parse(images [B,3,H,W] in [0,1]) -> [B,H,W]`` int64 labels
    in CelebAMask-HQ's class order (module docstring). Frozen, inference only; follows the device of its input."""

    def __init__(self, path: str | Path, device: str | torch.device = "cpu") -> None:
        self.path = Path(path)
        _check_torchscript(self.path)
        try:
            with warnings.catch_warnings():  # torch 2.14 marks torch.jit.load deprecated; FaRL ships only TorchScript
                warnings.filterwarnings("ignore", message=".*torch.jit.load.*", category=FutureWarning)
                self.net = torch.jit.load(str(self.path), map_location=device).eval()
        except RuntimeError as err:
            raise FarlFileError(f"FaRL face parser {self.path} could not be loaded as TorchScript ({err}); expected "
                                f"{FARL_SOURCE}") from err
        self._device = torch.device(device)

    def _to(self, device: torch.device) -> None:
        if device != self._device:
            self.net = self.net.to(device)
            self._device = device

    @torch.no_grad()
    def logits(self, images: torch.Tensor, points: torch.Tensor | None = None) -> torch.Tensor:
        """FaRL's logits ``[B,19,H,W]`` (its own label order) on the images' pixels. ``points [B,5,2]`` in pixels;
        default: :data:`ALIGNED_FACE_POINTS_256` scaled to the image size (aligned faces, as the official code)."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"FaRL parses RGB images [B,3,H,W] in [0,1], got {tuple(images.shape)}")
        b, _, h, w = images.shape
        self._to(images.device)
        if points is None:
            scale = torch.tensor([w / 256.0, h / 256.0])
            points = (ALIGNED_FACE_POINTS_256 * scale).expand(b, -1, -1)
        points = points.to(images.device, torch.float32)
        corners = torch.tensor([[0.0, 0.0], [WARPED_SIZE, 0.0], [WARPED_SIZE, WARPED_SIZE], [0.0, WARPED_SIZE]],
                               device=images.device).expand(b, -1, -1)
        matrix = similarity_matrix(face_quad(points), corners)
        grid, inv_grid = align_grids(matrix, (h, w))
        warped = F.grid_sample(images.float(), grid, mode="bilinear", align_corners=False)  # [B,3,448,448]
        out = self.net(warped)
        logits = out[0] if isinstance(out, (tuple, list)) else out  # facer's parsers return (logits, features)
        return F.grid_sample(logits.float(), inv_grid, mode="bilinear", align_corners=False)

    def parse(self, images: torch.Tensor, points: torch.Tensor | None = None) -> torch.Tensor:
        """Labels ``[B,H,W]`` int64 in CelebAMask-HQ's order (:data:`lsi.labels.CELEBAMASK_CLASSES`)."""
        farl = self.logits(images, points).argmax(1)
        return FARL_TO_CELEBAMASK.to(farl.device)[farl]
