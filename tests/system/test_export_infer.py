"""`lsi export` and `lsi infer` on the session's tiny LSI run: exports equal PyTorch (per precision), inference runs
end to end without Lightning, the privacy-preserving export holds no generator, bad inputs exit 2 cleanly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import yaml
from onnx import numpy_helper

from lsi.cli.main import main
from lsi.deploy.export import TOLERANCE, export_model
from lsi.models.heads import load_heads
from lsi.models.imaging import load_lsi
from lsi.runtime.model import ExportedModel

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = Path(__file__).parent / "configs"
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_WAIT_POLICY": "PASSIVE"}


@pytest.fixture(scope="module")
def heads_ckpt(lsi_ckpt, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("heads")
    cfg = yaml.safe_load((CONFIGS / "heads_tiny.yaml").read_text())
    cfg["model"]["init_args"]["lsi_checkpoint"] = str(lsi_ckpt)
    (root / "heads.yaml").write_text(yaml.safe_dump(cfg))
    main(["fit", "-c", str(root / "heads.yaml"), "--trainer.default_root_dir", str(root)])
    return root / "heads.ckpt"


@pytest.fixture(scope="module")
def onnx_model(lsi_ckpt, heads_ckpt, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "model.onnx"
    export_model(lsi_ckpt, out, heads=heads_ckpt)
    return out


def readings_like_training(lsi_ckpt, n: int = 6) -> np.ndarray:
    """Readings of real scenes through the run's masks (what a camera with these masks would measure)."""
    lsi = load_lsi(str(lsi_ckpt))
    scenes = torch.rand(n, 3, 256, 256, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        return lsi.optical.A(scenes).numpy()


def run_infer(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lsi", "infer", *args], cwd=ROOT, env=ENV, input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_onnx_export_equals_pytorch_and_infer_runs_end_to_end(onnx_model, lsi_ckpt, heads_ckpt, tmp_path):
    meta = ExportedModel.open(onnx_model).meta
    assert meta["outputs"] == ["ws", "attributes", "segmentation", "landmarks", "image"]
    assert all(v <= TOLERANCE["fp32"][k] for k, v in meta["verified"].items() if k != "segmentation_agreement")
    y = readings_like_training(lsi_ckpt)
    np.save(tmp_path / "r.npy", y)
    done = run_infer("--model", str(onnx_model), "--readings", str(tmp_path / "r.npy"), "--out",
                     str(tmp_path / "out.npz"), "--images", str(tmp_path / "png"))
    assert done.returncode == 0, done.stderr
    out = np.load(tmp_path / "out.npz", allow_pickle=False)
    # against the PyTorch modules themselves (not the export's graph class)
    lsi, heads = load_lsi(str(lsi_ckpt)), load_heads(heads_ckpt, lsi_checkpoint=str(lsi_ckpt))
    with torch.no_grad():
        ws = lsi.encode_readings(torch.from_numpy(y))
        ref = heads.predict_heads(ws)
    assert out["ws"].shape == tuple(ws.shape) and np.abs(out["ws"] - ws.numpy()).max() < 1e-4
    assert np.abs(out["attributes"] - torch.sigmoid(ref["attributes"]).numpy()).max() < 1e-5
    assert np.abs(out["landmarks"] - ref["landmarks"].numpy()).max() < 1e-5
    assert (out["segmentation"] == ref["segmentation"].argmax(1).numpy()).mean() > 0.999
    assert out["scene_ids"].tolist() == list(range(len(y)))
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == [f"scene-{i:07d}.png" for i in range(len(y))]


def test_infer_reads_stdin_lines_and_writes_json_lines(onnx_model, lsi_ckpt):
    y = readings_like_training(lsi_ckpt, n=2)
    done = run_infer("--model", str(onnx_model), "--jsonl", stdin="\n".join(" ".join(map(str, r)) for r in y))
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["scene"] for r in rows] == [0, 1]
    assert np.asarray(rows[0]["ws"]).shape == (10, 128) and len(rows[0]["attributes"]) == 21
    assert len(rows[0]["landmarks"]) == 68


@pytest.mark.parametrize("out_name, precision", [("model_int8.onnx", "int8"), ("model_bf16.pt2", "bf16"),
                                                 ("model.pt2", "fp32")])
def test_reduced_precision_and_pt2_exports_stay_within_tolerance(lsi_ckpt, tmp_path, out_name, precision):
    meta = export_model(lsi_ckpt, tmp_path / out_name, precision=precision)
    assert set(meta["verified"]) == {"ws", "image"}
    assert all(v <= TOLERANCE[precision][k] for k, v in meta["verified"].items())
    model = ExportedModel.open(tmp_path / out_name)
    y = readings_like_training(lsi_ckpt, n=3)
    with torch.no_grad():
        want = load_lsi(str(lsi_ckpt)).encode_readings(torch.from_numpy(y)).numpy()
    assert np.abs(model.run(y)["ws"] - want).max() <= TOLERANCE[precision]["ws"]
    assert model.meta["precision"] == precision


def test_no_reconstruction_export_holds_no_generator(lsi_ckpt, onnx_model, heads_ckpt, tmp_path):
    out = tmp_path / "camera.onnx"
    assert main_export("--ckpt", str(lsi_ckpt), "--out", str(out), "--no-reconstruction") == 0
    graph = onnx.load(str(out))
    assert [o.name for o in graph.graph.output] == ["ws"]
    assert not {n.op_type for n in graph.graph.node} & {"Conv", "ConvTranspose", "Resize"}
    g = load_lsi(str(lsi_ckpt)).world.generator
    # G's learned weights (w_avg, the mean latent, is a buffer and belongs to L = D(y) + w_avg)
    g_tensors = {(tuple(t.shape), t.detach().numpy().tobytes()) for t in g.parameters()
                 if t.numel() > 1 and t.float().std() > 0}
    held = {(tuple(i.dims), numpy_helper.to_array(i).tobytes()) for i in graph.graph.initializer}
    assert not held & g_tensors
    assert out.stat().st_size * 5 < onnx_model.stat().st_size  # the generator is most of the full model
    # and it cannot make images; the feature heads (they read G's maps) are refused with it
    y = tmp_path / "r.npy"
    np.save(y, readings_like_training(lsi_ckpt, n=1))
    done = run_infer("--model", str(out), "--readings", str(y), "--out", str(tmp_path / "o.npz"), "--images",
                     str(tmp_path / "png"))
    assert done.returncode == 2 and "--no-reconstruction" in done.stderr and "Traceback" not in done.stderr
    assert main_export("--ckpt", str(lsi_ckpt), "--out", str(tmp_path / "x.onnx"), "--heads", str(heads_ckpt),
                       "--no-reconstruction") == 2


def main_export(*args: str) -> int:
    from lsi.deploy.export import main as export_main  # the tool's own main, in-process

    return export_main(list(args))


def test_export_refuses_a_precision_its_format_cannot_run(lsi_ckpt, tmp_path, capsys):
    assert main_export("--ckpt", str(lsi_ckpt), "--out", str(tmp_path / "m.onnx"), "--precision", "bf16") == 2
    assert "bf16 exports as .pt2" in capsys.readouterr().err
    assert main_export("--ckpt", str(tmp_path / "missing.ckpt"), "--out", str(tmp_path / "m.onnx")) == 2


@pytest.mark.parametrize("case, message", [
    ("wrong_d", "reads 16 values per scene"),
    ("nan", "NaN or infinite"),
    ("saturated", "saturated detector"),
    ("model_file", "not a readable ONNX model"),
    ("not_lsi", "no 'lsi' metadata"),
    ("pickle", "not a readable .npy"),
])
def test_infer_bad_input_exits_2_with_a_clear_message(onnx_model, tmp_path, case, message):
    y = np.full((3, 16), 0.5)
    model = str(onnx_model)
    if case == "wrong_d":
        y = np.full((3, 12), 0.5)
    elif case == "nan":
        y[1, 4] = np.nan
    elif case == "saturated":
        y[2, 0] = 7.5
    elif case == "model_file":
        model = str(tmp_path / "junk.onnx")
        Path(model).write_bytes(b"not a model")
    elif case == "not_lsi":
        bare = onnx.load(str(onnx_model))
        del bare.metadata_props[:]
        model = str(tmp_path / "bare.onnx")
        onnx.save(bare, model)
    path = tmp_path / "r.npy"
    if case == "pickle":
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    else:
        np.save(path, y)
    done = run_infer("--model", model, "--readings", str(path), "--out", str(tmp_path / "o.npz"))
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "o.npz").exists()


@pytest.mark.slow  # a simulated capture of three scenes (about 10 s on 2 cores)
def test_infer_reads_a_capture_store_made_with_the_models_masks(onnx_model, fitted_run, tmp_path):
    from lsi.cli.capture import main as capture  # the capture tool, only for this test

    store = tmp_path / "capture"
    assert capture(["--masks", str(fitted_run / "masks.npy"), "--simulate", "--dataset", "embedded", "--count", "3",
                    "--identities", "3", "--images-per-identity", "1", "--display", "sim", "--out", str(store),
                    "--no-progress"]) == 0
    done = run_infer("--model", str(onnx_model), "--store", str(store), "--out", str(tmp_path / "o.npz"))
    assert done.returncode == 0, done.stderr
    out = np.load(tmp_path / "o.npz")
    assert out["scene_ids"].tolist() == [0, 1, 2] and out["ws"].shape == (3, 10, 128)
