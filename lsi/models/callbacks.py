"""Callbacks that turn a training run into the artefacts of ``runs/ratio<N>/``.

* :class:`FinalCheckpoint` — a checkpoint with a fixed name at the end of ``fit``.
* :class:`TestMetricsWriter` — ``metrics.json`` section ``"test"`` after ``lsi test`` (other sections kept).
* :class:`RunArtifacts` — ``lsi.ckpt``, masks, mask figure and ``metrics.json`` after ``fit``; also writes the
  test section after ``lsi test``.
* :class:`ReconstructionEvaluation` — ``test/reconstruction/*`` (:class:`lsi.eval.reconstruction.ReconstructionMetrics`)
  during ``lsi test`` of any module that is a ``LatentImagingModule`` or holds one as ``.lsi``.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Timer
from lightning.pytorch.utilities import rank_zero_warn

from lsi.eval.reconstruction import ReconstructionMetrics
from lsi.models.imaging import LatentImagingModule
from lsi.report.mask_figures import save_mask_grid
from lsi.report.records import write_json

#: Prefix of the reconstruction metrics logged during ``lsi test``.
RECONSTRUCTION_PREFIX = "test/reconstruction/"


class FinalCheckpoint(L.Callback):
    """Save ``<default_root_dir>/<checkpoint_name>`` when ``fit`` ends (also under ``fast_dev_run``)."""

    def __init__(self, checkpoint_name: str = "final.ckpt") -> None:
        self.checkpoint_name = checkpoint_name

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # full state (optimizer, loops) so `--ckpt_path` can resume; the file still loads with weights_only=True
        trainer.save_checkpoint(Path(trainer.default_root_dir) / self.checkpoint_name, weights_only=False)


def _finite_or_none(obj):
    """NaN/inf -> None (strict JSON has no NaN), recursively through dicts and lists."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_none(v) for v in obj]
    return obj


def merge_json(path: str | Path, updates: dict) -> dict:
    """Update the top-level keys of the JSON object in ``path`` with ``updates`` (other keys kept); returns it.

    Non-finite numbers are written as ``null``; the file is replaced atomically."""
    path = Path(path)
    data: dict = {}
    if path.is_file():
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON ({err}); fix or delete it so metrics can be merged "
                             "into it") from err
        if not isinstance(data, dict):
            raise ValueError(f"{path} holds a JSON {type(data).__name__}, expected an object; delete it")
    data.update(_finite_or_none(updates))
    write_json(path, data, allow_nan=False)
    return data


def scalar_metrics(metrics: dict, prefix: str = "") -> dict[str, float]:
    """The single-number entries of ``trainer.callback_metrics`` whose name starts with ``prefix``."""
    return {k: float(v) for k, v in sorted(metrics.items())
            if k.startswith(prefix) and isinstance(v, torch.Tensor) and v.numel() == 1}


