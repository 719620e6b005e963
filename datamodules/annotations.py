"""CelebA-family annotation files: attribute tables, the CelebA-HQ -> CelebA mapping, identities.

* ``CelebAMask-HQ-attribute-anno.txt`` and CelebA's ``list_attr_celeba.txt``: a count line, a header line of the 40
  attribute names (CelebA order), then ``<file> v1 ... v40`` with values in {-1, 1} (whitespace-separated);
* ``CelebA-HQ-to-CelebA-mapping.txt``: a header ``idx orig_idx orig_file``, then ``<hq index> <celeba index>
  <celeba file>`` (the HQ image i was made from CelebA's ``orig_file``);
* ``identity_CelebA.txt``: ``<celeba file> <identity>`` per line.

A malformed line raises :class:`AnnotationFormatError` naming ``file:line``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["AnnotationFormatError", "read_attribute_file", "read_hq_mapping", "read_identity_file"]


class AnnotationFormatError(ValueError):
    """An annotation file does not follow its documented format."""


def read_attribute_file(path: str | Path) -> tuple[tuple[str, ...], dict[str, np.ndarray]]:
    """Parse a CelebA-style attribute file -> (names, {file name: int8 [40] in {-1,1}})."""
    lines = Path(path).read_text().splitlines()
    if len(lines) < 2:
        raise AnnotationFormatError(f"{path}: expected a count line and a header line of attribute names")
    names = tuple(lines[1].split())
    rows: dict[str, np.ndarray] = {}
    for lineno, line in enumerate(lines[2:], start=3):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != len(names) + 1:
            raise AnnotationFormatError(
                f"{path}:{lineno}: expected a file name and {len(names)} values, got {len(parts)} fields")
        try:
            values = np.array([int(v) for v in parts[1:]], dtype=np.int8)
        except ValueError as err:
            raise AnnotationFormatError(f"{path}:{lineno}: attribute values must be -1 or 1 ({err})") from err
        if not np.isin(values, (-1, 1)).all():
            raise AnnotationFormatError(f"{path}:{lineno}: attribute values must be -1 or 1")
        rows[parts[0]] = values
    return names, rows


def read_hq_mapping(path: str | Path) -> dict[int, str]:
    """``CelebA-HQ-to-CelebA-mapping.txt`` -> {HQ index: original CelebA file name}."""
    out: dict[int, str] = {}
    for lineno, line in enumerate(Path(path).read_text().splitlines()[1:], start=2):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 3 or not parts[0].isdigit():
            raise AnnotationFormatError(f"{path}:{lineno}: expected '<hq index> <celeba index> <celeba file>', "
                                        f"got {line.strip()!r}")
        out[int(parts[0])] = parts[2]
    return out


def read_identity_file(path: str | Path) -> dict[str, int]:
    """``identity_CelebA.txt`` -> {CelebA file name: identity}."""
    return {p[0]: int(p[1]) for p in (line.split() for line in Path(path).read_text().splitlines()) if len(p) == 2}
