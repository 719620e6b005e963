"""Turning pickled per-layer attributes into plain JSON values, and the shared fully-connected-layer spec.

A *spec* is the JSON-able description of one network that, together with its ``state_dict`` tensors, is all
that is needed to rebuild it (it is what ``convert_generator`` writes beside the safetensors file). Pickled
attributes arrive as numpy scalars/arrays (``np.float64`` cutoffs, ``np.bool_`` flags, int64 sizes); these
helpers turn them into Python numbers and fail with the record and attribute named when a value is off.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lsi.generator.errors import GeneratorFileError
from lsi.generator.pickle_records import ModuleRecord
from lsi.generator.stylegan_ops import FullyConnected


def plain(value: Any) -> Any:
    """numpy scalars/arrays, tuples and nested containers -> JSON-able Python values."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def get_int(rec: ModuleRecord, name: str, default: Any = ...) -> int:
    return _typed(rec, name, int, default)


def get_float(rec: ModuleRecord, name: str, default: Any = ...) -> float:
    return _typed(rec, name, float, default)


def get_bool(rec: ModuleRecord, name: str, default: Any = ...) -> bool:
    return _typed(rec, name, bool, default)


def get_ints(rec: ModuleRecord, name: str) -> list[int]:
    value = plain(rec.attr(name))
    value = [value] if isinstance(value, (int, float)) else value
    if not isinstance(value, list) or not all(isinstance(v, (int, float)) and int(v) == v for v in value):
        raise GeneratorFileError(f"{rec.class_name}.{name} = {value!r} is not a list of integers")
    return [int(v) for v in value]


def _typed(rec: ModuleRecord, name: str, kind: type, default: Any) -> Any:
    value = plain(rec.attr(name, default))
    if value is None and default is None:
        return None
    if kind is bool and isinstance(value, (bool, int)):
        return bool(value)
    if kind is int and isinstance(value, (int, float)) and not isinstance(value, bool) and int(value) == value:
        return int(value)
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise GeneratorFileError(f"{rec.class_name}.{name} = {value!r} is not a {kind.__name__}")


def optional_float(rec: ModuleRecord, name: str) -> float | None:
    """An attribute such as ``conv_clamp`` that may be None."""
    value = plain(rec.attr(name, None))
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise GeneratorFileError(f"{rec.class_name}.{name} = {value!r} is not a number or None")
    return float(value)


def fc_spec(rec: ModuleRecord) -> dict:
    """A ``FullyConnectedLayer`` record -> ``{in_features, out_features, activation, weight_gain, bias_gain, bias}``."""
    weight = rec.params().get("weight")
    if weight is None or weight.ndim != 2:
        raise GeneratorFileError(f"{rec.class_name} record has no 2-D 'weight' parameter")
    activation = rec.attr("activation", "linear")
    if activation not in ("linear", "lrelu", "relu"):
        raise GeneratorFileError(f"{rec.class_name}.activation = {activation!r} is not supported (linear, lrelu, relu)")
    return {"in_features": int(weight.shape[1]), "out_features": int(weight.shape[0]), "activation": activation,
            "weight_gain": get_float(rec, "weight_gain"), "bias_gain": get_float(rec, "bias_gain", 1.0),
            "bias": "bias" in rec.params()}


def make_fc(spec: dict) -> FullyConnected:
    return FullyConnected(spec["in_features"], spec["out_features"], spec["activation"], spec["weight_gain"],
                          spec["bias_gain"], spec["bias"])
