"""Strict reading of configuration mappings (YAML) into typed dataclasses, and back.

:func:`from_dict` builds a dataclass from a mapping recursively: unknown keys are refused with the list of
allowed keys, values are checked against the field types (``int``, ``float``, ``str``, ``bool``, tuples of
fixed length, optional values, nested dataclasses), so a typo or a wrong type in the YAML is an error rather
than a silently ignored setting. :func:`rig_to_dict` is the inverse (a JSON-able dict; tuples become lists).
Every problem is a :class:`RigConfigError` naming the field by its path (``rig.yaml.dmd.exposure_us``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

import yaml

__all__ = ["RigConfigError", "from_dict", "rig_to_dict", "read_yaml"]


class RigConfigError(ValueError):
    """The rig or display configuration is malformed or inconsistent."""


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise RigConfigError(f"{where} must be a mapping, got {type(value).__name__}")
        return from_dict(tp, value, where)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value, where)
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise RigConfigError(f"{where} must be a list of {len(args)} values, got {value!r}")
        return tuple(_convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if tp is bool:
        if not isinstance(value, bool):
            raise RigConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if tp in (int, float, str):
        fractional = tp is int and isinstance(value, float) and not value.is_integer()
        if value is None or isinstance(value, bool) or fractional:
            raise RigConfigError(f"{where} must be a {tp.__name__}, got {value!r}")
        try:
            return tp(value)
        except (TypeError, ValueError) as exc:
            raise RigConfigError(f"{where} must be a {tp.__name__}, got {value!r}") from exc
    return value


def from_dict(cls: type, data: dict[str, Any] | None, where: str = "config") -> Any:
    """Build dataclass ``cls`` from a mapping, recursively and strictly (unknown keys are an error)."""
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise RigConfigError(f"{where}: unknown key(s) {unknown}; allowed: {names}")
    kwargs = {k: _convert(hints[k], v, f"{where}.{k}") for k, v in data.items()}
    return cls(**kwargs)


def rig_to_dict(obj: Any) -> Any:
    """JSON-able dict of a config dataclass (tuples become lists)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: rig_to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [rig_to_dict(v) for v in obj]
    return obj


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RigConfigError(f"{path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RigConfigError(f"{path} must hold a mapping at the top level")
    return data
