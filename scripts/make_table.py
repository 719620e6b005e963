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

    python scripts/make_table.py [--ratios 128 256 ...] [--steps 400] [--head-steps 300] [--root runs/table]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from datamodules.faces import ATTRIBUTE_NAMES

from lsi.main import main as lsi

RATIOS = (128, 256, 512, 1024, 2048, 4096, 8192, 16384)
# Budget, measured on this 2-core CPU machine (OMP_WAIT_POLICY=PASSIVE): 58 min for all 8 ratios with 400 LSI
# and 150 head steps (LSI fit 3-6 min a ratio, 1:128 slowest; heads ~1 min; `lsi test` with Dlib ~1 min; each
# run renders its own scenes at ~150/s); the heads at 300 steps take ~5.8 min a ratio including their test.
# So the defaults (400 + 300) take about 75 min from scratch.
DEFAULT_STEPS = 400
DEFAULT_HEAD_STEPS = 300
LSI_CONFIG = Path("configs/train_embedded.yaml")
HEADS_CONFIG = Path("configs/heads_embedded.yaml")

#: The paper's Table 1 (simulated, CelebA-HQ test set): ratio -> (VGGFace %, DLib %, FID, Acc. %, F1 %, NME).
PAPER_TABLE1: dict[int, tuple] = {
    128: ("91.97%", "92.74%", "27.38", "89.07%", "70.00%", "1.48"),
    256: ("90.98%", "92.68%", "26.62", "89.15%", "70.94%", "1.43"),
    512: ("89.61%", "91.67%", "28.66", "89.20%", "70.25%", "1.48"),
    1024: ("81.12%", "87.44%", "28.79", "88.74%", "69.18%", "1.52"),
    2048: ("54.72%", "77.77%", "35.89", "88.06%", "65.81%", "1.67"),
    4096: ("27.22%", "59.21%", "46.18", "86.44%", "60.63%", "2.01"),
    8192: ("N/A", "N/A", "N/A", "83.81%", "53.77%", "2.18"),
    16384: ("N/A", "N/A", "N/A", "81.75%", "46.36%", "2.47"),
}

SECTION_TITLE = "## Table 1: embedded benchmark (`make table`)"
DISCUSSION_TITLE = "### Discussion"
DISCUSSION_PLACEHOLDER = "<!-- DISCUSSION PLACEHOLDER: to be written by the lead after `make table` -->"
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
        from lsi.facetools.dlib_models import load_dlib_models

        load_dlib_models(with_recognizer=True)
    except (ImportError, FileNotFoundError, ValueError) as err:
        if requested == "yes":
            raise
        return False, f"dlib unavailable: {str(err).splitlines()[0]}"
    return True, ""


def vggface_status(path: str | None) -> tuple[str | None, str]:
    """(weights path or None, reason when missing)."""
    try:
        from lsi.facetools.identity import resolve_vggface_weights

        return str(resolve_vggface_weights(path)), ""
    except (ImportError, FileNotFoundError, ValueError):
        if path is not None:
            raise
        return None, "VGG-Face weights not installed"


# -------------------------------------------------------------------------------------------------------------
# one ratio

def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    tmp.replace(path)


def scaled_schedule(config_paths: list[Path], steps: int) -> list[str]:
    """Keep the recipe's energy-loss start at the same fraction of training when ``steps`` differs from its
    ``trainer.max_steps`` (e.g. 1500 of 2500 -> 240 of 400)."""
    import yaml

    max_steps, start = None, None
    for path in config_paths:
        cfg = yaml.safe_load(Path(path).read_text()) or {}
        max_steps = (cfg.get("trainer") or {}).get("max_steps", max_steps)
        start = (((cfg.get("model") or {}).get("init_args") or {}).get("energy_start_step", start))
    if not max_steps or start is None or max_steps == steps:
        return []
    return ["--model.init_args.energy_start_step", str(round(start * steps / max_steps))]


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
             "--trainer.max_steps", str(args.steps), "--trainer.val_check_interval", str(args.steps),
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
    _write_json(done, record)
    return record


