"""Perceptual losses from local files: the DINO ViT-B/8 loss (timm) and LPIPS with a local torchvision backbone."""

from __future__ import annotations

import time

import pytest
import torch
import torch.nn.functional as F

from lsi.inversion import MissingWeightsFileError, WeightsFileError
from lsi.world.perceptual import DINO_ARCH, DinoFeatureLoss, LpipsLocal, load_dino_vit
from tests.fixtures.make_paper_weights import TINY_VIT, TINY_VIT_64, write_dino, write_ir_se50, write_lpips_backbone

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def pair():
    gen = torch.Generator().manual_seed(11)
    return torch.rand(2, 3, 256, 256, generator=gen) * 2 - 1, torch.rand(2, 3, 256, 256, generator=gen) * 2 - 1


@pytest.fixture(scope="module")
def dino(tmp_path_factory):
    path = tmp_path_factory.mktemp("dino") / "dino_vitbase8_pretrain.pth"
    ref = write_dino(path)
    return path, ref, DinoFeatureLoss(path, model_kwargs=TINY_VIT)


def _block11_by_hook(vit, x):
    """The official extractor's way: a forward hook on ``blocks[11]`` while the whole ViT runs."""
    out = []
    handle = vit.blocks[11].register_forward_hook(lambda m, i, o: out.append(o))
    vit(x)
    handle.remove()
    return out[0]


def test_real_architecture_has_the_dino_checkpoint_keys():
    import timm

    with torch.device("meta"):
        vit = timm.create_model(DINO_ARCH, pretrained=False, num_classes=0)
    shapes = {k: tuple(v.shape) for k, v in vit.state_dict().items()}
    assert len(shapes) == 150 and len(vit.blocks) == 12
    assert shapes["pos_embed"] == (1, 785, 768) and shapes["cls_token"] == (1, 1, 768)
    assert shapes["patch_embed.proj.weight"] == (768, 3, 8, 8)
    assert shapes["blocks.11.attn.qkv.weight"] == (2304, 768) and shapes["norm.weight"] == (768,)
    assert not any(k.startswith("head") for k in shapes)


