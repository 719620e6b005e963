"""Data: the embedded procedural face world (default) and its Lightning DataModule."""

from .synthetic import SyntheticFaces, SyntheticFacesDataModule

__all__ = ["SyntheticFaces", "SyntheticFacesDataModule"]
