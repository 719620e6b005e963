"""The Table-1 section of ``docs/results.md`` for ``make table`` (:mod:`lsi.experiments.table1`).

Renders the measured table next to the paper's, the constant-predictor floor row, the issue's targets and the
figures, and keeps a Discussion already written under it; :func:`metric_panels` gives the same numbers as curves
for :func:`lsi.report.figures.save_metric_curves`. The section is rewritten with :mod:`lsi.report.markdown`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import torch

from lsi.labels import EMBEDDED_ATTRIBUTE_NAMES
from lsi.report.markdown import section_text, write_section

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


def _paper_value(cell: str) -> float | None:
    """``"91.97%" -> 91.97``, ``"1.48" -> 1.48``, ``"N/A" -> None``."""
    return None if cell == "N/A" else float(cell.rstrip("%"))


def metric_panels(records: list[dict], floor: dict[str, float] | None = None
                  ) -> dict[str, dict[str, dict[int, float | None]]]:
    """Table 1 as curves for :func:`lsi.report.figures.save_metric_curves`: ours (embedded world), the paper's and the
    constant predictors' ``floor`` (:func:`baseline_metrics`)."""
    def ours(key: str, scale: float = 1.0) -> dict[int, float | None]:
        return {r["ratio"]: (None if (v := number(r["metrics"], key)) is None else v * scale) for r in records}

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

def number(metrics: dict, key: str) -> float | None:
    v = metrics.get(key)
    return None if v is None or v != v else float(v)


def percent(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def fixed(v: float | None, digits: int = 2) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def face_cell(metrics: dict, name: str, reason: str) -> str:
    """Dlib / VGG-Face column: the match rate (with the no-face share), or ``n/a (reason)``."""
    rate = number(metrics, f"test/reconstruction/{name}_id_match")
    if rate is None:
        return f"n/a ({reason or 'not evaluated'})"
    no_face = number(metrics, f"test/reconstruction/{name}_no_face") or 0.0
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
        ids = {r: number(by[r], "test/reconstruction/id_match") for r in low}
        ok = all(v is not None and v >= 0.90 for v in ids.values())
        lines.append("- identity match >= 90% down to 1:512: "
                     + ", ".join(f"1:{r} {percent(v)}" for r, v in ids.items())
                     + (" -> **met**" if ok else " -> **not met**"))
    if 16384 in by:
        acc = number(by[16384], "test/attr_acc")
        ok = acc is not None and acc >= 0.82
        vs = f" (constant predictor: {percent(floor['attr_acc'])})" if floor and "attr_acc" in floor else ""
        lines.append(f"- attribute accuracy >= 82% at 1:16384: {percent(acc)}{vs} -> **{'met' if ok else 'not met'}**")
    for key, name, worse in (("test/seg_f1", "F1", -1), ("test/nme", "NME", 1)):
        seq = [(r["ratio"], number(r["metrics"], key)) for r in records]
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
    """Body of the Table 1 section (below :data:`SECTION_TITLE`) for the finished ``records``."""
    compute_min = sum(r.get("seconds", 0) for r in records) / 60
    lsi_min = sum(r.get("lsi_train_seconds") or 0 for r in records) / 60
    n_test = next((int(v) for r in records if (v := number(r["metrics"], "test/reconstruction/num_images"))), None)
    lines = [
        f"Embedded default world, produced by `python -m lsi.experiments.table1` on "
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
        f"{len(EMBEDDED_ATTRIBUTE_NAMES)} attributes; *F1* = mean per-class F1 of P_S over the classes present; "
        "*NME* = Eq. 4 with the bounding-box diagonal, x100.",
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
            f"| 1:{r['ratio']} | {r['measurements']} | {percent(number(m, 'test/reconstruction/id_match'))} | "
            f"{face_cell(m, 'dlib', reasons['dlib'])} | {face_cell(m, 'vggface', reasons['vggface'])} | "
            f"{fixed(number(m, 'test/reconstruction/fid'))} | {fixed(number(m, 'test/reconstruction/psnr'))} | "
            f"{percent(number(m, 'test/attr_acc'))} | {percent(number(m, 'test/seg_f1'))} | "
            f"{fixed(number(m, 'test/nme'))} |")
    if floor:
        lines.append(f"| constant predictor | 0 | — | — | — | — | — | {percent(floor.get('attr_acc'))} | "
                     f"{percent(floor.get('seg_f1'))} | {fixed(floor.get('nme'))} |")
        lines += ["", "*Constant predictor*: no measurement at all — each attribute's training majority, the "
                  "per-pixel most frequent training class, the mean training landmark shape (`lsi.eval.floors`). "
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


def existing_discussion(text: str) -> str | None:
    """The Discussion already written under Table 1 (None if absent or still the placeholder)."""
    section = section_text(text, SECTION_TITLE)
    if section is None:
        return None
    at = section.find(DISCUSSION_TITLE)
    if at < 0:
        return None
    body = section[at + len(DISCUSSION_TITLE):].strip()
    return None if not body or DISCUSSION_PLACEHOLDER in body else body


def write_results(path: Path, body_for: Callable[[str | None], str]) -> None:
    """Rewrite the Table 1 section of ``path`` (inserted first, after the title, when new); other sections are
    kept. ``body_for(existing discussion or None)`` renders the section's body."""
    text = path.read_text() if path.is_file() else ""
    write_section(path, SECTION_TITLE, body_for(existing_discussion(text)), missing="first")
