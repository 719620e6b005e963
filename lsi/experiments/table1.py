"""``make table``: the paper's Table 1 on the embedded default world, for every compression ratio.

For each ratio N (default 1:128 ... 1:16384), in ``<root>/ratioN/``:

1. ``lsi fit -c configs/train_embedded.yaml --model.init_args.ratio N --trainer.max_steps S`` -> ``lsi.ckpt``;
2. ``lsi fit -c configs/heads_embedded.yaml --model.init_args.lsi_checkpoint .../lsi.ckpt`` -> ``heads/heads.ckpt``;
3. ``lsi test`` of the heads (reconstruction + every head) -> ``heads/metrics.json``;
4. ``done.json`` with the metrics and the settings used. Ratios with a ``done.json`` are skipped (resume), as are
   finished steps of an interrupted ratio (``lsi.ckpt`` / ``heads.ckpt`` are only written when a fit ends).

Then ``docs/results.md`` gets its "Table 1" section (ours next to the paper's), ``docs/table1.json`` the raw
numbers and ``docs/figures/`` Figs. 4, 6, 7 and 8. The "Mask learning" section (``make bench-masks``) and a
Discussion already written under Table 1 are kept.

    python -m lsi.experiments.table1 [--ratios 128 256 ...] [--steps 400] [--head-steps 300] [--root runs/table]
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path

import lightning as L
import torch
import yaml
from jsonargparse import ArgumentParser
from tqdm import tqdm

from lsi.cli.main import main as lsi
from lsi.eval.face_recognition.descriptors import resolve_vggface_weights
from lsi.eval.face_recognition.dlib_models import load_dlib_models
from lsi.eval.floors import constant_predictor_metrics
from lsi.experiments.table1_report import (
    DISCUSSION_PLACEHOLDER,
    SECTION_TITLE,
    fixed,
    metric_panels,
    number,
    percent,
    render_section,
    write_results,
)
from lsi.labels import CELEBA_ATTRIBUTE_NAMES, EMBEDDED_ATTRIBUTE_NAMES
from lsi.models.heads import load_heads
from lsi.models.imaging import load_lsi
from lsi.report import figures as paper_figures
from lsi.report.figures import save_metric_curves
from lsi.report.records import write_json

__all__ = ["DISCUSSION_PLACEHOLDER", "FIGURES", "SECTION_TITLE", "TableSettingsError", "build_datamodule", "main",
           "metric_panels", "parse_args", "pick", "run_ratio", "scaled_schedule"]

RATIOS = (128, 256, 512, 1024, 2048, 4096, 8192, 16384)
# Budget: every ratio gets the LSI config's own schedule (the `make train` budget) and the heads config's steps;
# the training scenes are rendered once into the scene cache and shared by all ratios and the heads.
DEFAULT_HEAD_STEPS = 600
LSI_CONFIG = Path("configs/train_embedded.yaml")
HEADS_CONFIG = Path("configs/heads_embedded.yaml")

FIGURES = {"fig4": "fig4_reconstructions.png", "fig6": "fig6_attributes.png", "fig7": "fig7_landmarks.png",
           "fig8": "fig8_segmentation.png", "curves": "table1_curves.png"}


class TableSettingsError(ValueError):
    """A finished ratio in ``--root`` was produced with other settings than the ones asked for."""


# -------------------------------------------------------------------------------------------------------------
# optional identity backends

def dlib_status(requested: str) -> tuple[bool, str]:
    """(evaluate dlib?, reason when not) for ``--eval-dlib auto|yes|no``."""
    if requested == "no":
        return False, "not evaluated (--eval-dlib no)"
    try:
        load_dlib_models(with_recognizer=True)
    except (ImportError, FileNotFoundError, ValueError) as err:
        if requested == "yes":
            raise
        return False, f"dlib unavailable: {str(err).splitlines()[0]}"
    return True, ""


def vggface_status(path: str | None) -> tuple[str | None, str]:
    """(weights path or None, reason when missing)."""
    try:
        return str(resolve_vggface_weights(path)), ""
    except (ImportError, FileNotFoundError, ValueError):
        if path is not None:
            raise
        return None, "VGG-Face weights not installed"


# -------------------------------------------------------------------------------------------------------------
# one ratio

def merged_config(config_paths: list[Path]) -> dict:
    """The ``trainer`` and ``model.init_args`` of the YAML configs, later files overriding earlier ones."""
    trainer: dict = {}
    model: dict = {}
    for path in config_paths:
        cfg = yaml.safe_load(Path(path).read_text()) or {}
        trainer.update(cfg.get("trainer") or {})
        init = (cfg.get("model") or {}).get("init_args") or {}
        for key, value in init.items():
            model[key] = {**model.get(key, {}), **value} if isinstance(value, dict) and key == "schedule" else value
    return {"trainer": trainer, "model": model}


def scaled_schedule(config_paths: list[Path], steps: int | None) -> list[str]:
    """CLI overrides that give the LSI run ``steps`` steps in all (None: the config's own budget, as `make train`).

    The staged recipe's phases keep their proportions (e.g. joint 600 + readout 1400 of 2000 -> 120 + 280 of 400)
    and ``trainer.max_steps`` follows their sum; the energy loss's start keeps its fraction of training."""
    cfg = merged_config(config_paths)
    max_steps = cfg["trainer"].get("max_steps")
    steps = steps or max_steps
    out = ["--trainer.max_steps", str(steps), "--trainer.val_check_interval", str(steps)]
    schedule = cfg["model"].get("schedule")
    if schedule:
        phases = {k: int(schedule.get(k, 0)) for k in ("joint_steps", "readout_steps", "image_steps")}
        total = sum(phases.values())
        if total != steps:
            joint = round(phases["joint_steps"] * steps / total)
            image = round(phases["image_steps"] * steps / total)
            phases = {"joint_steps": joint, "readout_steps": steps - joint - image, "image_steps": image}
        out += [a for k, v in phases.items() for a in (f"--model.init_args.schedule.{k}", str(v))]
    start = cfg["model"].get("energy_start_step")
    if max_steps and start is not None and max_steps != steps:
        out += ["--model.init_args.energy_start_step", str(round(start * steps / max_steps))]
    return out


def run_ratio(ratio: int, args: argparse.Namespace, settings: dict, quiet: list[str]) -> dict:
    """Train LSI and heads at ``ratio`` and test them, unless already done; returns the done-record."""
    out = args.root / f"ratio{ratio}"
    done = out / "done.json"
    if done.is_file():
        record = json.loads(done.read_text())
        if record.get("settings") != settings:
            raise TableSettingsError(
                f"{out} was made with settings {record.get('settings')}, not {settings}; delete {out} to redo this "
                "ratio with the new settings, or pass another --root")
        record["skipped"] = True
        return record
    t0 = time.time()
    lsi_ckpt, heads_dir = out / "lsi.ckpt", out / "heads"
    heads_ckpt = heads_dir / "heads.ckpt"
    lsi_cfg = ["-c", str(args.lsi_config), *[a for c in args.lsi_extra for a in ("-c", str(c))]]
    heads_cfg = ["-c", str(args.heads_config), *[a for c in args.heads_extra for a in ("-c", str(c))]]
    if not lsi_ckpt.is_file():
        lsi(["fit", *lsi_cfg, *quiet, *scaled_schedule([args.lsi_config, *args.lsi_extra], args.steps),
             "--model.init_args.ratio", str(ratio),
             "--trainer.default_root_dir", str(out)])
    common = [*heads_cfg, *quiet, "--model.init_args.lsi_checkpoint", str(lsi_ckpt),
              "--trainer.default_root_dir", str(heads_dir)]
    if not heads_ckpt.is_file():
        lsi(["fit", *common, "--trainer.max_steps", str(args.head_steps),
             "--trainer.val_check_interval", str(args.head_steps)])
    test_opts = ["--model.init_args.eval_dlib", str(settings["eval_dlib"]).lower()]
    if settings["vggface"]:
        test_opts += ["--model.init_args.vggface_weights", settings["vggface"]]
    lsi(["test", *common, *test_opts, "--ckpt_path", str(heads_ckpt)])
    test = json.loads((heads_dir / "metrics.json").read_text())["test"]
    fit = json.loads((out / "metrics.json").read_text()) if (out / "metrics.json").is_file() else {}
    record = {
        "ratio": ratio, "measurements": 65536 // ratio, "settings": settings,
        "metrics": test["metrics"], "notes": test.get("notes", {}),
        "lsi_train_seconds": fit.get("train_seconds"), "seconds": round(time.time() - t0, 1),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    write_json(done, record)
    return record


# -------------------------------------------------------------------------------------------------------------
# figures

def build_datamodule(config_paths: list[Path]) -> L.LightningDataModule:
    """The ``data`` section of the YAML configs, merged in order and instantiated by jsonargparse as ``lsi`` does
    it (a later file may change only ``init_args``, or name another ``class_path``)."""
    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(L.LightningDataModule, "data", required=True)
    cfg = None
    for path in config_paths:
        section = (yaml.safe_load(Path(path).read_text()) or {}).get("data")
        if section:
            cfg = parser.parse_object({"data": section}, cfg)
    if cfg is None:
        raise ValueError(f"no data.class_path in {[str(p) for p in config_paths]}")
    return parser.instantiate(cfg).data


def pick(available: list[int], preferred: tuple[int, ...], count: int) -> list[int]:
    """Up to ``count`` ratios: the preferred ones that exist, then others spread over the range."""
    chosen = [r for r in preferred if r in available][:count]
    rest = [r for r in available if r not in chosen]
    while len(chosen) < count and rest:
        chosen.append(rest.pop(len(rest) // 2 if chosen else 0))
    return sorted(chosen)


@torch.no_grad()
def make_figures(records: list[dict], args: argparse.Namespace, dm) -> dict[str, Path]:
    """Figs. 4, 6, 7, 8 from the first ``--figure-samples`` test scenes; returns {figure: path}."""
    batch = next(iter(dm.test_dataloader()))
    ids = batch["identity"].tolist() if "identity" in batch else list(range(len(batch["image"])))
    pick_rows = [i for i, v in enumerate(ids) if v not in ids[:i]][:args.figure_samples]  # distinct people
    batch = {k: v[pick_rows] for k, v in batch.items() if isinstance(v, torch.Tensor) and len(v) == len(ids)}
    n = len(pick_rows)
    image = batch["image"]
    rec, probs, lmk, seg, inversion = {}, {}, {}, {}, None
    for record in records:
        ratio = record["ratio"]
        out = args.root / f"ratio{ratio}"
        encoder = load_lsi(str(out / "lsi.ckpt"))
        heads = load_heads(out / "heads" / "heads.ckpt", str(out / "lsi.ckpt"))
        latent = encoder(image)
        g = encoder.world.generator
        rec[ratio] = g.synthesis(latent).clamp(-1, 1) * 0.5 + 0.5
        if inversion is None:
            inversion = g.synthesis(encoder.target_latent(image)).clamp(-1, 1) * 0.5 + 0.5
        pred = heads.predict_heads(latent)
        if "attributes" in pred:
            probs[ratio] = torch.sigmoid(pred["attributes"])
        if "landmarks" in pred:
            lmk[ratio] = pred["landmarks"]
        if "segmentation" in pred:
            seg[ratio] = pred["segmentation"].argmax(1)
    figs = args.figures
    paths = {"fig4": paper_figures.save_reconstruction_figure(image, rec, figs / FIGURES["fig4"], inversions=inversion)}
    if probs:
        keep = pick(list(probs), (256, 2048), 2)
        count = next(iter(probs.values())).shape[1]  # the world's attributes: 21 embedded, 40 on CelebA-HQ
        names = CELEBA_ATTRIBUTE_NAMES if count == len(CELEBA_ATTRIBUTE_NAMES) else EMBEDDED_ATTRIBUTE_NAMES
        paths["fig6"] = paper_figures.save_attribute_bars({r: probs[r] for r in keep}, batch["attributes"][:n],
                                                          names, figs / FIGURES["fig6"])
    if lmk:
        keep = pick(list(lmk), (512, 2048, 8192), 3)
        paths["fig7"] = paper_figures.save_landmark_overlays(image, {r: lmk[r] for r in keep}, batch["landmarks"][:n],
                                                       figs / FIGURES["fig7"])
    if seg:
        keep = pick(list(seg), (512, 2048), 2)
        paths["fig8"] = paper_figures.save_segmentation_overlays(image, {r: seg[r] for r in keep},
                                                           batch["segmentation"][:n], figs / FIGURES["fig8"])
    return paths


def baseline_metrics(dm, train_batches: int = 16) -> dict[str, float]:
    """The constant predictors of :mod:`lsi.eval.floors` (fitted on the training split — every scene of a scene
    cache, else ``train_batches`` training batches — and scored on the whole test split of the heads' datamodule
    ``dm``, set up for fit and test): the floor each head must beat."""
    cache = getattr(dm, "train_cache", None)
    if cache is not None:
        keys = [k for k in ("attributes", "segmentation", "landmarks") if k in cache.fields]
        train = (cache.batch(torch.arange(s, min(len(cache), s + 256)), keys) for s in range(0, len(cache), 256))
    else:
        train = islice(dm.train_dataloader(), train_batches)
    return constant_predictor_metrics(train, dm.test_dataloader())


# -------------------------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ratios", type=int, nargs="+", default=list(RATIOS), help="compression ratios (65536/d)")
    p.add_argument("--steps", type=int, default=None,
                   help="LSI training steps per ratio (default: the LSI config's own budget, as `make train`)")
    p.add_argument("--head-steps", type=int, default=DEFAULT_HEAD_STEPS, help="training steps of the heads")
    p.add_argument("--root", type=Path, default=Path("runs/table"), help="where the runs go (resumable)")
    p.add_argument("--lsi-config", type=Path, default=LSI_CONFIG)
    p.add_argument("--heads-config", type=Path, default=HEADS_CONFIG)
    p.add_argument("--lsi-extra", type=Path, action="append", default=[], metavar="YAML",
                   help="extra config merged after --lsi-config (repeatable), e.g. smaller data for a dry run")
    p.add_argument("--heads-extra", type=Path, action="append", default=[], metavar="YAML",
                   help="extra config merged after --heads-config (repeatable)")
    p.add_argument("--eval-dlib", choices=("auto", "yes", "no"), default="auto",
                   help="Dlib identity match: auto = when dlib and face_recognition_models are installed")
    p.add_argument("--vggface-weights", default=None, help="VGG-Face weights (default: DeepFace's folder if present)")
    p.add_argument("--results", type=Path, default=Path("docs/results.md"))
    p.add_argument("--json", type=Path, default=Path("docs/table1.json"))
    p.add_argument("--figures", type=Path, default=Path("docs/figures"))
    p.add_argument("--figure-samples", type=int, default=3)
    p.add_argument("--no-figures", action="store_true")
    p.add_argument("--show-inner-progress", action="store_true", help="keep Lightning's own progress bars")
    args = p.parse_args(argv)
    for name in ("steps", "head_steps", "figure_samples"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    bad = [r for r in args.ratios if r not in [2 ** k for k in range(16)]]
    if bad:
        p.error(f"ratios {bad} are not powers of two dividing 65536 (use 128 ... 16384)")
    return args


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    args.steps = args.steps or merged_config([args.lsi_config, *args.lsi_extra])["trainer"].get("max_steps")
    t0 = time.time()
    use_dlib, dlib_reason = dlib_status(args.eval_dlib)
    vgg, vgg_reason = vggface_status(args.vggface_weights)
    settings = {"steps": args.steps, "head_steps": args.head_steps, "lsi_config": str(args.lsi_config),
                "heads_config": str(args.heads_config), "lsi_extra": [str(p) for p in args.lsi_extra],
                "heads_extra": [str(p) for p in args.heads_extra], "eval_dlib": use_dlib, "vggface": vgg}
    quiet = [] if args.show_inner_progress else [
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
    args.root.mkdir(parents=True, exist_ok=True)
    records = []
    with tqdm(args.ratios, desc="make table", unit="ratio") as bar:
        for ratio in bar:
            bar.set_postfix_str(f"1:{ratio}")
            record = run_ratio(ratio, args, settings, quiet)
            records.append(record)
            m = record["metrics"]
            state = "resumed" if record.get("skipped") else f"{record['seconds'] / 60:.1f} min"
            tqdm.write(f"1:{ratio} ({state}): identity {percent(number(m, 'test/reconstruction/id_match'))}, "
                       f"acc {percent(number(m, 'test/attr_acc'))}, F1 {percent(number(m, 'test/seg_f1'))}, "
                       f"NME {fixed(number(m, 'test/nme'))}")
    dm = build_datamodule([args.heads_config, *args.heads_extra])  # one for both: the test scenes render once
    dm.setup("fit")
    dm.setup("test")
    floor = baseline_metrics(dm)
    figures = {} if args.no_figures else make_figures(records, args, dm)
    if not args.no_figures:
        figures["curves"] = save_metric_curves(metric_panels(records, floor), args.figures / FIGURES["curves"])
    wall = time.time() - t0
    clean = [{k: v for k, v in r.items() if k != "skipped"} for r in records]
    write_json(args.json, {"settings": settings, "ratios": clean, "constant_predictor": floor})
    reasons = {"dlib": dlib_reason, "vggface": vgg_reason}
    write_results(args.results, lambda discussion: render_section(clean, settings, reasons, figures, args.results,
                                                                  wall, discussion, floor))
    resumed = sum(bool(r.get("skipped")) for r in records)
    print(f"make table: {len(records)} ratios ({resumed} resumed) in {wall / 60:.1f} min "
          f"-> {args.results}, {args.json}" + (f", {args.figures}/" if figures else ""))
    return records


if __name__ == "__main__":
    main()
