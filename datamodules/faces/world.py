"""The world latent ``u`` of the procedural face world and its deterministic decoding into scene parameters.

A scene is fully determined by ``u in (0, 1)^K`` (``K = WORLD_DIM``). Components ``IDENTITY_INDEX`` define the
person (face shape, skin, eyes, hair, sex, age, facial hair ...); ``NUISANCE_INDEX`` everything that changes
from photo to photo (pose, expression, gaze, accessories, lighting, background, clothes). Decoding is a pure
function: categoricals bin a component (thresholds may depend on other components, e.g. baldness on sex and
age), optional items threshold a component and re-use the fraction below the threshold as their style.

Geometry is expressed in *head units*: normalised image units (image width = 1) at scale 1, with the origin at
the centre of the face ellipse, x to the image right, y down.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
from torch import Tensor

from lsi.labels import CELEBAMASK_CLASSES, EMBEDDED_ATTRIBUTE_NAMES

IDENTITY_NAMES: tuple[str, ...] = (
    "sex", "age", "face_width", "face_height", "jaw_taper", "skin_tone", "skin_warmth", "eye_color",
    "eye_size", "eye_spacing", "eye_height", "eye_tilt", "brow_thickness", "brow_height", "brow_arch",
    "nose_length", "nose_width", "mouth_width", "lip_thickness", "ear_size", "hair_style", "hair_bangs",
    "hair_color", "hair_shade", "hair_volume", "beard", "mustache", "hair_over_ears",
)
NUISANCE_NAMES: tuple[str, ...] = (
    "yaw", "roll", "shift_x", "shift_y", "scale", "smile", "mouth_open", "gaze_x", "gaze_y", "eyeglasses",
    "hat", "earrings", "necklace", "lipstick", "light_dir", "light_intensity", "light_color",
    "background_hue", "background_value", "cloth_color",
)
LATENT_NAMES: tuple[str, ...] = IDENTITY_NAMES + NUISANCE_NAMES
WORLD_DIM: int = len(LATENT_NAMES)
IDENTITY_INDEX: tuple[int, ...] = tuple(range(len(IDENTITY_NAMES)))
NUISANCE_INDEX: tuple[int, ...] = tuple(range(len(IDENTITY_NAMES), WORLD_DIM))
_IX = {name: i for i, name in enumerate(LATENT_NAMES)}

ATTRIBUTE_NAMES: tuple[str, ...] = EMBEDDED_ATTRIBUTE_NAMES

# CelebAMask-HQ classes (lsi.labels states the l_/r_ convention).
SEG_CLASSES: tuple[str, ...] = CELEBAMASK_CLASSES
SEG = {name: i for i, name in enumerate(SEG_CLASSES)}

HAIR_STYLES: tuple[str, ...] = ("bald", "short", "medium", "long")
HAIR_COLORS: tuple[str, ...] = ("black", "brown", "blond", "gray")
_EPS = 1e-6


class WorldLatentError(ValueError):
    """A world latent has the wrong shape or range."""


def _check_u(u: Tensor) -> Tensor:
    if not isinstance(u, Tensor) or u.dim() != 2 or u.shape[1] != WORLD_DIM:
        shape = tuple(u.shape) if isinstance(u, Tensor) else type(u).__name__
        raise WorldLatentError(f"expected a world latent of shape [B, {WORLD_DIM}], got {shape}; "
                               f"use sample_world_latent / random_world_latent to make one")
    return u.float().clamp(_EPS, 1 - _EPS)


def _rand(seed: int, n: int) -> Tensor:
    g = torch.Generator().manual_seed(int(seed) % (2**63 - 1))
    return torch.rand(n, generator=g, dtype=torch.float64).float()


def sample_world_latent(identity_seed: int, image_seed: int) -> Tensor:
    """``u [K]`` in (0,1): identity components from ``identity_seed`` only, nuisance from ``image_seed`` only."""
    u = torch.empty(WORLD_DIM)
    u[list(IDENTITY_INDEX)] = _rand(identity_seed * 2 + 1, len(IDENTITY_INDEX))
    u[list(NUISANCE_INDEX)] = _rand(image_seed * 2, len(NUISANCE_INDEX))
    return u.clamp(_EPS, 1 - _EPS)


def random_world_latent(n: int, generator: torch.Generator | None = None) -> Tensor:
    """``u [n,K]`` i.i.d. uniform prior (every component independent in (0,1))."""
    return torch.rand(n, WORLD_DIM, generator=generator).clamp(_EPS, 1 - _EPS)


def to_gaussian(u: Tensor) -> Tensor:
    """Probit: ``z = Phi^-1(u)`` elementwise, ``u`` clamped to (1e-6, 1-1e-6)."""
    return math.sqrt(2.0) * torch.erfinv(2.0 * u.clamp(_EPS, 1 - _EPS) - 1.0)


def from_gaussian(z: Tensor) -> Tensor:
    """``u = Phi(z)`` elementwise, clamped to (1e-6, 1-1e-6)."""
    return (0.5 * (1.0 + torch.erf(z / math.sqrt(2.0)))).clamp(_EPS, 1 - _EPS)


def _lerp_table(table: list[list[float]], t: Tensor) -> Tensor:
    """Piecewise-linear colour ramp: ``t [B]`` in [0,1] -> ``[B,3]``."""
    tab = torch.tensor(table, dtype=torch.float32)
    pos = t.clamp(0, 1) * (len(table) - 1)
    lo = pos.floor().long().clamp(max=len(table) - 2)
    f = (pos - lo)[:, None]
    return tab[lo] * (1 - f) + tab[lo + 1] * f


def _hsv(h: Tensor, s: Tensor, v: Tensor) -> Tensor:
    """HSV in [0,1] -> RGB ``[B,3]``."""
    k = torch.stack([(5 + h * 6) % 6, (3 + h * 6) % 6, (1 + h * 6) % 6], 1)
    return v[:, None] - v[:, None] * s[:, None] * torch.clamp(torch.minimum(k, 4 - k), 0, 1)


_SKIN = [[0.99, 0.87, 0.80], [0.95, 0.78, 0.66], [0.84, 0.63, 0.48], [0.63, 0.43, 0.29], [0.40, 0.26, 0.17]]
_EYE = torch.tensor([[0.23, 0.13, 0.07], [0.42, 0.26, 0.12], [0.36, 0.45, 0.22], [0.28, 0.48, 0.72],
                     [0.50, 0.56, 0.60]])
_EYE_BINS = torch.tensor([0.35, 0.60, 0.72, 0.90])
_HAIR = torch.tensor([[0.07, 0.06, 0.06], [0.36, 0.22, 0.12], [0.86, 0.72, 0.45], [0.70, 0.70, 0.70]])
_CLOTH = torch.tensor([[0.15, 0.18, 0.30], [0.85, 0.85, 0.85], [0.10, 0.10, 0.10], [0.55, 0.12, 0.12],
                       [0.20, 0.40, 0.25], [0.45, 0.55, 0.70], [0.60, 0.50, 0.35], [0.50, 0.30, 0.55]])


@dataclass
class FaceParams:
    """Decoded scene parameters; every field is a ``[B]`` tensor (``*_rgb``: ``[B,3]``)."""

    male: Tensor
    age: Tensor
    young: Tensor
    face_a: Tensor
    face_bu: Tensor
    face_bl: Tensor
    jaw_k: Tensor
    jaw_sq: Tensor
    skin_rgb: Tensor
    pale: Tensor
    eye_rgb: Tensor
    eye_w: Tensor
    eye_sep: Tensor
    eye_y: Tensor
    eye_tilt: Tensor
    brow_t: Tensor
    brow_h: Tensor
    brow_arch: Tensor
    bushy: Tensor
    nose_len: Tensor
    nose_w: Tensor
    big_nose: Tensor
    mouth_w: Tensor
    lip_t: Tensor
    big_lips: Tensor
    ear_size: Tensor
    hair_style: Tensor
    bangs: Tensor
    hair_color: Tensor
    hair_rgb: Tensor
    hair_vol: Tensor
    hair_over_ears: Tensor
    beard: Tensor
    beard_density: Tensor
    mustache: Tensor
    yaw: Tensor
    roll: Tensor
    shift_x: Tensor
    shift_y: Tensor
    scale: Tensor
    smile: Tensor
    smiling: Tensor
    mouth_open: Tensor
    open_flag: Tensor
    gaze_x: Tensor
    gaze_y: Tensor
    glasses: Tensor
    glasses_style: Tensor
    hat: Tensor
    hat_style: Tensor
    earrings: Tensor
    earring_style: Tensor
    necklace: Tensor
    lipstick: Tensor
    lip_rgb: Tensor
    light_dir: Tensor
    light_int: Tensor
    light_tint: Tensor
    bg_rgb0: Tensor
    bg_rgb1: Tensor
    bg_angle: Tensor
    cloth_rgb: Tensor

    @property
    def batch(self) -> int:
        return int(self.male.shape[0])

    def as_dict(self) -> dict[str, Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def index(self, items: Tensor | slice) -> FaceParams:
        """The parameters of a subset of the batch (indices or a slice)."""
        return FaceParams(**{name: v[items] for name, v in self.as_dict().items()})


def decode_world(u: Tensor) -> FaceParams:
    """Deterministic decoding ``u [B,K] -> FaceParams`` (the only place where probabilities live)."""
    u = _check_u(u)
    c = {name: u[:, i] for name, i in _IX.items()}
    one = torch.ones_like(c["sex"])
    male = (c["sex"] < 0.5).float()
    fem = 1 - male
    age = c["age"]
    # face shape
    face_a = 0.198 + 0.03 * c["face_width"] + 0.012 * male
    face_bu = 0.285 + 0.03 * c["face_height"]
    face_bl = 0.325 + 0.04 * c["face_height"] + 0.01 * male
    jaw_k = 0.1 + 0.3 * c["jaw_taper"] + 0.06 * fem
    jaw_sq = 0.85 * (1 - c["jaw_taper"]) * (1 - 0.4 * fem)
    tone = c["skin_tone"]
    skin = _lerp_table(_SKIN, tone)
    warm = (c["skin_warmth"] - 0.5) * 0.06
    skin = (skin + torch.stack([warm, 0 * warm, -warm], 1)).clamp(0, 1)
    # eyes and brows
    eye_rgb = _EYE[torch.bucketize(c["eye_color"].contiguous(), _EYE_BINS)]
    eye_w = 0.034 + 0.010 * c["eye_size"] + 0.002 * fem
    eye_sep = 0.112 + 0.022 * c["eye_spacing"]
    eye_y = -0.045 - 0.025 * c["eye_height"]
    eye_tilt = (c["eye_tilt"] - 0.4) * 0.2
    brow_t = 0.008 + 0.010 * c["brow_thickness"] + 0.005 * male
    brow_h = 0.042 + 0.018 * c["brow_height"]
    brow_arch = 0.003 + 0.012 * c["brow_arch"] + 0.004 * fem
    nose_len = 0.125 + 0.03 * c["nose_length"]
    nose_w = 0.028 + 0.014 * c["nose_width"] + 0.004 * male
    mouth_w = 0.074 + 0.02 * c["mouth_width"]
    lip_t = (0.011 + 0.008 * c["lip_thickness"]) * (1 + 0.15 * fem)
    # hair: style thresholds depend on sex and age
    p_bald = 0.04 + 0.4 * ((age - 0.45) / 0.55).clamp(0, 1)
    t1 = male * p_bald
    t2 = male * (p_bald + (1 - p_bald) * 0.72) + fem * 0.15
    t3 = male * (p_bald + (1 - p_bald) * 0.9) + fem * 0.5
    hs = c["hair_style"]
    hair_style = (hs >= t1).long() + (hs >= t2).long() + (hs >= t3).long()
    has_hair = (hair_style > 0).float()
    bangs = has_hair * (c["hair_bangs"] < 0.2 + 0.15 * fem).float()
    p_gray = 0.02 + 0.7 * ((age - 0.6) / 0.4).clamp(0, 1)
    hc = c["hair_color"]
    v = ((hc - p_gray) / (1 - p_gray)).clamp(0, 1)
    hair_color = torch.where(hc < p_gray, 3, (v >= 0.38).long() + (v >= 0.8).long())
    shade = (c["hair_shade"] - 0.5) * 0.3
    hair_rgb = (_HAIR[hair_color] * (1 + shade[:, None])).clamp(0, 1)
    hair_over = has_hair * (hair_style >= 2).float() * (c["hair_over_ears"] < 0.55).float()
    beard_p = 0.38 * male
    beard = (c["beard"] < beard_p).float()
    beard_density = torch.where(beard > 0, c["beard"] / beard_p.clamp(min=_EPS), 0 * one)
    mustache = male * torch.where(beard > 0, (c["mustache"] < 0.75).float(), (c["mustache"] < 0.12).float())
    # pose and expression
    yaw = (c["yaw"] - 0.5) * 0.7
    roll = (c["roll"] - 0.5) * 0.3
    smiling = (c["smile"] > 0.5).float()
    smile = torch.where(smiling > 0, 0.008 + 0.022 * (c["smile"] - 0.5) / 0.5, (c["smile"] - 0.5) * 0.008)
    open_flag = (c["mouth_open"] > 0.52).float()
    mouth_open = open_flag * (0.008 + 0.032 * (c["mouth_open"] - 0.52) / 0.48)
    # accessories (presence threshold, style = fraction below the threshold)
    p_gl = 0.08 + 0.14 * age
    glasses = (c["eyeglasses"] < p_gl).float()
    glasses_style = (c["eyeglasses"] / p_gl).clamp(0, 1)
    hat = (c["hat"] < 0.09).float()
    hat_style = (c["hat"] / 0.09).clamp(0, 1)
    ears_visible = 1 - hair_over
    p_ear = 0.05 + 0.5 * fem
    earrings = ears_visible * (c["earrings"] < p_ear).float()
    earring_style = (c["earrings"] / p_ear).clamp(0, 1)
    necklace = (c["necklace"] < 0.03 + 0.22 * fem).float()
    lipstick = fem * (c["lipstick"] < 0.45).float()
    lip_nat = skin * torch.tensor([0.86, 0.58, 0.56]) + torch.tensor([0.06, 0.0, 0.0])
    lip_red = torch.tensor([0.62, 0.08, 0.16]) * (0.8 + 0.4 * (c["lipstick"] / 0.45).clamp(0, 1))[:, None]
    lip_rgb = torch.where(lipstick[:, None] > 0, lip_red, lip_nat).clamp(0, 1)
    # light, background, clothes
    light_dir = c["light_dir"] * 2 * math.pi
    light_int = 0.82 + 0.3 * c["light_intensity"]
    temp = (c["light_color"] - 0.5) * 0.12
    light_tint = torch.stack([1 + temp, one, 1 - temp], 1)
    bv = c["background_value"]
    bg0 = _hsv(c["background_hue"], 0.12 + 0.35 * (1 - bv), 0.3 + 0.65 * bv)
    bg1 = _hsv((c["background_hue"] + 0.06) % 1, 0.2 + 0.3 * (1 - bv), 0.2 + 0.55 * bv)
    bg_angle = c["background_hue"] * 37.0 % (2 * math.pi)
    cc = c["cloth_color"] * len(_CLOTH)
    cloth_shade = (0.75 + 0.5 * (cc - cc.floor()))[:, None]
    cloth_rgb = (_CLOTH[cc.long().clamp(max=len(_CLOTH) - 1)] * cloth_shade).clamp(0, 1)
    return FaceParams(
        male=male, age=age, young=(age < 0.68).float(), face_a=face_a, face_bu=face_bu, face_bl=face_bl,
        jaw_k=jaw_k, jaw_sq=jaw_sq, skin_rgb=skin, pale=(tone < 0.12).float(), eye_rgb=eye_rgb, eye_w=eye_w,
        eye_sep=eye_sep,
        eye_y=eye_y, eye_tilt=eye_tilt, brow_t=brow_t, brow_h=brow_h, brow_arch=brow_arch,
        bushy=(brow_t > 0.0185).float(), nose_len=nose_len, nose_w=nose_w,
        big_nose=(c["nose_width"] > 0.78).float(), mouth_w=mouth_w, lip_t=lip_t,
        big_lips=(c["lip_thickness"] > 0.78).float(), ear_size=0.9 + 0.2 * c["ear_size"],
        hair_style=hair_style, bangs=bangs, hair_color=hair_color, hair_rgb=hair_rgb,
        hair_vol=c["hair_volume"], hair_over_ears=hair_over, beard=beard, beard_density=beard_density,
        mustache=mustache, yaw=yaw, roll=roll, shift_x=(c["shift_x"] - 0.5) * 0.04,
        shift_y=(c["shift_y"] - 0.5) * 0.04, scale=0.94 + 0.12 * c["scale"], smile=smile, smiling=smiling,
        mouth_open=mouth_open, open_flag=open_flag, gaze_x=(c["gaze_x"] - 0.5) * 2, gaze_y=(c["gaze_y"] - 0.5) * 2,
        glasses=glasses, glasses_style=glasses_style, hat=hat, hat_style=hat_style, earrings=earrings,
        earring_style=earring_style,
        necklace=necklace, lipstick=lipstick, lip_rgb=lip_rgb, light_dir=light_dir, light_int=light_int,
        light_tint=light_tint, bg_rgb0=bg0, bg_rgb1=bg1, bg_angle=bg_angle, cloth_rgb=cloth_rgb,
    )


def attributes_from_params(p: FaceParams) -> Tensor:
    """Binary CelebA-style attributes ``[B, len(ATTRIBUTE_NAMES)]`` in {0,1}."""
    hs, hc = p.hair_style, p.hair_color
    has_hair = (hs > 0).float()
    values = {
        "Male": p.male, "Young": p.young, "Smiling": p.smiling, "Eyeglasses": p.glasses,
        "No_Beard": 1 - p.beard, "Mustache": p.mustache, "Bald": (hs == 0).float(), "Bangs": p.bangs,
        "Black_Hair": has_hair * (hc == 0).float(), "Blond_Hair": has_hair * (hc == 2).float(),
        "Brown_Hair": has_hair * (hc == 1).float(), "Gray_Hair": has_hair * (hc == 3).float(),
        "Mouth_Slightly_Open": p.open_flag, "Wearing_Hat": p.hat, "Pale_Skin": p.pale,
        "Wearing_Earrings": p.earrings, "Wearing_Necklace": p.necklace, "Wearing_Lipstick": p.lipstick,
        "Big_Nose": p.big_nose, "Big_Lips": p.big_lips, "Bushy_Eyebrows": p.bushy,
    }
    return torch.stack([values[name] for name in ATTRIBUTE_NAMES], 1).float()
