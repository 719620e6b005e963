"""The LightningCLI behind ``lsi fit|validate|test|predict`` (imported only when a stage runs: Lightning and the
data modules take seconds to import, which ``lsi infer`` / ``lsi plan`` never pay)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

__all__ = ["LSICLI", "main"]


class LSICLI(LightningCLI):
    """LightningCLI whose default logging is TensorBoard + CSV under ``<trainer.default_root_dir>/logs/<subcommand>``
    (one folder per subcommand, so ``lsi test`` beside a training run never overwrites its curves)."""

    def _parse_ckpt_path(self) -> None:
        """Keep the configuration the user gave: ``--ckpt_path`` restores weights, it does not rewrite the config
        (a mismatched checkpoint is then refused by the module with a message naming both settings)."""

    def instantiate_trainer(self, **kwargs: Any) -> L.Trainer:
        cfg = self.config_init[self.subcommand]["trainer"] if self.subcommand else self.config_init["trainer"]
        if cfg.get("logger") in (None, True):
            root = str(cfg.get("default_root_dir") or Path.cwd())
            version = self.subcommand or "run"
            cfg["logger"] = [TensorBoardLogger(root, name="logs", version=version),
                             CSVLogger(root, name="logs", version=version)]
        return super().instantiate_trainer(**kwargs)


def main(args: list[str] | None = None) -> LSICLI:
    """Run the CLI; ``args`` (without the program name) lets tests call it in-process."""
    return LSICLI(
        model_class=L.LightningModule,
        datamodule_class=L.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        seed_everything_default=0,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"default_env": False},
        args=args,
        auto_configure_optimizers=False,
    )
