"""An exported LSI model (``lsi export``) loaded for inference, without Lightning.

:meth:`ExportedModel.open` reads a ``.onnx`` file with ONNX Runtime (numpy in, numpy out: torch is not imported)
or a ``.pt2`` file with ``torch.export`` (torch imported then, never Lightning). The file's ``lsi`` metadata
(written by :mod:`lsi.deploy.export`) says what the model reads and returns: ``d`` readings per scene, output
names, attribute names, the hashes of the masks the readings must come from, the valid reading range.

:meth:`ExportedModel.check_readings` refuses readings the model cannot use, with a message saying what was wrong
and how to fix it; :meth:`ExportedModel.run` runs checked readings ``[N, d]`` in batches and returns
``{name: array}`` (``ws [N, num_ws, w_dim]``, ``attributes [N, A]``, ``segmentation [N, h, w]``,
``landmarks [N, 68, 2]``, ``image [N, 3, R, R]`` in [0, 1], as the model has them).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ExportedModel", "ModelFileError", "ReadingsError"]


class ModelFileError(ValueError):
    """The model file is missing, unreadable or not an ``lsi export``."""


class ReadingsError(ValueError):
    """Readings the model cannot use (wrong count, NaN, out of range)."""


class ExportedModel:
    """One exported model; ``threads`` = intra-op threads (default: all cores)."""

    def __init__(self, path: Path, meta: dict[str, Any], runner: Any, backend: str) -> None:
        self.path, self.meta, self._runner, self.backend = path, meta, runner, backend

    # -- opening ----------------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike, threads: int | None = None, check_metadata: bool = True) -> ExportedModel:
        p = Path(path)
        if not p.is_file():
            raise ModelFileError(f"model file {p} does not exist; make one with `lsi export --ckpt lsi.ckpt --out {p}`")
        if p.suffix == ".onnx":
            runner, meta = _open_onnx(p, threads)
            backend = "onnxruntime"
        elif p.suffix == ".pt2":
            runner, meta = _open_pt2(p, threads)
            backend = "torch.export"
        else:
            raise ModelFileError(f"{p}: unknown model format {p.suffix!r}; lsi infer runs .onnx and .pt2 files "
                                 "written by `lsi export`")
        if meta is None:
            if check_metadata:
                raise ModelFileError(f"{p} holds no 'lsi' metadata: it was not written by `lsi export`")
            meta = {}
        return cls(p, meta, runner, backend)

    # -- contract ---------------------------------------------------------------------------------------
    @property
    def d(self) -> int:
        return int(self.meta["d"])

    @property
    def outputs(self) -> list[str]:
        return list(self.meta["outputs"])

    def check_readings(self, readings: np.ndarray, source: str = "readings") -> np.ndarray:
        """``[N, d]`` (or one ``[d]`` vector) float readings in normalised units -> float32 ``[N, d]``."""
        y = np.asarray(readings)
        if y.ndim == 1:
            y = y[None]
        if y.ndim != 2 or y.shape[1] != self.d:
            raise ReadingsError(f"{source}: the model reads {self.d} values per scene ([N, {self.d}]) but got shape "
                                f"{tuple(np.shape(readings))}; use readings captured with this model's masks "
                                f"(ratio {self.meta.get('ratio')}, {self.d} readings)")
        if not np.issubdtype(y.dtype, np.number) or np.issubdtype(y.dtype, np.complexfloating):
            raise ReadingsError(f"{source}: readings must be real numbers, got dtype {y.dtype}")
        if len(y) == 0:
            raise ReadingsError(f"{source}: no readings (0 scenes)")
        bad = ~np.isfinite(y)
        if bad.any():
            rows = np.unique(np.nonzero(bad)[0])
            raise ReadingsError(f"{source}: {int(bad.sum())} reading(s) are NaN or infinite (scene(s) "
                                f"{rows[:5].tolist()}{' ...' if len(rows) > 5 else ''}): a detector glitch or a broken "
                                "connection; capture those scenes again")
        lo, hi = self.meta.get("reading_range", (-np.inf, np.inf))
        out = (y < lo) | (y > hi)
        if out.any():
            rows = np.unique(np.nonzero(out)[0])
            raise ReadingsError(
                f"{source}: {int(out.sum())} reading(s) lie outside [{lo:g}, {hi:g}] (scene(s) {rows[:5].tolist()}"
                f"{' ...' if len(rows) > 5 else ''}; largest {float(np.abs(y).max()):.4g}): readings must be in "
                "normalised units (white scene through an all-on mask = 1). Values above 1 mean a saturated "
                "detector or raw detector units: lower the gain/light, or correct them as (y - dark) / (white - "
                "dark) (`lsi infer --store` does this from the capture's references)")
        return y.astype(np.float32, copy=False)

    # -- running ----------------------------------------------------------------------------------------
    def run_raw(self, readings: np.ndarray) -> dict[str, np.ndarray]:
        """One batch through the model, unchecked: ``{output name: array}``."""
        return self._runner(np.ascontiguousarray(readings, dtype=np.float32))

    def run(self, readings: np.ndarray, batch: int = 256) -> dict[str, np.ndarray]:
        """Checked readings ``[N, d]`` in batches of ``batch`` -> ``{output name: [N, ...]}``."""
        y = self.check_readings(readings)
        parts = [self.run_raw(y[i:i + batch]) for i in range(0, len(y), batch)]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _open_onnx(path: Path, threads: int | None) -> tuple[Any, dict[str, Any] | None]:
    import onnxruntime as ort  # the runtime of .onnx models only

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads or (os.cpu_count() or 1)
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as err:  # ONNX Runtime raises its own types (InvalidProtobuf, Fail, ...)
        raise ModelFileError(f"{path} is not a readable ONNX model ({type(err).__name__}: "
                             f"{str(err).splitlines()[0][:200]}); export it again with `lsi export`") from err
    names = [o.name for o in session.get_outputs()]
    raw = session.get_modelmeta().custom_metadata_map.get("lsi")

    def run(readings: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(names, session.run(names, {"readings": readings})))

    return run, (json.loads(raw) if raw else None)


def _open_pt2(path: Path, threads: int | None) -> tuple[Any, dict[str, Any] | None]:
    import torch  # heavy: only for .pt2 models

    if threads:
        torch.set_num_threads(threads)
    extra = {"lsi.json": ""}
    try:
        program = torch.export.load(str(path), extra_files=extra)
    except Exception as err:  # a corrupt zip, a foreign file, a newer format
        raise ModelFileError(f"{path} is not a readable torch.export program ({type(err).__name__}: "
                             f"{str(err).splitlines()[0][:200] if str(err) else ''}); export it again with "
                             "`lsi export`") from err
    meta = json.loads(extra["lsi.json"]) if extra["lsi.json"] else None
    module = program.module()
    names = (meta or {}).get("outputs") or [f"output_{i}" for i in range(len(program.graph_signature.user_outputs))]

    def run(readings: np.ndarray) -> dict[str, np.ndarray]:
        with torch.no_grad():
            out = module(torch.from_numpy(readings))
        return {n: t.float().numpy() if t.is_floating_point() else t.numpy() for n, t in zip(names, out)}

    return run, meta
