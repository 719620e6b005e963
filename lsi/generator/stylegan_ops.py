"""Reference math shared by the StyleGAN-family generators (pure PyTorch, written from the published equations).

* :func:`upfirdn2d` - upsample by zero insertion, pad (negative = crop), convolve with a FIR filter (1-D
  separable or 2-D), downsample by keeping every n-th sample. Padding is ``[x_lo, x_hi, y_lo, y_hi]``.
* :func:`filtered_lrelu` - StyleGAN3's alias-free nonlinearity: bias, upsample (FIR, gain ``up**2``),
  leaky ReLU times ``gain``, clamp to ``[-clamp, clamp]``, downsample (FIR).
* :func:`modulated_conv2d` - StyleGAN2's modulation/demodulation: ``w'_oik = s_i w_oik``, demodulated by
  ``d_o = 1 / sqrt(sum_ik w'_oik^2 + 1e-8)``; computed as ``d * conv(x * s, w)``, which equals the per-sample
  modulated weight exactly (one ordinary conv instead of a grouped one).
* :class:`FullyConnected` - equalised-learning-rate linear layer (``weight_gain``, ``bias_gain``) with an
  optional ``lrelu`` (slope 0.2, gain sqrt 2) activation.

Shapes: activations ``[B, C, H, W]``, styles ``[B, C_in]``, conv weights ``[C_out, C_in, k, k]``.
Everything runs in the dtype of ``x``; on fp16 the FIR/activation steps compute in fp32 and cast back.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)


def bias_act(x: torch.Tensor, bias: torch.Tensor | None, activation: str = "linear", gain: float | None = None,
             clamp: float | None = None) -> torch.Tensor:
    """``clamp(act(x + b) * gain)`` with the bias along dim 1; ``gain`` defaults to the activation's own."""
    if bias is not None:
        x = x + bias.to(x.dtype).reshape([-1 if i == 1 else 1 for i in range(x.ndim)])
    if activation == "lrelu":
        x = F.leaky_relu(x, LRELU_SLOPE)
        gain = LRELU_GAIN if gain is None else gain
    elif activation == "relu":
        x = F.relu(x)
        gain = LRELU_GAIN if gain is None else gain
    elif activation != "linear":
        raise ValueError(f"activation {activation!r} is not supported (linear, relu, lrelu)")
    if gain is not None and gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


