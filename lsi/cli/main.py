"""``lsi``: the LightningCLI entry point (fit, validate, test, predict) for every LSI module, plus tools.

``lsi fit|validate|test|predict ...`` run the LightningCLI; ``lsi convert-generator in.pkl out.safetensors``
converts an NVIDIA network pickle (:mod:`lsi.generator.convert`). A bad input (a wrong ratio, a missing or
mismatched checkpoint, a corrupt file) ends with a one-line error and exit status 2, not a traceback; set
``LSI_DEBUG=1`` to see the traceback.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from datamodules.scene_cache import SceneCacheError


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


#: ``lsi <tool> ...`` subcommands that are not LightningCLI stages: name -> module with ``main(argv) -> int``.
TOOLS = {"convert-generator": "lsi.generator.convert"}


def entry(argv: list[str] | None = None) -> None:
    """Console-script entry point (``lsi``). Exit status 0 on success, 2 on a bad input (one-line message)."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in TOOLS:
        sys.exit(importlib.import_module(TOOLS[args[0]]).main(args[1:]))
    try:
        main(argv)  # None: LightningCLI reads sys.argv itself
    except (ValueError, OSError, RuntimeError) as err:
        ours = _user_error(err)
        if os.environ.get("LSI_DEBUG") == "1" or ours is None:
            raise
        print(f"lsi: error: {ours}\n(set LSI_DEBUG=1 to see where it came from)", file=sys.stderr)
        sys.exit(2)


#: folders of our own packages: an error raised from code in them is one we raised on purpose
_OUR_PACKAGES = tuple(str(Path(importlib.import_module(p).__file__).resolve().parent) + os.sep
                      for p in ("lsi", "datamodules", "hardware"))


def _user_error(err: BaseException) -> BaseException | None:
    """The error our own code raised on purpose for the user (a bad input), found along ``err``'s chain of causes
    (LightningCLI's argument checking wraps ours); None for anything else (a bug keeps its traceback)."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, (ValueError, FileNotFoundError, PermissionError, SceneCacheError)):
            tb = err.__traceback__
            while tb is not None and tb.tb_next is not None:
                tb = tb.tb_next
            origin = str(Path(tb.tb_frame.f_code.co_filename).resolve()) if tb is not None else ""
            if origin.startswith(_OUR_PACKAGES):
                return err
        err = err.__cause__ or err.__context__
    return None
