"""StyleGAN2(-ADA) generator, our implementation, rebuilt from the data of an official network pickle.

Layout (facts of the official ``networks.py`` / ``networks_stylegan2.py`` pickles, code written here):

* ``mapping`` (:class:`StyleMapping`, shared with StyleGAN3): z ``[B, z_dim]`` -> 2nd-moment norm -> optional
  label ``embed`` (normalised and concatenated) -> ``fc0..fc{n-1}`` (lrelu) -> broadcast to ``[B, num_ws,
  w_dim]`` -> truncation ``w_avg + psi * (w - w_avg)`` on the first ``truncation_cutoff`` levels.
* ``synthesis`` children ``b4, b8, ..., b<R>`` (:class:`SynthesisBlock`), each ``(x, img, ws) -> (x, img)``:
  ``b4`` starts from the learned ``const``; later blocks run ``conv0`` (2x up) then ``conv1``; every layer is a
  modulated 3x3 conv with demodulation, noise (``const`` mode: ``noise_const * noise_strength``), bias, lrelu
  with gain sqrt 2 and ``conv_clamp``. Skip architecture: ``img`` is upsampled with the block's FIR filter and
  the block's ``torgb`` (modulated 1x1, no demodulation) is added. Block ``i`` reads ws ``[w_idx, w_idx +
  num_conv + num_torgb)`` and advances ``w_idx`` by ``num_conv``.
* fp16 blocks (``use_fp16``) run in fp16 on CUDA and in fp32 on CPU; images are accumulated in fp32.

Feature names: the outputs of the conv layers in order, ``L<i>_<res>_<channels>`` (``L0`` = ``b4.conv1``,
``L1``/``L2`` = ``b8.conv0``/``conv1``, ...), see :attr:`SynthesisNetwork.feature_layers`.
"""

from __future__ import annotations

import torch
from torch import nn

from lsi.generator.errors import GeneratorFileError
from lsi.generator.layer_specs import fc_spec, get_bool, get_float, get_int, make_fc, optional_float
from lsi.generator.pickle_records import ModuleRecord
from lsi.generator.stylegan_ops import bias_act, modulated_conv2d, normalize_2nd_moment, upfirdn2d

NOISE_MODES = ("const", "random", "none")


# ---- mapping (StyleGAN2 and StyleGAN3) ---------------------------------------------------------------------

def mapping_spec(rec: ModuleRecord) -> dict:
    num_layers = get_int(rec, "num_layers")
    if "w_avg" not in rec.buffers():
        raise GeneratorFileError("the mapping network has no 'w_avg' buffer (trained with w_avg_beta=None); "
                                 "a generator without the average latent is not supported")
    return {"z_dim": get_int(rec, "z_dim"), "c_dim": get_int(rec, "c_dim"), "w_dim": get_int(rec, "w_dim"),
            "num_ws": get_int(rec, "num_ws"), "num_layers": num_layers,
            "embed": fc_spec(rec.child("embed")) if get_int(rec, "c_dim") > 0 else None,
            "layers": [fc_spec(rec.child(f"fc{i}")) for i in range(num_layers)]}


class StyleMapping(nn.Module):
    """z ``[B, z_dim]`` (+ one-hot c ``[B, c_dim]``) -> ws ``[B, num_ws, w_dim]``."""

    def __init__(self, spec: dict) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = spec["z_dim"], spec["c_dim"], spec["w_dim"], spec["num_ws"]
        self.num_layers = spec["num_layers"]
        if spec["embed"] is not None:
            self.embed = make_fc(spec["embed"])
        for i, layer in enumerate(spec["layers"]):
            self.add_module(f"fc{i}", make_fc(layer))
        self.register_buffer("w_avg", torch.zeros(self.w_dim))

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None) -> torch.Tensor:
        parts = []
        if self.z_dim > 0:
            parts.append(normalize_2nd_moment(z.float()))
        if self.c_dim > 0:
            if c is None:
                raise ValueError(f"this generator is conditional: pass c [B, {self.c_dim}] (one-hot labels)")
            parts.append(normalize_2nd_moment(self.embed(c.float())))
        x = torch.cat(parts, dim=1)
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        return truncate(x.unsqueeze(1).repeat(1, self.num_ws, 1), self.w_avg, truncation_psi, truncation_cutoff)


def truncate(ws: torch.Tensor, w_avg: torch.Tensor, psi: float, cutoff: int | None) -> torch.Tensor:
    """``w_avg + psi * (ws - w_avg)`` on levels ``[:cutoff]`` of ``ws [B, num_ws, w_dim]``."""
    if psi == 1:
        return ws
    cutoff = ws.shape[1] if cutoff is None else cutoff
    ws = ws.clone()
    ws[:, :cutoff] = w_avg.lerp(ws[:, :cutoff], psi)
    return ws


# ---- synthesis ---------------------------------------------------------------------------------------------

