"""Fixtures shared by the unit and system tests.

* ``fitted_run`` - one tiny ``lsi fit`` (``tests/system/configs/lsi_tiny.yaml``: ratio 4096, 16 masks, two steps)
  per test session: its folder holds ``lsi.ckpt``, ``masks.npy`` + ``masks.json``, ``masks.png`` and
  ``metrics.json``. Tests may add files or ``metrics.json`` sections next to it but must not rewrite the checkpoint
  or the masks.
* ``lsi_ckpt`` - that run's ``lsi.ckpt``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lsi.cli.main import main

CONFIGS = Path(__file__).parent / "system" / "configs"


@pytest.fixture(scope="session")
def fitted_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lsi_fit")
    main(["fit", "-c", str(CONFIGS / "lsi_tiny.yaml"), "--trainer.default_root_dir", str(root)])
    return root


@pytest.fixture(scope="session")
def lsi_ckpt(fitted_run) -> Path:
    return fitted_run / "lsi.ckpt"
