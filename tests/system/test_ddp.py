"""Two-process DDP (gloo, CPU) through the real CLI: ``lsi fit ... --trainer.strategy ddp --trainer.devices 2``.

Lightning re-launches ``python -m lsi`` for rank 1, so these run the command in a subprocess (as a user would).
Each rank is its own process with its own frozen world (never a DDP parameter); files written on first use - the
paper split file, the scene cache and its derived E(I) - are written once, or identically, and read by both ranks.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from datamodules.splits import read_split
from tests.fixtures.make_paper_world import write_paper_world

REPO = Path(__file__).resolve().parents[2]
CONFIGS = Path(__file__).parent / "configs"

pytestmark = pytest.mark.slow  # two CPU processes on 2 shared cores: ~1-2 min each


def _lsi(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "LSI_DEBUG": "1"}
    return subprocess.run([sys.executable, "-m", "lsi", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=900)


def test_ddp_bf16_fit_on_the_tiny_paper_world(tmp_path):
    world = write_paper_world(tmp_path)
    run = _lsi(["fit", "-c", str(REPO / "configs/experiment/paper_styleganxl_ffhq256.yaml"),
                "-c", str(CONFIGS / "paper_tiny_overrides.yaml"), "--trainer.strategy", "ddp",
                "--trainer.devices", "2", "--trainer.precision", "bf16-mixed"], world["root"])
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-4000:]
    assert "Starting with 2 processes" in log and "distributed_backend=gloo" in log and "bfloat16" in log
    out = world["root"] / "runs" / "paper"
    assert (out / "lsi.ckpt").is_file() and (out / "masks.npy").is_file()
    split = read_split(world["root"] / "data" / "lsi_paper_split.json")  # both ranks wrote it: still one valid file
    assert len(split["celeba_hq"]["test"]) == 4
    assert not list((world["root"] / "data").glob("*.tmp*"))


def test_ddp_staged_recipe_writes_the_scene_cache_once(tmp_path):
    cache = tmp_path / "cache"
    run = _lsi(["fit", "-c", str(CONFIGS / "lsi_staged_tiny.yaml"), "--trainer.devices", "2",
                # the staged recipe freezes the masks after the joint phase: DDP must allow parameters without grads
                "--trainer.strategy", "ddp_find_unused_parameters_true", "--data.init_args.cache_dir", str(cache),
                "--trainer.default_root_dir", str(tmp_path / "run")], tmp_path)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-4000:]
    assert "Starting with 2 processes" in log
    folders = [p for p in cache.iterdir() if p.is_dir()]
    assert len(folders) == 1 and (folders[0] / "manifest.json").is_file()  # one cache, no half-written copy
    assert not list(cache.glob("*.partial-*"))
    derived = list((folders[0] / "derived").glob("inversion-latent-*.npy"))
    assert len(derived) == 1 and not list((folders[0] / "derived").glob("*.partial-*"))
    assert (tmp_path / "run" / "lsi.ckpt").is_file()
