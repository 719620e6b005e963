"""pSp's GradualStyleEncoder on IR-SE-50: the published layout, the forward equations and checkpoint loading."""

from __future__ import annotations

import math
import time

import pytest
import torch
import torch.nn.functional as F

from lsi.inversion import GradualStyleEncoder, MissingWeightsFileError, WeightsFileError, load_psp_encoder
from lsi.inversion.ir_se import STAGE_END_UNITS, STAGE_UNITS
from lsi.inversion.psp import style_groups
from tests.fixtures.make_paper_weights import write_ir_se50, write_psp_checkpoint

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def images():
    return torch.rand(2, 3, 256, 256, generator=torch.Generator().manual_seed(5)) * 2 - 1


def test_real_network_has_the_published_keys_and_groups():
    with torch.device("meta"):  # the real sizes (267M parameters) without allocating them
        enc = GradualStyleEncoder()
    state = enc.state_dict()
    assert sum(STAGE_UNITS) == 24 and STAGE_END_UNITS == (2, 6, 20, 23)
    assert {int(k.split(".")[1]) for k in state if k.startswith("body.")} == set(range(24))
    # conv shortcuts only where the depth changes (first units of stages 2-4); stage 1 strides with MaxPool(1, 2)
    assert sorted(int(k.split(".")[1]) for k in state if k.endswith("shortcut_layer.0.weight")) == [3, 7, 21]
    assert enc.body[0].shortcut_layer.stride == 2 and enc.body[0].res_layer[3].stride == (2, 2)
    assert enc.body[1].res_layer[3].stride == (1, 1) and enc.body[0].res_layer[1].stride == (1, 1)
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    assert shapes["input_layer.0.weight"] == (64, 3, 3, 3) and shapes["input_layer.2.weight"] == (64,)
    assert shapes["body.3.res_layer.1.weight"] == (128, 64, 3, 3)
    assert shapes["body.3.shortcut_layer.0.weight"] == (128, 64, 1, 1)
    assert shapes["body.23.res_layer.5.fc1.weight"] == (32, 512, 1, 1)
    assert shapes["body.23.res_layer.5.fc2.weight"] == (512, 32, 1, 1)
    assert shapes["latlayer1.weight"] == (512, 256, 1, 1) and shapes["latlayer2.weight"] == (512, 128, 1, 1)
    convs = [sum(1 for k in state if k.startswith(f"styles.{i}.convs.") and k.endswith(".weight")) for i in range(18)]
    assert convs == [4] * 3 + [5] * 4 + [6] * 11  # coarse / mid / fine = 3 / 4 / 11 of 18
    assert style_groups(18).count("coarse") == 3 and style_groups(18).count("mid") == 4
    assert shapes["styles.17.linear.weight"] == (512, 512) and shapes["styles.0.convs.0.weight"] == (512, 512, 3, 3)
    assert enc.styles[0].linear.scale == pytest.approx(1 / math.sqrt(512))
    assert enc.styles[5].convs[1].negative_slope == pytest.approx(0.01)
    assert "latent_avg" not in state  # non-persistent: state_dict() is exactly the checkpoint's encoder keys


def test_upsample_add_is_bilinear_with_aligned_corners():
    from lsi.inversion.psp import _upsample_add

    top = torch.tensor([[[[0.0, 3.0], [6.0, 9.0]]]])
    out = _upsample_add(top, torch.zeros(1, 1, 4, 4))
    # align_corners=True keeps the corners and spaces the rest evenly: 0, 1, 2, 3 along the first row
    assert torch.allclose(out[0, 0, 0], torch.tensor([0.0, 1.0, 2.0, 3.0]))
    assert torch.allclose(out[0, 0, :, 0], torch.tensor([0.0, 2.0, 4.0, 6.0]))


