"""The embedded StyleGAN-family generator, its encoder and identity net: shapes and real properties."""

import torch
import torch.nn.functional as F

from lsi.generator import EmbeddedGenerator, EmbeddedGeneratorConfig, Generator, parse_feature_name
from lsi.generator.embedded import ModulatedConv
from lsi.identity import ArcMarginHead, IdentityNet
from lsi.inversion import EncoderConfig, InversionEncoder

torch.set_num_threads(1)


def small_generator() -> EmbeddedGenerator:
    torch.manual_seed(0)
    return EmbeddedGenerator(EmbeddedGeneratorConfig(z_dim=8, w_dim=16, channels={4: 16, 8: 16, 16: 8, 32: 8, 64: 4}))


def test_generator_satisfies_protocol_and_shapes():
    g = small_generator()
    assert isinstance(g, Generator)
    assert g.num_ws == 10 and g.w_dim == 16 and g.img_resolution == 64
    ws = g.map(torch.randn(3, 8))
    assert ws.shape == (3, 10, 16)
    img = g.synthesis(ws)
    assert img.shape == (3, 3, 64, 64)
    # one feature map per conv, named L<i>_<res>_<channels>, resolutions from 4 to 64
    names = g.feature_names
    assert len(names) == 9
    parsed = [parse_feature_name(n) for n in names]
    assert [p[0] for p in parsed] == list(range(9))
    assert parsed[0][1] == 4 and parsed[-1][1] == 64
    feats = g.features(ws, [names[2], names[6]])
    for n in (names[2], names[6]):
        _, res, ch = parse_feature_name(n)
        assert feats[n].shape == (3, ch, res, res)


def test_feature_maps_match_full_forward():
    g = small_generator()
    ws = g.map(torch.randn(2, 8))
    early = g.features(ws, [g.feature_names[3]])[g.feature_names[3]]
    _, full = g.synthesis_net(ws, [g.feature_names[3]])
    torch.testing.assert_close(early, full[g.feature_names[3]])


def test_every_w_level_changes_the_image():
    g = small_generator()
    ws = g.map(torch.randn(1, 8))
    base = g.synthesis(ws)
    for level in range(g.num_ws):
        ws2 = ws.clone()
        ws2[:, level] += torch.randn(g.w_dim)
        assert (g.synthesis(ws2) - base).abs().max() > 1e-4, f"W+ level {level} is unused"


def test_modulated_conv_equals_per_sample_weight_demodulation():
    torch.manual_seed(1)
    conv = ModulatedConv(5, 7, 3, w_dim=6)
    x, w = torch.randn(2, 5, 8, 8), torch.randn(2, 6)
    out = conv(x, w)
    style = conv.affine(w)
    for b in range(2):
        wb = conv.weight * conv.scale * style[b][None, :, None, None]
        wb = wb * torch.rsqrt(wb.square().sum(dim=(1, 2, 3), keepdim=True) + 1e-8)
        ref = F.leaky_relu(F.conv2d(x[b:b + 1], wb, padding=1) + conv.bias[None, :, None, None], 0.2) * 2**0.5
        torch.testing.assert_close(out[b:b + 1], ref, rtol=1e-4, atol=1e-5)


def test_bad_ws_shape_is_rejected():
    g = small_generator()
    try:
        g.synthesis(torch.zeros(1, 3, 16))
    except ValueError as err:
        assert "ws must be" in str(err)
    else:
        raise AssertionError("wrong W+ shape accepted")


def test_encoder_and_identity_shapes():
    enc = InversionEncoder(EncoderConfig(num_ws=10, w_dim=16, width=8)).eval()
    assert enc(torch.rand(2, 3, 256, 256) * 2 - 1).shape == (2, 10, 16)
    assert enc(torch.rand(2, 3, 64, 64) * 2 - 1).shape == (2, 10, 16)
    idn = IdentityNet().eval()
    emb = idn(torch.rand(3, 3, 64, 64) * 2 - 1)
    assert emb.shape == (3, 128)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(3))
    head = ArcMarginHead(128, 5, scale=10.0, margin=0.3)
    logits = head(emb, torch.tensor([0, 1, 2]))
    plain = 10.0 * F.linear(emb, F.normalize(head.weight, dim=1))
    # the margin lowers exactly the true-class logit
    assert (logits[torch.arange(3), [0, 1, 2]] < plain[torch.arange(3), [0, 1, 2]]).all()
    mask = torch.ones_like(plain, dtype=torch.bool)
    mask[torch.arange(3), [0, 1, 2]] = False
    torch.testing.assert_close(logits[mask], plain[mask])
