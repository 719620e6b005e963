"""Data: the embedded procedural face world (default) and its Lightning DataModule."""

from .cached import CachedScenesDataModule
from .scene_cache import SceneCache, SceneCacheError
from .synthetic import SyntheticFaces, SyntheticFacesDataModule

__all__ = [
    "CachedScenesDataModule", "SceneCache", "SceneCacheError", "SyntheticFaces", "SyntheticFacesDataModule",
]
