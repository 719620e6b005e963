"""Replay path of the rig: fine-tune D_theta on a simulated capture store and `lsi test` / heads on the store.

One tiny LSI fit (ratio 4096, 16 masks) exports its masks; ``lsi-capture --simulate`` measures 12 embedded
scenes with them; ``lsi fit`` fine-tunes with ``init_from`` and frozen masks; ``lsi test`` runs on the store.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from datamodules.faces.world import WORLD_DIM
from datamodules.measured import MeasuredDataModule
from hardware.store import MaskMismatchError
from lsi.cli.capture import main as capture
from lsi.cli.main import main
from lsi.experiments import hardware_e2e
from lsi.generator.embedded import EmbeddedGenerator, EmbeddedGeneratorConfig
from lsi.identity import IdentityNet
from lsi.inversion import InversionEncoder
from lsi.models.imaging import load_lsi
from lsi.physics.mask_files import load_masks, masks_sha256
from lsi.world.embedded import FILES, WEIGHTS_DIR, save_component

pytestmark = pytest.mark.slow  # one fit + capture + fine-tuning shared by the module, about 10 s on 2 cores

CONFIGS = Path(__file__).parent / "configs"
ROOT = Path(__file__).resolve().parents[2]
FRACTIONS = [0.5, 0.25, 0.25]  # as in configs/finetune_tiny.yaml; all three splits non-empty for these 12 keys
FRACTIONS_ARG = ["--data.init_args.fractions", json.dumps(FRACTIONS)]
TINY_MODEL = ["--model.init_args.ratio", "4096", "--model.init_args.digital", '{"hidden": 32, "depths": [1, 1, 1]}']
QUIET = ["--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> list[str]:
    """CLI options selecting the embedded world: the shipped weights, or random ones while those are absent."""
    if all((WEIGHTS_DIR / name).is_file() for name in FILES.values()):
        return []
    d = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    g = EmbeddedGenerator(EmbeddedGeneratorConfig(z_dim=WORLD_DIM))
    g.update_w_avg()
    save_component(g, g.cfg.to_dict(), d / FILES["generator"])
    e = InversionEncoder()
    save_component(e, e.cfg.to_dict(), d / FILES["encoder"])
    i = IdentityNet()
    save_component(i, i.cfg.to_dict(), d / FILES["identity"], meta={"far1_threshold": 0.3})
    return ["--model.init_args.weights_dir", str(d)]


@pytest.fixture(scope="module")
def run(tmp_path_factory, weights, fitted_run) -> dict[str, Path]:
    """Tiny LSI fit -> lsi.ckpt + masks.npy (the session's, unless the weights are random stand-ins); 12 simulated
    embedded scenes captured with those masks; fine-tuning."""
    root = tmp_path_factory.mktemp("e2e")
    lsi_dir, store, tuned = fitted_run, root / "capture", root / "finetune"
    if weights:
        lsi_dir = root / "lsi"
        main(["fit", "-c", str(CONFIGS / "lsi_tiny.yaml"), "--trainer.default_root_dir", str(lsi_dir), *weights])
    assert capture(["--masks", str(lsi_dir / "masks.npy"), "--simulate", "--dataset", "embedded", "--count", "12",
                    "--identities", "12", "--images-per-identity", "1", "--display", "sim", "--out", str(store),
                    "--no-progress"]) == 0
    main(["fit", "-c", str(CONFIGS / "finetune_tiny.yaml"), "--model.init_args.init_from", str(lsi_dir / "lsi.ckpt"),
          "--data.init_args.store", str(store), "--trainer.default_root_dir", str(tuned), *weights])
    return {"lsi": lsi_dir, "store": store, "tuned": tuned}


def _state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def test_store_splits_are_all_populated(run):
    ids = MeasuredDataModule(str(run["store"]), fractions=tuple(FRACTIONS)).split_ids()
    assert sorted(sum(ids.values(), [])) == list(range(12))
    assert all(len(v) >= 2 for v in ids.values()), ids


def test_items_without_readings_for_the_simulated_reference(run):
    dm = MeasuredDataModule(str(run["store"]), fractions=tuple(FRACTIONS), with_readings=False)
    dm.setup()
    item = dm.datasets["test"][0]
    assert "readings" not in item and item["image"].shape == (3, 256, 256) and item["index"] == item["scene_id"]
    dm_measured = MeasuredDataModule(str(run["store"]), fractions=tuple(FRACTIONS))
    dm_measured.setup()
    assert dm_measured.datasets["test"][0]["readings"].shape == (16,)


def test_finetuning_keeps_masks_and_changes_dtheta(run):
    before, after = _state(run["lsi"] / "lsi.ckpt"), _state(run["tuned"] / "lsi.ckpt")
    assert torch.equal(before["optical.masks"], after["optical.masks"])
    codes, meta = load_masks(run["tuned"] / "masks.npy")
    original, _ = load_masks(run["lsi"] / "masks.npy")
    assert np.array_equal(codes, original) and meta.sha256 == masks_sha256(original)
    digital = [k for k in before if k.startswith("digital.") and before[k].is_floating_point()]
    assert digital and any(not torch.equal(before[k], after[k]) for k in digital)
    hp = torch.load(run["tuned"] / "lsi.ckpt", map_location="cpu", weights_only=True)["hyper_parameters"]
    assert hp["freeze_masks"] is True and hp["init_from"] == str(run["lsi"] / "lsi.ckpt")
    # the reading normaliser saw the measured readings during fine-tuning: their mean is its new centre, and its
    # transform is the one D_theta was trained on (refitting it from a small capture fed D_theta another space)
    assert not torch.equal(before["reading_norm.mean"], after["reading_norm.mean"])
    assert torch.equal(before["reading_norm.transform"], after["reading_norm.transform"])


def _test_on_store(run, weights, *extra: str, root: Path) -> dict[str, float]:
    cli = main(["test", "-c", str(ROOT / "configs" / "test_measured.yaml"), *TINY_MODEL, *QUIET, *FRACTIONS_ARG,
                "--data.init_args.store", str(run["store"]), "--trainer.default_root_dir", str(root), *weights,
                *extra])
    return {k: float(v) for k, v in cli.trainer.callback_metrics.items() if k.startswith("test/")}


@pytest.mark.parametrize("which", ["trained", "finetuned"])
def test_lsi_test_on_store(run, weights, which, tmp_path):
    extra = (["--model.init_args.init_from", str(run["lsi"] / "lsi.ckpt")] if which == "trained"
             else ["--ckpt_path", str(run["tuned"] / "lsi.ckpt")])
    metrics = _test_on_store(run, weights, *extra, root=tmp_path)
    for key in ("test/id_match", "test/psnr", "test/lat", "test/reconstruction/id_match"):
        assert key in metrics and np.isfinite(metrics[key]), key
    assert 0.0 <= metrics["test/id_match"] <= 1.0 and metrics["test/lat"] > 0
    n_test = len(MeasuredDataModule(str(run["store"]), fractions=tuple(FRACTIONS)).split_ids()["test"])
    assert metrics["test/reconstruction/num_images"] == n_test
    report = json.loads((tmp_path / "metrics.json").read_text())["test"]
    assert report["metrics"]["test/id_match"] == pytest.approx(metrics["test/id_match"])


def test_store_with_other_masks_is_refused(run, weights, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(run["store"], other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["masks"]["sha256"] = "0" * 64
    (other / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(MaskMismatchError, match="init_from"):
        main(["test", "-c", str(ROOT / "configs" / "test_measured.yaml"), *TINY_MODEL, *QUIET, *FRACTIONS_ARG,
              "--model.init_args.init_from", str(run["lsi"] / "lsi.ckpt"), "--data.init_args.store", str(other),
              "--trainer.default_root_dir", str(tmp_path), *weights])


def test_heads_run_on_store(run, tmp_path):
    names = load_lsi(str(run["lsi"] / "lsi.ckpt")).world.generator.feature_names  # coarse -> fine
    layers = ["--model.init_args.seg_layers", json.dumps(list(names[-6:])), "--model.init_args.landmark_layer",
              names[1]]
    cli = main(["test", "-c", str(CONFIGS / "heads_tiny.yaml"), "--model.init_args.lsi_checkpoint",
                str(run["lsi"] / "lsi.ckpt"), *layers, "--data", "datamodules.measured.MeasuredDataModule",
                "--data.init_args.store", str(run["store"]), *FRACTIONS_ARG, "--trainer.default_root_dir",
                str(tmp_path)])
    metrics = cli.trainer.callback_metrics
    for key in ("test/attr_acc", "test/seg_f1", "test/nme", "test/reconstruction/id_match"):
        assert key in metrics and torch.isfinite(metrics[key]), key


def test_e2e_script_on_tiny_settings(run, weights, tmp_path):
    """The whole script: resumed capture, test, fine-tune, test again, results JSON and the document section."""
    e2e = hardware_e2e
    doc = tmp_path / "hardware.md"
    doc.write_text("# Hardware\n\n## Results on the simulated rig\n\nSTALE-BODY\n\n## Known limitations\n\nkept\n")
    store = tmp_path / "capture"
    shutil.copytree(run["store"], store)  # already complete: the capture step resumes and writes nothing
    weights_dir = weights[1] if weights else None
    results = e2e.main(["--run", str(run["lsi"]), "--capture", str(store), "--count", "12", "--finetune",
                        str(tmp_path / "ft"), "--doc", str(doc), "--no-progress",
                        *(["--weights-dir", weights_dir] if weights_dir else []),
                        "--lsi-arg=--trainer.accelerator=cpu", "--lsi-arg=--trainer.enable_progress_bar=false",
                        f"--lsi-arg=--data.init_args.fractions={json.dumps(FRACTIONS)}",
                        "--lsi-arg=--data.init_args.batch_size=4", "--fit-arg=--trainer.max_steps=2",
                        "--fit-arg=--trainer.val_check_interval=2"])
    for key in ("simulated", "before", "after"):
        m = results["metrics"][key]
        assert np.isfinite(m["id_match"]) and np.isfinite(m["psnr"]) and np.isfinite(m["lat"])
    assert results["scenes"] == 12 and results["finetune_steps"] == 2 and results["d"] == 16
    assert Path(results["checkpoint"]).name == "best.ckpt"
    saved = json.loads((tmp_path / "ft" / "e2e_results.json").read_text())
    assert saved["metrics"]["after"]["lat"] == pytest.approx(results["metrics"]["after"]["lat"])
    text = doc.read_text()
    assert "STALE-BODY" not in text and text.endswith("## Known limitations\n\nkept\n")
    assert f"{100 * results['metrics']['after']['id_match']:.1f}%" in text and "| 2 |" in text


def test_rig_gap_on_the_store(run, tmp_path, capsys):
    """`python -m lsi.experiments.rig_gap` sets the store's readings against the model's: the simulated rig reads
    the model's O up to its leak, blur and noise (gain near 1), and the report lands in the JSON."""
    from lsi.experiments import rig_gap

    gap = rig_gap.main(["--run", str(run["lsi"]), "--capture", str(run["store"]), "--json", str(tmp_path / "g.json")])
    assert gap["scenes"] == 12 and gap["readings"] == 16
    assert abs(gap["gain_mean"] - 1) < 0.05 and 0 < gap["residual_rms"] < gap["signal_std"]
    assert json.loads((tmp_path / "g.json").read_text())["bands"] == gap["bands"]
    assert "eigen-directions" in capsys.readouterr().out