def _layer_spec(rec: ModuleRecord) -> dict:
    weight = rec.params()["weight"]
    return {"in_channels": int(weight.shape[1]), "out_channels": int(weight.shape[0]),
            "kernel_size": int(weight.shape[-1]), "resolution": get_int(rec, "resolution"), "up": get_int(rec, "up"),
            "padding": get_int(rec, "padding"), "activation": rec.attr("activation"),
            "act_gain": get_float(rec, "act_gain"), "conv_clamp": optional_float(rec, "conv_clamp"),
            "use_noise": get_bool(rec, "use_noise"), "affine": fc_spec(rec.child("affine")),
            "filter_shape": list(rec.buffers()["resample_filter"].shape)}


def _torgb_spec(rec: ModuleRecord) -> dict:
    weight = rec.params()["weight"]
    return {"in_channels": int(weight.shape[1]), "out_channels": int(weight.shape[0]),
            "kernel_size": int(weight.shape[-1]), "weight_gain": get_float(rec, "weight_gain"),
            "conv_clamp": optional_float(rec, "conv_clamp"), "affine": fc_spec(rec.child("affine"))}


def synthesis_spec(rec: ModuleRecord) -> dict:
    blocks = []
    for name in rec.children():
        if not name.startswith("b"):
            raise GeneratorFileError(f"StyleGAN2 synthesis has an unexpected child {name!r}")
        b = rec.child(name)
        architecture = b.attr("architecture")
        if architecture not in ("skip", "orig"):
            raise GeneratorFileError(f"synthesis.{name}.architecture = {architecture!r}: only 'skip' and 'orig' "
                                     "generators are supported (resnet generators are not)")
        has = b.children()
        blocks.append({"name": name, "resolution": get_int(b, "resolution"), "in_channels": get_int(b, "in_channels"),
                       "img_channels": get_int(b, "img_channels"), "is_last": get_bool(b, "is_last"),
                       "architecture": architecture, "use_fp16": get_bool(b, "use_fp16"),
                       "filter_shape": list(b.buffers()["resample_filter"].shape),
                       "num_conv": get_int(b, "num_conv"), "num_torgb": get_int(b, "num_torgb"),
                       "conv0": _layer_spec(b.child("conv0")) if "conv0" in has else None,
                       "conv1": _layer_spec(b.child("conv1")),
                       "torgb": _torgb_spec(b.child("torgb")) if "torgb" in has else None})
    return {"w_dim": get_int(rec, "w_dim"), "num_ws": get_int(rec, "num_ws"),
            "img_resolution": get_int(rec, "img_resolution"), "img_channels": get_int(rec, "img_channels"),
            "blocks": blocks}


class SynthesisLayer(nn.Module):
    """Modulated conv (+2x up) -> noise -> bias, lrelu * act_gain, clamp. ``[B, I, r/up, r/up]`` -> ``[B, O, r, r]``."""

    def __init__(self, spec: dict) -> None:
        super().__init__()
        self.spec = spec
        self.affine = make_fc(spec["affine"])
        o, i, k = spec["out_channels"], spec["in_channels"], spec["kernel_size"]
        self.weight = nn.Parameter(torch.zeros(o, i, k, k))
        self.bias = nn.Parameter(torch.zeros(o))
        if spec["use_noise"]:
            self.register_buffer("noise_const", torch.zeros(spec["resolution"], spec["resolution"]))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("resample_filter", torch.zeros(spec["filter_shape"]))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        s = self.spec
        styles = self.affine(w)  # [B, I]
        x = modulated_conv2d(x, self.weight, styles, padding=s["padding"], up=s["up"], flip_weight=s["up"] == 1,
                             resample_filter=self.resample_filter, prenormalize=x.dtype == torch.float16)
        if s["use_noise"] and noise_mode == "const":
            x = x + (self.noise_const * self.noise_strength).to(x.dtype)
        elif s["use_noise"] and noise_mode == "random":
            r = s["resolution"]
            x = x + (torch.randn(x.shape[0], 1, r, r, device=x.device) * self.noise_strength).to(x.dtype)
        clamp = s["conv_clamp"]
        return bias_act(x, self.bias, s["activation"], gain=s["act_gain"], clamp=clamp)


class ToRGBLayer(nn.Module):
    """Modulated 1x1 conv without demodulation, bias, clamp. ``[B, C, r, r]`` -> ``[B, img_channels, r, r]``."""

    def __init__(self, spec: dict) -> None:
        super().__init__()
        self.spec = spec
        self.affine = make_fc(spec["affine"])
        o, i, k = spec["out_channels"], spec["in_channels"], spec["kernel_size"]
        self.weight = nn.Parameter(torch.zeros(o, i, k, k))
        self.bias = nn.Parameter(torch.zeros(o))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.spec["weight_gain"]
        x = modulated_conv2d(x, self.weight, styles, demodulate=False)
        return bias_act(x, self.bias, clamp=self.spec["conv_clamp"])


