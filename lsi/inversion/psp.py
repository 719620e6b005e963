"""pSp's GradualStyleEncoder on IR-SE-50 (our implementation) and :func:`load_psp_encoder` for pSp / LSI checkpoints.

Contract: ``E = load_psp_encoder(path)``; ``E(img)`` with ``img [B,3,256,256]`` in [-1, 1] returns the **absolute**
W+ latent ``[B, num_ws, w_dim]`` (``E.offsets(img)`` the raw codes, before ``latent_avg`` is added). Other square
sizes are resized to 256 first (bilinear, antialiased), as pSp's data transform does.

Architecture (facts of pSp's encoder; written from them): the IR-SE-50 body of :mod:`lsi.inversion.ir_se` is
tapped after units 6, 20 and 23 (c1 64 px / 2w ch, c2 32 px / 4w, c3 16 px / 8w at 256 px input). Style blocks
``styles.<i>``: stride-2 3x3 convs with LeakyReLU(0.01) (``convs.0, convs.2, ...``) down to 1x1, then an
equalised linear layer ``styles.<i>.linear`` (weight scaled by 1/sqrt(in), i.e. 1/sqrt(512) for the real net).
W+ levels ``[0, 3)`` (coarse, 4 convs) read c3; ``[3, 7)`` (mid, 5 convs) read ``p2 = up(c3) + latlayer1(c2)``;
``[7, num_ws)`` (fine, 6 convs) read ``p1 = up(p2) + latlayer2(c1)``; ``up`` is bilinear with
``align_corners=True``. With 18 styles: coarse / mid / fine = 3 / 4 / 11.

Checkpoint formats read (``torch.load(weights_only=True)``, strictly, like the official loader that keeps the keys
starting with ``encoder`` and loads them with ``strict=True``):

* pSp / LSI training checkpoint ``{'state_dict': {'encoder.*', 'decoder.*', ...}, 'latent_avg', 'opts'}``;
  ``latent_avg`` ``[18, 512]`` (or ``[512]``) is what pSp adds to the codes when ``opts['start_from_latent_avg']``
  (assumed when ``opts`` does not say); a checkpoint whose ``opts`` say codes are absolute gets nothing added.
* a flat state dict, with ``encoder.``-prefixed keys (others ignored) or the bare encoder keys. It carries no
  average: pass ``latent_avg=`` - the LSI convention is the generator's ``G.w_avg`` (``G.mapping.w_avg``; the LSI
  training adds it to the raw codes it uses as the L_lat target).

``latent_avg=`` (``[w_dim]`` or ``[num_ws, w_dim]``) given explicitly replaces a checkpoint's own;
``E.latent_avg_source`` records which was used (``'checkpoint'``, ``'argument'`` or ``'none'``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from lsi.generator.embedded import EqualLinear
from lsi.inversion.ir_se import make_body, make_input_layer, width_of
from lsi.inversion.weights_file import WeightsFileError, load_state_strict, read_torch_file, tensor_state

__all__ = ["ENCODER_SOURCE", "GradualStyleBlock", "GradualStyleEncoder", "load_psp_encoder", "style_groups"]

ENCODER_WHAT = "pSp/LSI inversion encoder checkpoint"
ENCODER_SOURCE = ("the LSI repository's 'Inversion Model StyleGANXL' (encoder_styleganxl.pt, "
                  "https://github.com/vccimaging/latent-imaging#pretrained-models) or a pSp checkpoint "
                  "(https://github.com/eladrich/pixel2style2pixel)")
INPUT_RESOLUTION = 256
#: first W+ level of the mid and of the fine group (pSp's coarse_ind / middle_ind)
COARSE_END, MID_END = 3, 7
#: spatial size each group's style block reduces to 1x1 (number of stride-2 convs = log2 of it)
GROUP_SPATIAL = {"coarse": 16, "mid": 32, "fine": 64}


def style_groups(num_ws: int) -> list[str]:
    """The group (coarse / mid / fine) each W+ level belongs to."""
    return ["coarse" if i < COARSE_END else "mid" if i < MID_END else "fine" for i in range(num_ws)]


class GradualStyleBlock(nn.Module):
    """``[B,in_ch,S,S] -> [B,w_dim]``: log2(S) stride-2 convs + LeakyReLU(0.01), then EqualLinear(w_dim, w_dim)."""

    def __init__(self, in_ch: int, w_dim: int, spatial: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for k in range(int(math.log2(spatial))):
            layers += [nn.Conv2d(in_ch if k == 0 else w_dim, w_dim, 3, 2, 1), nn.LeakyReLU(0.01)]
        self.convs = nn.Sequential(*layers)
        self.linear = EqualLinear(w_dim, w_dim)
        self.w_dim = w_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.convs(x)  # [B, w_dim, 1, 1]
        return self.linear(x.reshape(x.shape[0], self.w_dim))


def _upsample_add(top: torch.Tensor, lateral: torch.Tensor) -> torch.Tensor:
    return F.interpolate(top, size=lateral.shape[-2:], mode="bilinear", align_corners=True) + lateral


class GradualStyleEncoder(nn.Module):
    """pSp's encoder: image ``[B,3,256,256]`` in [-1,1] -> absolute W+ ``[B,num_ws,w_dim]``.

    ``width`` 64 and ``w_dim`` 512 are the real network; ``latent_avg`` (``[num_ws, w_dim]`` or None) is a
    non-persistent buffer, so ``state_dict()`` holds exactly the checkpoint's encoder keys.
    """

    def __init__(self, num_ws: int = 18, w_dim: int = 512, width: int = 64,
                 latent_avg: torch.Tensor | None = None) -> None:
        super().__init__()
        if num_ws < 1:
            raise ValueError(f"num_ws must be positive, got {num_ws}")
        self.num_ws, self.w_dim, self.width = num_ws, w_dim, width
        self.input_layer = make_input_layer(width)
        self.body = make_body(width)
        top = 8 * width
        self.styles = nn.ModuleList(GradualStyleBlock(top, w_dim, GROUP_SPATIAL[g]) for g in style_groups(num_ws))
        self.latlayer1 = nn.Conv2d(4 * width, top, 1)
        self.latlayer2 = nn.Conv2d(2 * width, top, 1)
        self.register_buffer("latent_avg", None, persistent=False)
        self.latent_avg_source = "none"
        if latent_avg is not None:
            self.set_latent_avg(latent_avg, "argument")

    def set_latent_avg(self, latent_avg: torch.Tensor | None, source: str) -> None:
        """Set the average added to the codes: ``[w_dim]``, ``[num_ws, w_dim]`` (or either with a leading 1)."""
        if latent_avg is None:
            self.latent_avg, self.latent_avg_source = None, "none"
            return
        avg = latent_avg.detach().float().reshape(-1, latent_avg.shape[-1])
        if avg.shape[-1] != self.w_dim or avg.shape[0] not in (1, self.num_ws):
            raise ValueError(f"latent_avg of shape {tuple(latent_avg.shape)} does not fit W+ [{self.num_ws}, "
                             f"{self.w_dim}]; give [{self.w_dim}] or [{self.num_ws}, {self.w_dim}]")
        self.latent_avg = avg.expand(self.num_ws, self.w_dim).clone().to(self.latlayer1.weight.device)
        self.latent_avg_source = source

    def _prepare(self, img: torch.Tensor) -> torch.Tensor:
        if img.ndim != 4 or img.shape[1] != 3 or img.shape[2] != img.shape[3]:
            raise ValueError(f"the pSp encoder takes square RGB images [B,3,256,256] in [-1,1], got {tuple(img.shape)}")
        if img.shape[-1] != INPUT_RESOLUTION:
            img = F.interpolate(img, size=(INPUT_RESOLUTION, INPUT_RESOLUTION), mode="bilinear",
                                align_corners=False, antialias=True)
        return img

    def offsets(self, img: torch.Tensor) -> torch.Tensor:
        """The raw codes ``[B, num_ws, w_dim]`` (pSp's encoder output, before ``latent_avg``)."""
        x = self.input_layer(self._prepare(img))
        taps = {}
        for i, unit in enumerate(self.body):
            x = unit(x)
            if i in (6, 20, 23):
                taps[i] = x
        c1, c2, c3 = taps[6], taps[20], taps[23]  # [B,2w,64,64], [B,4w,32,32], [B,8w,16,16]
        groups = style_groups(self.num_ws)
        p2 = _upsample_add(c3, self.latlayer1(c2))  # [B,8w,32,32]
        p1 = _upsample_add(p2, self.latlayer2(c1))  # [B,8w,64,64]
        source = {"coarse": c3, "mid": p2, "fine": p1}
        return torch.stack([style(source[g]) for style, g in zip(self.styles, groups)], dim=1)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        codes = self.offsets(img)
        return codes if self.latent_avg is None else codes + self.latent_avg


def _encoder_state(raw: object, path: Path) -> tuple[dict[str, torch.Tensor], torch.Tensor | None, dict]:
    """(encoder state dict without prefix, the checkpoint's latent_avg or None, opts) from a loaded file."""
    if not isinstance(raw, Mapping):
        raise WeightsFileError(f"{ENCODER_WHAT} {path} holds a {type(raw).__name__}, not a checkpoint dict "
                               f"({ENCODER_SOURCE})")
    if "state_dict" in raw:
        state, avg, opts = raw["state_dict"], raw.get("latent_avg"), raw.get("opts") or {}
    else:
        state, avg, opts = raw, None, {}
    if not isinstance(opts, Mapping):  # pSp saves vars(opts), a dict; anything else says nothing we can use
        opts = {}
    if not isinstance(state, Mapping):
        raise WeightsFileError(f"{ENCODER_WHAT} {path}: 'state_dict' is a {type(state).__name__}, not a dict")
    if any(isinstance(k, str) and k.startswith("encoder.") for k in state):
        state = {k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")}
    elif "input_layer.0.weight" not in state:
        sample = ", ".join(sorted(str(k) for k in state)[:5])
        raise WeightsFileError(f"{ENCODER_WHAT} {path} has neither 'encoder.*' keys nor bare encoder keys "
                               f"(input_layer.*, body.*, styles.*); it starts with: {sample}. ({ENCODER_SOURCE})")
    if avg is not None and not isinstance(avg, torch.Tensor):
        raise WeightsFileError(f"{ENCODER_WHAT} {path}: 'latent_avg' is a {type(avg).__name__}, not a tensor")
    return tensor_state(state, path, ENCODER_WHAT, ENCODER_SOURCE), avg, dict(opts)


def _check_opts(opts: dict, path: Path) -> None:
    kind = opts.get("encoder_type", "GradualStyleEncoder")
    if kind != "GradualStyleEncoder" or opts.get("learn_in_w"):
        raise WeightsFileError(f"{ENCODER_WHAT} {path} was trained as encoder_type={kind!r}"
                               f"{', learn_in_w=True' if opts.get('learn_in_w') else ''}; only pSp's "
                               "GradualStyleEncoder (W+, 18 style blocks) is supported")
    if opts.get("input_nc", 3) != 3:
        raise WeightsFileError(f"{ENCODER_WHAT} {path} takes {opts['input_nc']}-channel inputs; the inversion "
                               "encoder must take RGB images (input_nc=3)")


def load_psp_encoder(path: str | Path, device: str | torch.device = "cpu",
                     latent_avg: torch.Tensor | None = None,
                     fallback_latent_avg: torch.Tensor | None = None) -> GradualStyleEncoder:
    """A frozen :class:`GradualStyleEncoder` (eval mode, no gradients) from a pSp / LSI checkpoint or state dict.

    ``latent_avg``: the average to add to the codes; needed for a flat state dict (use ``G.w_avg``), optional for a
    training checkpoint (replaces its own). ``fallback_latent_avg``: used only when the file carries no average of
    its own (the frozen world passes ``G.w_avg``). Shapes and the conventions are in the module docstring.
    """
    path = Path(path)
    state, ckpt_avg, opts = _encoder_state(read_torch_file(path, ENCODER_WHAT, ENCODER_SOURCE), path)
    _check_opts(opts, path)
    styles = {int(k.split(".")[1]) for k in state if k.startswith("styles.")}
    if not styles or "styles.0.linear.weight" not in state:
        raise WeightsFileError(f"{ENCODER_WHAT} {path} has no style blocks (styles.<i>.*): not a GradualStyleEncoder")
    try:
        width = width_of(state)
    except KeyError as err:
        raise WeightsFileError(f"{ENCODER_WHAT} {path} lacks input_layer.0.weight ({ENCODER_SOURCE})") from err
    num_ws, w_dim = max(styles) + 1, int(state["styles.0.linear.weight"].shape[0])
    with torch.device("meta"):  # every tensor comes from the file: skip the random init of 267M weights
        encoder = GradualStyleEncoder(num_ws=num_ws, w_dim=w_dim, width=width)
    load_state_strict(encoder, state, path, ENCODER_WHAT, ENCODER_SOURCE, assign=True)
    adds_average = bool(opts.get("start_from_latent_avg", True))
    try:
        if latent_avg is not None:
            if not adds_average:
                raise WeightsFileError(f"{ENCODER_WHAT} {path}: its opts say start_from_latent_avg=False (the codes "
                                       "are absolute); do not pass latent_avg")
            encoder.set_latent_avg(latent_avg, "argument")
        elif ckpt_avg is not None and adds_average:
            encoder.set_latent_avg(ckpt_avg, "checkpoint")
        elif fallback_latent_avg is not None and adds_average:
            encoder.set_latent_avg(fallback_latent_avg, "argument")
        elif adds_average:
            raise WeightsFileError(
                f"{ENCODER_WHAT} {path} carries no latent_avg, so E(img) cannot be made absolute: pass "
                "latent_avg=G.w_avg (the LSI convention: the generator's mapping.w_avg) to load_psp_encoder")
    except ValueError as err:
        if isinstance(err, WeightsFileError):
            raise
        raise WeightsFileError(f"{ENCODER_WHAT} {path}: {err}") from err
    return encoder.eval().requires_grad_(False).to(device)
