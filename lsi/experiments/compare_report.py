"""The outputs of ``make compare`` (:mod:`lsi.experiments.compare`): ``docs/table2*.json``, the Table 2 section of
``docs/results.md`` (every ratio with a JSON, next to the paper's table; a Discussion already written under it is
kept) and the Fig. 9-style figure per ratio.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path

import torch

from lsi.report.figures import save_method_rows
from lsi.report.markdown import kept_subsection, write_section

SECTION_TITLE = "## Table 2: LSI against image-reconstruction baselines (`make compare`)"
DISCUSSION_TITLE = "### Discussion"
REFERENCES = ("scene", "g_of_e", "w_avg", "gray_scene", "thumb16_gray", "thumb16_rgb")
ORDER = ("lsi", "lsi_ridge", "csgm", "unfolding_8bit", "unfolding_1bit", "fsi_dl", "fsi", "hadamard", "dgi")
#: the methods whose outputs are images reconstructed from the readings (the issue's goal compares LSI with these)
IMAGE_BASELINES = ("csgm", "unfolding_8bit", "unfolding_1bit", "fsi_dl", "fsi", "hadamard", "dgi")
GOAL_MARGIN = 0.40
LABELS = {
    "lsi": "LSI (learned masks + D_θ)", "lsi_ridge": "LSI's masks + ridge read-out to E(I)",
    "csgm": "CSGM (W+ of G fitted to the readings)", "unfolding_8bit": "Unfolding net, 8-bit sensing (SAUNet†)",
    "unfolding_1bit": "Unfolding net, 1-bit sensing (SAUNet)", "fsi_dl": "FSI-DL (FSI + CNN)",
    "fsi": "Fourier SPI (4-step, dithered)", "hadamard": "Hadamard SPI (fast WHT)", "dgi": "Differential ghost imaging",
    "scene": "the scene itself", "g_of_e": "G(E(I)) (ceiling)", "w_avg": "G(w_avg) (floor: no measurement)",
    "gray_scene": "gray scene (perfect monochrome camera)",
    "thumb16_gray": "16x16 gray thumbnail (256 numbers)", "thumb16_rgb": "16x16 colour thumbnail (768 numbers)",
}
#: the paper's Table 2 (CelebA-HQ, 1:256): VGGFace, Dlib, FID
PAPER_TABLE2 = {"fsi_dl": ("3.30%", "13.15%", "123.5"), "unfolding_1bit": ("17.84%", "50.12%", "75.53"),
                "unfolding_8bit": ("39.47%", "65.97%", "65.79"), "lsi": ("90.98%", "92.68%", "26.62")}
COLUMNS = ("id_match", "identification", "psnr", "ssim", "psnr_256", "ssim_256", "fid", "lpips", "seconds_per_image",
           "id_distance")


def _clean(metrics: dict) -> dict:
    return {k: metrics[k] for k in COLUMNS if k in metrics}


def goal(methods: dict) -> dict | None:
    """LSI's identity-match margin over the best image-reconstruction baseline (None without LSI or baselines)."""
    rivals = {k: v["id_match"] for k, v in methods.items() if k in IMAGE_BASELINES}
    if "lsi" not in methods or not rivals:
        return None
    best = max(rivals, key=rivals.get)
    margin = methods["lsi"]["id_match"] - rivals[best]
    return {"lsi_id_match": methods["lsi"]["id_match"], "best_image_baseline": best, "best_id_match": rivals[best],
            "margin": margin, "required": GOAL_MARGIN, "met": margin >= GOAL_MARGIN,
            "margins": {k: methods["lsi"]["id_match"] - v for k, v in rivals.items()}}


def table_record(args, records: dict, references: dict, wall_seconds: float) -> dict:
    methods = {}
    for name in ORDER:
        if name in records:
            r = records[name]
            methods[name] = {**_clean(r["metrics"]), "readings_use": r.get("budget", {}).get("readings_use", ""),
                             "budget": r.get("budget", {}), "fit": r.get("fit", {})}
    common = next(iter(references.values()))["settings"]
    return {"ratio": args.ratio, "measurements": 65536 // args.ratio, "methods": methods,
            "references": {k: _clean(v["metrics"]) for k, v in references.items()},
            "goal": goal(methods), "paper_table2": {k: dict(zip(("vggface", "dlib", "fid"), v))
                                                    for k, v in PAPER_TABLE2.items()},
            "settings": {"config": str(getattr(args, "config", "")), **{k: common[k] for k in (
                "world", "test_scenes", "train", "train_scenes") if k in common}},
            "wall_seconds_this_run": round(wall_seconds), "generated": datetime.now(timezone.utc).isoformat(
                timespec="seconds")}


