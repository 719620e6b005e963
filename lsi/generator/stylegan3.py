"""StyleGAN3 (T and R) synthesis, our implementation, rebuilt from the data of an official network pickle.

Also the synthesis of StyleGAN-XL, which keeps StyleGAN3's layers (see :mod:`lsi.generator.stylegan_xl`).

Layout (facts of the official ``networks_stylegan3.py`` pickles, code written here):

* ``input`` (:class:`SynthesisInput`): Fourier features. ``t = affine(w)`` is normalised by ``|t[:2]|`` and read
  as an inverse rotation (``t0, t1``) and translation (``t2, t3``); with the user ``transform`` buffer
  ``T = R(t) @ Tr(t) @ transform``, frequencies become ``freqs @ T[:2, :2]`` and phases ``phases + freqs @
  T[:2, 2]``; out-of-band frequencies are damped by ``clamp(1 - (|f| - bandwidth) / (sr / 2 - bandwidth), 0,
  1)``. On the pixel grid ``g_j = (j + 0.5 - size / 2) / sr``: ``x = sin(2 pi (g . f + phase)) * amplitude``,
  then a ``[C, C]`` linear map ``weight / sqrt(C)``. ``w [B, w_dim]`` -> ``[B, C, size_y, size_x]``.
* layers ``L<i>_<size>_<channels>`` in ``layer_names`` order (:class:`SynthesisLayer`): modulated conv (``padding
  = k - 1``; demodulated except in ToRGB, whose styles are scaled by ``1 / sqrt(C_in k^2)``; input gain
  ``1 / sqrt(magnitude_ema)``) then :func:`~lsi.generator.stylegan_ops.filtered_lrelu` with the stored
  ``up_filter``/``down_filter`` (1-D for T, 2-D radial down filters for R, None = identity), the stored
  ``padding`` (negative = crop), gain sqrt 2 / slope 0.2 (ToRGB: 1 / 1) and ``conv_clamp`` (applied on CPU too).
* The last layer's output times ``output_scale`` is the image. Layer ``i`` reads ``ws[:, i + 1]``; ``input``
  reads ``ws[:, 0]``. fp16 layers run in fp16 on CUDA only.

Feature names are the layer names themselves (including the final ToRGB layer).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lsi.generator import stylegan2
from lsi.generator.errors import GeneratorFileError
from lsi.generator.layer_specs import fc_spec, get_bool, get_float, get_int, get_ints, make_fc, optional_float
from lsi.generator.pickle_records import ModuleRecord
from lsi.generator.stylegan_ops import LRELU_GAIN, LRELU_SLOPE, filtered_lrelu, modulated_conv2d


def input_spec(rec: ModuleRecord) -> dict:
    size = get_ints(rec, "size")
    return {"w_dim": get_int(rec, "w_dim"), "channels": get_int(rec, "channels"), "size": size * (2 // len(size)),
            "sampling_rate": get_float(rec, "sampling_rate"), "bandwidth": get_float(rec, "bandwidth"),
            "affine": fc_spec(rec.child("affine"))}


def layer_spec(rec: ModuleRecord) -> dict:
    weight = rec.params()["weight"]
    bufs = rec.buffers()
    padding = get_ints(rec, "padding")
    if len(padding) != 4:
        raise GeneratorFileError(f"{rec.class_name}.padding = {padding} is not [x0, x1, y0, y1]")
    return {"is_torgb": get_bool(rec, "is_torgb"), "use_fp16": get_bool(rec, "use_fp16"),
            "in_channels": int(weight.shape[1]), "out_channels": int(weight.shape[0]),
            "conv_kernel": int(weight.shape[-1]), "in_size": get_ints(rec, "in_size"),
            "out_size": get_ints(rec, "out_size"), "up_factor": get_int(rec, "up_factor"),
            "down_factor": get_int(rec, "down_factor"), "padding": padding,
            "conv_clamp": optional_float(rec, "conv_clamp"),
            "up_filter_shape": list(bufs["up_filter"].shape) if "up_filter" in bufs else None,
            "down_filter_shape": list(bufs["down_filter"].shape) if "down_filter" in bufs else None,
            "affine": fc_spec(rec.child("affine"))}


def synthesis_spec(rec: ModuleRecord) -> dict:
    names = [str(n) for n in rec.attr("layer_names")]
    children = set(rec.children())
    if children != {"input", *names}:
        raise GeneratorFileError(f"synthesis.layer_names {names} do not match its sub-modules {sorted(children)}")
    num_ws = get_int(rec, "num_ws")
    if num_ws != len(names) + 1:
        raise GeneratorFileError(f"synthesis.num_ws = {num_ws} but it has input + {len(names)} layers")
    return {"w_dim": get_int(rec, "w_dim"), "num_ws": num_ws, "img_resolution": get_int(rec, "img_resolution"),
            "img_channels": get_int(rec, "img_channels"), "output_scale": get_float(rec, "output_scale"),
            "input": input_spec(rec.child("input")), "layer_names": names,
            "layers": [layer_spec(rec.child(n)) for n in names]}


class SynthesisInput(nn.Module):
    """Fourier-feature input: ``w [B, w_dim]`` -> ``[B, channels, size_y, size_x]``."""

    def __init__(self, spec: dict) -> None:
        super().__init__()
        self.spec = spec
        c = spec["channels"]
        self.weight = nn.Parameter(torch.zeros(c, c))
        self.affine = make_fc(spec["affine"])
        self.register_buffer("transform", torch.eye(3))
        self.register_buffer("freqs", torch.zeros(c, 2))
        self.register_buffer("phases", torch.zeros(c))

    def transformed_frequencies(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(freqs [B, C, 2], phases [B, C], amplitudes [B, C])`` after the learned and user transforms."""
        t = self.affine(w)  # [B, 4] = (r_c, r_s, t_x, t_y)
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        zero, one = torch.zeros_like(t[:, 0]), torch.ones_like(t[:, 0])
        m_r = torch.stack([torch.stack([t[:, 0], -t[:, 1], zero], 1), torch.stack([t[:, 1], t[:, 0], zero], 1),
                           torch.stack([zero, zero, one], 1)], 1)  # [B, 3, 3] inverse rotation
        m_t = torch.stack([torch.stack([one, zero, -t[:, 2]], 1), torch.stack([zero, one, -t[:, 3]], 1),
                           torch.stack([zero, zero, one], 1)], 1)  # [B, 3, 3] inverse translation
        transforms = m_r @ m_t @ self.transform.unsqueeze(0)
        phases = self.phases.unsqueeze(0) + (self.freqs.unsqueeze(0) @ transforms[:, :2, 2:]).squeeze(2)
        freqs = self.freqs.unsqueeze(0) @ transforms[:, :2, :2]
        bw, sr = self.spec["bandwidth"], self.spec["sampling_rate"]
        amplitudes = (1 - (freqs.norm(dim=2) - bw) / (sr / 2 - bw)).clamp(0, 1)
        return freqs, phases, amplitudes

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        freqs, phases, amplitudes = self.transformed_frequencies(w.float())
        (sx, sy), sr = self.spec["size"], self.spec["sampling_rate"]
        gx = (torch.arange(sx, device=w.device, dtype=torch.float32) + 0.5 - sx / 2) / sr  # [W]
        gy = (torch.arange(sy, device=w.device, dtype=torch.float32) + 0.5 - sy / 2) / sr  # [H]
        fx, fy = freqs[:, None, None, :, 0], freqs[:, None, None, :, 1]  # [B, 1, 1, C]
        arg = gx[None, None, :, None] * fx + gy[None, :, None, None] * fy  # [B, H, W, C]
        x = torch.sin((arg + phases[:, None, None, :]) * (2 * math.pi)) * amplitudes[:, None, None, :]  # [B, H, W, C]
        x = x @ (self.weight / math.sqrt(self.spec["channels"])).t()
        return x.permute(0, 3, 1, 2).contiguous()  # [B, C, H, W]