def test_forward_taps_units_6_20_23_and_feeds_the_groups(tmp_path, images):
    enc, _ = write_psp_checkpoint(tmp_path / "e.pt", num_ws=18, w_dim=32)
    with torch.no_grad():
        x = enc.input_layer(images)
        taps = []
        for unit in enc.body:
            x = unit(x)
            taps.append(x)
        c1, c2, c3 = taps[6], taps[20], taps[23]
        assert c1.shape[-1] == 64 and c2.shape[-1] == 32 and c3.shape[-1] == 16
        p2 = F.interpolate(c3, size=(32, 32), mode="bilinear", align_corners=True) + enc.latlayer1(c2)
        p1 = F.interpolate(p2, size=(64, 64), mode="bilinear", align_corners=True) + enc.latlayer2(c1)
        expect = [enc.styles[i](c3 if i < 3 else p2 if i < 7 else p1) for i in range(18)]
        # a style block is log2(S) stride-2 conv + LeakyReLU(0.01) steps, then x @ (W / sqrt(in)).T + b
        y = p1
        for conv in enc.styles[10].convs[0::2]:
            y = F.leaky_relu(conv(y), 0.01)
        lin = enc.styles[10].linear
        by_hand = y.flatten(1) @ (lin.weight / math.sqrt(lin.weight.shape[1])).T + lin.bias
        got = enc.offsets(images)
    assert got.shape == (2, 18, 32)
    assert torch.allclose(got, torch.stack(expect, 1), atol=1e-6)
    assert torch.allclose(got[:, 10], by_hand, atol=1e-5)


def test_training_checkpoint_gives_absolute_wplus(tmp_path, images):
    path = tmp_path / "psp.pt"
    ref, latent_avg = write_psp_checkpoint(path, num_ws=18, w_dim=32)
    t0 = time.perf_counter()
    enc = load_psp_encoder(path)
    load_s = time.perf_counter() - t0
    assert load_s < 5
    assert (enc.num_ws, enc.w_dim, enc.width, enc.latent_avg_source) == (18, 32, 16, "checkpoint")
    assert not enc.training and not any(p.requires_grad for p in enc.parameters())
    with torch.no_grad():
        out = enc(images)
        assert out.shape == (2, 18, 32)
        assert torch.allclose(out, ref.offsets(images) + latent_avg, atol=1e-6)
        assert torch.allclose(enc.offsets(images), ref.offsets(images), atol=1e-6)
        # other square sizes are resized to 256 first, as pSp's data transform does
        small = F.interpolate(images, size=(128, 128), mode="area")
        big = F.interpolate(small, size=(256, 256), mode="bilinear", align_corners=False, antialias=True)
        assert torch.allclose(enc(small), enc(big), atol=1e-6)
    with pytest.raises(ValueError, match="square RGB"):
        enc(images[:, :, :, :200])


def test_latent_avg_of_one_w_is_broadcast_and_an_argument_replaces_it(tmp_path, images):
    path = tmp_path / "psp_w.pt"
    ref, latent_avg = write_psp_checkpoint(path, num_ws=14, w_dim=32, latent_avg_shape="w")
    enc = load_psp_encoder(path)
    assert enc.num_ws == 14 and enc.latent_avg.shape == (14, 32)
    w_avg = torch.linspace(-1, 1, 32)
    enc2 = load_psp_encoder(path, latent_avg=w_avg)
    assert enc2.latent_avg_source == "argument"
    with torch.no_grad():
        assert torch.allclose(enc(images), ref.offsets(images) + latent_avg, atol=1e-6)
        assert torch.allclose(enc2(images), ref.offsets(images) + w_avg, atol=1e-6)
    with pytest.raises(WeightsFileError, match="does not fit W\\+ \\[14, 32\\]"):
        load_psp_encoder(path, latent_avg=torch.zeros(18, 32))