def save_figure(root: Path, ratio: int, figures: Path) -> Path | None:
    rows = {}
    for name, label in (("ref_scene", "scene"), ("ref_g_of_e", "G(E(I))"), *[(n, n) for n in ORDER],
                        ("ref_w_avg", "G(w_avg)")):
        path = root / name / "faces.pt"
        if path.is_file():
            rows[label] = torch.load(path, map_location="cpu", weights_only=True)
    if len(rows) < 2:
        return None
    return save_method_rows(rows, figures / f"fig9_comparison_ratio{ratio}.png",
                            title=f"1:{ratio} ({65536 // ratio} readings): the same test faces, one row per method")


def _pct(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f}%"


def _num(v, fmt: str = ".2f") -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def _row(label: str, m: dict, lpips: bool) -> str:
    cells = [label, _pct(m.get("id_match")), _pct(m.get("identification")), _num(m.get("psnr")),
             _num(m.get("ssim"), ".3f"), _num(m.get("psnr_256")), _num(m.get("ssim_256"), ".3f"), _num(m.get("fid"))]
    if lpips:
        cells.append(_num(m.get("lpips"), ".3f"))
    cells.append(_num(m.get("seconds_per_image"), ".4f"))
    return "| " + " | ".join(cells) + " |"


def _budget_text(name: str, entry: dict) -> str:
    b, fit = entry.get("budget", {}), entry.get("fit", {})
    parts = [b.get("training", "")]
    if "train_budget" in b:
        tb = b["train_budget"]
        parts.append(f"budget {tb['steps']} steps x {tb['batch_size']} scenes, Adam lr {tb['lr']:g} (cosine to "
                     f"{tb['lr'] / 10:g})")
    if fit.get("steps"):
        parts.append(f"ran {fit['steps']} steps in {fit['seconds'] / 60:.1f} min (stopped by {fit['stopped_by']})")
    if name == "csgm":
        parts.append(f"{b.get('steps')} Adam steps per scene, lr {b.get('lr')}, from w_avg")
    if name == "dgi" and "cell" in fit:
        sel = ", ".join(f"{k}: {v:.2f} dB" for k, v in sorted(fit["selection_psnr"].items(), key=lambda kv: int(kv[0])))
        parts.append(f"cell {fit['cell']} chosen on {fit['selection_scenes']} training scenes ({sel})")
    if name == "lsi_ridge" and "lambda" in fit:
        parts.append(f"lambda {fit['lambda']:g} x n on held-out identities, {fit['train_rows']} training rows")
    return "; ".join(p for p in parts if p)


def render_ratio(table: dict) -> str:
    methods, refs = table["methods"], table["references"]
    lpips = any("lpips" in m for m in [*methods.values(), *refs.values()])
    head = ("| method | identity match ↑ | identification ↑ | PSNR 64 ↑ | SSIM 64 ↑ | PSNR 256 ↑ | SSIM 256 ↑ | "
            "FID (embedded) ↓ |" + (" LPIPS 64 ↓ |" if lpips else "") + " s / image |")
    lines = [f"### 1:{table['ratio']} ({table['measurements']} readings per scene, every method)", "", head,
             "|" + "---|" * (head.count("|") - 1)]
    lines += [_row(LABELS[n], m, lpips) for n, m in methods.items()]
    lines += [_row(f"*{LABELS[n]}*", m, lpips) for n, m in refs.items()]
    g = table.get("goal")
    lines.append("")
    if g:
        verdict = "**met**" if g["met"] else "**not met**"
        lines.append(f"Goal (LSI >= 40 points above every image-reconstruction baseline on identity match): LSI "
                     f"{_pct(g['lsi_id_match'])}, best baseline {LABELS[g['best_image_baseline']]} "
                     f"{_pct(g['best_id_match'])}, margin {100 * g['margin']:.1f} points -> {verdict}. Margins: "
                     + ", ".join(f"{k} {100 * v:+.1f}" for k, v in g["margins"].items()) + ".")
    else:
        lines.append("Goal: not evaluated (LSI or the image baselines missing from this run).")
    lines += ["", "How each method spends the readings and what it was given:", "",
              "| method | readings | training / iterations |", "|---|---|---|"]
    lines += [f"| {n} | {m.get('readings_use', '')} | {_budget_text(n, m)} |" for n, m in methods.items()]
    return "\n".join(lines)


