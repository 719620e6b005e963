"""``python -m lsi.experiments.pretrain``: train (and evaluate) the embedded world; ``make pretrain-embedded``."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, fields
from pathlib import Path

from lsi.experiments.pretrain.evaluate import evaluate_embedded_world
from lsi.experiments.pretrain.recipe import RecipeConfig, run_recipe
from lsi.world.embedded import WEIGHTS_DIR


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m lsi.experiments.pretrain", description=__doc__)
    p.add_argument("--stages", default="identity,generator,encoder,joint",
                   help="comma-separated subset of identity,generator,encoder,joint (in that order)")
    p.add_argument("--out", type=Path, default=WEIGHTS_DIR, help="where to write the .pt weights")
    p.add_argument("--evaluate", action="store_true", help="measure quality afterwards (docs/embedded-world.md)")
    for f in fields(RecipeConfig):
        p.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default)
    args = p.parse_args(argv)
    cfg = RecipeConfig(**{f.name: getattr(args, f.name) for f in fields(RecipeConfig)})
    stages = [s for s in args.stages.split(",") if s]
    t0 = time.time()
    times = run_recipe(cfg, stages, args.out)
    total = time.time() - t0
    # stages may be (re)run separately: keep the times of the other stages from the previous log
    log_path = args.out / "recipe_log.json"
    previous = json.loads(log_path.read_text()).get("stage_seconds", {}) if log_path.is_file() else {}
    stage_seconds = {**previous, **times}
    log = {"config": asdict(cfg), "stage_seconds": stage_seconds, "total_seconds": sum(stage_seconds.values()),
           "last_invocation_seconds": total}
    log_path.write_text(json.dumps(log, indent=2))
    print(json.dumps(log, indent=2))
    if args.evaluate:
        evaluate_embedded_world(weights_dir=args.out, report=Path("docs/embedded-world.md"), recipe_log=log)


if __name__ == "__main__":
    main()