class TestMetricsWriter(L.Callback):
    """After ``lsi test``, write section ``section`` of ``<default_root_dir>/<filename>`` (see :meth:`output_dir`).

    The section holds every logged ``test/*`` scalar, the checkpoint tested, the module class, the LSI encoder
    fingerprint (heads), the wall time and ``notes`` (why optional metrics are missing), gathered from the
    module's and the callbacks' ``test_notes``. Other top-level keys of the file (e.g. the ``fit`` report
    of :class:`RunArtifacts`) are kept.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, filename: str = "metrics.json", section: str = "test") -> None:
        self.filename, self.section = filename, section
        self._t_test = 0.0

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._t_test = time.time()

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        notes: dict[str, str] = dict(getattr(pl_module, "test_notes", {}) or {})
        for cb in trainer.callbacks:
            notes.update(getattr(cb, "test_notes", {}) or {})
        report = {
            "metrics": scalar_metrics(trainer.callback_metrics, "test/"),
            "checkpoint": str(trainer.ckpt_path) if trainer.ckpt_path else None,
            "model": f"{type(pl_module).__module__}.{type(pl_module).__qualname__}",
            "test_seconds": round(time.time() - self._t_test, 1),
            "notes": notes,
        }
        for attr in ("lsi_checkpoint", "fingerprint"):
            if isinstance(getattr(pl_module, attr, None), str):
                report[attr] = getattr(pl_module, attr)
        if hasattr(pl_module, "optical"):
            report["ratio"] = pl_module.optical.ratio
        merge_json(self.output_dir(trainer) / self.filename, {self.section: report})

    @staticmethod
    def output_dir(trainer: L.Trainer) -> Path:
        """``trainer.default_root_dir``; when that was left at the working directory, the tested checkpoint's
        folder (``lsi test --ckpt_path runs/ratio512/lsi.ckpt`` -> ``runs/ratio512/metrics.json``)."""
        root = Path(trainer.default_root_dir)
        ckpt = Path(trainer.ckpt_path) if trainer.ckpt_path else None
        if root.resolve() == Path.cwd().resolve() and ckpt is not None and ckpt.is_file():
            return ckpt.parent
        return root


class RunArtifacts(FinalCheckpoint, TestMetricsWriter):
    """At the end of ``fit`` write, into ``trainer.default_root_dir``:

    ``lsi.ckpt`` (masks, D_theta, w_avg, config), ``masks.npy`` + ``masks.json``, ``masks.png`` (grid like the
    paper's Fig. 3) and ``metrics.json`` (last validation metrics, steps, wall time). The reconstruction grid
    ``reconstructions.png`` is written by the module at every validation. After ``lsi test`` it adds the
    ``"test"`` section of ``metrics.json`` (:class:`TestMetricsWriter`).
    """

    def __init__(self, checkpoint_name: str = "lsi.ckpt", max_masks_in_figure: int = 64) -> None:
        FinalCheckpoint.__init__(self, checkpoint_name)
        TestMetricsWriter.__init__(self)
        self.max_masks_in_figure = max_masks_in_figure
        self._t0 = 0.0

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._t0 = time.time()

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_fit_end(trainer, pl_module)
        out = Path(trainer.default_root_dir)
        if not trainer.is_global_zero:
            return
        optical = pl_module.optical
        meta = optical.export_masks(out / "masks.npy", source=f"lsi fit, {trainer.global_step} steps")
        save_mask_grid(optical.mask_codes(), out / "masks.png", max_masks=self.max_masks_in_figure,
                       title=f"learned masks, ratio 1:{optical.ratio} ({optical.d} masks, {optical.bits} bit)")
        metrics = scalar_metrics(trainer.callback_metrics)
        planned = trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else None
        cut_short = planned is not None and trainer.global_step < planned
        report = {
            "ratio": optical.ratio, "measurements": optical.num_readings, "bits": optical.bits,
            "steps": trainer.global_step, "planned_steps": planned, "cut_short": cut_short,
            "train_seconds": round(time.time() - self._t0, 1), "masks_sha256": meta.sha256, "metrics": metrics,
        }
        training = getattr(pl_module, "training_report", None)
        if training:
            report["training"] = training
        if cut_short:
            timers = [cb for cb in trainer.callbacks if isinstance(cb, Timer)]
            timed_out = any((cb.time_remaining() or 0) <= 0 for cb in timers)
            reason = "the time guard (trainer.max_time)" if timed_out else "an interruption or early stop"
            report["cut_short_reason"] = reason
            rank_zero_warn(f"training was cut short by {reason}: {trainer.global_step} of {planned} steps done; "
                           f"the results in {out} are those of an unfinished run")
        # a new training makes any earlier "test" section stale: start the file afresh
        write_json(out / "metrics.json", report)


def find_lsi(module: L.LightningModule) -> LatentImagingModule:
    """The ``LatentImagingModule`` of ``module``: itself, or its ``.lsi`` (downstream heads)."""
    if isinstance(module, LatentImagingModule):
        return module
    lsi = getattr(module, "lsi", None)
    if isinstance(lsi, LatentImagingModule):
        return lsi
    raise ValueError(f"{type(module).__name__} is neither a LatentImagingModule nor holds one as `.lsi`; "
                     "ReconstructionEvaluation only evaluates LSI encoders and their heads")


class ReconstructionEvaluation(L.Callback):
    """``lsi test`` callback: logs ``test/reconstruction/<metric>`` (see :class:`ReconstructionMetrics`)."""

    def __init__(self, fid: bool = True, eval_dlib: bool = False, vggface_weights: str | None = None,
                 inception_weights: str | None = None) -> None:
        self.fid, self.eval_dlib, self.vggface_weights = fid, eval_dlib, vggface_weights
        self.inception_weights = inception_weights
        self.metrics: ReconstructionMetrics | None = None
        self.test_notes: dict[str, str] = {}

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        find_lsi(pl_module)  # fail early on modules without an LSI encoder
        # heads evaluate their encoder themselves (model.init_args.evaluate_reconstruction): do not do it twice
        own = bool(getattr(pl_module, "evaluate_reconstruction", False))
        self.metrics = None if own else ReconstructionMetrics(
            self.fid, self.eval_dlib, self.vggface_weights,
            inception_weights=self.inception_weights).to(pl_module.device)

    def on_test_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                          batch_idx: int, dataloader_idx: int = 0) -> None:
        if self.metrics is not None:
            lsi = find_lsi(pl_module)
            with torch.no_grad():
                self.metrics.update(lsi.world, batch["image"], lsi.latent_of(batch), lsi.threshold,
                                    batch.get("identity"))

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.metrics is not None:
            log_reconstruction(pl_module, self.metrics)
            self.test_notes = self.metrics.notes()


def log_reconstruction(module: L.LightningModule, metrics: ReconstructionMetrics) -> dict[str, float]:
    """Log ``metrics.compute()`` as ``test/reconstruction/<name>`` on ``module`` and return the values."""
    values = metrics.compute()
    for name, value in values.items():
        module.log(RECONSTRUCTION_PREFIX + name, value, sync_dist=False)
    return values
