"""Tiny random StyleGAN2-ADA / StyleGAN3 (T, R) / StyleGAN-XL generators as persistent-record trees.

Layer attributes follow the published equations (StyleGAN3 layer specs: geometric cutoff/stopband
progression, sampling rates, half-widths, sizes with margins, channels; Kaiser-windowed sinc (T) and jinc (R)
filters; paddings; StyleGAN-XL super-resolution head) and the attribute types of the real files (numpy int64
sizes, float64 cutoffs, numpy bool ``use_fp16``). ``write_*`` pickle them with ``nvidia_pickle_writer``.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import scipy.signal
import scipy.special
import torch
from nvidia_pickle_writer import HOOKS_TORCH1, EasyDict, Foreign, Rec, dump
from torch import nn

LRELU_GAIN = np.float64(np.sqrt(2))


class Rand:
    def __init__(self, seed: int) -> None:
        self.g = torch.Generator().manual_seed(seed)

    def randn(self, *shape, scale: float = 1.0) -> torch.Tensor:
        return torch.randn(*shape, generator=self.g) * scale

    def param(self, *shape, scale: float = 1.0) -> nn.Parameter:
        return nn.Parameter(self.randn(*shape, scale=scale))

    def uniform(self, lo: float, hi: float) -> float:
        return lo + (hi - lo) * float(torch.rand([], generator=self.g))


def fc(r: Rand, in_f: int, out_f: int, activation: str = "linear", lr_mul: float = 1, bias_init=0.0,
       sg3: bool = False) -> Rec:
    rec = Rec("FullyConnectedLayer", dict(in_features=in_f, out_features=out_f, activation=activation))
    if sg3:
        rec.attrs.update(in_features=in_f, out_features=out_f)
    rec.attrs["activation"] = activation
    bias = torch.as_tensor(np.broadcast_to(np.asarray(bias_init, dtype=np.float32), [out_f]).copy())
    rec.params["weight"] = r.param(out_f, in_f, scale=1 / lr_mul)
    rec.params["bias"] = nn.Parameter((bias + r.randn(out_f, scale=0.1)) / lr_mul)
    rec.attrs.update(weight_gain=np.float64(lr_mul / np.sqrt(in_f)), bias_gain=lr_mul)
    return rec


def mapping(r: Rand, z_dim: int, c_dim: int, w_dim: int, num_ws: int, num_layers: int, sg3: bool) -> Rec:
    """StyleGAN2-ADA (w_avg_beta 0.995) or StyleGAN3 (0.998, ``embed = None`` when unconditional) mapping."""
    rec = Rec("MappingNetwork", dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=num_ws, num_layers=num_layers))
    rec.attrs.update(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=num_ws, num_layers=num_layers,
                     w_avg_beta=0.998 if sg3 else 0.995)
    feats = [z_dim + (w_dim if c_dim else 0)] + [w_dim] * num_layers
    if c_dim:
        rec.modules["embed"] = fc(r, c_dim, w_dim, sg3=sg3)
    elif sg3:
        rec.attrs["embed"] = None
    for i in range(num_layers):
        rec.modules[f"fc{i}"] = fc(r, feats[i], feats[i + 1], "lrelu", lr_mul=0.01, sg3=sg3)
    rec.buffers["w_avg"] = r.randn(w_dim)
    return rec


def generator(syn: Rec, mapping_rec: Rec, z_dim: int, c_dim: int, w_dim: int, res: int, num_ws: int) -> Rec:
    g = Rec("Generator", dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=res, img_channels=3))
    g.attrs.update(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=res, img_channels=3)
    g.modules.update(synthesis=syn, mapping=mapping_rec)
    g.attrs["num_ws"] = num_ws
    return g


# ---- StyleGAN2-ADA ------------------------------------------------------------------------------------------

def fir_2d(taps=(1, 3, 3, 1)) -> torch.Tensor:
    f = torch.as_tensor(taps, dtype=torch.float32)
    f = torch.outer(f, f)
    return f / f.sum()


def sg2_layer(r: Rand, cin: int, cout: int, w_dim: int, res: int, up: int, conv_clamp) -> Rec:
    rec = Rec("SynthesisLayer", dict(in_channels=cin, out_channels=cout, w_dim=w_dim, resolution=res, up=up))
    rec.attrs.update(resolution=res, up=up, use_noise=True, activation="lrelu", conv_clamp=conv_clamp)
    rec.buffers["resample_filter"] = fir_2d()
    rec.attrs.update(padding=1, act_gain=LRELU_GAIN)
    rec.modules["affine"] = fc(r, w_dim, cin, bias_init=1)
    rec.params["weight"] = r.param(cout, cin, 3, 3)
    rec.buffers["noise_const"] = r.randn(res, res)
    rec.params["noise_strength"] = nn.Parameter(torch.tensor(r.uniform(0.1, 0.5)))
    rec.params["bias"] = r.param(cout, scale=0.2)
    return rec


def stylegan2_generator(seed: int = 0, z_dim: int = 8, c_dim: int = 0, w_dim: int = 16, img_resolution: int = 16,
                        channel_base: int = 128, channel_max: int = 32, num_fp16_res: int = 2,
                        conv_clamp: int | None = 256, mapping_layers: int = 2, architecture: str = "skip") -> Rec:
    """``Generator`` with synthesis blocks ``b4 ... b<R>`` (skip or orig architecture)."""
    r = Rand(seed)
    log2 = int(np.log2(img_resolution))
    resolutions = [2**i for i in range(2, log2 + 1)]
    ch = {res: min(channel_base // res, channel_max) for res in resolutions}
    fp16_res = max(2 ** (log2 + 1 - num_fp16_res), 8)
    syn = Rec("SynthesisNetwork", dict(w_dim=w_dim, img_resolution=img_resolution, img_channels=3))
    syn.attrs.update(w_dim=w_dim, img_resolution=img_resolution, img_resolution_log2=log2, img_channels=3,
                     block_resolutions=resolutions)
    num_ws = 0
    for res in resolutions:
        in_ch, out_ch, is_last = (ch[res // 2] if res > 4 else 0), ch[res], res == img_resolution
        b = Rec("SynthesisBlock", dict(in_channels=in_ch, out_channels=out_ch, w_dim=w_dim, resolution=res))
        b.attrs.update(in_channels=in_ch, w_dim=w_dim, resolution=res, img_channels=3, is_last=is_last,
                       architecture=architecture, use_fp16=res >= fp16_res, channels_last=False)
        b.buffers["resample_filter"] = fir_2d()
        b.attrs.update(num_conv=0, num_torgb=0)
        if in_ch == 0:
            b.params["const"] = r.param(out_ch, res, res)
        for name, cin, up in ([("conv0", in_ch, 2)] if in_ch else []) + [("conv1", out_ch, 1)]:
            b.modules[name] = sg2_layer(r, cin, out_ch, w_dim, res, up, conv_clamp)
            b.attrs["num_conv"] += 1
        if is_last or architecture == "skip":
            t = Rec("ToRGBLayer", dict(in_channels=out_ch, out_channels=3, w_dim=w_dim))
            t.attrs["conv_clamp"] = conv_clamp
            t.modules["affine"] = fc(r, w_dim, out_ch, bias_init=1)
            t.params["weight"] = r.param(3, out_ch, 1, 1)
            t.params["bias"] = r.param(3, scale=0.1)
            t.attrs["weight_gain"] = np.float64(1 / np.sqrt(out_ch))
            b.modules["torgb"] = t
            b.attrs["num_torgb"] += 1
        num_ws += b.attrs["num_conv"] + (b.attrs["num_torgb"] if is_last else 0)
        syn.modules[f"b{res}"] = b
    syn.attrs["num_ws"] = num_ws
    return generator(syn, mapping(r, z_dim, c_dim, w_dim, num_ws, mapping_layers, sg3=False), z_dim, c_dim, w_dim,
                     img_resolution, num_ws)


# ---- StyleGAN3 ----------------------------------------------------------------------------------------------

def sg3_layer_specs(num_layers: int, img_resolution: int, num_critical: int, margin: int, channel_base: int,
                    channel_max: int, first_cutoff: float = 2, first_stopband: float = 2**2.1,
                    last_stopband_rel: float = 2**0.3, sampling_rate0: float | None = None,
                    channels0: int | None = None) -> dict[str, np.ndarray]:
    """Per-layer cutoffs f_c, stopbands f_t, sampling rates s, half-widths f_h, sizes, channels (N + 1 layers)."""
    last_cutoff = img_resolution / 2
    t = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
    cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** t
    stopbands = first_stopband * (last_cutoff * last_stopband_rel / first_stopband) ** t
    rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
    if sampling_rate0 is not None:
        rates[0] = sampling_rate0
    sizes = rates + 2 * margin
    sizes[-2:] = img_resolution
    channels = np.rint(np.minimum(channel_base / 2 / cutoffs, channel_max))
    if channels0 is not None:
        channels[0] = channels0
    channels[-1] = 3
    return dict(cutoffs=cutoffs, stopbands=stopbands, rates=rates,
                half_widths=np.maximum(stopbands, rates / 2) - cutoffs, sizes=sizes, channels=channels)


def lowpass(numtaps: int, cutoff: float, width: float, fs: float, radial: bool = False) -> torch.Tensor | None:
    """Kaiser-windowed sinc (separable, 1-D) or jinc (radial, 2-D) low-pass filter; None for one tap."""
    if numtaps == 1:
        return None
    if not radial:
        return torch.as_tensor(scipy.signal.firwin(numtaps, cutoff, width=width, fs=fs), dtype=torch.float32)
    coords = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    radius = np.sqrt(coords[:, None] ** 2 + coords[None, :] ** 2)
    jinc = scipy.special.j1(2 * np.pi * cutoff * radius) / (np.pi * radius)
    beta = scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(numtaps, width / (fs / 2)))
    window = scipy.signal.windows.kaiser(numtaps, beta)
    f = jinc * window[:, None] * window[None, :]
    return torch.as_tensor(f / f.sum(), dtype=torch.float32)


def sg3_layer(r: Rand, s: dict, idx: int, prev: int, num_layers: int, num_critical: int, img_resolution: int,
              num_fp16_res: int, conv_kernel: int, radial: bool, w_dim: int, xl: bool) -> Rec:
    """``SynthesisLayer`` ``idx`` of the specs ``s`` (its input from entry ``prev``)."""
    is_torgb, critical = idx == num_layers, idx >= num_layers - num_critical
    in_ch, out_ch = int(s["channels"][prev]), int(s["channels"][idx])
    in_size = np.broadcast_to(np.asarray(int(s["sizes"][prev])), [2])  # int64 [2], as pickled
    out_size = np.broadcast_to(np.asarray(int(s["sizes"][idx])), [2])
    in_sr, out_sr = int(s["rates"][prev]), int(s["rates"][idx])
    k = 1 if is_torgb else conv_kernel
    tmp_sr = max(in_sr, out_sr) * (1 if is_torgb else 2)
    up, down = int(np.rint(tmp_sr / in_sr)), int(np.rint(tmp_sr / out_sr))
    up_taps = 6 * up if up > 1 and not is_torgb else 1
    down_taps = 6 * down if down > 1 and not is_torgb else 1
    pad_total = (out_size - 1) * down + 1 - (in_size + k - 1) * up + up_taps + down_taps - 2
    pad_lo = (pad_total + up) // 2  # symmetric sample positions
    pad_hi = pad_total - pad_lo
    rec = Rec("SynthesisLayer", dict(w_dim=w_dim, is_torgb=is_torgb, in_channels=in_ch, out_channels=out_ch))
    rec.attrs.update(w_dim=w_dim, is_torgb=is_torgb, is_critically_sampled=critical,
                     use_fp16=s["rates"][idx] * 2**num_fp16_res > img_resolution, in_channels=in_ch,
                     out_channels=out_ch, in_size=in_size, out_size=out_size, in_sampling_rate=in_sr,
                     out_sampling_rate=out_sr, tmp_sampling_rate=tmp_sr, in_cutoff=s["cutoffs"][prev],
                     out_cutoff=s["cutoffs"][idx], in_half_width=s["half_widths"][prev],
                     out_half_width=s["half_widths"][idx], conv_kernel=k, conv_clamp=256, magnitude_ema_beta=0.999)
    if xl:  # XL sets these, then (re)sets tmp_sampling_rate in its init_upfirdn
        rec.attrs.update(filter_size=6, use_radial_filters=radial, lrelu_upsampling=2)
        rec.attrs["tmp_sampling_rate"] = rec.attrs.pop("tmp_sampling_rate")
    rec.modules["affine"] = fc(r, w_dim, in_ch, bias_init=1, sg3=True)
    rec.params["weight"] = r.param(out_ch, in_ch, k, k)
    rec.params["bias"] = r.param(out_ch, scale=0.2)
    rec.buffers["magnitude_ema"] = torch.tensor(r.uniform(0.5, 1.5))
    rec.attrs.update(up_factor=up, up_taps=up_taps)
    rec.buffers["up_filter"] = lowpass(up_taps, s["cutoffs"][prev], s["half_widths"][prev] * 2, tmp_sr)
    rec.attrs.update(down_factor=down, down_taps=down_taps, down_radial=radial and not critical)
    rec.buffers["down_filter"] = lowpass(down_taps, s["cutoffs"][idx], s["half_widths"][idx] * 2, tmp_sr,
                                         radial=radial and not critical)
    rec.attrs["padding"] = [int(pad_lo[0]), int(pad_hi[0]), int(pad_lo[1]), int(pad_hi[1])]
    return rec


def synthesis_input(r: Rand, w_dim: int, channels: int, size: int, rate, bandwidth, transform=None) -> Rec:
    rec = Rec("SynthesisInput", dict(w_dim=w_dim, channels=channels, size=size, sampling_rate=rate,
                                     bandwidth=bandwidth))
    rec.attrs.update(w_dim=w_dim, channels=channels, size=np.broadcast_to(np.asarray(size), [2]),
                     sampling_rate=rate, bandwidth=bandwidth)
    direction = r.randn(channels, 2)
    radius = torch.rand(channels, 1, generator=r.g).sqrt() * float(bandwidth)  # uniform on the disc
    freqs = direction / direction.norm(dim=1, keepdim=True) * radius
    rec.params["weight"] = r.param(channels, channels)
    rec.modules["affine"] = fc(r, w_dim, 4, bias_init=[1, 0, 0, 0], sg3=True)
    rec.buffers["transform"] = torch.eye(3) if transform is None else torch.as_tensor(transform, dtype=torch.float32)
    rec.buffers["freqs"] = freqs
    rec.buffers["phases"] = torch.rand(channels, generator=r.g) - 0.5
    return rec


def stylegan3_generator(seed: int = 0, radial: bool = False, z_dim: int = 8, c_dim: int = 0, w_dim: int = 16,
                        img_resolution: int = 16, channel_base: int = 256, channel_max: int = 32, num_layers: int = 4,
                        num_critical: int = 2, margin_size: int = 2, num_fp16_res: int = 2,
                        mapping_layers: int = 2, transform=None) -> Rec:
    """StyleGAN3-T (``radial=False``, 3x3 convs) or -R (radial down filters, 1x1 convs) ``Generator``."""
    r = Rand(seed)
    conv_kernel = 1 if radial else 3
    s = sg3_layer_specs(num_layers, img_resolution, num_critical, margin_size, channel_base, channel_max)
    syn = Rec("SynthesisNetwork", dict(w_dim=w_dim, img_resolution=img_resolution, img_channels=3,
                                       num_layers=num_layers, conv_kernel=conv_kernel, use_radial_filters=radial))
    syn.attrs.update(w_dim=w_dim, num_ws=num_layers + 2, img_resolution=img_resolution, img_channels=3,
                     num_layers=num_layers, num_critical=num_critical, margin_size=margin_size, output_scale=0.25,
                     num_fp16_res=num_fp16_res)
    syn.modules["input"] = synthesis_input(r, w_dim, int(s["channels"][0]), int(s["sizes"][0]), s["rates"][0],
                                           s["cutoffs"][0], transform)
    names = []
    for idx in range(num_layers + 1):
        layer = sg3_layer(r, s, idx, max(idx - 1, 0), num_layers, num_critical, img_resolution, num_fp16_res,
                          conv_kernel, radial, w_dim, xl=False)
        names.append(f"L{idx}_{layer.attrs['out_size'][0]}_{layer.attrs['out_channels']}")
        syn.modules[names[-1]] = layer
    syn.attrs["layer_names"] = names
    return generator(syn, mapping(r, z_dim, c_dim, w_dim, num_layers + 2, mapping_layers, sg3=True), z_dim, c_dim,
                     w_dim, img_resolution, num_layers + 2)


# ---- StyleGAN-XL (SuperresGenerator) ------------------------------------------------------------------------

def xl_mapping(r: Rand, z_dim: int, c_dim: int, w_dim: int, num_ws: int, stem_num_ws: int) -> Rec:
    """XL mapping: ``embed`` Embedding(1000, 320) always, ``embed_proj`` only when conditional, fc0, fc1, w_avg."""
    rec = Rec("MappingNetwork", dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=stem_num_ws, num_layers=2,
                                     rand_embedding=False))
    rec.attrs.update(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=num_ws, num_layers=2, w_avg_beta=0.998)
    rec.modules["embed"] = torch1_embedding(r.randn(1000, 320))
    if c_dim:
        rec.modules["embed_proj"] = fc(r, 320, z_dim, "lrelu", sg3=True)
    else:
        rec.attrs["embed_proj"] = None
    feats = [z_dim * (2 if c_dim else 1), w_dim, w_dim]
    for i in range(2):
        rec.modules[f"fc{i}"] = fc(r, feats[i], feats[i + 1], "lrelu", lr_mul=0.01, sg3=True)
    rec.buffers["w_avg"] = r.randn(*([c_dim, w_dim] if c_dim else [w_dim]))
    return rec


def torch1_embedding(weight: torch.Tensor) -> Foreign:
    """``torch.nn.Embedding`` as XL's ``in_embeddings`` file holds it: NEWOBJ + BUILD of a torch-1.x state."""
    state = {"training": False, "_parameters": OrderedDict(weight=nn.Parameter(weight)), "_buffers": OrderedDict(),
             "_non_persistent_buffers_set": set()}
    state.update({hook: OrderedDict() for hook in HOOKS_TORCH1})
    state.update(_modules=OrderedDict(), num_embeddings=weight.shape[0], embedding_dim=weight.shape[1],
                 padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False, sparse=False)
    return Foreign("torch.nn.modules.sparse", "Embedding", state)