# -------------------------------------------------------------------------------------------------------------
# figures

def build_datamodule(config_paths: list[Path]):
    """The ``data`` section of the (merged) YAML configs, instantiated (``class_path`` + ``init_args``)."""
    import importlib

    import yaml

    data: dict = {}
    for path in config_paths:
        section = (yaml.safe_load(Path(path).read_text()) or {}).get("data")
        if not section:
            continue
        if "class_path" in section and section["class_path"] != data.get("class_path"):
            data = {"class_path": section["class_path"], "init_args": dict(section.get("init_args") or {})}
        else:
            data.setdefault("init_args", {}).update(section.get("init_args") or {})
    if "class_path" not in data:
        raise ValueError(f"no data.class_path in {[str(p) for p in config_paths]}")
    module, name = data["class_path"].rsplit(".", 1)
    return getattr(importlib.import_module(module), name)(**data["init_args"])


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
    from lsi import figures
    from lsi.heads import load_heads, load_lsi

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
    paths = {"fig4": figures.save_reconstruction_figure(image, rec, figs / FIGURES["fig4"], inversions=inversion)}
    if probs:
        keep = pick(list(probs), (256, 2048), 2)
        paths["fig6"] = figures.save_attribute_bars({r: probs[r] for r in keep}, batch["attributes"][:n],
                                                    ATTRIBUTE_NAMES, figs / FIGURES["fig6"])
    if lmk:
        keep = pick(list(lmk), (512, 2048, 8192), 3)
        paths["fig7"] = figures.save_landmark_overlays(image, {r: lmk[r] for r in keep}, batch["landmarks"][:n],
                                                       figs / FIGURES["fig7"])
    if seg:
        keep = pick(list(seg), (512, 2048), 2)
        paths["fig8"] = figures.save_segmentation_overlays(image, {r: seg[r] for r in keep},
                                                           batch["segmentation"][:n], figs / FIGURES["fig8"])
    return paths


def _paper_value(cell: str) -> float | None:
    """``"91.97%" -> 91.97``, ``"1.48" -> 1.48``, ``"N/A" -> None``."""
    return None if cell == "N/A" else float(cell.rstrip("%"))


def baseline_metrics(dm, train_batches: int = 16) -> dict[str, float]:
    """The constant predictors of :mod:`lsi.baselines` (fitted on ``train_batches`` training batches, scored on
    the whole test split of the heads' datamodule ``dm``, set up for fit and test): the floor each head must beat."""
    from itertools import islice

    from lsi.baselines import constant_predictor_metrics

    return constant_predictor_metrics(islice(dm.train_dataloader(), train_batches), dm.test_dataloader())


def metric_panels(records: list[dict], floor: dict[str, float] | None = None
                  ) -> dict[str, dict[str, dict[int, float | None]]]:
    """Table 1 as curves for :func:`lsi.figures.save_metric_curves`: ours (embedded world), the paper's and the
    constant predictors' ``floor`` (:func:`baseline_metrics`)."""
    def ours(key: str, scale: float = 1.0) -> dict[int, float | None]:
        return {r["ratio"]: (None if (v := _num(r["metrics"], key)) is None else v * scale) for r in records}

    def paper(column: int) -> dict[int, float | None]:
        return {ratio: _paper_value(row[column]) for ratio, row in PAPER_TABLE1.items()}

    identity = {"ours, embedded net": ours("test/reconstruction/id_match", 100)}
    if any(v is not None for v in ours("test/reconstruction/dlib_id_match").values()):
        identity["ours, Dlib"] = ours("test/reconstruction/dlib_id_match", 100)
    identity |= {"paper, VGGFace": paper(0), "paper, DLib": paper(1)}
    panels = {
        "identity match (%)": identity,
        "attribute accuracy (%)": {"ours": ours("test/attr_acc", 100), "paper": paper(3)},
        "segmentation F1 (%)": {"ours": ours("test/seg_f1", 100), "paper": paper(4)},
        "NME (x100)": {"ours": ours("test/nme"), "paper": paper(5)},
        "PSNR of G(L) (dB)": {"ours": ours("test/reconstruction/psnr")},
    }
    for key, panel, scale in (("attr_acc", "attribute accuracy (%)", 100), ("seg_f1", "segmentation F1 (%)", 100),
                              ("nme", "NME (x100)", 1)):
        if floor and key in floor:
            panels[panel]["constant predictor"] = {r["ratio"]: floor[key] * scale for r in records}
    return panels