class SynthesisBlock(nn.Module):
    """One resolution: ``(x [B, C, r/2, r/2] | None, img [B, 3, r/2, r/2] | None, ws [B, n, w_dim])`` ->
    ``(x [B, C', r, r], img [B, 3, r, r])``."""

    def __init__(self, spec: dict) -> None:
        super().__init__()
        self.spec = spec
        c0 = spec["conv1"]
        if spec["in_channels"] == 0:
            self.const = nn.Parameter(torch.zeros(c0["in_channels"], spec["resolution"], spec["resolution"]))
        self.register_buffer("resample_filter", torch.zeros(spec["filter_shape"]))
        if spec["conv0"] is not None:
            self.conv0 = SynthesisLayer(spec["conv0"])
        self.conv1 = SynthesisLayer(c0)
        if spec["torgb"] is not None:
            self.torgb = ToRGBLayer(spec["torgb"])

    def dtype_on(self, device: torch.device) -> torch.dtype:
        return torch.float16 if self.spec["use_fp16"] and device.type == "cuda" else torch.float32

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor, noise_mode: str = "const",
                features: list | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        dtype = self.dtype_on(ws.device)
        w_iter = iter(ws.unbind(dim=1))
        if self.spec["in_channels"] == 0:
            x = self.const.to(dtype).unsqueeze(0).repeat(ws.shape[0], 1, 1, 1)  # [B, C, 4, 4]
        else:
            x = x.to(dtype)
        for conv in ([self.conv0] if self.spec["conv0"] is not None else []) + [self.conv1]:
            x = conv(x, next(w_iter), noise_mode)
            if features is not None:
                features.append(x)
        if img is not None:  # [B, 3, r/2, r/2] -> [B, 3, r, r]
            taps = self.resample_filter.shape[-1]
            p0, p1 = (taps + 1) // 2, (taps - 2) // 2
            img = upfirdn2d(img, self.resample_filter, up=2, padding=(p0, p1, p0, p1), gain=4)
        if self.spec["torgb"] is not None:
            y = self.torgb(x, next(w_iter)).float()
            img = y if img is None else img + y
        return x, img


class SynthesisNetwork(nn.Module):
    """ws ``[B, num_ws, w_dim]`` -> image ``[B, img_channels, R, R]``; children ``b4 ... b<R>`` in order."""

    def __init__(self, spec: dict) -> None:
        super().__init__()
        self.w_dim, self.num_ws = spec["w_dim"], spec["num_ws"]
        self.img_resolution, self.img_channels = spec["img_resolution"], spec["img_channels"]
        self.block_names = [b["name"] for b in spec["blocks"]]
        self.feature_layers: dict[str, str] = {}  # feature name -> official module path
        for b in spec["blocks"]:
            self.add_module(b["name"], SynthesisBlock(b))
            for conv in ("conv0", "conv1"):
                if b[conv] is not None:
                    idx = len(self.feature_layers)
                    self.feature_layers[f"L{idx}_{b['resolution']}_{b[conv]['out_channels']}"] = f"{b['name']}.{conv}"
        self.feature_names = tuple(self.feature_layers)

    def _run(self, ws: torch.Tensor, noise_mode: str, want: set[str]) -> tuple[torch.Tensor | None, dict]:
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must be [B, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}")
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        ws = ws.float()
        x = img = None
        feats: list[torch.Tensor] = []
        w_idx = 0
        for name in self.block_names:
            block = getattr(self, name)
            n = block.spec["num_conv"] + block.spec["num_torgb"]
            x, img = block(x, img, ws.narrow(1, w_idx, n), noise_mode, feats)
            w_idx += block.spec["num_conv"]
            if want and not want.difference(self.feature_names[: len(feats)]):
                break  # every requested map exists: skip the finer blocks
        named = {n: f.float() for n, f in zip(self.feature_names, feats) if n in want}
        return img, named

    def forward(self, ws: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        return self._run(ws, noise_mode, set())[0]

    def features(self, ws: torch.Tensor, names, noise_mode: str = "const") -> dict[str, torch.Tensor]:
        unknown = set(names) - set(self.feature_names)
        if unknown:
            raise ValueError(f"unknown feature names {sorted(unknown)}; available: {self.feature_names}")
        return self._run(ws, noise_mode, set(names))[1]


def spec_from_record(g: ModuleRecord) -> dict:
    """The JSON spec of a StyleGAN2 ``G_ema`` record (see module docstring)."""
    return {"kind": "stylegan2", "mapping": mapping_spec(g.child("mapping")),
            "synthesis": synthesis_spec(g.child("synthesis"))}


def build(spec: dict) -> tuple[StyleMapping, SynthesisNetwork]:
    return StyleMapping(spec["mapping"]), SynthesisNetwork(spec["synthesis"])
