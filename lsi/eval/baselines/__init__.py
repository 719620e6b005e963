"""The baselines room: image-reconstruction methods compared with LSI at equal measurement counts (Table 2).

Every method implements :class:`~lsi.eval.baselines.interface.Baseline` (patterns -> measure through
:func:`lsi.physics.operator.measure` -> reconstruct an image in [0, 1]):

* ``hadamard`` - 2-D Walsh-Hadamard patterns, low sequency first, fast WHT (:mod:`.hadamard`);
* ``fsi`` - Fourier single-pixel imaging, 4-step phase shifting, dithered patterns, inverse FFT (:mod:`.fourier`);
* ``fsi_dl`` - FSI + a learned CNN refiner (:mod:`.fsi_dl`);
* ``dgi`` - differential ghost imaging with random binary masks (:mod:`.ghost`);
* ``unfolding_1bit`` / ``unfolding_8bit`` - ISTA-Net+/SAUNet-style unrolled network with a learned sensing matrix
  quantised like LSI's masks (:mod:`.unfolding`);
* ``csgm`` - gradient descent on the frozen G's W+ to match the readings (:mod:`.csgm`);
* ``lsi_ridge`` - LSI's masks with a closed-form ridge read-out to E(I), then G (:mod:`.ridge`).

:func:`build_baseline` makes one by name for a compression ratio (``d = grid^2 / ratio`` readings for every
method). Nothing here knows the LightningModules: LSI's masks reach ``lsi_ridge`` as a tensor.
"""

from __future__ import annotations

from torch import Tensor, nn

from lsi.eval.baselines.csgm import CSGM
from lsi.eval.baselines.fourier import FourierImaging
from lsi.eval.baselines.fsi_dl import FourierDeepLearning
from lsi.eval.baselines.ghost import GhostImaging
from lsi.eval.baselines.hadamard import HadamardImaging
from lsi.eval.baselines.interface import Baseline, BaselineError, TrainingData, pooled_patterns, upsample_nearest
from lsi.eval.baselines.ridge import LatentRidge
from lsi.eval.baselines.training import TrainBudget
from lsi.eval.baselines.unfolding import UnfoldingNet

__all__ = ["BASELINES", "Baseline", "BaselineError", "CSGM", "FourierDeepLearning", "FourierImaging", "GhostImaging",
           "HadamardImaging", "LatentRidge", "TrainBudget", "TrainingData", "UnfoldingNet", "build_baseline",
           "pooled_patterns", "upsample_nearest"]

#: the baselines of Table 2, in table order
BASELINES = ("lsi_ridge", "csgm", "unfolding_8bit", "unfolding_1bit", "fsi_dl", "fsi", "hadamard", "dgi")


def build_baseline(name: str, ratio: int, grid: int = 256, generator: nn.Module | None = None,
                   lsi_patterns: Tensor | None = None, budget: TrainBudget | None = None, **options) -> Baseline:
    """The baseline ``name`` with ``d = grid^2 // ratio`` readings.

    ``generator``: the frozen G (``csgm``, ``lsi_ridge``); ``lsi_patterns``: the LSI checkpoint's displayed patterns
    (``lsi_ridge``); ``budget``: the training budget of ``fsi_dl`` and the unfolding nets; ``options``: keyword
    arguments of the method's class (e.g. ``steps`` of ``csgm``).
    """
    if name not in BASELINES:
        raise BaselineError(f"unknown baseline {name!r}; choose one of {list(BASELINES)}")
    n = grid * grid
    if ratio < 1 or n % ratio:
        raise BaselineError(f"ratio {ratio} must divide {n} (d = {n} / ratio readings on a {grid}x{grid} grid)")
    d = n // ratio
    if name in ("csgm", "lsi_ridge") and generator is None:
        raise BaselineError(f"{name} needs the frozen generator (generator=frozen_world().generator)")
    if name == "hadamard":
        return HadamardImaging(d, grid, **options)
    if name == "fsi":
        return FourierImaging(d, grid, **options)
    if name == "fsi_dl":
        return FourierDeepLearning(d, grid, budget=budget, **options)
    if name == "dgi":
        return GhostImaging(d, grid, **options)
    if name.startswith("unfolding_"):
        return UnfoldingNet(d, grid, bits=int(name[len("unfolding_"):-len("bit")]), budget=budget, **options)
    if name == "csgm":
        return CSGM(d, generator, grid, **options)
    if lsi_patterns is None:
        raise BaselineError("lsi_ridge reads LSI's own masks: pass lsi_patterns (the checkpoint's "
                            "module.optical.patterns())")
    if lsi_patterns.shape[0] != d:
        raise BaselineError(f"the LSI checkpoint shows {lsi_patterns.shape[0]} patterns but ratio {ratio} means "
                            f"{d}; use the checkpoint trained at this ratio")
    return LatentRidge(lsi_patterns, generator, **options)