# -------------------------------------------------------------------------------------------------------------
# docs/results.md

def _num(metrics: dict, key: str) -> float | None:
    v = metrics.get(key)
    return None if v is None or v != v else float(v)


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def _fmt(v: float | None, digits: int = 2) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def face_cell(metrics: dict, name: str, reason: str) -> str:
    """Dlib / VGG-Face column: the match rate (with the no-face share), or ``n/a (reason)``."""
    rate = _num(metrics, f"test/reconstruction/{name}_id_match")
    if rate is None:
        return f"n/a ({reason or 'not evaluated'})"
    no_face = _num(metrics, f"test/reconstruction/{name}_no_face") or 0.0
    if no_face >= 0.999:
        return "n/a (no face detected)"
    return f"{100 * rate:.1f}%" + (f" (no face: {100 * no_face:.0f}%)" if no_face > 0 else "")


def goals(records: list[dict], floor: dict[str, float] | None = None) -> list[str]:
    """The issue's targets on the embedded benchmark, checked against the measured numbers (and, where given,
    against the constant predictors' ``floor``)."""
    by = {r["ratio"]: r["metrics"] for r in records}
    lines = []
    low = [r for r in (128, 256, 512) if r in by]
    if low:
        ids = {r: _num(by[r], "test/reconstruction/id_match") for r in low}
        ok = all(v is not None and v >= 0.90 for v in ids.values())
        lines.append("- identity match >= 90% down to 1:512: " + ", ".join(f"1:{r} {_pct(v)}" for r, v in ids.items())
                     + (" -> **met**" if ok else " -> **not met**"))
    if 16384 in by:
        acc = _num(by[16384], "test/attr_acc")
        ok = acc is not None and acc >= 0.82
        vs = f" (constant predictor: {_pct(floor['attr_acc'])})" if floor and "attr_acc" in floor else ""
        lines.append(f"- attribute accuracy >= 82% at 1:16384: {_pct(acc)}{vs} -> **{'met' if ok else 'not met'}**")
    for key, name, worse in (("test/seg_f1", "F1", -1), ("test/nme", "NME", 1)):
        seq = [(r["ratio"], _num(r["metrics"], key)) for r in records]
        seq = [(r, v) for r, v in seq if v is not None]
        if len(seq) >= 2:
            steps = [(b[1] - a[1]) * worse for a, b in zip(seq, seq[1:])]
            scale = 100 if key == "test/seg_f1" else 1
            unit = " points" if key == "test/seg_f1" else ""
            lines.append(f"- {name} across ratios: " + ", ".join(f"{v * scale:.2f}" for _, v in seq)
                         + f"; largest worsening between neighbouring ratios {max(steps) * scale:.2f}{unit}, "
                         f"{sum(s < 0 for s in steps)} of {len(steps)} steps improve instead"
                         + (f" (constant predictor: {floor[key.split('/')[-1]] * scale:.2f})"
                            if floor and key.split("/")[-1] in floor else ""))
    return lines


