"""JSON records of runs and reports (``runs/**/result.json``, ``docs/table*.json``, ``metrics.json``), atomically.

:func:`write_json` serialises first, then writes a temporary file beside ``path`` and renames it over ``path``: a
crash or a value that cannot be serialised leaves the previous record intact, never a truncated file.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["write_json"]


def write_json(path: str | Path, data: dict, *, allow_nan: bool = True) -> Path:
    """Write ``data`` as indented, key-sorted JSON to ``path`` (parents created). ``allow_nan=False`` raises
    ``ValueError`` on NaN or infinity instead of writing JavaScript's non-standard ``NaN``."""
    path = Path(path)
    text = json.dumps(data, indent=2, sort_keys=True, allow_nan=allow_nan)  # fails before anything is touched
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path
