"""IR-SE50 ArcFace (the identity network of pSp's and LSI's ID loss) and :func:`load_arcface` for ``model_ir_se50.pth``.

Contract: ``F = load_arcface(path)``; ``F(img)`` with ``img [B,3,256,256]`` in [-1, 1] returns unit embeddings
``[B, 512]``. The ID-loss preprocessing of pSp is inside: crop rows 35:223 and columns 32:220 (188 x 188 px of the
256 px image), adaptive average pooling to 112 x 112, then the network. Other square sizes are resized to 256
first (bilinear, antialiased; the official pipeline always feeds 256 px). :func:`identity_loss` is
``mean(1 - <F(a), F(b)>)`` over the batch.

Network (keys of ``model_ir_se50.pth``, written from the published layout): ``input_layer`` and ``body`` of
:mod:`lsi.inversion.ir_se` (width 64, 112 px -> 7 px) and ``output_layer``::

    0 BatchNorm2d(512), 1 Dropout(0.6), 2 Flatten, 3 Linear(512*7*7 = 25088 -> 512), 4 BatchNorm1d(512)

then L2 normalisation. ``output_layer.4`` is affine in the pSp file (weight and bias); a file without them loads as
a non-affine BatchNorm1d.

The file: torch's legacy (non-zip) format of a plain OrderedDict, written before ``num_batches_tracked`` existed,
or any modern save; both are read with ``weights_only=True`` (:mod:`lsi.inversion.weights_file`).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from lsi.inversion.ir_se import make_body, make_input_layer, width_of
from lsi.inversion.weights_file import WeightsFileError, load_state_strict, read_torch_file, tensor_state

__all__ = ["ARCFACE_SOURCE", "ArcFaceIRSE50", "identity_loss", "load_arcface"]

ARCFACE_WHAT = "IR-SE50 ArcFace weights (model_ir_se50.pth)"
ARCFACE_SOURCE = ("model_ir_se50.pth from TreB1eN/InsightFace_Pytorch, as linked by pSp "
                  "(https://github.com/eladrich/pixel2style2pixel#pretrained-models) and by the LSI repository "
                  "(https://github.com/vccimaging/latent-imaging#pretrained-models, 'IR-SE50 Model')")
INPUT_RESOLUTION = 256
CROP_ROWS, CROP_COLS = (35, 223), (32, 220)
FACE_RESOLUTION = 112


class ArcFaceIRSE50(nn.Module):
    """IR-SE50 ArcFace: ``[B,3,256,256]`` in [-1,1] -> unit embeddings ``[B,embed_dim]`` (512 for the real net)."""

    def __init__(self, width: int = 64, embed_dim: int = 512, affine_embedding: bool = True) -> None:
        super().__init__()
        top = 8 * width
        self.input_layer = make_input_layer(width)
        self.body = make_body(width)
        side = FACE_RESOLUTION // 16  # 7 px after the four stride-2 stages
        self.output_layer = nn.Sequential(
            nn.BatchNorm2d(top), nn.Dropout(0.6), nn.Flatten(), nn.Linear(top * side * side, embed_dim),
            nn.BatchNorm1d(embed_dim, affine=affine_embedding),
        )
        self.embed_dim = embed_dim

    @staticmethod
    def crop_face(img: torch.Tensor) -> torch.Tensor:
        """pSp's ID-loss crop: ``[B,3,256,256] -> [B,3,112,112]`` (crop 188 x 188, adaptive average pool)."""
        if img.ndim != 4 or img.shape[1] != 3 or img.shape[2] != img.shape[3]:
            raise ValueError(f"ArcFace takes square RGB images [B,3,256,256] in [-1,1], got {tuple(img.shape)}")
        if img.shape[-1] != INPUT_RESOLUTION:
            img = F.interpolate(img, size=(INPUT_RESOLUTION, INPUT_RESOLUTION), mode="bilinear",
                                align_corners=False, antialias=True)
        face = img[:, :, CROP_ROWS[0]:CROP_ROWS[1], CROP_COLS[0]:CROP_COLS[1]]  # [B,3,188,188]
        return F.adaptive_avg_pool2d(face, FACE_RESOLUTION)

    def embed_faces(self, faces: torch.Tensor) -> torch.Tensor:
        """Already-cropped faces ``[B,3,112,112]`` in [-1,1] -> unit embeddings ``[B,embed_dim]``."""
        x = self.output_layer(self.body(self.input_layer(faces)))
        return F.normalize(x, dim=1)

    def features(self, img: torch.Tensor) -> torch.Tensor:
        """The embedding before its L2 normalisation, ``[B,embed_dim]`` (a feature extractor, e.g. for FID)."""
        return self.output_layer(self.body(self.input_layer(self.crop_face(img))))

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.embed_faces(self.crop_face(img))


def identity_loss(emb_a: torch.Tensor, emb_b: torch.Tensor) -> torch.Tensor:
    """pSp's ID loss on unit embeddings ``[B,D]``: ``mean over the batch of (1 - dot)``; 0 for identical faces."""
    return (1 - (emb_a * emb_b).sum(dim=1)).mean()


def load_arcface(path: str | Path, device: str | torch.device = "cpu") -> ArcFaceIRSE50:
    """A frozen :class:`ArcFaceIRSE50` (eval mode, no gradients) from ``model_ir_se50.pth`` (legacy or zip format)."""
    path = Path(path)
    raw = read_torch_file(path, ARCFACE_WHAT, ARCFACE_SOURCE)
    if isinstance(raw, dict) and "state_dict" in raw and isinstance(raw["state_dict"], dict):
        raw = raw["state_dict"]
    state = tensor_state(raw, path, ARCFACE_WHAT, ARCFACE_SOURCE)
    if any(k.startswith("module.") for k in state):  # saved from nn.DataParallel
        state = {k.removeprefix("module."): v for k, v in state.items()}
    linear = state.get("output_layer.3.weight")
    try:
        width = width_of(state)
    except KeyError:
        width = None
    if width is None or linear is None or linear.ndim != 2:
        raise WeightsFileError(f"{ARCFACE_WHAT} {path} lacks input_layer.0.weight / output_layer.3.weight: it is "
                               f"not an IR-SE50 ArcFace state dict. Get {ARCFACE_SOURCE}.")
    side = FACE_RESOLUTION // 16
    if linear.shape[1] != 8 * width * side * side:
        raise WeightsFileError(f"{ARCFACE_WHAT} {path}: output_layer.3 takes {linear.shape[1]} features, not "
                               f"{8 * width * side * side} = {8 * width}x{side}x{side}: this is not the 112 px "
                               f"IR-SE50 of pSp's ID loss. Get {ARCFACE_SOURCE}.")
    with torch.device("meta"):  # every tensor comes from the file: no random init
        net = ArcFaceIRSE50(width=width, embed_dim=int(linear.shape[0]),
                            affine_embedding="output_layer.4.weight" in state)
    load_state_strict(net, state, path, ARCFACE_WHAT, ARCFACE_SOURCE, assign=True)
    return net.eval().requires_grad_(False).to(device)