def stylegan_xl_generator(seed: int = 0, c_dim: int = 0, z_dim: int = 8, w_dim: int = 16, stem_resolution: int = 16,
                          up_factor: int = 4, stem_layers: int = 6, head_layers: int = 4, channel_base: int = 512,
                          channel_max: int = 64, margin_size: int = 10, num_fp16_res: int = 4) -> Rec:
    """A ``SuperresGenerator``: stem layers without the critically sampled ones, then the head layers; the
    synthesis/mapping records keep the stem's ``_init_kwargs``."""
    r = Rand(seed)
    img_resolution, num_critical = stem_resolution * up_factor, 2
    s = sg3_layer_specs(stem_layers, stem_resolution, num_critical, margin_size, channel_base, channel_max)
    stem_kwargs = dict(w_dim=w_dim, img_resolution=stem_resolution, img_channels=3, channel_base=channel_base,
                       channel_max=channel_max, num_layers=stem_layers, num_critical=num_critical,
                       margin_size=margin_size, num_fp16_res=num_fp16_res, conv_kernel=3, use_radial_filters=False)
    syn = Rec("SynthesisNetwork", stem_kwargs)
    syn.modules["input"] = synthesis_input(r, w_dim, int(s["channels"][0]), int(s["sizes"][0]), s["rates"][0],
                                           s["cutoffs"][0])
    names, last = [], None
    for idx in range(stem_layers - num_critical):  # the critically sampled stem layers are cut
        last = sg3_layer(r, s, idx, max(idx - 1, 0), stem_layers, num_critical, stem_resolution, num_fp16_res, 3,
                         False, w_dim, xl=True)
        names.append(f"L{idx}_{last.attrs['out_size'][0]}_{last.attrs['out_channels']}")
        syn.modules[names[-1]] = last
    stem_len = len(names) + 1  # hence the skipped index in the names
    h = sg3_layer_specs(head_layers, img_resolution, num_critical, margin_size, channel_base, channel_max,
                        first_cutoff=last.attrs["out_cutoff"],
                        first_stopband=last.attrs["out_half_width"] + last.attrs["out_cutoff"],
                        sampling_rate0=last.attrs["out_sampling_rate"], channels0=last.attrs["out_channels"])
    for idx in range(head_layers + 1):
        layer = sg3_layer(r, h, idx, max(idx - 1, 0), head_layers, num_critical, img_resolution, num_fp16_res, 3,
                          False, w_dim, xl=True)
        names.append(f"L{idx + stem_len}_{layer.attrs['out_size'][0]}_{layer.attrs['out_channels']}")
        syn.modules[names[-1]] = layer
    num_ws = len(names) + 1
    syn.attrs.update(w_dim=w_dim, num_ws=num_ws, img_resolution=img_resolution, img_channels=3,
                     num_layers=stem_len + head_layers, num_critical=num_critical, margin_size=margin_size,
                     output_scale=0.25, num_fp16_res=num_fp16_res, channel_base=channel_base,
                     last_stopband_rel=2**0.3, first_stopband=2**2.1, first_cutoff=2, channel_max=channel_max,
                     conv_kernel=3, use_radial_filters=False, sampling_rates=s["rates"], layer_names=names)
    g = Rec("SuperresGenerator", dict(img_resolution=img_resolution, path_stem="https://example.org/stem.pkl",
                                      head_layers=head_layers, up_factor=up_factor))
    g.attrs.update(path_stem="https://example.org/stem.pkl", up_factor=up_factor)
    g.modules.update(mapping=xl_mapping(r, z_dim, c_dim, w_dim, num_ws, stem_layers + 2), synthesis=syn)
    g.attrs.update(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_channels=3, channel_base=channel_base,
                   channel_max=channel_max, margin_size=margin_size, last_stopband_rel=2**0.3,
                   num_critical=num_critical, num_fp16_res=num_fp16_res, conv_kernel=3, use_radial_filters=False,
                   img_resolution=img_resolution, num_layers=stem_len + head_layers, num_ws=num_ws,
                   head_layer_names=names[stem_len - 1:])
    return g


