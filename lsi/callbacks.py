"""Callbacks that turn a training run into the artefacts of ``runs/ratio<N>/``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import lightning as L
import torch


class FinalCheckpoint(L.Callback):
    """Save ``<default_root_dir>/<checkpoint_name>`` when ``fit`` ends (also under ``fast_dev_run``)."""

    def __init__(self, checkpoint_name: str = "final.ckpt") -> None:
        self.checkpoint_name = checkpoint_name

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        trainer.save_checkpoint(Path(trainer.default_root_dir) / self.checkpoint_name)  # collective call


class RunArtifacts(FinalCheckpoint):
    """At the end of ``fit`` write, into ``trainer.default_root_dir``:

    ``lsi.ckpt`` (masks, D_theta, w_avg, config), ``masks.npy`` + ``masks.json``, ``masks.png`` (grid like the
    paper's Fig. 3) and ``metrics.json`` (last validation metrics, steps, wall time). The reconstruction grid
    ``reconstructions.png`` is written by the module at every validation.
    """

    def __init__(self, checkpoint_name: str = "lsi.ckpt", max_masks_in_figure: int = 64) -> None:
        super().__init__(checkpoint_name)
        self.max_masks_in_figure = max_masks_in_figure
        self._t0 = 0.0

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._t0 = time.time()

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_fit_end(trainer, pl_module)
        out = Path(trainer.default_root_dir)
        if not trainer.is_global_zero:
            return
        from lsi.figures_masks import save_mask_grid

        optical = pl_module.optical
        meta = optical.export_masks(out / "masks.npy", source=f"lsi fit, {trainer.global_step} steps")
        save_mask_grid(optical.mask_codes(), out / "masks.png", max_masks=self.max_masks_in_figure,
                       title=f"learned masks, ratio 1:{optical.ratio} ({optical.d} masks, {optical.bits} bit)")
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()
                   if isinstance(v, torch.Tensor) and v.numel() == 1}
        report = {
            "ratio": optical.ratio, "measurements": optical.num_readings, "bits": optical.bits,
            "steps": trainer.global_step, "train_seconds": round(time.time() - self._t0, 1),
            "masks_sha256": meta.sha256, "metrics": metrics,
        }
        (out / "metrics.json").write_text(json.dumps(report, indent=2, sort_keys=True))
