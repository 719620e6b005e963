"""``make compare RATIO=N``: the paper's Table 2 - LSI against image-reconstruction baselines at equal measurements.

At ratio N every method reads ``d = 65536 / N`` numbers per scene. In ``<root>/ratioN/``:

1. the test split of the LSI config's ``data`` section (the scenes ``lsi test`` scores), kept in memory;
2. for methods that still have to learn: the training split at 64 px, E(I) and the readings of their fixed patterns,
   rendered once into ``train_cache.pt`` (:class:`lsi.eval.baselines.TrainingData`);
3. every method in ``<name>/``: built (:func:`lsi.eval.baselines.build_baseline`; ``lsi`` is the checkpoint of
   ``make train RATIO=N``, trained in-process when absent), trained within its budget (``model.pt``), scored on the
   test split (:class:`lsi.eval.comparison.ComparisonMetrics`) -> ``result.json``. A method whose ``result.json``
   holds the current settings is skipped (resume); one with other settings is redone;
4. the references the same way: the scene itself, G(E(I)) (ceiling), the constant ``w_avg`` (floor), the
   gray scene (a perfect monochrome reconstruction) and 16 x 16 thumbnails, gray (256 numbers, what an ideal
   linear camera with d = 256 block-average readings would see) and colour (768 numbers; no photodiode sees them);
5. ``docs/table2.json`` (ratio 256; ``docs/table2_ratioN.json`` otherwise), the Table 2 section of
   ``docs/results.md`` (:mod:`lsi.experiments.compare_report`) and ``docs/figures/fig9_comparison_ratioN.png``.

    python -m lsi.experiments.compare --ratio 256 [--methods lsi hadamard ...] [--lpips-backbone PATH]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from tqdm import tqdm

from lsi.cli.main import main as lsi
from lsi.eval.baselines import BASELINES, Baseline, TrainBudget, TrainingData, build_baseline
from lsi.eval.comparison import ComparisonMetrics
from lsi.eval.metrics import first_of_each_identity
from lsi.experiments.compare_report import REFERENCES, write_outputs
from lsi.experiments.table1 import build_datamodule
from lsi.models.imaging import LatentImagingModule, load_lsi
from lsi.physics.operator import measure
from lsi.report.records import write_json
from lsi.world.embedded import weights_path
from lsi.world.frozen import frozen_world
from lsi.world.perceptual import LpipsLocal

METHODS = ("lsi", *BASELINES)
LSI_CONFIG = Path("configs/train_embedded.yaml")
# Budgets in steps, each about the wall clock of `make train` (~10 min) on this 2-core CPU when it is not shared
# (OMP_WAIT_POLICY=PASSIVE): FSI-DL 0.35 s a step of 32 scenes, the unfolding nets ~0.6 s a step of 16 (measured;
# 2-3x slower while other jobs share the cores, hence the 30-minute guard only against a stalled machine);
# CSGM ~20-25 ms per scene and Adam step, so its 200 steps take ~30 min for the 400 test scenes.
BUDGETS = {"fsi_dl": TrainBudget(steps=1500, batch_size=32, lr=1e-3, max_minutes=30.0),
           "unfolding": TrainBudget(steps=1000, batch_size=16, lr=1e-3, max_minutes=30.0)}
CSGM_STEPS = 200
FIGURE_FACES = 6


def _sha(t: torch.Tensor) -> str:
    return hashlib.sha256(t.detach().cpu().contiguous().numpy().tobytes()).hexdigest()[:16]


def world_key() -> str:
    """Fingerprint of the shipped frozen world (G, E, identity net files)."""
    h = hashlib.sha256()
    for part in ("generator", "encoder", "identity"):
        h.update(weights_path(part).read_bytes())
    return h.hexdigest()[:16]


def train_fingerprint(dm, configs: list[Path]) -> dict:
    """What defines the training split's content: its dataset's ``cache_fingerprint()`` (the procedural world's
    split settings and renderer hash) when it has one, else the data sections of the configs."""
    source = getattr(dm, "source", dm)
    fingerprint = getattr(getattr(source, "train_set", None), "cache_fingerprint", None)
    if fingerprint is not None:
        return fingerprint()
    return {str(p): (yaml.safe_load(Path(p).read_text()) or {}).get("data") for p in configs}


class Comparison:
    """One ratio's run: the test split, the lazily built training data, and a method's resumable record."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args, self.ratio, self.d = args, args.ratio, 65536 // args.ratio
        self.root = args.root / f"ratio{args.ratio}"
        self.world = frozen_world()
        threshold = self.world.identity_threshold
        if threshold is None:
            raise CompareError("the frozen world has no identity threshold; make compare runs on the embedded world")
        self.threshold = float(threshold)
        self.lpips = LpipsLocal(args.lpips_backbone) if args.lpips_backbone else None
        self.configs = [args.config, *args.extra_config]
        dm = build_datamodule(self.configs)  # dropped after use: a caching datamodule holds every rendered scene
        self.scenes, self.ids = self._test_split(dm)
        # what decides a result: the content of both splits, the frozen world, the ratio (not how data is loaded)
        self.common = {"ratio": self.ratio, "world": world_key(), "test_scenes": len(self.ids),
                       "test_sha": _sha(self.scenes) + _sha(self.ids), "train": train_fingerprint(dm, self.configs),
                       "train_scenes": args.train_scenes}
        self.figure_index = torch.nonzero(first_of_each_identity(self.ids)).flatten()[:FIGURE_FACES]

    # -- data ---------------------------------------------------------------------------------------
    def _test_split(self, dm) -> tuple[torch.Tensor, torch.Tensor]:
        dm.setup("test")
        scenes, ids = [], []
        for batch in tqdm(dm.test_dataloader(), desc="test scenes", leave=False, disable=not self.args.progress):
            scenes.append((batch["image"] * 255).round().to(torch.uint8))
            ids.append(torch.as_tensor(batch["identity"]))
        return torch.cat(scenes), torch.cat(ids)

    def _training_batches(self, dm) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``(scenes [B,3,S,S] in [0,1], identities [B])`` over the training split: from the shared scene cache
        when the datamodule has one (``datamodules.CachedScenesDataModule``), else from its training loader."""
        if hasattr(dm, "cache"):
            cache = dm.cache("train")
            for start in range(0, len(cache), 64):
                b = cache.batch(torch.arange(start, min(start + 64, len(cache))), ["image", "identity"])
                yield b["image"], b["identity"]
        else:
            dm.setup("fit")
            for batch in dm.train_dataloader():
                yield batch["image"], torch.as_tensor(batch["identity"])

    def training_data(self, methods: list[Baseline]) -> TrainingData:
        """The training split for ``methods`` (cached in ``train_cache.pt`` with the patterns' fingerprints)."""
        wanted = {m.name: _sha(m.patterns()) for m in methods if m.needs_readings}
        latents = any(m.needs_latents for m in methods)
        key = {k: v for k, v in self.common.items() if k not in ("test_scenes", "test_sha")}
        path = self.root / "train_cache.pt"
        if path.is_file():
            blob = torch.load(path, map_location="cpu", weights_only=True)
            if (blob["key"] == json.dumps(key, sort_keys=True) and wanted.items() <= blob["patterns"].items()
                    and (blob["latents"] is not None or not latents)):
                return TrainingData(blob["scenes64"], blob["identities"], blob["readings"], blob["latents"])
        patterns = {m.name: m.patterns() for m in methods if m.needs_readings}
        dm = build_datamodule(self.configs)
        scenes64, ids, lat, readings = [], [], [], {n: [] for n in patterns}
        limit = self.args.train_scenes or float("inf")
        seen = 0
        with torch.no_grad(), tqdm(desc="training scenes", unit="scene", leave=False,
                                   disable=not self.args.progress) as bar:
            for images, identities in self._training_batches(dm):
                x = images[: max(0, int(min(limit - seen, len(images))))]
                if not len(x):
                    break
                scenes64.append(F.interpolate(x, size=(64, 64), mode="area").half())
                ids.append(identities[: len(x)])
                for name, p in patterns.items():
                    readings[name].append(measure(p, x))
                if latents:
                    lat.append(self.world.invert(x * 2 - 1))
                seen += len(x)
                bar.update(len(x))
        del dm
        data = TrainingData(torch.cat(scenes64), torch.cat(ids), {n: torch.cat(v) for n, v in readings.items()},
                            torch.cat(lat) if latents else None)
        self.root.mkdir(parents=True, exist_ok=True)
        torch.save({"key": json.dumps(key, sort_keys=True), "patterns": {n: _sha(p) for n, p in patterns.items()},
                    "scenes64": data.scenes64, "identities": data.identities, "readings": data.readings,
                    "latents": data.latents}, path)
        return data

    # -- one method -----------------------------------------------------------------------------------
    def done(self, folder: str, settings: dict) -> dict | None:
        """The finished record of ``folder`` when it holds ``settings``; a stale folder is removed."""
        result = self.root / folder / "result.json"
        if result.is_file():
            record = json.loads(result.read_text())
            if record.get("settings") == json.loads(json.dumps(settings)):
                return record
            tqdm.write(f"{folder}: settings changed since its last run; redoing it")
            shutil.rmtree(self.root / folder)
        return None

    @torch.no_grad()
    def evaluate(self, reconstruct: Callable[[torch.Tensor], torch.Tensor], desc: str) -> tuple[dict, torch.Tensor]:
        """Score ``reconstruct`` (scenes ``[B,3,256,256]`` -> images in [0, 1]) on the test split; also returns the
        figure faces' reconstructions at 64 px."""
        metrics = ComparisonMetrics(self.world.identity, self.threshold, lpips=self.lpips)
        seconds, faces = 0.0, {}
        bs = self.args.batch_size
        for start in tqdm(range(0, len(self.ids), bs), desc=desc, leave=False, disable=not self.args.progress):
            scene = self.scenes[start:start + bs].float() / 255
            t0 = time.perf_counter()
            rec = reconstruct(scene)
            seconds += time.perf_counter() - t0
            metrics.update(scene, rec, self.ids[start:start + bs])
            for i in self.figure_index.tolist():
                if start <= i < start + bs:
                    r = rec[i - start: i - start + 1]
                    faces[i] = F.interpolate(r, size=(64, 64), mode="area") if r.shape[-1] > 64 else r
        out = metrics.compute()
        out["seconds_per_image"] = seconds / len(self.ids)
        return out, torch.cat([faces[i].expand(-1, 3, -1, -1) for i in self.figure_index.tolist()])

    def finish(self, folder: str, settings: dict, metrics: dict, faces: torch.Tensor, **extra) -> dict:
        record = {"name": folder, "settings": settings, "metrics": metrics, **extra,
                  "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        write_json(self.root / folder / "result.json", record)
        torch.save(faces, self.root / folder / "faces.pt")
        return record


def _thumbnail(scene: torch.Tensor, size: int) -> torch.Tensor:
    """The scene area-averaged to ``size`` px, bilinearly interpolated back: an ideal low-resolution camera."""
    small = F.interpolate(scene, size=(size, size), mode="area")
    return F.interpolate(small, size=scene.shape[-2:], mode="bilinear", align_corners=False).clamp(0, 1)


class CompareError(ValueError):
    """A setting of ``make compare`` cannot work (the message says how to fix it)."""


# -------------------------------------------------------------------------------------------------------------
# LSI and the methods

def lsi_checkpoint(args: argparse.Namespace) -> LatentImagingModule:
    """The LSI encoder of ``make train RATIO=N`` (trained in-process when absent and ``--train-lsi``)."""
    default = Path(f"runs/ratio{args.ratio}/lsi.ckpt")
    ckpt = args.lsi_checkpoint or default
    command = (f"lsi fit -c {args.config} " + "".join(f"-c {c} " for c in args.extra_config)
               + f"--model.init_args.ratio {args.ratio} --trainer.default_root_dir runs/ratio{args.ratio}")
    if not ckpt.is_file():
        if args.lsi_checkpoint is not None or not args.train_lsi:
            raise CompareError(f"LSI checkpoint {ckpt} not found; train it with `make train RATIO={args.ratio}` "
                               f"(i.e. `{command}`) or pass --lsi-checkpoint PATH")
        tqdm.write(f"{ckpt} not found: training LSI in-process ({command})")
        lsi(["fit", "-c", str(args.config), *[a for c in args.extra_config for a in ("-c", str(c))],
             "--model.init_args.ratio", str(args.ratio), "--trainer.default_root_dir", f"runs/ratio{args.ratio}"])
    module = load_lsi(str(ckpt))
    if module.world.spec.resolved_generator_kind != "embedded":
        raise CompareError(f"{ckpt} was trained on the {module.world.spec.resolved_generator_kind} world; make compare "
                           "scores the embedded benchmark (the baselines, the references and LSI share one G)")
    if module.optical.num_readings != 65536 // args.ratio:
        raise CompareError(f"{ckpt} reads {module.optical.num_readings} numbers per scene but ratio {args.ratio} "
                           f"means {65536 // args.ratio}; pass the checkpoint trained at 1:{args.ratio}")
    return module


def budgets(args: argparse.Namespace) -> dict[str, TrainBudget]:
    """:data:`BUDGETS` with ``--train-steps`` / ``--train-minutes`` applied."""
    return {key: dataclasses.replace(b, steps=args.train_steps or b.steps,
                                     max_minutes=args.train_minutes or b.max_minutes) for key, b in BUDGETS.items()}


def make_method(name: str, cmp: Comparison, module: LatentImagingModule | None) -> tuple[Baseline, dict]:
    """The baseline ``name`` and the settings that identify its result."""
    args, g = cmp.args, cmp.world.generator
    settings: dict = {"method": name, **cmp.common}
    if name == "csgm":
        options = {"steps": args.csgm_steps, "masks": args.csgm_masks}
        settings["options"] = options
        return build_baseline(name, cmp.ratio, generator=g, **options), settings
    if name == "lsi_ridge":
        settings["lsi"] = module.encoder_fingerprint()
        return build_baseline(name, cmp.ratio, generator=g, lsi_patterns=module.optical.patterns().detach()), \
            settings
    if name == "fsi_dl" or name.startswith("unfolding"):
        budget = budgets(args)["unfolding" if name.startswith("unfolding") else "fsi_dl"]
        settings["budget"] = budget.to_dict()
        return build_baseline(name, cmp.ratio, budget=budget), settings
    return build_baseline(name, cmp.ratio), settings


def run_baselines(cmp: Comparison, names: list[str], module: LatentImagingModule | None) -> dict[str, dict]:
    records, pending = {}, []
    for name in names:
        method, settings = make_method(name, cmp, module)
        record = cmp.done(name, settings)
        if record is not None:
            records[name] = record
        else:
            pending.append((method, settings))
    to_fit = [m for m, _ in pending if m.trainable and not (cmp.root / m.name / "model.pt").is_file()]
    data = cmp.training_data(to_fit) if to_fit else None
    for method, settings in pending:
        folder = cmp.root / method.name
        folder.mkdir(parents=True, exist_ok=True)
        fit = {}
        if method.trainable:
            model = folder / "model.pt"
            if model.is_file():
                blob = torch.load(model, map_location="cpu", weights_only=True)
                method.load_state_dict(blob["state"])
                fit = blob["fit"]
            else:
                t0 = time.time()
                fit = {**method.fit(data, folder, progress=cmp.args.progress), "wall_seconds": round(time.time() - t0)}
                torch.save({"state": method.state_dict(), "fit": fit}, model)
        method.eval()
        metrics, faces = cmp.evaluate(method, method.name)
        records[method.name] = cmp.finish(method.name, settings, metrics, faces, budget=method.budget(), fit=fit)
        tqdm.write(f"{method.name}: identity {metrics['id_match']:.1%}, identification {metrics['identification']:.1%}"
                   f", PSNR {metrics['psnr']:.2f} dB, {metrics['seconds_per_image']:.3f} s/image")
    return records


def run_lsi(cmp: Comparison, module: LatentImagingModule) -> dict:
    settings = {"method": "lsi", **cmp.common, "lsi": module.encoder_fingerprint()}
    record = cmp.done("lsi", settings)
    if record is not None:
        return record
    g = cmp.world.generator

    def reconstruct(scene: torch.Tensor) -> torch.Tensor:
        return g.synthesis(module.latent_of({"image": scene})).clamp(-1, 1) * 0.5 + 0.5

    metrics, faces = cmp.evaluate(reconstruct, "lsi")
    o = module.optical
    budget = {"readings": o.num_readings, "readings_use": f"{o.d} learned {o.bits}-bit masks"
              + (" + complements" if o.complementary else ""), "noise": repr(o.noise),
              "training": f"make train RATIO={cmp.ratio} "
                          f"({cmp.args.lsi_checkpoint or f'runs/ratio{cmp.ratio}/lsi.ckpt'})"}
    return cmp.finish("lsi", settings, metrics, faces, budget=budget, fit={})


def run_references(cmp: Comparison) -> dict[str, dict]:
    w = cmp.world
    g = w.generator
    recs: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        "scene": lambda s: s,
        "g_of_e": lambda s: g.synthesis(w.invert(s * 2 - 1)).clamp(-1, 1) * 0.5 + 0.5,
        "w_avg": lambda s: (g.synthesis(g.w_avg.expand(len(s), g.num_ws, -1)).clamp(-1, 1) * 0.5 + 0.5),
        "gray_scene": lambda s: s.mean(1, keepdim=True),
        "thumb16_gray": lambda s: _thumbnail(s.mean(1, keepdim=True), 16),
        "thumb16_rgb": lambda s: _thumbnail(s, 16),
    }
    out = {}
    for name in REFERENCES:
        folder = f"ref_{name}"
        settings = {"method": folder, **cmp.common}
        out[name] = cmp.done(folder, settings) or cmp.finish(folder, settings, *cmp.evaluate(recs[name], folder))
    return out


# -------------------------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ratio", type=int, default=256, help="compression ratio: d = 65536 / ratio readings")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS, metavar="METHOD",
                   help=f"methods to run (default: all of {', '.join(METHODS)})")
    p.add_argument("--root", type=Path, default=Path("runs/compare"), help="where the runs go (resumable)")
    p.add_argument("--config", type=Path, default=LSI_CONFIG, help="LSI config: its data section gives the splits")
    p.add_argument("--extra-config", type=Path, action="append", default=[], metavar="YAML",
                   help="extra config merged after --config (repeatable), e.g. smaller splits for a dry run")
    p.add_argument("--lsi-checkpoint", type=Path, default=None,
                   help="LSI checkpoint (default runs/ratioN/lsi.ckpt, trained in-process when absent)")
    p.add_argument("--no-train-lsi", dest="train_lsi", action="store_false",
                   help="fail with the command to run instead of training a missing LSI checkpoint")
    p.add_argument("--train-scenes", type=int, default=0, help="use only this many training scenes (0 = all)")
    p.add_argument("--train-steps", type=int, default=0, help="override the learned baselines' step budgets")
    p.add_argument("--train-minutes", type=float, default=0.0, help="override their wall-clock guard (minutes)")
    p.add_argument("--csgm-steps", type=int, default=CSGM_STEPS, help="Adam steps per scene of CSGM")
    p.add_argument("--csgm-masks", choices=("hadamard", "random"), default="hadamard")
    p.add_argument("--lpips-backbone", type=Path, default=None,
                   help="local torchvision alexnet-owt-7be5be79.pth: adds the LPIPS column (nothing is downloaded)")
    p.add_argument("--batch-size", type=int, default=50, help="test scenes per evaluation batch")
    p.add_argument("--results", type=Path, default=Path("docs/results.md"))
    p.add_argument("--json", type=Path, default=None, help="default docs/table2.json (1:256), else "
                   "docs/table2_ratioN.json")
    p.add_argument("--figures", type=Path, default=Path("docs/figures"))
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    args = p.parse_args(argv)
    if args.ratio < 1 or 65536 % args.ratio:
        p.error(f"--ratio {args.ratio} must divide 65536 (d = 65536 / ratio readings)")
    for name in ("train_scenes", "train_steps", "csgm_steps", "batch_size"):
        if getattr(args, name) < 0 or (name in ("csgm_steps", "batch_size") and getattr(args, name) < 1):
            p.error(f"--{name.replace('_', '-')} must be positive")
    if args.lpips_backbone is not None and not args.lpips_backbone.is_file():
        p.error(f"--lpips-backbone {args.lpips_backbone} does not exist (a local torchvision AlexNet checkpoint)")
    args.json = args.json or Path("docs/table2.json" if args.ratio == 256 else f"docs/table2_ratio{args.ratio}.json")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    t0 = time.time()
    try:
        module = lsi_checkpoint(args) if {"lsi", "lsi_ridge"} & set(args.methods) else None
    except (CompareError, FileNotFoundError) as err:
        raise SystemExit(f"make compare: {err}") from None
    cmp = Comparison(args)
    references = run_references(cmp)
    records = run_baselines(cmp, [m for m in args.methods if m != "lsi"], module)
    if "lsi" in args.methods:
        records["lsi"] = run_lsi(cmp, module)
    table = write_outputs(cmp.root, args, records, references, wall_seconds=time.time() - t0)
    print(f"make compare: 1:{args.ratio}, {len(records)} methods in {(time.time() - t0) / 60:.1f} min -> "
          f"{args.json}, {args.results}")
    return table


if __name__ == "__main__":
    main()
