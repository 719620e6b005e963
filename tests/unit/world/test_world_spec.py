"""The frozen world chosen by config: WorldSpec validation, one error for every missing file, one copy per process,
and a world of tiny real-format files (StyleGAN-XL pickle, pSp checkpoint, legacy IR-SE50, DINO) loaded through it."""

from __future__ import annotations

import pytest
import torch

from lsi.inversion import load_psp_encoder
from lsi.world.embedded import load_meta
from lsi.world.frozen import FrozenWorld, frozen_world
from lsi.world.paper_files import MissingPaperFilesError
from lsi.world.spec import WorldSpec, WorldSpecError
from tests.fixtures.make_paper_world import write_paper_world


@pytest.fixture(scope="module")
def paper_world(tmp_path_factory):
    return write_paper_world(tmp_path_factory.mktemp("world_spec"))


def _real(info: dict, **extra) -> dict:
    spec = {"generator": str(info["generator"]), "encoder": str(info["encoder"]),
            "identity": str(info["identity"]), "dino": str(info["dino"])}
    spec.update(extra)
    return spec


def test_default_and_older_arguments_are_the_embedded_world():
    assert WorldSpec.from_config(None) == WorldSpec() and WorldSpec().is_embedded
    spec = WorldSpec.from_config(None, "embedded", "some/dir")
    assert spec.weights_dir == "some/dir" and spec.describe() == "embedded"
    assert frozen_world() is frozen_world("embedded") is frozen_world({})  # one shared copy per spec


def test_kinds_are_resolved_and_bad_sections_refused():
    spec = WorldSpec("w/ffhq256.pkl", encoder="w/e.pt", identity="w/id.pth")
    assert (spec.resolved_generator_kind, spec.resolved_encoder_kind, spec.resolved_identity_kind) == (
        "pickle", "psp", "arcface")
    assert WorldSpec("w/g.safetensors", encoder="w/e.pt").resolved_generator_kind == "converted"
    with pytest.raises(WorldSpecError, match="world.encoder"):  # the embedded E cannot invert a foreign G
        WorldSpec("w/ffhq256.pkl")
    with pytest.raises(WorldSpecError, match="set world.generator too"):
        WorldSpec(encoder="w/e.pt")
    with pytest.raises(WorldSpecError, match="unknown key"):
        WorldSpec.from_config({"generatr": "x.pkl"})
    with pytest.raises(WorldSpecError, match="identity_kind"):
        WorldSpec(identity_kind="vggface")
    with pytest.raises(WorldSpecError, match="suffix"):
        WorldSpec("w/ffhq256.onnx", encoder="w/e.pt").resolved_generator_kind  # noqa: B018


def test_every_missing_file_is_listed_at_once(tmp_path):
    spec = {"generator": str(tmp_path / "weights/ffhq256.pkl"), "encoder": str(tmp_path / "weights/enc.pt"),
            "identity": str(tmp_path / "weights/model_ir_se50.pth"), "dino": str(tmp_path / "weights/dino.pth")}
    with pytest.raises(MissingPaperFilesError) as err:
        frozen_world(spec)
    text = str(err.value)
    assert text.startswith("4 file(s)")
    for role in ("generator", "encoder", "identity", "dino"):
        assert f"- {role}:" in text
    assert "get it from" in text and "model_ir_se50.pth" in text


@pytest.mark.slow  # writing and loading the tiny real-format files takes ~10 s
def test_real_format_world_through_the_spec(paper_world):
    world = frozen_world(_real(paper_world))
    assert isinstance(world, FrozenWorld) and world is frozen_world(_real(paper_world))
    g = world.generator
    assert (g.num_ws, g.w_dim, g.img_resolution) == (paper_world["num_ws"], paper_world["w_dim"], 64)
    img = torch.rand(2, 3, 256, 256) * 2 - 1
    encoder = load_psp_encoder(paper_world["encoder"])  # the training checkpoint adds its own latent_avg
    with torch.no_grad():
        assert torch.allclose(world.invert(img), encoder(img), atol=1e-5)
        assert world.identity(img).shape == (2, 512)
        assert world.dino_loss(img, img).item() == pytest.approx(0.0, abs=1e-6)
    assert world.identity_threshold is None  # ArcFace: never the embedded net's; calibrated at evaluation
    assert frozen_world(_real(paper_world, identity_threshold=0.4)).identity_threshold == 0.4


def test_embedded_threshold_is_the_shipped_one():
    assert frozen_world().identity_threshold == pytest.approx(float(load_meta("identity")["far1_threshold"]))
