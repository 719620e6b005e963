"""The staged recipe end to end on a tiny world: fit (joint -> readout -> image), test with floor / ceiling /
ridge, metrics.json (steps vs planned, time per phase), resume in the middle of a phase and at a boundary,
the time guard, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import pytest
import torch

from lsi.cli.main import LSICLI, entry, main

CONFIG = str(Path(__file__).parent / "configs" / "lsi_staged_tiny.yaml")


def _fit(root: Path, cache: Path, *extra: str):
    return main(["fit", "-c", CONFIG, "--data.init_args.cache_dir", str(cache), "--trainer.default_root_dir",
                 str(root), *extra])


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    base = tmp_path_factory.mktemp("staged")
    cli = _fit(base / "run", base / "cache")
    return {"root": base / "run", "cache": base / "cache", "module": cli.model}


def _state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def test_fit_writes_steps_phases_and_the_ridge_baseline(staged):
    report = json.loads((staged["root"] / "metrics.json").read_text())
    assert report["steps"] == report["planned_steps"] == 6 and report["cut_short"] is False
    assert report["training"]["phase_steps"] == {"joint": 2, "readout": 2, "image": 2}
    assert set(report["training"]["phase_seconds"]) == {"joint", "readout", "image"}
    ckpt = torch.load(staged["root"] / "lsi.ckpt", map_location="cpu", weights_only=True)
    ridge = ckpt["lsi"]["ridge_baseline"]
    assert ridge["weight"].shape == (10 * 128, 16) and ridge["bias"].shape == (10 * 128,)
    # the cache holds the scenes once, and E(I) beside them
    (folder,) = [p for p in staged["cache"].iterdir() if p.is_dir()]
    assert (folder / "manifest.json").is_file() and list((folder / "derived").glob("inversion-latent-*.npy"))


def test_masks_learn_only_in_the_joint_phase(staged):
    folder = staged["root"] / "logs" / "fit" / "checkpoints"
    states = {int(p.stem.split("=")[1]): _state(p) for p in folder.glob("step=*.ckpt")}  # step=000003.ckpt -> 3
    assert sorted(states) == [1, 2, 3, 4, 5, 6]
    assert not torch.equal(states[1]["optical.masks"], states[2]["optical.masks"])  # learning (joint)
    assert all(torch.equal(states[2]["optical.masks"], states[k]["optical.masks"]) for k in (3, 4, 5, 6))
    init = torch.load(staged["root"] / "lsi.ckpt", map_location="cpu", weights_only=True)["hyper_parameters"]
    assert init["schedule"]["joint_steps"] == 2


def test_lsi_test_scores_floor_ceiling_and_ridge(staged, tmp_path):
    cli = main(["test", "-c", CONFIG, "--data.init_args.cache_dir", str(staged["cache"]),
                "--trainer.default_root_dir", str(staged["root"]), "--ckpt_path", str(staged["root"] / "lsi.ckpt")])
    m = {k: float(v) for k, v in cli.trainer.callback_metrics.items()}
    for key in ("test/id_match", "test/identification", "test/identification_originals", "test/floor/id_match",
                "test/ceiling/id_match", "test/ridge/id_match", "test/floor/identification"):
        assert key in m and 0.0 <= m[key] <= 1.0, key
    assert m["test/ceiling/psnr"] > m["test/floor/psnr"]
    report = json.loads((staged["root"] / "metrics.json").read_text())
    assert report["steps"] == 6 and "test/identification" in report["test"]["metrics"]


@pytest.mark.parametrize("resume_step", [2, 3])
def test_resume_continues_in_the_right_phase(staged, resume_step, tmp_path):
    """Step 2 is the joint -> readout boundary (the boundary work runs on resume); step 3 is mid-readout (the
    checkpoint's normaliser and D_theta are kept, only the readings are re-measured)."""
    ckpt = staged["root"] / "logs" / "fit" / "checkpoints" / f"step={resume_step:06d}.ckpt"
    seen: dict[str, object] = {}

    class Probe(L.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            if not seen:
                seen.update(mean=module.reading_norm.mean.clone(), phase=module.staged.phase,
                            frozen=module.optical.frozen)

    resumed = tmp_path / "resumed"
    LSICLI(L.LightningModule, L.LightningDataModule, subclass_mode_model=True, subclass_mode_data=True,
           save_config_kwargs={"overwrite": True}, auto_configure_optimizers=False,
           trainer_defaults={"callbacks": [Probe()]},
           args=["fit", "-c", CONFIG, "--data.init_args.cache_dir", str(staged["cache"]),
                 "--trainer.default_root_dir", str(resumed), "--ckpt_path", str(ckpt)])
    saved = _state(ckpt)
    assert seen["phase"] == "readout" and seen["frozen"]
    if resume_step == 3:
        assert torch.equal(seen["mean"], saved["reading_norm.mean"])  # not refitted mid-phase
    else:
        assert not torch.equal(seen["mean"], saved["reading_norm.mean"])  # boundary: exact statistics of all
    final = _state(resumed / "lsi.ckpt")
    assert torch.equal(final["optical.masks"], saved["optical.masks"])
    assert json.loads((resumed / "metrics.json").read_text())["steps"] == 6


def test_time_guard_says_it_cut_the_run_short(staged, tmp_path, capsys):
    _fit(tmp_path, staged["cache"], "--trainer.max_time", "00:00:00:00")
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert report["cut_short"] is True and report["steps"] < report["planned_steps"] == 6
    assert "time guard" in report["cut_short_reason"]


def test_a_noise_model_reaches_every_phase(staged, tmp_path, monkeypatch):
    """Physics-aware training: with ``noise`` set, D_theta sees noisy readings in the readout and image phases
    too (fresh noise per step) and the whitening is fitted on noisy readings. The defect: only the joint phase
    was noisy, so a rig-bound model whitened and trained on noiseless readings (docs/hardware.md)."""
    from lsi.models.reading_normaliser import ReadingNormaliser
    from lsi.physics.operator import OpticalEncoder

    fits, draws = [], []
    fit, detect = ReadingNormaliser.fit, OpticalEncoder.detect

    def spy_fit(self, readings, whiten=None):
        fits.append(readings.detach().clone())
        return fit(self, readings, whiten)

    def spy_detect(self, y, add_noise=True, generator=None):
        out = detect(self, y, add_noise, generator)
        if self.training:  # the training steps' draws (validation and test add noise as well)
            draws.append((out - y).detach().clone())
        return out

    monkeypatch.setattr(ReadingNormaliser, "fit", spy_fit)
    monkeypatch.setattr(OpticalEncoder, "detect", spy_detect)
    sigma = 0.05
    module = _fit(tmp_path, staged["cache"], "--model.init_args.noise", f"{{read_noise: {sigma}}}").model
    assert len(draws) == 6  # each of the 6 training steps (2 joint, 2 readout, 2 image) adds detector noise
    for noise in draws:
        assert 0.5 * sigma < float(noise.std()) < 1.5 * sigma
    assert not torch.equal(draws[-1], draws[-2])  # a fresh draw each step
    noiseless = module.staged.measure(module)  # the masks are frozen after the joint phase
    readout_fit = fits[-1]  # the readout phase's whitening, the last fit of the run
    assert readout_fit.shape == noiseless.shape
    assert 0.5 * sigma < float((readout_fit - noiseless).std()) < 1.5 * sigma


def test_max_steps_must_match_the_schedule(staged, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        entry(["fit", "-c", CONFIG, "--data.init_args.cache_dir", str(staged["cache"]),
               "--trainer.default_root_dir", str(tmp_path), "--trainer.max_steps", "5"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "max_steps is 5" in err and "add up to 6" in err and "Traceback" not in err


def test_bad_ratio_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        entry(["fit", "-c", CONFIG, "--trainer.default_root_dir", str(tmp_path), "--model.init_args.ratio", "500"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "ratio 500 is invalid" in err and "valid ratios" in err and "Traceback" not in err


def test_heads_train_from_the_cache_with_a_converged_attribute_head(staged, tmp_path):
    heads_cfg = str(Path(__file__).parent / "configs" / "heads_staged_tiny.yaml")
    cli = main(["fit", "-c", heads_cfg, "--model.init_args.lsi_checkpoint", str(staged["root"] / "lsi.ckpt"),
                "--data.init_args.cache_dir", str(staged["cache"]), "--trainer.default_root_dir", str(tmp_path)])
    heads = cli.model
    assert not any(p.requires_grad for p in heads.attr.parameters())  # P_A fitted in closed form, then frozen
    (folder,) = [p for p in staged["cache"].iterdir() if p.is_dir()]
    assert list((folder / "derived").glob("lsi-latent-*.npy"))  # the encoder's latents, computed once
    # P_A equals the convex fit on the cached latents (what the probe computes)
    from lsi.eval.linear_readout import fit_logistic

    cache = cli.datamodule.train_cache
    w, b = fit_logistic(heads._train_latents, cache.tensor("attributes").float())
    assert torch.allclose(heads.attr.linear.weight, w, atol=1e-6) and torch.allclose(heads.attr.linear.bias, b)
    assert (tmp_path / "heads.ckpt").is_file()
