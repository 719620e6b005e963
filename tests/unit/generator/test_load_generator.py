"""``load_generator`` on tiny networks in the real pickle layouts: names, shapes, order, determinism, mapping."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lsi.generator import Generator, load_generator, parse_feature_name
from lsi.generator.nvidia_pickle import read_network_pickle

ALL = ["stylegan2", "stylegan2_cond_orig_numpy1_torch1", "stylegan3_t", "stylegan3_r", "stylegan3_t_cond_margin10",
       "stylegan_xl", "stylegan_xl_cond"]


@pytest.fixture(scope="module")
def generators(network_pickles):
    return {name: load_generator(path) for name, path in network_pickles.items()}


def _labels(G, n):
    return torch.eye(G.c_dim)[torch.arange(n) % G.c_dim] if G.c_dim else None


@pytest.mark.parametrize("name", ALL)
def test_protocol_shapes_and_determinism(generators, name):
    G = generators[name]
    assert isinstance(G, Generator)
    z = torch.randn(3, G.z_dim, generator=torch.Generator().manual_seed(0))
    ws = G.mapping(z, _labels(G, 3))
    assert ws.shape == (3, G.num_ws, G.w_dim) and G.w_avg.shape == (G.w_dim,)
    img = G.synthesis(ws)
    assert img.shape == (3, 3, G.img_resolution, G.img_resolution) and img.dtype == torch.float32
    assert torch.isfinite(img).all() and img.std() > 1e-3
    assert torch.equal(G.synthesis(ws, noise_mode="const"), img)  # 'const' is the default and deterministic
    assert torch.equal(G.synthesis(ws[1:2]), img[1:2]) or torch.allclose(G.synthesis(ws[1:2]), img[1:2], atol=1e-5)
    assert not any(p.requires_grad for p in G.parameters())


def test_stylegan2_noise_modes(generators):
    G = generators["stylegan2"]
    ws = G.mapping(torch.randn(2, G.z_dim))
    const, none = G.synthesis(ws, noise_mode="const"), G.synthesis(ws, noise_mode="none")
    assert not torch.allclose(const, none)  # the fixture's noise strengths are non-zero
    assert not torch.equal(G.synthesis(ws, noise_mode="random"), G.synthesis(ws, noise_mode="random"))
    with pytest.raises(ValueError, match="noise_mode"):
        G.synthesis(ws, noise_mode="bogus")


@pytest.mark.parametrize("name", ALL)
def test_children_in_original_order_and_feature_names(generators, network_pickles, name):
    G = generators[name]
    syn = read_network_pickle(network_pickles[name])["G_ema"].child("synthesis")
    children = [n for n, _ in G.synthesis.named_children()]
    assert children == list(syn.children())  # the official order, which index-based hooks rely on
    if G.kind == "stylegan2":
        assert children == [f"b{2**i}" for i in range(2, int(np.log2(G.img_resolution)) + 1)]
        assert [parse_feature_name(n)[0] for n in G.feature_names] == list(range(len(G.feature_names)))
    else:
        assert children == ["input", *syn.attr("layer_names")]
        assert G.feature_names == tuple(syn.attr("layer_names"))
    for n in G.feature_names:
        parse_feature_name(n)


def test_stylegan_xl_layout_is_read_from_the_state_not_the_stem_kwargs(generators, network_pickles):
    G = generators["stylegan_xl"]
    rec = read_network_pickle(network_pickles["stylegan_xl"])["G_ema"]
    assert rec.class_name == "SuperresGenerator"
    assert rec.child("synthesis").attr("_init_kwargs")["img_resolution"] == 16  # the stem's
    assert rec.child("mapping").attr("_init_kwargs")["num_ws"] == 8
    assert G.img_resolution == 64 and G.num_ws == 10
    assert G.feature_names[:5] == ("L0_36_64", "L1_36_64", "L2_36_64", "L3_36_45", "L5_36_45")  # L4 skipped
    assert G.feature_names[-1] == "L9_64_3"
    assert tuple(G.mapping.embed.weight.shape) == (1000, 320) and G.c_dim == 0
    assert any(min(layer["padding"]) < 0 for layer in G.spec["synthesis"]["layers"])  # crops are exercised


def test_stylegan3_t_has_1d_and_r_has_2d_down_filters(generators):
    shapes_t = [layer["down_filter_shape"] for layer in generators["stylegan3_t"].spec["synthesis"]["layers"]]
    shapes_r = [layer["down_filter_shape"] for layer in generators["stylegan3_r"].spec["synthesis"]["layers"]]
    assert {len(s) for s in shapes_t if s} == {1}
    assert 2 in {len(s) for s in shapes_r if s} and shapes_r[-1] is None  # ToRGB: no filters


@pytest.mark.parametrize("name", ALL)
def test_features_match_hooks_by_index_and_their_names(generators, name):
    G = generators[name]
    ws = G.mapping(torch.randn(2, G.z_dim), _labels(G, 2))
    feats = G.features(ws, G.feature_names)
    hooked: dict[str, torch.Tensor] = {}
    children = list(G.synthesis.named_children())
    if G.kind == "stylegan2":
        mods = {n: G.synthesis.get_submodule(p) for n, p in G.synthesis.feature_layers.items()}
    else:
        mods = {n: m for n, m in children[1:]}  # index i + 1 of named_children is layer i
    handles = [m.register_forward_hook(lambda _m, _i, out, n=n: hooked.__setitem__(n, out)) for n, m in mods.items()]
    G.synthesis(ws)
    for h in handles:
        h.remove()
    for n in G.feature_names:
        _, res, ch = parse_feature_name(n)
        assert feats[n].shape == (2, ch, res, res)
        torch.testing.assert_close(feats[n], hooked[n].float())
    coarse = G.features(ws, [G.feature_names[1]])  # stops early, same values
    torch.testing.assert_close(coarse[G.feature_names[1]], feats[G.feature_names[1]])


def test_mapping_truncation_and_conditioning(generators):
    for name in ("stylegan2", "stylegan3_t", "stylegan_xl"):
        G = generators[name]
        z = torch.randn(4, G.z_dim)
        torch.testing.assert_close(G.mapping(z, truncation_psi=0.0), G.w_avg.expand(4, G.num_ws, -1).contiguous())
        w1, w5 = G.mapping(z), G.mapping(z, truncation_psi=0.5)
        torch.testing.assert_close(w5, G.w_avg + 0.5 * (w1 - G.w_avg))
        assert torch.equal(w1[:, 0], w1[:, -1])  # one w broadcast to every level
    xl = generators["stylegan_xl_cond"]
    c = _labels(xl, 3)
    ws = xl.mapping(torch.randn(3, xl.z_dim), c, truncation_psi=0.0)
    torch.testing.assert_close(ws[:, 0], xl.mapping.w_avg[:3])  # per-class average for conditional XL
    with pytest.raises(ValueError, match="conditional"):
        xl.mapping(torch.randn(1, xl.z_dim))


def test_gradients_reach_ws_and_bad_inputs_are_rejected(generators):
    G = generators["stylegan_xl"]
    ws = G.mapping(torch.randn(1, G.z_dim)).requires_grad_(True)
    G.features(ws, ["L3_36_45"])["L3_36_45"].square().mean().backward()
    assert ws.grad is not None and ws.grad[:, 5:].abs().max() == 0 and ws.grad[:, :5].abs().max() > 0  # input + L0..L3
    with pytest.raises(ValueError, match=r"ws must be \[B, 10, 16\]"):
        G.synthesis(torch.zeros(1, 9, 16))
    with pytest.raises(ValueError, match="unknown feature names"):
        G.features(ws, ["L4_36_45"])


@pytest.mark.parametrize("name", ["stylegan2", "stylegan3_r", "stylegan_xl"])
def test_fp16_layers_path_stays_within_half_precision(generators, monkeypatch, name):
    """The path CUDA takes for ``use_fp16`` layers, forced on CPU: fp16 activations, fp32 image out."""
    from lsi.generator import stylegan2, stylegan3

    G = generators[name]
    ws = G.mapping(torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(3)))
    ref_img, ref = G.synthesis(ws), G.features(ws, G.feature_names)
    half = lambda self, device: torch.float16 if self.spec["use_fp16"] else torch.float32  # noqa: E731
    monkeypatch.setattr(stylegan2.SynthesisBlock, "dtype_on", half)
    monkeypatch.setattr(stylegan3.SynthesisLayer, "dtype_on", half)
    assert any(getattr(m, "spec", {}).get("use_fp16") for _, m in G.synthesis.named_children())
    img, feats = G.synthesis(ws), G.features(ws, G.feature_names)
    assert img.dtype == torch.float32 and not torch.equal(img, ref_img)  # fp16 really ran
    assert (img - ref_img).abs().max() <= 1e-2 * (1 + ref_img.abs().max())
    for n in G.feature_names:
        assert (feats[n] - ref[n]).abs().max() <= 1e-2 * (1 + ref[n].abs().max()), n
