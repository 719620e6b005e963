"""End to end on the simulated rig: capture, test, fine-tune on the measured readings, test again.

Given a trained run (``make train-rig RATIO=512`` -> ``runs/rig512/{lsi.ckpt,masks.npy}``; any run works):

1. ``lsi-capture --simulate --dataset embedded --count 200 --display sim --out runs/capture-rig512`` (resumed when
   the store exists; every scene a different test-split identity: ``--identities 200 --images-per-identity 1``);
2. ``lsi test -c configs/test_measured.yaml`` of the trained encoder on the store's test split (no fine-tuning)
   -> ``<finetune>/before/metrics.json``; and, as the reference, on the same scenes measured by the model's own
   simulated O (``--data.init_args.with_readings false``) -> ``<finetune>/simulated/metrics.json``;
3. ``lsi fit -c configs/finetune_measured.yaml`` (masks frozen, D_theta trained on the train split's readings
   against E(displayed image)) -> ``<finetune>/lsi.ckpt`` and ``logs/fit/checkpoints/best.ckpt`` (skipped when
   ``<finetune>/lsi.ckpt`` exists, unless ``--refit``);
4. ``lsi test`` of the fine-tuned encoder on the same test split -> ``<finetune>/after/metrics.json``;
5. ``<finetune>/e2e_results.json`` and the "Results on the simulated rig" section of ``docs/hardware.md``.

The model settings (ratio, bits, complementary, D_theta's ``digital``, weights_dir) are read from the run's
checkpoint, so any ratio works. ``--lsi-arg`` / ``--fit-arg`` / ``--capture-arg`` pass extra options through
(use the ``--lsi-arg=--trainer.accelerator=cpu`` form).

    python -m lsi.experiments.hardware_e2e [--run runs/rig512] [--capture runs/capture-rig512] [--count 200]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import textwrap
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from lsi.cli.capture import main as lsi_capture
from lsi.cli.main import main as lsi_main
from lsi.report.markdown import MarkdownSectionError, replace_section

ROOT = Path(__file__).resolve().parents[2]  # the repository: configs/ and docs/
FINETUNE_CONFIG = ROOT / "configs" / "finetune_measured.yaml"
TEST_CONFIG = ROOT / "configs" / "test_measured.yaml"
DOC = ROOT / "docs" / "hardware.md"
SECTION = "## Results on the simulated rig"
# noise: the reference row simulates the readings with the model's own detector noise (a physics-aware model's)
MODEL_KEYS = ("ratio", "bits", "complementary", "digital", "noise", "generator", "weights_dir")
ROWS = (("simulated", "reference: readings simulated by the model's O"),
        ("before", "trained encoder, no fine-tuning"), ("after", "D_theta fine-tuned on measured readings"))


class E2EError(ValueError):
    """A precondition of the end-to-end run is not met."""


def lsi(args: list[str]) -> Any:
    """``lsi <args>`` in-process (this script's own command line hidden from LightningCLI); returns the CLI."""
    saved, sys.argv = sys.argv, sys.argv[:1]
    try:
        return lsi_main(args)
    finally:
        sys.argv = saved


def model_overrides(ckpt: Path, weights_dir: str | None = None) -> tuple[list[str], dict[str, Any]]:
    """CLI options that make the configs' model match ``ckpt`` (ratio, bits, D_theta, ...), and those values."""
    hp = torch.load(ckpt, map_location="cpu", weights_only=True).get("hyper_parameters", {})
    values = {k: hp[k] for k in MODEL_KEYS if k in hp}
    if weights_dir is not None:
        values["weights_dir"] = weights_dir
    args: list[str] = []
    for key, value in values.items():
        if value is not None:
            args += [f"--model.init_args.{key}", json.dumps(value) if not isinstance(value, str) else value]
    return args, values


def collect_test_metrics(cli: Any) -> dict[str, float]:
    """The ``test/*`` scalars of a finished ``lsi test`` run, prefix stripped."""
    return {k[len("test/"):]: float(v) for k, v in sorted(cli.trainer.callback_metrics.items())
            if k.startswith("test/") and isinstance(v, torch.Tensor) and v.numel() == 1}


def finetuned_checkpoint(finetune: Path, which: str) -> Path:
    """``best`` (lowest val/lat, when ModelCheckpoint saved one) or ``last`` (``lsi.ckpt``) of a fine-tuning run."""
    best = sorted(finetune.glob("**/best.ckpt"), key=lambda p: p.stat().st_mtime)
    if which == "best" and best:
        return best[-1]
    last = finetune / "lsi.ckpt"
    if not last.is_file():
        raise E2EError(f"no fine-tuned checkpoint in {finetune}: the fine-tuning did not finish")
    return last


def _fmt(v: float | None, scale: float = 1.0, digits: int = 2, unit: str = "") -> str:
    return "—" if v is None else f"{v * scale:.{digits}f}{unit}"


def render_section(results: dict[str, Any] | None) -> str:
    """Body of the "Results on the simulated rig" section (procedure, then the numbers when ``results`` is set)."""
    lines = [
        "`lsi/experiments/hardware_e2e.py` runs the replay path of the issue end to end on the simulated rig, after",
        "`make train-rig RATIO=512` (physics-aware training: the rig's detector noise in every phase); `make",
        "hardware-e2e RATIO=512` runs it, `--run runs/ratio512` tests the noiseless `make train` run instead:",
        "",
        "```",
        "python -m lsi.experiments.hardware_e2e --run runs/rig512 --capture runs/capture-rig512 --count 200",
        "```",
        "",
        "1. `lsi-capture --masks runs/rig512/masks.npy --simulate --dataset embedded --count 200 --identities 200",
        "   --images-per-identity 1 --display sim --out runs/capture-rig512` (resumable: rerunning continues the",
        "   store); every scene is a different person of the embedded test split, never seen in training.",
        "2. `lsi test -c configs/test_measured.yaml --model.init_args.init_from runs/rig512/lsi.ckpt",
        "   --data.init_args.store runs/capture-rig512`: the trained D_theta reads the drift-corrected measured",
        "   readings (O bypassed) of the store's test split (fractions 0.7/0.1/0.2 by a hash of the scene key).",
        "   The reference row adds `--data.init_args.with_readings false`: the same scenes measured by the model's",
        "   own simulated O with its detector noise, as in training; the gap to it is what the rig (optics, leak,",
        "   its own noise) costs.",
        "3. `lsi fit -c configs/finetune_measured.yaml --model.init_args.init_from runs/rig512/lsi.ckpt",
        "   --data.init_args.store runs/capture-rig512`: masks frozen, D_theta trained for `max_steps` on the train",
        "   split's readings with the paper's loss L1(D_theta(y), E(displayed image)); the checkpoint with the lowest",
        "   validation L_lat is kept.",
        "4. `lsi test -c configs/test_measured.yaml --ckpt_path <fine-tuned checkpoint>` on the same test scenes.",
        "",
        "The script passes the checkpoint's model options (ratio, bits, `digital`, noise, weights_dir) to both",
        "configs; by hand, give the same `--model.init_args.digital` as the training run (the configs mirror",
        "`configs/train_embedded.yaml`), otherwise `init_from` refuses the checkpoint. A store captured with other",
        "masks than the model's is refused as well (`MeasuredDataModule` compares the masks' sha256). Identity match",
        "is the embedded identity network's rate at its 1% FAR threshold between each displayed scene and",
        "G(D_theta(y)); PSNR is against the scene at G's resolution; L_lat is the mean L1 distance to E(scene).",
        "",
        "The downstream heads (attributes, segmentation, landmarks; embedded scenes carry the labels) run on a store",
        "the same way, through the encoder they were trained on:",
        "",
        "```",
        "lsi test -c configs/heads_embedded.yaml --model.init_args.lsi_checkpoint runs/rig512/lsi.ckpt \\",
        "  --ckpt_path runs/rig512/heads/heads.ckpt --trainer.default_root_dir runs/capture-rig512/heads \\",
        "  --data datamodules.measured.MeasuredDataModule --data.init_args.store runs/capture-rig512 \\",
        "  --data.init_args.fractions \"[0.7, 0.1, 0.2]\"",
        "```",
        "",
        "Heads refuse a fine-tuned encoder (its fingerprint differs): train them on it first with",
        "`lsi fit -c configs/heads_embedded.yaml --model.init_args.lsi_checkpoint runs/rig512/finetune/lsi.ckpt`.",
        "",
    ]
    if not results:
        lines += ["*Not run yet: the numbers appear here when `lsi/experiments/hardware_e2e.py` finishes.*"]
        return "\n".join(lines)
    r = results
    lines += [
        textwrap.fill(
            f"Run of {r['date']} on {r['device']}: `{r['run']}` (ratio 1:{r['ratio']}, {r['d']} masks), store "
            f"`{r['capture']}` ({r['scenes']} scenes: {r['splits']['train']} train / {r['splits']['val']} val / "
            f"{r['splits']['test']} test), fine-tuned for {r['finetune_steps']} steps (checkpoint "
            f"`{r['checkpoint']}`).", width=110, break_long_words=False, break_on_hyphens=False),
        "",
        "| Encoder on simulated-real readings | test scenes | identity match | PSNR (dB) | L_lat |",
        "|---|---|---|---|---|",
    ]
    for key, label in ROWS:
        m = r["metrics"][key]
        n = m.get("reconstruction/num_images")
        lines.append(f"| {label} | {int(n) if n is not None else '—'} | {_fmt(m.get('id_match'), 100, 1, '%')} | "
                     f"{_fmt(m.get('psnr'))} | {_fmt(m.get('lat'), digits=4)} |")
    sim, before = r["metrics"]["simulated"], r["metrics"]["before"]
    lines += ["", textwrap.fill(
        f"On the same test scenes: floor (the constant latent w_avg) {_fmt(before.get('floor/id_match'), 100, 1, '%')}"
        f", ceiling G(E(I)) {_fmt(before.get('ceiling/id_match'), 100, 1, '%')}, and the simple baseline, the "
        f"checkpoint's closed-form ridge read-out, {_fmt(before.get('ridge/id_match'), 100, 1, '%')} on the rig's "
        f"readings ({_fmt(sim.get('ridge/id_match'), 100, 1, '%')} on simulated ones).", width=110,
        break_long_words=False, break_on_hyphens=False)]
    t = r["seconds"]
    lines += ["", f"Times: capture {t['capture']:.0f} s, test {t['before']:.0f} s + {t['after']:.0f} s, fine-tuning "
                  f"{t['finetune']:.0f} s, total {t['total']:.0f} s. Raw numbers: `{r['results_json']}`."]
    return "\n".join(lines)


def _step(n: int, what: str, t0: float) -> float:
    print(f"\n[{n}/4] {what}  (t = {time.time() - t0:.0f} s)", flush=True)
    return time.time()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=Path, default=Path("runs/rig512"), help="trained run (lsi.ckpt, masks.npy)")
    p.add_argument("--capture", type=Path, default=Path("runs/capture-rig512"), help="capture store directory")
    p.add_argument("--finetune", type=Path, default=None, help="fine-tuning directory (default <run>/finetune)")
    p.add_argument("--count", type=int, default=200, help="scenes to capture")
    p.add_argument("--identities", type=int, default=None, help="embedded test identities (default --count)")
    p.add_argument("--images-per-identity", type=int, default=1)
    p.add_argument("--weights-dir", default=None, help="embedded world weights (default: the checkpoint's)")
    p.add_argument("--checkpoint", choices=["best", "last"], default="best", help="fine-tuned checkpoint to test")
    p.add_argument("--refit", action="store_true", help="fine-tune again even if <finetune>/lsi.ckpt exists")
    p.add_argument("--doc", type=Path, default=DOC, help="document whose results section is rewritten")
    p.add_argument("--no-doc", action="store_true", help="do not touch the document")
    p.add_argument("--lsi-arg", action="append", default=[], help="extra option for every lsi fit/test call")
    p.add_argument("--fit-arg", action="append", default=[], help="extra option for the fine-tuning lsi fit")
    p.add_argument("--capture-arg", action="append", default=[], help="extra option for lsi-capture")
    p.add_argument("--no-progress", action="store_true", help="no capture progress bar")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    t0 = time.time()
    ckpt, masks = args.run / "lsi.ckpt", args.run / "masks.npy"
    for path in (ckpt, masks):
        if not path.is_file():
            raise E2EError(f"{path} not found: train the encoder first (`make train-rig RATIO=512` writes "
                           "runs/rig512, `make train RATIO=512` runs/ratio512)")
    finetune = args.finetune or args.run / "finetune"
    model_args, model = model_overrides(ckpt, args.weights_dir)
    seconds: dict[str, float] = {}

    t = _step(1, f"capture {args.count} simulated scenes into {args.capture}", t0)
    cap = ["--masks", str(masks), "--simulate", "--dataset", "embedded", "--split", "test", "--count", str(args.count),
           "--identities", str(args.identities or args.count), "--images-per-identity", str(args.images_per_identity),
           "--display", "sim", "--out", str(args.capture), *args.capture_arg]
    if (args.capture / "manifest.json").is_file():
        cap.append("--resume")
    if args.no_progress:
        cap.append("--no-progress")
    code = lsi_capture(cap)
    if code != 0:
        raise E2EError(f"lsi-capture failed with exit code {code} (see its message above); rerun to resume")
    seconds["capture"] = time.time() - t

    store = ["--data.init_args.store", str(args.capture)]
    test = ["test", "-c", str(TEST_CONFIG), *model_args, *store, *args.lsi_arg]
    t = _step(2, "lsi test of the trained encoder on the measured readings, then through its simulated O", t0)
    cli = lsi([*test, "--model.init_args.init_from", str(ckpt), "--trainer.default_root_dir", str(finetune / "before")])
    before = collect_test_metrics(cli)
    simulated = collect_test_metrics(lsi([*test, "--model.init_args.init_from", str(ckpt),
                                          "--data.init_args.with_readings", "false",
                                          "--trainer.default_root_dir", str(finetune / "simulated")]))
    splits = {name: len(ds) for name, ds in cli.datamodule.datasets.items()}
    dev = cli.trainer.strategy.root_device
    device = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU ({platform.machine()})"
    seconds["before"] = time.time() - t

    t = _step(3, f"fine-tune D_theta on the measured readings -> {finetune}", t0)
    if args.refit or not (finetune / "lsi.ckpt").is_file():
        lsi(["fit", "-c", str(FINETUNE_CONFIG), *model_args, *store, "--model.init_args.init_from", str(ckpt),
             "--trainer.default_root_dir", str(finetune), *args.lsi_arg, *args.fit_arg])
    else:
        print(f"{finetune / 'lsi.ckpt'} exists: fine-tuning skipped (--refit to redo it)")
    tuned = finetuned_checkpoint(finetune, args.checkpoint)
    seconds["finetune"] = time.time() - t

    t = _step(4, f"lsi test of the fine-tuned encoder ({tuned.name})", t0)
    after = collect_test_metrics(lsi([*test, "--ckpt_path", str(tuned),
                                      "--trainer.default_root_dir", str(finetune / "after")]))
    seconds["after"] = time.time() - t
    seconds["total"] = time.time() - t0

    fit_report = json.loads((finetune / "metrics.json").read_text()) if (finetune / "metrics.json").is_file() else {}
    meta = torch.load(ckpt, map_location="cpu", weights_only=True).get("lsi", {})
    results = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": device,
        "run": str(args.run), "capture": str(args.capture), "ratio": meta.get("ratio", model.get("ratio")),
        "d": meta.get("d"), "scenes": sum(splits.values()), "splits": splits, "finetune_steps": fit_report.get("steps"),
        "checkpoint": str(tuned), "metrics": {"simulated": simulated, "before": before, "after": after},
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "results_json": str(finetune / "e2e_results.json"), "model": model,
    }
    (finetune / "e2e_results.json").write_text(json.dumps(results, indent=2, sort_keys=True, default=str))
    if not args.no_doc:
        args.doc.write_text(replace_section(args.doc.read_text(), SECTION, render_section(results), missing="error"))
        print(f"wrote the results into {args.doc}")
    for key, label in ROWS:
        m = results["metrics"][key]
        print(f"{label:45s} identity match {_fmt(m.get('id_match'), 100, 1, '%'):>7s}  PSNR {_fmt(m.get('psnr'))} dB"
              f"  L_lat {_fmt(m.get('lat'), digits=4)}")
    print(f"total time {seconds['total']:.0f} s")
    return results


if __name__ == "__main__":
    try:
        main()
    except (E2EError, MarkdownSectionError) as exc:
        print(f"hardware_e2e: error: {exc}", file=sys.stderr)
        sys.exit(1)
