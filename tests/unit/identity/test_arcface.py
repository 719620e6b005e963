"""IR-SE50 ArcFace: model_ir_se50.pth key layout, legacy and modern files, pSp's ID-loss preprocessing, the loss."""

from __future__ import annotations

import time
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F

from lsi.identity import ArcFaceIRSE50, identity_loss, load_arcface
from lsi.inversion import MissingWeightsFileError, WeightsFileError
from tests.fixtures.legacy_torch_save import save_legacy
from tests.fixtures.make_paper_weights import randomise, write_ir_se50, write_psp_checkpoint

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def faces():
    return torch.rand(3, 3, 256, 256, generator=torch.Generator().manual_seed(9)) * 2 - 1


def test_real_network_has_the_published_keys():
    with torch.device("meta"):
        net = ArcFaceIRSE50()
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert shapes["output_layer.0.weight"] == (512,) and shapes["output_layer.0.running_var"] == (512,)
    assert shapes["output_layer.3.weight"] == (512, 25088) and shapes["output_layer.3.bias"] == (512,)
    assert shapes["output_layer.4.weight"] == (512,) and shapes["output_layer.4.running_mean"] == (512,)
    assert not any(k.startswith(("output_layer.1", "output_layer.2")) for k in shapes)  # Dropout, Flatten
    assert {k.split(".")[0] for k in shapes} == {"input_layer", "body", "output_layer"}
    assert max(int(k.split(".")[1]) for k in shapes if k.startswith("body.")) == 23
    assert net.output_layer[1].p == pytest.approx(0.6)


@pytest.mark.parametrize("legacy", [True, False], ids=["legacy-non-zip-no-counters", "zip"])
def test_both_file_formats_load_and_match_the_reference(tmp_path, faces, legacy):
    path = tmp_path / "model_ir_se50.pth"
    ref = write_ir_se50(path, legacy=legacy)
    assert (path.read_bytes()[:2] == b"PK") is (not legacy)  # zip archives start with PK
    t0 = time.perf_counter()
    net = load_arcface(path)
    assert time.perf_counter() - t0 < 5
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    with torch.no_grad():
        emb = net(faces)
        assert emb.shape == (3, 512)
        assert torch.allclose(emb.norm(dim=1), torch.ones(3), atol=1e-5)
        assert torch.allclose(emb, ref(faces), atol=1e-5)
        for name, buf in ref.named_buffers():  # the BatchNorm statistics came from the file
            if not name.endswith("num_batches_tracked"):
                assert torch.equal(buf, dict(net.named_buffers())[name])


def test_preprocessing_is_psps_crop_and_pool(faces):
    ref = randomise(ArcFaceIRSE50(width=16), seed=1)
    with torch.no_grad():
        crop = faces[:, :, 35:223, 32:220]
        assert crop.shape[-2:] == (188, 188)
        assert torch.allclose(ref(faces), ref.embed_faces(F.adaptive_avg_pool2d(crop, 112)), atol=1e-6)
        outside = faces.clone()
        outside[:, :, :35] = 1.0
        outside[:, :, 223:] = -1.0
        outside[:, :, :, :32] = 0.3
        outside[:, :, :, 220:] = -0.7
        assert torch.equal(ref(outside), ref(faces))  # pixels outside the crop never matter
        inside = faces.clone()
        inside[:, :, 100:120, 100:120] = 1.0
        assert not torch.allclose(ref(inside), ref(faces))
        # other sizes are resized to 256 first
        small = F.interpolate(faces, size=(128, 128), mode="area")
        big = F.interpolate(small, size=(256, 256), mode="bilinear", align_corners=False, antialias=True)
        assert torch.allclose(ref(small), ref(big), atol=1e-6)
    with pytest.raises(ValueError, match="square RGB"):
        ref(faces[:, :1])


def test_identity_loss_is_mean_one_minus_dot():
    a = F.normalize(torch.randn(4, 8), dim=1)
    b = F.normalize(torch.randn(4, 8), dim=1)
    assert float(identity_loss(a, a)) == pytest.approx(0.0, abs=1e-6)
    assert float(identity_loss(a, -a)) == pytest.approx(2.0, abs=1e-6)
    by_hand = sum(1 - float(a[i] @ b[i]) for i in range(4)) / 4
    assert float(identity_loss(a, b)) == pytest.approx(by_hand, abs=1e-6)


def test_dataparallel_prefix_and_non_affine_embedding_norm(tmp_path, faces):
    ref = randomise(ArcFaceIRSE50(width=16, affine_embedding=False), seed=3)
    state = OrderedDict((f"module.{k}", v) for k, v in ref.state_dict().items())
    save_legacy(state, tmp_path / "dp.pth")
    net = load_arcface(tmp_path / "dp.pth")
    assert not net.output_layer[4].affine
    with torch.no_grad():
        assert torch.allclose(net(faces), ref(faces), atol=1e-5)


def test_wrong_files_are_named_with_their_source(tmp_path):
    with pytest.raises(MissingWeightsFileError, match=r"model_ir_se50\.pth.*absent\.pth does not exist.*TreB1eN"):
        load_arcface(tmp_path / "absent.pth")
    write_psp_checkpoint(tmp_path / "psp.pt")  # the encoder checkpoint given as the identity net
    with pytest.raises(WeightsFileError, match=r"psp\.pt lacks input_layer\.0\.weight.*not an IR-SE50 ArcFace"):
        load_arcface(tmp_path / "psp.pt")
    big = ArcFaceIRSE50(width=16)
    state = big.state_dict()
    state["output_layer.3.weight"] = torch.zeros(512, 128 * 14 * 14)  # the 224 px IR-SE50 variant
    torch.save(state, tmp_path / "ir_se50_224.pth")
    with pytest.raises(WeightsFileError, match=r"ir_se50_224\.pth: output_layer\.3 takes 25088 features"):
        load_arcface(tmp_path / "ir_se50_224.pth")


@pytest.mark.slow
def test_real_size_legacy_file_loads(tmp_path):
    """A full-size model_ir_se50.pth (random weights, legacy format, no batch counters): load time and output."""
    path = tmp_path / "model_ir_se50.pth"
    ref = write_ir_se50(path, width=64, legacy=True)
    t0 = time.perf_counter()
    net = load_arcface(path)
    load_s = time.perf_counter() - t0
    img = torch.rand(2, 3, 256, 256) * 2 - 1
    t0 = time.perf_counter()
    with torch.no_grad():
        emb = net(img)
    fwd_s = time.perf_counter() - t0
    print(f"IR-SE50 full size: file {path.stat().st_size / 2**20:.0f} MiB, load {load_s:.1f} s, "
          f"forward (2 images) {fwd_s:.1f} s")
    assert emb.shape == (2, 512)
    with torch.no_grad():
        assert torch.allclose(emb, ref(img), atol=1e-5)
