"""Does mask learning matter? Learned vs fixed 2-D Hadamard vs fixed random binary masks, same recipe and budget.

Every variant trains with the staged recipe of ``configs/train_embedded.yaml`` for the same total number of steps:
learned masks spend ``joint_steps`` of them learning the masks with D_theta and the rest on the read-out; fixed
masks spend all of them on the read-out (their joint phase would only train a D_theta that the readout phase
replaces). ``lsi test`` then measures each on the test split, with the closed-form ridge read-out of the same
readings beside it. Results: ``docs/results.md`` (section "Mask learning") and ``docs/bench_masks.json``.

    python -m lsi.experiments.mask_bench [--ratios 512 4096] [--root runs/bench_masks] [lsi options]  (resumable)
"""

from __future__ import annotations

import argparse
import json
import math
import re
import time
from pathlib import Path

from lsi.cli.main import main as lsi
from lsi.experiments.table1 import merged_config
from lsi.report.markdown import kept_subsection, write_section

SECTION_TITLE = "## Mask learning (`make bench-masks`)"
CONFIG = Path("configs/train_embedded.yaml")

#: name -> (extra CLI arguments, masks learned?)
VARIANTS: dict[str, tuple[list[str], bool]] = {
    "learned (init 0.5 +- 0.05, Adam)": (["--model.init_args.mask_init", "uniform"], True),
    "learned (init 2-D Hadamard, Adam)": (["--model.init_args.mask_init", "hadamard"], True),
    # Adam's steps are ~lr per step: at 1e-3 a 0/1 start cannot reach the 0.5 threshold within the joint phase
    # (measured: 0 of 8.4 M mask pixels flipped at 1:512), so learning from Hadamard needs a larger mask lr
    "learned (init 2-D Hadamard, Adam 1e-2)": (["--model.init_args.mask_init", "hadamard",
                                                 "--model.init_args.lr_masks", "1.0e-2"], True),
    "learned (init 0.5 +- 0.05, Lion 1e-3)": (["--model.init_args.mask_init", "uniform",
                                                "--model.init_args.mask_optimizer", "lion"], True),
    "2-D Hadamard (fixed)": (["--model.init_args.mask_init", "hadamard", "--model.init_args.freeze_masks", "true"],
                             False),
    "random binary (fixed)": (["--model.init_args.mask_init", "random_binary",
                               "--model.init_args.freeze_masks", "true"], False),
}


def margin95(p: float, n: int) -> float:
    """Half-width of the 95% normal-approximation interval of a rate ``p`` measured on ``n`` pairs."""
    return 1.96 * math.sqrt(max(p * (1 - p), 1e-12) / max(n, 1))


def run_variant(name: str, extra: list[str], learned: bool, ratio: int, root: Path, config: Path = CONFIG,
                *more: str) -> dict:
    out = root / f"ratio{ratio}" / re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    done = out / "done.json"
    if done.is_file():
        return json.loads(done.read_text())
    schedule = merged_config([config])["model"]["schedule"]
    total = sum(int(schedule.get(k, 0)) for k in ("joint_steps", "readout_steps", "image_steps"))
    phases = [] if learned else ["--model.init_args.schedule.joint_steps", "0",
                                 "--model.init_args.schedule.readout_steps",
                                 str(total - int(schedule.get("image_steps", 0)))]
    common = ["-c", str(config), "--model.init_args.ratio", str(ratio), "--trainer.default_root_dir", str(out),
              "--trainer.enable_progress_bar", "false", *more, *extra, *phases]
    t0 = time.time()
    lsi(["fit", *common])
    train_s = time.time() - t0
    cli = lsi(["test", *common, "--ckpt_path", str(out / "lsi.ckpt")])
    metrics = {k: float(v) for k, v in cli.trainer.callback_metrics.items() if k.startswith("test/")}
    row = {"variant": name, "ratio": ratio, "learned": learned, "steps": total, "train_seconds": round(train_s, 1),
           **metrics}
    out.mkdir(parents=True, exist_ok=True)
    done.write_text(json.dumps(row, indent=2))
    return row


def write_results(rows: list[dict], path: Path, n_test: int = 400) -> None:
    """Rewrite the "Mask learning" section of ``path`` (appended when new); other sections are kept."""
    steps = rows[0]["steps"] if rows else 0
    lines = [
        f"Same staged recipe and budget for every variant ({steps} steps: learned masks use the joint phase of "
        "`configs/train_embedded.yaml` then the read-out; fixed masks spend every step on the read-out), embedded "
        "world, CPU, test split (identities unseen in training). *Identity*: pair match of the embedded identity "
        "net at its 1% FAR threshold, ± the 95% interval of a rate on "
        f"{n_test} pairs; *identification*: top-1 against a gallery of one original per person; *ridge*: the "
        "closed-form linear read-out of the same readings. Produced by `make bench-masks` "
        "(`python -m lsi.experiments.mask_bench`).",
        "",
        "| ratio | masks | identity | identification | ridge identity | L_lat | PSNR (dB) | train time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        p = r.get("test/id_match", float("nan"))
        ridge = r.get("test/ridge/id_match")
        lines.append(
            f"| 1:{r['ratio']} | {r['variant']} | {100 * p:.1f}% ± {100 * margin95(p, n_test):.1f} | "
            f"{100 * r.get('test/identification', float('nan')):.1f}% | "
            f"{'n/a' if ridge is None else f'{100 * ridge:.1f}%'} | {r.get('test/lat', float('nan')):.4f} | "
            f"{r.get('test/psnr', float('nan')):.2f} | {r['train_seconds'] / 60:.1f} min |")
    discussion = kept_subsection(path, SECTION_TITLE)  # written by hand under the numbers: kept on a rerun
    write_section(path, SECTION_TITLE, "\n".join(lines + (["", discussion] if discussion else [])), missing="append")


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ratios", type=int, nargs="+", default=[512, 4096])
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    p.add_argument("--root", type=Path, default=Path("runs/bench_masks"))
    p.add_argument("--results", type=Path, default=Path("docs/results.md"))
    p.add_argument("--json", type=Path, default=Path("docs/bench_masks.json"))
    p.add_argument("--config", type=Path, default=CONFIG, help="the LSI config (its schedule: each variant's budget)")
    args, extra = p.parse_known_args(argv)  # other options go to `lsi fit` / `lsi test` (e.g. --data.init_args...)
    rows = [run_variant(name, *VARIANTS[name], ratio, args.root, args.config, *extra)
            for ratio in args.ratios for name in args.variants]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=2))
    write_results(rows, args.results)
    print(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()