def timm_discriminator(r: Rand) -> Foreign:
    """A stand-in for XL's projected discriminator: timm classes our reader must never import."""
    act = Foreign("timm.layers.activations", "Swish", {"training": False, "inplace": True})
    return Foreign("timm.models.efficientnet", "EfficientNet",
                   {"training": False, "_parameters": {}, "_buffers": {"w": r.randn(4)},
                    "_modules": {"act": act, "head": nn.Linear(4, 2)}, "drop_rate": 0.2})


def snapshot(g_ema: Rec, g: Rec, d, **extra) -> dict:
    """The training-snapshot dict of the official training loops."""
    return dict(G=g, D=d, G_ema=g_ema, augment_pipe=None, training_set_kwargs=EasyDict(resolution=16, **extra))


def write_stylegan2(path: str | Path, style: str = "numpy2", torch_gen: int = 2, seed: int = 0, **kw) -> Path:
    g = stylegan2_generator(seed, **kw)
    d = Rec("Discriminator")
    d.params["w"] = nn.Parameter(torch.ones(3))
    return dump(snapshot(g, stylegan2_generator(seed + 100, **kw), d), path, style, torch_gen)


def write_stylegan3(path: str | Path, style: str = "numpy2", torch_gen: int = 2, seed: int = 0, **kw) -> Path:
    return dump(snapshot(stylegan3_generator(seed, **kw), stylegan3_generator(seed + 100, **kw), None), path, style,
                torch_gen)


def write_stylegan_xl(path: str | Path, style: str = "dill", torch_gen: int = 2, seed: int = 0, **kw) -> Path:
    g = stylegan_xl_generator(seed, **kw)
    return dump(snapshot(g, stylegan_xl_generator(seed + 100, **kw), timm_discriminator(Rand(seed))), path, style,
                torch_gen)