def render_section(records: list[dict], settings: dict, reasons: dict[str, str], figures: dict[str, Path],
                   results_path: Path, wall_seconds: float, discussion: str | None,
                   floor: dict[str, float] | None = None) -> str:
    compute_min = sum(r.get("seconds", 0) for r in records) / 60
    lsi_min = sum(r.get("lsi_train_seconds") or 0 for r in records) / 60
    n_test = next((int(v) for r in records if (v := _num(r["metrics"], "test/reconstruction/num_images"))), None)
    lines = [
        SECTION_TITLE, "",
        f"Embedded default world, produced by `python scripts/make_table.py` on "
        f"{datetime.now(timezone.utc).date().isoformat()} (torch {torch.__version__}, {torch.get_num_threads()} "
        f"CPU threads): per ratio {settings['steps']} LSI training steps (`{settings['lsi_config']}`), "
        f"{settings['head_steps']} steps for the three heads together (`{settings['heads_config']}`), then `lsi test` "
        f"on the test split ({n_test if n_test is not None else '?'} scenes of identities unseen in training). "
        f"The LSI fits took {lsi_min:.0f} min in all (their `train_seconds`); the last pass that trained or tested "
        f"each ratio took {compute_min:.0f} min together (this invocation: {wall_seconds / 60:.0f} min, finished "
        "ratios resumed).",
        "",
        "Columns: *Identity (embedded)* = share of (scene, reconstruction) pairs that the shipped embedded identity "
        "network accepts at its 1% false-accept threshold; *Dlib* / *VGG-Face* = the paper's face-recognition "
        "criteria (cosine distance <= 0.07 / 0.68) on the scene and the reconstruction upsampled to 256 px, images "
        "without a detected face counting as failures; *FID (embedded)* = Fréchet distance of the identity "
        "network's features (not Inception, so not comparable in scale with the paper's FID); *PSNR* against "
        "the scene at G's 64 px; *Acc.* = mean attribute accuracy of P_A over the world's "
        f"{len(ATTRIBUTE_NAMES)} attributes; *F1* = mean per-class F1 of P_S over the classes present; *NME* = Eq. 4 with the "
        "bounding-box diagonal, x100.",
        "",
        "### Ours (embedded world, simulated measurements)",
        "",
        "| Comp. ratio | d | Identity (embedded) ↑ | Dlib ↑ | VGG-Face ↑ | FID (embedded) ↓ | PSNR (dB) ↑ | Acc. ↑ "
        "| F1 ↑ | NME ↓ |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        m = r["metrics"]
        lines.append(
            f"| 1:{r['ratio']} | {r['measurements']} | {_pct(_num(m, 'test/reconstruction/id_match'))} | "
            f"{face_cell(m, 'dlib', reasons['dlib'])} | {face_cell(m, 'vggface', reasons['vggface'])} | "
            f"{_fmt(_num(m, 'test/reconstruction/fid'))} | {_fmt(_num(m, 'test/reconstruction/psnr'))} | "
            f"{_pct(_num(m, 'test/attr_acc'))} | {_pct(_num(m, 'test/seg_f1'))} | {_fmt(_num(m, 'test/nme'))} |")
    if floor:
        lines.append(f"| constant predictor | 0 | — | — | — | — | — | {_pct(floor.get('attr_acc'))} | "
                     f"{_pct(floor.get('seg_f1'))} | {_fmt(floor.get('nme'))} |")
        lines += ["", "*Constant predictor*: no measurement at all — each attribute's training majority, the "
                  "per-pixel most frequent training class, the mean training landmark shape (`lsi.baselines`). "
                  "A head scores above this row only as far as it reads the scene from L."]
    lines += [
        "", "### The paper's Table 1 (CelebA-HQ, simulated; StyleGAN-XL at 256 px)", "",
        "| Comp. ratio | VGGFace ↑ | DLib ↑ | FID ↓ | Acc. ↑ | F1 ↑ | NME ↓ |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [f"| 1:{ratio} | " + " | ".join(row) + " |" for ratio, row in PAPER_TABLE1.items()]
    lines += ["", "### Targets of issue 4", "", *goals(records, floor), "", "### Figures", ""]
    captions = {"fig4": "Fig. 4 — reconstructions across ratios (original, G(E(I)), then 1:N)",
                "fig6": "Fig. 6 — sigmoid of P_A's logits at two ratios, overlaid, against ground truth (outlines)",
                "fig7": "Fig. 7 — P_L landmarks (red) against ground truth (green)",
                "fig8": "Fig. 8 — P_S segmentation at two ratios and the ground truth",
                "curves": "Table 1 as curves: ours (solid) and the paper's (dashed); the identity criteria differ, "
                          "see the column notes"}
    for key, path in figures.items():
        rel = Path(os.path.relpath(Path(path).resolve(), results_path.parent.resolve()))
        lines += [f"![{key}]({rel.as_posix()})", "", f"*{captions[key]}.*", ""]
    lines += [DISCUSSION_TITLE, ""]
    lines += [discussion.strip(), ""] if discussion else [
        DISCUSSION_PLACEHOLDER, "",
        "_Discussion pending: where and why these numbers differ from the paper's (embedded world vs CelebA-HQ, "
        "CPU training budget, embedded identity net vs VGGFace/Dlib, FID features), written after the run._", ""]
    return "\n".join(lines)


def _section_span(text: str) -> tuple[int, int] | None:
    start = text.find(SECTION_TITLE)
    if start < 0:
        return None
    nxt = text.find("\n## ", start + len(SECTION_TITLE))
    return start, (nxt + 1 if nxt >= 0 else len(text))


def existing_discussion(text: str) -> str | None:
    """The Discussion already written under Table 1 (None if absent or still the placeholder)."""
    span = _section_span(text)
    if span is None:
        return None
    section = text[span[0]:span[1]]
    at = section.find(DISCUSSION_TITLE)
    if at < 0:
        return None
    body = section[at + len(DISCUSSION_TITLE):].strip()
    return None if not body or DISCUSSION_PLACEHOLDER in body else body


def write_results(path: Path, section_for: Callable[[str | None], str]) -> None:
    """Replace (or insert, first after the title) the Table 1 section of ``path``; other sections are kept."""
    text = path.read_text() if path.is_file() else "# Results\n"
    section = section_for(existing_discussion(text)).rstrip() + "\n"
    span = _section_span(text)
    if span is not None:
        text = text[:span[0]] + section + ("\n" if span[1] < len(text) else "") + text[span[1]:]
    else:
        first = text.find("\n## ")
        text = (text.rstrip() + "\n\n" + section) if first < 0 else (
            text[:first + 1].rstrip() + "\n\n" + section + "\n" + text[first + 1:])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# -------------------------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ratios", type=int, nargs="+", default=list(RATIOS), help="compression ratios (65536/d)")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="LSI training steps per ratio")
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
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    bad = [r for r in args.ratios if r not in [2 ** k for k in range(16)]]
    if bad:
        p.error(f"ratios {bad} are not powers of two dividing 65536 (use 128 ... 16384)")
    return args


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
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
            tqdm.write(f"1:{ratio} ({state}): identity {_pct(_num(m, 'test/reconstruction/id_match'))}, "
                       f"acc {_pct(_num(m, 'test/attr_acc'))}, F1 {_pct(_num(m, 'test/seg_f1'))}, "
                       f"NME {_fmt(_num(m, 'test/nme'))}")
    dm = build_datamodule([args.heads_config, *args.heads_extra])  # one for both: the test scenes render once
    dm.setup("fit")
    dm.setup("test")
    floor = baseline_metrics(dm)
    figures = {} if args.no_figures else make_figures(records, args, dm)
    if not args.no_figures:
        from lsi.figures import save_metric_curves

        figures["curves"] = save_metric_curves(metric_panels(records, floor), args.figures / FIGURES["curves"])
    wall = time.time() - t0
    clean = [{k: v for k, v in r.items() if k != "skipped"} for r in records]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    _write_json(args.json, {"settings": settings, "ratios": clean, "constant_predictor": floor})
    reasons = {"dlib": dlib_reason, "vggface": vgg_reason}
    write_results(args.results, lambda discussion: render_section(clean, settings, reasons, figures, args.results,
                                                                  wall, discussion, floor))
    resumed = sum(bool(r.get("skipped")) for r in records)
    print(f"make table: {len(records)} ratios ({resumed} resumed) in {wall / 60:.1f} min "
          f"-> {args.results}, {args.json}" + (f", {args.figures}/" if figures else ""))
    return records


if __name__ == "__main__":
    main()