def render_section(tables: list[dict], figures: dict[int, Path], results: Path, discussion: str) -> str:
    first = tables[0]
    settings = first["settings"]
    parts = [
        "Produced by `make compare RATIO=N` (`python -m lsi.experiments.compare --ratio N`), embedded world, "
        f"simulated noiseless readings, test split of `{settings.get('config')}` ({settings.get('test_scenes')} "
        "scenes of identities unseen in training), training split for what learns. Every method reads the same "
        "number d = 65536 / N of numbers per scene through the one measurement rule (`lsi.physics.operator.measure`, "
        "means over pixels and RGB); methods that need pairs or phase steps spend them within d.",
        "",
        "Columns: *identity match* = share of (scene, reconstruction) pairs the embedded identity net accepts at its "
        "1% false-accept threshold, both at 64 px (the net's resolution); *identification* = top-1 of the "
        "reconstructions against a gallery of the first original of each test identity (probes: the other scenes); "
        "PSNR / SSIM against the scene at 64 px (G's resolution) and at 256 px (64-px outputs nearest-upsampled); "
        "*FID (embedded)* = Fréchet distance of the identity net's features (as `lsi test`; not Inception); "
        "*s / image* = wall time of measuring and reconstructing one scene on this CPU.",
        "",
        "Colour: one photodiode integrates R, G and B, so every method reads only the gray image. Hadamard, FSI and "
        "DGI reconstruct gray (scored as gray replicated to RGB); the learned nets, CSGM and the latent methods "
        "output colour they learned from the training faces. Italic rows are references on the same split: the "
        "scene itself, the inversion ceiling G(E(I)), the no-measurement floor G(w_avg), the gray scene (a perfect "
        "monochrome image) and ideal 16x16 thumbnails (area-averaged, bilinearly enlarged) in gray and in colour.",
        "",
    ]
    for table in tables:
        parts += [render_ratio(table), ""]
        if table["ratio"] in figures:
            fig = figures[table["ratio"]]
            rel = Path(fig).relative_to(results.parent) if Path(fig).is_relative_to(results.parent) else fig
            parts += [f"![fig9 1:{table['ratio']}]({rel})", "",
                      f"*Fig. 9 (ours, 1:{table['ratio']}): the same test faces at 64 px, one row per method; the "
                      "scene and G(E(I)) on top, G(w_avg) at the bottom.*", ""]
    parts += ["### The paper's Table 2 (CelebA-HQ, simulated, 1:256)", "",
              "| method | VGGFace ↑ | Dlib ↑ | FID ↓ |", "|---|---|---|---|"]
    parts += [f"| {LABELS[k]} | {v[0]} | {v[1]} | {v[2]} |" for k, v in PAPER_TABLE2.items()]
    parts += ["", "The paper's identity columns use VGG-Face and Dlib on real faces and its FID uses Inception; ours "
              "use the embedded identity network on procedural faces: compare the ranking and the margins, not the "
              "numbers."]
    if discussion:
        parts += ["", discussion.strip()]
    return "\n".join(parts)


def write_outputs(root: Path, args, records: dict, references: dict, wall_seconds: float) -> dict:
    """Write this ratio's JSON and figure, then rewrite the Table 2 section from every ratio's JSON."""
    table = table_record(args, records, references, wall_seconds)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(table, indent=2, sort_keys=False))
    fig = save_figure(root, args.ratio, args.figures)
    tables, figures = {args.ratio: table}, {}
    for path in sorted(args.json.parent.glob("table2*.json")):  # the other ratios' tables beside this one
        t = json.loads(path.read_text())
        if isinstance(t, dict) and "ratio" in t and "methods" in t and t["ratio"] != args.ratio:
            tables[t["ratio"]] = t
    for ratio in tables:
        candidate = args.figures / f"fig9_comparison_ratio{ratio}.png"
        if candidate.is_file():
            figures[ratio] = candidate
    if fig is not None:
        figures[args.ratio] = fig
    ordered = sorted(tables.values(), key=lambda t: (t["ratio"] != 256, t["ratio"]))
    discussion = kept_subsection(args.results, SECTION_TITLE, DISCUSSION_TITLE)
    write_section(args.results, SECTION_TITLE, render_section(ordered, figures, args.results, discussion))
    return table
