"""Scene sources for ``lsi-capture`` that come from a dataset (the capture loop itself lives in ``hardware``).

:class:`EmbeddedScenes` shows scenes of the embedded procedural face world: it satisfies
:class:`hardware.capture.SceneSource`, and its ``spec`` is what :class:`datamodules.measured.MeasuredDataset`
reads back to re-render each scene's image and labels when a store is replayed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from datamodules.synthetic import SyntheticFaces
from hardware.capture import Scene

__all__ = ["EmbeddedScenes"]


class EmbeddedScenes(Sequence[Scene]):
    """Scenes from the embedded procedural face world (:class:`datamodules.synthetic.SyntheticFaces`)."""

    def __init__(self, split: str = "test", count: int | None = None, num_identities: int = 100,
                 images_per_identity: int = 10, resolution: int = 256, seed: int = 0) -> None:
        self.dataset = SyntheticFaces(split, num_identities, images_per_identity, resolution=resolution, seed=seed)
        n = len(self.dataset)
        if count is not None and count > n:
            raise ValueError(f"--count {count} but the embedded {split!r} split has {n} images "
                             f"({num_identities} identities x {images_per_identity}); raise --identities")
        self.count = n if count is None else count
        self.spec = {"split": split, "num_identities": num_identities, "images_per_identity": images_per_identity,
                     "resolution": resolution, "seed": seed, "count": self.count}

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> Scene:  # type: ignore[override]
        if not 0 <= i < self.count:
            raise IndexError(i)
        split = self.spec["split"]

        def load() -> np.ndarray:
            return np.asarray(self.dataset[i]["image"], dtype=np.float32)

        return Scene(i, f"embedded/{split}/{i:06d}", {"dataset": "embedded", "split": split, "index": i}, load)