class SynthesisLayer(nn.Module):
    """Modulated conv + filtered leaky ReLU: ``[B, C_in, in_size] -> [B, C_out, out_size]``."""

    def __init__(self, spec: dict) -> None:
        super().__init__()
        self.spec = spec
        o, i, k = spec["out_channels"], spec["in_channels"], spec["conv_kernel"]
        self.affine = make_fc(spec["affine"])
        self.weight = nn.Parameter(torch.zeros(o, i, k, k))
        self.bias = nn.Parameter(torch.zeros(o))
        self.register_buffer("magnitude_ema", torch.ones([]))
        for name in ("up_filter", "down_filter"):
            shape = spec[f"{name}_shape"]
            self.register_buffer(name, None if shape is None else torch.zeros(shape))

    def dtype_on(self, device: torch.device) -> torch.dtype:
        return torch.float16 if self.spec["use_fp16"] and device.type == "cuda" else torch.float32

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        s = self.spec
        styles = self.affine(w)  # [B, C_in]
        if s["is_torgb"]:
            styles = styles * (1 / math.sqrt(s["in_channels"] * s["conv_kernel"] ** 2))
        x = modulated_conv2d(x.to(self.dtype_on(x.device)), self.weight, styles, demodulate=not s["is_torgb"],
                             padding=s["conv_kernel"] - 1, input_gain=self.magnitude_ema.rsqrt(), prenormalize=True)
        gain, slope = (1.0, 1.0) if s["is_torgb"] else (LRELU_GAIN, LRELU_SLOPE)
        return filtered_lrelu(x, self.up_filter, self.down_filter, self.bias, up=s["up_factor"],
                              down=s["down_factor"], padding=s["padding"], gain=gain, slope=slope,
                              clamp=s["conv_clamp"])


