"""``lsi``: the LightningCLI entry point (fit, validate, test, predict) for every LSI module, plus tools.

``lsi fit|validate|test|predict ...`` run the LightningCLI (:mod:`lsi.cli.stages`); the tools of :data:`TOOLS`
(``lsi convert-generator``, ``lsi export``, ``lsi infer``, ``lsi plan``) run without importing Lightning, so they
start in a fraction of a second. A bad input (a wrong ratio, a missing or mismatched checkpoint, a corrupt file)
ends with a one-line error and exit status 2, not a traceback; set ``LSI_DEBUG=1`` to see the traceback.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any


def main(args: list[str] | None = None) -> Any:
    """Run the LightningCLI; ``args`` (without the program name) lets tests call it in-process."""
    from lsi.cli.stages import main as run_stages  # heavy (Lightning): only when a stage runs

    return run_stages(args)


def __getattr__(name: str) -> Any:
    if name == "LSICLI":  # the LightningCLI class, imported on first use (see main)
        from lsi.cli.stages import LSICLI  # heavy (Lightning): only when asked for

        return LSICLI
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: ``lsi <tool> ...`` subcommands that are not LightningCLI stages: name -> module with ``main(argv) -> int``.
TOOLS = {"convert-generator": "lsi.generator.convert", "export": "lsi.deploy.export", "infer": "lsi.runtime.infer",
         "plan": "lsi.runtime.plan"}


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


def _our_packages() -> tuple[str, ...]:
    """Folders of our own packages: an error raised from code in them is one we raised on purpose (located from
    this file, so that nothing heavy is imported to find them)."""
    root = Path(__file__).resolve().parents[2]
    return tuple(str(root / p) + os.sep for p in ("lsi", "datamodules", "hardware"))


def _user_error_types() -> tuple[type, ...]:
    # the scene cache's error without importing the data modules: loaded whenever one of its errors was raised
    cache = sys.modules.get("datamodules.scene_cache")
    return (ValueError, FileNotFoundError, PermissionError) + ((cache.SceneCacheError,) if cache else ())


def _user_error(err: BaseException) -> BaseException | None:
    """The error our own code raised on purpose for the user (a bad input), found along ``err``'s chain of causes
    (LightningCLI's argument checking wraps ours); None for anything else (a bug keeps its traceback)."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, _user_error_types()):
            tb = err.__traceback__
            while tb is not None and tb.tb_next is not None:
                tb = tb.tb_next
            origin = str(Path(tb.tb_frame.f_code.co_filename).resolve()) if tb is not None else ""
            if origin.startswith(_our_packages()):
                return err
        err = err.__cause__ or err.__context__
    return None