@pytest.mark.parametrize("layout", ["flat", "flat-prefixed"])
def test_flat_state_dicts_need_the_generators_w_avg(tmp_path, images, layout):
    path = tmp_path / f"{layout}.pt"
    ref, _ = write_psp_checkpoint(path, num_ws=18, w_dim=32, layout=layout)
    with pytest.raises(WeightsFileError, match=rf"{layout}\.pt carries no latent_avg.*latent_avg=G\.w_avg"):
        load_psp_encoder(path)
    w_avg = torch.randn(32)
    enc = load_psp_encoder(path, latent_avg=w_avg)
    with torch.no_grad():
        assert torch.allclose(enc(images), ref.offsets(images) + w_avg, atol=1e-6)


def test_opts_saying_codes_are_absolute_add_nothing(tmp_path, images):
    path = tmp_path / "abs.pt"
    ref, _ = write_psp_checkpoint(path, opts={"encoder_type": "GradualStyleEncoder", "start_from_latent_avg": False})
    enc = load_psp_encoder(path)
    assert enc.latent_avg is None and enc.latent_avg_source == "none"
    with torch.no_grad():
        assert torch.allclose(enc(images), ref.offsets(images), atol=1e-6)
    with pytest.raises(WeightsFileError, match="start_from_latent_avg=False"):
        load_psp_encoder(path, latent_avg=torch.zeros(32))


def test_bad_files_give_errors_naming_file_and_source(tmp_path):
    with pytest.raises(MissingWeightsFileError, match=r"inversion encoder.*missing\.pt.*encoder_styleganxl\.pt"):
        load_psp_encoder(tmp_path / "missing.pt")
    write_ir_se50(tmp_path / "model_ir_se50.pth", legacy=False)  # the ArcFace file given as the encoder
    with pytest.raises(WeightsFileError, match=r"model_ir_se50\.pth has no style blocks"):
        load_psp_encoder(tmp_path / "model_ir_se50.pth")
    torch.save({"state_dict": {"decoder.x": torch.ones(1)}, "latent_avg": torch.zeros(18, 32)}, tmp_path / "dec.pt")
    with pytest.raises(WeightsFileError, match=r"dec\.pt has neither 'encoder\.\*' keys"):
        load_psp_encoder(tmp_path / "dec.pt")
    path = tmp_path / "e4e.pt"
    write_psp_checkpoint(path, opts={"encoder_type": "Encoder4Editing"})
    with pytest.raises(WeightsFileError, match="encoder_type='Encoder4Editing'"):
        load_psp_encoder(path)
    # a damaged checkpoint: one unit's SE weights missing, one conv of the wrong shape
    ref, _ = write_psp_checkpoint(tmp_path / "ok.pt")
    blob = torch.load(tmp_path / "ok.pt", weights_only=True)
    blob["state_dict"].pop("encoder.body.5.res_layer.5.fc1.weight")
    blob["state_dict"]["encoder.latlayer1.weight"] = torch.zeros(128, 32, 3, 3)
    torch.save(blob, tmp_path / "broken.pt")
    with pytest.raises(WeightsFileError, match=r"broken\.pt does not match.*body\.5\.res_layer\.5\.fc1\.weight.*"
                                               r"latlayer1\.weight: file \(128, 32, 3, 3\)"):
        load_psp_encoder(tmp_path / "broken.pt")


@pytest.mark.slow
def test_real_size_checkpoint_loads(tmp_path):
    """A full-size (width 64, 18 x 512) pSp checkpoint of random weights: load time and output shape."""
    path = tmp_path / "psp_full.pt"
    ref, latent_avg = write_psp_checkpoint(path, num_ws=18, w_dim=512, width=64)
    t0 = time.perf_counter()
    enc = load_psp_encoder(path)
    load_s = time.perf_counter() - t0
    img = torch.rand(1, 3, 256, 256) * 2 - 1
    t0 = time.perf_counter()
    with torch.no_grad():
        out = enc(img)
    fwd_s = time.perf_counter() - t0
    print(f"pSp full size: file {path.stat().st_size / 2**20:.0f} MiB, load {load_s:.1f} s, forward {fwd_s:.1f} s")
    assert out.shape == (1, 18, 512)
    with torch.no_grad():
        assert torch.allclose(out, ref.offsets(img) + latent_avg, atol=1e-4)