def test_preprocessing_is_torchvision_resize_224_and_imagenet_norm(dino, pair):
    import torchvision.transforms as T

    _, _, loss = dino
    img = pair[0]
    official = T.Compose([T.Normalize((-1.0,) * 3, (2.0,) * 3), T.Resize(224),
                          T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    expect = torch.stack([official(x) for x in img])
    assert torch.allclose(loss.preprocess(img), expect, atol=1e-5)


def test_features_are_block_11_tokens_cls_first(dino, pair):
    _, ref, loss = dino
    with torch.no_grad():
        feats = loss.features(pair[0])
        hooked = _block11_by_hook(ref, loss.preprocess(pair[0]))
    assert feats.shape == (2, 1 + 28 * 28, TINY_VIT["embed_dim"])
    assert torch.allclose(feats, hooked, atol=1e-5)


def test_loss_is_the_official_per_image_mse_summed_over_the_batch(dino, pair):
    _, ref, loss = dino
    pred, target = pair
    with torch.no_grad():
        by_hand = sum(F.mse_loss(_block11_by_hook(ref, loss.preprocess(p[None]))[0],
                                 _block11_by_hook(ref, loss.preprocess(t[None]))[0]) for p, t in zip(pred, target))
        assert float(loss(pred, target)) == pytest.approx(float(by_hand), rel=1e-5)
        assert float(loss(target, target)) == pytest.approx(0.0, abs=1e-9)
    mean_loss = DinoFeatureLoss(dino[0], reduction="mean", model_kwargs=TINY_VIT)
    with torch.no_grad():
        assert float(mean_loss(pred, target)) == pytest.approx(float(by_hand) / 2, rel=1e-5)
    p = pred.clone().requires_grad_(True)
    t = target.clone().requires_grad_(True)
    loss(p, t).backward()
    assert p.grad is not None and p.grad.abs().sum() > 0 and t.grad is None  # the target carries no gradient
    assert not any(q.requires_grad for q in loss.vit.parameters())
    assert len(loss.state_dict()) == 0  # the 86M ViT weights stay out of checkpoints


@pytest.mark.parametrize("form", ["teacher", "safetensors"])
def test_other_checkpoint_forms_load(tmp_path, pair, form):
    path = tmp_path / ("full_ckpt.pth" if form == "teacher" else "model.safetensors")
    ref = write_dino(path, wrapper="teacher" if form == "teacher" else None)
    vit = load_dino_vit(path, **TINY_VIT)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(_block11_by_hook(vit, x), _block11_by_hook(ref, x), atol=1e-5)


def test_dino_errors_name_file_and_source(tmp_path):
    with pytest.raises(MissingWeightsFileError, match=r"DINO ViT-B/8.*none\.pth.*dino_vitbase8_pretrain\.pth"):
        DinoFeatureLoss(tmp_path / "none.pth")
    write_ir_se50(tmp_path / "model_ir_se50.pth", legacy=False)
    with pytest.raises(WeightsFileError, match=r"model_ir_se50\.pth does not match.*missing keys: cls_token"):
        load_dino_vit(tmp_path / "model_ir_se50.pth", **TINY_VIT)
    write_dino(tmp_path / "tiny.pth")
    with pytest.raises(WeightsFileError, match=r"tiny\.pth does not match.*shape mismatches"):
        load_dino_vit(tmp_path / "tiny.pth")  # the real ViT-B/8 sizes: the tiny file does not fit
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(WeightsFileError, match=r"bad\.safetensors is not a readable safetensors file"):
        load_dino_vit(tmp_path / "bad.safetensors")
    with pytest.raises(ValueError, match="reduction"):
        DinoFeatureLoss(tmp_path / "tiny.pth", reduction="max", model_kwargs=TINY_VIT)


def _lpips_by_hand(lp, backbone_state, a, b):
    """LPIPS written out: scaling layer, AlexNet relu1-5 from torchvision, unit-normalised channels, squared
    difference, the package's 1x1 linear heads, spatial mean, summed over layers."""
    import torchvision

    alex = torchvision.models.alexnet(weights=None).eval()
    alex.features.load_state_dict({k[len("features."):]: v for k, v in backbone_state.items()})
    shift, scale = lp.model.scaling_layer.shift, lp.model.scaling_layer.scale
    total = torch.zeros(a.shape[0])
    xa, xb = (a - shift) / scale, (b - shift) / scale
    heads = [lp.model.lin0, lp.model.lin1, lp.model.lin2, lp.model.lin3, lp.model.lin4]
    taps = iter(heads)
    for i, layer in enumerate(alex.features):
        xa, xb = layer(xa), layer(xb)
        if i in (1, 4, 7, 9, 11):  # the ReLUs LPIPS reads
            na = xa / (xa.square().sum(1, keepdim=True).sqrt() + 1e-10)
            nb = xb / (xb.square().sum(1, keepdim=True).sqrt() + 1e-10)
            total = total + next(taps).model((na - nb).square()).mean(dim=(1, 2, 3))
    return total


def test_lpips_reads_the_local_backbone_file(tmp_path):
    path = tmp_path / "alexnet-owt-7be5be79.pth"
    state = write_lpips_backbone(path, with_classifier=False)
    t0 = time.perf_counter()
    lp = LpipsLocal(path)
    assert time.perf_counter() - t0 < 10
    gen = torch.Generator().manual_seed(2)
    a, b = torch.rand(2, 3, 64, 64, generator=gen) * 2 - 1, torch.rand(2, 3, 64, 64, generator=gen) * 2 - 1
    with torch.no_grad():
        d = lp(a, b)
        assert d.shape == (2,) and torch.allclose(d, _lpips_by_hand(lp, state, a, b), atol=1e-5)
        assert torch.allclose(lp(a, a), torch.zeros(2), atol=1e-6)


def test_lpips_errors_name_the_backbone_file(tmp_path):
    with pytest.raises(MissingWeightsFileError, match=r"alexnet-owt-7be5be79\.pth.*download\.pytorch\.org"):
        LpipsLocal(tmp_path / "alexnet-owt-7be5be79.pth")
    path = tmp_path / "vgg_given_as_alex.pth"
    write_lpips_backbone(path, net="squeeze")
    with pytest.raises(WeightsFileError, match=r"vgg_given_as_alex\.pth"):
        LpipsLocal(path)
    with pytest.raises(ValueError, match="not one of"):
        LpipsLocal(path, net="resnet")


@pytest.mark.slow
def test_real_size_dino_checkpoint(tmp_path):
    """A full-size ViT-B/8 checkpoint in the DINO key layout (random weights): load time and feature shape."""
    import timm

    vit = timm.create_model(DINO_ARCH, pretrained=False, num_classes=0)
    path = tmp_path / "dino_vitbase8_pretrain.pth"
    torch.save(vit.state_dict(), path)
    t0 = time.perf_counter()
    loss = DinoFeatureLoss(path)
    load_s = time.perf_counter() - t0
    img = torch.rand(1, 3, 256, 256) * 2 - 1
    t0 = time.perf_counter()
    with torch.no_grad():
        feats = loss.features(img)
    fwd_s = time.perf_counter() - t0
    print(f"DINO ViT-B/8: file {path.stat().st_size / 2**20:.0f} MiB, load {load_s:.1f} s, features {fwd_s:.1f} s")
    assert feats.shape == (1, 785, 768)


def test_vit_size_is_read_from_the_checkpoint(tmp_path, pair):
    """A checkpoint of another width than ViT-B/8 (e.g. ViT-S/8) builds at its own size without model_kwargs:
    width from cls_token, depth from the blocks, 64-channel heads."""
    ref = write_dino(tmp_path / "dino64.pth", vit_kwargs=TINY_VIT_64)
    loss = DinoFeatureLoss(tmp_path / "dino64.pth")
    assert loss.vit.embed_dim == 64 and len(loss.vit.blocks) == 12 and loss.vit.blocks[0].attn.num_heads == 1
    with torch.no_grad():
        want = ref.forward_intermediates(loss.preprocess(pair[0]), indices=[11], norm=False, output_fmt="NLC",
                                         intermediates_only=True, return_prefix_tokens=True, stop_early=True)[0]
        assert torch.allclose(loss.features(pair[0]), torch.cat([want[1], want[0]], dim=1), atol=1e-5)