class FullyConnected(nn.Module):
    """``act(x @ (W * weight_gain)^T + b * bias_gain)``; ``x [B, in]`` -> ``[B, out]``."""

    def __init__(self, in_features: int, out_features: int, activation: str = "linear", weight_gain: float = 1.0,
                 bias_gain: float = 1.0, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.activation, self.weight_gain, self.bias_gain = activation, float(weight_gain), float(bias_gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = None if self.bias is None else self.bias.to(x.dtype) * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, self.activation)


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``x / sqrt(mean(x^2) + eps)`` over dim 1."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def upfirdn2d(x: torch.Tensor, f: torch.Tensor | None, up: int = 1, down: int = 1,
              padding: tuple[int, int, int, int] | list[int] = (0, 0, 0, 0), gain: float = 1.0,
              flip_filter: bool = False) -> torch.Tensor:
    """``[B, C, H, W]`` -> ``[B, C, (H*up + py0 + py1 - fh + 1) / down, (W*up + px0 + px1 - fw + 1) / down]``.

    ``f`` is ``[taps]`` (separable: applied along x then y, so ``gain`` enters as ``gain ** 0.5`` per axis),
    ``[fh, fw]`` or None (identity). ``flip_filter=False`` means true convolution (the filter is flipped).
    """
    b, c, h, w = x.shape
    px0, px1, py0, py1 = (int(p) for p in padding)
    if up > 1:  # insert up-1 zeros after every sample
        x = x.reshape(b, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1]).reshape(b, c, h * up, w * up)
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0): x.shape[2] - max(-py1, 0), max(-px0, 0): x.shape[3] - max(-px1, 0)]  # crop
    if f is None:
        x = x * gain if gain != 1 else x
    else:
        f = (f * gain ** (f.ndim / 2)).to(x.dtype)
        if not flip_filter:
            f = f.flip(list(range(f.ndim)))
        x = x.contiguous(memory_format=torch.channels_last)  # depthwise FIR convs: 1.2-3x faster NHWC on CPU
        if f.ndim == 1:
            x = F.conv2d(x, f.reshape(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)  # along x
            x = F.conv2d(x, f.reshape(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)  # along y
        else:
            x = F.conv2d(x, f[None, None].expand(c, 1, -1, -1), groups=c)
    return x[:, :, ::down, ::down] if down > 1 else x


def filtered_lrelu(x: torch.Tensor, fu: torch.Tensor | None, fd: torch.Tensor | None, bias: torch.Tensor | None,
                   up: int = 1, down: int = 1, padding: list[int] | tuple[int, ...] = (0, 0, 0, 0),
                   gain: float = LRELU_GAIN, slope: float = LRELU_SLOPE, clamp: float | None = None) -> torch.Tensor:
    """Bias, upsample (``fu``, gain ``up**2``, ``padding`` on the upsampled grid), ``lrelu(., slope) * gain``,
    clamp, downsample (``fd``). ``[B, C, H, W]`` -> ``[B, C, H', W']``; fp16 input is computed in fp32."""
    dtype = x.dtype
    x = x.float()
    if bias is not None:
        x = x + bias.to(dtype).float()[None, :, None, None]
    x = upfirdn2d(x, fu, up=up, padding=padding, gain=up**2)
    x = F.leaky_relu(x, slope) if slope != 1 else x
    x = x * gain if gain != 1 else x
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return upfirdn2d(x, fd, down=down).to(dtype)


def demodulation(weight: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    """``d[b, o] = 1 / sqrt(sum_{i,k} (s[b, i] * w[o, i, k])^2 + 1e-8)``; ``[O, I, k, k]``, ``[B, I]`` -> ``[B, O]``."""
    wsq = weight.float().square().sum(dim=(2, 3))  # [O, I]
    return (styles.float().square() @ wsq.t() + 1e-8).rsqrt()


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool = True,
                     padding: int = 0, input_gain: torch.Tensor | float | None = None, up: int = 1,
                     resample_filter: torch.Tensor | None = None, flip_weight: bool = True,
                     prenormalize: bool = False) -> torch.Tensor:
    """Modulated (and demodulated) conv ``[B, I, H, W]`` -> ``[B, O, H', W']``.

    ``input_gain`` scales the input channels after demodulation is computed (StyleGAN3's magnitude EMA).
    ``prenormalize`` rescales ``weight`` per output channel and ``styles`` per sample to unit RMS first (no
    effect on a demodulated result but keeps fp16 in range; StyleGAN3 always does it, StyleGAN2 on fp16).
    ``up=2`` is StyleGAN2's upsampling conv: a transposed conv (true convolution, ``flip_weight=False``) on
    the zero-inserted grid, then ``resample_filter`` with gain 4; ``padding`` refers to the upsampled grid.
    """
    if prenormalize and demodulate:
        weight = weight * weight.square().mean(dim=(1, 2, 3), keepdim=True).rsqrt()
        styles = styles * styles.square().mean(dim=1, keepdim=True).rsqrt()
    dcoefs = demodulation(weight, styles) if demodulate else None  # [B, O]
    if input_gain is not None:
        styles = styles * input_gain
    x = x * styles.to(x.dtype)[:, :, None, None]
    w = weight.to(x.dtype)
    if up == 1:
        x = F.conv2d(x, w if flip_weight else w.flip([2, 3]), padding=padding)
    else:
        k, taps = w.shape[-1], resample_filter.shape[-1]
        x = F.conv_transpose2d(x, w.transpose(0, 1) if not flip_weight else w.flip([2, 3]).transpose(0, 1),
                               stride=up)  # [B, O, (H-1)*up + k, ...]
        lo = padding + (taps + up - 1) // 2 - (k - 1)
        hi = padding + (taps - up) // 2 - (k - up)
        x = upfirdn2d(x, resample_filter, padding=(lo, hi, lo, hi), gain=up**2)
    if dcoefs is not None:
        x = x * dcoefs.to(x.dtype)[:, :, None, None]
    return x
