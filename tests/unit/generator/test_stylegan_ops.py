"""The published equations of the StyleGAN ops against values computed by hand (numpy), not by our code."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lsi.generator.stylegan3 import SynthesisInput
from lsi.generator.stylegan_ops import FullyConnected, filtered_lrelu, modulated_conv2d, upfirdn2d


def test_modulation_and_demodulation_on_a_1x1_example():
    # one output channel, two inputs: w = [2, 1], style s = [1, 3], input pixel x = [1, 1]
    w = torch.tensor([2.0, 1.0]).reshape(1, 2, 1, 1)
    s = torch.tensor([[1.0, 3.0]])
    x = torch.ones(1, 2, 1, 1)
    # modulated weights w' = s * w = [2, 3]; demodulation 1 / sqrt(2^2 + 3^2) = 1 / sqrt(13)
    assert modulated_conv2d(x, w, s, demodulate=False).item() == pytest.approx(5.0)
    assert modulated_conv2d(x, w, s).item() == pytest.approx(5 / math.sqrt(13), rel=1e-6)
    # input gain scales the input after demodulation; pre-normalisation changes nothing demodulated
    assert modulated_conv2d(x, w, s, input_gain=0.5).item() == pytest.approx(2.5 / math.sqrt(13), rel=1e-6)
    assert modulated_conv2d(x, w, s, prenormalize=True).item() == pytest.approx(5 / math.sqrt(13), rel=1e-6)


def test_modulated_conv_equals_per_sample_weights_computed_by_hand():
    g = np.random.default_rng(0)
    x, w, s = g.normal(size=(2, 3, 5, 5)), g.normal(size=(4, 3, 3, 3)), g.normal(size=(2, 3))
    expected = np.zeros((2, 4, 5, 5))
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    for b in range(2):
        wm = w * s[b][None, :, None, None]  # w'_oik = s_i w_oik
        wm = wm / np.sqrt((wm**2).sum(axis=(1, 2, 3), keepdims=True) + 1e-8)  # demodulate per output
        for o in range(4):
            for i in range(5):
                for j in range(5):
                    expected[b, o, i, j] = (wm[o] * xp[b, :, i:i + 3, j:j + 3]).sum()  # correlation, pad 1
    t = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    got = modulated_conv2d(t(x), t(w), t(s), padding=1)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-4, atol=1e-5)


def test_stylegan2_upsampling_conv_is_transposed_conv_then_fir():
    """2x up conv (padding 1, 3x3, [1,3,3,1] filter): zero insertion, true convolution with w, FIR with gain 4."""
    g = np.random.default_rng(1)
    x, w = g.normal(size=(1, 1, 3, 3)), g.normal(size=(1, 1, 3, 3))
    f1 = np.array([1, 3, 3, 1]) / 8.0
    up = np.zeros((1, 1, 6, 6))
    up[:, :, ::2, ::2] = x
    # pad so that the 3x3 conv and the 4-tap FIR together keep 6x6: conv full (pad 2), then FIR with pad (1, 1)
    import scipy.signal

    conv = scipy.signal.convolve2d(up[0, 0], w[0, 0], mode="full")  # true convolution, 8x8
    fir = scipy.signal.convolve2d(np.pad(conv, 1), np.outer(f1, f1) * 4, mode="valid")  # 7x7
    expected = fir[:6, :6]
    got = modulated_conv2d(torch.tensor(x, dtype=torch.float32), torch.tensor(w, dtype=torch.float32),
                           torch.ones(1, 1), demodulate=False, padding=1, up=2, flip_weight=False,
                           resample_filter=torch.tensor(np.outer(f1, f1), dtype=torch.float32))
    np.testing.assert_allclose(got[0, 0].numpy(), expected, rtol=1e-5, atol=1e-6)


def test_upfirdn2d_upsampling_of_an_impulse_matches_numpy_convolution():
    f = np.array([1, 3, 3, 1]) / 8.0
    x = np.zeros((3, 3))
    x[1, 1] = 1.0
    # 1-D: zero insertion -> [0,0,1,0,0,0], pad (2, 1), true convolution with f * 2 (gain 4 = 2 per axis)
    e = np.convolve(np.pad(np.array([0, 0, 1.0, 0, 0, 0]), (2, 1)), f * 2, mode="valid")
    got = upfirdn2d(torch.tensor(x, dtype=torch.float32)[None, None], torch.tensor(f, dtype=torch.float32), up=2,
                    padding=(2, 1, 2, 1), gain=4)
    np.testing.assert_allclose(got[0, 0].numpy(), np.outer(e, e), atol=1e-7)
    assert got.sum().item() == pytest.approx(4.0)  # the gain keeps the mean level after zero insertion
    # the same filter as a 2-D outer product gives the same result
    f2 = torch.tensor(np.outer(f, f), dtype=torch.float32)
    got2 = upfirdn2d(torch.tensor(x, dtype=torch.float32)[None, None], f2, up=2, padding=(2, 1, 2, 1), gain=4)
    torch.testing.assert_close(got2, got)


def test_upfirdn2d_downsampling_and_negative_padding():
    x = torch.arange(8.0).reshape(1, 1, 1, 8).repeat(1, 1, 2, 1)  # rows 0..7
    got = upfirdn2d(x, torch.tensor([0.5, 0.5]), down=2)  # pair means along x and y
    assert got[0, 0, 0].tolist() == [0.5, 2.5, 4.5, 6.5]
    y = torch.randn(1, 2, 7, 9)
    torch.testing.assert_close(upfirdn2d(y, None, padding=(-1, -2, -3, -1)), y[:, :, 3:-1, 1:-2])  # crop
    assert upfirdn2d(y, None, padding=(2, 0, 0, 1)).shape == (1, 2, 8, 11)


def test_filtered_lrelu_bias_gain_slope_and_clamp():
    x = torch.tensor([-2.0, -0.5, 0.5, 300.0]).reshape(1, 4, 1, 1)
    b = torch.ones(4)
    got = filtered_lrelu(x, None, None, b, gain=math.sqrt(2), slope=0.2, clamp=256).flatten()
    expected = [-1 * 0.2 * math.sqrt(2), 0.5 * math.sqrt(2), 1.5 * math.sqrt(2), 256.0]  # lrelu(x + b) * g, clamp
    assert got.tolist() == pytest.approx(expected, rel=1e-6)
    # slope 1, gain 1 (ToRGB): only bias and clamp
    assert filtered_lrelu(x, None, None, b, gain=1, slope=1, clamp=256).flatten().tolist() == [-1, 0.5, 1.5, 256]


def test_filtered_lrelu_box_upsampling_holds_each_sample_times_the_gain():
    x = torch.randn(1, 3, 6, 6).abs() + 0.1  # positive: lrelu is the identity, gain 1
    box = torch.tensor([1.0, 1.0])  # zero insertion + box = sample-and-hold, times the up**2 = 4 gain
    up = filtered_lrelu(x, box, None, None, up=2, padding=(1, 0, 1, 0), gain=1, slope=0.2)
    hold = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    torch.testing.assert_close(up, 4 * hold)
    torch.testing.assert_close(filtered_lrelu(up, None, None, None, down=2, gain=1, slope=0.2), 4 * x)


def test_fully_connected_equalised_lr_and_lrelu():
    fc = FullyConnected(2, 1, "lrelu", weight_gain=0.5, bias_gain=0.1)
    with torch.no_grad():
        fc.weight.copy_(torch.tensor([[1.0, -3.0]]))
        fc.bias.fill_(2.0)
    x = torch.tensor([[1.0, 1.0]])  # (1 - 3) * 0.5 + 2 * 0.1 = -0.8 -> lrelu -0.16 -> * sqrt 2
    assert fc(x).item() == pytest.approx(-0.16 * math.sqrt(2), rel=1e-6)


def _input_layer(transform: torch.Tensor, affine_bias=(1.0, 0.0, 0.0, 0.0)) -> SynthesisInput:
    spec = {"w_dim": 3, "channels": 2, "size": [4, 4], "sampling_rate": 4.0, "bandwidth": 1.0,
            "affine": {"in_features": 3, "out_features": 4, "activation": "linear", "weight_gain": 1.0,
                       "bias_gain": 1.0, "bias": True}}
    layer = SynthesisInput(spec)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(2) * math.sqrt(2))  # the [C, C] map becomes the identity
        layer.affine.weight.zero_()
        layer.affine.bias.copy_(torch.tensor(affine_bias))
        layer.transform.copy_(transform)
        layer.freqs.copy_(torch.tensor([[1.0, 0.0], [0.0, 0.5]]))
        layer.phases.copy_(torch.tensor([0.0, 0.25]))
    return layer


@pytest.mark.parametrize("case", ["translate", "rotate", "learned_translation"])
def test_fourier_input_features_for_a_given_transform(case):
    tx, ty, a = 0.3, -0.2, 0.4
    if case == "rotate":
        transform = torch.tensor([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1.0]])
    else:
        transform = torch.tensor([[1, 0, tx], [0, 1, ty], [0, 0, 1.0]])
    bias = (2.0, 0.0, 1.0, 0.0) if case == "learned_translation" else (1.0, 0.0, 0.0, 0.0)
    got = _input_layer(transform, bias)(torch.zeros(1, 3))[0].detach().numpy()  # [C, H, W]
    freqs, phases = np.array([[1.0, 0.0], [0.0, 0.5]]), np.array([0.0, 0.25])
    m = transform.double().numpy()
    if case == "learned_translation":  # t = (2, 0, 1, 0) / 2: inverse translation by -0.5 in x, then the user's
        m = np.array([[1, 0, -0.5], [0, 1, 0], [0, 0, 1.0]]) @ m
    f = freqs @ m[:2, :2]
    p = phases + freqs @ m[:2, 2]
    g = (np.arange(4) + 0.5 - 2) / 4  # pixel centres in units of the sampling rate
    expected = np.sin(2 * np.pi * (f[:, 0, None, None] * g[None, None, :] + f[:, 1, None, None] * g[None, :, None]
                                   + p[:, None, None]))
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_fourier_input_damps_frequencies_beyond_the_bandwidth():
    layer = _input_layer(torch.eye(3))
    with torch.no_grad():
        layer.freqs.copy_(torch.tensor([[1.5, 0.0], [2.5, 0.0]]))  # |f| between bandwidth 1 and sr/2 = 2; beyond
    _, _, amplitudes = layer.transformed_frequencies(torch.zeros(1, 3))
    assert amplitudes[0].tolist() == pytest.approx([1 - 0.5 / 1.0, 0.0])
