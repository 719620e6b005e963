"""The staged recipe: LSI trained from a scene cache in three phases, on a CPU budget.

Measured where the time went in the per-batch recipe (issue 9): rendering and re-reading scenes, E(I), G and the
identity net every step, ~2 steps/s, and 59% identity match after 15 minutes, where a closed-form ridge read-out
of the same readings reached 71% in 0.3 s. This recipe spends the time on learning instead:

1. **joint** (``joint_steps``): masks O and D_theta together on L_lat. Scenes come from the uint8 scene cache
   (:class:`datamodules.SceneCache`, rendered once) as cached detector images (the channel mean the photodiode
   integrates, :func:`lsi.physics.operator.detector_image`, float32), E(I) from an array computed once per
   encoder; the optical forward on them is the only per-step work on scenes. The reading normaliser standardises
   each reading with statistics refreshed every ``refresh_every`` steps from a fixed subset of
   ``normaliser_scenes`` training scenes.
2. **readout** (``readout_steps``): masks frozen; every training scene is measured once, the normaliser gets the
   exact statistics of all training readings (whitened when ``whiten_readings``), D_theta starts afresh
   (``readout_reinit``; else it keeps the joint phase's weights) with its linear path set by ridge regression
   (to E(I), or to what the style blocks leave when kept), and trains on the cached readings.
   With a detector noise model (``noise``, physics-aware training) every phase sees noisy readings: each step
   draws fresh noise on its cached noiseless readings, and the normaliser and the ridge path are fitted on one
   fixed draw. A D_theta trained on noiseless readings leans on reading directions the rig's noise drowns
   (measured on the simulated rig: 89.5% identity match on simulated readings, 57.9% on the rig's; trained with
   the rig's noise 84.2% on both, docs/hardware.md).
3. **image** (``image_steps``, default 0): L_lat plus pixel and identity losses through G on ``image_loss_batch``
   samples.

The phase is a function of ``global_step`` alone, so a run resumed from any checkpoint continues in the right
phase and rebuilds the phase's caches (they derive from the scenes and the checkpointed masks). Every cached
array derives from the scene cache and is stored beside it (:meth:`SceneCache.derived`).
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor

from lsi.eval.linear_readout import fit_ridge
from lsi.physics.operator import detector_image, measure_detector_image

if TYPE_CHECKING:  # type hints only: the module imports this one
    from lsi.models.imaging import LatentImagingModule

__all__ = ["PHASES", "StagedRecipe", "TrainingSchedule"]

PHASES = ("joint", "readout", "image")


@dataclass
class TrainingSchedule:
    """Steps of each phase (their sum must equal ``trainer.max_steps``) and the recipe's settings.

    Args:
        joint_steps / readout_steps / image_steps: steps of the three phases (see the module docstring).
        normaliser_scenes: size of the fixed training subset the normaliser is refreshed from while masks learn.
        refresh_every: refresh period (steps) of the normaliser during the joint phase.
        ridge_lambda: ridge penalty of the linear path's closed-form fits (per sample, on normalised readings).
        image_lr_factor: learning-rate factor of D_theta during the image phase.
        readout_reinit: start the readout phase from a freshly initialised D_theta (its linear path set by ridge on
            the final readings) instead of the joint phase's: the joint D_theta was trained on moving masks and
            standardised (not whitened) readings; see docs/training.md for the measurement.
        chunk: scenes per chunk when measuring or encoding the whole cache.
    """

    joint_steps: int = 600
    readout_steps: int = 1400
    image_steps: int = 0
    normaliser_scenes: int = 1024
    refresh_every: int = 50
    ridge_lambda: float = 3e-5
    image_lr_factor: float = 0.1
    readout_reinit: bool = True
    chunk: int = 512

    def __post_init__(self) -> None:
        for name in ("joint_steps", "readout_steps", "image_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"schedule.{name} must be >= 0, got {getattr(self, name)}")
        if self.total < 1:
            raise ValueError("the schedule has no steps: give joint_steps, readout_steps or image_steps > 0")
        if self.refresh_every < 1 or self.normaliser_scenes < 2 or self.chunk < 1:
            raise ValueError("schedule.refresh_every and chunk must be >= 1, normaliser_scenes >= 2")

    @property
    def total(self) -> int:
        return self.joint_steps + self.readout_steps + self.image_steps

    def phase_at(self, step: int) -> str:
        """The phase that step ``step`` (0-based, = ``global_step`` before it runs) belongs to."""
        if step < self.joint_steps:
            return "joint"
        if step < self.joint_steps + self.readout_steps:
            return "readout"
        return "image"

    def phase_start(self, phase: str) -> int:
        return {"joint": 0, "readout": self.joint_steps, "image": self.joint_steps + self.readout_steps}[phase]

    def phase_length(self, phase: str) -> int:
        return {"joint": self.joint_steps, "readout": self.readout_steps, "image": self.image_steps}[phase]

    def lr_factor(self, group: str, step: int) -> float:
        """Learning-rate factor of parameter group ``group`` (``encoder`` | ``masks``) at ``step``: cosine decay
        to 0 within the joint and readout phases (restarting at 1 for the readout), ``image_lr_factor`` in the
        image phase; the masks learn only in the joint phase."""
        phase = self.phase_at(step)
        if group == "masks" and phase != "joint":
            return 0.0
        if phase == "image":
            return self.image_lr_factor
        t = (step - self.phase_start(phase)) / max(1, self.phase_length(phase))
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))


def _state_hash(module: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class StagedRecipe:
    """The per-run state of the staged recipe (caches only: nothing here is checkpointed, all of it is rebuilt
    from the scene cache and the module's state). ``module.staged`` holds one during ``lsi fit``."""

    def __init__(self, schedule: TrainingSchedule) -> None:
        self.schedule = schedule
        self.cache: Any = None
        self.targets: Tensor | None = None        # [N, num_ws, w_dim] E(I), absolute W+
        self.detector: Tensor | None = None       # [N, grid*grid] detector images (channel means), float32
        self.readings: Tensor | None = None       # [N, d] with the frozen masks (readout/image phases)
        self.phase: str | None = None
        self.phase_seconds: dict[str, float] = {}
        self.steps_done: dict[str, int] = {}
        self._t_phase = 0.0

    # -- start / resume ------------------------------------------------------------------------------------
    def start(self, module: LatentImagingModule, trainer: Any) -> None:
        cache = getattr(trainer.datamodule, "train_cache", None)
        if cache is None:
            raise ValueError(
                "the staged recipe (model.init_args.schedule) trains from a scene cache: use "
                "data.class_path datamodules.CachedScenesDataModule with your datamodule as its `source` "
                "(see configs/train_embedded.yaml), or drop `schedule` for the per-batch recipe")
        if trainer.max_steps != self.schedule.total:
            raise ValueError(
                f"trainer.max_steps is {trainer.max_steps} but the schedule's phases add up to {self.schedule.total} "
                f"(joint {self.schedule.joint_steps} + readout {self.schedule.readout_steps} + image "
                f"{self.schedule.image_steps}); set --trainer.max_steps {self.schedule.total} or change the phases")
        self.cache = cache
        world = module.world
        key = {"encoder": _state_hash(world.encoder),
               "w_avg": hashlib.sha256(module.w_avg.detach().cpu().numpy().tobytes()).hexdigest()[:16]}
        device = module.device

        def encode(idx: Tensor) -> Tensor:
            scene = cache.batch(idx, ["image"])["image"].to(device)
            return module.target_latent(scene).flatten(1)

        g = world.generator
        self.targets = cache.derived("inversion-latent", key, encode, chunk=self.schedule.chunk).view(
            len(cache), g.num_ws, g.w_dim)
        self.detector = cache.derived(
            "detector-image", {"rule": "channel mean, float32"},
            lambda idx: detector_image(cache.batch(idx, ["image"])["image"]), chunk=self.schedule.chunk)
        step = trainer.global_step
        self.phase = None
        self._enter(module, self.schedule.phase_at(step), fresh=step == 0)

    # -- measuring the cache ------------------------------------------------------------------------------
    @torch.no_grad()
    def measure(self, module: LatentImagingModule, rows: Tensor | None = None) -> Tensor:
        """Noiseless readings ``[n, d]`` of cached scenes ``rows`` (default: all) with the current masks."""
        n = len(self.cache)
        rows = torch.arange(n) if rows is None else rows
        patterns = module.optical.patterns()
        out = []
        for start in range(0, len(rows), self.schedule.chunk):
            image = self.detector[rows[start:start + self.schedule.chunk]].to(module.device)
            out.append(measure_detector_image(patterns, image))
        return torch.cat(out)

    @staticmethod
    def noisy(module: LatentImagingModule, readings: Tensor) -> Tensor:
        """One reproducible draw of the model's detector noise on noiseless ``readings`` (unchanged without one):
        what the normaliser and the ridge path are fitted on, so that they see the noise D_theta trains with."""
        if module.optical.noise is None:
            return readings
        generator = torch.Generator(device=readings.device).manual_seed(int(module.hparams.seed) + 2)
        return module.optical.noise.apply(readings, generator=generator)

    def _subset(self) -> Tensor:
        n = len(self.cache)
        k = min(n, self.schedule.normaliser_scenes)
        return torch.randperm(n, generator=torch.Generator().manual_seed(0))[:k].sort().values

    @torch.no_grad()
    def refresh_normaliser(self, module: LatentImagingModule) -> None:
        """Per-reading standardisation from the fixed subset (never whitening while the masks move: a refreshed
        whitening rotates D_theta's inputs, measured as loss spikes at every refresh)."""
        module.reading_norm.fit(self.noisy(module, self.measure(module, self._subset())), whiten=False)

    @torch.no_grad()
    def fit_linear_path(self, module: LatentImagingModule, readings: Tensor, rows: Tensor,
                        residual: bool) -> None:
        """Ridge fit of D_theta's linear path to E(I) (``residual``: to what the style blocks leave)."""
        digital = module.digital
        if digital.linear is None:
            return
        x = module.reading_norm(readings)
        target = self.targets[rows].to(x) - module.w_avg
        if residual:
            chunks = [digital.nonlinear(x[i:i + self.schedule.chunk]) for i in range(0, len(x), self.schedule.chunk)]
            target = target - torch.cat(chunks)
        weight, bias = fit_ridge(x, target.flatten(1), self.schedule.ridge_lambda)
        digital.set_linear_path(weight, bias)

    # -- phases -------------------------------------------------------------------------------------------
    def _enter(self, module: LatentImagingModule, phase: str, fresh: bool = False) -> None:
        """Start (or resume into) ``phase``. At a phase's first step the boundary work runs; resumed in the middle
        of a phase, the normaliser and D_theta come from the checkpoint and only the caches are rebuilt."""
        now = time.time()
        if self.phase is not None:
            self.phase_seconds[self.phase] = self.phase_seconds.get(self.phase, 0.0) + now - self._t_phase
        self._t_phase, self.phase = now, phase
        at_start = module.global_step == self.schedule.phase_start(phase)
        was_training = module.training
        module.eval()
        if phase == "joint":
            module.optical.freeze(bool(module.hparams.freeze_masks))  # fixed masks (e.g. a baseline) stay fixed
            if fresh:
                rows = self._subset()
                readings = self.noisy(module, self.measure(module, rows))
                module.reading_norm.fit(readings, whiten=False)
                self.fit_linear_path(module, readings, rows, residual=False)
        else:
            module.optical.freeze(True)
            self.readings = self.measure(module)  # noiseless; each step draws fresh detector noise on its rows
            if phase == "readout" and at_start:
                readings = self.noisy(module, self.readings)
                module.reading_norm.fit(readings)
                reinit = self.schedule.readout_reinit
                if reinit:
                    module.digital.reinitialise(seed=module.hparams.seed + 1)
                    module.reset_optimizer_state("encoder")
                self.fit_linear_path(module, readings, torch.arange(len(readings)), residual=not reinit)
        module.train(was_training)

    def end(self) -> dict[str, Any]:
        """Wall time per phase (seconds) and steps done per phase, for ``metrics.json``."""
        if self.phase is not None:
            self.phase_seconds[self.phase] = self.phase_seconds.get(self.phase, 0.0) + time.time() - self._t_phase
            self._t_phase = time.time()
        return {"phase_seconds": {k: round(v, 1) for k, v in self.phase_seconds.items()},
                "phase_steps": dict(self.steps_done)}

    # -- one step -------------------------------------------------------------------------------------------
    def losses(self, module: LatentImagingModule, index: Tensor) -> dict[str, Tensor]:
        step = module.global_step
        phase = self.schedule.phase_at(step)
        if phase != self.phase:
            self._enter(module, phase)
        self.steps_done[phase] = self.steps_done.get(phase, 0) + 1
        hp = module.hparams
        target = self.targets[index].to(module.device)
        out: dict[str, Tensor] = {}
        if phase == "joint":
            if step > 0 and step % self.schedule.refresh_every == 0:
                self.refresh_normaliser(module)
            ws = module.encode_readings(module.optical.forward_detector_image(self.detector[index].to(module.device)))
            if hp.lambda_energy > 0 and step >= hp.energy_start_step:
                out["energy"] = module.optical.energy_loss(*hp.energy_range)
        else:
            ws = module.encode_readings(module.optical.detect(self.readings[index].to(module.device)))
        out["lat"] = F.l1_loss(ws, target)
        if phase == "image" and hp.image_loss_batch > 0:
            k = min(hp.image_loss_batch, len(index))
            scene = self.cache.batch(index[:k], ["image"])["image"].to(module.device)
            out.update(module.image_losses(ws[:k], scene))
        out["total"] = module.weighted_total(out)
        return out
