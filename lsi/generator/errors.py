"""Errors raised while reading generator files (NVIDIA network pickles and our converted format).

Both are ``ValueError``s so that callers treating "bad file" uniformly keep working; every message names the
file (or field) and says how to fix it.
"""

from __future__ import annotations


class GeneratorFileError(ValueError):
    """A generator file is missing, truncated, of an unknown layout, or inconsistent with itself."""


class UnsafePickleError(GeneratorFileError):
    """A network pickle references something that would execute code or touch the system when unpickled."""
