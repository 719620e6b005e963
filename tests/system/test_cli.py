"""The `lsi` LightningCLI, called in-process on one tiny YAML per scenario (torchgeo style)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lsi.cli.main import main
from lsi.experiments import probe

CONFIGS = Path(__file__).parent / "configs"


def test_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for sub in ("fit", "validate", "test", "predict"):
        assert sub in out


def test_fit_print_config(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["fit", "-c", str(CONFIGS / "lsi_tiny.yaml"), "--print_config"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "lsi.models.imaging.LatentImagingModule" in out and "ratio: 4096" in out


@pytest.mark.slow
def test_python_dash_m_lsi_help():
    res = subprocess.run([sys.executable, "-m", "lsi", "fit", "--help"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "--model" in res.stdout and "--trainer" in res.stdout


def test_fit_writes_artifacts(fitted_run):
    for name in ("lsi.ckpt", "masks.npy", "masks.json", "masks.png", "metrics.json"):
        assert (fitted_run / name).is_file(), name
    masks = np.load(fitted_run / "masks.npy", allow_pickle=False)
    assert masks.shape == (16, 256, 256) and masks.dtype == np.uint8
    assert set(np.unique(masks)) <= {0, 1}
    meta = json.loads((fitted_run / "masks.json").read_text())
    assert meta["ratio"] == 4096 and meta["bits"] == 1
    report = json.loads((fitted_run / "metrics.json").read_text())
    assert report["measurements"] == 16


def test_checkpoint_is_weights_only_and_complete(fitted_run):
    ckpt = torch.load(fitted_run / "lsi.ckpt", map_location="cpu", weights_only=True)
    keys = ckpt["state_dict"].keys()
    assert "optical.masks" in keys and "w_avg" in keys
    assert any(k.startswith("digital.") for k in keys)
    # the frozen world is shared, not copied into every checkpoint
    assert not any(k.startswith(("generator.", "encoder.", "identity.")) for k in keys)
    assert ckpt["hyper_parameters"]["ratio"] == 4096
    assert ckpt["lsi"]["d"] == 16


def test_test_subcommand_on_checkpoint(fitted_run):
    cli = main(["test", "-c", str(CONFIGS / "lsi_tiny.yaml"), "--trainer.default_root_dir", str(fitted_run),
                "--ckpt_path", str(fitted_run / "lsi.ckpt")])
    metrics = cli.trainer.callback_metrics
    for key in ("test/lat", "test/psnr", "test/id_match"):
        assert key in metrics and torch.isfinite(metrics[key])


def test_mismatched_checkpoint_is_refused(fitted_run):
    with pytest.raises(ValueError, match="ratio 4096"):
        main(["test", "-c", str(CONFIGS / "lsi_tiny.yaml"), "--model.init_args.ratio", "2048",
              "--trainer.default_root_dir", str(fitted_run), "--ckpt_path", str(fitted_run / "lsi.ckpt")])


def test_heads_fit_and_test(fitted_run, tmp_path):
    cfg = (CONFIGS / "heads_tiny.yaml").read_text().replace("REPLACED_BY_TEST", str(fitted_run / "lsi.ckpt"))
    path = tmp_path / "heads.yaml"
    path.write_text(cfg)
    main(["fit", "-c", str(path), "--trainer.default_root_dir", str(tmp_path)])
    ckpt = tmp_path / "heads.ckpt"
    assert ckpt.is_file()
    assert torch.load(ckpt, map_location="cpu", weights_only=True)["lsi_fingerprint"]
    cli = main(["test", "-c", str(path), "--trainer.default_root_dir", str(tmp_path), "--ckpt_path", str(ckpt)])
    metrics = cli.trainer.callback_metrics
    for key in ("test/attr_acc", "test/seg_f1", "test/nme"):
        assert key in metrics and torch.isfinite(metrics[key])
    per_class = {k: float(v) for k, v in metrics.items() if k.startswith("test/seg_f1_class/")}
    assert "test/seg_f1_class/background" in per_class and all(0 <= v <= 1 for v in per_class.values())


@pytest.mark.slow
def test_each_subcommand_logs_to_its_own_folder(tmp_path):
    """``lsi test`` beside a training run must not overwrite the run's curves (fast_dev_run disables loggers)."""
    cfg = ["-c", str(CONFIGS / "lsi_tiny.yaml"), "--trainer.default_root_dir", str(tmp_path),
           "--trainer.fast_dev_run", "false", "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "1"]
    main(["fit", *cfg, "--trainer.max_steps", "2", "--trainer.log_every_n_steps", "1"])
    main(["test", *cfg, "--ckpt_path", str(tmp_path / "lsi.ckpt")])
    assert "train/total" in (tmp_path / "logs" / "fit" / "metrics.csv").read_text().splitlines()[0]
    assert "test/lat" in (tmp_path / "logs" / "test" / "metrics.csv").read_text().splitlines()[0]
    assert (tmp_path / "logs" / "fit" / "config.yaml").is_file()


def test_probe_latent_script_on_a_fitted_run(fitted_run, tmp_path):
    out = tmp_path / "probe.json"
    result = probe.main([str(fitted_run / "lsi.ckpt"), "--train-identities", "4", "--test-identities", "2",
                         "--json", str(out)])
    assert result["train_scenes"] == 16 and result["test_scenes"] == 8
    for key in ("probe_acc_lsi_latent", "probe_acc_inversion_latent", "majority_acc"):
        assert 0.0 <= result[key] <= 1.0
    assert json.loads(out.read_text()) == result
    with pytest.raises(SystemExit):
        probe.main([str(tmp_path / "missing.ckpt")])


def test_paper_config_without_its_files_lists_every_missing_one(tmp_path, monkeypatch, capsys):
    """`lsi fit -c configs/experiment/paper_styleganxl_ffhq256.yaml` in a folder without weights/: one error, exit 2,
    every missing file of the world named with what it is and where to get it, before anything is trained."""
    from lsi.cli.main import entry

    config = Path(__file__).resolve().parents[2] / "configs" / "experiment" / "paper_styleganxl_ffhq256.yaml"
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        entry(["fit", "-c", str(config)])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "4 file(s) of the paper's real path are missing" in err and "Traceback" not in err
    for name in ("ffhq256.pkl", "encoder_styleganxl.pt", "model_ir_se50.pth", "dino_vitbase8_pretrain.pth"):
        assert name in err