class SynthesisNetwork(nn.Module):
    """ws ``[B, num_ws, w_dim]`` -> image ``[B, img_channels, R, R]``; children ``input`` then the layers in order."""

    def __init__(self, spec: dict) -> None:
        super().__init__()
        self.w_dim, self.num_ws = spec["w_dim"], spec["num_ws"]
        self.img_resolution, self.img_channels = spec["img_resolution"], spec["img_channels"]
        self.output_scale = spec["output_scale"]
        self.input = SynthesisInput(spec["input"])
        self.layer_names = list(spec["layer_names"])
        for name, layer in zip(self.layer_names, spec["layers"]):
            self.add_module(name, SynthesisLayer(layer))
        self.feature_names = tuple(self.layer_names)

    def _run(self, ws: torch.Tensor, want: set[str]) -> tuple[torch.Tensor | None, dict]:
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must be [B, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}")
        ws = ws.float()
        x = self.input(ws[:, 0])
        feats: dict[str, torch.Tensor] = {}
        for i, name in enumerate(self.layer_names):
            x = getattr(self, name)(x, ws[:, i + 1])
            if name in want:
                feats[name] = x.float()
                if len(feats) == len(want):
                    return None, feats  # every requested map exists: skip the finer layers
        return (x * self.output_scale if self.output_scale != 1 else x).float(), feats

    def forward(self, ws: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        if noise_mode not in stylegan2.NOISE_MODES:  # accepted for API parity; these layers have no noise
            raise ValueError(f"noise_mode must be one of {stylegan2.NOISE_MODES}, got {noise_mode!r}")
        return self._run(ws, set())[0]

    def features(self, ws: torch.Tensor, names, noise_mode: str = "const") -> dict[str, torch.Tensor]:
        unknown = set(names) - set(self.feature_names)
        if unknown:
            raise ValueError(f"unknown feature names {sorted(unknown)}; available: {self.feature_names}")
        return self._run(ws, set(names))[1]


def spec_from_record(g: ModuleRecord) -> dict:
    """The JSON spec of a StyleGAN3 ``G_ema`` record (T or R: the filters' shapes tell them apart)."""
    return {"kind": "stylegan3", "mapping": stylegan2.mapping_spec(g.child("mapping")),
            "synthesis": synthesis_spec(g.child("synthesis"))}


def build(spec: dict) -> tuple[stylegan2.StyleMapping, SynthesisNetwork]:
    return stylegan2.StyleMapping(spec["mapping"]), SynthesisNetwork(spec["synthesis"])
