"""Does mask learning matter? Learned vs frozen random binary vs frozen Hadamard masks at one ratio.

Each variant trains the same D_theta for the same number of steps on the embedded world, then ``lsi test``
measures it on the test split. Results go to ``docs/results.md`` (section "Mask learning") and
``docs/bench_masks.json``.

    python -m lsi.experiments.mask_bench [--ratio 512] [--steps 1500]
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

from lsi.cli.main import main as lsi
from lsi.report.markdown import write_section

SECTION_TITLE = "## Mask learning (`make bench-masks`)"

VARIANTS = {
    "learned": ["--model.init_args.mask_init", "uniform"],
    "random binary (frozen)": ["--model.init_args.mask_init", "random_binary",
                               "--model.init_args.freeze_masks", "true"],
    "Hadamard (frozen)": ["--model.init_args.mask_init", "hadamard", "--model.init_args.freeze_masks", "true"],
}


def run_variant(name: str, extra: list[str], ratio: int, steps: int, root: Path) -> dict:
    out = root / re.sub(r"[^a-z]+", "_", name.lower()).strip("_")
    t0 = time.time()
    common = ["-c", "configs/train_embedded.yaml", "--model.init_args.ratio", str(ratio),
              "--trainer.max_steps", str(steps), "--trainer.val_check_interval", str(steps),
              "--trainer.default_root_dir", str(out)]
    lsi(["fit", *common, *extra])
    train_s = time.time() - t0
    cli = lsi(["test", *common, *extra, "--ckpt_path", str(out / "lsi.ckpt")])
    metrics = {k: float(v) for k, v in cli.trainer.callback_metrics.items() if k.startswith("test/")}
    return {"variant": name, "train_seconds": round(train_s, 1), **metrics}


def write_results(rows: list[dict], ratio: int, steps: int, path: Path) -> None:
    """Rewrite the "Mask learning" section of ``path`` (appended when new); other sections are kept."""
    lines = [
        f"Ratio 1:{ratio} ({65536 // ratio} binary masks), the same D_theta, {steps} steps each, embedded world, "
        "CPU. Test split (identities unseen in training). Identity match: the embedded identity net at its 1% "
        "FAR threshold on (scene, LSI reconstruction) pairs. Produced by `python -m lsi.experiments.mask_bench`.",
        "",
        "| masks | identity match | L_lat (L1 to E(I)) | PSNR (dB) | train time |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['variant']} | {r.get('test/id_match', float('nan')) * 100:.1f}% | "
                     f"{r.get('test/lat', float('nan')):.4f} | {r.get('test/psnr', float('nan')):.2f} | "
                     f"{r['train_seconds'] / 60:.1f} min |")
    write_section(path, SECTION_TITLE, "\n".join(lines), missing="append")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ratio", type=int, default=512)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--root", type=Path, default=Path("runs/bench_masks"))
    args = p.parse_args(argv)
    rows = [run_variant(n, extra, args.ratio, args.steps, args.root) for n, extra in VARIANTS.items()]
    Path("docs").mkdir(exist_ok=True)
    Path("docs/bench_masks.json").write_text(json.dumps(rows, indent=2))
    write_results(rows, args.ratio, args.steps, Path("docs/results.md"))
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
